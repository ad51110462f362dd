import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseProjectSpec } from '../config/load.js';
import type { FeatureSetSpec, ProjectSpec } from '../config/schema.js';
import {
  getColumn,
  tableFromRows,
  tableToRows,
  type ColumnSchema,
  type Row,
  type Scalar,
  type Table,
} from '../core/table.js';
import { readTable } from '../data/read.js';
import { listQuarantine, readQuarantine } from '../data/validate/quarantine.js';
import type { ValidationReport } from '../data/validate/report.js';
import { writeCsv } from '../data/write.js';
import { FerryError } from '../errors/index.js';
import { tempDirs } from '../testing/temp.js';
import { createRng } from '../training/random.js';
import { FeatureStore } from './feature-store.js';
import { openParquetOfflineStore } from './offline/parquet.js';
import type { OfflineStore } from './offline/offline-store.js';
import { openSqliteOnlineStore } from './online/sqlite.js';
import type { OnlineStore } from './online/online-store.js';

const MIN = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;
const T0 = Date.UTC(2026, 9, 1);
const TTL = 2 * HOUR;

const tmp = tempDirs();

const SPEC = `
entities:
  - { name: card, keys: [card_id] }
feature_sets:
  - name: tx
    entity: card
    timestamp: ts
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

const EVENT_SCHEMA: ColumnSchema[] = [
  { name: 'card_id', type: 'string' },
  { name: 'ts', type: 'timestamp' },
  { name: 'event_id', type: 'string' },
  { name: 'amount', type: 'float' },
  { name: 'items', type: 'int' },
  { name: 'country', type: 'string' },
  { name: 'online', type: 'bool' },
];

interface Harness {
  readonly dir: string;
  readonly spec: ProjectSpec;
  readonly offline: OfflineStore;
  readonly online: OnlineStore;
  readonly store: FeatureStore;
}

let h: Harness;

async function open(extra: { onlineHistoryMs?: number; spec?: string } = {}): Promise<Harness> {
  const dir = tmp.fresh();
  const spec = parseProjectSpec((await import('yaml')).parse(extra.spec ?? SPEC), 'test');
  const offline = await openParquetOfflineStore({ path: path.join(dir, 'offline') });
  const online = await openSqliteOnlineStore({ path: path.join(dir, 'online.db') });
  const store = new FeatureStore({
    spec,
    projectDir: dir,
    offline,
    online,
    ...(extra.onlineHistoryMs !== undefined ? { onlineHistoryMs: extra.onlineHistoryMs } : {}),
  });
  return { dir, spec, offline, online, store };
}

beforeEach(async () => {
  h = await open();
});
afterEach(async () => {
  await h.offline.close();
  await h.online.close();
});

function events(rows: Row[]): Table {
  return tableFromRows(EVENT_SCHEMA, rows);
}

function labels(pairs: readonly { key: string; at: number }[]): Table {
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
function reference(stored: readonly Row[], key: string, at: number): Row {
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

function expectSameRow(actual: Row, expected: Row, context: string): void {
  for (const [name, value] of Object.entries(expected)) {
    if (!same(actual[name], value)) {
      throw new Error(`${context}: ${name} is ${String(actual[name])}, expected ${String(value)}`);
    }
  }
}

/* ------------------------------------------------------------------ the generated history */

interface Stage {
  readonly rows: Row[];
  /** End of the stage: every event of the stage is at or before it. */
  readonly end: number;
}

/**
 * Three days of events for 12 cards, with the cases that break window code: events exactly one
 * window apart, several cards at the same instant, two events of one card at the same instant
 * (told apart by event_id), repeated rows, null values, and bursts within minutes.
 */
function history(): Stage[] {
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

function dedupe(rows: readonly Row[]): Row[] {
  const seen = new Set<string>();
  return rows.filter((r) => {
    const id = `${String(r.card_id)}|${String(r.ts)}|${String(r.event_id)}`;
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}

/** Times at or after the card's newest event, where the online store is exact by contract. */
function probeTimes(stored: readonly Row[], key: string, rand: () => number): number[] {
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
const SPEC_WITH_STEPS = SPEC.replace(
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

const SOURCE_SCHEMA: ColumnSchema[] = [
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
function asSource(rows: readonly Row[]): { table: Table; tests: number; invalid: number } {
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
 * Ingests the generated history stage by stage and compares, at many (key, T), the online
 * lookups, the training set and the reference computed from the rows the stages hold.
 */
async function checkParity(ingest: (stage: Stage) => Promise<void>): Promise<void> {
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

describe('FeatureStore parity: online lookups equal the training set, row for row', () => {
  it('gives the same values online and offline, and both follow the semantics, at many (key, T)', async () => {
    await checkParity(async (stage) => {
      const result = await h.store.ingest('tx', { table: events(stage.rows) });
      expect(result.rejected).toEqual([]);
      expect(result.duplicates).toBe(1);
      expect(result.written).toBe(dedupe(stage.rows).length);
    });
  });

  it('still holds with steps and rules in front, which filter, derive and quarantine', async () => {
    await h.offline.close();
    await h.online.close();
    h = await open({ spec: SPEC_WITH_STEPS });
    let quarantined = 0;
    await checkParity(async (stage) => {
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

  it('counts an event exactly at T and leaves out one exactly at T - window', async () => {
    await h.store.ingest('tx', {
      table: events([
        { card_id: 'a', ts: T0, event_id: '1', amount: 10, items: 1, country: 'FR', online: true },
        {
          card_id: 'a',
          ts: T0 + HOUR,
          event_id: '2',
          amount: 5,
          items: 2,
          country: 'FR',
          online: false,
        },
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
      table: events([
        { card_id: 'a', ts: T0, event_id: '', amount: 7.5, items: 3, country: 'DE', online: true },
      ]),
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
        { card_id: 'a', ts: T0, event_id: '', amount: 1, items: 1, country: 'FR', online: false },
        {
          card_id: 'a',
          ts: T0 + 30 * MIN,
          event_id: '',
          amount: 2,
          items: 1,
          country: 'FR',
          online: false,
        },
        {
          card_id: 'a',
          ts: T0 + 30 * MIN + 1,
          event_id: '',
          amount: 1000,
          items: 9,
          country: 'US',
          online: true,
        },
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
    const row = (event_id: string, amount: number): Row => ({
      card_id: 'a',
      ts: T0,
      event_id,
      amount,
      items: 1,
      country: 'FR',
      online: true,
    });
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
      table: events([
        { card_id: 'a', ts: T0, event_id: '', amount: 1, items: 1, country: 'FR', online: true },
      ]),
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
    await h.store.ingest('tx', {
      table: events([
        { card_id: 'a', ts: T0, event_id: '', amount: 1, items: 1, country: 'FR', online: true },
        {
          card_id: 'a',
          ts: T0 + 3 * DAY,
          event_id: '',
          amount: 2,
          items: 1,
          country: 'FR',
          online: true,
        },
      ]),
    });
    const [online] = await h.store.getOnlineVector('everything', ['a'], T0 + 1);
    expect(online?.amount_count_1d).toBeNull();
    // A store that keeps more history answers exactly.
    const wide = await open({ onlineHistoryMs: 4 * DAY });
    try {
      await wide.store.ingest('tx', {
        table: tableFromRows(EVENT_SCHEMA, [
          { card_id: 'a', ts: T0, event_id: '', amount: 1, items: 1, country: 'FR', online: true },
          {
            card_id: 'a',
            ts: T0 + 3 * DAY,
            event_id: '',
            amount: 2,
            items: 1,
            country: 'FR',
            online: true,
          },
        ]),
      });
      const [exact] = await wide.store.getOnlineVector('everything', ['a'], T0 + 1);
      expect(exact?.amount_count_1d).toBe(1);
    } finally {
      await wide.offline.close();
      await wide.online.close();
    }
  });
});

describe('FeatureStore.ingest', () => {
  it('ingests a CSV file, and re-ingesting it adds nothing', async () => {
    const file = path.join(h.dir, 'tx.csv');
    const rows = history()[0]?.rows ?? [];
    writeCsv(events(rows), file);
    const first = await h.store.ingest('tx', { source: file });
    expect(first.written).toBe(dedupe(rows).length);
    const second = await h.store.ingest('tx', { source: file });
    expect(second).toEqual({
      read: rows.length,
      filtered: 0,
      quarantined: {},
      duplicates: rows.length,
      written: 0,
      rejected: [],
      validation: null,
    });
    expect(await h.offline.count('features/tx')).toBe(dedupe(rows).length);
    const key = 'c000';
    const newest = Math.max(...rows.filter((r) => r.card_id === key).map((r) => r.ts as number));
    const [online] = await h.store.getOnlineVector('everything', [key], newest);
    expect(online).toBeDefined();
    expectSameRow(online as Row, reference(dedupe(rows), key, newest), 'after re-ingest');
  });

  it('reads the source named in ferry.yaml, relative to the project folder', async () => {
    const dir = tmp.fresh();
    writeFileSync(
      path.join(dir, 'tx.csv'),
      'card_id,ts,amount,items,country,online\nx,2026-10-01T00:00:00Z,3.5,1,FR,true\n',
    );
    const spec = parseProjectSpec(
      {
        entities: [{ name: 'card', keys: ['card_id'] }],
        feature_sets: [
          {
            name: 'tx',
            entity: 'card',
            timestamp: 'ts',
            source: { type: 'csv', path: 'tx.csv' },
            features: [
              { name: 'amount', type: 'float' },
              { name: 'items', type: 'int' },
            ],
          },
        ],
      },
      'test',
    );
    const store = new FeatureStore({ spec, projectDir: dir, offline: h.offline, online: h.online });
    const result = await store.ingest('tx');
    expect(result.written).toBe(1);
    const stored = await h.offline.read('features/tx');
    expect(tableToRows(stored)).toEqual([
      { card_id: 'x', ts: T0, event_id: '', amount: 3.5, items: 1 },
    ]);
  });

  it('rejects rows without a key, a time or a valid value, with reasons, and quarantines them', async () => {
    const file = path.join(h.dir, 'messy.csv');
    writeFileSync(
      file,
      [
        'card_id,ts,amount,items,country,online',
        'a,2026-10-01T00:00:00Z,1.5,1,FR,true',
        ',2026-10-01T00:01:00Z,2,1,FR,true',
        'b,,2,1,FR,true',
        'c,not a time,2,1,FR,true',
        'd,2026-10-01T00:03:00Z,lots,1,FR,true',
        'e,2026-10-01T00:04:00Z,4,1.5,FR,maybe',
        'f,2026-10-01T00:05:00Z,,,,',
      ].join('\n'),
    );
    const result = await h.store.ingest('tx', { source: file });
    expect(result.written).toBe(2);
    expect(result.rejected.map((r) => r.row)).toEqual([2, 3, 4, 5, 6]);
    expect(result.rejected.map((r) => r.rule)).toEqual([
      'entity_key',
      'timestamp',
      'timestamp',
      'type(amount)',
      'type(items)',
    ]);
    expect(result.quarantined).toEqual({
      entity_key: 1,
      timestamp: 2,
      'type(amount)': 1,
      'type(items)': 1,
    });
    expect(result.read).toBe(7);
    expect(result.rejected[0]?.reason).toMatch(/entity key 'card_id' is missing/);
    expect(result.rejected[1]?.reason).toMatch(/timestamp 'ts' is missing/);
    expect(result.rejected[2]?.reason).toMatch(/'not a time', not a time/);
    expect(result.rejected[3]?.reason).toMatch(/'amount' is 'lots', not a valid float/);
    expect(result.rejected[4]?.reason).toMatch(/'items' is .*1\.5.*not a valid int/);
    // In the one quarantine format, so `ferry data quarantine show tx` lists them like any other.
    const quarantined = await readQuarantine(h.offline, 'tx');
    expect(quarantined.map((r) => r.row).sort()).toEqual([2, 3, 4, 5, 6]);
    const lots = quarantined.find((r) => r.row === 5);
    expect(lots?.rule).toBe('type(amount)');
    expect(lots?.reason).toMatch(/'amount' is 'lots', not a valid float/);
    expect(lots?.source).toBe(file);
    expect(lots?.runId).toEqual(expect.any(String));
    expect(lots?.record).toMatchObject({ card_id: 'd', amount: 'lots' });
    expect((await listQuarantine(h.offline)).map((q) => [q.name, q.rows])).toEqual([['tx', 5]]);
    // The row with only missing values is stored, with nulls.
    const [f] = await h.store.getOnlineVector('everything', ['f'], Date.UTC(2026, 9, 1, 0, 5));
    expect(f).toMatchObject({
      amount: null,
      amount_count_1h: 0,
      amount_sum_1h: 0,
      country: null,
      online: null,
    });
  });

  it('names the missing columns and the ones it found', async () => {
    const file = path.join(h.dir, 'few.csv');
    writeFileSync(file, 'card_id,time,amount\na,2026-10-01T00:00:00Z,1\n');
    const error = await h.store.ingest('tx', { source: file }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FerryError);
    expect((error as FerryError).code).toBe('FERRY_COLUMN_UNKNOWN');
    expect((error as FerryError).message).toContain("'ts', 'items', 'country', 'online'");
    expect((error as FerryError).message).toContain('its columns: card_id, time, amount');
  });

  it('refuses unknown feature sets and vectors with the defined names', async () => {
    await expect(h.store.ingest('nope')).rejects.toMatchObject({
      code: 'FERRY_FEATURE_SET_UNKNOWN',
      message: expect.stringContaining('tx'),
    });
    await expect(h.store.getOnlineVector('nope', ['a'])).rejects.toMatchObject({
      code: 'FERRY_FEATURE_VECTOR_UNKNOWN',
    });
  });
});

describe('FeatureStore.buildTrainingSet', () => {
  it("reads the vector's label file, keeps request-time columns, and writes the result", async () => {
    await h.store.ingest('tx', {
      table: events([
        { card_id: 'a', ts: T0, event_id: '', amount: 10, items: 1, country: 'FR', online: true },
        {
          card_id: 'a',
          ts: T0 + MIN,
          event_id: '',
          amount: 20,
          items: 1,
          country: 'FR',
          online: true,
        },
      ]),
    });
    writeFileSync(
      path.join(h.dir, 'labels.csv'),
      'card_id,merchant,ts,label\na,shop 1,2026-10-01T00:00:30Z,0\na,shop 2,2026-10-01T00:05:00Z,1\nb,shop 3,2026-10-01T00:05:00Z,0\n',
    );
    const out = path.join(h.dir, 'out', 'train.parquet');
    const table = await h.store.buildTrainingSet('small', { out });
    expect(table.columns.map((c) => `${c.name}:${c.type}`)).toEqual([
      'card_id:string',
      'ts:timestamp',
      'merchant:string',
      'amount:float',
      'amount_count_1h:int',
      'label:int',
    ]);
    expect(tableToRows(table)).toEqual([
      {
        card_id: 'a',
        ts: T0 + 30_000,
        merchant: 'shop 1',
        amount: 10,
        amount_count_1h: 1,
        label: 0,
      },
      {
        card_id: 'a',
        ts: T0 + 5 * MIN,
        merchant: 'shop 2',
        amount: 20,
        amount_count_1h: 2,
        label: 1,
      },
      {
        card_id: 'b',
        ts: T0 + 5 * MIN,
        merchant: 'shop 3',
        amount: null,
        amount_count_1h: 0,
        label: 0,
      },
    ]);
    const written = await readTable(out);
    expect(tableToRows(written)).toEqual(tableToRows(table));
    expect(getColumn(written, 'ts')?.type).toBe('timestamp');
  });

  it('refuses label rows without a time', async () => {
    const table = tableFromRows(
      [
        { name: 'card_id', type: 'string' },
        { name: 'ts', type: 'timestamp' },
        { name: 'label', type: 'int' },
      ],
      [{ card_id: 'a', ts: null, label: 1 }],
    );
    await expect(h.store.buildTrainingSet('everything', { table })).rejects.toMatchObject({
      code: 'FERRY_DATA_UNREADABLE',
      message: expect.stringContaining("row 1: timestamp 'ts'"),
    });
  });
});

describe('FeatureStore with two entities', () => {
  it('joins each feature set on its own entity key', async () => {
    const spec = parseProjectSpec(
      {
        entities: [
          { name: 'card', keys: ['card_id'] },
          { name: 'merchant', keys: ['merchant_id'] },
        ],
        feature_sets: [
          {
            name: 'cards',
            entity: 'card',
            timestamp: 'ts',
            features: [{ name: 'limit', type: 'int' }],
          },
          {
            name: 'merchants',
            entity: 'merchant',
            timestamp: 'updated',
            features: [{ name: 'risk', type: 'float' }],
            aggregations: [{ column: 'risk', ops: ['max'], windows: ['1d'] }],
          },
        ],
        feature_vectors: [
          { name: 'both', features: ['cards.limit', 'merchants.risk', 'merchants.risk_max_1d'] },
        ],
      },
      'test',
    );
    const store = new FeatureStore({
      spec,
      projectDir: h.dir,
      offline: h.offline,
      online: h.online,
    });
    await store.ingest('cards', {
      table: tableFromRows(
        [
          { name: 'card_id', type: 'int' },
          { name: 'ts', type: 'timestamp' },
          { name: 'limit', type: 'int' },
        ],
        [
          { card_id: 1, ts: T0, limit: 500 },
          { card_id: 2, ts: T0, limit: 900 },
        ],
      ),
    });
    await store.ingest('merchants', {
      table: tableFromRows(
        [
          { name: 'merchant_id', type: 'string' },
          { name: 'updated', type: 'string' },
          { name: 'risk', type: 'float' },
        ],
        [
          { merchant_id: 'm1', updated: '2026-10-01T00:00:00Z', risk: 0.9 },
          { merchant_id: 'm1', updated: '2026-10-01T01:00:00Z', risk: 0.2 },
          { merchant_id: 'm2', updated: '2026-10-01T00:30:00Z', risk: 0.4 },
        ],
      ),
    });
    const spine = tableFromRows(
      [
        { name: 'card_id', type: 'int' },
        { name: 'merchant_id', type: 'string' },
        { name: 'ts', type: 'timestamp' },
      ],
      [
        { card_id: 1, merchant_id: 'm2', ts: T0 + 2 * HOUR },
        { card_id: 2, merchant_id: 'm1', ts: T0 + 2 * HOUR },
        { card_id: 2, merchant_id: 'm1', ts: T0 + 30 * MIN },
      ],
    );
    const table = await store.buildTrainingSet('both', { table: spine });
    expect(tableToRows(table)).toEqual([
      { card_id: 1, merchant_id: 'm2', ts: T0 + 2 * HOUR, limit: 500, risk: 0.4, risk_max_1d: 0.4 },
      { card_id: 2, merchant_id: 'm1', ts: T0 + 2 * HOUR, limit: 900, risk: 0.2, risk_max_1d: 0.9 },
      { card_id: 2, merchant_id: 'm1', ts: T0 + 30 * MIN, limit: 900, risk: 0.9, risk_max_1d: 0.9 },
    ]);
    // Online lookups take one entity's keys, and say so.
    await expect(store.getOnlineVector('both', ['1'])).rejects.toMatchObject({
      code: 'FERRY_ARGUMENT_INVALID',
    });
  });
});

describe('FeatureStore.ingest with steps and validation', () => {
  const PAY = `
