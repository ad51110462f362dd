import path from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { JsonObject, JsonValue } from '../core/json.js';
import { getColumn, tableFromRows, tableToRows, type Row } from '../core/table.js';
import { readQuarantine } from '../data/validate/quarantine.js';
import type { EventBus, EventMessage } from '../events/event-bus.js';
import { createMemoryEventBus, type MemoryEventBus } from '../events/memory.js';
import { openNatsEventBus, type NatsEventBus } from '../events/nats.js';
import {
  CARD_TX,
  openFeatureFixture,
  TX_EVENT_SCHEMA,
  type FeatureHarness,
} from '../testing/feature-fixture.js';
import { expectCode, uniqueName } from '../testing/harness.js';
import { testService } from '../testing/services.js';
import { tempDirs } from '../testing/temp.js';
import { FeatureStore, type IngestResult } from './feature-store.js';
import type { OfflineStore } from './offline/offline-store.js';
import { openParquetOfflineStore } from './offline/parquet.js';
import {
  ingestDeadLetterSubject,
  ingestSubject,
  startIngestionConsumers,
  type IngestionConsumers,
  type IngestOutcome,
} from './stream.js';

const MIN = 60_000;
const T0 = Date.UTC(2026, 9, 1, 12);

const tmp = tempDirs();

const SPEC = `
${CARD_TX}
    steps:
      - { step: filter, where: "country != 'XX'" }
      - { step: derive, column: big, expr: "amount > 100" }
    features:
      - { name: amount, type: float }
      - { name: country, type: string }
      - { name: big, type: bool }
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
  - name: priced
    entity: card
    timestamp: ts
    steps:
      - { step: derive, column: amount, expr: "price * qty" }
    features:
      - { name: amount, type: float }
feature_vectors:
  - name: everything
    features: [tx.*]
  - name: strict_v
    features: [strict.amount]
`;

const toClose: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const c of toClose.splice(0).reverse()) await c.close();
});

async function open(
  spec = SPEC,
  wrapOffline?: (offline: OfflineStore, dir: string) => OfflineStore,
): Promise<FeatureHarness> {
  const h = await openFeatureFixture({ dir: tmp.fresh(), spec, wrapOffline });
  toClose.push(h.offline, h.online);
  return h;
}

function bus(): MemoryEventBus {
  const b = createMemoryEventBus();
  toClose.push(b);
  return b;
}

/**
 * Events with ties (same card and time, other event id), repeats (same identity), events out
 * of time order, rows the steps filter out, rows the rule set quarantines and null amounts.
 */
function sampleRows(): Row[] {
  const rows: Row[] = [];
  let seed = 11;
  const next = (): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  for (let i = 0; i < 240; i++) {
    const card = `c${Math.floor(next() * 6)}`;
    const ts = T0 + Math.floor(next() * 180) * MIN;
    const r = next();
    rows.push({
      card_id: card,
      ts,
      event_id: `e${i % 200}`,
      // Quarters add up exactly in binary floating point, so sums do not depend on the order in
      // which a store adds them (DuckDB's parallel sum does not keep one).
      amount: r < 0.05 ? -5 : r < 0.1 ? null : Math.round(next() * 800) / 4,
      country: r > 0.95 ? 'XX' : (['FR', 'DE', 'US'][i % 3] ?? 'FR'),
    });
  }
  // Exact repeats of earlier events, and a tie at one time for one card.
  rows.push({ ...(rows[3] as Row) }, { ...(rows[10] as Row) });
  rows.push({ ...(rows[5] as Row), event_id: 'tie-a', amount: 1 });
  rows.push({ ...(rows[5] as Row), event_id: 'tie-b', amount: 2 });
  return rows;
}

/** The same rows as a JSON producer would send them: times as ISO text or as milliseconds. */
function asEvents(rows: readonly Row[]): JsonObject[] {
  return rows.map((row, i) => {
    const event: JsonObject = {};
    for (const [k, v] of Object.entries(row)) if (v !== null) event[k] = v;
    event.ts = i % 2 === 0 ? new Date(row.ts as number).toISOString() : (row.ts as number);
    event.unused_field = { nested: [1, 2] };
    return event;
  });
}

