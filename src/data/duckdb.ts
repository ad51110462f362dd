/**
 * The process's in-memory DuckDB for batch work on files (reading CSV, Parquet and JSON lines,
 * writing Parquet), and the one mapping from DuckDB results to Ferry's columnar Table.
 * The instance is created lazily and shared; each unit of work gets its own connection, so
 * concurrent callers never interleave statements on one connection.
 */
import {
  BOOLEAN,
  DOUBLE,
  DuckDBDataChunk,
  DuckDBDateValue,
  DuckDBDecimalValue,
  DuckDBInstance,
  DuckDBTimestampMillisecondsValue,
  DuckDBTimestampNanosecondsValue,
  DuckDBTimestampSecondsValue,
  DuckDBTimestampTZValue,
  DuckDBTimestampValue,
  DuckDBTypeId,
  VARCHAR,
  type DuckDBConnection,
  type DuckDBResult,
  type DuckDBValue,
} from '@duckdb/node-api';
import type { Column, ColumnType, Scalar, Table } from '../core/table.js';

let shared: Promise<DuckDBInstance> | null = null;

function instance(): Promise<DuckDBInstance> {
  // A failed start is not cached, so a later call can try again.
  shared ??= DuckDBInstance.create(':memory:').catch((error: unknown) => {
    shared = null;
    throw error;
  });
  return shared;
}

/**
 * Runs `work` with a fresh connection to the shared in-memory DuckDB and closes it afterwards.
 * @example const n = await withDuckDB(async (con) => (await con.runAndReadAll('SELECT 42')).getRows());
 */
export async function withDuckDB<T>(
  work: (connection: DuckDBConnection) => Promise<T>,
): Promise<T> {
  const connection = await (await instance()).connect();
  try {
    return await work(connection);
  } finally {
    connection.closeSync();
  }
}