entities:
  - { name: card, keys: [card_id] }
feature_sets:
  - name: pay
    entity: card
    timestamp: ts
    steps:
      - { step: filter, where: amount > 0 }
      - { step: derive, column: amount_eur, expr: amount * rate, type: float }
    features:
      - { name: amount_eur, type: float }
    aggregations:
      - { column: amount_eur, ops: [sum, count, max], windows: [1h] }
feature_vectors:
  - name: eur
    features: [pay.amount_eur, pay.amount_eur_sum_1h, pay.amount_eur_count_1h, pay.amount_eur_max_1h]
`;
  const PAY_SCHEMA: ColumnSchema[] = [
    { name: 'card_id', type: 'string' },
    { name: 'ts', type: 'timestamp' },
    { name: 'amount', type: 'float' },
    { name: 'rate', type: 'float' },
  ];

  it('aggregates a derived column, after the filter, with exact values online and offline', async () => {
    const pay = await open({ spec: PAY });
    try {
      const rows: Row[] = [
        // Exactly one window before T: left out of the 1h window.
        { card_id: 'a', ts: T0 - 30 * MIN, amount: 8, rate: 0.25 },
        { card_id: 'a', ts: T0, amount: 10, rate: 0.5 },
        { card_id: 'a', ts: T0 + 10 * MIN, amount: 40, rate: 0.25 },
        // Filtered out: had it been kept, the sum would be 14 and the count 4.
        { card_id: 'a', ts: T0 + 20 * MIN, amount: -7, rate: 1 },
        { card_id: 'a', ts: T0 + 30 * MIN, amount: 3, rate: 2 },
        { card_id: 'b', ts: T0, amount: 0, rate: 1 },
        { card_id: 'b', ts: T0 + MIN, amount: null, rate: 1 },
      ];
      const result = await pay.store.ingest('pay', { table: tableFromRows(PAY_SCHEMA, rows) });
      expect(result).toMatchObject({
        read: 7,
        filtered: 3,
        quarantined: {},
        duplicates: 0,
        written: 4,
      });
      // A filtered row is counted, not quarantined.
      expect(await pay.offline.hasTable('quarantine/pay')).toBe(false);

      const at = T0 + 30 * MIN;
      const expected = [
        {
          card_id: 'a',
          amount_eur: 6,
          amount_eur_sum_1h: 21,
          amount_eur_count_1h: 3,
          amount_eur_max_1h: 10,
        },
        {
          card_id: 'b',
          amount_eur: null,
          amount_eur_sum_1h: 0,
          amount_eur_count_1h: 0,
          amount_eur_max_1h: null,
        },
      ];
      expect(await pay.store.getOnlineVector('eur', ['a', 'b'], at)).toEqual(expected);
      const spine = tableFromRows(
        [
          { name: 'card_id', type: 'string' },
          { name: 'ts', type: 'timestamp' },
        ],
        [
          { card_id: 'a', ts: at },
          { card_id: 'b', ts: at },
        ],
      );
      const training = tableToRows(await pay.store.buildTrainingSet('eur', { table: spine }));
      expect(training).toEqual(expected.map((e) => ({ ...e, ts: at })));
      // The offline store holds the prepared feature, not the source's columns.
      expect((await pay.offline.read('features/pay')).columns.map((c) => c.name)).toEqual([
        'card_id',
        'ts',
        'event_id',
        'amount_eur',
      ]);
    } finally {
      await pay.offline.close();
      await pay.online.close();
    }
  });

  const RULES = `[{ rule: range, column: amount, min: 0 }, { rule: not_null, column: country }]`;
  const policySpec = (policy: string, named: boolean): string => `
