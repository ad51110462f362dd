/**
 * The quarantine: rows set aside by validation (and by feature-set ingestion) with the reason,
 * kept in the offline store as `quarantine/<name>`, one format for every writer:
 *
 * | column | type | meaning |
 * | --- | --- | --- |
 * | quarantined_at | timestamp | when the row was set aside (UTC ms) |
 * | source | string | the file or stream the row came from |
 * | row | int | 1-based row number in the source (the header not counted) |
 * | reason | string | why, naming the value |
 * | record | string | the row as JSON (timestamps as UTC ms) |
 * | rule | string | the rule that failed, e.g. `range(amount)`, or `entity_key`, `timestamp`, `type(<feature>)` for ingestion rejects (null in files written before 0.1) |
 * | run_id | string | the validation or ingestion run |
 *
 * `rule` and `run_id` came after the first three writers; the offline store reads a column a
 * file lacks as null, so older rows and newer rows share one table.
 */
import type { Row, Scalar, Table } from '../../core/table.js';
import { FerryError } from '../../errors/index.js';
import type { OfflineStore } from '../../feature-store/offline/offline-store.js';

export const QUARANTINE_PREFIX = 'quarantine/';
const NAME = /^[a-z0-9_]+$/;

/** A failing row on its way to the quarantine. */
export interface QuarantineRow {
  readonly row: number;
  /** The failing rule's name, e.g. `range(amount)`. */
  readonly rule: string;
  readonly reason: string;
  readonly values: Row;
}

/** Where a run's failing rows go. */
export interface QuarantineTarget {
  readonly offline: OfflineStore;
  /** The quarantine's name: rows go to `quarantine/<name>` (lower-case letters, digits, _). */
  readonly name: string;
  /** The file or stream the rows came from, recorded with each row. */
  readonly source: string;
}

/** A quarantined row as read back. */
export interface QuarantineEntry {
  readonly quarantinedAt: number;
  readonly source: string;
  readonly row: number;
  readonly rule: string | null;
  readonly reason: string;
  readonly runId: string | null;
  /** The row's values (the raw text when the record is not a JSON object). */
  readonly record: Row | string;
}

export interface QuarantineSummary {
  readonly name: string;
  /** The offline table, `quarantine/<name>`. */
  readonly table: string;
  readonly rows: number;
  /** The newest row's quarantine time (UTC ms). */
  readonly newest: number | null;
}

/**
 * The offline table of a quarantine name (`quarantine/<name>` given as either).
 * @example quarantineTableName('transactions') // 'quarantine/transactions'
 */
export function quarantineTableName(name: string): string {
  const bare = name.startsWith(QUARANTINE_PREFIX) ? name.slice(QUARANTINE_PREFIX.length) : name;
  if (!NAME.test(bare)) {
    throw new FerryError(
      'FERRY_ARGUMENT_INVALID',
      `'${name}' is not a quarantine name; use lower-case letters, digits and _ (see \`ferry data quarantine list\`)`,
    );
  }
  return `${QUARANTINE_PREFIX}${bare}`;
}

/**
 * Appends failing rows to `quarantine/<name>`; resolves once they are durable.
 * @example await writeQuarantine(target, failures, { runId, at: Date.now() });
 */
export async function writeQuarantine(
  target: QuarantineTarget,
  rows: readonly QuarantineRow[],
  run: { readonly runId: string; readonly at: number },
): Promise<void> {
  if (rows.length === 0) return;
  const table: Table = {
    columns: [
      { name: 'quarantined_at', type: 'timestamp', values: rows.map(() => run.at) },
      { name: 'source', type: 'string', values: rows.map(() => target.source) },
      { name: 'row', type: 'int', values: rows.map((r) => r.row) },
      { name: 'reason', type: 'string', values: rows.map((r) => r.reason) },
      { name: 'record', type: 'string', values: rows.map((r) => JSON.stringify(r.values)) },
      { name: 'rule', type: 'string', values: rows.map((r) => r.rule) },
      { name: 'run_id', type: 'string', values: rows.map(() => run.runId) },
    ],
    rowCount: rows.length,
  };
  await target.offline.append(quarantineTableName(target.name), table);
}

/**
 * Every quarantine with its row count and newest time, by name.
 * @example for (const q of await listQuarantine(ws.offline)) console.log(q.name, q.rows);
 */
export async function listQuarantine(offline: OfflineStore): Promise<QuarantineSummary[]> {
  const tables = (await offline.listTables()).filter(
    (t) => t.startsWith(QUARANTINE_PREFIX) && NAME.test(t.slice(QUARANTINE_PREFIX.length)),
  );
  const summaries: QuarantineSummary[] = [];
  for (const table of tables.sort()) {
    const result = await offline.query(
      `SELECT count(*) AS n, max(quarantined_at) AS newest FROM {{${table}}}`,
    );
    const newest = result.columns[1]?.values[0] ?? null;
    summaries.push({
      name: table.slice(QUARANTINE_PREFIX.length),
      table,
      rows: Number(result.columns[0]?.values[0] ?? 0),
      newest: typeof newest === 'number' ? newest : null,
    });
  }
  return summaries;
}

/**
 * The newest quarantined rows of one quarantine (newest first, then by row number).
 * @example const entries = await readQuarantine(ws.offline, 'transactions', { limit: 20 });
 */
export async function readQuarantine(
  offline: OfflineStore,
  name: string,
  options: { readonly limit?: number } = {},
): Promise<QuarantineEntry[]> {
  const table = quarantineTableName(name);
  const limit = options.limit ?? 20;
  if (!Number.isInteger(limit) || limit < 1) {
    throw new FerryError(
      'FERRY_ARGUMENT_INVALID',
      `limit must be a positive integer, got ${limit}`,
    );
  }
  if (!(await offline.hasTable(table))) {
    const names = (await listQuarantine(offline)).map((q) => q.name);
    throw new FerryError(
      'FERRY_ARGUMENT_INVALID',
      `there is no quarantine '${table.slice(QUARANTINE_PREFIX.length)}'; quarantines: ${names.join(', ') || '(none)'}`,
    );
  }
  const result = await offline.query(
    `SELECT * FROM {{${table}}} ORDER BY quarantined_at DESC, "row" ASC LIMIT ${limit}`,
  );
  const column = (n: string): readonly Scalar[] =>
    result.columns.find((c) => c.name === n)?.values ?? [];
  const [at, source, row, rule, reason, runId, record] = [
    'quarantined_at',
    'source',
    'row',
    'rule',
    'reason',
    'run_id',
    'record',
  ].map(column) as [Scalar[], Scalar[], Scalar[], Scalar[], Scalar[], Scalar[], Scalar[]];
  const entries: QuarantineEntry[] = [];
  for (let i = 0; i < result.rowCount; i++) {
    entries.push({
      quarantinedAt: Number(at[i] ?? 0),
      source: String(source[i] ?? ''),
      row: Number(row[i] ?? 0),
      rule: rule[i] === null || rule[i] === undefined ? null : String(rule[i]),
      reason: String(reason[i] ?? ''),
      runId: runId[i] === null || runId[i] === undefined ? null : String(runId[i]),
      record: parseRecord(String(record[i] ?? '')),
    });
  }
  return entries;
}

function parseRecord(text: string): Row | string {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Row)
      : text;
  } catch {
    return text;
  }
}
