/**
 * A relation: the SQL text of a DuckDB query together with the Ferry schema of its visible
 * columns. Preparation steps map one relation to the next by wrapping it (`FROM (<prev>)`), so a
 * whole recipe is one chain of SQL that DuckDB streams; nothing is materialised in JavaScript.
 *
 * Every relation also carries hidden columns whose names start with `__ferry_`: the row's number
 * in its source file ({@link ROW}, used for file order, deduplication and seeded splits) and, after
 * a split step, its part ({@link SPLIT}). Steps pass them through with `SELECT *`, and only the
 * schema's columns are written out. Column values always have one DuckDB type per Ferry type
 * (see {@link sqlType}), so both the SQL and the row-at-a-time paths see the same values.
 */
import type { ColumnSchema, ColumnType, Scalar } from '../../core/table.js';
import { FerryError } from '../../errors/index.js';
import { quoteIdent, quoteString } from '../duckdb.js';

export interface Relation {
  /** A query (no trailing semicolon) usable as `FROM (<sql>)`. */
  readonly sql: string;
  /** The visible columns, in output order. */
  readonly schema: readonly ColumnSchema[];
}

/** Hidden column: the row's 1-based number in its source, in file order. */
export const ROW = '__ferry_row';
/** Hidden column, after a split step: 'train', 'validation' or 'test'. */
export const SPLIT = '__ferry_split';
/** Prefix reserved for hidden columns; user columns may not use it. */
export const HIDDEN_PREFIX = '__ferry_';

/** Largest integer a Ferry int holds exactly (int columns are safe integers by contract). */
export const MAX_SAFE = Number.MAX_SAFE_INTEGER;

/** The one DuckDB type each Ferry type is stored as inside a recipe's chain. */
export function sqlType(type: ColumnType): string {
  switch (type) {
    case 'int':
      return 'BIGINT';
    case 'float':
      return 'DOUBLE';
    case 'bool':
      return 'BOOLEAN';
    case 'string':
      return 'VARCHAR';
    case 'timestamp':
      return 'TIMESTAMP';
  }
}

/** A column reference. */
export const col = quoteIdent;

/**
 * A DOUBLE literal that reads back as exactly `n`: a bare `0.1` would be a DECIMAL in DuckDB,
 * and mixing it with doubles could round differently from JavaScript.
 */
export function doubleLiteral(n: number): string {
  if (Number.isNaN(n)) return "CAST('nan' AS DOUBLE)";
  if (n === Infinity) return "CAST('inf' AS DOUBLE)";
  if (n === -Infinity) return "CAST('-inf' AS DOUBLE)";
  return `CAST('${String(n)}' AS DOUBLE)`;
}

/**
 * A SQL literal of Ferry type `type` for a value already of that type (timestamps as UTC ms).
 * @example literal(1.5, 'float') // "CAST('1.5' AS DOUBLE)"
 */
export function literal(value: Scalar, type: ColumnType): string {
  if (value === null) return `CAST(NULL AS ${sqlType(type)})`;
  switch (type) {
    case 'float':
      return doubleLiteral(Number(value));
    case 'int':
      return `CAST(${String(value)} AS BIGINT)`;
    case 'bool':
      return value === true ? 'TRUE' : 'FALSE';
    case 'string':
      return quoteString(String(value));
    case 'timestamp':
      return `make_timestamp(CAST(${microsOf(Number(value)).toString()} AS BIGINT))`;
  }
}

/**
 * The exact microseconds of a Ferry timestamp (UTC ms, possibly fractional), inverting how
 * `resultToTable` builds it from DuckDB's microseconds.
 */
export function microsOf(ms: number): bigint {
  const whole = Math.trunc(ms);
  return BigInt(whole) * 1000n + BigInt(Math.round((ms - whole) * 1000));
}

/** UTC ms of a count of microseconds, exactly as `resultToTable` reads a TIMESTAMP. */
export function msOfMicros(micros: bigint): number {
  return Number(micros / 1000n) + Number(micros % 1000n) / 1000;
}

/**
 * The columns named, from a schema, in the order given; an unknown name is an error that lists
 * the known ones.
 */
export function requireColumns(
  schema: readonly ColumnSchema[],
  names: readonly string[],
  where: string,
): ColumnSchema[] {
  return names.map((name) => requireColumn(schema, name, where));
}

export function requireColumn(
  schema: readonly ColumnSchema[],
  name: string,
  where: string,
): ColumnSchema {
  const found = schema.find((c) => c.name === name);
  if (found) return found;
  throw new FerryError(
    'FERRY_COLUMN_UNKNOWN',
    `${where}: column '${name}' is not in the table at this step; columns: ${schema.map((c) => c.name).join(', ') || '(none)'}`,
  );
}

/** Rejects a new column name that is taken or reserved. */
export function requireNewName(
  schema: readonly ColumnSchema[],
  name: string,
  where: string,
  replacing: readonly string[] = [],
): void {
  if (name.startsWith(HIDDEN_PREFIX)) {
    throw new FerryError(
      'FERRY_CONFIG_INVALID',
      `${where}: column names starting with '${HIDDEN_PREFIX}' are reserved for Ferry; choose another name than '${name}'`,
    );
  }
  if (schema.some((c) => c.name === name) && !replacing.includes(name)) {
    throw new FerryError(
      'FERRY_CONFIG_INVALID',
      `${where}: the table already has a column '${name}'; choose another name or drop that column first`,
    );
  }
}

/** `a, b, c` of quoted column names. */
export function columnList(names: readonly string[]): string {
  return names.map(col).join(', ');
}