entities:
  - { name: card, keys: [card_id] }
${named ? `validations:\n  - { name: pay_rules, policy: ${policy}, rules: ${RULES} }\n` : ''}feature_sets:
  - name: pay
    entity: card
    timestamp: ts
    validation: ${named ? 'pay_rules' : `{ policy: ${policy}, rules: ${RULES} }`}
    features:
      - { name: amount, type: float }
      - { name: country, type: string }
    aggregations:
      - { column: amount, ops: [sum, count], windows: [1h] }
feature_vectors:
  - { name: v, features: [pay.amount, pay.country, pay.amount_sum_1h, pay.amount_count_1h] }
`;
  const POLICY_SCHEMA: ColumnSchema[] = [
    { name: 'card_id', type: 'string' },
    { name: 'ts', type: 'timestamp' },
    { name: 'amount', type: 'float' },
    { name: 'country', type: 'string' },
  ];
  /** Rows 2, 3 and 7 fail a rule; each failing row is the newest of its card. */
  const POLICY_ROWS: Row[] = [
    { card_id: 'a', ts: T0, amount: 10, country: 'FR' },
    { card_id: 'a', ts: T0 + MIN, amount: -5, country: 'FR' },
    { card_id: 'b', ts: T0 + 2 * MIN, amount: 3, country: null },
    { card_id: 'b', ts: T0, amount: 4, country: 'DE' },
    { card_id: 'c', ts: T0, amount: 1, country: 'FR' },
    { card_id: 'c', ts: T0 + MIN, amount: 2, country: 'US' },
    // Fails both rules: quarantined under the first one in the rule set.
    { card_id: 'd', ts: T0, amount: -1, country: null },
  ];
  const AT = T0 + 5 * MIN;

  async function withPolicy(
    policy: string,
    named: boolean,
    work: (p: Harness) => Promise<void>,
  ): Promise<void> {
    const p = await open({ spec: policySpec(policy, named) });
    try {
      await work(p);
    } finally {
      await p.offline.close();
      await p.online.close();
    }
  }

  it('quarantine: passing rows are stored, failing rows go to quarantine/<feature set> with rule and reason', async () => {
    await withPolicy('quarantine', false, async (p) => {
      const result = await p.store.ingest('pay', {
        table: tableFromRows(POLICY_SCHEMA, POLICY_ROWS),
      });
      expect(result).toMatchObject({
        read: 7,
        filtered: 0,
        quarantined: { 'range(amount)': 2, 'not_null(country)': 1 },
        duplicates: 0,
        written: 4,
      });
      expect(result.validation?.outcome).toBe('quarantined');
      expect(result.validation?.quarantine).toEqual({ table: 'quarantine/pay', rows: 3 });

      const entries = (await readQuarantine(p.offline, 'pay')).sort((x, y) => x.row - y.row);
      expect(entries.map((e) => [e.row, e.rule])).toEqual([
        [2, 'range(amount)'],
        [3, 'not_null(country)'],
        [7, 'range(amount)'],
      ]);
      expect(entries[0]?.reason).toMatch(/amount is -5, below the minimum 0/);
      expect(entries[1]?.reason).toMatch(/country is missing/);
      expect(entries[0]?.record).toEqual({ card_id: 'a', ts: T0 + MIN, amount: -5, country: 'FR' });
      expect(entries[0]?.runId).toBe(result.validation?.runId);

      expect(await p.offline.count('features/pay')).toBe(4);
      const rows = await p.store.getOnlineVector('v', ['a', 'b', 'c', 'd'], AT);
      expect(rows).toEqual([
        { card_id: 'a', amount: 10, country: 'FR', amount_sum_1h: 10, amount_count_1h: 1 },
        { card_id: 'b', amount: 4, country: 'DE', amount_sum_1h: 4, amount_count_1h: 1 },
        { card_id: 'c', amount: 2, country: 'US', amount_sum_1h: 3, amount_count_1h: 2 },
        { card_id: 'd', amount: null, country: null, amount_sum_1h: 0, amount_count_1h: 0 },
      ]);
    });
  });

  it('fail: a failing rule writes nothing to either store and says why, with the report', async () => {
    await withPolicy('fail', true, async (p) => {
      const error = await p.store
        .ingest('pay', { table: tableFromRows(POLICY_SCHEMA, POLICY_ROWS) })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(FerryError);
      const ferry = error as FerryError;
      expect(ferry.code).toBe('FERRY_VALIDATION_FAILED');
      expect(ferry.message).toContain("rule set 'pay_rules' failed");
      expect(ferry.message).toMatch(/range\(amount\): 2 rows, e\.g\. row 2/);
      const report = ferry.details?.report as ValidationReport;
      expect(report.outcome).toBe('failed');
      expect(report.rules.map((r) => [r.name, r.failing])).toEqual([
        ['range(amount)', 2],
        ['not_null(country)', 2],
      ]);
      expect(await p.offline.hasTable('features/pay')).toBe(false);
      expect(await p.offline.hasTable('quarantine/pay')).toBe(false);
      expect(await p.online.readLatest('pay', ['a', 'b', 'c', 'd'])).toEqual([
        null,
        null,
        null,
        null,
      ]);
      const [a] = await p.store.getOnlineVector('v', ['a'], AT);
      expect(a).toMatchObject({ amount: null, amount_count_1h: 0 });

      // The same rules on rows that all pass store every row.
      const clean = POLICY_ROWS.filter((_, i) => ![1, 2, 6].includes(i));
      const ok = await p.store.ingest('pay', { table: tableFromRows(POLICY_SCHEMA, clean) });
      expect(ok).toMatchObject({ read: 4, written: 4, quarantined: {} });
      expect(ok.validation?.outcome).toBe('passed');
    });
  });

  it('warn: every row is stored and the report says which rules failed', async () => {
    await withPolicy('warn', false, async (p) => {
      const result = await p.store.ingest('pay', {
        table: tableFromRows(POLICY_SCHEMA, POLICY_ROWS),
      });
      expect(result).toMatchObject({ read: 7, quarantined: {}, written: 7, rejected: [] });
      expect(result.validation?.outcome).toBe('warned');
      expect(result.validation?.rules.map((r) => [r.name, r.failing])).toEqual([
        ['range(amount)', 2],
        ['not_null(country)', 2],
      ]);
      expect(await p.offline.hasTable('quarantine/pay')).toBe(false);
      const [a, d] = await p.store.getOnlineVector('v', ['a', 'd'], AT);
      expect(a).toMatchObject({ amount: -5, amount_sum_1h: 5, amount_count_1h: 2 });
      expect(d).toMatchObject({ amount: -1, country: null, amount_count_1h: 1 });
    });
  });

  it('names the step and the columns it had when a step does not fit the source', async () => {
    const pay = await open({ spec: PAY });
    try {
      const table = tableFromRows(
        [
          { name: 'card_id', type: 'string' },
          { name: 'ts', type: 'timestamp' },
          { name: 'amount', type: 'float' },
        ],
        [{ card_id: 'a', ts: T0, amount: 1 }],
      );
      const error = (await pay.store
        .ingest('pay', { table })
        .catch((e: unknown) => e)) as FerryError;
      expect(error).toBeInstanceOf(FerryError);
      expect(error.message).toContain("feature set 'pay', step 2 (derive)");
      expect(error.message).toContain('rate');
      expect(await pay.offline.hasTable('features/pay')).toBe(false);
    } finally {
      await pay.offline.close();
      await pay.online.close();
    }
  });

  it('refuses a step that learns from its rows even in a spec built in code', async () => {
    const fs = h.spec.feature_sets[0] as FeatureSetSpec;
    const spec: ProjectSpec = {
      ...h.spec,
      feature_sets: [
        { ...fs, steps: [{ step: 'scale', columns: ['amount'], method: 'standard' }] },
      ],
    };
    const store = new FeatureStore({
      spec,
      projectDir: h.dir,
      offline: h.offline,
      online: h.online,
    });
    await expect(
      store.ingest('tx', { table: events(history()[0]?.rows ?? []) }),
    ).rejects.toMatchObject({
      code: 'FERRY_CONFIG_INVALID',
      message: expect.stringMatching(
        /step 1 \(scale\) cannot run on a feature set: .*training recipe/,
      ),
    });
    expect(await h.offline.hasTable('features/tx')).toBe(false);
  });
});

describe('reading a configured source', () => {
  it('honours its read options and schema, and names the lines it could not read', async () => {
    await h.offline.close();
    await h.online.close();
    h = await open({
      spec: `
