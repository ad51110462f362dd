/**
 * `ferry dataset build <feature_vector>`: a point-in-time-correct training set, registered as a
 * dataset (id, vector version, label source and hash, profile) that models trained on it cite.
 */
import type { Command } from 'commander';
import { withWorkspace, type GlobalOptions } from './context.js';
import { printJson, progress } from './output.js';

interface BuildOptions extends GlobalOptions {
  readonly labels?: string;
  readonly out?: string;
}

export function registerDataset(program: Command): void {
  const dataset = program
    .command('dataset')
    .description('training sets built from feature vectors');
  dataset
    .command('build')
    .description("join a feature vector's label rows to features as of each label's time")
    .argument('<feature_vector>', 'feature vector name from ferry.yaml')
    .option(
      '--labels <file>',
      "label rows (entity key, timestamp, label) instead of the vector's label source",
    )
    .option('--out <file>', 'write the training set to this .parquet or .csv file')
    .option('--json', 'machine-readable output')
    .action(async (name: string, _o: unknown, command: Command) => {
      const options = command.optsWithGlobals<BuildOptions>();
      progress(options)(`Building a point-in-time training set from '${name}'...`);
      const { table, dataset } = await withWorkspace(options, (ws) =>
        ws.features.buildDataset(name, {
          ...(options.labels ? { labels: options.labels } : {}),
          ...(options.out ? { out: options.out } : {}),
        }),
      );
      const summary = {
        dataset,
        vector: name,
        rows: table.rowCount,
        columns: table.columns.map((c) => c.name),
        out: options.out ?? null,
      };
      if (options.json) return printJson(summary);
      process.stdout.write(
        `Built ${table.rowCount} rows with columns ${summary.columns.join(', ')}${options.out ? ` into ${options.out}` : ''}\n` +
          (dataset === null ? '' : `Registered dataset ${dataset}\n`),
      );
    });
}
