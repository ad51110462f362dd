/** `ferry runs list|show`: training runs from the terminal, with their leaderboards. */
import type { Command } from 'commander';
import type { JsonObject, JsonValue } from '../core/json.js';
import { FerryError } from '../errors/index.js';
import type { Run } from '../metadata/metadata-store.js';
import { withWorkspace, type GlobalOptions } from './context.js';
import { argumentError, formatCell, printJson, printTable } from './output.js';
import { printLeaderboard } from './train.js';

interface ListOptions extends GlobalOptions {
  readonly limit: string;
  readonly kind?: string;
  readonly json?: boolean;
}

export function registerRuns(program: Command): void {
  const runs = program.command('runs').description('list and inspect training runs');

  runs
    .command('list')
    .description('runs, newest first: status, model, best candidate, selection metric')
    .option('--limit <n>', 'at most this many runs', '20')
    .option('--kind <kind>', 'only runs of this kind (training)')
    .option('--json', 'machine-readable output')
    .action(async (_o: unknown, command: Command) => {
      const options = command.optsWithGlobals<ListOptions>();
      const limit = Number(options.limit);
      if (!Number.isInteger(limit) || limit < 1) {
        throw argumentError(`--limit must be a positive whole number, got '${options.limit}'`);
      }
      const list = await withWorkspace(options, (ws) =>
        ws.metadata.listRuns({ limit, ...(options.kind ? { kind: options.kind } : {}) }),
      );
      if (options.json) return printJson(list);
      if (list.length === 0) {
        process.stdout.write(
          'No runs yet. Train a model with: ferry train --data <file> --target <column> --name <model>\n',
        );
        return;
      }
      printTable(
        ['run', 'kind', 'name', 'status', 'started', 'seconds', 'best', 'metric', 'version'],
        list.map((r) => {
          const metric = selectionMetric(r);
          return [
            r.id,
            r.kind,
            r.name,
            r.status,
            new Date(r.startedAt),
            r.endedAt === null ? null : (r.endedAt - r.startedAt) / 1000,
            text(r.outputs.best),
            metric === null ? null : `${metric}=${formatCell(r.metrics[metric])}`,
            text(r.outputs.version),
          ];
        }),
      );
    });

  runs
    .command('show')
    .description('one run: parameters, metrics, validation, test score and the leaderboard')
    .argument('<run>', 'run id (from ferry runs list)')
    .option('--json', 'machine-readable output')
    .action(async (id: string, _o: unknown, command: Command) => {
      const options = command.optsWithGlobals<GlobalOptions & { json?: boolean }>();
      const run = await withWorkspace(options, (ws) => ws.metadata.getRun(id));
      if (run === undefined) {
        throw new FerryError(
          'FERRY_RUN_NOT_FOUND',
          `run '${id}' does not exist; list runs with: ferry runs list`,
        );
      }
      if (options.json) return printJson(run);
      printRun(run);
    });
}

function text(value: JsonValue | undefined): string | null {
  return value === undefined || value === null ? null : String(value);
}

function selectionMetric(run: Run): string | null {
  const search = run.outputs.search;
  if (search !== null && typeof search === 'object' && !Array.isArray(search)) {
    const metric = (search as JsonObject).metric;
    if (typeof metric === 'string') return metric;
  }
  return null;
}

function printRun(run: Run): void {
  const seconds = run.endedAt === null ? null : (run.endedAt - run.startedAt) / 1000;
  process.stdout.write(
    `Run ${run.id} (${run.kind} of ${run.name}): ${run.status}\n` +
      `Started ${new Date(run.startedAt).toISOString()}` +
      (seconds === null ? '' : `, took ${formatCell(seconds)} s`) +
      '\n',
  );
  const outputs = run.outputs;
  if (outputs.model !== undefined) {
    process.stdout.write(
      `Registered ${text(outputs.model)} version ${text(outputs.version)} (${text(outputs.best)})\n`,
    );
  }
  if (typeof outputs.error === 'string') process.stdout.write(`Error: ${outputs.error}\n`);
  process.stdout.write(
    `\nParameters: ${Object.entries(run.params)
      .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
      .join(' ')}\n`,
  );
  const metrics = Object.entries(run.metrics);
  if (metrics.length > 0) {
    process.stdout.write(
      `Metrics: ${metrics.map(([k, v]) => `${k}=${formatCell(v)}`).join(' ')}\n`,
    );
  }
  for (const key of ['validation', 'search', 'test'] as const) {
    const value = outputs[key];
    if (value !== undefined && value !== null) {
      process.stdout.write(`${key[0]?.toUpperCase()}${key.slice(1)}: ${JSON.stringify(value)}\n`);
    }
  }
  printConfusion(outputs.confusion_matrix);
  const leaderboard = outputs.leaderboard;
  if (Array.isArray(leaderboard) && leaderboard.length > 0) {
    process.stdout.write(`\nLeaderboard (${leaderboard.length} candidates):\n`);
    printLeaderboard(
      leaderboard.map((e) => {
        const entry = (e ?? {}) as JsonObject;
        const metricsOf = (entry.metrics ?? {}) as Record<string, number | null>;
        return {
          name: String(entry.name),
          metrics: metricsOf,
          seconds: typeof entry.seconds === 'number' ? entry.seconds : NaN,
          ...(typeof entry.rowFraction === 'number' ? { rowFraction: entry.rowFraction } : {}),
          ...(typeof entry.error === 'string' ? { error: entry.error } : {}),
        };
      }),
      text(outputs.best) ?? '',
    );
    process.stdout.write('\nParameters of each candidate:\n');
    for (const e of leaderboard) {
      const entry = (e ?? {}) as JsonObject;
      process.stdout.write(`  ${String(entry.name)}: ${JSON.stringify(entry.params ?? {})}\n`);
    }
  }
}

/** The test split's confusion matrix, rows the actual class, columns the predicted one. */
function printConfusion(value: JsonValue | undefined): void {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return;
  const { classes, counts } = value as { classes?: JsonValue; counts?: JsonValue };
  if (!Array.isArray(classes) || !Array.isArray(counts)) return;
  const names = classes.map((c) => String(c));
  const width = Math.max(
    6,
    ...names.map((n) => n.length),
    ...counts.flat().map((n) => String(n).length),
  );
  const cell = (t: string): string => t.padStart(width);
  process.stdout.write(
    '\nConfusion matrix on the test split (rows: actual, columns: predicted):\n',
  );
  process.stdout.write(`  ${cell('')} ${names.map(cell).join(' ')}\n`);
  counts.forEach((row, i) => {
    const cells = Array.isArray(row) ? row.map((n) => cell(String(n))) : [];
    process.stdout.write(`  ${cell(names[i] ?? '?')} ${cells.join(' ')}\n`);
  });
}
