/**
 * Validation of a relation in DuckDB, for batch work on files of any size: one pass writes the
 * rows, in row order, with each row's failing rules and, by a CASE in rule order, its first
 * failing rule, to a Parquet file on disk (not a table in memory); aggregates over it give the
 * counts and table-level measures; only the examples (at most 5 per rule) and the rows being
 * quarantined (in pages) come into JavaScript, so memory does not grow with the table.
 *
 * The rules mean what `rules.ts` says, exactly as the rows path (`rows.ts`) checks them; the
 * reasons are worded by the same TypeScript from the same values, so the two paths give the
 * same failing rows and reasons (`parity.test.ts`).
 *
 * Rows are numbered by `rowColumn` when given, else by the hidden `__ferry_row` column of a
 * recipe's relation (`src/data/prep/relation.ts`) when there is one, else 1, 2, ... in the
 * relation's order (DuckDB keeps a scan's order). Columns beyond the schema (a recipe's hidden
 * columns) pass through to the output untouched.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import type { ValidationSpec } from '../../config/data-schema.js';
import type { ColumnProfile } from '../../core/profile.js';
import { tableToRows, type ColumnSchema, type ColumnType, type Row } from '../../core/table.js';
import { FerryError } from '../../errors/index.js';
import { quoteIdent, quoteString, resultToTable } from '../duckdb.js';
import { convertsToSql } from './convert.js';
import { expressionSql } from './expression.js';
import { quarantineTableName, writeQuarantine, type QuarantineTarget } from './quarantine.js';
import {
  buildReport,
  MAX_EXAMPLES,
  validationError,
  withQuarantine,
  type RowRuleOutcome,
  type ValidationReport,
} from './report.js';
import {
  prepareRules,
  reasonOf,
  tableOutcome,
  type PrepareOptions,
  type PreparedRowRule,
  type PreparedRuleSet,
  type TableRuleOutcome,
} from './rules.js';

/** A query and the Ferry types of its columns, in order. */
export interface Relation {
  readonly sql: string;
  readonly schema: readonly ColumnSchema[];
}

export interface ValidateRelationOptions extends PrepareOptions {
  /**
   * A column of the relation holding each row's 1-based source row number (unique); by default
   * the hidden `__ferry_row` of a recipe's relation, else the relation's order.
   */
  readonly rowColumn?: string;
  /**
   * Where failing rows go under policy `quarantine`; required when rows fail under that policy,
   * since they must not vanish with the connection's temporary table.
   */
  readonly quarantine?: QuarantineTarget;
  /** Identifies the run in the report and the quarantine (default: a new UUID). */
  readonly runId?: string;
  /** The check's time, UTC ms (default: now). */
  readonly now?: number;
  /**
   * A folder for the flagged rows' Parquet file, which the output reads; the caller removes it.
   * By default a temporary folder that {@link RelationValidation.release} removes.
   */
  readonly stageDir?: string;
}

export interface RelationValidation {
  readonly report: ValidationReport;
  /**
   * The rows that continue, in row order, with the relation's columns: the passing rows under
   * `quarantine`, every row otherwise. It reads a Parquet file that lives until
   * {@link RelationValidation.release} (or, with `stageDir`, until the caller removes that folder).
   */
  readonly output: Relation;
  release(): Promise<void>;
}

/** Rows per quarantine append: bounds memory, and keeps files from being tiny. */
const QUARANTINE_PAGE = 50_000;
/** Prefix of validation's own columns (the prep chain's hidden columns use `__ferry_`). */
const INTERNAL = '__ferry_v_';
/** The hidden source-row column of a recipe's relation (`ROW` in `src/data/prep/relation.ts`). */
const SOURCE_ROW = '__ferry_row';
const ROW = `${INTERNAL}row`;
const RULE = `${INTERNAL}rule`;
const flag = (r: number): string => `${INTERNAL}f${r}`;
const first = (r: number): string => `${INTERNAL}first${r}`;

/**
 * Validates a relation with a rule set and applies its policy: `fail` throws
 * FERRY_VALIDATION_FAILED (with `details.report`) and writes nothing; `quarantine` writes failing
 * rows to the quarantine and outputs the rest; `warn` outputs every row. See `actionOf` in
 * `rules.ts` for table-level rules under `quarantine`.
 * @example
 * await withDuckDB(async (con) => {
 *   const relation = { sql: "SELECT * FROM read_csv('tx.csv')", schema };
 *   const { report, output, release } = await validateRelation(con, relation, spec, { quarantine });
 *   await con.run(`COPY (${output.sql}) TO 'clean.parquet'`);
 *   await release();
 * });
 */
