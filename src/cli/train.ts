/**
 * `ferry train`: train candidate models on a table, on the rows a preparation recipe of
 * ferry.yaml prepares (`--recipe`), or on a point-in-time training set of a feature vector
 * (`--vector`), and register the best. A model trained on a recipe embeds the fitted recipe and
 * takes the raw columns, so serving prepares rows as training did. A model trained on a vector
 * records the vector, its version and the registered dataset in its lineage.
 */
import path from 'node:path';
import type { Command } from 'commander';
import type { Task } from '../core/model.js';
import { readTable } from '../data/read.js';
import { fileReferences } from '../data/validate/reference.js';
import {
  runRecipeTrainingJob,
  runTrainingJob,
  type SearchSettings,
  type TrainingJobResult,
} from '../training/job.js';
import { SEARCH_STRATEGIES, type SearchStrategy } from '../training/search.js';
import { REFIT_MODES, type RefitMode } from '../training/train.js';
import { sha256File } from '../training/recipe-data.js';
import { withWorkspace, type GlobalOptions } from './context.js';
import { argumentError, printJson, printTable, progress } from './output.js';

interface TrainOptions extends GlobalOptions {
  readonly data?: string;
  readonly recipe?: string;
  readonly vector?: string;
  readonly labels?: string;
  readonly target?: string;
  readonly name: string;
  readonly task?: string;
  readonly drop?: string;
  readonly seed?: string;
  readonly models?: string;
  readonly metric?: string;
  readonly search?: string;
  readonly trials?: string;
  readonly timeBudget?: string;
  readonly cv?: string;
  readonly testFraction?: string;
  readonly workers?: string;
  readonly refit?: string;
}

