import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseProjectSpec } from '../config/load.js';
import type { ProjectSpec } from '../config/schema.js';
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

async function open(extra: { onlineHistoryMs?: number } = {}): Promise<Harness> {
  const dir = tmp.fresh();
  const spec = parseProjectSpec((await import('yaml')).parse(SPEC), 'test');
  const offline = await openParquetOfflineStore({ path: path.join(dir, 'offline') });
  const online = await openSqliteOnlineStore({ path: path.join(dir, 'online.db') });
  const store = new FeatureStore({ spec, projectDir: dir, offline, online, ...extra });
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

describe('FeatureStore parity: online lookups equal the training set, row for row', () => {
  it('gives the same values online and offline, and both follow the semantics, at many (key, T)', async () => {
    const rand = createRng(7);
    const stored: Row[] = [];
    let pairsChecked = 0;
    let nonZeroCounts = 0;
    let plainSeen = 0;
    for (const stage of history()) {
      const result = await h.store.ingest('tx', { table: events(stage.rows) });
      expect(result.rejected).toEqual([]);
      expect(result.duplicates).toBe(1);
      stored.push(...dedupe(stage.rows));
      expect(result.rows).toBe(dedupe(stage.rows).length);

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
    expect(first.rows).toBe(dedupe(rows).length);
    const second = await h.store.ingest('tx', { source: file });
    expect(second).toEqual({ rows: 0, duplicates: rows.length, rejected: [] });
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
    expect(result.rows).toBe(1);
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
    expect(result.rows).toBe(2);
    expect(result.rejected.map((r) => r.row)).toEqual([2, 3, 4, 5, 6]);
    expect(result.rejected[0]?.reason).toMatch(/entity key 'card_id' is missing/);
    expect(result.rejected[1]?.reason).toMatch(/timestamp 'ts' is missing/);
    expect(result.rejected[2]?.reason).toMatch(/'not a time', not a time/);
    expect(result.rejected[3]?.reason).toMatch(/'amount' is 'lots', not a valid float/);
    expect(result.rejected[4]?.reason).toMatch(/'items' is .*1\.5.*not a valid int/);
    const quarantined = tableToRows(await h.offline.read('quarantine/tx'));
    expect(quarantined.map((r) => r.row).sort()).toEqual([2, 3, 4, 5, 6]);
    expect(JSON.parse(String(quarantined.find((r) => r.row === 5)?.record))).toMatchObject({
      card_id: 'd',
      amount: 'lots',
    });
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