export async function validateRelation(
  connection: DuckDBConnection,
  relation: Relation,
  ruleSet: ValidationSpec,
  options: ValidateRelationOptions = {},
): Promise<RelationValidation> {
  const prepared = await prepareRules(ruleSet, relation.schema, options);
  const columns = await columnsOf(connection, relation.sql);
  const clash = columns.find((c) => c.startsWith(INTERNAL));
  if (clash !== undefined) {
    throw new FerryError(
      'FERRY_ARGUMENT_INVALID',
      `column '${clash}' uses the prefix ${INTERNAL}, which validation keeps for itself; rename it`,
    );
  }
  if (options.rowColumn !== undefined && !columns.includes(options.rowColumn)) {
    throw new FerryError(
      'FERRY_COLUMN_UNKNOWN',
      `row column '${options.rowColumn}' is not in the relation; columns: ${columns.join(', ')}`,
    );
  }
  const rowColumn = options.rowColumn ?? (columns.includes(SOURCE_ROW) ? SOURCE_ROW : undefined);
  const owned = options.stageDir === undefined;
  const dir = options.stageDir ?? mkdtempSync(path.join(os.tmpdir(), 'ferry-validate-'));
  const file = path.join(dir, `validate-${randomBytes(8).toString('hex')}.parquet`);
  // A scan of one Parquet file keeps the file's order, which is row order.
  const ref = `read_parquet(${quoteString(file)})`;
  const release = async (): Promise<void> => {
    rmSync(owned ? dir : file, { recursive: true, force: true });
  };
  try {
    await connection.run(
      `COPY (${flaggedSql(prepared, relation, rowColumn)}) TO ${quoteString(file)} (FORMAT parquet)`,
    );
    let report = await measure(connection, ref, prepared, {
      runId: options.runId ?? randomUUID(),
      now: options.now ?? Date.now(),
    });
    if (report.outcome === 'failed') throw validationError(report);
    let where = '';
    if (report.outcome === 'quarantined') {
      if (options.quarantine === undefined) {
        throw new FerryError(
          'FERRY_ARGUMENT_INVALID',
          `rule set '${prepared.name}' quarantines ${report.rows.failed} rows, but no quarantine was given to keep them; pass options.quarantine`,
        );
      }
      const written = await quarantineRows(
        connection,
        ref,
        prepared,
        relation.schema,
        options.quarantine,
        report,
      );
      report = withQuarantine(report, quarantineTableName(options.quarantine.name), written);
      where = ` WHERE ${RULE} IS NULL`;
    }
    return {
      report,
      output: {
        sql: `SELECT * EXCLUDE (${internalColumns(prepared).join(', ')}) FROM ${ref}${where}`,
        schema: relation.schema,
      },
      release,
    };
  } catch (error) {
    await release().catch(() => undefined);
    throw error;
  }
}

/** Every column the query yields, hidden ones included. */
async function columnsOf(connection: DuckDBConnection, sql: string): Promise<string[]> {
  const prepared = await connection.prepare(`SELECT * FROM (${sql}) ${INTERNAL}probe`);
  try {
    const names: string[] = [];
    for (let i = 0; i < prepared.columnCount; i++) names.push(prepared.columnName(i));
    return names;
  } finally {
    prepared.destroySync();
  }
}

/** The columns validation adds to the materialised table. */
function internalColumns(prepared: PreparedRuleSet): string[] {
  return [
    ROW,
    RULE,
    ...prepared.rowRules.flatMap((rule, r) =>
      rule.kind === 'unique' ? [flag(r), first(r)] : [flag(r)],
    ),
  ];
}

/**
 * The query written to the Parquet file: the relation with row numbers, per-rule failure flags
 * and the first failing rule, in row order. A `unique` rule's first row per key comes from an
 * aggregate of the keys seen more than once, joined back: unlike a window over the whole rows, it
 * holds only keys in memory.
 */