export function registerTrain(program: Command): void {
  program
    .command('train')
    .description(
      'train candidate models on a table or on the rows a recipe prepares, register the best as the next model version',
    )
    .option(
      '--data <file>',
      "training data: .csv, .parquet or .jsonl (with --recipe: replaces the recipe source's file)",
    )
    .option(
      '--recipe <name>',
      'prepare the data with this recipe of ferry.yaml (recipes:); the model embeds the fitted recipe and takes raw columns',
    )
    .option(
      '--vector <feature_vector>',
      'train on a point-in-time training set of this feature vector (registered as a dataset); the target is its label column, keys and time are not features',
    )
    .option('--labels <file>', "with --vector: label rows instead of the vector's label source")
    .option(
      '--target <column>',
      'the column to predict (with --recipe: a prepared column; with --vector: defaults to its label column)',
    )
    .requiredOption('--name <model>', 'model name to register under')
    .option('--task <task>', 'classification or regression (inferred from the target when absent)')
    .option('--drop <columns>', 'comma-separated columns that are not features (ids, timestamps)')
    .option('--seed <n>', 'random seed for the split and the algorithms', '42')
    .option(
      '--models <list>',
      'comma-separated algorithms to try: linear (alias logreg, ridge), gbdt, tree, rf (default linear,gbdt)',
    )
    .option(
      '--metric <name>',
      'selection metric: roc_auc, pr_auc, log_loss, accuracy, f1_macro, f1_weighted, precision_macro, precision_weighted, recall_macro, recall_weighted; rmse, mae, r2, mape (default: roc_auc binary, log_loss multiclass, rmse regression)',
    )
    .option(
      '--search <strategy>',
      'defaults (each model once), grid, random (seeded) or halving (successive halving on rows)',
      'defaults',
    )
    .option('--trials <n>', 'configurations per model for random and halving (default 10)')
    .option(
      '--time-budget <duration>',
      'stop launching candidates after this long (90s, 2m, 500ms); each model still trains once',
    )
    .option(
      '--cv <k>',
      'k-fold cross-validation (stratified for classification); 1 for one hold-out split',
    )
    .option(
      '--test-fraction <f>',
      'share of rows set aside first as an untouched test split, scored once by the winner (not with --recipe, whose split decides)',
      '0.2',
    )
    .option('--workers <n>', 'worker threads for candidates (0: in this thread; default: cores)')
    .option(
      '--refit <mode>',
      'how the winner becomes the model: folds (a boosted winner under cross-validation is the average of its fold models; the default) or full (one refit on all rows)',
    )
    .option('--json', 'machine-readable output')
    .addHelpText(
      'after',
      `
Examples:
  ferry train --data penguins.csv --target Species --name penguins
  ferry train --recipe fraud_training --target is_fraud --name fraud --drop card_id,ts
  ferry train --recipe fraud_training --data june.csv --target is_fraud --name fraud
  ferry train --vector fraud_v1 --name fraud
  ferry train --data cars.csv --target mpg --name cars --models gbdt,rf,linear --search random --time-budget 60s
  ferry train --data penguins.csv --target Species --name penguins --search halving --metric accuracy --cv 5

With --recipe, the recipe runs as 'ferry data prep' would (validation and quarantine included);
the model trains on its train and validation parts and is scored once on its test part. Filters
and drop_missing choose the training rows only: when serving, every row gets a prediction.`,
    )
    .action(async (_opts: unknown, command: Command) => {
      const options = command.optsWithGlobals<TrainOptions>();
      const task = parseTask(options.task);
      const seed = Number(options.seed);
      if (!Number.isInteger(seed))
        throw argumentError(`--seed must be an integer, got '${options.seed}'`);
      const drop = options.drop
        ? options.drop
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean)
        : [];
      const say = progress(options);
      const search = parseSearch(options);
      const sources = [options.data, options.recipe, options.vector].filter((s) => s !== undefined);
      if (options.vector !== undefined && sources.length > 1)
        throw argumentError(
          '--vector trains on its own training set: leave out --data and --recipe',
        );
      if (options.labels !== undefined && options.vector === undefined)
        throw argumentError('--labels goes with --vector <feature_vector>');
      if (options.vector !== undefined) {
        await trainOnVector(options, options.vector, { task, seed, drop, say, search });
        return;
      }
      const target = options.target;
      if (target === undefined)
        throw argumentError('give --target <column>, the column to predict');
      if (options.recipe !== undefined) {
        await trainOnRecipe(options, options.recipe, target, { task, seed, drop, say, search });
        return;
      }
      if (options.data === undefined) {
        throw argumentError(
          'give --data <file> (a table to train on) or --recipe <name> (a recipe of ferry.yaml to prepare it)',
        );
      }
      const data = options.data;
      say(`Reading ${data}...`);
      const table = await readTable(data);
      say(`${table.rowCount} rows, ${table.columns.length} columns`);
      const dataSha256 = await sha256File(data);
      const outcome = await withWorkspace(options, (ws) =>
        runTrainingJob(ws.metadata, ws.registry, {
          table,
          target,
          model: options.name,
          ...(task ? { task } : {}),
          seed,
          drop,
          lineage: { data: path.resolve(data), dataSha256 },
          search,
          onProgress: say,
        }),
      );
      if (options.json) {
        printJson(summary(options.name, outcome));
        return;
      }
      printOutcome(options.name, outcome);
    });
}

interface Settings {
  readonly task: Task | undefined;
  readonly seed: number;
  readonly drop: string[];
  readonly say: (message: string) => void;
  readonly search: SearchSettings;
}

/**
 * Builds the vector's training set (registered as a dataset), trains on it with the label as
 * target and without the key and time columns, and records vector, version and dataset.
 */
