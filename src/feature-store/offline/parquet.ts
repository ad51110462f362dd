/**
 * ParquetOfflineStore: the embedded OfflineStore. A table is a folder of immutable Parquet files
 * under the store's root; one in-memory DuckDB instance per store writes and queries them.
 *
 * Concurrency: each operation (append, read, count, query, compact) runs on a connection of its
 * own, opened for it and closed after it, because statements of one DuckDB connection must not
 * interleave and the store's callers (inference log flushes, monitors, the feature store) do not
 * wait for each other. At most {@link MAX_CONNECTIONS} operations use DuckDB at once; the rest
 * queue in order. A temporary table lives and dies with the connection of the operation that made it.
 *
 * Layout: `<root>/<table>/date=YYYY-MM-DD/part-<ms>-<uuid>.parquet` when an append names a time
 * column (the UTC date of that column), else `<root>/<table>/part-<ms>-<uuid>.parquet`. A file is
 * written under `<root>/.staging/`, fsynced, then renamed into place, so readers never see a
 * partial file and an acknowledged append survives a crash. Column types are stored as float →
 * DOUBLE, int → BIGINT, bool → BOOLEAN, string → VARCHAR, timestamp → TIMESTAMP (UTC, no zone).
 * Names sort in append order (`<ms>` grows in this process and starts above every file it has seen).
 * An append whose rows fall on one date (a stream's batch, typically) is one plain COPY into one
 * staged file; rows of several dates take DuckDB's partitioned COPY.
 *
 * Others' writes: the store remembers the files it published itself (appends and merges), so that
 * `versionOfOthers` can tell a caller that keeps a table's recent rows in memory (the feature
 * store's duplicate check) whether anyone else added, merged or removed rows since, from a listing
 * of the folders concerned and without DuckDB.
 *
 * Compaction: every append adds a file per folder it touches (the table's own folder or a `date=`
 * folder), so a stream of small appends would leave thousands of files to open on each read. A
 * folder's files form tiers: an append's file is tier 0, and a run of consecutive files of one tier
 * that grows past `compactAfterFiles` (default 32) is merged, in the background after the append
 * that crossed the line, into one file of the next tier. A folder thus holds at most about
 * `compactAfterFiles` files per tier, tiers grow by that factor (a million appends make four), and a
 * row is rewritten once per tier rather than on every compaction. `compact(table)` merges each
 * folder into one file now. A merged file keeps the rows in the order DuckDB reads its inputs and
 * the union of their columns (`union_by_name`: a column added by a later append is null in older
 * rows), and is named after the key range it covers:
 * `part-<last ms>-<last uuid>-c<tier>-<first ms>-<first uuid>.parquet`, which sorts where its last
 * input did. Its rename into the folder is the commit: from then on every listing of this store
 * (in any process) treats a file whose key range lies inside a merged file's range as dead and
 * leaves it out, so a crash between the rename and the removal of the inputs can never count a
 * row twice, and a crash before the rename leaves only a staged file, removed after an hour. Reads
 * name their files one by one (never a glob, which could pick up a merged file next to its
 * inputs); the inputs are removed once every read that started before the commit has finished,
 * and a read that still finds a file gone (removed by another process) lists the folder again and
 * retries. Merges of one table run one at a time, at most {@link MAX_COMPACTIONS} tables at once;
 * the rename itself takes the table's write lock, so a merge never lands in a table dropped under
 * it. close() waits for running and scheduled compactions.
 *
 * Known limits (write them down, do not rediscover them):
 * - one writing process per root: appends and compactions are serialised per table inside this
 *   process only, and the schema check of an append trusts this process's view of the table;
 * - dead files left by a crash are invisible at once but removed only by the first append to their
 *   table in a later process (automatic compaction on) or by `compact()`; tools other than this
 *   store that glob the folder
 *   (plain DuckDB, Spark) see them, and see inputs next to their merged file for the moment between
 *   the commit and their removal;
 * - automatic compaction looks at the folders an append touched (and, once per process, at every
 *   folder of a table on its first append): old partitions nobody appends to keep their files
 *   until `compact()` is called;
 * - each read lists the table's folders, one `readdir` per `date=` folder, and passes every file's
 *   path to DuckDB, so a table of many dates pays for that on each read;
 * - reads do not prune `date=` folders by the time range; DuckDB skips row groups by their
 *   min/max statistics instead;
 * - an append that spans several dates renames its files one by one, so a concurrent reader can
 *   see some of its dates and not others;
 * - rows of a time-partitioned table come back in no particular order (DuckDB's partitioned
 *   write does not keep it); an unpartitioned table reads back in append order, merged or not.
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
/** Staging folders older than this are leftovers of a crashed append or compaction. */
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
/** Tables compacting at the same time: each holds a connection while it copies, so leave some to appends and reads. */
const MAX_COMPACTIONS = 2;
const DEFAULT_COMPACT_AFTER_FILES = 32;
/** Times a read lists its files again when one vanished under it (removed by another process's compaction). */
const READ_ATTEMPTS = 5;

