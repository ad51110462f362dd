/**
 * OfflineStore: append-only history tables (feature events, datasets, the inference log).
 * Embedded default: Parquet files queried with DuckDB (`parquet.ts`).
 *
 * Contract (checked by `src/testing/offline-store.conformance.ts`):
 * - `append` resolves once the rows are durable; a table is created by its first append, and
 *   later appends must keep column names and types (new columns may be added; missing ones read
 *   as null);
 * - with `timeColumn`, files are partitioned by the UTC date of that column;
 * - timestamps are UTC milliseconds in and out (`timestamp` columns);
 * - a table is stored as files that small appends multiply; a backend may merge them at any time
 *   (in the background) and `compact` merges them now: either way a read, count or query sees
 *   every acknowledged row exactly once, before, during and after a merge, and a merge keeps the
 *   column types (a column added by a later append stays null in the older rows);
 * - table names are `[a-z0-9_]` segments joined by `/` (for example `inference_log/fraud`).
 */
import type { Scalar, Table } from '../../core/table.js';

export interface ReadOptions {
  readonly columns?: readonly string[];
  /** Only rows with start <= timeColumn < end. */
  readonly timeColumn?: string;
  readonly start?: number;
  readonly end?: number;
}

export interface OfflineStore {
  readonly backend: string;
  append(table: string, data: Table, options?: { timeColumn?: string }): Promise<void>;
  /** All rows of a table (optionally some columns and a time range); throws FERRY_ARGUMENT_INVALID for an unknown table. */
  read(table: string, options?: ReadOptions): Promise<Table>;
  count(table: string): Promise<number>;
  hasTable(table: string): Promise<boolean>;
  listTables(): Promise<string[]>;
  dropTable(table: string): Promise<void>;
  /**
   * A read-only SQL query (DuckDB dialect) in which `{{name}}` stands for the named table and
   * `$1`, `$2`... for `params`. For joins and aggregations the store computes in bulk.
   */
  query(sql: string, params?: readonly Scalar[]): Promise<Table>;
  /**
   * Merges the table's files now (each partition into one file) and resolves once the merged files
   * are gone. `files`: the table's files afterwards (appends that ran meanwhile included);
   * `compacted`: the files merged away. Throws FERRY_ARGUMENT_INVALID for an unknown table.
   */
  compact(table: string): Promise<{ files: number; compacted: number }>;
  /**
   * Optional, for a caller that keeps in memory what it read of a table and what it appended
   * since: a version of the rows of `table` whose time column is at or after `since` (UTC ms;
   * `timeColumn` of their appends), leaving out what this store object itself appended or merged.
   * It stays equal while only this object changes those rows, and changes when another process or
   * store object adds, merges or removes any of them, or the table is dropped.
   */
  versionOfOthers?(table: string, since: number): Promise<string>;
  /** Finishes the operations already asked for, background compactions included, then closes. */
  close(): Promise<void>;
}