function flaggedSql(
  prepared: PreparedRuleSet,
  relation: Relation,
  rowColumn: string | undefined,
): string {
  const { rowRules } = prepared;
  const numbered = rowColumn
    ? `SELECT *, CAST(${quoteIdent(rowColumn)} AS BIGINT) AS ${ROW} FROM (${relation.sql}) ${INTERNAL}src`
    : `SELECT *, row_number() OVER () AS ${ROW} FROM (${relation.sql}) ${INTERNAL}src`;
  const uniques = rowRules.flatMap((rule, r) => (rule.kind === 'unique' ? [{ rule, r }] : []));
  let windowed = numbered;
  if (uniques.length > 0) {
    const firsts = uniques.map(({ rule, r }) => {
      const keys = rule.columns.map((c) => quoteIdent(c.name));
      const alias = `${INTERNAL}u${r}`;
      const on = keys.map((k) => `${INTERNAL}numbered.${k} = ${alias}.${k}`).join(' AND ');
      return {
        select: `${alias}.${first(r)}`,
        join:
          `LEFT JOIN (SELECT ${keys.join(', ')}, min(${ROW}) AS ${first(r)} FROM ${INTERNAL}numbered ` +
          `GROUP BY ${keys.join(', ')} HAVING count(*) > 1) ${alias} ON ${on}`,
      };
    });
    windowed =
      `SELECT ${INTERNAL}numbered.*, ${firsts.map((f) => f.select).join(', ')} ` +
      `FROM ${INTERNAL}numbered ${firsts.map((f) => f.join).join(' ')}`;
    // Row numbers from a column are the same however often the relation is read, so it is read
    // twice rather than held in memory; numbers made by row_number() are made once.
    const kept = rowColumn ? 'NOT MATERIALIZED' : 'MATERIALIZED';
    windowed = `WITH ${INTERNAL}numbered AS ${kept} (${numbered}) ${windowed}`;
  }
  const flags = rowRules.map(
    (rule, r) => `coalesce(${failsSql(rule, r, prepared.schema)}, FALSE) AS ${flag(r)}`,
  );
  const flagged = flags.length
    ? `SELECT *, ${flags.join(', ')} FROM (${windowed}) ${INTERNAL}windowed`
    : windowed;
  const firstFailing = rowRules.length
    ? `CASE ${rowRules.map((_, r) => `WHEN ${flag(r)} THEN ${r}`).join(' ')} END`
    : 'NULL';
  return `SELECT *, CAST(${firstFailing} AS INTEGER) AS ${RULE} FROM (${flagged}) ${INTERNAL}flagged ORDER BY ${ROW}`;
}

/** SQL true when the row fails the rule (null is read as false by the caller). */
function failsSql(rule: PreparedRowRule, r: number, schema: readonly ColumnSchema[]): string {
  if (rule.kind === 'unique') {
    const present = rule.columns.map((c) => `${quoteIdent(c.name)} IS NOT NULL`).join(' AND ');
    return `(${present} AND ${ROW} > ${first(r)})`;
  }
  if (rule.kind === 'expression') {
    return `((${expressionSql(rule.check, schema)}) IS NOT TRUE)`;
  }
  const c = quoteIdent(rule.column.name);
  if (rule.kind === 'not_null') return `(${c} IS NULL)`;
  const v = numericSql(c, rule.column.type);
  switch (rule.kind) {
    case 'range': {
      const out = [`isnan(${v})`];
      if (rule.min !== undefined) out.push(`${v} < ${doubleSql(rule.min)}`);
      if (rule.max !== undefined) out.push(`${v} > ${doubleSql(rule.max)}`);
      return `(${c} IS NOT NULL AND (${out.join(' OR ')}))`;
    }
    case 'allowed': {
      const type = rule.column.type;
      const [subject, values] =
        type === 'string'
          ? [`CAST(${c} AS VARCHAR)`, rule.values.map((x) => quoteString(String(x)))]
          : type === 'bool'
            ? [c, rule.values.map((x) => (x === true ? 'TRUE' : 'FALSE'))]
            : [v, rule.values.map((x) => doubleSql(x as number))];
      return `(${c} IS NOT NULL AND ${subject} NOT IN (${values.join(', ')}))`;
    }
    case 'pattern':
      return `(${c} IS NOT NULL AND NOT regexp_full_match(CAST(${c} AS VARCHAR), ${quoteString(rule.pattern.source)}))`;
    case 'type':
      return `NOT ${convertsToSql(c, rule.column.type, rule.type, v)}`;
  }
}

