/**
 * `ferry ingest <feature_set>`: batch ingestion into the offline and online stores. Prints where
 * every row read went (filtered, quarantined by rule, duplicates, written) and the rule set's
 * report when it has failing rules; a stopped run (policy fail) prints the report, then the error.
 */
import type { Command } from 'commander';
import { formatReport, type ValidationReport } from '../data/validate/report.js';
import { isFerryError } from '../errors/index.js';
import type { IngestResult } from '../feature-store/feature-store.js';
import { withWorkspace, type GlobalOptions } from './context.js';
import { printJson, progress } from './output.js';

interface IngestOptions extends GlobalOptions {
  readonly source?: string;
}

/** Rejected rows printed before "use --json for all". */
const SHOWN = 10;

export function registerIngest(program: Command): void {
  program
    .command('ingest')
    .description(
      "read a feature set's source, apply its steps and rules, append new events offline and update the online store",
    )
    .argument('<feature_set>', 'feature set name from ferry.yaml')
    .option('--source <file>', "a file to ingest instead of the feature set's configured source")
    .option('--json', 'machine-readable output')
    .action(async (name: string, _o: unknown, command: Command) => {
      const options = command.optsWithGlobals<IngestOptions>();
      let result: IngestResult;
      try {
        result = await withWorkspace(options, (ws) =>
          ws.features.ingest(name, {
            ...(options.source ? { source: options.source } : {}),
            onProgress: progress(options),
          }),
        );
      } catch (error) {
        // The report of a stopped run belongs on stdout; the coded error follows on stderr.
        const report = isFerryError(error) ? error.details?.report : undefined;
        if (report !== undefined) {
          if (options.json) printJson(report);
          else process.stdout.write(formatReport(report as ValidationReport));
        }
        throw error;
      }
      if (options.json) return printJson(result);
      process.stdout.write(formatIngestResult(name, result));
    });
}

/**
 * The ingestion summary for people: the counts, the quarantined rows by rule with a few
 * examples, and the rule set's report when a rule failed.
 * @example process.stdout.write(formatIngestResult('transactions', result));
 */
export function formatIngestResult(name: string, result: IngestResult): string {
  const quarantined = result.rejected.length;
  const lines = [
    `Ingested '${name}': ${result.read} rows read, ${result.filtered} filtered, ${quarantined} quarantined, ` +
      `${result.duplicates} duplicates, ${result.written} new events written`,
  ];
  const byRule = Object.entries(result.quarantined).sort((a, b) => b[1] - a[1]);
  if (byRule.length > 0) {
    lines.push(`Quarantined by rule: ${byRule.map(([rule, n]) => `${rule} ${n}`).join(', ')}`);
    for (const r of result.rejected.slice(0, SHOWN))
      lines.push(`  row ${r.row} (${r.rule}): ${r.reason}`);
    if (quarantined > SHOWN)
      lines.push(`  ... and ${quarantined - SHOWN} more (use --json for all)`);
    lines.push(`See them with: ferry data quarantine show ${name}`);
  }
  const validation = result.validation;
  if (validation !== null && validation.outcome !== 'passed')
    lines.push('', formatReport(validation).trimEnd());
  return lines.join('\n') + '\n';
}