export interface ParquetOfflineStoreOptions {
  /** The root folder of the tables; created if missing. */
  readonly path: string;
  /**
   * A folder whose run of same-tier files grows past this many is merged into one file in the
   * background (see the module header). A whole number >= 1, or `Infinity` to compact only when
   * `compact()` is called. Default 32.
   */
  readonly compactAfterFiles?: number;
  /**
   * Told when a background compaction (or the removal of merged files) fails. Nothing is lost: the
   * table keeps its files, and the next append tries again. The default emits a process warning.
   */
  readonly onCompactionError?: (error: FerryError, table: string) => void;
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
  // The root goes into DuckDB file lists, where these characters would be read as wildcards.
  if (/[*?[\]{}]/.test(root)) {
    throw new FerryError(
      'FERRY_ARGUMENT_INVALID',
      `offline store path '${root}' contains a glob character (* ? [ ] { }); choose a folder without them`,
    );
  }
  const compactAfterFiles = options.compactAfterFiles ?? DEFAULT_COMPACT_AFTER_FILES;
  if (
    compactAfterFiles !== Number.POSITIVE_INFINITY &&
    !(Number.isSafeInteger(compactAfterFiles) && compactAfterFiles >= 1)
  ) {
    throw new FerryError(
      'FERRY_ARGUMENT_INVALID',
      `compactAfterFiles must be a whole number >= 1 or Infinity, got ${String(compactAfterFiles)}`,
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
  return new ParquetOfflineStore(root, instance, {
    compactAfterFiles,
    onCompactionError: options.onCompactionError ?? warnCompactionError,
  });
}

/** What a merge did: how many input files it replaced, and the removal of those files. */
interface MergeOutcome {
  readonly merged: number;
  /** Settles once the inputs are removed (after the reads that may use them). */
  readonly removals: readonly Promise<void>[];
}

export class ParquetOfflineStore implements OfflineStore {
  readonly backend = 'parquet';
  readonly root: string;
  private readonly instance: DuckDBInstance;
  private readonly compactAfterFiles: number;
  private readonly onCompactionError: (error: FerryError, table: string) => void;
  /** Per-table tail of the write chain: appends, drops and compaction commits of one table run one after another. */
  private readonly writeChains = new Map<string, Promise<void>>();
  /** Per-table tail of the compaction chain: merges of one table run one after another. */
  private readonly compactionChains = new Map<string, Promise<void>>();
  /** Folders waiting for a background compaction check, by table; present while a check is queued and not started. */
  private readonly pendingChecks = new Map<string, Set<string>>();
  /** Tables whose every folder this process has checked once (leftovers of a crash removed). */
  private readonly checkedTables = new Set<string>();
  /** Drops per table: a merge started before a drop must not commit into the table after it. */
  private readonly generations = new Map<string, number>();
  /**
   * Per folder, the live files this store object published (appends and merges), so that
   * {@link versionOfOthers} can leave them out: added before their rename, the inputs of a merge
   * taken out at its commit, a dropped table's forgotten.
   */
  private readonly ownFiles = new Map<string, Set<string>>();
  /** Column schemas of tables this process has read or written; valid because it is the only writer. */
  private readonly schemas = new Map<string, ColumnSchema[]>();
  private lastFileMs = 0;
  /** Whether `.staging/` is known to exist (made by the first append, made again after a failed one). */
  private stagingMade = false;
  private closed = false;
  /** Operations still running (queued ones included), which close() waits for. */
  private readonly inFlight = new Set<Promise<unknown>>();
  /** Background compactions and removals of merged files, which close() also waits for. */
  private readonly background = new Set<Promise<void>>();
  /** Reads in progress; the inputs of a merge are removed only after those running at its commit. */
  private readonly activeReads = new Set<Promise<void>>();
  /** Merged files (absolute paths) that are dead but still wait for earlier reads before removal. */
  private readonly retiring = new Set<string>();
  private readonly connections = new Gate(MAX_CONNECTIONS);
  private readonly compactions = new Gate(MAX_COMPACTIONS);

  /** Use {@link openParquetOfflineStore}. */
  constructor(
    root: string,
    instance: DuckDBInstance,
    options: {
      compactAfterFiles: number;
      onCompactionError: (error: FerryError, table: string) => void;
    },
  ) {
    this.root = root;
    this.instance = instance;
    this.compactAfterFiles = options.compactAfterFiles;
    this.onCompactionError = options.onCompactionError;
  }

  append(table: string, data: Table, options?: { timeColumn?: string }): Promise<void> {
    return this.track(async () => {
      assertTableName(table);
      const timeColumn = options?.timeColumn;
      validateData(table, data, timeColumn);
      const folders = await this.serialize(table, () => this.appendNow(table, data, timeColumn));
      // The rows are durable: the append resolves now, and compaction follows in the background.
      if (folders.length > 0) this.scheduleCompaction(table, folders);
    });
  }

  read(table: string, options: ReadOptions = {}): Promise<Table> {
    return this.track(async () => {
      assertTableName(table);
      return this.reading([table], (sources) =>
        this.withConnection((connection) =>
          this.readFrom(connection, table, sources.get(table) ?? '', options),
        ),
      );
    });
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
      const result = await this.reading([table], (sources) =>
        this.withConnection((connection) =>
          runSelect(connection, `SELECT count(*) AS n FROM ${sources.get(table) ?? ''}`, []),
        ),
      );
      return Number(result.columns[0]?.values[0] ?? 0);
    });
  }

