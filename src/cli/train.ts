/** `ferry train`: train candidate models on a table and register the best. */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import type { Task } from '../core/model.js';
import { readTable } from '../data/read.js';
import { runTrainingJob } from '../training/job.js';
import { withWorkspace, type GlobalOptions } from './context.js';
import { argumentError, printJson, printTable, progress } from './output.js';

interface TrainOptions extends GlobalOptions {
  readonly data: string;
  readonly target: string;
  readonly name: string;
  readonly task?: string;
  readonly drop?: string;
  readonly seed?: string;
}

export function registerTrain(program: Command): void {
  program
    .command('train')
    .description('train candidate models on a table, register the best as the next model version')
    .requiredOption('--data <file>', 'training data: .csv, .parquet or .jsonl')
    .requiredOption('--target <column>', 'the column to predict')
    .requiredOption('--name <model>', 'model name to register under')
    .option('--task <task>', 'classification or regression (inferred from the target when absent)')
    .option('--drop <columns>', 'comma-separated columns that are not features (ids, timestamps)')
    .option('--seed <n>', 'random seed for the split and the algorithms', '42')
    .option('--json', 'machine-readable output')
    .action(async (_opts: unknown, command: Command) => {
      const options = command.optsWithGlobals<TrainOptions>();
      const task = parseTask(options.task);
      const seed = Number(options.seed);
      if (!Number.isInteger(seed))
        throw argumentError(`--seed must be an integer, got '${options.seed}'`);
      const say = progress(options);
      say(`Reading ${options.data}...`);
      const table = await readTable(options.data);
      say(`${table.rowCount} rows, ${table.columns.length} columns`);
      const dataSha256 = await sha256File(options.data);
      const outcome = await withWorkspace(options, (ws) =>
        runTrainingJob(ws.metadata, ws.registry, {
          table,
          target: options.target,
          model: options.name,
          ...(task ? { task } : {}),
          seed,
          drop: options.drop
            ? options.drop
                .split(',')
                .map((s) => s.trim())
                .filter(Boolean)
            : [],
          lineage: { data: path.resolve(options.data), dataSha256 },
          onProgress: say,
        }),
      );
      const { result, version, promoted, run } = outcome;
      if (options.json) {
        printJson({
          model: options.name,
          version: version.version,
          champion: promoted,
          run: run.id,
          task: result.signature.task,
          best: result.best,
          metrics: result.metrics,
          candidates: result.candidates,
        });
        return;
      }
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
        `\nRegistered ${options.name} version ${version.version} (${result.best}, ${result.signature.task})` +
          `${promoted ? "; alias 'champion' points to it" : ''}. Run ${run.id}.\n`,
      );
    });
}

function parseTask(task: string | undefined): Task | undefined {
  if (task === undefined) return undefined;
  if (task === 'classification' || task === 'regression') return task;
  throw argumentError(`--task must be 'classification' or 'regression', got '${task}'`);
}

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
