/**
 * The process's in-memory DuckDB for batch work on files (reading CSV, Parquet and JSON lines,
 * writing Parquet), and the one mapping between DuckDB and Ferry's columnar Table, used by every
 * module that talks to DuckDB (the offline store included), so types and timestamps agree.
 * The instance is created lazily and shared; each unit of work gets its own connection, so
 * concurrent callers never interleave statements on one connection.
 */
import {
  BOOLEAN,
  DOUBLE,
  DuckDBBigIntVector,
  DuckDBBooleanVector,
  DuckDBDataChunk,
  DuckDBDateVector,
  DuckDBDecimal128Vector,
  DuckDBDecimal16Vector,
  DuckDBDecimal32Vector,
  DuckDBDecimal64Vector,
  DuckDBDoubleVector,
  DuckDBFloatVector,
  DuckDBHugeIntVector,
  DuckDBInstance,
  DuckDBIntegerVector,
  DuckDBSmallIntVector,
  DuckDBTimestampMillisecondsVector,
  DuckDBTimestampNanosecondsVector,
  DuckDBTimestampSecondsVector,
  DuckDBTimestampTZVector,
  DuckDBTimestampVector,
  DuckDBTinyIntVector,
  DuckDBTypeId,
  DuckDBUBigIntVector,
  DuckDBUHugeIntVector,
  DuckDBUIntegerVector,
  DuckDBUSmallIntVector,
  DuckDBUTinyIntVector,
  DuckDBVarCharVector,
  VARCHAR,
  type DuckDBConnection,
  type DuckDBResult,
  type DuckDBType,
  type DuckDBVector,
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

/**
 * The Ferry column type of a DuckDB column type; anything without a match (lists, structs,
 * intervals, UUIDs, TIME) reads as text.
 * @example columnTypeOf(DuckDBTypeId.DECIMAL) // 'float'
 */
export function columnTypeOf(typeId: DuckDBTypeId): ColumnType {
  switch (typeId) {
    case DuckDBTypeId.DOUBLE:
    case DuckDBTypeId.FLOAT:
    case DuckDBTypeId.DECIMAL:
    case DuckDBTypeId.SQLNULL:
      // An untyped NULL carries no value; a numeric column is the most useful home for it.
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

/**
 * The whole result as a Table, read chunk by chunk and vector by vector (far faster than row
 * objects). Timestamps and dates become UTC milliseconds, exact to the microsecond (so a
 * sub-millisecond time is fractional), and DuckDB's `infinity`/`-infinity` become ±Infinity;
 * integers wider than 2^53 round, as Ferry's int columns are safe integers by contract.
 * @example const table = await resultToTable(await con.run('SELECT 1 AS x'));
 */
export async function resultToTable(result: DuckDBResult): Promise<Table> {
  const names = result.columnNames();
  const chunks = await result.fetchAllChunks();
  const rowCount = chunks.reduce((n, chunk) => n + chunk.rowCount, 0);
  const columns: Column[] = names.map((name, i) => ({
    name,
    type: columnTypeOf(result.columnTypeId(i)),
    values: new Array<Scalar>(rowCount),
  }));
  let offset = 0;
  for (const chunk of chunks) {
    const rows = chunk.rowCount;
    for (let i = 0; i < columns.length; i++) {
      readVector(chunk.getColumnVector(i), rows, (columns[i] as Column).values, offset);
    }
    offset += rows;
  }
  return { columns, rowCount };
}

/** DuckDB stores `infinity` and `-infinity` as ±(2^63 - 1) units in every timestamp kind... */
const INFINITE_TIME = 2n ** 63n - 1n;
/** ...and as ±(2^31 - 1) days in a DATE. */
const INFINITE_DAYS = 2 ** 31 - 1;
const MS_PER_DAY = 86_400_000;

/** ±Infinity for an infinite time, else null. */
function infinite(units: bigint): number | null {
  return units === INFINITE_TIME ? Infinity : units === -INFINITE_TIME ? -Infinity : null;
}

/**
 * Copies `rows` values of a DuckDB vector into `out` from `offset`, as Ferry scalars. One loop
 * per vector kind, written out, keeps each loop monomorphic: this is the inner loop of every read.
 */
function readVector(vector: DuckDBVector, rows: number, out: Scalar[], offset: number): void {
  if (
    vector instanceof DuckDBDoubleVector ||
    vector instanceof DuckDBFloatVector ||
    vector instanceof DuckDBIntegerVector ||
    vector instanceof DuckDBSmallIntVector ||
    vector instanceof DuckDBTinyIntVector ||
    vector instanceof DuckDBUIntegerVector ||
    vector instanceof DuckDBUSmallIntVector ||
    vector instanceof DuckDBUTinyIntVector ||
    vector instanceof DuckDBBooleanVector ||
    vector instanceof DuckDBVarCharVector
  ) {
    for (let i = 0; i < rows; i++) out[offset + i] = vector.getItem(i);
  } else if (
    vector instanceof DuckDBBigIntVector ||
    vector instanceof DuckDBHugeIntVector ||
    vector instanceof DuckDBUBigIntVector ||
    vector instanceof DuckDBUHugeIntVector
  ) {
    for (let i = 0; i < rows; i++) {
      const v = vector.getItem(i);
      out[offset + i] = v === null ? null : Number(v);
    }
  } else if (vector instanceof DuckDBTimestampVector || vector instanceof DuckDBTimestampTZVector) {
    for (let i = 0; i < rows; i++) {
      const v = vector.getItem(i);
      out[offset + i] = v === null ? null : (infinite(v.micros) ?? Number(v.micros) / 1000);
    }
  } else if (vector instanceof DuckDBTimestampMillisecondsVector) {
    for (let i = 0; i < rows; i++) {
      const v = vector.getItem(i);
      out[offset + i] = v === null ? null : (infinite(v.millis) ?? Number(v.millis));
    }
  } else if (vector instanceof DuckDBTimestampSecondsVector) {
    for (let i = 0; i < rows; i++) {
      const v = vector.getItem(i);
      out[offset + i] = v === null ? null : (infinite(v.seconds) ?? Number(v.seconds) * 1000);
    }
  } else if (vector instanceof DuckDBTimestampNanosecondsVector) {
    for (let i = 0; i < rows; i++) {
      const v = vector.getItem(i);
      out[offset + i] = v === null ? null : (infinite(v.nanos) ?? Number(v.nanos) / 1e6);
    }
  } else if (vector instanceof DuckDBDateVector) {
    for (let i = 0; i < rows; i++) {
      const v = vector.getItem(i);
      out[offset + i] =
        v === null
          ? null
          : Math.abs(v.days) === INFINITE_DAYS
            ? Math.sign(v.days) * Infinity
            : v.days * MS_PER_DAY;
    }
  } else if (
    vector instanceof DuckDBDecimal16Vector ||
    vector instanceof DuckDBDecimal32Vector ||
    vector instanceof DuckDBDecimal64Vector ||
    vector instanceof DuckDBDecimal128Vector
  ) {
    for (let i = 0; i < rows; i++) {
      const v = vector.getItem(i);
      out[offset + i] = v === null ? null : v.toDouble();
    }
  } else {
    for (let i = 0; i < rows; i++) {
      const v = vector.getItem(i);
      out[offset + i] = v === null ? null : String(v);
    }
  }
}

/** DuckDB's vector size: a data chunk holds at most this many rows. */
const CHUNK_ROWS = 2048;

/**
 * Stages a Table in a new temporary table `temp.<name>` of this connection, with columns `c0`,
 * `c1`... in the table's order; {@link stagedSelect} turns them back into Ferry's stored types.
 * Numbers (int, float, timestamp) stage as DOUBLE and are cast once, in bulk: filling a Float64
 * vector is several times faster than building a BigInt or a timestamp object per value, and
 * exact for the safe integers and microsecond-precise millisecond timestamps Ferry carries.
 * A non-finite int or timestamp, or a value of the wrong kind, stages as null.
 * @example await stageTable(con, 'ferry_stage', table); await con.run(`COPY (SELECT ${stagedSelect(table)} FROM temp.ferry_stage) TO 'out.parquet'`);
 */
export async function stageTable(
  connection: DuckDBConnection,
  name: string,
  table: Table,
): Promise<void> {
  const types = table.columns.map((c) => stageTypeOf(c.type));
  const columnsSql = types.map((t, i) => `c${i} ${t.toString()}`).join(', ');
  await connection.run(`CREATE TEMP TABLE ${quoteIdent(name)} (${columnsSql})`);
  const appender = await connection.createAppender(name, 'main', 'temp');
  try {
    for (let offset = 0; offset < table.rowCount; offset += CHUNK_ROWS) {
      const rows = Math.min(CHUNK_ROWS, table.rowCount - offset);
      const chunk = DuckDBDataChunk.create(types, rows);
      table.columns.forEach((column, i) =>
        fillVector(chunk.getColumnVector(i), column, offset, rows),
      );
      appender.appendDataChunk(chunk);
    }
    appender.flushSync();
  } finally {
    appender.closeSync();
  }
}

/**
 * The SELECT list that reads a table staged by {@link stageTable} back under its own column names
 * and stored types: int → BIGINT, timestamp → TIMESTAMP (UTC), float → DOUBLE, bool → BOOLEAN,
 * string → VARCHAR.
 */
export function stagedSelect(table: Table): string {
  return table.columns
    .map((c, i) => `${castStaged(c.type, `c${i}`)} AS ${quoteIdent(c.name)}`)
    .join(', ');
}

/** The SQL turning a staged column (a SQL expression) back into its stored type. */
export function castStaged(type: ColumnType, column: string): string {
  switch (type) {
    case 'int':
      return `CAST(${column} AS BIGINT)`;
    case 'timestamp':
      return `make_timestamp(CAST(round(${column} * 1000) AS BIGINT))`;
    default:
      return column;
  }
}

function stageTypeOf(type: ColumnType): DuckDBType {
  switch (type) {
    case 'bool':
      return BOOLEAN;
    case 'string':
      return VARCHAR;
    default:
      return DOUBLE;
  }
}

function fillVector(vector: DuckDBVector, column: Column, offset: number, rows: number): void {
  const values = column.values;
  if (vector instanceof DuckDBDoubleVector) {
    // NaN and ±Infinity are valid floats, but cannot be cast to BIGINT or TIMESTAMP.
    const finiteOnly = column.type !== 'float';
    for (let i = 0; i < rows; i++) {
      const v = values[offset + i];
      vector.setItem(i, typeof v === 'number' && (!finiteOnly || Number.isFinite(v)) ? v : null);
    }
  } else if (vector instanceof DuckDBVarCharVector) {
    for (let i = 0; i < rows; i++) {
      const v = values[offset + i] ?? null;
      vector.setItem(i, v === null ? null : typeof v === 'string' ? v : String(v));
    }
  } else if (vector instanceof DuckDBBooleanVector) {
    for (let i = 0; i < rows; i++) {
      const v = values[offset + i] ?? null;
      vector.setItem(i, v === null ? null : typeof v === 'boolean' ? v : Boolean(v));
    }
  }
  vector.flush();
}

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
  const staged = `${name}__stage`;
  await connection.run(`DROP TABLE IF EXISTS temp.${quoteIdent(staged)}`);
  await stageTable(connection, staged, table);
  await connection.run(
    `CREATE OR REPLACE TEMP TABLE ${quoteIdent(name)} AS SELECT ${stagedSelect(table) || '*'} FROM temp.${quoteIdent(staged)}`,
  );
  await connection.run(`DROP TABLE temp.${quoteIdent(staged)}`);
}
