/** `ferry ingest <feature_set>`: batch ingestion into the offline and online stores. */
import type { Command } from 'commander';
import { withWorkspace, type GlobalOptions } from './context.js';
import { printJson, progress } from './output.js';

interface IngestOptions extends GlobalOptions {
  readonly source?: string;
}

export function registerIngest(program: Command): void {
  program
    .command('ingest')
    .description(
      "read a feature set's source, append new events offline and update the online store",
    )
    .argument('<feature_set>', 'feature set name from ferry.yaml')
    .option('--source <file>', "a file to ingest instead of the feature set's configured source")
    .option('--json', 'machine-readable output')
    .action(async (name: string, _o: unknown, command: Command) => {
      const options = command.optsWithGlobals<IngestOptions>();
      const result = await withWorkspace(options, (ws) =>
        ws.features.ingest(name, {
          ...(options.source ? { source: options.source } : {}),
          onProgress: progress(options),
        }),
      );
      if (options.json) return printJson(result);
      process.stdout.write(
        `Ingested ${result.rows} new events into '${name}' (${result.duplicates} already present, ${result.rejected.length} rejected)\n`,
      );
      for (const r of result.rejected.slice(0, 10))
        process.stdout.write(`  rejected row ${r.row}: ${r.reason}\n`);
      if (result.rejected.length > 10)
        process.stdout.write(
          `  ... and ${result.rejected.length - 10} more (use --json for all)\n`,
        );
    });
}