function labelsAt(times: readonly number[]): ReturnType<typeof tableFromRows> {
  const rows: Row[] = [];
  for (const t of times) for (let c = 0; c < 7; c++) rows.push({ card_id: `c${c}`, ts: t });
  return tableFromRows(
    [
      { name: 'card_id', type: 'string' },
      { name: 'ts', type: 'timestamp' },
    ],
    rows,
  );
}

const CARDS = ['c0', 'c1', 'c2', 'c3', 'c4', 'c5', 'c6'];

describe('FeatureStore.ingestEvents', () => {
  it('stores streamed events exactly as batch ingestion stores the same rows', async () => {
    const rows = sampleRows();
    const batch = await open();
    const stream = await open();
    const fromFile = await batch.store.ingest('tx', {
      table: tableFromRows(TX_EVENT_SCHEMA, rows),
    });
    // The stream sends the same rows in batches of 50, numbered on from batch to batch.
    const events = asEvents(rows);
    const results: IngestResult[] = [];
    for (let start = 0; start < events.length; start += 50) {
      results.push(
        await stream.store.ingestEvents('tx', events.slice(start, start + 50), {
          firstRow: start + 1,
        }),
      );
    }
    const sum = (pick: (r: IngestResult) => number): number =>
      results.reduce((a, r) => a + pick(r), 0);
    expect(sum((r) => r.read)).toBe(fromFile.read);
    expect(sum((r) => r.written)).toBe(fromFile.written);
    expect(sum((r) => r.duplicates)).toBe(fromFile.duplicates);
    expect(sum((r) => r.filtered)).toBe(fromFile.filtered);
    expect(results.flatMap((r) => r.rejected)).toEqual(fromFile.rejected);
    expect(fromFile.filtered).toBeGreaterThan(0);
    expect(fromFile.duplicates).toBeGreaterThan(0);
    expect(fromFile.quarantined['range(amount)'] ?? 0).toBeGreaterThan(0);

    for (const at of [T0 + 30 * MIN, T0 + 95 * MIN + 1, T0 + 180 * MIN, T0 + 200 * MIN]) {
      expect(await stream.store.getOnlineVector('everything', CARDS, at)).toEqual(
        await batch.store.getOnlineVector('everything', CARDS, at),
      );
    }
    const labels = labelsAt([T0 + 20 * MIN, T0 + 61 * MIN, T0 + 150 * MIN]);
    const offlineStream = await stream.store.buildTrainingSet('everything', { table: labels });
    const offlineBatch = await batch.store.buildTrainingSet('everything', { table: labels });
    expect(tableToRows(offlineStream)).toEqual(tableToRows(offlineBatch));
    expect(tableToRows(offlineStream).some((r) => (r.amount_count_1h as number) > 1)).toBe(true);
  });

  it('reads ISO 8601 text and UTC milliseconds as the same time', async () => {
    const { store } = await open();
    const times = [
      '2026-10-01T12:00:00Z',
      '2026-10-01T14:00:00+02:00',
      '2026-10-01 12:00:00',
      T0,
      String(T0),
    ];
    const result = await store.ingestEvents(
      'tx',
      times.map((ts) => ({ card_id: 'c1', ts, amount: 10, country: 'FR' })),
    );
    expect(result).toMatchObject({ read: 5, written: 1, duplicates: 4, rejected: [] });
    const [row] = await store.getOnlineVector('everything', ['c1'], T0);
    expect(row).toMatchObject({ amount: 10, amount_count_10m: 1 });
    const [before] = await store.getOnlineVector('everything', ['c1'], T0 - 1);
    expect(before).toMatchObject({ amount: null, amount_count_10m: 0 });
  });

  it('quarantines events with values of the wrong type, each with its rule and reason', async () => {
    const { store, offline } = await open();
    const result = await store.ingestEvents(
      'tx',
      [
        { card_id: 'c1', ts: T0, amount: 'lots', country: 'FR' },
        { card_id: 'c1', ts: 'yesterday', amount: 3, country: 'FR' },
        { ts: T0, amount: 3, country: 'FR' },
        { card_id: 'c1', ts: T0, amount: -1, country: 'FR' },
        { card_id: 'c1', ts: T0 + 1, amount: 4.5, country: 'FR' },
        { card_id: { id: 1 }, ts: T0, amount: 3, country: 'FR' },
      ],
      { origin: 'test stream', firstRow: 101 },
    );
    expect(result.written).toBe(1);
    expect(result.rejected.map((r) => [r.row, r.rule])).toEqual([
      [101, 'type(amount)'],
      [102, 'type(ts)'],
      [103, 'entity_key'],
      [104, 'range(amount)'],
      [106, 'type(card_id)'],
    ]);
    expect(result.rejected[0]?.reason).toContain("'lots'");
    expect(result.rejected[1]?.reason).toContain("'yesterday'");
    expect(result.quarantined).toEqual({
      'type(amount)': 1,
      'type(ts)': 1,
      entity_key: 1,
      'range(amount)': 1,
      'type(card_id)': 1,
    });
    const quarantined = await readQuarantine(offline, 'tx', { limit: 10 });
    expect(quarantined.map((q) => q.row).sort()).toEqual([101, 102, 103, 104, 106]);
    expect(quarantined.every((q) => q.source === 'test stream')).toBe(true);
    const lots = quarantined.find((q) => q.row === 101);
    expect(lots?.record).toMatchObject({ amount: 'lots', card_id: 'c1' });
  });

  it('reads a numeric entity key as its text, as a file column of numbers is read', async () => {
    const { store } = await open();
    await store.ingestEvents('tx', [{ card_id: 42, ts: T0, amount: 7, country: 'FR' }]);
    const [row] = await store.getOnlineVector('everything', ['42'], T0);
    expect(row).toMatchObject({ card_id: '42', amount: 7 });
  });

  it('writes nothing from a batch that fails a rule set with policy fail', async () => {
    const { store, offline, online } = await open();
    const err = await expectCode(
      store.ingestEvents('strict', [
        { card_id: 'c1', ts: T0, amount: 5 },
        { card_id: 'c2', ts: T0, amount: -5 },
      ]),
      'FERRY_VALIDATION_FAILED',
    );
    expect(err.message).toContain('range');
    expect(await offline.hasTable('features/strict')).toBe(false);
    expect(await offline.hasTable('quarantine/strict')).toBe(false);
    expect(await online.readLatest('strict', ['c1', 'c2'])).toEqual([null, null]);
    // A passing batch of the same set goes through.
    expect(
      (await store.ingestEvents('strict', [{ card_id: 'c1', ts: T0, amount: 5 }])).written,
    ).toBe(1);
  });

  it('adds nothing when a batch is sent again', async () => {
    const { store, offline } = await open();
    const events = asEvents(sampleRows()).slice(0, 80);
    const first = await store.ingestEvents('tx', events);
    const before = await store.getOnlineVector('everything', CARDS, T0 + 200 * MIN);
    const again = await store.ingestEvents('tx', events);
    expect(again.written).toBe(0);
    expect(again.duplicates).toBe(first.written + first.duplicates);
    expect(await offline.count('features/tx')).toBe(first.written);
    expect(await store.getOnlineVector('everything', CARDS, T0 + 200 * MIN)).toEqual(before);
  });

  it('refuses a column that steps read but nothing declares, saying to declare it in event_schema', async () => {
    const { store } = await open();
    const err = await expectCode(
      store.ingestEvents('priced', [{ card_id: 'c1', ts: T0, price: 2, qty: 3 }]),
      'FERRY_CONFIG_INVALID',
    );
    expect(err.message).toContain("'price', 'qty'");
    expect(err.message).toContain('event_schema: { price: <type>, qty: <type> }');

    const declared = SPEC.replace(
      '      - { step: derive, column: amount, expr: "price * qty" }',
      '      - { step: derive, column: amount, expr: "price * qty" }\n    event_schema: { price: float, qty: int }',
    );
    const ok = await open(declared);
    const result = await ok.store.ingestEvents('priced', [
      { card_id: 'c1', ts: T0, price: 2.5, qty: 3 },
      { card_id: 'c2', ts: T0, price: 2.5, qty: 1.5 },
    ]);
    expect(result.written).toBe(1);
    expect(result.rejected).toMatchObject([{ row: 2, rule: 'type(qty)' }]);
    const [row] = await ok.online.readLatest('priced', ['c1']);
    expect(row?.values.amount).toBe(7.5);
  });
});