async function trainOnVector(options: TrainOptions, vector: string, s: Settings): Promise<void> {
  const outcome = await withWorkspace(options, async (ws) => {
    s.say(`Building a point-in-time training set from '${vector}'...`);
    const built = await ws.features.buildDataset(vector, {
      ...(options.labels === undefined ? {} : { labels: options.labels }),
    });
    const target = options.target ?? built.labelColumn;
    if (target === null) {
      throw argumentError(
        `feature vector '${vector}' has no label; add 'label:' to it in ferry.yaml or pass --target <column>`,
      );
    }
    const record = built.dataset === null ? undefined : await ws.catalog.dataset(built.dataset);
    s.say(
      `${built.table.rowCount} rows${built.dataset === null ? '' : `, registered as dataset ${built.dataset}`}`,
    );
    const notFeatures = [...built.keyColumns, built.timestampColumn];
    const drop = [...new Set([...notFeatures, ...s.drop])].filter((c) => c !== target);
    const job = await runTrainingJob(ws.metadata, ws.registry, {
      table: built.table,
      target,
      model: options.name,
      ...(s.task ? { task: s.task } : {}),
      seed: s.seed,
      drop,
      lineage: {
        vector,
        vector_version: record?.vector_version ?? null,
        dataset: built.dataset,
        labels: record?.labels.source ?? null,
        labelsSha256: record?.labels.sha256 ?? null,
      },
      search: s.search,
      onProgress: s.say,
    });
    return { job, dataset: built.dataset, rows: built.table.rowCount, record };
  });
  if (options.json) {
    printJson({
      ...summary(options.name, outcome.job),
      vector,
      vector_version: outcome.record?.vector_version ?? null,
      dataset: outcome.dataset,
      rows: outcome.rows,
    });
    return;
  }
  process.stdout.write(
    `Vector ${vector} v${outcome.record?.vector_version ?? '?'}: ${outcome.rows} rows` +
      (outcome.dataset === null ? '' : ` (dataset ${outcome.dataset})`) +
      '\n\n',
  );
  printOutcome(options.name, outcome.job);
}

async function trainOnRecipe(
  options: TrainOptions,
  recipe: string,
  target: string,
  s: Settings,
): Promise<void> {
  const outcome = await withWorkspace(options, (ws) =>
    runRecipeTrainingJob(ws.metadata, ws.registry, {
      spec: ws.project.spec,
      projectDir: ws.project.dir,
      recipe,
      ...(options.data === undefined ? {} : { data: path.resolve(options.data) }),
      target,
      model: options.name,
      ...(s.task ? { task: s.task } : {}),
      seed: s.seed,
      drop: s.drop,
      search: withoutTestFraction(s.search),
      quarantine: ws.offline,
      resolveReference: fileReferences(
        ws.project.dir,
        async (model) => (await ws.registry.resolve(model)).profile,
      ),
      onProgress: s.say,
    }),
  );
  if (options.json) {
    printJson({
      ...summary(options.name, outcome),
      recipe: outcome.recipe,
      rows: outcome.rows,
      test: outcome.test,
      prep: outcome.run.outputs.prep ?? null,
    });
    return;
  }
  const { rows, test } = outcome;
  process.stdout.write(
    `Recipe ${recipe}: trained on ${rows.train + rows.validation} prepared rows` +
      (rows.validation > 0 || rows.test > 0
        ? ` (train ${rows.train} + validation ${rows.validation}); test part: ${rows.test} rows`
        : '') +
      '\n',
  );
  if (test !== null) {
    const shown = Object.entries(test.metrics)
      .map(([k, v]) => `${k}=${v.toFixed(4)}`)
      .join(' ');
    process.stdout.write(`Test score (once, on ${test.rows} rows): ${shown}\n`);
  }
  process.stdout.write(
    `Inputs (raw columns the model takes): ${outcome.recipe.inputs.map((i) => `${i.name} (${i.type})`).join(', ')}\n\n`,
  );
  printOutcome(options.name, outcome);
}

function summary(name: string, outcome: TrainingJobResult): Record<string, unknown> {
  const { result, version, promoted, run } = outcome;
  return {
    model: name,
    version: version.version,
    champion: promoted,
    run: run.id,
    task: result.signature.task,
    best: result.best,
    metrics: result.metrics,
    validation: result.validation,
    search: result.search,
    refit: result.refit,
    test: result.test === null ? null : { rows: result.test.rows, metrics: result.test.metrics },
    candidates: result.candidates,
  };
}

function printOutcome(name: string, outcome: TrainingJobResult): void {
  const { result, version, promoted, run } = outcome;
  printLeaderboard(result.candidates, result.best);
  if (result.test !== null) {
    const shown = Object.entries(result.test.metrics)
      .map(([k, v]) => `${k}=${v.toFixed(4)}`)
      .join(' ');
    process.stdout.write(`\nTest score (once, on ${result.test.rows} rows): ${shown}\n`);
  }
  process.stdout.write(
    `\nRegistered ${name} version ${version.version} (${result.best}, ${result.signature.task})` +
      `${promoted ? "; alias 'champion' points to it" : ''}. Run ${run.id}.\n`,
  );
}

