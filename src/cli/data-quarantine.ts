/** `ferry data quarantine list|show <name>`: the rows validation and ingestion set aside, and why. */
import type { Command } from 'commander';
import { listQuarantine, readQuarantine } from '../data/validate/quarantine.js';
import { withWorkspace, type GlobalOptions } from './context.js';
import { argumentError, printJson, printTable } from './output.js';

interface ShowOptions extends GlobalOptions {
  readonly limit: string;
}

const RECORD_WIDTH = 60;

export function registerDataQuarantine(data: Command): void {
  const quarantine = data
    .command('quarantine')
    .description('rows set aside by validation or ingestion, with their reasons');

  quarantine
    .command('list')
    .description('every quarantine with its row count and newest row')
    .option('--json', 'machine-readable output')
    .action(async (_o: unknown, command: Command) => {
      const options = command.optsWithGlobals<GlobalOptions>();
      const summaries = await withWorkspace(options, (ws) => listQuarantine(ws.offline));
      if (options.json) return printJson(summaries);
      if (summaries.length === 0) {
        process.stdout.write('No quarantined rows.\n');
        return;
      }
      printTable(
        ['name', 'rows', 'newest', 'table'],
        summaries.map((s) => [
          s.name,
          s.rows,
          s.newest === null ? null : new Date(s.newest).toISOString(),
          s.table,
        ]),
      );
    });

  quarantine
    .command('show')
    .description('the newest rows of one quarantine: row number, rule, reason and values')
    .argument('<name>', 'quarantine name (a rule set or feature set), as `list` shows it')
    .option('--limit <n>', 'rows to show', '20')
    .option('--json', 'machine-readable output')
    .action(async (name: string, _o: unknown, command: Command) => {
      const options = command.optsWithGlobals<ShowOptions>();
      const limit = Number(options.limit);
      if (!Number.isInteger(limit) || limit < 1) {
        throw argumentError(`--limit must be a positive integer, got '${options.limit}'`);
      }
      const entries = await withWorkspace(options, (ws) =>
        readQuarantine(ws.offline, name, { limit }),
      );
      if (options.json) return printJson(entries);
      printTable(
        ['quarantined at', 'source', 'row', 'rule', 'reason', 'record'],
        entries.map((e) => {
          const record = typeof e.record === 'string' ? e.record : JSON.stringify(e.record);
          return [
            new Date(e.quarantinedAt).toISOString(),
            e.source,
            e.row,
            e.rule,
            e.reason,
            record.length > RECORD_WIDTH ? `${record.slice(0, RECORD_WIDTH - 3)}...` : record,
          ];
        }),
      );
    });
}
