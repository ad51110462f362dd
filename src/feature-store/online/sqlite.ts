/**
 * SqliteOnlineStore: the embedded OnlineStore, one SQLite file (better-sqlite3) holding the latest
 * feature values per entity and the recent raw events that window aggregations read at lookup.
 *
 * Durability: WAL with `synchronous = NORMAL`. A commit is written to the WAL before the call
 * returns, so an acknowledged write survives a crash of this process; only an OS crash or power
 * loss can lose the last few commits (the WAL is fsynced at checkpoints, not at every commit).
 * That is the right trade for an online store: it is a cache that can be rebuilt from the offline
 * store, and FULL would add an fsync to every write on the ingestion path.
 *
 * Checkpoints: ingestion updates entities at random, so each commit dirties about one page per
 * event. The WAL is copied back into the database every {@link WAL_CHECKPOINT_PAGES} pages
 * rather than SQLite's default 1,000: a page written many times between two checkpoints is copied
 * once, and the checkpoint's fsyncs come ten times less often (measured: about a fifth less CPU
 * per event at 1,000 events a batch). The WAL file grows to about that many pages (40 MB).
 *
 * Pruning: `appendEvents` deletes a key's events older than its newest minus `retainMs`, one
 * statement per key. A stream touches most keys in every batch while their cutoffs move by
 * milliseconds, so the store remembers, per key, the cutoff it last pruned at and the newest time
 * it wrote, and prunes again only once the cutoff has moved by a sixteenth of `retainMs`, or at
 * once when an appended event is already older than the cutoff. A key thus holds at most
 * `retainMs` and a sixteenth of events. Another process's newer events only make this process
 * prune less; each process prunes what it appends.
 *
 * Values are stored as JSON, so a NaN or an infinite feature value reads back as null.
 */
import fs from 'node:fs';
import path from 'node:path';

import Database from 'better-sqlite3';

import type { Row } from '../../core/table.js';
import { FerryError } from '../../errors/index.js';
import type { OnlineEvent, OnlineRecord, OnlineStore, OnlineWrite } from './online-store.js';
import { assertEvents, assertWrites } from './validate.js';

/** Pages the WAL may hold before a commit copies them back into the database (SQLite's default: 1,000). */
const WAL_CHECKPOINT_PAGES = 10_000;
/** A key is pruned again once its cutoff has moved by this share of `retainMs` (see the header). */
const PRUNE_STEP = 1 / 16;
/** Keys whose last prune is remembered, at most; past that the memory starts afresh. */
const PRUNED_KEYS_MAX = 200_000;

/** What this store last did to a key's events: the cutoff it pruned at, the newest ts it wrote. */
interface Pruned {
  cutoff: number;
  newest: number;
  retainMs: number;
}

export interface SqliteOnlineStoreOptions {
  /** The database file; its folder is created if missing. `:memory:` for a throwaway store. */
  readonly path: string;
}

// `ts` has INTEGER affinity: whole milliseconds are stored as compact integers, and a fractional
// one is kept as a REAL; both compare numerically. Events are read by key prefix and ts range, so
// they live in a WITHOUT ROWID table clustered on the primary key.
const SCHEMA = `
CREATE TABLE IF NOT EXISTS latest (
  feature_set TEXT NOT NULL,
  key TEXT NOT NULL,
  ts INTEGER NOT NULL,
  values_json TEXT NOT NULL,
  PRIMARY KEY (feature_set, key)
);
CREATE TABLE IF NOT EXISTS events (
  feature_set TEXT NOT NULL,
  key TEXT NOT NULL,
  ts INTEGER NOT NULL,
  event_id TEXT NOT NULL,
  values_json TEXT NOT NULL,
  PRIMARY KEY (feature_set, key, ts, event_id)
) WITHOUT ROWID;
`;

/**
 * Opens (creating if needed) the SQLite online store at `path`.
 * @example
 * const online = await openSqliteOnlineStore({ path: '.ferry/online.db' });
 * await online.writeLatest('cards', [{ key: 'c1', ts: Date.now(), values: { amount_sum_1h: 42 } }]);
 * const [record] = await online.readLatest('cards', ['c1']);
 */