/* ------------------------------------------------------------------ the consumer */

/** How a test holds the real Parquet store behind {@link heldOffline}. */
interface Hold {
  /** Appends to `features/*` so far. */
  appends: number;
  /** When set, the next append waits for it (and calls `onGate` when it starts waiting). */
  gate: Promise<void> | undefined;
  onGate: (() => void) | undefined;
  /** When set, the next append closes the store first (so it fails) and reopens it for later calls. */
  closeUnderNextAppend: boolean;
  /**
   * When set, every append holding an event of this card fails, as a store that cannot write one
   * event's content (a writer refusing a value) fails the whole write it is part of.
   */
  cannotWriteCard: string | undefined;
}

/**
 * A real Parquet store behind a handle the test can hold shut or close under a writer: every
 * call goes to the store open at the time; appends pass through the hold first.
 */
function heldOffline(
  first: OfflineStore,
  reopen: () => Promise<OfflineStore>,
): { store: OfflineStore; hold: Hold } {
  const hold: Hold = {
    appends: 0,
    gate: undefined,
    onGate: undefined,
    closeUnderNextAppend: false,
    cannotWriteCard: undefined,
  };
  let current = first;
  const append: OfflineStore['append'] = async (table, data, options) => {
    if (table.startsWith('features/')) {
      hold.appends++;
      if (hold.gate) {
        const gate = hold.gate;
        hold.gate = undefined;
        hold.onGate?.();
        await gate;
      }
      const card = hold.cannotWriteCard;
      if (card !== undefined && getColumn(data, 'card_id')?.values.includes(card)) {
        throw new Error(`cannot encode the row of card '${card}' in a Parquet column chunk`);
      }
      if (hold.closeUnderNextAppend) {
        hold.closeUnderNextAppend = false;
        const closed = current;
        await closed.close();
        current = await reopen();
        return closed.append(table, data, options);
      }
    }
    return current.append(table, data, options);
  };
  const store = new Proxy({} as OfflineStore, {
    get: (_target, property) => {
      if (property === 'append') return append;
      const value: unknown = Reflect.get(current, property);
      return typeof value === 'function' ? value.bind(current) : value;
    },
  });
  return { store, hold };
}