/** A SQL identifier, quoted so that any column name (spaces, quotes, keywords) is safe. */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** A SQL string literal. */
export function quoteString(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

/** The Ferry column type of a DuckDB column type; anything without a match reads as text. */
export function columnTypeOf(typeId: DuckDBTypeId): ColumnType {
  switch (typeId) {
    case DuckDBTypeId.DOUBLE:
    case DuckDBTypeId.FLOAT:
    case DuckDBTypeId.DECIMAL:
      return 'float';
    case DuckDBTypeId.TINYINT:
    case DuckDBTypeId.SMALLINT:
    case DuckDBTypeId.INTEGER:
    case DuckDBTypeId.BIGINT:
    case DuckDBTypeId.HUGEINT:
    case DuckDBTypeId.UTINYINT:
    case DuckDBTypeId.USMALLINT:
    case DuckDBTypeId.UINTEGER:
    case DuckDBTypeId.UBIGINT:
    case DuckDBTypeId.UHUGEINT:
      return 'int';
    case DuckDBTypeId.BOOLEAN:
      return 'bool';
    case DuckDBTypeId.TIMESTAMP:
    case DuckDBTypeId.TIMESTAMP_S:
    case DuckDBTypeId.TIMESTAMP_MS:
    case DuckDBTypeId.TIMESTAMP_NS:
    case DuckDBTypeId.TIMESTAMP_TZ:
    case DuckDBTypeId.DATE:
      return 'timestamp';
    default:
      return 'string';
  }
}

/** One DuckDB value as a Ferry scalar of the given column type (timestamps to UTC ms). */
export function toScalar(value: DuckDBValue, type: ColumnType): Scalar {
  if (value === null) return null;
  if (typeof value === 'number') return value;
  if (typeof value === 'boolean') return value;
  if (typeof value === 'bigint') return Number(value);
  if (type === 'string') return typeof value === 'string' ? value : String(value);
  if (value instanceof DuckDBTimestampValue || value instanceof DuckDBTimestampTZValue) {
    return Number(value.micros / 1000n);
  }
  if (value instanceof DuckDBTimestampMillisecondsValue) return Number(value.millis);
  if (value instanceof DuckDBTimestampSecondsValue) return Number(value.seconds) * 1000;
  if (value instanceof DuckDBTimestampNanosecondsValue) return Number(value.nanos / 1_000_000n);
  if (value instanceof DuckDBDateValue) return value.days * 86_400_000;
  if (value instanceof DuckDBDecimalValue) return value.toDouble();
  return String(value);
}

/**
 * The whole result as a Table, read column by column (far faster than row objects).
 * Infinite timestamps (DuckDB's `infinity`) come out as ±Infinity.
 * @example const table = await resultToTable(await con.run('SELECT 1 AS x'));
 */
export async function resultToTable(result: DuckDBResult): Promise<Table> {
  const names = result.columnNames();
  const types = names.map((_, i) => columnTypeOf(result.columnTypeId(i)));
  const raw = await result.getColumns();
  const columns: Column[] = names.map((name, i) => {
    const type = types[i] as ColumnType;
    const source = raw[i] ?? [];
    const values: Scalar[] = new Array<Scalar>(source.length);
    for (let r = 0; r < source.length; r++) {
      const v = source[r] as DuckDBValue;
      // Fast path: doubles, booleans and text need no conversion.
      values[r] =
        typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean'
          ? v
          : toScalar(v, type);
    }
    return { name, type, values };
  });
  return { columns, rowCount: raw[0]?.length ?? 0 };
}

const STAGE_ROWS = 2048;

/**
 * Copies a Table into a temporary DuckDB table of this connection, with Ferry's types mapped back
 * (int → BIGINT, timestamp → TIMESTAMP, float → DOUBLE, bool → BOOLEAN, string → VARCHAR).
 * @example await withDuckDB(async (con) => { await loadTable(con, 't', table); ... });
 */
export async function loadTable(
  connection: DuckDBConnection,
  name: string,
  table: Table,
): Promise<void> {
  const staged = quoteIdent(`${name}__stage`);
  // Numbers go in as DOUBLE (exact for ms timestamps and ints up to 2^53) and are cast once, in bulk.
  const stageTypes = table.columns.map((c) =>
    c.type === 'string' ? VARCHAR : c.type === 'bool' ? BOOLEAN : DOUBLE,
  );
  const columnsSql = table.columns
    .map(
      (c) =>
        `${quoteIdent(c.name)} ${c.type === 'string' ? 'VARCHAR' : c.type === 'bool' ? 'BOOLEAN' : 'DOUBLE'}`,
    )
    .join(', ');
  await connection.run(`CREATE OR REPLACE TEMP TABLE ${staged} (${columnsSql})`);
  const appender = await connection.createAppender(`${name}__stage`);
  try {
    for (let offset = 0; offset < table.rowCount; offset += STAGE_ROWS) {
      const n = Math.min(STAGE_ROWS, table.rowCount - offset);
      const chunk = DuckDBDataChunk.create(stageTypes, n);
      chunk.setColumns(table.columns.map((c) => stageValues(c, offset, n)));
      appender.appendDataChunk(chunk);
    }
    appender.flushSync();
  } finally {
    appender.closeSync();
  }
  const select = table.columns
    .map((c) => {
      const col = quoteIdent(c.name);
      if (c.type === 'int') return `CAST(${col} AS BIGINT) AS ${col}`;
      if (c.type === 'timestamp') return `epoch_ms(CAST(${col} AS BIGINT)) AS ${col}`;
      return col;
    })
    .join(', ');
  await connection.run(
    `CREATE OR REPLACE TEMP TABLE ${quoteIdent(name)} AS SELECT ${select || '*'} FROM ${staged}`,
  );
  await connection.run(`DROP TABLE ${staged}`);
}

function stageValues(column: Column, offset: number, n: number): DuckDBValue[] {
  const out: DuckDBValue[] = new Array<DuckDBValue>(n);
  for (let i = 0; i < n; i++) {
    const v = column.values[offset + i] ?? null;
    if (v === null) out[i] = null;
    else if (column.type === 'string') out[i] = typeof v === 'string' ? v : String(v);
    else if (column.type === 'bool') out[i] = typeof v === 'boolean' ? v : Boolean(v);
    else out[i] = typeof v === 'number' && Number.isFinite(v) ? v : null;
  }
  return out;
}
