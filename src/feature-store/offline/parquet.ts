/**
 * ParquetOfflineStore: the embedded OfflineStore. A table is a folder of immutable Parquet files
 * under the store's root; one in-memory DuckDB instance per store writes and queries them.
 *
 * Concurrency: each operation (append, read, count, query) runs on a connection of its own, opened
 * for it and closed after it, because statements of one DuckDB connection must not interleave and
 * the store's callers (inference log flushes, monitors, the feature store) do not wait for each
 * other. At most {@link MAX_CONNECTIONS} operations use DuckDB at once; the rest queue in order.
 * A temporary table lives and dies with the connection of the operation that made it.
 *
 * Layout: `<root>/<table>/date=YYYY-MM-DD/part-<ms>-<uuid>.parquet` when an append names a time
 * column (the UTC date of that column), else `<root>/<table>/part-<ms>-<uuid>.parquet`. A file is
 * written under `<root>/.staging/`, fsynced, then renamed into place, so readers never see a
 * partial file and an acknowledged append survives a crash. Column types are stored as float →
 * DOUBLE, int → BIGINT, bool → BOOLEAN, string → VARCHAR, timestamp → TIMESTAMP (UTC, no zone).
 *
 * Known limits (write them down, do not rediscover them):
 * - one writing process per root: appends are serialised per table inside this process only, and
 *   the schema check of an append trusts this process's view of the table;
 * - every append adds files; nothing compacts small files yet, so a table fed by many tiny
 *   appends gets slower to read;
 * - reads do not prune `date=` folders by the time range; DuckDB skips row groups by their
 *   min/max statistics instead;
 * - an append that spans several dates renames its files one by one, so a concurrent reader can
 *   see some of its dates and not others;
 * - rows of a time-partitioned table come back in no particular order (DuckDB's partitioned
 *   write does not keep it); an unpartitioned table reads back in append order.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, open, readdir, rename, rm, rmdir, stat } from 'node:fs/promises';
import path from 'node:path';

import {
  BIGINT,
  DOUBLE,
  DuckDBDateValue,
  DuckDBInstance,
  DuckDBTimestampTZValue,
  DuckDBTimestampValue,
  DuckDBTypeId,
  StatementType,
  type DuckDBConnection,
  type DuckDBMaterializedResult,
  type DuckDBPreparedStatement,
  type DuckDBValue,
} from '@duckdb/node-api';

import type { ColumnSchema, ColumnType, Scalar, Table } from '../../core/table.js';
import {
  castStaged,
  columnTypeOf,
  quoteIdent,
  quoteString,
  resultToTable,
  stageTable,
  stagedSelect,
} from '../../data/duckdb.js';
import { FerryError } from '../../errors/index.js';
import type { OfflineStore, ReadOptions } from './offline-store.js';

const TABLE_NAME = /^[a-z0-9_]+(\/[a-z0-9_]+)*$/;
const SEGMENT = /^[a-z0-9_]+$/;
/** `{{table}}` in a query, spaces allowed inside the braces. */
const PLACEHOLDER = /\{\{\s*([^{}]*?)\s*\}\}/g;
const PARTITION_PREFIX = 'date=';
const STAGING_DIR = '.staging';
/** Staging folders older than this are leftovers of a crashed append. */
const STALE_STAGING_MS = 60 * 60 * 1000;
/** The helper column that carries the partition date through DuckDB's partitioned COPY. */
const DATE_COLUMN = '__ferry_date';
const MS_PER_DAY = 86_400_000;
/** The temporary table an append stages its rows in, on its own connection. */
const STAGED_TABLE = 'ferry_append';
/**
 * Operations using DuckDB at the same time. DuckDB already spreads each statement over all cores,
 * so more would mostly add memory (each read materialises its whole result).
 */
const MAX_CONNECTIONS = 4;

export interface ParquetOfflineStoreOptions {
  /** The root folder of the tables; created if missing. */
  readonly path: string;
}

