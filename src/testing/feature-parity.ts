/**
 * The feature store's parity scenario, shared by every online store backend: a generated history
 * (ties, gaps, expired ttls, out-of-order events, window edges) ingested in stages, and online
 * lookups and training sets compared row for row with a brute-force reference of the semantics
 * of DESIGN.md. `describeFeatureParity` declares the parity and semantics cases for one online
 * store; the helpers are exported for the other cases of `feature-store.test.ts`.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  tableFromRows,
  tableToRows,
  type ColumnSchema,
  type Row,
  type Scalar,
  type Table,
} from '../core/table.js';
import { createRng } from '../training/random.js';
import {
  CARD_TX,
  closeFeatureHarness,
  openFeatureFixture,
  type FeatureHarness,
  type OnlineStoreFactory,
} from './feature-fixture.js';
import { tempDirs } from './temp.js';

/** Milliseconds, and the instant the generated history starts at. */
export const MIN = 60_000;
export const HOUR = 3_600_000;
export const DAY = 86_400_000;
export const T0 = Date.UTC(2026, 9, 1);
export const TTL = 2 * HOUR;

/** Cards with 4 plain features, windows of 10m, 1h and 1d, a 2h ttl; vectors `everything` and `small`. */
export const SPEC = `
${CARD_TX}
    features:
      - { name: amount, type: float }
      - { name: items, type: int }
      - { name: country, type: string }
      - { name: online, type: bool }
    aggregations:
      - { column: amount, ops: [count, sum, mean, min, max], windows: [10m, 1h, 1d] }
      - { column: items, ops: [sum, max], windows: [1h] }
      - { column: country, ops: [count], windows: [1h] }
      - { column: online, ops: [sum, mean, max], windows: [1h] }
    ttl: 2h
feature_vectors:
  - name: everything
    features: [tx.*]
    label: { source: { type: csv, path: labels.csv }, column: label, timestamp: ts }
  - name: small
    features: [tx.amount, tx.amount_count_1h]
    label: { source: { type: csv, path: labels.csv }, column: label, timestamp: ts }
`;

export const EVENT_SCHEMA: ColumnSchema[] = [
  { name: 'card_id', type: 'string' },
  { name: 'ts', type: 'timestamp' },
  { name: 'event_id', type: 'string' },
  { name: 'amount', type: 'float' },
  { name: 'items', type: 'int' },
  { name: 'country', type: 'string' },
  { name: 'online', type: 'bool' },
];

export {
  closeFeatureHarness,
  type FeatureHarness,
  type OnlineStoreFactory,
} from './feature-fixture.js';

export interface FeatureHarnessOptions {
  /** An empty folder for the project (offline store, sources). */
  readonly dir: string;
  readonly online: OnlineStoreFactory;
  readonly onlineHistoryMs?: number;
  /** ferry.yaml as text; {@link SPEC} when absent. */
  readonly spec?: string;
}

/**
 * A FeatureStore over a fresh Parquet offline store and the given online store, on {@link SPEC}
 * unless told. Close it with `closeFeatureHarness` when done.
 * @example const h = await openFeatureHarness({ dir: tmp.fresh(), online: sqliteOnline });
 */
export function openFeatureHarness(options: FeatureHarnessOptions): Promise<FeatureHarness> {
  return openFeatureFixture({ ...options, spec: options.spec ?? SPEC });
}

/** One event of the `tx` feature set, its values in the order of {@link EVENT_SCHEMA}. */
export function tx(
  card_id: string,
  ts: number,
  event_id: string,
  amount: number,
  items: number,
  country: string,
  online: boolean,
): Row {
  return { card_id, ts, event_id, amount, items, country, online };
}

/** Events of the `tx` feature set as a table. */
export function events(rows: Row[]): Table {
  return tableFromRows(EVENT_SCHEMA, rows);
}

/** Label rows (card, time, an alternating label) asking for features at each (key, T). */
export function labels(pairs: readonly { key: string; at: number }[]): Table {
  return tableFromRows(
    [
      { name: 'card_id', type: 'string' },
      { name: 'ts', type: 'timestamp' },
      { name: 'label', type: 'int' },
    ],
    pairs.map((p, i) => ({ card_id: p.key, ts: p.at, label: i % 2 })),
  );
}

