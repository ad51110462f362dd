/**
 * Online feature lookups: what an endpoint's enrich step pays per request.
 *
 * Setup: a feature set of 3 plain features and count/sum/mean of `amount` over 10m, 1h and 1d,
 * 10,000 entities with about 20 events each in the last day (skewed towards the present, so the
 * short windows are not empty), ingested with the real FeatureStore into the SQLite online store
 * and the Parquet offline store.
 *
 * Cases: `OnlineStore.readLatest` of one key; `FeatureStore.getOnlineVector` of one key (latest
 * values plus the 9 window aggregates, computed from the stored events); both with 100 keys per
 * call, reported per key. Keys are drawn at random, so lookups do not all hit the same pages.
 *
 * Baseline: a prepared better-sqlite3 `SELECT values_json ... WHERE feature_set = ? AND key = ?`
 * on the store's own `latest` table through a second connection, the cost floor of SQLite.
 * A second reference row adds the events range scan a windowed lookup needs (no JSON parsing).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { parseProjectSpec } from '../src/config/load.js';
import type { Scalar, Table } from '../src/core/table.js';
import { FeatureStore } from '../src/feature-store/feature-store.js';
import { openParquetOfflineStore } from '../src/feature-store/offline/parquet.js';
import { openSqliteOnlineStore } from '../src/feature-store/online/sqlite.js';
import { measureLatency } from './measure.js';
import { runBench, type Reporter } from './report.js';
import { createRng } from '../src/training/random.js';

const ENTITIES = 10_000;
const MEAN_EVENTS = 20;
const DAY = 86_400_000;
const BATCH = 100;
const FEATURE_SET = 'tx';
const VECTOR = 'card_live';

const SPEC = {
  entities: [{ name: 'card', keys: ['card_id'] }],
  feature_sets: [
    {
      name: FEATURE_SET,
      entity: 'card',
      timestamp: 'ts',
      features: [
        { name: 'amount', type: 'float' },
        { name: 'items', type: 'int' },
        { name: 'merchant_risk', type: 'float' },
      ],
      aggregations: [
        { column: 'amount', ops: ['count', 'sum', 'mean'], windows: ['10m', '1h', '1d'] },
      ],
      ttl: '7d',
    },
  ],
  feature_vectors: [{ name: VECTOR, features: [`${FEATURE_SET}.*`] }],
};

function keyOf(i: number): string {
  return `card_${String(i).padStart(5, '0')}`;
}

/** Events of every entity in (at - 1d, at], and each entity's event times (for the sanity check). */
function generateEvents(at: number, random: () => number): { table: Table; times: number[][] } {
  const keys: Scalar[] = [];
  const ts: Scalar[] = [];
  const amount: Scalar[] = [];
  const items: Scalar[] = [];
  const risk: Scalar[] = [];
  const times: number[][] = [];
  for (let e = 0; e < ENTITIES; e++) {
    const n = MEAN_EVENTS - 5 + Math.floor(random() * 11);
    const mine = new Set<number>();
    while (mine.size < n) mine.add(at - Math.floor(DAY * random() ** 2));
    times.push([...mine]);
    for (const t of mine) {
      keys.push(keyOf(e));
      ts.push(t);
      amount.push(Math.round(random() * 50_000) / 100);
      items.push(1 + Math.floor(random() * 5));
      risk.push(Math.round(random() * 1000) / 1000);
    }
  }
  const table: Table = {
    rowCount: keys.length,
    columns: [
      { name: 'card_id', type: 'string', values: keys },
      { name: 'ts', type: 'timestamp', values: ts },
      { name: 'amount', type: 'float', values: amount },
      { name: 'items', type: 'int', values: items },
      { name: 'merchant_risk', type: 'float', values: risk },
    ],
  };
  return { table, times };
}

/**
 * Generates and ingests the events, then checks a few lookups against them. A function of its own
 * so that the 200k generated rows are garbage by the time lookups are timed.
 */