async function openHeld(): Promise<FeatureHarness & { held: OfflineStore; hold: Hold }> {
  let held: ReturnType<typeof heldOffline> | undefined;
  const opened = await open(SPEC, (real, dir) => {
    held = heldOffline(real, () => openParquetOfflineStore({ path: path.join(dir, 'offline') }));
    return held.store;
  });
  const { store, hold } = held as ReturnType<typeof heldOffline>;
  return { ...opened, held: store, hold };
}

async function consume(
  store: FeatureStore,
  events: EventBus,
  options: { maxDeliver?: number } = {},
): Promise<{
  consumers: IngestionConsumers;
  dead: JsonValue[];
  outcomes: Partial<Record<IngestOutcome, number>>;
}> {
  const dead: JsonValue[] = [];
  await events.subscribe(ingestDeadLetterSubject('*'), async (m: EventMessage) => {
    dead.push(m.data);
  });
  const outcomes: Partial<Record<IngestOutcome, number>> = {};
  const consumers = await startIngestionConsumers({
    features: store,
    events,
    featureSets: ['tx', 'strict'],
    batch: { maxMessages: 50, maxWaitMs: 5, ...options },
    onOutcome: (_set, outcome, n) => (outcomes[outcome] = (outcomes[outcome] ?? 0) + n),
  });
  toClose.push({ close: () => consumers.stop() });
  return { consumers, dead, outcomes };
}