/* ------------------------------------------------------------------ reference semantics */

/** What DESIGN.md says the answer is, computed the plainest way from the stored events. */
export function reference(stored: readonly Row[], key: string, at: number): Row {
  const mine = stored.filter((e) => e.card_id === key && (e.ts as number) <= at);
  const out: Row = {};
  let latest: Row | undefined;
  for (const e of mine) {
    if (
      !latest ||
      (e.ts as number) > (latest.ts as number) ||
      (e.ts === latest.ts && String(e.event_id) > String(latest.event_id))
    )
      latest = e;
  }
  const fresh = latest !== undefined && at - (latest.ts as number) < TTL;
  for (const f of ['amount', 'items', 'country', 'online'])
    out[f] = fresh ? ((latest as Row)[f] ?? null) : null;
  const within = (w: number): Row[] => mine.filter((e) => (e.ts as number) > at - w);
  const nums = (rows: Row[], column: string): number[] =>
    rows
      .map((e) => e[column])
      .filter((v): v is number | boolean => v !== null && v !== undefined)
      .map((v) => (typeof v === 'boolean' ? (v ? 1 : 0) : v));
  const windows: [string, number][] = [
    ['10m', 10 * MIN],
    ['1h', HOUR],
    ['1d', DAY],
  ];
  for (const [name, w] of windows) {
    const v = nums(within(w), 'amount');
    out[`amount_count_${name}`] = v.length;
    out[`amount_sum_${name}`] = v.reduce((a, b) => a + b, 0);
    out[`amount_mean_${name}`] = v.length ? v.reduce((a, b) => a + b, 0) / v.length : null;
    out[`amount_min_${name}`] = v.length ? Math.min(...v) : null;
    out[`amount_max_${name}`] = v.length ? Math.max(...v) : null;
  }
  const hour = within(HOUR);
  const items = nums(hour, 'items');
  out.items_sum_1h = items.reduce((a, b) => a + b, 0);
  out.items_max_1h = items.length ? Math.max(...items) : null;
  out.country_count_1h = hour.filter((e) => e.country !== null && e.country !== undefined).length;
  const online = nums(hour, 'online');
  out.online_sum_1h = online.reduce((a, b) => a + b, 0);
  out.online_mean_1h = online.length ? online.reduce((a, b) => a + b, 0) / online.length : null;
  out.online_max_1h = online.length ? Math.max(...online) === 1 : null;
  return out;
}

function same(a: Scalar | undefined, b: Scalar | undefined): boolean {
  if (typeof a === 'number' && typeof b === 'number')
    return Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a), Math.abs(b));
  return (a ?? null) === (b ?? null);
}

export function expectSameRow(actual: Row, expected: Row, context: string): void {
  for (const [name, value] of Object.entries(expected)) {
    if (!same(actual[name], value)) {
      throw new Error(`${context}: ${name} is ${String(actual[name])}, expected ${String(value)}`);
    }
  }
}

/* ------------------------------------------------------------------ the generated history */

export interface Stage {
  readonly rows: Row[];
  /** End of the stage: every event of the stage is at or before it. */
  readonly end: number;
}

/**
 * Three days of events for 12 cards, with the cases that break window code: events exactly one
 * window apart, several cards at the same instant, two events of one card at the same instant
 * (told apart by event_id), repeated rows, null values, and bursts within minutes.
 */