/**
 * Opens (creating if needed) a Parquet offline store rooted at `path`.
 * @example
 * const store = await openParquetOfflineStore({ path: '.ferry/offline' });
 * await store.append('transactions', table, { timeColumn: 'ts' });
 * const daily = await store.query('SELECT count(*) AS n FROM {{transactions}} WHERE amount > $1', [100]);
 */
export async function openParquetOfflineStore(
  options: ParquetOfflineStoreOptions,
): Promise<ParquetOfflineStore> {
  const root = path.resolve(options.path);
  // The root goes into DuckDB glob patterns, where these characters would be read as wildcards.
  if (/[*?[\]{}]/.test(root)) {
    throw new FerryError(
      'FERRY_ARGUMENT_INVALID',
      `offline store path '${root}' contains a glob character (* ? [ ] { }); choose a folder without them`,
    );
  }
  await mkdir(root, { recursive: true });
  await removeStaleStaging(path.join(root, STAGING_DIR));
  let instance: DuckDBInstance | undefined;
  try {
    instance = await DuckDBInstance.create(':memory:');
    const connection = await instance.connect();
    try {
      // Files are immutable and uniquely named, so caching their footers can never serve stale
      // metadata. GLOBAL: a plain SET would reach this connection only, not the operations' own.
      await connection.run('SET GLOBAL parquet_metadata_cache = true');
    } finally {
      connection.closeSync();
    }
  } catch (error) {
    instance?.closeSync();
    throw new FerryError(
      'FERRY_BACKEND_UNAVAILABLE',
      `DuckDB could not start: ${messageOf(error)}`,
      {
        cause: error,
      },
    );
  }
  return new ParquetOfflineStore(root, instance);
}

export class ParquetOfflineStore implements OfflineStore {
  readonly backend = 'parquet';
  readonly root: string;
  private readonly instance: DuckDBInstance;
  /** Per-table tail of the write chain: appends and drops of one table run one after another. */
  private readonly writeChains = new Map<string, Promise<void>>();
  /** Column schemas of tables this process has read or written; valid because it is the only writer. */
  private readonly schemas = new Map<string, ColumnSchema[]>();
  private lastFileMs = 0;
  private closed = false;
  /** Operations still running (queued ones included), which close() waits for. */
  private readonly inFlight = new Set<Promise<unknown>>();
  /** Free DuckDB slots, and the operations waiting for one, first come first served. */
  private freeSlots = MAX_CONNECTIONS;
  private readonly slotWaiters: (() => void)[] = [];

  /** Use {@link openParquetOfflineStore}. */
  constructor(root: string, instance: DuckDBInstance) {
    this.root = root;
    this.instance = instance;
  }

  append(table: string, data: Table, options?: { timeColumn?: string }): Promise<void> {
    return this.track(async () => {
      assertTableName(table);
      const timeColumn = options?.timeColumn;
      validateData(table, data, timeColumn);
      await this.serialize(table, () => this.appendNow(table, data, timeColumn));
    });
  }

  read(table: string, options: ReadOptions = {}): Promise<Table> {
    return this.track(() => this.readNow(table, options));
  }

  private async readNow(table: string, options: ReadOptions): Promise<Table> {
    assertTableName(table);
    const source = await this.sourceOf(table);
    return this.withConnection((connection) => this.readFrom(connection, table, source, options));
  }