/** An exact double literal: JavaScript's shortest round-trip text, parsed by DuckDB. */
function doubleSql(n: number): string {
  return `CAST('${String(n)}' AS DOUBLE)`;
}

/**
 * A column's numbers as the rows path sees them (`resultToTable`): int and float as doubles,
 * timestamps as UTC milliseconds (±infinity kept), booleans as 0/1, text as null.
 */
function numericSql(c: string, type: ColumnType): string {
  switch (type) {
    case 'int':
    case 'float':
    case 'bool':
      return `CAST(${c} AS DOUBLE)`;
    case 'timestamp':
      return `(CASE WHEN isinf(${c}) THEN (CASE WHEN ${c} > 'epoch' THEN 'inf'::DOUBLE ELSE '-inf'::DOUBLE END) ELSE CAST(epoch_us(${c}) AS DOUBLE) / 1000 END)`;
    case 'string':
      return 'CAST(NULL AS DOUBLE)';
  }
}

/**
 * A column's values as the categories `categoricalValue` makes of them (`String(value)`).
 * Known gap: a fractional float below 1e-6 prints as `1e-07` in DuckDB and `1e-7` in JavaScript;
 * only a categorical reference for a float column (rare: floats profile as numeric) meets it.
 */
function categorySql(c: string, type: ColumnType): string {
  switch (type) {
    case 'string':
    case 'int':
      return `CAST(${c} AS VARCHAR)`;
    case 'bool':
      return `(CASE WHEN ${c} THEN 'true' WHEN NOT ${c} THEN 'false' END)`;
    case 'float':
    case 'timestamp': {
      const v = numericSql(c, type);
      return `(CASE WHEN isnan(${v}) THEN NULL WHEN ${v} = 'inf'::DOUBLE THEN 'Infinity' WHEN ${v} = '-inf'::DOUBLE THEN '-Infinity' WHEN ${v} = trunc(${v}) AND abs(${v}) < 1e21 THEN CAST(CAST(${v} AS HUGEINT) AS VARCHAR) ELSE CAST(${v} AS VARCHAR) END)`;
    }
  }
}

/** The bucket of each value, numbered as `actualCounts` in `reference.ts` numbers them. */
function bucketSql(c: string, type: ColumnType, profile: ColumnProfile): string {
  if (profile.kind === 'numeric') {
    const bins = profile.histogram.counts.length;
    if (bins === 0) return '0';
    const v = numericSql(c, type);
    const interior = profile.histogram.edges.slice(1, -1);
    const index = interior.length
      ? interior.map((e) => `CAST(${v} >= ${doubleSql(e)} AS INTEGER)`).join(' + ')
      : '0';
    return `(CASE WHEN ${v} IS NULL OR NOT isfinite(${v}) THEN ${bins} ELSE ${index} END)`;
  }
  const other = profile.top.length;
  const cv = categorySql(c, type);
  const cases = profile.top
    .map((t, i) => `WHEN ${cv} = ${quoteString(t.value)} THEN ${i}`)
    .join(' ');
  return `(CASE WHEN ${cv} IS NULL THEN ${other + 1} ${cases} ELSE ${other} END)`;
}

