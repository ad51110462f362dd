/**
 * Streamed batches ingested at the same time: batches of one feature set that wait for its running
 * ingestion are stored together (group commit), and each caller still gets exactly the result it
 * would have had alone, in the order the calls were made.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { JsonObject } from '../core/json.js';
import { tableFromRows, tableToRows, type Row } from '../core/table.js';
import { readQuarantine } from '../data/validate/quarantine.js';
import {
  CARD_TX,
  closeFeatureHarness,
  openFeatureFixture,
  TX_EVENT_SCHEMA,
  type FeatureHarness,
} from '../testing/feature-fixture.js';
import { expectCode } from '../testing/harness.js';
import { tempDirs } from '../testing/temp.js';
import type { IngestedEvent, IngestResult } from './feature-store.js';
import type { OfflineStore } from './offline/offline-store.js';

const MIN = 60_000;
const T0 = Date.UTC(2026, 9, 1, 12);
const CARDS = ['c0', 'c1', 'c2', 'c3', 'c4'];

const SPEC = `${CARD_TX}
    steps:
      - { step: filter, where: "country != 'XX'" }
    features:
      - { name: amount, type: float }
      - { name: country, type: string }
    aggregations:
      - { column: amount, ops: [count, sum, max], windows: [10m, 1h] }
    ttl: 2h
    validation: { policy: quarantine, rules: [{ rule: range, column: amount, min: 0 }] }
  - name: strict
    entity: card
    timestamp: ts
    features:
      - { name: amount, type: float }
    validation: { policy: fail, rules: [{ rule: range, column: amount, min: 0 }] }
feature_vectors:
  - name: everything
    features: [tx.*]
`;

const tmp = tempDirs();
const toClose: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const c of toClose.splice(0).reverse()) await c.close();
});

/** What the test does to the appends of feature events on their way to the real store. */
interface Appends {
  /** Appends of `features/...` tables that reached the store. */
  count: number;
  /** When set, the next feature append waits for it (and calls `onHeld` once it waits). */
  hold: Promise<void> | undefined;
  onHeld: (() => void) | undefined;
  /** Feature appends still to fail, as they would on a disk that went away. */
  failures: number;
}

interface Opened extends FeatureHarness {
  readonly appends: Appends;
  readonly ingested: IngestedEvent[];
}