/**
 * One message whose events a store fails to write, among good ones in the same batch: the good
 * ones are stored exactly once and acknowledged at their first delivery (a redelivered one would
 * count as duplicates), and only the bad one is dead-lettered, whole, after its 3 deliveries, with
 * its own code and reason.
 */
async function unwritableInBatchCase(events: EventBus): Promise<void> {
  const { store, held, hold } = await openHeld();
  const { dead, outcomes } = await consume(store, events, { maxDeliver: 3 });
  hold.cannotWriteCard = 'c9';
  const bad = [
    { card_id: 'c2', ts: T0, amount: 2, country: 'FR' },
    { card_id: 'c9', ts: T0, amount: 9, country: 'FR' },
  ];
  const messages: JsonValue[] = [
    { card_id: 'c1', ts: T0, amount: 1, country: 'FR' },
    bad,
    { card_id: 'c3', ts: T0, amount: 3, country: 'FR' },
    [
      { card_id: 'c4', ts: T0, amount: 4, country: 'FR' },
      { card_id: 'c5', ts: T0, amount: 5, country: 'FR' },
    ],
  ];
  await Promise.all(messages.map((m) => events.publish(ingestSubject('tx'), m)));
  await events.drain();

  const stored = tableToRows(await held.read('features/tx', { columns: ['card_id', 'amount'] }));
  expect(stored.map((r) => r.card_id).sort()).toEqual(['c1', 'c3', 'c4', 'c5']);
  expect(outcomes).toEqual({ written: 4, failed: 2 });
  expect(dead).toEqual([
    {
      subject: ingestSubject('tx'),
      data: bad,
      error: expect.stringMatching(/^FERRY_INTERNAL: cannot encode the row of card 'c9'/),
      deliveries: 3,
    },
  ]);
}

