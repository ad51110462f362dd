/**
 * `FeatureStore.materialize`: the online store rebuilt from the offline one ends in the state
 * ingestion left (same latest values, same recent events, so the same vectors at any time,
 * windows, ties and ttl included), and `since` only adds the newer events. On the embedded
 * SQLite online store, and on the real Redis when it is reachable.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { tableFromRows, type Row, type Table } from '../core/table.js';
import {
  CARD_TX,
  openFeatureFixture,
  sqliteOnline,
  TX_EVENT_SCHEMA,
  type FeatureHarness,
  type OnlineStoreFactory,
} from '../testing/feature-fixture.js';
import { uniqueName } from '../testing/harness.js';
import { testService } from '../testing/services.js';
import { tempDirs } from '../testing/temp.js';
import { FeatureStore } from './feature-store.js';
import { openRedisOnlineStore } from './online/redis.js';
import type { OnlineRecord, OnlineStore } from './online/online-store.js';

const MIN = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;
const T0 = Date.UTC(2026, 9, 1);

const SPEC = `
${CARD_TX}
    features:
      - { name: amount, type: float }
      - { name: country, type: string }
    aggregations:
      - { column: amount, ops: [count, sum, max], windows: [10m, 1h, 1d] }
    ttl: 2h
    online_history: 2d
feature_vectors:
  - name: v
    features: [tx.*]
`;

const redis = await testService('redis');
const tmp = tempDirs();
const opened: { close(): Promise<void> }[] = [];
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
  await Promise.all(opened.splice(0).map((s) => s.close()));
});

const BACKENDS: {
  name: string;
  available: boolean;
  open: OnlineStoreFactory;
}[] = [
  {
    name: 'sqlite',
    available: true,
    open: sqliteOnline,
  },
  {
    name: 'redis',
    available: redis.available,
    // A key prefix of its own per case, and the set deleted when the case ends.
    open: async (): Promise<OnlineStore> => {
      const store = await openRedisOnlineStore({ url: redis.url, keyPrefix: uniqueName('mat') });
      cleanups.push(() => store.deleteFeatureSet('tx'));
      return store;
    },
  },
];

/**
 * Five cards over five days: bursts inside the windows, ties at one ts broken by event_id,
 * gaps longer than the ttl, and a card whose only events are old.
 */
function history(): Row[] {
  const rows: Row[] = [];
  let n = 0;
  const add = (card: string, ts: number, amount: number, country: string, id = ''): void => {
    rows.push({
      card_id: card,
      ts,
      event_id: id || `e${String(n++).padStart(4, '0')}`,
      amount,
      country,
    });
  };
  for (let day = 0; day < 5; day++) {
    for (let i = 0; i < 12; i++) {
      add('c1', T0 + day * DAY + i * 7 * MIN, 10 + i + day, day % 2 ? 'FR' : 'DE');
      add('c2', T0 + day * DAY + i * 2 * HOUR, 100 - i, 'US');
    }
  }
  // Ties: three events of c3 at one ts; the greatest event_id is the latest.
  const tie = T0 + 4 * DAY + 5 * HOUR;
  add('c3', tie, 1, 'A', 'b');
  add('c3', tie, 2, 'B', 'c');
  add('c3', tie, 3, 'C', 'a');
  add('c3', tie - 30 * MIN, 4, 'D');
  // Only old events: past the ttl and the windows at the later lookup times.
  add('c4', T0 + 3 * MIN, 7, 'SE');
  add('c5', T0 + 2 * DAY + 10 * HOUR, 8, 'NO');
  return rows;
}

function table(rows: readonly Row[]): Table {
  return tableFromRows(TX_EVENT_SCHEMA, rows);
}

const KEYS = ['c1', 'c2', 'c3', 'c4', 'c5', 'nobody'];
const TIMES = [
  T0 + 30 * MIN,
  T0 + 2 * DAY + 11 * HOUR,
  T0 + 4 * DAY + 5 * HOUR,
  T0 + 4 * DAY + 5 * HOUR + 9 * MIN,
  T0 + 4 * DAY + 23 * HOUR,
  T0 + 5 * DAY + 2 * HOUR,
];

async function vectors(store: FeatureStore): Promise<Row[][]> {
  return Promise.all(TIMES.map((at) => store.getOnlineVector('v', KEYS, at)));
}

/** Everything the online store holds for the set: latest records and every kept event. */
async function onlineState(
  online: OnlineStore,
): Promise<{ latest: (OnlineRecord | null)[]; events: OnlineRecord[][] }> {
  const [latest, events] = await Promise.all([
    online.readLatest('tx', KEYS),
    online.readEventsMany('tx', KEYS, -1, Number.MAX_SAFE_INTEGER),
  ]);
  return { latest, events };
}