/** Counts, table-level measures and examples: everything of the report but the quarantine. */
async function measure(
  connection: DuckDBConnection,
  ref: string,
  prepared: PreparedRuleSet,
  run: { runId: string; now: number },
): Promise<ValidationReport> {
  const { rowRules, tableRules } = prepared;
  const aggregates = [
    'count(*) AS n',
    `count_if(${RULE} IS NOT NULL) AS failed`,
    ...rowRules.map((_, r) => `count_if(${flag(r)})`),
    ...tableRules.map((rule) =>
      rule.kind === 'null_share' ? `count_if(${quoteIdent(rule.column.name)} IS NULL)` : '0',
    ),
  ];
  const totals = await resultToTable(
    await connection.run(`SELECT ${aggregates.join(', ')} FROM ${ref}`),
  );
  const value = (i: number): number => Number(totals.columns[i]?.values[0] ?? 0);
  const checked = value(0);
  const failed = value(1);

  const rowOutcomes = new Map<number, RowRuleOutcome>();
  for (const [r, rule] of rowRules.entries()) {
    const failing = value(2 + r);
    const examples =
      failing === 0
        ? []
        : (await failingRows(connection, ref, prepared.schema, `${flag(r)}`, MAX_EXAMPLES)).map(
            ({ row, values, firsts }) => ({
              row,
              reason: reasonOf(rule, values, firsts[r] ?? undefined),
              values,
            }),
          );
    rowOutcomes.set(rule.index, { failing, examples });
  }

  const tableOutcomes = new Map<number, TableRuleOutcome>();
  for (const [t, rule] of tableRules.entries()) {
    let counts: number[] | undefined;
    if (rule.kind === 'distribution') {
      const buckets = await resultToTable(
        await connection.run(
          `SELECT ${bucketSql(quoteIdent(rule.column.name), rule.column.type, rule.profile)} AS b, count(*) AS n FROM ${ref} GROUP BY b`,
        ),
      );
      const size =
        rule.profile.kind === 'numeric'
          ? rule.profile.histogram.counts.length + 1
          : rule.profile.top.length + 2;
      counts = new Array<number>(size).fill(0);
      for (let i = 0; i < buckets.rowCount; i++) {
        counts[Number(buckets.columns[0]?.values[i])] = Number(buckets.columns[1]?.values[i]);
      }
    }
    tableOutcomes.set(
      rule.index,
      tableOutcome(rule, {
        rows: checked,
        nulls: value(2 + rowRules.length + t),
        ...(counts ? { counts } : {}),
      }),
    );
  }
  return buildReport({
    prepared,
    runId: run.runId,
    checkedAt: run.now,
    checked,
    failed,
    rowOutcomes,
    tableOutcomes,
  });
}

interface FailingRow {
  readonly row: number;
  readonly rule: number | null;
  readonly values: Row;
  /** By row-rule position: where a `unique` rule's key first appeared. */
  readonly firsts: readonly (number | null)[];
}

/** Rows matching `where`, in row order, with the internal columns split off. */
async function failingRows(
  connection: DuckDBConnection,
  ref: string,
  schema: readonly ColumnSchema[],
  where: string,
  limit: number,
): Promise<FailingRow[]> {
  const table = await resultToTable(
    await connection.run(`SELECT * FROM ${ref} WHERE ${where} ORDER BY ${ROW} LIMIT ${limit}`),
  );
  const firstColumns = table.columns.filter((c) => c.name.startsWith(`${INTERNAL}first`));
  const column = (name: string) => table.columns.find((c) => c.name === name);
  const rows = tableToRows({
    columns: table.columns.filter((c) => schema.some((s) => s.name === c.name)),
    rowCount: table.rowCount,
  });
  return rows.map((values, i) => {
    const firsts: (number | null)[] = [];
    for (const c of firstColumns) {
      const v = c.values[i];
      firsts[Number(c.name.slice(`${INTERNAL}first`.length))] = typeof v === 'number' ? v : null;
    }
    const ruleValue = column(RULE)?.values[i];
    return {
      row: Number(column(ROW)?.values[i]),
      rule: typeof ruleValue === 'number' ? ruleValue : null,
      values,
      firsts,
    };
  });
}

/** Writes every failing row, page by page, with its first failing rule; returns the count. */
async function quarantineRows(
  connection: DuckDBConnection,
  ref: string,
  prepared: PreparedRuleSet,
  schema: readonly ColumnSchema[],
  target: QuarantineTarget,
  report: ValidationReport,
): Promise<number> {
  let after: number | null = null;
  let written = 0;
  for (;;) {
    const page = await failingRows(
      connection,
      ref,
      schema,
      `${RULE} IS NOT NULL${after === null ? '' : ` AND ${ROW} > ${after}`}`,
      QUARANTINE_PAGE,
    );
    if (page.length === 0) return written;
    await writeQuarantine(
      target,
      page.map((f) => {
        const rule = prepared.rowRules[f.rule as number] as PreparedRowRule;
        return {
          row: f.row,
          rule: rule.name,
          reason: reasonOf(rule, f.values, f.firsts[f.rule as number] ?? undefined),
          values: f.values,
        };
      }),
      { runId: report.runId, at: report.checkedAt },
    );
    written += page.length;
    after = (page[page.length - 1] as FailingRow).row;
  }
}
