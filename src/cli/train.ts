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
import { runRecipeTrainingJob, runTrainingJob, type TrainingJobResult } from '../training/job.js';
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
    .option('--json', 'machine-readable output')
    .addHelpText(
      'after',
      `
Examples:
  ferry train --data penguins.csv --target Species --name penguins
  ferry train --recipe fraud_training --target is_fraud --name fraud --drop card_id,ts
  ferry train --recipe fraud_training --data june.csv --target is_fraud --name fraud
  ferry train --vector fraud_v1 --name fraud

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
      const sources = [options.data, options.recipe, options.vector].filter((s) => s !== undefined);
      if (options.vector !== undefined && sources.length > 1)
        throw argumentError(
          '--vector trains on its own training set: leave out --data and --recipe',
        );
      if (options.labels !== undefined && options.vector === undefined)
        throw argumentError('--labels goes with --vector <feature_vector>');
      if (options.vector !== undefined) {
        await trainOnVector(options, options.vector, { task, seed, drop, say });
        return;
      }
      const target = options.target;
      if (target === undefined)
        throw argumentError('give --target <column>, the column to predict');
      if (options.recipe !== undefined) {
        await trainOnRecipe(options, options.recipe, target, { task, seed, drop, say });
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
    candidates: result.candidates,
  };
}

function printOutcome(name: string, outcome: TrainingJobResult): void {
  const { result, version, promoted, run } = outcome;
  const metricNames = [...new Set(result.candidates.flatMap((c) => Object.keys(c.metrics)))];
  printTable(
    ['candidate', ...metricNames, 'seconds', ''],
    result.candidates.map((c) => [
      c.name,
      ...metricNames.map((m) => c.metrics[m]),
      c.seconds,
      c.name === result.best ? '<- best' : '',
    ]),
  );
  process.stdout.write(
    `\nRegistered ${name} version ${version.version} (${result.best}, ${result.signature.task})` +
      `${promoted ? "; alias 'champion' points to it" : ''}. Run ${run.id}.\n`,
  );
}

function parseTask(task: string | undefined): Task | undefined {
  if (task === undefined) return undefined;
  if (task === 'classification' || task === 'regression') return task;
  throw argumentError(`--task must be 'classification' or 'regression', got '${task}'`);
}