  async hasTable(table: string): Promise<boolean> {
    this.assertOpen();
    assertTableName(table);
    return hasTableFiles(this.tableDir(table));
  }

  /**
   * A version of what others wrote of `table` at or after `since` (see the OfflineStore
   * contract): the names of the live files of its own folder and of its `date=` folders from the
   * UTC date of `since` on that this object did not publish, the files it published that are gone
   * without its merging them, and the number of times it dropped the table. One `readdir` of the
   * table's folder and one per such date folder; DuckDB is not involved.
   */
  async versionOfOthers(table: string, since: number): Promise<string> {
    this.assertOpen();
    assertTableName(table);
    const dir = this.tableDir(table);
    const first = Number.isFinite(since) ? dateFolderOf(since) : null;
    // Names of 4-digit years sort by date; any other name is kept, to be safe.
    const inRange = (name: string): boolean =>
      first === null || !DATE_FOLDER.test(name) || name >= first;
    const entries = (await readdir(dir, { withFileTypes: true }).catch(ignoreMissing)) ?? [];
    const folders = new Set([dir]);
    for (const e of entries) {
      if (e.isDirectory() && e.name.startsWith(PARTITION_PREFIX) && inRange(e.name))
        folders.add(path.join(dir, e.name));
    }
    // A folder of files this object published that someone removed whole.
    for (const folder of this.ownFiles.keys()) {
      if (isFolderOf(folder, dir) && (folder === dir || inRange(path.basename(folder))))
        folders.add(folder);
    }
    const version: string[] = [`drops ${this.generationOf(table)}`];
    for (const folder of folders) {
      const names =
        folder === dir
          ? entries.filter((e) => e.isFile() && e.name.endsWith('.parquet')).map((e) => e.name)
          : await parquetFilesIn(folder);
      const own = this.ownFiles.get(folder);
      const where = path.relative(dir, folder);
      for (const name of classifyFiles(names).live) {
        if (!own?.has(name)) version.push(`+${where}/${name}`);
      }
      if (own !== undefined && own.size > 0) {
        const present = new Set(names);
        for (const name of own) if (!present.has(name)) version.push(`-${where}/${name}`);
      }
    }
    return version.join('\n');
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
        if (await hasTableFiles(child)) tables.push(name);
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
    // A merge that started before the drop sees the change and does not commit.
    this.generations.set(table, this.generationOf(table) + 1);
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
    for (const folder of this.ownFiles.keys()) {
      if (isFolderOf(folder, dir)) this.ownFiles.delete(folder);
    }
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
      const names = new Set<string>();
      for (const match of sql.matchAll(PLACEHOLDER)) {
        const name = match[1] ?? '';
        assertTableName(name);
        names.add(name);
      }
      return this.reading([...names], (sources) => {
        const expanded = sql.replace(PLACEHOLDER, (_all, name: string) => sources.get(name) ?? '');
        return this.withConnection((connection) => runSelect(connection, expanded, params, true));
      });
    });
  }

  /**
   * Merges each folder of `table` (its own, and each `date=` partition) into one file now, waits
   * until the merged inputs are removed, and says how many files the table has (appends that ran
   * meanwhile included) and how many were merged away. Throws FERRY_ARGUMENT_INVALID for an
   * unknown table.
   * @example
   * const { files, compacted } = await store.compact('inference_log/fraud');
   */
  compact(table: string): Promise<{ files: number; compacted: number }> {
    return this.track(async () => {
      assertTableName(table);
      const outcome = await this.serializeCompaction(table, async () => {
        const folders = await this.foldersOf(table);
        let merged = 0;
        const removals: Promise<void>[] = [];
        for (const folder of folders) {
          const done = await this.compactFolder(table, folder, 'all');
          merged += done.merged;
          removals.push(...done.removals);
        }
        return { merged, removals };
      });
      await Promise.all(outcome.removals);
      const files = await this.liveFilesOf(table);
      if (files.length === 0) throw await this.unknownTable(table);
      return { files: files.length, compacted: outcome.merged };
    });
  }

  /**
   * Resolves once the background compactions scheduled so far, and the removals of the files they
   * merged, are done. For tests and benchmarks that look at the files.
   */
  async compactionsSettled(): Promise<void> {
    while (this.background.size > 0) await Promise.allSettled([...this.background]);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Closing the instance under a running statement would crash the process: wait for every
    // operation already asked for, queued ones included (no new one starts once closed), then for
    // the compactions they scheduled; each closes its own connection.
    await Promise.allSettled([...this.inFlight]);
    await this.compactionsSettled();
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

  /** Records background work (a compaction, a removal; neither rejects) until it settles, for close(). */
  private trackBackground(work: Promise<void>): void {
    this.background.add(work);
    const done = (): void => void this.background.delete(work);
    work.then(done, done);
  }

  /** Hands a background failure to `onCompactionError`; nothing was lost, so nothing is thrown. */
  private reportCompactionError(error: unknown, table: string): void {
    try {
      this.onCompactionError(asFerryError(error, table), table);
    } catch {
      // A throwing handler must not turn into an unhandled rejection of the store's own work.
    }
  }

  /**
   * Runs `work` on a new connection of its own, closed afterwards, once one of the
   * {@link MAX_CONNECTIONS} slots is free. `work` must not ask for another connection: with every
   * slot taken by such callers, none would ever be freed.
   */
  private withConnection<T>(work: (connection: DuckDBConnection) => Promise<T>): Promise<T> {
    return this.connections.run(async () => {
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
    });
  }

  /**
   * Runs `work` with the `read_parquet(...)` source of each of `tables`, made from the files live
   * at this moment, as a registered read: no merged input it may name is removed before it ends.
   * A file can still vanish when another process compacts the same root; then the folders are
   * listed again and `work` retried, up to {@link READ_ATTEMPTS} times.
   */
  private async reading<T>(
    tables: readonly string[],
    work: (sources: ReadonlyMap<string, string>) => Promise<T>,
  ): Promise<T> {
    // Registered before listing: a merge that commits after this point waits for this read.
    let finish = (): void => undefined;
    const read = new Promise<void>((resolve) => (finish = resolve));
    this.activeReads.add(read);
    try {
      for (let attempt = 1; ; attempt++) {
        const sources = new Map<string, string>();
        for (const table of tables) sources.set(table, await this.sourceOf(table));
        try {
          return await work(sources);
        } catch (error) {
          if (attempt >= READ_ATTEMPTS || !isVanishedFile(error)) throw error;
        }
      }
    } finally {
      this.activeReads.delete(read);
      finish();
    }
  }

  private ownFilesOf(folder: string): Set<string> {
    let own = this.ownFiles.get(folder);
    if (own === undefined) {
      own = new Set();
      this.ownFiles.set(folder, own);
    }
    return own;
  }

  private tableDir(table: string): string {
    return path.join(this.root, ...table.split('/'));
  }

  private generationOf(table: string): number {
    return this.generations.get(table) ?? 0;
  }

  /** Runs `task` after every earlier write of `table` has settled. */
  private serialize<T>(table: string, task: () => Promise<T>): Promise<T> {
    return chain(this.writeChains, table, task);
  }

  /** Runs `task` after every earlier compaction of `table` has settled. */
  private serializeCompaction<T>(table: string, task: () => Promise<T>): Promise<T> {
    return chain(this.compactionChains, table, task);
  }

  /** The folders of a table that may hold files: its own, then its `date=` folders in order. */
  private async foldersOf(table: string): Promise<string[]> {
    const dir = this.tableDir(table);
    const entries = await readdir(dir, { withFileTypes: true }).catch(ignoreMissing);
    const partitions = (entries ?? [])
      .filter((e) => e.isDirectory() && e.name.startsWith(PARTITION_PREFIX))
      .map((e) => e.name)
      .sort();
    return [dir, ...partitions.map((name) => path.join(dir, name))];
  }

  /** The table's live files, absolute, in read order: its own folder's, then each date's. */
  private async liveFilesOf(table: string): Promise<string[]> {
    const folders = await this.foldersOf(table);
    const listed = await Promise.all(folders.map((folder) => parquetFilesIn(folder)));
    const files: string[] = [];
    for (const [i, names] of listed.entries()) {
      const folder = folders[i] ?? '';
      const { live, parts } = classifyFiles(names);
      for (const part of parts.values()) this.lastFileMs = Math.max(this.lastFileMs, part.hi.ms);
      for (const name of live) files.push(path.join(folder, name));
    }
    return files;
  }

  private async unknownTable(table: string): Promise<FerryError> {
    const existing = await this.listTables();
    return new FerryError(
      'FERRY_ARGUMENT_INVALID',
      `offline table '${table}' does not exist (no Parquet files under ${this.tableDir(table)}); ` +
        `existing tables: ${existing.length > 0 ? existing.join(', ') : '(none)'}`,
      { details: { table, existing } },
    );
  }

  /** The `read_parquet(...)` expression of a table's live files; throws FERRY_ARGUMENT_INVALID when it has none. */
  private async sourceOf(table: string): Promise<string> {
    const files = await this.liveFilesOf(table);
    if (files.length === 0) throw await this.unknownTable(table);
    // Each file by name, never a glob: a glob evaluated later could take in a merged file beside its inputs.
    return `read_parquet([${files.map(quoteString).join(', ')}], union_by_name = true, hive_partitioning = false)`;
  }

  private async schemaOf(table: string): Promise<ColumnSchema[] | null> {
    const cached = this.schemas.get(table);
    if (cached) return cached;
    if (!(await hasTableFiles(this.tableDir(table)))) return null;
    const schema = await this.reading([table], (sources) =>
      this.withConnection((connection) => describe(connection, sources.get(table) ?? '')),
    );
    this.schemas.set(table, schema);
    return schema;
  }

  /** Writes the rows and publishes their files; returns the folders that received a file. */
  private async appendNow(
    table: string,
    data: Table,
    timeColumn: string | undefined,
  ): Promise<string[]> {
    const stagingDir = path.join(this.root, STAGING_DIR);
    // The staged file (or, for several dates, folder of files), removed on the way out.
    let staged: string | null = null;
    try {
      // Read first, on a connection of its own: sets lastFileMs above the table's existing files.
      const existing = await this.schemaOf(table);
      if (existing) checkCompatible(table, existing, data);
      // An empty batch has nothing to add to an existing table; it still creates a new one, schema included.
      if (data.rowCount === 0 && existing) return [];
      const tableDir = this.tableDir(table);
      const timeIndex = data.columns.findIndex((c) => c.name === timeColumn);
      // A stream's batch usually falls on one date: then one plain COPY writes its one file, and
      // there is no partition folder to list. Several dates take DuckDB's partitioned COPY.
      const date =
        timeColumn !== undefined && data.rowCount > 0
          ? singleDateOf(data.columns[timeIndex]?.values ?? [])
          : null;
      const partitioned = timeColumn !== undefined && data.rowCount > 0 && date === null;
      if (!this.stagingMade) {
        await mkdir(stagingDir, { recursive: true });
        this.stagingMade = true;
      }
      const target = (staged = path.join(
        stagingDir,
        partitioned ? randomUUID() : `${randomUUID()}.parquet`,
      ));
      // DuckDB's part ends with the COPY: the connection's slot is free again while files publish.
      await this.withConnection(async (connection) => {
        // The connection is this append's alone, so a fixed temporary name cannot collide.
        await stageTable(connection, STAGED_TABLE, data);
        let select = stagedSelect(data);
        if (partitioned) {
          select += `, strftime(CAST(${castStaged('timestamp', `c${timeIndex}`)} AS DATE), '%Y-%m-%d') AS ${DATE_COLUMN}`;
        }
        const copyOptions = partitioned
          ? `FORMAT parquet, COMPRESSION zstd, PARTITION_BY (${DATE_COLUMN})`
          : 'FORMAT parquet, COMPRESSION zstd';
        await connection.run(
          `COPY (SELECT ${select} FROM temp.${STAGED_TABLE}) TO ${quoteString(target)} (${copyOptions})`,
        );
      });
      const moves = partitioned
        ? await stagedPartitions(target, tableDir)
        : [
            {
              from: target,
              dir: date === null ? tableDir : path.join(tableDir, `${PARTITION_PREFIX}${date}`),
            },
          ];
      const folders = await this.publishFiles(moves);
      // A single staged file has moved: nothing is left to remove.
      if (!partitioned) staged = null;
      this.schemas.set(table, mergeSchema(existing ?? [], data));
      return folders;
    } catch (error) {
      // Whatever failed, the next append makes sure its staging folder is there.
      this.stagingMade = false;
      if (error instanceof FerryError) throw error;
      throw new FerryError(
        'FERRY_BACKEND_UNAVAILABLE',
        `writing offline table '${table}' under ${this.root} failed: ${messageOf(error)}`,
        { cause: error },
      );
    } finally {
      // Gone already when published; what is left of a failed append goes.
      if (staged !== null) await rm(staged, { recursive: true, force: true });
    }
  }

  /**
   * Moves staged files into their folders, durably: fsync each file, rename, fsync the folders.
   * Returns the folders that received a file.
   */
  private async publishFiles(moves: readonly StagedMove[]): Promise<string[]> {
    // Names sort in append order: readers list files alphabetically, and a merged file's key range
    // must never take in a later append.
    const ms = (this.lastFileMs = Math.max(Date.now(), this.lastFileMs + 1));
    const touched = new Set<string>();
    for (const move of moves) {
      await datasyncFile(move.from);
      await ensureDir(move.dir, this.root);
      const name = `part-${ms}-${randomUUID()}.parquet`;
      // Known as this object's before it shows, so that versionOfOthers never counts it.
      const own = this.ownFilesOf(move.dir);
      own.add(name);
      try {
        await rename(move.from, path.join(move.dir, name));
      } catch (error) {
        own.delete(name);
        throw error;
      }
      touched.add(move.dir);
    }
    for (const dir of touched) await fsyncDir(dir);
    return [...touched];
  }

  /* ---------------------------------------------------------------- compaction */

  /**
   * Queues a background check of `folders` of `table`, after the table's running compaction. A
   * check already queued and not started takes the folders instead, so a stream of appends keeps
   * at most one compaction running and one waiting per table.
   */
  private scheduleCompaction(table: string, folders: readonly string[]): void {
    if (this.compactAfterFiles === Number.POSITIVE_INFINITY) return;
    const queued = this.pendingChecks.get(table);
    if (queued) {
      for (const folder of folders) queued.add(folder);
      return;
    }
    const pending = new Set(folders);
    this.pendingChecks.set(table, pending);
    const task = this.serializeCompaction(table, async () => {
      // From here on, appends queue a new check: this one no longer looks at `pending`.
      this.pendingChecks.delete(table);
      if (!this.checkedTables.has(table)) {
        // Once per process: every folder, for leftovers of a crash and files of earlier runs.
        this.checkedTables.add(table);
        for (const folder of await this.foldersOf(table)) pending.add(folder);
      }
      for (const folder of pending) await this.compactFolder(table, folder, 'auto');
    }).catch((error: unknown) => this.reportCompactionError(error, table));
    this.trackBackground(task);
  }

  /**
   * Compacts one folder: removes dead files a crash left, then merges (`auto`) each run of
   * same-tier files longer than `compactAfterFiles`, again until none is left, or (`all`) every
   * run of consecutive files into one. Runs inside the table's compaction chain.
   */
  private async compactFolder(
    table: string,
    folder: string,
    mode: 'auto' | 'all',
  ): Promise<MergeOutcome> {
    const generation = this.generationOf(table);
    let merged = 0;
    const removals: Promise<void>[] = [];
    for (;;) {
      const { live, dead, parts } = classifyFiles(await parquetFilesIn(folder));
      // Dead files not retired by this process were merged before it saw them: no read of this
      // process names them, so they go at once.
      const leftovers = dead.filter((name) => !this.retiring.has(path.join(folder, name)));
      if (leftovers.length > 0) await removeFiles(folder, leftovers);
      const merges = planMerges(live, parts, mode, this.compactAfterFiles);
      if (merges.length === 0) break;
      for (const inputs of merges) {
        const committed = await this.mergeFiles(table, folder, inputs, generation);
        if (!committed) return { merged, removals };
        merged += inputs.length;
        removals.push(committed.removal);
      }
      if (mode === 'all') break;
    }
    return { merged, removals };
  }

  /**
   * Merges `inputs` (consecutive live files of `folder`) into one file of the next tier: copy in
   * staging, fsync, rename into the folder under the table's write lock (the commit), then remove
   * the inputs once the reads that started before the commit are done. Returns that removal (in an
   * object: an async function would wait for a promise it returns), or null when the table was
   * dropped meanwhile (nothing committed).
   */
  private async mergeFiles(
    table: string,
    folder: string,
    inputs: readonly PartFile[],
    generation: number,
  ): Promise<{ removal: Promise<void> } | null> {
    const first = inputs[0];
    const last = inputs.at(-1);
    if (!first || !last) return null;
    const tier = Math.max(...inputs.map((p) => p.tier)) + 1;
    const name = `part-${last.hi.text}-c${tier}-${first.lo.text}.parquet`;
    const staging = path.join(this.root, STAGING_DIR, randomUUID());
    const out = path.join(staging, 'out.parquet');
    const paths = inputs.map((p) => path.join(folder, p.name));
    try {
      await this.compactions.run(() =>
        this.withConnection(async (connection) => {
          await mkdir(staging, { recursive: true });
          // In input order: DuckDB keeps the order of a file list when it copies (insertion order).
          await connection.run(
            `COPY (SELECT * FROM read_parquet([${paths.map(quoteString).join(', ')}], union_by_name = true, hive_partitioning = false)) ` +
              `TO ${quoteString(out)} (FORMAT parquet, COMPRESSION zstd)`,
          );
        }),
      );
      await fsyncFile(out);
      const committed = await this.serialize(table, async () => {
        if (this.generationOf(table) !== generation) return false;
        const own = this.ownFilesOf(folder);
        own.add(name);
        try {
          await rename(out, path.join(folder, name));
        } catch (error) {
          own.delete(name);
          throw error;
        }
        // The inputs are dead from here on, their rows in the merged file.
        for (const input of inputs) own.delete(input.name);
        // Durable before any input goes: a removal persisted without the rename would lose rows.
        await fsyncDir(folder);
        return true;
      });
      if (!committed) return null;
    } catch (error) {
      // A drop under a running merge removes its inputs: not a failure of the merge.
      if (this.generationOf(table) !== generation) return null;
      throw asFerryError(error, table);
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
    for (const file of paths) this.retiring.add(file);
    const readers = [...this.activeReads];
    const removal = Promise.allSettled(readers)
      .then(() =>
        removeFiles(
          folder,
          inputs.map((p) => p.name),
        ),
      )
      // Dead files that stay are invisible; the table's next check removes them.
      .catch((error: unknown) => this.reportCompactionError(error, table))
      .finally(() => {
        for (const file of paths) this.retiring.delete(file);
      });
    this.trackBackground(removal);
    return { removal };
  }
}

/** At most `size` tasks at once; the rest wait their turn, first come first served. */
class Gate {
  private free: number;
  private readonly waiters: (() => void)[] = [];

  constructor(size: number) {
    this.free = size;
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((resolve) => this.waiters.push(resolve));
    try {
      return await task();
    } finally {
      // Hand the slot straight to the next waiter, so that it cannot be taken out of turn.
      const next = this.waiters.shift();
      if (next) next();
      else this.free++;
    }
  }
}

/** Runs `task` after the tail of `key`'s chain in `chains` has settled, and becomes the new tail. */
function chain<T>(
  chains: Map<string, Promise<void>>,
  key: string,
  task: () => Promise<T>,
): Promise<T> {
  const previous = chains.get(key) ?? Promise.resolve();
  const result = previous.then(task);
  const tail = result.then(
    () => undefined,
    () => undefined,
  );
  chains.set(key, tail);
  void tail.then(() => {
    if (chains.get(key) === tail) chains.delete(key);
  });
  return result;
}

function asFerryError(error: unknown, table: string): FerryError {
  if (error instanceof FerryError) return error;
  return new FerryError(
    'FERRY_BACKEND_UNAVAILABLE',
    `compacting offline table '${table}' failed: ${messageOf(error)}; its files are unchanged`,
    { cause: error },
  );
}

function warnCompactionError(error: FerryError, table: string): void {
  process.emitWarning(`${error.code}: ${error.message}`, {
    code: error.code,
    detail: `background compaction of offline table '${table}'; it is tried again after the next append`,
  });
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

/** A staged file and the folder it is published into. */
interface StagedMove {
  readonly from: string;
  readonly dir: string;
}

/**
 * The UTC date (`YYYY-MM-DD`) all of `times` (UTC ms) fall on, as DuckDB's partitioned COPY
 * names it (times are rounded to the microsecond first, as staging does), or null when they
 * span several dates or fall outside the years 1000-9999 (where the two could write a year apart).
 */
function singleDateOf(times: readonly Scalar[]): string | null {
  let day: number | null = null;
  for (const t of times) {
    const d = Math.floor(Math.round((t as number) * 1000) / (MS_PER_DAY * 1000));
    if (day === null) day = d;
    else if (d !== day) return null;
  }
  if (day === null) return null;
  const text = new Date(day * MS_PER_DAY).toISOString().slice(0, 10);
  return /^[1-9]\d{3}-\d{2}-\d{2}$/.test(text) ? text : null;
}

/** Whether `folder` holds files of the table in `dir`: `dir` itself or one of its `date=` folders. */
function isFolderOf(folder: string, dir: string): boolean {
  return (
    folder === dir ||
    (path.dirname(folder) === dir && path.basename(folder).startsWith(PARTITION_PREFIX))
  );
}

/** A `date=` folder of a 4-digit year, whose names sort as their dates do. */
const DATE_FOLDER = /^date=[1-9]\d{3}-\d{2}-\d{2}$/;

/** The `date=` folder of the UTC date of `ms`, as appends name it, or null outside the years 1000-9999. */
function dateFolderOf(ms: number): string | null {
  const date = singleDateOf([ms]);
  return date === null ? null : `${PARTITION_PREFIX}${date}`;
}

/** The files of a partitioned COPY into `target`, each with the `date=` folder of `tableDir` it belongs in. */
async function stagedPartitions(target: string, tableDir: string): Promise<StagedMove[]> {
  const moves: StagedMove[] = [];
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
  return moves;
}

/** Makes a file's contents durable (fdatasync: its data and the size needed to read it back). */
async function datasyncFile(file: string): Promise<void> {
  const handle = await open(file, 'r');
  try {
    await handle.datasync();
  } finally {
    await handle.close();
  }
}

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

/* ---------------------------------------------------------------- files and their tiers */

const UUID = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}';
/** `part-<ms>-<uuid>.parquet` (an append) or `part-<hi>-c<tier>-<lo>.parquet` (a merge of lo..hi). */
const PART_FILE = new RegExp(`^part-((\\d+)-(${UUID}))(?:-c(\\d+)-((\\d+)-(${UUID})))?\\.parquet$`);

/** Where a file sorts among a table's appends: the publishing time, then the uuid. */
interface FileKey {
  readonly ms: number;
  readonly id: string;
  /** `<ms>-<uuid>` as it stands in the name. */
  readonly text: string;
}

/** A file this store named: the appends it holds (keys lo..hi) and its tier (0 for an append). */
interface PartFile {
  readonly name: string;
  readonly lo: FileKey;
  readonly hi: FileKey;
  readonly tier: number;
}

function parsePart(name: string): PartFile | null {
  const m = PART_FILE.exec(name);
  if (!m) return null;
  const hi: FileKey = { ms: Number(m[2]), id: m[3] ?? '', text: m[1] ?? '' };
  if (m[4] === undefined) return { name, lo: hi, hi, tier: 0 };
  const lo: FileKey = { ms: Number(m[6]), id: m[7] ?? '', text: m[5] ?? '' };
  return { name, lo, hi, tier: Number(m[4]) };
}

function compareKeys(a: FileKey, b: FileKey): number {
  return a.ms !== b.ms ? a.ms - b.ms : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/**
 * Whether merged file `c` holds the rows of `f`: its key range takes in f's. Two merges of the
 * very same range (possible only through a crash) keep the higher tier, then the later name.
 */
function covers(c: PartFile, f: PartFile): boolean {
  if (c === f || c.tier === 0) return false;
  const lo = compareKeys(c.lo, f.lo);
  const hi = compareKeys(f.hi, c.hi);
  if (lo > 0 || hi > 0) return false;
  return lo < 0 || hi < 0 || c.tier > f.tier || (c.tier === f.tier && c.name > f.name);
}

/**
 * Splits a folder's Parquet file names into live ones (in read order) and dead ones (inputs of a
 * committed merge). Files of other names are live and never merged.
 */
function classifyFiles(names: readonly string[]): {
  live: string[];
  dead: string[];
  parts: Map<string, PartFile>;
} {
  const parts = new Map<string, PartFile>();
  for (const name of names) {
    const part = parsePart(name);
    if (part) parts.set(name, part);
  }
  const merged = [...parts.values()].filter((p) => p.tier > 0);
  const live: string[] = [];
  const dead: string[] = [];
  for (const name of [...names].sort()) {
    const part = parts.get(name);
    if (part && merged.some((c) => covers(c, part))) dead.push(name);
    else live.push(name);
  }
  return { live, dead, parts };
}

/**
 * The merges to run in a folder, each a run of consecutive live files: in `auto` mode the runs of
 * one tier longer than `threshold`, in `all` mode every run of two files or more (a file of another
 * name breaks a run, so the read order never changes).
 */
function planMerges(
  live: readonly string[],
  parts: ReadonlyMap<string, PartFile>,
  mode: 'auto' | 'all',
  threshold: number,
): PartFile[][] {
  const merges: PartFile[][] = [];
  let run: PartFile[] = [];
  const close = (): void => {
    if (mode === 'all' ? run.length >= 2 : run.length > threshold) merges.push(run);
    run = [];
  };
  for (const name of live) {
    const part = parts.get(name);
    if (!part) close();
    else {
      if (mode === 'auto' && run[0] !== undefined && run[0].tier !== part.tier) close();
      run.push(part);
    }
  }
  close();
  return merges;
}

/** The names of the Parquet files directly in `folder` (none when it does not exist). */
async function parquetFilesIn(folder: string): Promise<string[]> {
  const entries = await readdir(folder, { withFileTypes: true }).catch(ignoreMissing);
  return (entries ?? [])
    .filter((e) => e.isFile() && e.name.endsWith('.parquet'))
    .map((e) => e.name);
}

async function removeFiles(folder: string, names: readonly string[]): Promise<void> {
  for (const name of names) await rm(path.join(folder, name), { force: true });
  await fsyncDir(folder).catch(ignoreMissing);
}

/** A DuckDB error for a file that was listed but is gone by the time DuckDB opens it. */
function isVanishedFile(error: unknown): boolean {
  for (let e: unknown = error; e instanceof Error; e = e.cause) {
    if (/No files found that match the pattern|No such file or directory/i.test(e.message))
      return true;
  }
  return false;
}

/* ---------------------------------------------------------------- reading */

/** Whether a folder holds a table: Parquet files in it or in one of its `date=` folders. */
async function hasTableFiles(dir: string): Promise<boolean> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(ignoreMissing);
  for (const entry of entries ?? []) {
    if (entry.isFile() && entry.name.endsWith('.parquet')) return true;
    if (entry.isDirectory() && entry.name.startsWith(PARTITION_PREFIX)) {
      // A crash between mkdir and rename can leave an empty date folder; it holds no table.
      const files = await readdir(path.join(dir, entry.name)).catch(ignoreMissing);
      if ((files ?? []).some((f) => f.endsWith('.parquet'))) return true;
    }
  }
  return false;
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