describe('startIngestionConsumers', () => {
  it('acknowledges a batch only once both stores hold its events', async () => {
    const { store, held, hold, online } = await openHeld();
    const events = bus();
    await consume(store, events);
    let release = (): void => undefined;
    hold.gate = new Promise<void>((resolve) => (release = resolve));
    const atGate = new Promise<void>((resolve) => (hold.onGate = resolve));

    await events.publish(ingestSubject('tx'), [
      { card_id: 'c1', ts: T0, amount: 10, country: 'FR' },
      { card_id: 'c2', ts: T0, amount: 20, country: 'FR' },
    ]);
    let drained = false;
    const draining = events.drain().then(() => (drained = true));
    await atGate;
    // The offline append is held: online is written, the message is not acknowledged yet.
    expect((await online.readLatest('tx', ['c1']))[0]?.values.amount).toBe(10);
    await new Promise((resolve) => setImmediate(resolve));
    expect(drained).toBe(false);
    expect(await held.hasTable('features/tx')).toBe(false);
    release();
    await draining;
    expect(await held.count('features/tx')).toBe(2);
  });

  it('dead-letters malformed messages and rejected events with the reason, and stores the rest', async () => {
    const { store, offline } = await open();
    const events = bus();
    const { dead } = await consume(store, events);
    await events.publish(ingestSubject('tx'), 'hello');
    await events.publish(ingestSubject('tx'), [{ card_id: 'c1', ts: T0, amount: 1 }, 7]);
    await events.publish(ingestSubject('tx'), { card_id: 'c2', ts: T0, amount: 5, country: 'FR' });
    await events.publish(ingestSubject('tx'), [
      { card_id: 'c3', ts: T0, amount: 'lots', country: 'FR' },
      { card_id: 'c4', ts: T0, amount: 6, country: 'FR' },
    ]);
    await events.drain();

    expect(await offline.count('features/tx')).toBe(2);
    expect(dead).toHaveLength(3);
    expect(dead).toContainEqual(
      expect.objectContaining({
        subject: 'ferry.ingest.tx',
        data: 'hello',
        error: expect.stringContaining('not an event object'),
      }),
    );
    expect(dead).toContainEqual(
      expect.objectContaining({
        data: [{ card_id: 'c1', ts: T0, amount: 1 }, 7],
        error: expect.stringContaining('item 2'),
      }),
    );
    expect(dead).toContainEqual(
      expect.objectContaining({
        data: { card_id: 'c3', ts: T0, amount: 'lots', country: 'FR' },
        rule: 'type(amount)',
        error: expect.stringContaining("'lots'"),
      }),
    );
    // The rejected event is in the quarantine as well.
    expect((await readQuarantine(offline, 'tx')).map((q) => q.rule)).toEqual(['type(amount)']);
  });

  it('dead-letters only the messages of a batch that fail a rule set with policy fail', async () => {
    const { store, offline } = await open();
    const events = bus();
    const { dead } = await consume(store, events);
    await events.publish(ingestSubject('strict'), { card_id: 'c1', ts: T0, amount: 1 });
    await events.publish(ingestSubject('strict'), [
      { card_id: 'c2', ts: T0, amount: 2 },
      { card_id: 'c3', ts: T0, amount: -3 },
    ]);
    await events.publish(ingestSubject('strict'), { card_id: 'c4', ts: T0, amount: 4 });
    await events.drain();
    const stored = await offline.read('features/strict', { columns: ['card_id'] });
    expect(tableToRows(stored).map((r) => r.card_id)).toEqual(expect.arrayContaining(['c1', 'c4']));
    expect(stored.rowCount).toBe(2);
    expect(dead).toEqual([
      expect.objectContaining({
        subject: 'ferry.ingest.strict',
        data: [
          { card_id: 'c2', ts: T0, amount: 2 },
          { card_id: 'c3', ts: T0, amount: -3 },
        ],
        error: expect.stringContaining('FERRY_VALIDATION_FAILED'),
      }),
    ]);
  });

  it('delivers a batch again when a store fails under it, losing and repeating nothing', async () => {
    const { store, held, hold, online } = await openHeld();
    const events = bus();
    const { dead } = await consume(store, events, { maxDeliver: 5 });
    await events.publish(ingestSubject('tx'), { card_id: 'c1', ts: T0, amount: 1, country: 'FR' });
    await events.drain();
    hold.closeUnderNextAppend = true;
    const sent = [
      { card_id: 'c1', ts: T0 + MIN, amount: 2, country: 'FR' },
      { card_id: 'c2', ts: T0 + MIN, amount: 3, country: 'FR' },
    ];
    for (const e of sent) await events.publish(ingestSubject('tx'), e);
    await events.drain();

    expect(hold.appends).toBeGreaterThanOrEqual(3);
    expect(dead).toEqual([]);
    const stored = tableToRows(await held.read('features/tx', { columns: ['card_id', 'amount'] }));
    expect(stored.map((r) => r.amount).sort()).toEqual([1, 2, 3]);
    const [c1] = await store.getOnlineVector('everything', ['c1'], T0 + MIN);
    expect(c1).toMatchObject({ amount: 2, amount_count_10m: 2, amount_sum_10m: 3 });
    expect((await online.readLatest('tx', ['c2']))[0]?.values.amount).toBe(3);
  });

  it('stores the good messages of a batch once and dead-letters only the one a store cannot write', async () => {
    await unwritableInBatchCase(bus());
  });

  it('takes a store down for the whole batch as shared: nothing dead-lettered before the last delivery, and a few writes per delivery', async () => {
    const { store, held, hold } = await openHeld();
    const events = bus();
    const { dead, outcomes } = await consume(store, events, { maxDeliver: 3 });
    // Every message holds an event of c1, so every write fails: the store is down for all.
    hold.cannotWriteCard = 'c1';
    const sent = Array.from({ length: 6 }, (_, i) => [
      { card_id: 'c1', ts: T0 + i * MIN, amount: i, country: 'FR' },
      { card_id: `c${i + 2}`, ts: T0, amount: i, country: 'FR' },
    ]);
    await Promise.all(sent.map((m) => events.publish(ingestSubject('tx'), m)));
    await events.drain();

    expect(await held.hasTable('features/tx')).toBe(false);
    expect(outcomes).toEqual({ failed: 12 });
    expect(dead).toHaveLength(6);
    expect(dead).toEqual(
      expect.arrayContaining(
        sent.map((data) => ({
          subject: ingestSubject('tx'),
          data,
          error: expect.stringContaining("cannot encode the row of card 'c1'"),
          deliveries: 3,
        })),
      ),
    );
    // Deliveries 1 and 2: the batch's write, then 3 messages alone before the rest come again
    // untried (4 each, not 1 + 6). Delivery 3, the last: the batch's write, then each message
    // alone, so that none is dead-lettered for another's failure (7).
    expect(hold.appends).toBe(4 + 4 + 7);
  });

  it('dead-letters every message with the reason when the feature set cannot read streamed events', async () => {
    const { store } = await open();
    const events = bus();
    const dead: JsonValue[] = [];
    await events.subscribe(ingestDeadLetterSubject('priced'), async (m) => {
      dead.push(m.data);
    });
    const consumers = await startIngestionConsumers({
      features: store,
      events,
      featureSets: ['priced'],
    });
    toClose.push({ close: () => consumers.stop() });
    await events.publish(ingestSubject('priced'), { card_id: 'c1', ts: T0, price: 1, qty: 2 });
    await events.drain();
    expect(dead).toEqual([
      expect.objectContaining({ error: expect.stringContaining('event_schema') }),
    ]);
  });
});

