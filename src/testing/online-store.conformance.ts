/**
 * The OnlineStore contract as Vitest cases, run against every backend (SQLite, Redis, Redis Cluster)
 * so that they all behave the same. See `src/feature-store/online/online-store.ts`.
 *
 * The suite may share one database between its cases and with earlier runs: each case works on
 * feature sets of its own (random suffixes), so a backend needs no reset between cases.
 */
import { describe, expect, it } from 'vitest';
import type { Row } from '../core/table.js';
import {
  readEvents,
  type OnlineEvent,
  type OnlineStore,
} from '../feature-store/online/online-store.js';
import { expectCode, trackOpened, uniqueName } from './harness.js';

/**
 * Declares the conformance cases for one backend.
 *
 * @param open opens the store; every call must reach the same data, so that a case can close the
 *   store and open it again to check what was kept. Cases close what they open.
 * @param cleanup runs once after all cases (delete the temporary database).
 * @example
 * describeOnlineStoreConformance('sqlite', () => openSqliteOnlineStore({ path: file }));
 */
export function describeOnlineStoreConformance(
  name: string,
  open: () => Promise<OnlineStore>,
  cleanup?: () => Promise<void>,
): void {
  describe(`OnlineStore conformance: ${name}`, () => {
    const connect = trackOpened(open, cleanup);

    describe('latest values', () => {
      it('reads back what was written, one entry per key in the order asked, null when unknown', async () => {
        const store = await connect();
        const fs = uniqueName('fs');
        await store.writeLatest(fs, [
          { key: 'a', ts: 1000, values: { amount: 1.5, city: 'Oslo' } },
          { key: 'b', ts: 2000, values: { amount: -3, city: null } },
        ]);
        expect(await store.readLatest(fs, ['b', 'missing', 'a', 'b'])).toEqual([
          { ts: 2000, values: { amount: -3, city: null } },
          null,
          { ts: 1000, values: { amount: 1.5, city: 'Oslo' } },
          { ts: 2000, values: { amount: -3, city: null } },
        ]);
        expect(await store.readLatest(fs, [])).toEqual([]);
        expect(await store.readLatest(uniqueName('never_written'), ['a'])).toEqual([null]);
      });

      it('keeps every scalar kind exactly', async () => {
        const store = await connect();
        const fs = uniqueName('fs');
        const values: Row = {
          float: 0.1 + 0.2,
          negative: -1e-300,
          big: Number.MAX_SAFE_INTEGER,
          zero: 0,
          yes: true,
          no: false,
          empty: '',
          text: 'naïve 日本語 ✓ 🚀 "quoted" back\\slash\ttab\nline',
          missing: null,
        };
        await store.writeLatest(fs, [
          { key: 'key with spaces:and|separators', ts: 1_700_000_000_123, values },
        ]);
        const [record] = await store.readLatest(fs, ['key with spaces:and|separators']);
        expect(record).toEqual({ ts: 1_700_000_000_123, values });
      });

      it('never lets an older write replace a newer one, across calls and within one batch', async () => {
        const store = await connect();
        const fs = uniqueName('fs');
        await store.writeLatest(fs, [{ key: 'k', ts: 5000, values: { v: 'new' } }]);
        await store.writeLatest(fs, [{ key: 'k', ts: 4999, values: { v: 'old' } }]);
        expect(await store.readLatest(fs, ['k'])).toEqual([{ ts: 5000, values: { v: 'new' } }]);

        await store.writeLatest(fs, [
          { key: 'j', ts: 9000, values: { v: 'newest' } },
          { key: 'j', ts: 3000, values: { v: 'stale' } },
        ]);
        expect(await store.readLatest(fs, ['j'])).toEqual([{ ts: 9000, values: { v: 'newest' } }]);
      });

      it('lets a write with an equal ts replace (last write wins), across calls and within one batch', async () => {
        const store = await connect();
        const fs = uniqueName('fs');
        await store.writeLatest(fs, [{ key: 'k', ts: 7000, values: { v: 1 } }]);
        await store.writeLatest(fs, [{ key: 'k', ts: 7000, values: { v: 2 } }]);
        expect(await store.readLatest(fs, ['k'])).toEqual([{ ts: 7000, values: { v: 2 } }]);

        await store.writeLatest(fs, [
          { key: 'j', ts: 7000, values: { v: 'first' } },
          { key: 'j', ts: 7000, values: { v: 'second' } },
        ]);
        expect(await store.readLatest(fs, ['j'])).toEqual([{ ts: 7000, values: { v: 'second' } }]);
      });

      it('replaces the whole record, so a feature absent from the newer write is absent', async () => {
        const store = await connect();
        const fs = uniqueName('fs');
        await store.writeLatest(fs, [{ key: 'k', ts: 1, values: { a: 1, b: 2 } }]);
        await store.writeLatest(fs, [{ key: 'k', ts: 2, values: { a: 3 } }]);
        expect(await store.readLatest(fs, ['k'])).toEqual([{ ts: 2, values: { a: 3 } }]);
      });

      it('keeps feature sets apart', async () => {
        const store = await connect();
        const [one, two] = [uniqueName('fs'), uniqueName('fs')];
        await store.writeLatest(one, [{ key: 'k', ts: 1, values: { from: 'one' } }]);
        await store.writeLatest(two, [{ key: 'k', ts: 1, values: { from: 'two' } }]);
        expect(await store.readLatest(one, ['k'])).toEqual([{ ts: 1, values: { from: 'one' } }]);
        expect(await store.readLatest(two, ['k'])).toEqual([{ ts: 1, values: { from: 'two' } }]);
      });

      it('answers a lookup of many keys in the order asked', async () => {
        const store = await connect();
        const fs = uniqueName('fs');
        const records = Array.from({ length: 2000 }, (_, i) => ({
          key: `card-${i}`,
          ts: 1000 + i,
          values: { i },
        }));
        await store.writeLatest(fs, records);
        const keys = Array.from({ length: 500 }, (_, i) => `card-${(i * 7919) % 2500}`);
        const read = await store.readLatest(fs, keys);
        keys.forEach((key, i) => {
          const n = Number(key.slice('card-'.length));
          expect(read[i]).toEqual(n < 2000 ? { ts: 1000 + n, values: { i: n } } : null);
        });
      });

      it('keeps acknowledged writes after the store is closed and opened again', async () => {
        const fs = uniqueName('fs');
        const first = await connect();
        await first.writeLatest(fs, [{ key: 'k', ts: 42, values: { kept: true } }]);
        await first.appendEvents(fs, [{ key: 'k', ts: 42, values: { n: 1 } }], Infinity);
        await first.close();
        const second = await connect();
        expect(await second.readLatest(fs, ['k'])).toEqual([{ ts: 42, values: { kept: true } }]);
        expect(await readEvents(second, fs, 'k', 0, 100)).toEqual([{ ts: 42, values: { n: 1 } }]);
      });
    });

    describe('events', () => {
      it('returns events with since < ts <= until, ascending by ts', async () => {
        const store = await connect();
        const fs = uniqueName('fs');
        const events: OnlineEvent[] = [400, 100, 300, 200, 500].map((ts) => ({
          key: 'k',
          ts,
          values: { ts },
        }));
        await store.appendEvents(fs, events, Infinity);
        const read = async (since: number, until: number): Promise<number[]> =>
          (await readEvents(store, fs, 'k', since, until)).map((e) => e.ts);
        expect(await read(100, 400)).toEqual([200, 300, 400]);
        expect(await read(99, 100)).toEqual([100]);
        expect(await read(100, 100)).toEqual([]);
        expect(await read(500, 1000)).toEqual([]);
        expect(await read(0, 99)).toEqual([]);
        expect(await read(-Infinity, Infinity)).toEqual([100, 200, 300, 400, 500]);
        expect(await readEvents(store, fs, 'other', 0, 1000)).toEqual([]);
        expect(await readEvents(store, fs, 'k', 250, 300)).toEqual([
          { ts: 300, values: { ts: 300 } },
        ]);
      });

      it('stores an event written twice once, and keeps events that differ only by eventId', async () => {
        const store = await connect();
        const fs = uniqueName('fs');
        const a = { key: 'k', ts: 1000, eventId: 'tx-1', values: { amount: 10 } };
        const b = { key: 'k', ts: 1000, eventId: 'tx-2', values: { amount: 20 } };
        await store.appendEvents(fs, [a, a, b], Infinity);
        await store.appendEvents(fs, [a], Infinity);
        const read = await readEvents(store, fs, 'k', 0, 2000);
        expect(read).toHaveLength(2);
        expect(read.map((e) => e.values.amount).sort()).toEqual([10, 20]);
      });

      it('treats an absent eventId as the empty one', async () => {
        const store = await connect();
        const fs = uniqueName('fs');
        await store.appendEvents(fs, [{ key: 'k', ts: 5, values: { n: 1 } }], Infinity);
        await store.appendEvents(
          fs,
          [{ key: 'k', ts: 5, eventId: '', values: { n: 1 } }],
          Infinity,
        );
        await store.appendEvents(
          fs,
          [{ key: 'k', ts: 5, eventId: 'x', values: { n: 2 } }],
          Infinity,
        );
        expect(await readEvents(store, fs, 'k', 0, 10)).toHaveLength(2);
      });

      it('keeps every event within retainMs of the newest event of its key', async () => {
        const store = await connect();
        const fs = uniqueName('fs');
        const day = 86_400_000;
        const t = 1_700_000_000_000;
        await store.appendEvents(fs, [{ key: 'k', ts: t - day, values: { n: 1 } }], day);
        await store.appendEvents(fs, [{ key: 'k', ts: t, values: { n: 2 } }], day);
        // A late event, older than the newest: still within the window, so it must be kept.
        await store.appendEvents(fs, [{ key: 'k', ts: t - 1000, values: { n: 3 } }], day);
        await store.appendEvents(fs, [{ key: 'other', ts: t - 30 * day, values: { n: 4 } }], day);
        expect(
          (await readEvents(store, fs, 'k', -Infinity, Infinity)).map((e) => e.values.n),
        ).toEqual([1, 3, 2]);
        // Another key's pruning never touches this one.
        expect(await readEvents(store, fs, 'other', -Infinity, Infinity)).toEqual([
          { ts: t - 30 * day, values: { n: 4 } },
        ]);
      });

      it('orders events of one instant by eventId, whatever order they were written in', async () => {
        const store = await connect();
        const fs = uniqueName('fs');
        const ids = ['b', 'a', 'ab', '', 'a b', 'B', '10', '9'];
        for (const eventId of ids) {
          await store.appendEvents(fs, [{ key: 'k', ts: 50, eventId, values: { id: eventId } }], 0);
        }
        await store.appendEvents(fs, [{ key: 'k', ts: 49, eventId: 'z', values: { id: 'z' } }], 1);
        const read = await readEvents(store, fs, 'k', 0, 100);
        expect(read.map((e) => e.values.id)).toEqual([
          'z',
          '',
          '10',
          '9',
          'B',
          'a',
          'a b',
          'ab',
          'b',
        ]);
      });

      it('reads back event values of every scalar kind exactly', async () => {
        const store = await connect();
        const fs = uniqueName('fs');
        const values: Row = {
          float: 0.1 + 0.2,
          big: Number.MAX_SAFE_INTEGER,
          yes: true,
          no: false,
          empty: '',
          text: 'naïve 日本語 🚀 "q" \\ \t\n\u0000nul',
          missing: null,
        };
        await store.appendEvents(
          fs,
          [{ key: 'k{1}:%', ts: 1_700_000_000_000.5, eventId: 'id\u0000with nul', values }],
          Infinity,
        );
        expect(await readEvents(store, fs, 'k{1}:%', 0, Infinity)).toEqual([
          { ts: 1_700_000_000_000.5, values },
        ]);
      });

      it('keeps the last values of an event written twice with different values, once', async () => {
        const store = await connect();
        const fs = uniqueName('fs');
        await store.appendEvents(fs, [{ key: 'k', ts: 10, eventId: 'e', values: { v: 1 } }], 100);
        await store.appendEvents(fs, [{ key: 'k', ts: 10, eventId: 'e', values: { v: 2 } }], 100);
        await store.appendEvents(
          fs,
          [
            { key: 'k', ts: 20, eventId: 'f', values: { v: 3 } },
            { key: 'k', ts: 20, eventId: 'f', values: { v: 4 } },
          ],
          100,
        );
        const read = await readEvents(store, fs, 'k', 0, 100);
        expect(read).toHaveLength(2);
        // Whether the first or the last values are kept is the backend's; one entry is the contract.
        expect(read.map((e) => e.ts)).toEqual([10, 20]);
      });

      it('keeps every event when retainMs is Infinity, and prunes on append otherwise', async () => {
        const store = await connect();
        const fs = uniqueName('fs');
        const old = [1, 2, 3].map((ts) => ({ key: 'k', ts, values: { ts } }));
        await store.appendEvents(fs, old, Infinity);
        await store.appendEvents(fs, [{ key: 'k', ts: 1e12, values: { ts: 1e12 } }], Infinity);
        expect(await readEvents(store, fs, 'k', -Infinity, Infinity)).toHaveLength(4);
        // Newest 1000 and retainMs 200: the cutoff is 800, kept inclusive.
        const batch = [700, 799, 800, 900, 1000].map((ts) => ({ key: 'j', ts, values: { ts } }));
        await store.appendEvents(fs, batch, 200);
        expect((await readEvents(store, fs, 'j', -Infinity, Infinity)).map((e) => e.ts)).toEqual([
          800, 900, 1000,
        ]);
        // A late event older than the cutoff is pruned as soon as it lands.
        await store.appendEvents(fs, [{ key: 'j', ts: 500, values: { ts: 500 } }], 200);
        expect((await readEvents(store, fs, 'j', -Infinity, Infinity)).map((e) => e.ts)).toEqual([
          800, 900, 1000,
        ]);
      });

      it('keeps events of different keys and feature sets apart', async () => {
        const store = await connect();
        const [one, two] = [uniqueName('fs'), uniqueName('fs')];
        await store.appendEvents(
          one,
          [
            { key: 'k', ts: 1, values: { s: 'one/k' } },
            { key: 'j', ts: 1, values: { s: 'one/j' } },
          ],
          Infinity,
        );
        await store.appendEvents(two, [{ key: 'k', ts: 1, values: { s: 'two/k' } }], Infinity);
        expect(await readEvents(store, one, 'k', 0, 1)).toEqual([
          { ts: 1, values: { s: 'one/k' } },
        ]);
        expect(await readEvents(store, one, 'j', 0, 1)).toEqual([
          { ts: 1, values: { s: 'one/j' } },
        ]);
        expect(await readEvents(store, two, 'k', 0, 1)).toEqual([
          { ts: 1, values: { s: 'two/k' } },
        ]);
      });
    });

    describe('events of many keys', () => {
      it('answers one list per key in the order asked, empty for an unknown key', async () => {
        const store = await connect();
        const fs = uniqueName('fs');
        await store.appendEvents(
          fs,
          [
            { key: 'a', ts: 10, values: { n: 'a10' } },
            { key: 'b', ts: 20, values: { n: 'b20' } },
            { key: 'a', ts: 5, values: { n: 'a5' } },
            { key: 'c', ts: 30, values: { n: 'c30' } },
          ],
          Infinity,
        );
        const names = (lists: { values: Row }[][]): unknown[][] =>
          lists.map((list) => list.map((e) => e.values.n));
        expect(
          names(await store.readEventsMany(fs, ['c', 'missing', 'a', 'b', 'a'], 0, 100)),
        ).toEqual([['c30'], [], ['a5', 'a10'], ['b20'], ['a5', 'a10']]);
        expect(await store.readEventsMany(fs, [], 0, 100)).toEqual([]);
        expect(await store.readEventsMany(uniqueName('never_written'), ['a'], 0, 100)).toEqual([
          [],
        ]);
      });

      it('takes since < ts <= until, exactly as readEvents does for each key', async () => {
        const store = await connect();
        const fs = uniqueName('fs');
        const keys = ['k1', 'k2', 'k3'];
        const events: OnlineEvent[] = keys.flatMap((key, i) =>
          [100, 200, 300, 400].map((ts) => ({
            key,
            ts: ts + i,
            eventId: `${key}-${ts}`,
            values: { ts },
          })),
        );
        await store.appendEvents(fs, events, Infinity);
        const windows: [number, number][] = [
          [100, 300],
          [101, 301],
          [99, 100],
          [100, 100],
          [-Infinity, Infinity],
          [400, 10_000],
          [250, 250.5],
        ];
        for (const [since, until] of windows) {
          const many = await store.readEventsMany(fs, keys, since, until);
          const one = await Promise.all(
            keys.map((key) => readEvents(store, fs, key, since, until)),
          );
          expect(many, `(${since}, ${until}]`).toEqual(one);
          many.forEach((list, i) => {
            for (const e of list) {
              expect(e.ts).toBeGreaterThan(since);
              expect(e.ts).toBeLessThanOrEqual(until);
            }
            expect(list.map((e) => e.ts)).toEqual([...list.map((e) => e.ts)].sort((x, y) => x - y));
            expect(list).toHaveLength(
              events.filter((e) => e.key === keys[i] && e.ts > since && e.ts <= until).length,
            );
          });
        }
        // The exclusive and inclusive ends, on k2 whose events are at 101, 201, 301, 401.
        expect((await store.readEventsMany(fs, ['k2'], 101, 301))[0]?.map((e) => e.ts)).toEqual([
          201, 301,
        ]);
      });

      it('answers a batch of many keys', async () => {
        const store = await connect();
        const fs = uniqueName('fs');
        const keys = Array.from({ length: 300 }, (_, i) => `card-${i}`);
        await store.appendEvents(
          fs,
          keys.flatMap((key, i) =>
            Array.from({ length: i % 4 }, (_, j) => ({ key, ts: 1000 + j, values: { i, j } })),
          ),
          Infinity,
        );
        const read = await store.readEventsMany(fs, [...keys].reverse(), 0, 2000);
        read.forEach((list, r) => {
          const i = keys.length - 1 - r;
          expect(list).toEqual(
            Array.from({ length: i % 4 }, (_, j) => ({ ts: 1000 + j, values: { i, j } })),
          );
        });
      });
    });

    describe('feature sets', () => {
      it('deletes the latest values and events of one feature set only', async () => {
        const store = await connect();
        const [gone, kept] = [uniqueName('fs'), uniqueName('fs')];
        for (const fs of [gone, kept]) {
          await store.writeLatest(fs, [{ key: 'k', ts: 1, values: { v: fs } }]);
          await store.appendEvents(fs, [{ key: 'k', ts: 1, values: { v: fs } }], Infinity);
        }
        await store.deleteFeatureSet(gone);
        expect(await store.readLatest(gone, ['k'])).toEqual([null]);
        expect(await readEvents(store, gone, 'k', 0, 10)).toEqual([]);
        expect(await store.readLatest(kept, ['k'])).toEqual([{ ts: 1, values: { v: kept } }]);
        expect(await readEvents(store, kept, 'k', 0, 10)).toEqual([{ ts: 1, values: { v: kept } }]);
        // Deleting a feature set that holds nothing is not an error.
        await store.deleteFeatureSet(uniqueName('never_written'));
      });

      it('accepts empty batches', async () => {
        const store = await connect();
        const fs = uniqueName('fs');
        await store.writeLatest(fs, []);
        await store.appendEvents(fs, [], 1000);
        expect(await store.readLatest(fs, ['k'])).toEqual([null]);
      });
    });

    describe('errors', () => {
      it('refuses a write whose ts is not a finite number, and writes nothing of that batch', async () => {
        const store = await connect();
        const fs = uniqueName('fs');
        await expectCode(
          store.writeLatest(fs, [
            { key: 'ok', ts: 1, values: { v: 1 } },
            { key: 'bad', ts: Number.NaN, values: { v: 2 } },
          ]),
          'FERRY_ARGUMENT_INVALID',
        );
        expect(await store.readLatest(fs, ['ok', 'bad'])).toEqual([null, null]);
        await expectCode(
          store.appendEvents(fs, [{ key: 'k', ts: Number.POSITIVE_INFINITY, values: {} }], 10),
          'FERRY_ARGUMENT_INVALID',
        );
      });

      it('refuses a negative retainMs', async () => {
        const store = await connect();
        await expectCode(
          store.appendEvents(uniqueName('fs'), [{ key: 'k', ts: 1, values: {} }], -1),
          'FERRY_ARGUMENT_INVALID',
        );
      });

      it('refuses every call after close with FERRY_STORE_CLOSED', async () => {
        const store = await open();
        await store.close();
        const fs = uniqueName('fs');
        await expectCode(store.readLatest(fs, ['k']), 'FERRY_STORE_CLOSED');
        await expectCode(store.writeLatest(fs, []), 'FERRY_STORE_CLOSED');
        await expectCode(readEvents(store, fs, 'k', 0, 1), 'FERRY_STORE_CLOSED');
        await expectCode(store.readEventsMany(fs, ['k'], 0, 1), 'FERRY_STORE_CLOSED');
        await expectCode(store.appendEvents(fs, [], 1), 'FERRY_STORE_CLOSED');
        await expectCode(store.deleteFeatureSet(fs), 'FERRY_STORE_CLOSED');
        await store.close();
      });
    });
  });
}