entities:
  - { name: card, keys: [card_id] }
feature_sets:
  - name: tx
    entity: card
    timestamp: ts
    source:
      type: csv
      path: tx.csv
      options: { delimiter: ';', null_values: ['n/a'] }
      schema: { card_id: string }
    features:
      - { name: amount, type: float }
`,
    });
    writeFileSync(
      path.join(h.dir, 'tx.csv'),
      [
        'card_id;ts;amount',
        '007;2026-10-01T10:00:00Z;12.5',
        '007;2026-10-01T11:00:00Z;n/a',
        '008;2026-10-01T12:00:00Z;3;extra',
        '009;2026-10-01T13:00:00Z;4',
      ].join('\n') + '\n',
    );
    const said: string[] = [];
    const result = await h.store.ingest('tx', { onProgress: (m) => said.push(m) });
    expect(result.written).toBe(3);
    expect(said.join('\n')).toMatch(/1 malformed line\(s\) .*tx\.csv.*line 4/);
    // The schema override keeps leading zeros in keys; 'n/a' reads as a missing amount.
    const [first, second] = await h.online.readLatest('tx', ['007', '7']);
    expect(first?.ts).toBe(Date.UTC(2026, 9, 1, 11));
    expect(first?.values).toHaveProperty('amount', null);
    expect(second).toBeNull();
  });
});
