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
} from '../core/table.js';
import { readTable } from '../data/read.js';
import { listQuarantine, readQuarantine } from '../data/validate/quarantine.js';
import type { ValidationReport } from '../data/validate/report.js';
import { writeCsv } from '../data/write.js';
import { FerryError } from '../errors/index.js';
import {
  dedupe,
  describeFeatureParity,
  events,
  expectSameRow,
  history,
  HOUR,
  MIN,
  openFeatureHarness,
  reference,
  T0,
  type FeatureHarness,
  type OnlineStoreFactory,
} from '../testing/feature-parity.js';
import { tempDirs } from '../testing/temp.js';
import { FeatureStore } from './feature-store.js';
import { openSqliteOnlineStore } from './online/sqlite.js';

const tmp = tempDirs();

const sqliteOnline: OnlineStoreFactory = (dir) =>
  openSqliteOnlineStore({ path: path.join(dir, 'online.db') });

// The parity scenario and the semantics cases, shared with the other online store backends.
describeFeatureParity('sqlite', sqliteOnline);

type Harness = FeatureHarness;

let h: Harness;

function open(extra: { onlineHistoryMs?: number; spec?: string } = {}): Promise<Harness> {
  return openFeatureHarness({ dir: tmp.fresh(), online: sqliteOnline, ...extra });
}

/** Opens `h` before each case of the calling describe, and closes what it holds after. */
function useHarness(): void {
  beforeEach(async () => {
    h = await open();
  });
  afterEach(async () => {
    await h.offline.close();
    await h.online.close();
  });
}

describe('FeatureStore.ingest', () => {
  useHarness();

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
  useHarness();

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
  useHarness();

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
  useHarness();

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
  useHarness();

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