/** The leaderboard as a table: one row per evaluated candidate, the winner marked. */
export function printLeaderboard(
  entries: readonly {
    name: string;
    metrics: Readonly<Record<string, number | null>>;
    seconds: number;
    rowFraction?: number;
    error?: string;
  }[],
  best: string,
): void {
  const metricNames = [...new Set(entries.flatMap((c) => Object.keys(c.metrics)))];
  const halving = entries.some((c) => (c.rowFraction ?? 1) < 1);
  printTable(
    ['candidate', ...metricNames, 'seconds', ...(halving ? ['rows'] : []), ''],
    entries.map((c) => [
      c.name,
      ...metricNames.map((m) => c.metrics[m]),
      c.seconds,
      ...(halving ? [`${Math.round((c.rowFraction ?? 1) * 100)}%`] : []),
      c.error !== undefined
        ? `failed: ${c.error}`
        : c.name === best &&
            (c.rowFraction ?? 1) === Math.max(...entries.map((e) => e.rowFraction ?? 1))
          ? '<- best'
          : '',
    ]),
  );
}

/**
 * A duration: `90s`, `2m`, `1h`, `500ms`, or a number of seconds.
 * @example parseDuration('2m') // 120000
 */
export function parseDuration(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(text);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  const ms = match ? Number(match[1]) * unit[(match[2] ?? 's') as keyof typeof unit] : NaN;
  if (!(ms > 0)) {
    throw argumentError(`--time-budget must be a duration such as 60s, 2m or 500ms; got '${text}'`);
  }
  return ms;
}

function parseSearch(options: TrainOptions): SearchSettings {
  const integer = (flag: string, value: string, min: number): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) {
      throw argumentError(`${flag} must be a whole number of at least ${min}, got '${value}'`);
    }
    return n;
  };
  const strategy = options.search ?? 'defaults';
  if (!SEARCH_STRATEGIES.includes(strategy as SearchStrategy)) {
    throw argumentError(
      `--search must be one of ${SEARCH_STRATEGIES.join(', ')}, got '${strategy}'`,
    );
  }
  if (options.refit !== undefined && !REFIT_MODES.includes(options.refit as RefitMode)) {
    throw argumentError(`--refit must be one of ${REFIT_MODES.join(', ')}, got '${options.refit}'`);
  }
  const testFraction = Number(options.testFraction ?? '0.2');
  if (!(testFraction >= 0 && testFraction < 1)) {
    throw argumentError(
      `--test-fraction must be at least 0 and below 1, got '${options.testFraction}'`,
    );
  }
  return {
    search: strategy as SearchStrategy,
    testFraction,
    ...(options.models === undefined
      ? {}
      : {
          models: options.models
            .split(',')
            .map((m) => m.trim())
            .filter(Boolean),
        }),
    ...(options.metric === undefined ? {} : { metric: options.metric }),
    ...(options.trials === undefined ? {} : { trials: integer('--trials', options.trials, 1) }),
    ...(options.timeBudget === undefined
      ? {}
      : { timeBudgetMs: parseDuration(options.timeBudget) }),
    ...(options.cv === undefined ? {} : { cv: integer('--cv', options.cv, 1) }),
    ...(options.workers === undefined ? {} : { workers: integer('--workers', options.workers, 0) }),
    ...(options.refit === undefined ? {} : { refit: options.refit as RefitMode }),
  };
}

function withoutTestFraction(search: SearchSettings): Omit<SearchSettings, 'testFraction'> {
  const { testFraction: _ignored, ...rest } = search;
  return rest;
}

function parseTask(task: string | undefined): Task | undefined {
  if (task === undefined) return undefined;
  if (task === 'classification' || task === 'regression') return task;
  throw argumentError(`--task must be 'classification' or 'regression', got '${task}'`);
}