  private async readFrom(
    connection: DuckDBConnection,
    table: string,
    source: string,
    options: ReadOptions,
  ): Promise<Table> {
    const schema = await describe(connection, source);
    const { columns, timeColumn, start, end } = options;
    if (columns) {
      if (new Set(columns).size !== columns.length) {
        throw new FerryError(
          'FERRY_ARGUMENT_INVALID',
          `columns asked of '${table}' repeat a name: ${columns.join(', ')}`,
        );
      }
      for (const name of columns) assertColumn(table, schema, name);
    }
    const where: string[] = [];
    const params: DuckDBValue[] = [];
    if (start !== undefined || end !== undefined || timeColumn !== undefined) {
      if (timeColumn === undefined) {
        throw new FerryError(
          'FERRY_ARGUMENT_INVALID',
          `reading '${table}' with start or end needs timeColumn`,
        );
      }
      const type = assertColumn(table, schema, timeColumn);
      if (type !== 'timestamp') {
        throw new FerryError(
          'FERRY_ARGUMENT_INVALID',
          `time column '${timeColumn}' of '${table}' is ${type}; a time range needs a timestamp column`,
        );
      }
      for (const [bound, value, op] of [
        ['start', start, '>='],
        ['end', end, '<'],
      ] as const) {
        if (value === undefined) continue;
        if (!Number.isFinite(value)) {
          throw new FerryError(
            'FERRY_ARGUMENT_INVALID',
            `${bound} must be UTC milliseconds, got ${String(value)}`,
          );
        }
        params.push(timestampOf(value));
        where.push(`${quoteIdent(timeColumn)} ${op} $${params.length}`);
      }
    }
    const filter = where.length > 0 ? ` WHERE ${where.join(' AND ')}` : '';
    if (columns && columns.length === 0) {
      const counted = await runSelect(
        connection,
        `SELECT count(*) FROM ${source}${filter}`,
        params,
      );
      return { columns: [], rowCount: Number(counted.columns[0]?.values[0] ?? 0) };
    }
    const projection = columns ? columns.map(quoteIdent).join(', ') : '*';
    return runSelect(connection, `SELECT ${projection} FROM ${source}${filter}`, params);
  }

  count(table: string): Promise<number> {
    return this.track(async () => {
      assertTableName(table);
      const source = await this.sourceOf(table);
      const result = await this.withConnection((connection) =>
        runSelect(connection, `SELECT count(*) AS n FROM ${source}`, []),
      );
      return Number(result.columns[0]?.values[0] ?? 0);
    });
  }

  async hasTable(table: string): Promise<boolean> {
    this.assertOpen();
    assertTableName(table);
    return (await scanTableDir(this.tableDir(table))).exists;
  }

  async listTables(): Promise<string[]> {
    this.assertOpen();
    const tables: string[] = [];
    const walk = async (dir: string, prefix: string): Promise<void> => {
      const entries = await readdir(dir, { withFileTypes: true }).catch(ignoreMissing);
      for (const entry of entries ?? []) {
        if (!entry.isDirectory() || !SEGMENT.test(entry.name)) continue;
        const name = prefix === '' ? entry.name : `${prefix}/${entry.name}`;
        const child = path.join(dir, entry.name);
        if ((await scanTableDir(child)).exists) tables.push(name);
        await walk(child, name);
      }
    };
    await walk(this.root, '');
    return tables.sort();
  }

  dropTable(table: string): Promise<void> {
    return this.track(async () => {
      assertTableName(table);
      await this.serialize(table, () => this.dropNow(table));
    });
  }

  private async dropNow(table: string): Promise<void> {
    const dir = this.tableDir(table);
    const entries = await readdir(dir, { withFileTypes: true }).catch(ignoreMissing);
    // Only this table's own files: a nested table (`<table>/<child>`) lives in a subfolder and stays.
    for (const entry of entries ?? []) {
      const target = path.join(dir, entry.name);
      if (entry.isFile() && entry.name.endsWith('.parquet')) await rm(target, { force: true });
      else if (entry.isDirectory() && entry.name.startsWith(PARTITION_PREFIX)) {
        await rm(target, { recursive: true, force: true });
      }
    }
    this.schemas.delete(table);
    // Remove folders left empty, up to (not including) the root, then persist the removals.
    let current = dir;
    while (current !== this.root) {
      try {
        await rmdir(current);
      } catch {
        break;
      }
      current = path.dirname(current);
    }
    await fsyncDir(current).catch(ignoreMissing);
  }