/* ------------------------------------------------------------------ on NATS JetStream */

const nats = await testService('nats');

describe.skipIf(!nats.available)('startIngestionConsumers on NATS JetStream', () => {
  const run = uniqueName('ferryingest');
  const stream = run.toUpperCase();
  const openNats = (): Promise<NatsEventBus> =>
    openNatsEventBus({
      servers: [nats.url],
      stream,
      maxPending: 256,
      ackWaitMs: 5_000,
      subjectPrefix: run,
    });
  afterAll(async () => {
    const nc = await connect({ servers: [nats.url] });
    const jsm = await jetstreamManager(nc);
    await jsm.streams.delete(stream).catch(() => undefined);
    await nc.close();
  });

  it('stores the good messages of a batch once and dead-letters only the one a store cannot write', async () => {
    const events = await openNats();
    toClose.push(events);
    await unwritableInBatchCase(events);
  });

  it('stores events from a durable group, resumes after a restart and dead-letters malformed messages', async () => {
    const { store, offline } = await open();
    const events = await openNats();
    toClose.push(events);
    const dead: JsonValue[] = [];
    await events.subscribe(ingestDeadLetterSubject('tx'), async (m) => {
      dead.push(m.data);
    });
    const start = () => startIngestionConsumers({ features: store, events, featureSets: ['tx'] });
    const first = await start();
    await events.publish(ingestSubject('tx'), [
      { card_id: 'c1', ts: T0, amount: 1, country: 'FR' },
      { card_id: 'c2', ts: T0, amount: 2, country: 'FR' },
    ]);
    await events.publish(ingestSubject('tx'), 'not an event');
    await events.drain();
    expect(await offline.count('features/tx')).toBe(2);
    await first.stop();

    // Published while no consumer runs: the group's durable consumer keeps them.
    await events.publish(ingestSubject('tx'), { card_id: 'c3', ts: T0, amount: 3, country: 'FR' });
    const second = await start();
    toClose.push({ close: () => second.stop() });
    await events.drain();
    expect(await offline.count('features/tx')).toBe(3);
    expect(dead).toEqual([
      expect.objectContaining({
        data: 'not an event',
        error: expect.stringContaining('malformed'),
      }),
    ]);
  });
});