/** Feature appends through `appends` before they reach `real`; other calls go straight to it. */
function stepped(real: OfflineStore, appends: Appends): OfflineStore {
  const append: OfflineStore['append'] = async (table, data, options) => {
    if (table.startsWith('features/')) {
      if (appends.hold) {
        const hold = appends.hold;
        appends.hold = undefined;
        appends.onHeld?.();
        await hold;
      }
      if (appends.failures > 0) {
        appends.failures--;
        throw new Error('disk unplugged');
      }
      appends.count++;
    }
    return real.append(table, data, options);
  };
  return new Proxy(real, {
    get: (target, property) => {
      if (property === 'append') return append;
      const value: unknown = Reflect.get(target, property);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/** A feature store in `dir` (a fresh folder by default: two opened on one folder are two processes). */
async function open(dir = tmp.fresh()): Promise<Opened> {
  const appends: Appends = { count: 0, hold: undefined, onHeld: undefined, failures: 0 };
  const ingested: IngestedEvent[] = [];
  const h = await openFeatureFixture({
    dir,
    spec: SPEC,
    wrapOffline: (real) => stepped(real, appends),
    hooks: { onIngested: (event) => void ingested.push(event) },
  });
  toClose.push({ close: () => closeFeatureHarness(h) });
  return { ...h, appends, ingested };
}

/** Holds the next feature append until the returned release is called; resolves once it waits. */
async function holdNextAppend(appends: Appends): Promise<() => void> {
  let release = (): void => undefined;
  appends.hold = new Promise<void>((resolve) => (release = resolve));
  await new Promise<void>((resolve) => (appends.onHeld = resolve));
  return release;
}

/**
 * 30 batches of 1 to 40 events of 5 cards over 2 hours: events repeated within a batch and across
 * batches (some with other values), ties at one instant told apart by event id, rows the steps
 * filter out, rows the rule set quarantines and values of the wrong type.
 */
function batches(): JsonObject[][] {
  let seed = 5;
  const next = (): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  const all: JsonObject[] = [];
  const out: JsonObject[][] = [];
  for (let b = 0; b < 30; b++) {
    const batch: JsonObject[] = [];
    const size = 1 + Math.floor(next() * 40);
    for (let i = 0; i < size; i++) {
      const r = next();
      if (all.length > 0 && r < 0.15) {
        // An event sent before, by this batch or an earlier one, sometimes with another amount.
        const again = { ...(all[Math.floor(next() * all.length)] as JsonObject) };
        if (next() < 0.5) again.amount = 999;
        batch.push(again);
        continue;
      }
      const event: JsonObject = {
        card_id: CARDS[Math.floor(next() * CARDS.length)] ?? 'c0',
        ts: T0 + Math.floor(next() * 120) * MIN,
        event_id: `e${Math.floor(next() * 3)}`,
        amount: r < 0.2 ? -1 : r < 0.25 ? 'lots' : Math.round(next() * 400) / 4,
        country: r > 0.93 ? 'XX' : 'FR',
      };
      batch.push(event);
      all.push(event);
    }
    out.push(batch);
  }
  return out;
}

/** A result without its rule set report, whose run id and time differ from run to run. */
function counts(result: IngestResult): Omit<IngestResult, 'validation'> & { outcome: string } {
  const { validation, ...rest } = result;
  return { ...rest, outcome: validation?.outcome ?? 'none' };
}

async function storedRows(offline: OfflineStore): Promise<Row[]> {
  const rows = tableToRows(await offline.read('features/tx'));
  return rows.sort((a, b) =>
    JSON.stringify([a.card_id, a.ts, a.event_id]).localeCompare(
      JSON.stringify([b.card_id, b.ts, b.event_id]),
    ),
  );
}

describe('FeatureStore.ingestEvents with concurrent callers', () => {
  it('gives each caller the result it would have had alone, and stores every event once', async () => {
    const sent = batches();
    const alone = await open();
    const expected: IngestResult[] = [];
    for (const [b, events] of sent.entries())
      expected.push(await alone.store.ingestEvents('tx', events, { firstRow: b * 100 + 1 }));

    const together = await open();
    const held = holdNextAppend(together.appends);
    const ingest = (b: number): Promise<IngestResult> =>
      together.store.ingestEvents('tx', sent[b] ?? [], { firstRow: b * 100 + 1 });
    const first = ingest(0);
    // The first batch is held in its append: the other 29 wait behind it, and form one group.
    const release = await held;
    const rest = sent.slice(1).map((_, b) => ingest(b + 1));
    release();
    const got = await Promise.all([first, ...rest]);

    expect(got.map(counts)).toEqual(expected.map(counts));
    expect(together.appends.count).toBe(2);
    const written = got.reduce((n, r) => n + r.written, 0);
    expect(written).toBeGreaterThan(50);
    expect(got.reduce((n, r) => n + r.duplicates, 0)).toBeGreaterThan(10);
    expect(got.some((r) => r.rejected.length > 0 && r.written > 0)).toBe(true);
    expect(await together.offline.count('features/tx')).toBe(written);
    expect(await storedRows(together.offline)).toEqual(await storedRows(alone.offline));
    for (const at of [T0 + 30 * MIN, T0 + 60 * MIN, T0 + 121 * MIN]) {
      expect(await together.store.getOnlineVector('everything', CARDS, at)).toEqual(
        await alone.store.getOnlineVector('everything', CARDS, at),
      );
    }
    const quarantined = await readQuarantine(together.offline, 'tx', { limit: 1000 });
    expect(quarantined.map((q) => q.row).sort((a, b) => a - b)).toEqual(
      got.flatMap((r) => r.rejected.map((x) => x.row)),
    );

    // Governance hears of every batch on its own, with the rows written for it.
    expect(together.ingested.map((e) => e.result)).toEqual(got);
    expect(together.ingested.map((e) => e.rows.rowCount)).toEqual(got.map((r) => r.written));
  });

  it('refuses only the batch that fails a rule set with policy fail, and stores the others', async () => {
    const { store, offline, online, appends } = await open();
    const release = holdNextAppend(appends);
    const first = store.ingestEvents('strict', [{ card_id: 'c0', ts: T0, amount: 1 }]);
    await release.then((go) => {
      const calls = [
        store.ingestEvents('strict', [{ card_id: 'c1', ts: T0, amount: 2 }]),
        store.ingestEvents('strict', [
          { card_id: 'c2', ts: T0, amount: 3 },
          { card_id: 'c3', ts: T0, amount: -3 },
        ]),
        store.ingestEvents('strict', [{ card_id: 'c4', ts: T0, amount: 4 }]),
      ];
      go();
      return Promise.allSettled(calls).then(async ([a, refused, c]) => {
        expect(a).toMatchObject({ status: 'fulfilled', value: { written: 1 } });
        expect(c).toMatchObject({ status: 'fulfilled', value: { written: 1 } });
        expect(refused?.status).toBe('rejected');
        await expectCode(
          Promise.reject((refused as PromiseRejectedResult).reason),
          'FERRY_VALIDATION_FAILED',
        );
      });
    });
    expect((await first).written).toBe(1);
    expect(await offline.count('features/strict')).toBe(3);
    expect(
      (await online.readLatest('strict', ['c0', 'c1', 'c2', 'c3', 'c4'])).map((r) => r !== null),
    ).toEqual([true, true, false, false, true]);
  });

  it('rejects every batch of a group whose write failed, and the retries store each event once', async () => {
    const sent = batches().slice(0, 12);
    const alone = await open();
    const expected: IngestResult[] = [];
    for (const events of sent) expected.push(await alone.store.ingestEvents('tx', events));

    const { store, offline, appends } = await open();
    const held = holdNextAppend(appends);
    const first = store.ingestEvents('tx', sent[0] ?? []);
    const release = await held;
    const rest = sent.slice(1).map((events) => store.ingestEvents('tx', events));
    appends.failures = 2;
    release();
    const settled = await Promise.allSettled([first, ...rest]);
    // The first batch alone, then the other eleven together: both writes failed.
    expect(settled.every((s) => s.status === 'rejected')).toBe(true);
    expect(appends.count).toBe(0);

    // Online was written first, offline not at all: sending again writes both, each event once.
    const retried: IngestResult[] = [];
    for (const events of sent) retried.push(await store.ingestEvents('tx', events));
    expect(retried.map(counts)).toEqual(expected.map(counts));
    expect(await storedRows(offline)).toEqual(await storedRows(alone.offline));
    expect(await store.getOnlineVector('everything', CARDS, T0 + 121 * MIN)).toEqual(
      await alone.store.getOnlineVector('everything', CARDS, T0 + 121 * MIN),
    );
  });

  it('stores batches sent after a file ingestion after it, in the order they were asked', async () => {
    const { store, offline, appends } = await open();
    const event = { card_id: 'c1', ts: T0, event_id: 'x', amount: 5, country: 'FR' };
    const release = holdNextAppend(appends);
    const before = store.ingestEvents('tx', [{ ...event, event_id: 'before' }]);
    await release.then(async (go) => {
      const waiting = store.ingestEvents('tx', [{ ...event, event_id: 'waiting' }]);
      const file = store.ingest('tx', {
        table: tableFromRows(TX_EVENT_SCHEMA, [event]),
      });
      // Asked after the file: stored after it, so its copy of the event is the duplicate.
      const after = store.ingestEvents('tx', [event, { ...event, event_id: 'after' }]);
      go();
      expect(await waiting).toMatchObject({ written: 1, duplicates: 0 });
      expect(await file).toMatchObject({ written: 1, duplicates: 0 });
      expect(await after).toMatchObject({ written: 1, duplicates: 1 });
    });
    expect(await before).toMatchObject({ written: 1 });
    // One append each: the first batch, the batch that waited, the file, the last batch.
    expect(appends.count).toBe(4);
    expect(await offline.count('features/tx')).toBe(4);
  });
});

describe('FeatureStore.ingestEvents finding duplicates', () => {
  /** Events of `cards` at the given minutes after T0, amounts from `seed`. */
  const at = (minutes: readonly number[], seed = 1): JsonObject[] =>
    minutes.map((m, i) => ({
      card_id: CARDS[m % CARDS.length] ?? 'c0',
      ts: T0 + m * MIN,
      event_id: `e${m}`,
      amount: seed * 10 + i,
      country: 'FR',
    }));

  it('after a restart, in a fresh process that knows nothing yet', async () => {
    const dir = tmp.fresh();
    const first = await open(dir);
    const sent = [at([0, 1, 2]), at([3, 4]), at([5, 6, 7])];
    for (const events of sent)
      expect((await first.store.ingestEvents('tx', events)).written).toBe(events.length);
    await closeFeatureHarness(first);

    const second = await open(dir);
    for (const events of sent) {
      expect(await second.store.ingestEvents('tx', events)).toMatchObject({
        written: 0,
        duplicates: events.length,
      });
    }
    expect(await second.store.ingestEvents('tx', [...at([6, 8])])).toMatchObject({
      written: 1,
      duplicates: 1,
    });
    expect(await second.offline.count('features/tx')).toBe(9);
  });

  it('when another process writes, compacts or drops the same set meanwhile', async () => {
    const dir = tmp.fresh();
    const a = await open(dir);
    const b = await open(dir);
    const count = (): Promise<number> => a.offline.count('features/tx');
    expect((await a.store.ingestEvents('tx', at([10, 11]))).written).toBe(2);
    // B stores events A has not seen, after A began keeping what it stored.
    expect((await b.store.ingestEvents('tx', at([12, 13]))).written).toBe(2);
    expect(await a.store.ingestEvents('tx', at([12, 13]))).toMatchObject({
      written: 0,
      duplicates: 2,
    });
    expect(await a.store.ingestEvents('tx', at([13, 14]))).toMatchObject({
      written: 1,
      duplicates: 1,
    });
    expect(await count()).toBe(5);

    // B merges A's files into one of its own: nothing new, nothing lost.
    await b.offline.compact('features/tx');
    expect(await a.store.ingestEvents('tx', at([10, 14, 15]))).toMatchObject({
      written: 1,
      duplicates: 2,
    });
    expect(await count()).toBe(6);

    // A late event of B's, older than anything A stored: A reads its time range.
    expect((await b.store.ingestEvents('tx', at([1]))).written).toBe(1);
    expect(await a.store.ingestEvents('tx', at([1, 2]))).toMatchObject({
      written: 1,
      duplicates: 1,
    });
    expect(await count()).toBe(8);

    // B drops the set's history: what A knew is gone, so A stores the events again.
    await b.offline.dropTable('features/tx');
    expect(await a.store.ingestEvents('tx', at([10, 11]))).toMatchObject({
      written: 2,
      duplicates: 0,
    });
    expect(await count()).toBe(2);
  });
});