for (const backend of BACKENDS) {
  describe.skipIf(!backend.available)(
    `FeatureStore.materialize (${backend.name} online store)`,
    () => {
      async function open(): Promise<FeatureHarness> {
        const h = await openFeatureFixture({ dir: tmp.fresh(), spec: SPEC, online: backend.open });
        opened.push(h.offline, h.online);
        return h;
      }

      it('rebuilds, after the set is emptied online, exactly the state ingestion left', async () => {
        const { store, online } = await open();
        const rows = history();
        // Ingested out of order, in three batches, as files arriving late would be.
        await store.ingest('tx', { table: table(rows.filter((_, i) => i % 3 === 2)) });
        await store.ingest('tx', { table: table(rows.filter((_, i) => i % 3 === 0)) });
        await store.ingest('tx', { table: table(rows.filter((_, i) => i % 3 === 1)) });
        const ingested = await vectors(store);
        const state = await onlineState(online);
        expect(state.latest.filter((r) => r !== null)).toHaveLength(5);
        // The tie went to event_id 'c' (amount 2), not to the last row ingested.
        const c3 = (await store.getOnlineVector('v', ['c3'], T0 + 4 * DAY + 5 * HOUR))[0];
        expect(c3?.amount).toBe(2);
        expect(c3?.amount_count_10m).toBe(3);

        await online.deleteFeatureSet('tx');
        expect((await onlineState(online)).latest.every((r) => r === null)).toBe(true);

        const messages: string[] = [];
        const result = await store.materialize('tx', {
          chunkRows: 7,
          onProgress: (m) => messages.push(m),
        });
        expect(result).toMatchObject({ featureSet: 'tx', cleared: true, since: null });
        expect(result.events).toBe(rows.length);
        expect(result.entities).toBe(5);
        // Five days, each sliced so that no read holds more than about 7 events.
        expect(result.chunks).toBeGreaterThan(5);
        expect(messages.at(-1)).toContain(`materialized ${rows.length} of ${rows.length} events`);
        expect(await onlineState(online)).toEqual(state);
        expect(await vectors(store)).toEqual(ingested);
      });

      it('clears what the offline store does not hold when rebuilding all of it', async () => {
        const { store, online } = await open();
        await store.ingest('tx', { table: table(history()) });
        const state = await onlineState(online);
        await online.writeLatest('tx', [{ key: 'nobody', ts: T0, values: { amount: 1 } }]);
        await store.materialize('tx');
        expect(await onlineState(online)).toEqual(state);
      });

      it('with since, adds only the events at or after it', async () => {
        const { store, online } = await open();
        const rows = history();
        await store.ingest('tx', { table: table(rows) });
        const full = await onlineState(online);
        const since = T0 + 4 * DAY;

        // Online emptied, then only the newer events replayed: older ones stay absent.
        await online.deleteFeatureSet('tx');
        const partial = await store.materialize('tx', { since });
        const newer = rows.filter((r) => (r.ts as number) >= since);
        expect(partial).toMatchObject({ cleared: false, since, events: newer.length });
        expect(partial.entities).toBe(new Set(newer.map((r) => r.card_id)).size);
        const state = await onlineState(online);
        const kept = state.events.flat().map((e) => e.ts);
        expect(kept.length).toBeGreaterThan(0);
        expect(Math.min(...kept)).toBeGreaterThanOrEqual(since);
        // c4 and c5 have no event since then: unknown online.
        expect(state.latest[3]).toBeNull();
        expect(state.latest[4]).toBeNull();
        const [c1] = await store.getOnlineVector('v', ['c1'], since + 30 * MIN);
        expect(c1?.amount_count_1d).toBe(
          newer.filter((r) => r.card_id === 'c1' && (r.ts as number) <= since + 30 * MIN).length,
        );

        // On top of the full state, replaying recent events changes nothing: writes are idempotent.
        await store.materialize('tx');
        await store.materialize('tx', { since });
        expect(await onlineState(online)).toEqual(full);
      });

      it('materializes nothing, and clears the set, before anything was ingested', async () => {
        const { store, online } = await open();
        await online.writeLatest('tx', [{ key: 'c1', ts: T0, values: { amount: 1 } }]);
        const result = await store.materialize('tx');
        expect(result).toMatchObject({ events: 0, entities: 0, chunks: 0, cleared: true });
        expect(await online.readLatest('tx', ['c1'])).toEqual([null]);
      });

      it('refuses an unknown feature set with a coded error', async () => {
        const { store } = await open();
        await expect(store.materialize('nope')).rejects.toMatchObject({
          code: 'FERRY_FEATURE_SET_UNKNOWN',
        });
      });
    },
  );
}