export function history(): Stage[] {
  const rand = createRng(42);
  const cards = Array.from({ length: 12 }, (_, i) => `c${String(i).padStart(3, '0')}`);
  const countries = ['FR', 'DE', 'US', null];
  let id = 0;
  const make = (card: string, ts: number, over: Row = {}): Row => ({
    card_id: card,
    ts,
    event_id: `e${String(id++).padStart(5, '0')}`,
    amount: rand() < 0.08 ? null : Math.round(Math.exp(2 + rand() * 3) * 100) / 100 + rand() / 3,
    items: rand() < 0.05 ? null : 1 + Math.floor(rand() * 5),
    country: countries[Math.floor(rand() * countries.length)] ?? null,
    online: rand() < 0.05 ? null : rand() < 0.4,
    ...over,
  });
  const stages: Stage[] = [];
  for (let day = 0; day < 3; day++) {
    const start = T0 + day * DAY;
    const rows: Row[] = [];
    for (const card of cards) {
      let t = start + Math.floor(rand() * 2 * HOUR);
      while (t < start + DAY - 3 * HOUR) {
        rows.push(make(card, t));
        // Bursts (a few minutes apart) and quiet spells (hours apart).
        t += rand() < 0.5 ? Math.floor(rand() * 8 * MIN) + 1 : Math.floor(rand() * 3 * HOUR) + 1;
      }
    }
    // Exact window boundaries: events exactly 10m, 1h and 1d apart on one card.
    const edge = start + DAY - 2 * HOUR;
    rows.push(
      make('c000', edge - DAY + 2 * HOUR),
      make('c000', edge - HOUR),
      make('c000', edge - 10 * MIN),
      make('c000', edge),
    );
    // Several cards at the same instant.
    for (const card of cards.slice(1, 6)) rows.push(make(card, edge));
    // One card, one instant, two events: the greater event_id is the latest.
    rows.push(
      make('c001', edge + MIN, { event_id: 'zz' + day }),
      make('c001', edge + MIN, { event_id: 'aa' + day }),
    );
    // A repeated row, and an event with every value null.
    rows.push({ ...(rows[3] as Row) });
    rows.push(
      make('c002', edge + 2 * MIN, { amount: null, items: null, country: null, online: null }),
    );
    stages.push({ rows, end: start + DAY - HOUR });
  }
  return stages;
}

