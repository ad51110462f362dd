/**
 * OnlineStore: the latest feature values per entity, and the recent raw events that exact
 * sliding-window aggregations are computed from at lookup time.
 * Embedded default: SQLite (`sqlite.ts`).
 *
 * Contract (checked by `src/testing/online-store.conformance.ts`):
 * - timestamps are UTC milliseconds; entity keys are strings (composite keys joined by the caller);
 * - `writeLatest` keeps, per key, the record with the greatest `ts`: an older write never
 *   replaces a newer one, and an equal `ts` replaces (last write wins);
 * - events are unique by (key, ts, eventId): writing the same event twice stores it once;
 * - `appendEvents` may prune events older than `retainMs` before the newest event of that key;
 * - writes resolve only once durable for the backend (committed for SQLite).
 */
import type { Row } from '../../core/table.js';

export interface OnlineRecord {
  readonly ts: number;
  readonly values: Row;
}

export interface OnlineWrite extends OnlineRecord {
  readonly key: string;
}

export interface OnlineEvent extends OnlineWrite {
  /** Distinguishes two events of one key at the same ts; '' when absent. */
  readonly eventId?: string;
}

export interface OnlineStore {
  readonly backend: string;
  writeLatest(featureSet: string, records: readonly OnlineWrite[]): Promise<void>;
  /** One entry per key, in the order asked, null when the key is unknown. */
  readLatest(featureSet: string, keys: readonly string[]): Promise<(OnlineRecord | null)[]>;
  appendEvents(featureSet: string, events: readonly OnlineEvent[], retainMs: number): Promise<void>;
  /**
   * Events of each key with since < ts <= until, ascending by ts then event id, read at once (one
   * round trip on a networked store): one list per key, in the order asked, empty for an unknown key.
   */
  readEventsMany(
    featureSet: string,
    keys: readonly string[],
    since: number,
    until: number,
  ): Promise<OnlineRecord[][]>;
  deleteFeatureSet(featureSet: string): Promise<void>;
  close(): Promise<void>;
}

/**
 * The events of one key with since < ts <= until: {@link OnlineStore.readEventsMany} of one key.
 * @example const events = await readEvents(store, 'transactions', 'c0042', since, until);
 */
export async function readEvents(
  store: OnlineStore,
  featureSet: string,
  key: string,
  since: number,
  until: number,
): Promise<OnlineRecord[]> {
  return (await store.readEventsMany(featureSet, [key], since, until))[0] ?? [];
}