async function ingestAndCheck(
  store: FeatureStore,
  at: number,
  random: () => number,
  report: Reporter,
): Promise<void> {
  const { table, times } = generateEvents(at, random);
  const started = performance.now();
  const ingested = await store.ingest(FEATURE_SET, { table });
  const seconds = (performance.now() - started) / 1000;
  report.note(
    `${ENTITIES.toLocaleString('en-US')} entities, ${ingested.written.toLocaleString('en-US')} events ingested in ${seconds.toFixed(1)} s; ` +
      `vector '${VECTOR}': 3 plain features + count/sum/mean of amount over 10m/1h/1d`,
  );
  if (ingested.written !== table.rowCount) {
    throw new Error(`ingested ${ingested.written} of ${table.rowCount} events`);
  }
  // The figures mean nothing if the lookups are wrong: check some counts against the data.
  for (const e of [0, 1, 4999, ENTITIES - 1]) {
    const [row] = await store.getOnlineVector(VECTOR, [keyOf(e)], at);
    const eventTimes = times[e] as number[];
    for (const [window, ms] of [
      ['10m', 600_000],
      ['1h', 3_600_000],
      ['1d', DAY],
    ] as const) {
      const expected = eventTimes.filter((t) => at - ms < t).length;
      const got = row?.[`amount_count_${window}`];
      if (got !== expected) {
        throw new Error(`${keyOf(e)}: amount_count_${window} is ${got}, expected ${expected}`);
      }
    }
  }
}

await runBench('online', 'online feature lookups (SQLite online store)', async (report) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ferry-bench-online-'));
  const onlinePath = path.join(dir, 'online.db');
  const spec = parseProjectSpec(SPEC, 'bench/online.bench.ts');
  const offline = await openParquetOfflineStore({ path: path.join(dir, 'offline') });
  const online = await openSqliteOnlineStore({ path: onlinePath });
  let raw: Database.Database | undefined;
  try {
    const store = new FeatureStore({ spec, projectDir: dir, offline, online });
    const random = createRng(42);
    // One fixed "now" for generation and every lookup, so the windows hold the same events all run.
    const at = Date.now();
    await ingestAndCheck(store, at, random, report);

    const lookups = 1 << 16;
    const keys = Array.from({ length: lookups }, () => keyOf(Math.floor(random() * ENTITIES)));
    const batches = Array.from({ length: 1024 }, () =>
      Array.from({ length: BATCH }, () => keyOf(Math.floor(random() * ENTITIES))),
    );
    const key = (i: number): string => keys[i & (lookups - 1)] as string;
    const batch = (i: number): string[] => batches[i & 1023] as string[];

    raw = new Database(onlinePath, { readonly: true });
    const pointLookup = raw
      .prepare<[string, string], string>(
        'SELECT values_json FROM latest WHERE feature_set = ? AND key = ?',
      )
      .pluck();
    const eventsRange = raw
      .prepare<[string, string, number, number], [number, string]>(
        'SELECT ts, values_json FROM events WHERE feature_set = ? AND key = ? AND ts > ? AND ts <= ? ORDER BY ts, event_id',
      )
      .raw();
    if (pointLookup.get(FEATURE_SET, keyOf(0)) === undefined) {
      throw new Error('the baseline found no row: the latest table is empty');
    }

    report.baseline(
      await measureLatency('raw SQLite point lookup by primary key', (i) =>
        pointLookup.get(FEATURE_SET, key(i)),
      ),
    );
    report.add(
      await measureLatency('raw SQLite latest + events range (windowed lookup floor)', (i) => {
        const k = key(i);
        pointLookup.get(FEATURE_SET, k);
        return eventsRange.all(FEATURE_SET, k, at - DAY, at);
      }),
    );
    report.add(
      await measureLatency('OnlineStore.readLatest, 1 key', (i) =>
        online.readLatest(FEATURE_SET, [key(i)]),
      ),
    );
    report.add(
      await measureLatency('FeatureStore.getOnlineVector, 1 key (3 plain + 9 windows)', (i) =>
        store.getOnlineVector(VECTOR, [key(i)], at),
      ),
    );
    report.add(
      await measureLatency(
        `OnlineStore.readLatest, ${BATCH} keys per call (per key)`,
        (i) => online.readLatest(FEATURE_SET, batch(i)),
        { opsPerCall: BATCH },
      ),
    );
    report.add(
      await measureLatency(
        `FeatureStore.getOnlineVector, ${BATCH} keys per call (per key)`,
        (i) => store.getOnlineVector(VECTOR, batch(i), at),
        { opsPerCall: BATCH },
      ),
    );
  } finally {
    raw?.close();
    await online.close();
    await offline.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