export function dedupe(rows: readonly Row[]): Row[] {
  const seen = new Set<string>();
  return rows.filter((r) => {
    const id = `${String(r.card_id)}|${String(r.ts)}|${String(r.event_id)}`;
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}

/** Times at or after the card's newest event, where the online store is exact by contract. */
export function probeTimes(stored: readonly Row[], key: string, rand: () => number): number[] {
  const mine = stored.filter((e) => e.card_id === key).map((e) => e.ts as number);
  if (mine.length === 0) return [T0, T0 + DAY];
  const newest = Math.max(...mine);
  const times = new Set<number>([newest, newest + 1, newest + TTL - 1, newest + TTL]);
  for (const w of [10 * MIN, HOUR, DAY]) {
    for (const ts of mine) {
      // An event exactly at T - window (excluded) and 1 ms inside the window (included).
      for (const at of [ts + w, ts + w - 1]) if (at >= newest) times.add(at);
    }
  }
  for (let i = 0; i < 5; i++) times.add(newest + Math.floor(rand() * DAY));
  return [...times];
}

/**
 * The same feature set with steps and rules in front: the source has other names (card), the
 * amount as amount_raw in another currency (fx, a power of two so the product is exact), test
 * rows a filter removes and rows with negative items its rules quarantine. Once prepared, the
 * rows that remain are exactly those of {@link history}, so the same reference applies.
 */
export const SPEC_WITH_STEPS = SPEC.replace(
  '    timestamp: ts\n',
  `    timestamp: ts
    steps:
      - { step: rename, columns: { card: card_id } }
      - { step: filter, where: not is_test }
      - { step: derive, column: amount, expr: amount_raw * fx, type: float }
      - { step: drop, columns: [amount_raw, fx, is_test] }
    validation:
      policy: quarantine
      rules: [{ rule: range, column: items, min: 0 }]
`,
);

export const SOURCE_SCHEMA: ColumnSchema[] = [
  { name: 'card', type: 'string' },
  { name: 'ts', type: 'timestamp' },
  { name: 'event_id', type: 'string' },
  { name: 'amount_raw', type: 'float' },
  { name: 'fx', type: 'float' },
  { name: 'items', type: 'int' },
  { name: 'country', type: 'string' },
  { name: 'online', type: 'bool' },
  { name: 'is_test', type: 'bool' },
];

/** A stage's rows as the source of {@link SPEC_WITH_STEPS} gives them, with rows to filter and to quarantine. */
export function asSource(rows: readonly Row[]): { table: Table; tests: number; invalid: number } {
  const out: Row[] = [];
  let tests = 0;
  let invalid = 0;
  rows.forEach((r, i) => {
    const fx = [2, 0.5, 4, 0.25][i % 4] as number;
    const amount = r.amount as number | null;
    const base: Row = {
      card: r.card_id ?? null,
      ts: r.ts ?? null,
      event_id: r.event_id ?? null,
      amount_raw: amount === null ? null : amount / fx,
      fx,
      items: r.items ?? null,
      country: r.country ?? null,
      online: r.online ?? null,
    };
    out.push({ ...base, is_test: false });
    // A test row and an invalid row next to every seventh one, on the same card and time: if
    // either reached the stores, the windows and latest values would differ from the reference.
    if (i % 7 === 3) {
      out.push({ ...base, event_id: `test${i}`, amount_raw: 1e6, is_test: true });
      out.push({ ...base, event_id: `zz-bad${i}`, items: -1, is_test: false });
      tests++;
      invalid++;
    }
  });
  return { table: tableFromRows(SOURCE_SCHEMA, out), tests, invalid };
}

/**
 * Ingests the generated history stage by stage through `ingest` and compares, at many (key, T),
 * the online lookups of `h`, its training set and the reference computed from the rows the stages
 * hold. `ingest` reads `h` when it runs, so a case may reopen the harness before calling this.
 */
export async function checkParity(
  h: FeatureHarness,
  ingest: (stage: Stage) => Promise<void>,
): Promise<void> {
  const rand = createRng(7);
  const stored: Row[] = [];
  let pairsChecked = 0;
  let nonZeroCounts = 0;
  let plainSeen = 0;
  for (const stage of history()) {
    await ingest(stage);
    stored.push(...dedupe(stage.rows));

    const keys = [...new Set(stored.map((e) => e.card_id as string)), 'nobody'];
    const pairs = keys.flatMap((key) => probeTimes(stored, key, rand).map((at) => ({ key, at })));
    const training = tableToRows(
      await h.store.buildTrainingSet('everything', { table: labels(pairs) }),
    );
    expect(training).toHaveLength(pairs.length);
    for (let i = 0; i < pairs.length; i++) {
      const { key, at } = pairs[i] as { key: string; at: number };
      const [online] = await h.store.getOnlineVector('everything', [key], at);
      const offline = training[i] as Row;
      const context = `key ${key} at T0+${at - T0}ms`;
      expect(offline.card_id).toBe(key);
      expect(offline.ts).toBe(at);
      const expected = reference(stored, key, at);
      expectSameRow(offline, expected, `offline, ${context}`);
      expectSameRow(online as Row, expected, `online, ${context}`);
      pairsChecked++;
      if ((expected.amount_count_1h as number) > 0) nonZeroCounts++;
      if (expected.amount !== null) plainSeen++;
    }
  }
  // The comparison must not be vacuous: many pairs, with live windows and fresh plain values.
  expect(pairsChecked).toBeGreaterThan(300);
  expect(nonZeroCounts).toBeGreaterThan(100);
  expect(plainSeen).toBeGreaterThan(50);
}

/**
 * Declares the parity and semantics cases of the feature store on one online store backend: the
 * staged parity scenario (plain and with steps and rules in front), window edges, ttl expiry,
 * no value from the future, ties, empty entities and pruned windows, online against offline.
 * @example describeFeatureParity('sqlite', (dir) => openSqliteOnlineStore({ path: `${dir}/online.db` }));
 */
export function describeFeatureParity(name: string, online: OnlineStoreFactory): void {
  describe(`FeatureStore on the ${name} online store`, () => {
    const tmp = tempDirs();
    let h: FeatureHarness;
    const open = (
      extra: { onlineHistoryMs?: number; spec?: string } = {},
    ): Promise<FeatureHarness> => openFeatureHarness({ dir: tmp.fresh(), online, ...extra });

    beforeEach(async () => {
      h = await open();
    });
    afterEach(() => closeFeatureHarness(h));

    describe('FeatureStore parity: online lookups equal the training set, row for row', () => {
      it('gives the same values online and offline, and both follow the semantics, at many (key, T)', async () => {
        await checkParity(h, async (stage) => {
          const result = await h.store.ingest('tx', { table: events(stage.rows) });
          expect(result.rejected).toEqual([]);
          expect(result.duplicates).toBe(1);
          expect(result.written).toBe(dedupe(stage.rows).length);
        });
      });

      it('still holds with steps and rules in front, which filter, derive and quarantine', async () => {
        await closeFeatureHarness(h);
        h = await open({ spec: SPEC_WITH_STEPS });
        let quarantined = 0;
        await checkParity(h, async (stage) => {
          const { table, tests, invalid } = asSource(stage.rows);
          const result = await h.store.ingest('tx', { table });
          expect(result.read).toBe(table.rowCount);
          expect(result.filtered).toBe(tests);
          expect(result.quarantined).toEqual({ 'range(items)': invalid });
          expect(result.duplicates).toBe(1);
          expect(result.written).toBe(dedupe(stage.rows).length);
          expect(result.validation?.outcome).toBe('quarantined');
          quarantined += invalid;
        });
        expect(quarantined).toBeGreaterThan(10);
        expect(await h.offline.count('quarantine/tx')).toBe(quarantined);
      });

      it('gives float sums and means equal to the last bit online and offline, whatever the arrival order', async () => {
        // Additions of these values give different bits in different orders: both sides must add
        // oldest first. Ingested newest first, in two batches, with a tie at one instant.
        const amounts = [0.1, 1e16, 0.2, -1e16, 0.3, 785.07, 0.01, 3.3333333333333335];
        const rows = amounts.map((amount, i) => ({
          card_id: 'f',
          ts: T0 + (i === 3 ? 2 : i) * MIN,
          event_id: String(9 - i),
          amount,
          items: i,
          country: 'FR',
          online: i % 2 === 0,
        }));
        await h.store.ingest('tx', { table: events(rows.slice(4).reverse()) });
        await h.store.ingest('tx', { table: events(rows.slice(0, 4).reverse()) });
        const at = T0 + 8 * MIN;
        const [online] = await h.store.getOnlineVector('everything', ['f'], at);
        const [offline] = tableToRows(
          await h.store.buildTrainingSet('everything', { table: labels([{ key: 'f', at }]) }),
        );
        for (const name of [
          'amount_sum_10m',
          'amount_mean_10m',
          'amount_sum_1h',
          'amount_mean_1d',
        ]) {
          expect(
            Object.is(online?.[name], offline?.[name]),
            `${name}: ${online?.[name]} vs ${offline?.[name]}`,
          ).toBe(true);
        }
        expect(typeof online?.amount_sum_10m).toBe('number');
      });

      it('counts an event exactly at T and leaves out one exactly at T - window', async () => {
        await h.store.ingest('tx', {
          table: events([
            tx('a', T0, '1', 10, 1, 'FR', true),
            tx('a', T0 + HOUR, '2', 5, 2, 'FR', false),
          ]),
        });
        const at = T0 + HOUR;
        const [online] = await h.store.getOnlineVector('everything', ['a'], at);
        const [offline] = tableToRows(
          await h.store.buildTrainingSet('everything', { table: labels([{ key: 'a', at }]) }),
        );
        for (const row of [online as Row, offline as Row]) {
          expect(row.amount_count_1h).toBe(1);
          expect(row.amount_sum_1h).toBe(5);
          expect(row.amount_count_1d).toBe(2);
          expect(row.amount_sum_1d).toBe(15);
          expect(row.amount).toBe(5);
          expect(row.online_max_1h).toBe(false);
        }
      });
    });

    describe('FeatureStore semantics', () => {
      it('expires plain features after the ttl, online and offline', async () => {
        await h.store.ingest('tx', {
          table: events([tx('a', T0, '', 7.5, 3, 'DE', true)]),
        });
        const times = [T0, T0 + TTL - 1, T0 + TTL, T0 + 5 * TTL];
        const offline = tableToRows(
          await h.store.buildTrainingSet('small', {
            table: labels(times.map((at) => ({ key: 'a', at }))),
          }),
        );
        const online = await Promise.all(
          times.map(async (at) => (await h.store.getOnlineVector('small', ['a'], at))[0] as Row),
        );
        expect(offline.map((r) => r.amount)).toEqual([7.5, 7.5, null, null]);
        expect(online.map((r) => r.amount)).toEqual([7.5, 7.5, null, null]);
        // The count is about the window, not the ttl: the event left the 1h window before the ttl.
        expect(offline.map((r) => r.amount_count_1h)).toEqual([1, 0, 0, 0]);
        expect(online.map((r) => r.amount_count_1h)).toEqual([1, 0, 0, 0]);
      });

      it('never returns a value from the future', async () => {
        await h.store.ingest('tx', {
          table: events([
            tx('a', T0, '', 1, 1, 'FR', false),
            tx('a', T0 + 30 * MIN, '', 2, 1, 'FR', false),
            tx('a', T0 + 30 * MIN + 1, '', 1000, 9, 'US', true),
          ]),
        });
        const at = T0 + 30 * MIN;
        const [row] = tableToRows(
          await h.store.buildTrainingSet('everything', { table: labels([{ key: 'a', at }]) }),
        );
        expect(row?.amount).toBe(2);
        expect(row?.country).toBe('FR');
        expect(row?.amount_count_1h).toBe(2);
        expect(row?.amount_max_1d).toBe(2);
        expect(row?.items_max_1h).toBe(1);
        // Online, the newest record is in the future of `at`: plain values are unknown, windows exact.
        const [online] = await h.store.getOnlineVector('everything', ['a'], at);
        expect(online?.amount).toBeNull();
        expect(online?.amount_count_1h).toBe(2);
        expect(online?.amount_max_1d).toBe(2);
      });

      it('breaks a tie of one key at one instant by the greatest event_id, whatever the ingestion order', async () => {
        const row = (event_id: string, amount: number): Row =>
          tx('a', T0, event_id, amount, 1, 'FR', true);
        await h.store.ingest('tx', { table: events([row('b', 2)]) });
        await h.store.ingest('tx', { table: events([row('a', 1)]) });
        await h.store.ingest('tx', { table: events([row('c', 3)]) });
        await h.store.ingest('tx', { table: events([row('0', 0)]) });
        const [online] = await h.store.getOnlineVector('small', ['a'], T0);
        const [offline] = tableToRows(
          await h.store.buildTrainingSet('small', { table: labels([{ key: 'a', at: T0 }]) }),
        );
        expect(online?.amount).toBe(3);
        expect(offline?.amount).toBe(3);
        expect(online?.amount_count_1h).toBe(4);
        expect(offline?.amount_count_1h).toBe(4);
      });

      it('gives zero counts and sums and null means for an entity with no events', async () => {
        await h.store.ingest('tx', {
          table: events([tx('a', T0, '', 1, 1, 'FR', true)]),
        });
        const [online] = await h.store.getOnlineVector('everything', ['zzz'], T0);
        const [offline] = tableToRows(
          await h.store.buildTrainingSet('everything', { table: labels([{ key: 'zzz', at: T0 }]) }),
        );
        for (const r of [online as Row, offline as Row]) {
          expect(r.amount).toBeNull();
          expect(r.amount_count_1h).toBe(0);
          expect(r.amount_sum_1h).toBe(0);
          expect(r.amount_mean_1h).toBeNull();
          expect(r.amount_max_1d).toBeNull();
        }
      });

      it('answers null, not a wrong number, for windows whose events the online store has pruned', async () => {
        const rows: Row[] = [
          tx('a', T0, '', 1, 1, 'FR', true),
          tx('a', T0 + 3 * DAY, '', 2, 1, 'FR', true),
        ];
        await h.store.ingest('tx', { table: events(rows) });
        const [online] = await h.store.getOnlineVector('everything', ['a'], T0 + 1);
        expect(online?.amount_count_1d).toBeNull();
        // A store that keeps more history answers exactly.
        const wide = await open({ onlineHistoryMs: 4 * DAY });
        try {
          await wide.store.ingest('tx', { table: events(rows) });
          const [exact] = await wide.store.getOnlineVector('everything', ['a'], T0 + 1);
          expect(exact?.amount_count_1d).toBe(1);
        } finally {
          await closeFeatureHarness(wide);
        }
      });
    });
  });
}
