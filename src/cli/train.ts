/**
 * `ferry train`: train candidate models on a table, or on the rows a preparation recipe of
 * ferry.yaml prepares (`--recipe`), and register the best. A model trained on a recipe embeds
 * the fitted recipe and takes the raw columns, so serving prepares rows as training did.
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
  readonly target: string;
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
    .requiredOption('--target <column>', 'the column to predict (with --recipe: a prepared column)')
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
      if (options.recipe !== undefined) {
        await trainOnRecipe(options, options.recipe, { task, seed, drop, say });
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
          target: options.target,
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

async function trainOnRecipe(options: TrainOptions, recipe: string, s: Settings): Promise<void> {
  const outcome = await withWorkspace(options, (ws) =>
    runRecipeTrainingJob(ws.metadata, ws.registry, {
      spec: ws.project.spec,
      projectDir: ws.project.dir,
      recipe,
      ...(options.data === undefined ? {} : { data: path.resolve(options.data) }),
      target: options.target,
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