  /**
   * Runs a read-only SELECT in which `{{table}}` stands for a table and `$1`, `$2`... for `params`.
   * A number bound where DuckDB expects a TIMESTAMP or DATE is read as UTC milliseconds, so
   * `WHERE ts >= $1` works with `Date.now()`. Result columns map back to Ferry's types: integers to
   * `int`, floating and decimal numbers to `float`, dates and timestamps to `timestamp` (UTC ms);
   * anything else (lists, structs, intervals) comes back as its text in a `string` column.
   */
  query(sql: string, params: readonly Scalar[] = []): Promise<Table> {
    return this.track(async () => {
      const sources = new Map<string, string>();
      for (const match of sql.matchAll(PLACEHOLDER)) {
        const name = match[1] ?? '';
        if (!sources.has(name)) {
          assertTableName(name);
          sources.set(name, await this.sourceOf(name));
        }
      }
      const expanded = sql.replace(PLACEHOLDER, (_all, name: string) => sources.get(name) ?? '');
      return this.withConnection((connection) => runSelect(connection, expanded, params, true));
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Closing the instance under a running statement would crash the process: wait for every
    // operation already asked for, queued ones included (no new one starts once closed); each
    // closes its own connection.
    await Promise.allSettled([...this.inFlight]);
    this.instance.closeSync();
  }

  private assertOpen(): void {
    if (this.closed) throw this.closedError();
  }

  private closedError(): FerryError {
    return new FerryError(
      'FERRY_STORE_CLOSED',
      `the Parquet offline store at '${this.root}' is closed`,
    );
  }

  /**
   * Starts an operation of the open store and records it until it settles, so that close()
   * finishes it first. A closed store refuses it with FERRY_STORE_CLOSED.
   */
  private track<T>(operation: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(this.closedError());
    const work = operation();
    this.inFlight.add(work);
    const done = (): void => void this.inFlight.delete(work);
    work.then(done, done);
    return work;
  }

  /**
   * Runs `work` on a new connection of its own, closed afterwards, once one of the
   * {@link MAX_CONNECTIONS} slots is free. `work` must not ask for another connection: with every
   * slot taken by such callers, none would ever be freed.
   */
  private async withConnection<T>(work: (connection: DuckDBConnection) => Promise<T>): Promise<T> {
    if (this.freeSlots > 0) this.freeSlots--;
    else await new Promise<void>((resolve) => this.slotWaiters.push(resolve));
    try {
      let connection: DuckDBConnection;
      try {
        connection = await this.instance.connect();
      } catch (error) {
        throw new FerryError(
          'FERRY_BACKEND_UNAVAILABLE',
          `DuckDB of the offline store at '${this.root}' refused a connection: ${messageOf(error)}`,
          { cause: error },
        );
      }
      try {
        return await work(connection);
      } finally {
        // Also drops the temporary tables the operation made.
        connection.closeSync();
      }
    } finally {
      // Hand the slot straight to the next waiter, so that it cannot be taken out of turn.
      const next = this.slotWaiters.shift();
      if (next) next();
      else this.freeSlots++;
    }
  }

  private tableDir(table: string): string {
    return path.join(this.root, ...table.split('/'));
  }

  /** Runs `task` after every earlier write of `table` has settled. */
  private serialize(table: string, task: () => Promise<void>): Promise<void> {
    const previous = this.writeChains.get(table) ?? Promise.resolve();
    const result = previous.then(task);
    const tail = result.catch(() => undefined);
    this.writeChains.set(table, tail);
    void tail.then(() => {
      if (this.writeChains.get(table) === tail) this.writeChains.delete(table);
    });
    return result;
  }

  /** The `read_parquet(...)` expression of a table; throws FERRY_ARGUMENT_INVALID when it has no files. */
  private async sourceOf(table: string): Promise<string> {
    const dir = this.tableDir(table);
    const scan = await scanTableDir(dir);
    if (!scan.exists) {
      const existing = await this.listTables();
      throw new FerryError(
        'FERRY_ARGUMENT_INVALID',
        `offline table '${table}' does not exist (no Parquet files under ${dir}); ` +
          `existing tables: ${existing.length > 0 ? existing.join(', ') : '(none)'}`,
        { details: { table, existing } },
      );
    }
    // Two precise globs rather than `**`, which would also take in nested tables' files.
    const globs: string[] = [];
    if (scan.direct) globs.push(quoteString(path.join(dir, '*.parquet')));
    if (scan.partitioned)
      globs.push(quoteString(path.join(dir, `${PARTITION_PREFIX}*`, '*.parquet')));
    return `read_parquet([${globs.join(', ')}], union_by_name = true, hive_partitioning = false)`;
  }

  private async schemaOf(
    connection: DuckDBConnection,
    table: string,
  ): Promise<ColumnSchema[] | null> {
    const cached = this.schemas.get(table);
    if (cached) return cached;
    if (!(await scanTableDir(this.tableDir(table))).exists) return null;
    const schema = await describe(connection, await this.sourceOf(table));
    this.schemas.set(table, schema);
    return schema;
  }

  private async appendNow(
    table: string,
    data: Table,
    timeColumn: string | undefined,
  ): Promise<void> {
    const staging = path.join(this.root, STAGING_DIR, randomUUID());
    try {
      // DuckDB's part ends with the COPY: the connection's slot is free again while files publish.
      const written = await this.withConnection(async (connection) => {
        const existing = await this.schemaOf(connection, table);
        if (existing) checkCompatible(table, existing, data);
        // An empty batch has nothing to add to an existing table; it still creates a new one, schema included.
        if (data.rowCount === 0 && existing) return null;
        const partitioned = timeColumn !== undefined && data.rowCount > 0;
        // The connection is this append's alone, so a fixed temporary name cannot collide.
        await stageTable(connection, STAGED_TABLE, data);
        let select = stagedSelect(data);
        if (partitioned) {
          const index = data.columns.findIndex((c) => c.name === timeColumn);
          select += `, strftime(CAST(${castStaged('timestamp', `c${index}`)} AS DATE), '%Y-%m-%d') AS ${DATE_COLUMN}`;
        }
        await mkdir(staging, { recursive: true });
        const target = partitioned ? path.join(staging, 'out') : path.join(staging, 'out.parquet');
        const copyOptions = partitioned
          ? `FORMAT parquet, COMPRESSION zstd, PARTITION_BY (${DATE_COLUMN})`
          : 'FORMAT parquet, COMPRESSION zstd';
        await connection.run(
          `COPY (SELECT ${select} FROM temp.${STAGED_TABLE}) TO ${quoteString(target)} (${copyOptions})`,
        );
        return { existing, target, partitioned };
      });
      if (!written) return;
      await this.publishFiles(table, written.target, written.partitioned);
      this.schemas.set(table, mergeSchema(written.existing ?? [], data));
    } catch (error) {
      if (error instanceof FerryError) throw error;
      throw new FerryError(
        'FERRY_BACKEND_UNAVAILABLE',
        `writing offline table '${table}' under ${this.root} failed: ${messageOf(error)}`,
        { cause: error },
      );
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
  }

  /** Moves staged files into the table, durably: fsync each file, rename, fsync the folders. */
  private async publishFiles(table: string, target: string, partitioned: boolean): Promise<void> {
    const tableDir = this.tableDir(table);
    const moves: { from: string; dir: string }[] = [];
    if (partitioned) {
      for (const entry of await readdir(target, { withFileTypes: true })) {
        if (!entry.isDirectory() || !entry.name.startsWith(`${DATE_COLUMN}=`)) continue;
        const date = entry.name.slice(DATE_COLUMN.length + 1);
        const from = path.join(target, entry.name);
        for (const file of await readdir(from)) {
          if (file.endsWith('.parquet')) {
            moves.push({
              from: path.join(from, file),
              dir: path.join(tableDir, `${PARTITION_PREFIX}${date}`),
            });
          }
        }
      }
    } else {
      moves.push({ from: target, dir: tableDir });
    }
    // Names sort in append order: readers list files alphabetically.
    const ms = (this.lastFileMs = Math.max(Date.now(), this.lastFileMs + 1));
    const touched = new Set<string>();
    for (const move of moves) {
      await fsyncFile(move.from);
      await ensureDir(move.dir, this.root);
      await rename(move.from, path.join(move.dir, `part-${ms}-${randomUUID()}.parquet`));
      touched.add(move.dir);
    }
    for (const dir of touched) await fsyncDir(dir);
  }
}

/* ---------------------------------------------------------------- validation */

function assertTableName(table: string): void {
  if (!TABLE_NAME.test(table)) {
    throw new FerryError(
      'FERRY_ARGUMENT_INVALID',
      `offline table name '${table}' is not valid; use [a-z0-9_] segments joined by '/' (for example inference_log/fraud)`,
    );
  }
}

function assertColumn(table: string, schema: readonly ColumnSchema[], name: string): ColumnType {
  const found = schema.find((c) => c.name === name);
  if (!found) {
    throw new FerryError(
      'FERRY_COLUMN_UNKNOWN',
      `column '${name}' is not in offline table '${table}'; columns: ${schema.map((c) => c.name).join(', ')}`,
    );
  }
  return found.type;
}

const VALUE_CHECKS: Record<ColumnType, [(v: Scalar) => boolean, string]> = {
  float: [(v) => typeof v === 'number', 'a number'],
  int: [(v) => Number.isSafeInteger(v), 'a safe integer'],
  bool: [(v) => typeof v === 'boolean', 'a boolean'],
  string: [(v) => typeof v === 'string', 'a string'],
  timestamp: [
    (v) => typeof v === 'number' && Number.isFinite(v),
    'UTC milliseconds (a finite number)',
  ],
};

function validateData(table: string, data: Table, timeColumn: string | undefined): void {
  if (data.columns.length === 0) {
    throw new FerryError('FERRY_ARGUMENT_INVALID', `append to '${table}' has no columns`);
  }
  const seen = new Set<string>();
  for (const column of data.columns) {
    // DuckDB matches column names case-insensitively, so 'Amount' and 'amount' cannot live side by side.
    const folded = column.name.toLowerCase();
    if (column.name === '' || seen.has(folded) || column.name === DATE_COLUMN) {
      throw new FerryError(
        'FERRY_ARGUMENT_INVALID',
        `append to '${table}': column name '${column.name}' is empty, repeated (names are case-insensitive) or reserved`,
      );
    }
    seen.add(folded);
    const check = VALUE_CHECKS[column.type];
    if (!check) {
      throw new FerryError(
        'FERRY_ARGUMENT_INVALID',
        `append to '${table}': column '${column.name}' has unknown type '${String(column.type)}'`,
      );
    }
    if (column.values.length !== data.rowCount) {
      throw new FerryError(
        'FERRY_ARGUMENT_INVALID',
        `append to '${table}': column '${column.name}' has ${column.values.length} values for ${data.rowCount} rows`,
      );
    }
    const [ok, expected] = check;
    for (let i = 0; i < column.values.length; i++) {
      const value = column.values[i] ?? null;
      if (value !== null && !ok(value)) {
        throw new FerryError(
          'FERRY_ARGUMENT_INVALID',
          `append to '${table}': column '${column.name}' (${column.type}) row ${i} holds ${JSON.stringify(value)}; expected ${expected} or null`,
        );
      }
    }
  }
  if (timeColumn !== undefined) {
    const column = data.columns.find((c) => c.name === timeColumn);
    if (!column || column.type !== 'timestamp') {
      throw new FerryError(
        'FERRY_ARGUMENT_INVALID',
        `append to '${table}': time column '${timeColumn}' must be a timestamp column of the data; columns: ${data.columns.map((c) => `${c.name} (${c.type})`).join(', ')}`,
      );
    }
    const nullAt = column.values.findIndex((v) => v === null || v === undefined);
    if (nullAt >= 0) {
      throw new FerryError(
        'FERRY_ARGUMENT_INVALID',
        `append to '${table}': time column '${timeColumn}' is null at row ${nullAt}; every row of a time-partitioned table needs a time`,
      );
    }
  }
}

function checkCompatible(table: string, existing: readonly ColumnSchema[], data: Table): void {
  const byName = new Map(existing.map((c) => [c.name.toLowerCase(), c]));
  for (const column of data.columns) {
    const old = byName.get(column.name.toLowerCase());
    if (!old) continue;
    if (old.name !== column.name || old.type !== column.type) {
      throw new FerryError(
        'FERRY_ARGUMENT_INVALID',
        `append to '${table}': column '${column.name}' (${column.type}) conflicts with the table's column '${old.name}' (${old.type}); ` +
          'keep names and types stable, or add the values under a new column name',
      );
    }
  }
}

function mergeSchema(existing: readonly ColumnSchema[], data: Table): ColumnSchema[] {
  const merged = [...existing];
  for (const c of data.columns) {
    if (!merged.some((m) => m.name === c.name)) merged.push({ name: c.name, type: c.type });
  }
  return merged;
}

/* ---------------------------------------------------------------- writing */

async function fsyncFile(file: string): Promise<void> {
  const handle = await open(file, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function fsyncDir(dir: string): Promise<void> {
  // Windows cannot open a folder to fsync it; NTFS journals renames itself.
  if (process.platform === 'win32') return;
  await fsyncFile(dir);
}

/** Creates `dir` and fsyncs the parents of every folder it had to create, so the new entries persist. */
async function ensureDir(dir: string, root: string): Promise<void> {
  const first = await mkdir(dir, { recursive: true });
  if (first === undefined) return;
  for (let current = dir; ; current = path.dirname(current)) {
    await fsyncDir(path.dirname(current));
    if (current === first || current === root || path.dirname(current) === current) break;
  }
}

async function removeStaleStaging(dir: string): Promise<void> {
  const entries = await readdir(dir).catch(ignoreMissing);
  const now = Date.now();
  for (const name of entries ?? []) {
    const full = path.join(dir, name);
    const info = await stat(full).catch(ignoreMissing);
    if (info && now - info.mtimeMs > STALE_STAGING_MS)
      await rm(full, { recursive: true, force: true });
  }
}

/* ---------------------------------------------------------------- reading */

interface TableDirScan {
  readonly exists: boolean;
  /** Parquet files directly in the folder (unpartitioned appends). */
  readonly direct: boolean;
  /** Parquet files in `date=` subfolders. */
  readonly partitioned: boolean;
}

async function scanTableDir(dir: string): Promise<TableDirScan> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(ignoreMissing);
  let direct = false;
  let partitioned = false;
  for (const entry of entries ?? []) {
    if (entry.isFile() && entry.name.endsWith('.parquet')) direct = true;
    else if (!partitioned && entry.isDirectory() && entry.name.startsWith(PARTITION_PREFIX)) {
      // A crash between mkdir and rename can leave an empty date folder; it holds no table.
      const files = await readdir(path.join(dir, entry.name)).catch(ignoreMissing);
      partitioned = (files ?? []).some((f) => f.endsWith('.parquet'));
    }
  }
  return { exists: direct || partitioned, direct, partitioned };
}

async function describe(connection: DuckDBConnection, source: string): Promise<ColumnSchema[]> {
  const prepared = await prepare(connection, `SELECT * FROM ${source}`);
  try {
    const schema: ColumnSchema[] = [];
    for (let i = 0; i < prepared.columnCount; i++) {
      schema.push({ name: prepared.columnName(i), type: columnTypeOf(prepared.columnTypeId(i)) });
    }
    return schema;
  } finally {
    prepared.destroySync();
  }
}

async function prepare(
  connection: DuckDBConnection,
  sql: string,
): Promise<DuckDBPreparedStatement> {
  try {
    return await connection.prepare(sql);
  } catch (error) {
    throw new FerryError(
      'FERRY_ARGUMENT_INVALID',
      `offline query is not valid: ${messageOf(error)}`,
      {
        cause: error,
      },
    );
  }
}

/** Prepares, binds, runs and converts one SELECT. */
async function runSelect(
  connection: DuckDBConnection,
  sql: string,
  params: readonly (Scalar | DuckDBValue)[],
  fromUser = false,
): Promise<Table> {
  const prepared = await prepare(connection, sql);
  let result: DuckDBMaterializedResult;
  try {
    if (fromUser && prepared.statementType !== StatementType.SELECT) {
      throw new FerryError(
        'FERRY_ARGUMENT_INVALID',
        'offline query must be a single read-only SELECT; write to the offline store with append()',
      );
    }
    if (prepared.parameterCount !== params.length) {
      throw new FerryError(
        'FERRY_ARGUMENT_INVALID',
        `offline query uses ${prepared.parameterCount} parameter(s) ($1...) but ${params.length} were given`,
      );
    }
    params.forEach((value, i) => bindParam(prepared, i + 1, value));
    result = await prepared.run();
  } catch (error) {
    if (error instanceof FerryError) throw error;
    const message = messageOf(error);
    const code = /^IO Error/i.test(message) ? 'FERRY_DATA_UNREADABLE' : 'FERRY_ARGUMENT_INVALID';
    throw new FerryError(code, `offline query failed: ${message}`, { cause: error });
  } finally {
    prepared.destroySync();
  }
  return resultToTable(result);
}

/* ---------------------------------------------------------------- parameters and SQL text */

function timestampOf(ms: number): DuckDBTimestampValue {
  return new DuckDBTimestampValue(BigInt(Math.round(ms * 1000)));
}

/** Binds a Ferry scalar as the type DuckDB inferred for the parameter, reading numbers as UTC ms for times. */
function bindParam(
  prepared: DuckDBPreparedStatement,
  index: number,
  value: Scalar | DuckDBValue,
): void {
  if (typeof value !== 'number') {
    prepared.bindValue(index, value);
    return;
  }
  const expected = prepared.parameterTypeId(index);
  if (
    expected === DuckDBTypeId.TIMESTAMP ||
    expected === DuckDBTypeId.TIMESTAMP_MS ||
    expected === DuckDBTypeId.TIMESTAMP_S ||
    expected === DuckDBTypeId.TIMESTAMP_NS
  ) {
    if (!Number.isFinite(value))
      throw new FerryError(
        'FERRY_ARGUMENT_INVALID',
        `parameter $${index} must be UTC milliseconds, got ${value}`,
      );
    prepared.bindTimestamp(index, timestampOf(value));
  } else if (expected === DuckDBTypeId.TIMESTAMP_TZ) {
    if (!Number.isFinite(value))
      throw new FerryError(
        'FERRY_ARGUMENT_INVALID',
        `parameter $${index} must be UTC milliseconds, got ${value}`,
      );
    prepared.bindTimestampTZ(index, new DuckDBTimestampTZValue(BigInt(Math.round(value * 1000))));
  } else if (expected === DuckDBTypeId.DATE) {
    prepared.bindDate(index, new DuckDBDateValue(Math.floor(value / MS_PER_DAY)));
  } else if (
    Number.isSafeInteger(value) &&
    expected !== DuckDBTypeId.DOUBLE &&
    expected !== DuckDBTypeId.FLOAT &&
    expected !== DuckDBTypeId.DECIMAL
  ) {
    prepared.bindValue(index, BigInt(value), BIGINT);
  } else {
    prepared.bindValue(index, value, DOUBLE);
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function ignoreMissing(error: unknown): undefined {
  if ((error as NodeJS.ErrnoException | null)?.code === 'ENOENT') return undefined;
  throw error;
}