export async function openSqliteOnlineStore(
  options: SqliteOnlineStoreOptions,
): Promise<SqliteOnlineStore> {
  if (options.path !== ':memory:')
    fs.mkdirSync(path.dirname(path.resolve(options.path)), { recursive: true });
  let db: Database.Database | undefined;
  try {
    db = new Database(options.path);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma(`wal_autocheckpoint = ${WAL_CHECKPOINT_PAGES}`);
    // Another process (the CLI beside a running server) may hold the write lock briefly.
    db.pragma('busy_timeout = 5000');
    db.exec(SCHEMA);
  } catch (error) {
    db?.close();
    throw new FerryError(
      'FERRY_BACKEND_UNAVAILABLE',
      `cannot open the SQLite online store at '${options.path}': ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  }
  return new SqliteOnlineStore(db, options.path);
}

export class SqliteOnlineStore implements OnlineStore {
  readonly backend = 'sqlite';
  private readonly db: Database.Database;
  private readonly location: string;
  private closed = false;
  private readonly upsertLatest: Database.Statement<[string, string, number, string]>;
  private readonly selectLatest: Database.Statement<[string, string], [number, string]>;
  private readonly insertEvent: Database.Statement<[string, string, number, string, string]>;
  private readonly pruneEvents: Database.Statement<[string, string, string, string, number]>;
  private readonly selectEvents: Database.Statement<
    [string, string, number, number],
    [number, string]
  >;
  private readonly writeLatestTx: (featureSet: string, records: readonly OnlineWrite[]) => void;
  private readonly appendEventsTx: (
    featureSet: string,
    events: readonly OnlineEvent[],
    retainMs: number,
  ) => void;
  private readonly deleteTx: (featureSet: string) => void;
  /** Per feature set and key, this store's last prune (see the module header). */
  private readonly pruned = new Map<string, Map<string, Pruned>>();
  private prunedKeys = 0;

  /** Use {@link openSqliteOnlineStore}. */
  constructor(db: Database.Database, location: string) {
    this.db = db;
    this.location = location;
    // `>=`: an equal ts replaces (last write wins); an older one leaves the row alone.
    this.upsertLatest = db.prepare(
      `INSERT INTO latest (feature_set, key, ts, values_json) VALUES (?, ?, ?, ?)
       ON CONFLICT (feature_set, key) DO UPDATE SET ts = excluded.ts, values_json = excluded.values_json
       WHERE excluded.ts >= latest.ts`,
    );
    this.selectLatest = db
      .prepare<[string, string], [number, string]>(
        'SELECT ts, values_json FROM latest WHERE feature_set = ? AND key = ?',
      )
      .raw();
    this.insertEvent = db.prepare(
      `INSERT INTO events (feature_set, key, ts, event_id, values_json) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT DO NOTHING`,
    );
    this.pruneEvents = db.prepare(
      `DELETE FROM events WHERE feature_set = ? AND key = ?
       AND ts < (SELECT max(ts) FROM events WHERE feature_set = ? AND key = ?) - ?`,
    );
    this.selectEvents = db
      .prepare<[string, string, number, number], [number, string]>(
        `SELECT ts, values_json FROM events WHERE feature_set = ? AND key = ? AND ts > ? AND ts <= ?
         ORDER BY ts, event_id`,
      )
      .raw();
    const deleteLatest = db.prepare<[string]>('DELETE FROM latest WHERE feature_set = ?');
    const deleteEvents = db.prepare<[string]>('DELETE FROM events WHERE feature_set = ?');

    this.writeLatestTx = db.transaction((featureSet: string, records: readonly OnlineWrite[]) => {
      for (const r of records)
        this.upsertLatest.run(featureSet, r.key, r.ts, JSON.stringify(r.values));
    });
    this.appendEventsTx = db.transaction(
      (featureSet: string, events: readonly OnlineEvent[], retainMs: number) => {
        // The oldest and newest event of each key in the batch.
        const span = new Map<string, [number, number]>();
        for (const e of events) {
          this.insertEvent.run(featureSet, e.key, e.ts, e.eventId ?? '', JSON.stringify(e.values));
          const seen = span.get(e.key);
          if (seen === undefined) span.set(e.key, [e.ts, e.ts]);
          else {
            if (e.ts < seen[0]) seen[0] = e.ts;
            if (e.ts > seen[1]) seen[1] = e.ts;
          }
        }
        if (retainMs === Infinity) return;
        for (const [key, [oldest, newest]] of span) {
          if (this.mustPrune(featureSet, key, oldest, newest, retainMs))
            this.pruneEvents.run(featureSet, key, featureSet, key, retainMs);
        }
      },
    );
    this.deleteTx = db.transaction((featureSet: string) => {
      deleteLatest.run(featureSet);
      deleteEvents.run(featureSet);
    });
  }

  async writeLatest(featureSet: string, records: readonly OnlineWrite[]): Promise<void> {
    this.assertOpen();
    assertWrites(featureSet, records);
    if (records.length > 0) this.writeLatestTx(featureSet, records);
  }

  async readLatest(featureSet: string, keys: readonly string[]): Promise<(OnlineRecord | null)[]> {
    this.assertOpen();
    const out = new Array<OnlineRecord | null>(keys.length);
    for (let i = 0; i < keys.length; i++) {
      const row = this.selectLatest.get(featureSet, keys[i] as string);
      out[i] = row === undefined ? null : { ts: row[0], values: JSON.parse(row[1]) as Row };
    }
    return out;
  }

  async appendEvents(
    featureSet: string,
    events: readonly OnlineEvent[],
    retainMs: number,
  ): Promise<void> {
    this.assertOpen();
    assertEvents(featureSet, events, retainMs);
    if (events.length > 0) this.appendEventsTx(featureSet, events, retainMs);
  }

  async readEventsMany(
    featureSet: string,
    keys: readonly string[],
    since: number,
    until: number,
  ): Promise<OnlineRecord[][]> {
    this.assertOpen();
    return keys.map((key) =>
      this.selectEvents.all(featureSet, key, since, until).map(([ts, json]) => ({
        ts,
        values: JSON.parse(json) as Row,
      })),
    );
  }

  async deleteFeatureSet(featureSet: string): Promise<void> {
    this.assertOpen();
    this.deleteTx(featureSet);
    this.prunedKeys -= this.pruned.get(featureSet)?.size ?? 0;
    this.pruned.delete(featureSet);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.db.close();
  }

  /**
   * Whether a key that received events from `oldest` to `newest` is to be pruned now (see the
   * module header), remembering the prune it decides on. A key this store has not pruned since it
   * opened always is.
   */
  private mustPrune(
    featureSet: string,
    key: string,
    oldest: number,
    newest: number,
    retainMs: number,
  ): boolean {
    let keys = this.pruned.get(featureSet);
    if (keys === undefined) {
      keys = new Map();
      this.pruned.set(featureSet, keys);
    }
    const last = keys.get(key);
    if (last !== undefined && last.retainMs === retainMs) {
      last.newest = Math.max(last.newest, newest);
      const cutoff = last.newest - retainMs;
      if (oldest >= cutoff && cutoff - last.cutoff < retainMs * PRUNE_STEP) return false;
      last.cutoff = cutoff;
      return true;
    }
    if (last === undefined) {
      if (this.prunedKeys >= PRUNED_KEYS_MAX) {
        for (const remembered of this.pruned.values()) remembered.clear();
        this.prunedKeys = 0;
      }
      this.prunedKeys++;
    }
    keys.set(key, { cutoff: newest - retainMs, newest, retainMs });
    return true;
  }

  private assertOpen(): void {
    if (this.closed) {
      throw new FerryError(
        'FERRY_STORE_CLOSED',
        `the SQLite online store at '${this.location}' is closed`,
      );
    }
  }
}
