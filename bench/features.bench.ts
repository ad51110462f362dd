/**
 * The feature store, measured where users feel it: online lookups, streaming ingestion and
 * point-in-time training sets (issue 4, "Measured"). Each part has a floor measured in the same
 * run, marked [baseline]; the rows after it, until the next one, are compared with it.
 *
 * 1. Online lookups of a 10-feature vector (7 plain features + amount_sum_1h, amount_count_10m,
 *    amount_mean_1d) with `FeatureStore.getOnlineVector`, 1 and 100 keys per call, on SQLite and
 *    on Redis, after 10,000 entities' events (about 20 each, all within the last day, skewed
 *    towards the present so the short windows are not empty) were ingested. Floors: a prepared
 *    better-sqlite3 primary-key read of the store's own `latest` table; an ioredis `HGETALL` of one
 *    10-field hash, and a pipeline of 100 of them. Between floor and lookup, to show where the time
 *    goes: the raw reads a windowed lookup needs (latest row + the events of the largest window,
 *    straight from SQLite or as one HGETALL + ZRANGEBYSCORE pipeline on the Redis store's keys),
 *    then the same two reads through the OnlineStore (decoding included, no aggregation).
 *    Aim: p99 under 1 ms for one key on both stores.
 * 2. Streaming ingestion, events per second: `FeatureStore.ingestEvents` into the embedded stores
 *    (SQLite online, Parquet offline) in batches of 1,000 and 100 live events, each store fresh;
 *    floor: the same events written straight with `OnlineStore.appendEvents` + `writeLatest`; for
 *    reference the Parquet append alone; and the share of each store call in ingestEvents' time.
 *    Then the same batches from 8 callers at once (batches waiting for the set's turn are stored
 *    together: group commit).
 *    End to end through NATS JetStream into Redis: events published one per message to
 *    `ferry.ingest.<set>` (a stream and subject prefix of this run's own), consumed by
 *    `startIngestionConsumers` into a FeatureStore on Redis and Parquet, timed from the first
 *    publish until the consumers report every event written; floor: publishing alone; for
 *    reference the Redis store's own writes. Aim: 50,000 events/s embedded.
 * 3. A point-in-time training set: 1,000,000 label rows over 3 feature sets of 1,000,000 events
 *    each (100,000 entities, 30 days, 16 features of which 8 window aggregates) with
 *    `buildTrainingSet`, written to Parquet: seconds and peak RSS, in a process of its own.
 *    Floor: plain DuckDB `ASOF JOIN` of the labels to one set's latest values; reference: the
 *    whole vector as one plain SQL statement (what DuckDB alone needs for the same answer), whose
 *    output also checks Ferry's. Aim: under 30 s and 2 GB. Each offline call of the build is
 *    timed and its RSS peak recorded, so a miss says which query or step dominates.
 *
 * The machine's load average is printed after each part: on a machine busy with other work the
 * absolute figures drop, the ratios to the floors much less.
 *
 * Sizes: `FERRY_BENCH_SCALE=0.1` shrinks every data set for a quick run (default 1).
 * `FERRY_BENCH_PARTS=lookup,ingest,pit` runs some parts only (default all).
 * Redis at `FERRY_BENCH_REDIS_URL` (default redis://127.0.0.1:6379) and NATS at
 * `FERRY_BENCH_NATS_URL` (default nats://127.0.0.1:4222); a part whose engine or code is missing
 * prints `skipped: <why>`. Everything written there has a unique prefix or stream and is removed.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { DuckDBInstance } from '@duckdb/node-api';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { Redis } from 'ioredis';
import { parseProjectSpec } from '../src/config/load.js';
import type { ProjectSpec } from '../src/config/schema.js';
import type { JsonObject } from '../src/core/json.js';
import type { Column, ColumnType, Row, Scalar, Table } from '../src/core/table.js';
import { quoteString } from '../src/data/duckdb.js';
import { writeTable } from '../src/data/write.js';
import type { EventBus } from '../src/events/event-bus.js';
import { openNatsEventBus, type NatsEventBus } from '../src/events/nats.js';
import { EVENT_ID_COLUMN, FeatureStore } from '../src/feature-store/feature-store.js';
import type { OfflineStore } from '../src/feature-store/offline/offline-store.js';
import { openParquetOfflineStore } from '../src/feature-store/offline/parquet.js';
import type {
  OnlineEvent,
  OnlineStore,
  OnlineWrite,
} from '../src/feature-store/online/online-store.js';
import { openRedisOnlineStore } from '../src/feature-store/online/redis.js';
import { startIngestionConsumers, type IngestionConsumers } from '../src/feature-store/stream.js';
import { openSqliteOnlineStore } from '../src/feature-store/online/sqlite.js';
import { createRng } from '../src/training/random.js';
import {
  highWaterRss,
  measureEach,
  measureLatency,
  oneShot,
  sampleRss,
  type LatencyResult,
} from './measure.js';
import { CARD_FEATURES, CARD_WINDOWS, cardFeatures, cardKey, cardProject } from './data.js';
import { reachableUrl } from '../src/testing/services.js';
import { deleteRedisPrefix } from './redis.js';
import { runBench, type Reporter } from './report.js';

const SELF = fileURLToPath(import.meta.url);
const ROOT = path.dirname(path.dirname(SELF));
const MB = 1024 * 1024;
const MINUTE = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;

/** FERRY_BENCH_SCALE: a factor in (0, 1] on every data size. */
const SCALE = ((): number => {
  const raw = process.env.FERRY_BENCH_SCALE;
  const scale = raw === undefined || raw === '' ? 1 : Number(raw);
  if (!(scale > 0 && scale <= 1)) {
    throw new Error(`FERRY_BENCH_SCALE must be a number in (0, 1], got '${raw}'`);
  }
  return scale;
})();
const scaled = (n: number): number => Math.max(1, Math.round(n * SCALE));

const PARTS = ['lookup', 'ingest', 'pit'] as const;
type Part = (typeof PARTS)[number];
const SELECTED = ((): Set<Part> => {
  const raw = process.env.FERRY_BENCH_PARTS;
  if (raw === undefined || raw.trim() === '') return new Set(PARTS);
  const names = raw.split(',').map((s) => s.trim());
  const unknown = names.filter((n) => !(PARTS as readonly string[]).includes(n));
  if (unknown.length > 0) {
    throw new Error(
      `FERRY_BENCH_PARTS: unknown part(s) ${unknown.join(', ')}; parts: ${PARTS.join(', ')}`,
    );
  }
  return new Set(names as Part[]);
})();

const REDIS_URL = process.env.FERRY_BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const NATS_URL = process.env.FERRY_BENCH_NATS_URL ?? 'nats://127.0.0.1:4222';

const count = (n: number): string => Math.round(n).toLocaleString('en-US');
const mb = (bytes: number): string => `${count(bytes / MB)} MB`;
const us = (value: number): string => (value >= 100 ? value.toFixed(0) : value.toFixed(1));

/* =============================================================================================
 * 1. Online lookups
 */

const LOOKUP_SET = 'tx';
const LOOKUP_VECTOR = 'card_live';
const LOOKUP_BATCH = 100;
const LOOKUP_ENTITIES = scaled(10_000);
const LOOKUP_MEAN_EVENTS = 20;
const LOOKUP_FEATURES = CARD_FEATURES;
const LOOKUP_SPEC = cardProject(LOOKUP_SET, LOOKUP_VECTOR, LOOKUP_FEATURES);

interface LookupData {
  readonly table: Table;
  /** Per entity: its events' (ts, amount), for checking lookups. */
  readonly events: { ts: number; amount: number }[][];
}

/** About 20 events per entity in (at - 1d, at], skewed towards `at`. */
function generateLookupEvents(at: number, random: () => number): LookupData {
  const keys: Scalar[] = [];
  const ts: Scalar[] = [];
  const features: Scalar[][] = LOOKUP_FEATURES.map(() => []);
  const events: { ts: number; amount: number }[][] = [];
  for (let e = 0; e < LOOKUP_ENTITIES; e++) {
    const n = LOOKUP_MEAN_EVENTS - 5 + Math.floor(random() * 11);
    const times = new Set<number>();
    while (times.size < n) times.add(at - Math.floor(DAY * random() ** 2));
    const mine: { ts: number; amount: number }[] = [];
    for (const t of times) {
      keys.push(cardKey(e));
      ts.push(t);
      LOOKUP_FEATURES.forEach((f, j) => (features[j] as Scalar[]).push(f.draw(random)));
      mine.push({ ts: t, amount: (features[0] as Scalar[]).at(-1) as number });
    }
    events.push(mine);
  }
  return {
    table: {
      rowCount: keys.length,
      columns: [
        { name: 'card_id', type: 'string', values: keys },
        { name: 'ts', type: 'timestamp', values: ts },
        ...LOOKUP_FEATURES.map((f, j) => ({
          name: f.name,
          type: f.type,
          values: features[j] as Scalar[],
        })),
      ],
    },
    events,
  };
}

/** Ingests the events and checks lookups of a few entities against them: wrong answers fast are no result. */
async function ingestAndCheck(
  store: FeatureStore,
  data: LookupData,
  at: number,
  label: string,
  report: Reporter,
): Promise<void> {
  const started = performance.now();
  const ingested = await store.ingest(LOOKUP_SET, { table: data.table });
  const seconds = (performance.now() - started) / 1000;
  if (ingested.written !== data.table.rowCount) {
    throw new Error(`${label}: ingested ${ingested.written} of ${data.table.rowCount} events`);
  }
  report.note(
    `${label}: ${count(LOOKUP_ENTITIES)} entities, ${count(ingested.written)} events ingested with FeatureStore.ingest in ${seconds.toFixed(1)} s`,
  );
  const probes = [0, 1, Math.floor(LOOKUP_ENTITIES / 2), LOOKUP_ENTITIES - 1];
  const rows = await store.getOnlineVector(LOOKUP_VECTOR, probes.map(cardKey), at);
  probes.forEach((e, i) => {
    const row = rows[i] as Row;
    const mine = data.events[e] as { ts: number; amount: number }[];
    const in10m = mine.filter((x) => at - 10 * MINUTE < x.ts).length;
    const sum1h = mine.filter((x) => at - HOUR < x.ts).reduce((s, x) => s + x.amount, 0);
    const got = row.amount_sum_1h;
    if (row.amount_count_10m !== in10m || typeof got !== 'number' || Math.abs(got - sum1h) > 1e-6) {
      throw new Error(
        `${label}: ${cardKey(e)} looked up ${JSON.stringify(row)}; expected amount_count_10m ${in10m}, amount_sum_1h ${sum1h}`,
      );
    }
    const columns = Object.keys(row).length - 1;
    if (columns !== 10) throw new Error(`${label}: the vector has ${columns} features, not 10`);
  });
}

/** Keys drawn at random, so lookups do not all hit the same pages; cycled by call index. */
function lookupKeys(random: () => number): {
  key: (i: number) => string;
  batch: (i: number) => string[];
} {
  const singles = Array.from({ length: 1 << 16 }, () =>
    cardKey(Math.floor(random() * LOOKUP_ENTITIES)),
  );
  const batches = Array.from({ length: 1024 }, () =>
    Array.from({ length: LOOKUP_BATCH }, () => cardKey(Math.floor(random() * LOOKUP_ENTITIES))),
  );
  return {
    key: (i) => singles[i & 0xffff] as string,
    batch: (i) => batches[i & 1023] as string[],
  };
}

/**
 * The two reads `getOnlineVector` makes of the online store (latest values, and the events of the
 * largest window), issued together as it issues them: the store's share of a lookup, the rest
 * being the vector's assembly and the window aggregates computed in JavaScript.
 */
function storeReads(online: OnlineStore, keys: readonly string[], at: number): Promise<unknown> {
  return Promise.all([
    online.readLatest(LOOKUP_SET, keys),
    online.readEventsMany(LOOKUP_SET, keys, at - DAY, at),
  ]);
}

async function lookupSqlite(
  report: Reporter,
  data: LookupData,
  at: number,
  random: () => number,
): Promise<{ one: LatencyResult; hundred: LatencyResult }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ferry-bench-features-sqlite-'));
  const onlinePath = path.join(dir, 'online.db');
  const offline = await openParquetOfflineStore({ path: path.join(dir, 'offline') });
  const online = await openSqliteOnlineStore({ path: onlinePath });
  let raw: Database.Database | undefined;
  try {
    const spec = parseProjectSpec(LOOKUP_SPEC, 'bench/features.bench.ts');
    const store = new FeatureStore({ spec, projectDir: dir, offline, online });
    await ingestAndCheck(store, data, at, 'SQLite', report);
    const { key, batch } = lookupKeys(random);

    raw = new Database(onlinePath, { readonly: true });
    const pointLookup = raw
      .prepare<[string, string], string>(
        'SELECT values_json FROM latest WHERE feature_set = ? AND key = ?',
      )
      .pluck();
    if (pointLookup.get(LOOKUP_SET, cardKey(0)) === undefined) {
      throw new Error('the SQLite floor found no row: the latest table is empty');
    }
    report.baseline(
      await measureLatency('SQLite: raw primary-key read (better-sqlite3)', (i) =>
        pointLookup.get(LOOKUP_SET, key(i)),
      ),
    );
    const eventsRange = raw
      .prepare<[string, string, number, number], [number, string]>(
        'SELECT ts, values_json FROM events WHERE feature_set = ? AND key = ? AND ts > ? AND ts <= ? ORDER BY ts, event_id',
      )
      .raw();
    report.add(
      await measureLatency('SQLite: raw latest + events range reads, 1 key', (i) => {
        const k = key(i);
        pointLookup.get(LOOKUP_SET, k);
        return eventsRange.all(LOOKUP_SET, k, at - DAY, at);
      }),
    );
    report.add(
      await measureLatency('SQLite: store reads of a lookup (latest + events), 1 key', (i) =>
        storeReads(online, [key(i)], at),
      ),
    );
    const one = await measureLatency('SQLite: getOnlineVector, 1 key', (i) =>
      store.getOnlineVector(LOOKUP_VECTOR, [key(i)], at),
    );
    report.add(one);
    const hundred = await measureLatency(
      `SQLite: getOnlineVector, ${LOOKUP_BATCH} keys per call (per key)`,
      (i) => store.getOnlineVector(LOOKUP_VECTOR, batch(i), at),
      { opsPerCall: LOOKUP_BATCH },
    );
    report.add(hundred);
    return { one, hundred };
  } finally {
    raw?.close();
    await online.close();
    await offline.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function lookupRedis(
  report: Reporter,
  data: LookupData,
  at: number,
  random: () => number,
): Promise<{ one: LatencyResult; hundred: LatencyResult } | null> {
  if (!(await reachableUrl(REDIS_URL, 6379))) {
    report.note(`Redis lookups skipped: Redis is not reachable at ${REDIS_URL}`);
    return null;
  }
  const prefix = `ferry_bench_${randomBytes(6).toString('hex')}`;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ferry-bench-features-redis-'));
  const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  let online: OnlineStore | undefined;
  let offline: OfflineStore | undefined;
  await redis.connect();
  try {
    offline = await openParquetOfflineStore({ path: path.join(dir, 'offline') });
    online = await openRedisOnlineStore({ url: REDIS_URL, keyPrefix: prefix });
    const spec = parseProjectSpec(LOOKUP_SPEC, 'bench/features.bench.ts');
    const store = new FeatureStore({ spec, projectDir: dir, offline, online });
    await ingestAndCheck(store, data, at, 'Redis', report);
    const { key, batch } = lookupKeys(random);

    // The floor: one 10-field hash per entity, as a hand-written Redis schema would keep a vector.
    const rawKey = (k: string): string => `${prefix}:raw:${k}`;
    const fields = (r: () => number): Record<string, string> => {
      const out: Record<string, string> = {};
      LOOKUP_FEATURES.forEach((f) => (out[f.name] = String(f.draw(r))));
      for (const w of CARD_WINDOWS) out[w] = String(Math.round(r() * 100_000) / 100);
      return out;
    };
    for (let start = 0; start < LOOKUP_ENTITIES; start += 1000) {
      const pipeline = redis.pipeline();
      for (let e = start; e < Math.min(LOOKUP_ENTITIES, start + 1000); e++)
        pipeline.hset(rawKey(cardKey(e)), fields(random));
      await pipeline.exec();
    }
    const probe = await redis.hgetall(rawKey(cardKey(0)));
    if (Object.keys(probe).length !== 10) throw new Error('the Redis floor hash has not 10 fields');

    report.baseline(
      await measureLatency('Redis: raw HGETALL of one 10-field hash', (i) =>
        redis.hgetall(rawKey(key(i))),
      ),
    );
    // The store's own keys (layout in src/feature-store/online/redis.ts; these names need no
    // escaping): both reads of a windowed lookup as one raw pipeline, the floor of such a lookup.
    const storeKey = (k: string, kind: 'latest' | 'events'): string =>
      `${prefix}:{${LOOKUP_SET}:${k}}:${kind}`;
    if ((await redis.zcard(storeKey(cardKey(0), 'events'))) === 0) {
      throw new Error(
        `no events at ${storeKey(cardKey(0), 'events')}: the Redis key layout changed`,
      );
    }
    report.add(
      await measureLatency('Redis: raw HGETALL + ZRANGEBYSCORE pipeline, 1 key', (i) => {
        const k = key(i);
        return redis
          .pipeline()
          .hgetall(storeKey(k, 'latest'))
          .zrangebyscore(storeKey(k, 'events'), `(${at - DAY}`, at, 'WITHSCORES')
          .exec();
      }),
    );
    const redisStore = online;
    report.add(
      await measureLatency('Redis: store reads of a lookup (latest + events), 1 key', (i) =>
        storeReads(redisStore, [key(i)], at),
      ),
    );
    const one = await measureLatency('Redis: getOnlineVector, 1 key', (i) =>
      store.getOnlineVector(LOOKUP_VECTOR, [key(i)], at),
    );
    report.add(one);
    report.baseline(
      await measureLatency(
        `Redis: raw pipeline of ${LOOKUP_BATCH} HGETALL (per key)`,
        (i) => redis.pipeline(batch(i).map((k) => ['hgetall', rawKey(k)])).exec(),
        { opsPerCall: LOOKUP_BATCH },
      ),
    );
    const hundred = await measureLatency(
      `Redis: getOnlineVector, ${LOOKUP_BATCH} keys per call (per key)`,
      (i) => store.getOnlineVector(LOOKUP_VECTOR, batch(i), at),
      { opsPerCall: LOOKUP_BATCH },
    );
    report.add(hundred);
    return { one, hundred };
  } finally {
    await online?.close();
    await offline?.close();
    rmSync(dir, { recursive: true, force: true });
    const removed = await deleteRedisPrefix(redis, prefix);
    report.note(`Redis: removed the ${count(removed)} keys under '${prefix}'`);
    redis.disconnect();
  }
}

async function partLookups(report: Reporter): Promise<void> {
  report.note(
    `-- 1. online lookups: vector '${LOOKUP_VECTOR}' = 7 plain features + ${CARD_WINDOWS.join(', ')}`,
  );
  const random = createRng(42);
  // One fixed "now" for generation and every lookup, so the windows hold the same events all run.
  const at = Date.now();
  const data = generateLookupEvents(at, random);
  const sqlite = await lookupSqlite(report, data, at, createRng(7));
  const redis = await lookupRedis(report, data, at, createRng(7));
  const aim = (label: string, r: LatencyResult): string =>
    `${label} p99 ${us(r.p99Us)} µs (${r.p99Us < 1000 ? 'met' : 'MISSED'})`;
  report.note(
    `aim p99 < 1 ms for 1 key: ${aim('SQLite', sqlite.one)}; ` +
      (redis ? aim('Redis', redis.one) : 'Redis not measured'),
  );
}

/* =============================================================================================
 * 2. Streaming ingestion
 */

const INGEST_BATCHES = [1000, 100] as const;
/** Events timed per batch size, warm-up batches aside. */
const INGEST_EVENTS = { 1000: scaled(100_000), 100: scaled(30_000) } as const;
const INGEST_WARMUP = 3;
/** A case stops timing after this long, whatever is left. */
const INGEST_MAX_MS = 20_000;

/** One batch of live events, in each form the cases need. */
interface EventBatch {
  /** As a stream carries them: JSON objects with the key, the time (ms) and the features. */
  readonly json: Row[];
  /** As FeatureStore writes them online: the aggregated column only, per event... */
  readonly onlineEvents: OnlineEvent[];
  /** ...and the newest event of each key, with every feature. */
  readonly latest: OnlineWrite[];
  /** As it appends them offline. */
  readonly table: Table;
}

/** `batches` batches of `size` events of random entities, timestamps unique and increasing from `start`. */
function eventBatches(size: number, batches: number, start: number, seed: number): EventBatch[] {
  const random = createRng(seed);
  let ts = start;
  return Array.from({ length: batches }, () => {
    const json: Row[] = [];
    const onlineEvents: OnlineEvent[] = [];
    const newest = new Map<string, OnlineWrite>();
    for (let i = 0; i < size; i++) {
      const key = cardKey(Math.floor(random() * LOOKUP_ENTITIES));
      ts += 1 + Math.floor(random() * 3);
      const values: Row = {};
      for (const f of LOOKUP_FEATURES) values[f.name] = f.draw(random);
      json.push({ card_id: key, ts, ...values });
      onlineEvents.push({ key, ts, eventId: '', values: { amount: values.amount ?? null } });
      newest.set(key, { key, ts, values: { _event_id: '', ...values } });
    }
    const column = (name: string, type: ColumnType): Column => ({
      name,
      type,
      values: json.map((e) => e[name] ?? null),
    });
    const table: Table = {
      rowCount: size,
      columns: [
        column('card_id', 'string'),
        column('ts', 'timestamp'),
        { name: EVENT_ID_COLUMN, type: 'string', values: json.map(() => '') },
        ...LOOKUP_FEATURES.map((f) => column(f.name, f.type)),
      ],
    };
    return { json, onlineEvents, latest: [...newest.values()], table };
  });
}

/** The events of a case: warm-up batches first; timestamps start a day ago, so all are live. */
function ingestBatches(size: number, seed: number): EventBatch[] {
  const total = INGEST_WARMUP + Math.ceil(INGEST_EVENTS[size as 100 | 1000] / size);
  return eventBatches(size, total, Date.now() - DAY, seed);
}

/** Milliseconds spent in each store method, by `<store>.<method>`. */
type CallTimes = Map<string, number>;

/** `target` with the time of every method call (until its promise settles) added to `times`. */
function timeCalls<T extends object>(target: T, label: string, times: CallTimes): T {
  return new Proxy(target, {
    get(object, property, receiver) {
      const value: unknown = Reflect.get(object, property, receiver);
      if (typeof value !== 'function' || typeof property !== 'string') return value;
      const name = `${label}.${property}`;
      return (...args: unknown[]): unknown => {
        const started = performance.now();
        const add = (): void =>
          void times.set(name, (times.get(name) ?? 0) + performance.now() - started);
        const out: unknown = Reflect.apply(value, object, args);
        if (out instanceof Promise) return out.finally(add);
        add();
        return out;
      };
    },
  });
}

/**
 * Runs `work` on fresh embedded stores in a temporary folder, removed afterwards. With `times`,
 * the FeatureStore's calls of each store method are timed into it.
 */
async function withEmbeddedStores<T>(
  work: (stores: { store: FeatureStore; online: OnlineStore; offline: OfflineStore }) => Promise<T>,
  times?: CallTimes,
): Promise<T> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ferry-bench-features-ingest-'));
  const offline = await openParquetOfflineStore({ path: path.join(dir, 'offline') });
  const online = await openSqliteOnlineStore({ path: path.join(dir, 'online.db') });
  try {
    const spec = parseProjectSpec(LOOKUP_SPEC, 'bench/features.bench.ts');
    const store = new FeatureStore({
      spec,
      projectDir: dir,
      offline: times ? timeCalls<OfflineStore>(offline, 'offline', times) : offline,
      online: times ? timeCalls<OnlineStore>(online, 'online', times) : online,
    });
    return await work({ store, online, offline });
  } finally {
    await online.close();
    await offline.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const eventsOpts = (size: number): Parameters<typeof measureEach>[3] => ({
  warmup: INGEST_WARMUP,
  opsPerCall: size,
  durationMs: INGEST_MAX_MS,
});

/** The store floor: what the online writes of a batch cost, with nothing around them. */
async function writeOnlineFloor(online: OnlineStore, batch: EventBatch): Promise<void> {
  await online.appendEvents(LOOKUP_SET, batch.onlineEvents, DAY);
  await online.writeLatest(LOOKUP_SET, batch.latest);
}

/**
 * `ingestEvents` into fresh embedded stores, each batch checked to be stored whole; then where
 * its time went, store call by store call (the rest is preparing the events in JavaScript).
 */
async function ingestEventsEmbedded(
  report: Reporter,
  size: number,
  batches: EventBatch[],
): Promise<LatencyResult> {
  const times: CallTimes = new Map();
  const result = await withEmbeddedStores(async ({ store }) => {
    let calls = 0;
    return measureEach(
      `FeatureStore.ingestEvents (SQLite + Parquet), ${size}/batch`,
      batches,
      async (b) => {
        // Store times count from the first timed batch on, as the row's figures do.
        if (calls++ === INGEST_WARMUP) times.clear();
        const r = await store.ingestEvents(LOOKUP_SET, b.json);
        if (r.written !== b.json.length) {
          throw new Error(
            `ingestEvents stored ${r.written} of ${b.json.length} events: ${JSON.stringify(r)}`,
          );
        }
      },
      eventsOpts(size),
    );
  }, times);
  report.add(result);
  const total = result.samples * size * result.meanUs;
  const shares = [...times]
    .filter(([, ms]) => ms * 1000 >= total * 0.01)
    .sort((a, b) => b[1] - a[1])
    .map(([name, ms]) => `${name} ${Math.round((ms * 1000 * 100) / total)}%`);
  const inStores = [...times.values()].reduce((a, b) => a + b, 0) * 1000;
  report.note(
    `  ingestEvents ${size}/batch, where the time goes: ${shares.join(', ')}, ` +
      `the rest (preparing events, in JavaScript) ${Math.round(((total - inStores) * 100) / total)}%`,
  );
  return result;
}

/** Callers ingesting at once in the concurrent cases. */
const INGEST_CALLERS = 8;

/**
 * `ingestEvents` from {@link INGEST_CALLERS} callers at once into fresh embedded stores, each
 * batch checked to be stored whole: events per second over the whole run.
 */
async function ingestEventsConcurrent(size: number, batches: EventBatch[]): Promise<LatencyResult> {
  return withEmbeddedStores(async ({ store }) => {
    const ingest = async (b: EventBatch): Promise<void> => {
      const r = await store.ingestEvents(LOOKUP_SET, b.json);
      if (r.written !== b.json.length) {
        throw new Error(`ingestEvents stored ${r.written} of ${b.json.length} events`);
      }
    };
    for (const b of batches.slice(0, INGEST_WARMUP)) await ingest(b);
    const timed = batches.slice(INGEST_WARMUP);
    let next = 0;
    const started = performance.now();
    const caller = async (): Promise<void> => {
      while (next < timed.length && performance.now() - started < INGEST_MAX_MS)
        await ingest(timed[next++] as EventBatch);
    };
    await Promise.all(Array.from({ length: INGEST_CALLERS }, caller));
    const seconds = (performance.now() - started) / 1000;
    return oneShot(
      `FeatureStore.ingestEvents, ${INGEST_CALLERS} callers at once, ${size}/batch`,
      next * size,
      [seconds],
    );
  });
}

/** Events published through NATS end to end. */
const NATS_EVENTS = scaled(50_000);
/** Publishes awaiting their JetStream ack at once, as a producer with a window would have. */
const PUBLISH_WINDOW = 256;
/** The end-to-end case fails if the events are not all stored by then. */
const NATS_TIMEOUT_MS = 180_000;

/** Publishes `messages` in order with up to {@link PUBLISH_WINDOW} awaiting their ack. */
async function publishAll(
  bus: EventBus,
  subject: string,
  messages: readonly JsonObject[],
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < messages.length) await bus.publish(subject, messages[next++] as JsonObject);
  };
  await Promise.all(Array.from({ length: PUBLISH_WINDOW }, worker));
}

/**
 * Events published one per message to `ferry.ingest.<set>` on NATS JetStream (a stream and a
 * subject prefix of this run's own), consumed by `startIngestionConsumers` into a FeatureStore on
 * Redis (a key prefix of its own) and Parquet; timed from the first publish until the consumers
 * report every event stored. Floors: publishing the same messages to a subject nobody consumes,
 * and the Redis store's own writes of the same events.
 */
async function ingestThroughNats(report: Reporter, seed: number): Promise<void> {
  const missing = [
    ...((await reachableUrl(NATS_URL, 4222)) ? [] : [`NATS is not reachable at ${NATS_URL}`]),
    ...((await reachableUrl(REDIS_URL, 6379)) ? [] : [`Redis is not reachable at ${REDIS_URL}`]),
  ];
  if (missing.length > 0) {
    report.note(`NATS → Redis ingestion skipped: ${missing.join('; ')}`);
    return;
  }
  const run = `bench_${randomBytes(6).toString('hex')}`;
  const stream = `FERRY_BENCH_${run}`;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ferry-bench-features-nats-'));
  const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  let bus: NatsEventBus | undefined;
  let online: OnlineStore | undefined;
  let offline: OfflineStore | undefined;
  let consumers: IngestionConsumers | undefined;
  try {
    bus = await openNatsEventBus({
      servers: [NATS_URL],
      stream,
      maxPending: 10_000,
      ackWaitMs: 30_000,
      subjectPrefix: run,
    });
    const messages = eventBatches(1000, Math.ceil(NATS_EVENTS / 1000), Date.now() - DAY, seed)
      .flatMap((b) => b.json)
      .slice(0, NATS_EVENTS);
    report.note(
      `NATS: ${count(messages.length)} events, one per message, ${PUBLISH_WINDOW} publishes awaiting their ack at once; stream '${stream}'`,
    );

    const publishStarted = performance.now();
    await publishAll(bus, 'ferry.bench.unconsumed', messages);
    report.baseline(
      oneShot(`NATS: publish alone (JetStream acks)`, messages.length, [
        (performance.now() - publishStarted) / 1000,
      ]),
    );

    online = await openRedisOnlineStore({ url: REDIS_URL, keyPrefix: `${run}_floor` });
    const floorStore = online;
    report.add(
      await measureEach(
        'Redis online: appendEvents+writeLatest, 1000/batch',
        ingestBatches(1000, seed + 1).slice(0, INGEST_WARMUP + Math.ceil(NATS_EVENTS / 1000)),
        (b) => writeOnlineFloor(floorStore, b),
        eventsOpts(1000),
      ),
    );
    await online.close();

    online = await openRedisOnlineStore({ url: REDIS_URL, keyPrefix: run });
    offline = await openParquetOfflineStore({ path: path.join(dir, 'offline') });
    const spec = parseProjectSpec(LOOKUP_SPEC, 'bench/features.bench.ts');
    const store = new FeatureStore({ spec, projectDir: dir, offline, online });
    const outcomes = new Map<string, number>();
    let stored = 0;
    let allStored: () => void = () => undefined;
    const done = new Promise<void>((resolve) => (allStored = resolve));
    consumers = await startIngestionConsumers({
      features: store,
      events: bus,
      featureSets: [LOOKUP_SET],
      onOutcome: (_set, outcome, n) => {
        outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + n);
        if (outcome === 'written') stored += n;
        if (stored >= messages.length) allStored();
      },
    });
    const started = performance.now();
    await publishAll(bus, `ferry.ingest.${LOOKUP_SET}`, messages);
    const published = (performance.now() - started) / 1000;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      done,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new Error(
                `after ${NATS_TIMEOUT_MS / 1000} s the consumers had stored ${stored} of ${messages.length} events (outcomes ${JSON.stringify([...outcomes])})`,
              ),
            ),
          NATS_TIMEOUT_MS,
        );
      }),
    ]).finally(() => clearTimeout(timer));
    const seconds = (performance.now() - started) / 1000;
    const offlineRows = await offline.count(`features/${LOOKUP_SET}`);
    if (offlineRows !== messages.length) {
      throw new Error(`the offline store holds ${offlineRows} of ${messages.length} events`);
    }
    const e2e = oneShot(
      'NATS → startIngestionConsumers → Redis + Parquet, end to end',
      messages.length,
      [seconds],
    );
    report.add(e2e);
    report.note(
      `end to end: ${count(e2e.opsPerSec)} events/s; publishing took ${published.toFixed(1)} s of the ${seconds.toFixed(1)} s; ` +
        `outcomes ${[...outcomes].map(([o, n]) => `${o} ${count(n)}`).join(', ')}`,
    );
  } finally {
    await consumers?.stop();
    await bus?.close();
    await online?.close();
    await offline?.close();
    rmSync(dir, { recursive: true, force: true });
    await deleteNatsStream(stream);
    const removed = await deleteRedisPrefix(redis, run);
    report.note(
      `NATS: deleted stream '${stream}'; Redis: removed the ${count(removed)} keys under '${run}'`,
    );
    redis.disconnect();
  }
}

/** Deletes a JetStream stream (and its consumers); a stream that is not there is fine. */
async function deleteNatsStream(stream: string): Promise<void> {
  const nc = await connect({ servers: [NATS_URL], timeout: 5_000 });
  try {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.delete(stream).catch(() => undefined);
  } finally {
    await nc.close();
  }
}

async function partIngest(report: Reporter): Promise<void> {
  report.note(
    `-- 2. streaming ingestion into '${LOOKUP_SET}' (7 features, 3 windows), events of ${count(LOOKUP_ENTITIES)} entities; per-event figures`,
  );
  let seed = 100;
  const embedded: LatencyResult[] = [];
  for (const size of INGEST_BATCHES) {
    const batches = ingestBatches(size, seed++);
    const result = await withEmbeddedStores(({ online }) =>
      measureEach(
        `SQLite online: appendEvents+writeLatest, ${size}/batch`,
        batches,
        (b) => writeOnlineFloor(online, b),
        eventsOpts(size),
      ),
    );
    if (size === INGEST_BATCHES[0]) report.baseline(result);
    else report.add(result);
  }
  for (const size of INGEST_BATCHES) {
    const batches = ingestBatches(size, seed++);
    report.add(
      await withEmbeddedStores(({ offline }) =>
        measureEach(
          `Parquet offline: append alone, ${size}/batch`,
          batches,
          (b) => offline.append(`features/${LOOKUP_SET}`, b.table, { timeColumn: 'ts' }),
          eventsOpts(size),
        ),
      ),
    );
  }
  for (const size of INGEST_BATCHES) {
    const batches = ingestBatches(size, seed++);
    embedded.push(await ingestEventsEmbedded(report, size, batches));
  }
  const concurrent: LatencyResult[] = [];
  for (const size of INGEST_BATCHES) {
    const result = await ingestEventsConcurrent(size, ingestBatches(size, seed++));
    report.add(result);
    concurrent.push(result);
  }
  if (embedded.length > 0) {
    report.note(
      `aim 50,000 events/s embedded: ` +
        embedded
          .map(
            (r) =>
              `${count(r.opsPerSec)}/s at ${r.opsPerCall} per batch (${r.opsPerSec >= 50_000 ? 'met' : 'MISSED'})`,
          )
          .join('; ') +
        concurrent
          .map(
            (r, i) =>
              `; ${count(r.opsPerSec)}/s from ${INGEST_CALLERS} callers at ${INGEST_BATCHES[i]} per batch (${r.opsPerSec >= 50_000 ? 'met' : 'MISSED'})`,
          )
          .join(''),
    );
  }
  await ingestThroughNats(report, seed);
}

/* =============================================================================================
 * 3. Point-in-time training set
 */

const PIT_ENTITIES = scaled(100_000);
const PIT_EVENTS = scaled(1_000_000);
const PIT_LABELS = scaled(1_000_000);
const PIT_DAYS = 30;
const PIT_START = Date.UTC(2024, 0, 1);
const PIT_VECTOR = 'fraud_training';
/** Rows per offline append while generating: a few large batch ingestions, not one per day. */
const PIT_CHUNK = 250_000;
const SAMPLE_MS = 50;
/** A PIT case still running after this long is stopped. */
const PIT_CASE_TIMEOUT_MS = 600_000;

interface PitSet {
  readonly name: string;
  readonly features: typeof LOOKUP_FEATURES;
  readonly aggregations: { column: string; ops: string[]; windows: string[] }[];
  readonly ttl: string;
}

const PIT_SETS: readonly PitSet[] = [
  {
    name: 'transactions',
    features: cardFeatures('amount', 'items', 'country', 'merchant_risk'),
    aggregations: [{ column: 'amount', ops: ['count', 'sum'], windows: ['1h', '1d'] }],
    ttl: '7d',
  },
  {
    name: 'logins',
    features: [
      { name: 'failed', type: 'int', draw: (r) => (r() < 0.1 ? 1 : 0) },
      { name: 'device_score', type: 'float', draw: (r) => Math.round(r() * 10_000) / 10_000 },
    ],
    aggregations: [{ column: 'failed', ops: ['sum'], windows: ['1d', '7d'] }],
    ttl: '7d',
  },
  {
    name: 'payments',
    features: [
      { name: 'balance', type: 'float', draw: (r) => Math.round(r() * 1_000_000) / 100 },
      { name: 'days_late', type: 'int', draw: (r) => Math.floor(r() ** 3 * 60) },
    ],
    aggregations: [{ column: 'balance', ops: ['mean', 'max'], windows: ['7d'] }],
    ttl: '30d',
  },
];

const PIT_SPEC = {
  entities: [{ name: 'card', keys: ['card_id'] }],
  feature_sets: PIT_SETS.map((s) => ({
    name: s.name,
    entity: 'card',
    timestamp: 'ts',
    features: s.features.map((f) => ({ name: f.name, type: f.type })),
    aggregations: s.aggregations,
    ttl: s.ttl,
  })),
  feature_vectors: [
    {
      name: PIT_VECTOR,
      features: PIT_SETS.map((s) => `${s.name}.*`),
      label: {
        source: { type: 'parquet', path: 'labels.parquet' },
        column: 'is_fraud',
        timestamp: 'ts',
      },
    },
  ],
};

function pitSpec(): ProjectSpec {
  return parseProjectSpec(PIT_SPEC, 'bench/features.bench.ts');
}

/** Every window aggregate of a set as the vector names it: `<column>_<op>_<window>`. */
function aggregateNames(
  set: PitSet,
): { name: string; column: string; op: string; window: string }[] {
  return set.aggregations.flatMap((a) =>
    a.ops.flatMap((op) =>
      a.windows.map((window) => ({
        name: `${a.column}_${op}_${window}`,
        column: a.column,
        op,
        window,
      })),
    ),
  );
}

const PIT_CASES = ['generate', 'asof', 'sql', 'build'] as const;
type PitCase = (typeof PIT_CASES)[number];

interface PitResult {
  readonly name: PitCase;
  readonly seconds: number;
  readonly cpuSeconds: number;
  /** RSS after imports and setup, before the work. */
  readonly idleRss: number;
  readonly peakRss: number;
  /** The kernel's high-water mark (Linux), which also sees peaks the sampler missed. */
  readonly hwmRss: number | null;
  readonly rows: number;
  readonly details: string[];
}

/** Times `work` in this process, sampling RSS; `onSample` sees each sample. */
async function timedCase(
  name: PitCase,
  work: () => Promise<{ rows: number; details?: string[] }>,
  onSample?: (rss: number) => void,
): Promise<PitResult> {
  const idleRss = process.memoryUsage.rss();
  const stop = sampleRss(SAMPLE_MS, onSample);
  const started = performance.now();
  const cpu = process.cpuUsage();
  const outcome = await work();
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  const peakRss = stop();
  return {
    name,
    seconds,
    cpuSeconds: (used.user + used.system) / 1e6,
    idleRss,
    peakRss,
    hwmRss: highWaterRss(),
    rows: outcome.rows,
    details: outcome.details ?? [],
  };
}

const pitPaths = (
  dir: string,
): { offline: string; labels: string; out: (c: PitCase) => string } => ({
  offline: path.join(dir, 'offline'),
  labels: path.join(dir, 'labels.parquet'),
  out: (c) => path.join(dir, `${c}.parquet`),
});

/** A set's events: `PIT_EVENTS` over `PIT_DAYS` days, entities uniform, appended in chunks. */
async function generatePit(dir: string): Promise<PitResult> {
  return timedCase('generate', async () => {
    const paths = pitPaths(dir);
    const offline = await openParquetOfflineStore({ path: paths.offline });
    const span = PIT_DAYS * DAY;
    try {
      for (const [s, set] of PIT_SETS.entries()) {
        const random = createRng(1000 + s);
        for (let offset = 0; offset < PIT_EVENTS; offset += PIT_CHUNK) {
          const n = Math.min(PIT_CHUNK, PIT_EVENTS - offset);
          const keys = new Array<Scalar>(n);
          const ts = new Array<Scalar>(n);
          const features = set.features.map(() => new Array<Scalar>(n));
          for (let i = 0; i < n; i++) {
            keys[i] = cardKey(Math.floor(random() * PIT_ENTITIES));
            ts[i] = PIT_START + Math.floor(random() * span);
            set.features.forEach((f, j) => ((features[j] as Scalar[])[i] = f.draw(random)));
          }
          await offline.append(
            `features/${set.name}`,
            {
              rowCount: n,
              columns: [
                { name: 'card_id', type: 'string', values: keys },
                { name: 'ts', type: 'timestamp', values: ts },
                { name: EVENT_ID_COLUMN, type: 'string', values: new Array<Scalar>(n).fill('') },
                ...set.features.map((f, j) => ({
                  name: f.name,
                  type: f.type,
                  values: features[j] as Scalar[],
                })),
              ],
            },
            { timeColumn: 'ts' },
          );
        }
      }
    } finally {
      await offline.close();
    }
    // Labels over the same days, so early ones see little history and late ones a full window.
    const random = createRng(2000);
    const keys = new Array<Scalar>(PIT_LABELS);
    const ts = new Array<Scalar>(PIT_LABELS);
    const label = new Array<Scalar>(PIT_LABELS);
    for (let i = 0; i < PIT_LABELS; i++) {
      keys[i] = cardKey(Math.floor(random() * PIT_ENTITIES));
      ts[i] = PIT_START + Math.floor(random() * span);
      label[i] = random() < 0.05 ? 1 : 0;
    }
    await writeTable(
      {
        rowCount: PIT_LABELS,
        columns: [
          { name: 'card_id', type: 'string', values: keys },
          { name: 'ts', type: 'timestamp', values: ts },
          { name: 'is_fraud', type: 'int', values: label },
        ],
      },
      paths.labels,
    );
    return { rows: PIT_SETS.length * PIT_EVENTS + PIT_LABELS };
  });
}

/** `read_parquet` of a feature set's files, as the offline store lays them out. */
function setFiles(dir: string, set: string): string {
  return `read_parquet(${quoteString(path.join(pitPaths(dir).offline, 'features', set, 'date=*', '*.parquet'))}, hive_partitioning = false)`;
}

const DURATION_MS: Record<string, number> = { m: MINUTE, h: HOUR, d: DAY };
function windowMs(window: string): number {
  const match = /^(\d+)([mhd])$/.exec(window);
  if (!match) throw new Error(`window '${window}'`);
  return Number(match[1]) * (DURATION_MS[match[2] as string] as number);
}

/**
 * The whole vector as one plain SQL statement, same semantics as Ferry's (`ts <= T`,
 * `T - ts < ttl`, windows `T - w < ts <= T`), without its tie rule (this data has no ties).
 */
function referenceSql(dir: string, out: string): string {
  const ctes: string[] = [
    `l AS (SELECT row_number() OVER () AS _row, card_id, epoch_ms(ts) AS _t, ts, is_fraud FROM read_parquet(${quoteString(pitPaths(dir).labels)}))`,
  ];
  const selects: string[] = [];
  const joins: string[] = [];
  PIT_SETS.forEach((set, s) => {
    const columns = new Set([...set.features.map((f) => f.name)]);
    const ttl = windowMs(set.ttl);
    ctes.push(
      `e${s} AS (SELECT card_id, epoch_ms(ts) AS _ts, ${[...columns].join(', ')} FROM ${setFiles(dir, set.name)})`,
      `p${s} AS (SELECT l._row, ${set.features
        .map((f) => `CASE WHEN l._t - e._ts < ${ttl} THEN e.${f.name} END AS ${f.name}`)
        .join(', ')} FROM l ASOF LEFT JOIN e${s} e ON l.card_id = e.card_id AND l._t >= e._ts)`,
    );
    const aggs = aggregateNames(set);
    const longest = Math.max(...aggs.map((a) => windowMs(a.window)));
    const picks = aggs.map((a) => {
      const filter = `FILTER (WHERE e._ts > l._t - ${windowMs(a.window)})`;
      const expr =
        a.op === 'count'
          ? `count(e.${a.column}) ${filter}`
          : a.op === 'sum'
            ? `coalesce(sum(e.${a.column}) ${filter}, 0)`
            : `${a.op === 'mean' ? 'avg' : a.op}(e.${a.column}) ${filter}`;
      return `${expr} AS ${a.name}`;
    });
    ctes.push(
      `a${s} AS (SELECT l._row, ${picks.join(', ')} FROM l LEFT JOIN e${s} e ON e.card_id = l.card_id AND e._ts <= l._t AND e._ts > l._t - ${longest} GROUP BY l._row)`,
    );
    selects.push(
      ...set.features.map((f) => `p${s}.${f.name}`),
      ...aggs.map((a) => `a${s}.${a.name}`),
    );
    joins.push(`JOIN p${s} USING (_row)`, `JOIN a${s} USING (_row)`);
  });
  return `COPY (WITH ${ctes.join(',\n')}
    SELECT l.card_id, l.ts, ${selects.join(', ')}, l.is_fraud FROM l ${joins.join(' ')}
  ) TO ${quoteString(out)} (FORMAT parquet, COMPRESSION zstd)`;
}

/** Runs one statement in a fresh in-memory DuckDB, timed; the floor and the reference. */
async function duckdbCase(name: 'asof' | 'sql', dir: string): Promise<PitResult> {
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  const out = pitPaths(dir).out(name);
  const first = PIT_SETS[0] as PitSet;
  const sql =
    name === 'sql'
      ? referenceSql(dir, out)
      : `COPY (SELECT l.card_id, l.ts, ${first.features.map((f) => `e.${f.name}`).join(', ')}, l.is_fraud
           FROM read_parquet(${quoteString(pitPaths(dir).labels)}) l
           ASOF LEFT JOIN ${setFiles(dir, first.name)} e ON l.card_id = e.card_id AND l.ts >= e.ts
         ) TO ${quoteString(out)} (FORMAT parquet, COMPRESSION zstd)`;
  try {
    return await timedCase(name, async () => {
      const result = await connection.runAndReadAll(sql);
      return { rows: Number(result.getRowsJS()[0]?.[0] ?? 0) };
    });
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

/** What the build spent, phase by phase: each offline call, and the JavaScript in between. */
interface Phase {
  readonly label: string;
  ms: number;
  /** CPU time of the whole process (DuckDB's threads included), ms: steadier than wall time on a busy machine. */
  cpuMs: number;
  peakRss: number;
}

/** `1.2 s (CPU 2.0 s)` from wall and CPU milliseconds. */
function seconds(wallMs: number, cpu: number): string {
  return `${(wallMs / 1000).toFixed(1)} s (CPU ${(cpu / 1000).toFixed(1)} s)`;
}

/** CPU time of this process so far, every thread, in ms. */
function cpuMs(): number {
  const used = process.cpuUsage();
  return (used.user + used.system) / 1000;
}

interface Instrumented {
  readonly store: OfflineStore;
  /** Attributes an RSS sample to the phase running. */
  readonly sample: (rss: number) => void;
  /** Ends the phase running and starts one named `label`. */
  readonly begin: (label: string) => void;
  /** The queries the build ran, in order, with the phase of each. */
  readonly queries: { readonly phase: Phase; readonly sql: string; readonly params: Scalar[] }[];
  /** Drops the scratch tables whose drop was put off so that the queries can be run again. */
  readonly dropScratch: () => Promise<void>;
}

/**
 * The offline store with every append, read, drop and query timed into `phases`, and the
 * JavaScript between calls as phases of their own: which query or step of `buildTrainingSet`
 * dominates its time and its memory, seen from outside. Dropping a `scratch/` table is put off
 * (a few ms of file removal) so that the build's queries can be run again to profile them.
 */
function instrumented(offline: OfflineStore, phases: Phase[]): Instrumented {
  let current: Phase = {
    label: 'JS: read the labels, check keys and times',
    ms: 0,
    cpuMs: 0,
    peakRss: 0,
  };
  let since = performance.now();
  let cpuSince = cpuMs();
  phases.push(current);
  const queries: Instrumented['queries'] = [];
  const scratch: string[] = [];
  const begin = (label: string): void => {
    const now = performance.now();
    const cpu = cpuMs();
    current.ms += now - since;
    current.cpuMs += cpu - cpuSince;
    since = now;
    cpuSince = cpu;
    current = { label, ms: 0, cpuMs: 0, peakRss: process.memoryUsage.rss() };
    phases.push(current);
  };
  const describe = (method: string, args: unknown[]): string | null => {
    const [first, second] = args;
    switch (method) {
      case 'append':
        return `append ${String(first)} (${count((second as Table).rowCount)} rows)`;
      case 'read':
        return `read ${String(first)}`;
      case 'dropTable':
        return `drop ${String(first)}`;
      case 'query': {
        const sql = String(first);
        const set = /\{\{features\/([a-z0-9_]+)\}\}/.exec(sql)?.[1] ?? '?';
        return `query: ${set} ${/ASOF/.test(sql) ? 'ASOF join (plain features)' : 'range join (windows)'}`;
      }
      default:
        return null;
    }
  };
  const store = new Proxy(offline, {
    get(object, property, receiver) {
      const value: unknown = Reflect.get(object, property, receiver);
      if (typeof value !== 'function' || typeof property !== 'string') return value;
      return async (...args: unknown[]): Promise<unknown> => {
        const label = describe(property, args);
        if (label === null) return Reflect.apply(value, object, args);
        begin(label);
        try {
          if (property === 'dropTable' && String(args[0]).startsWith('scratch/')) {
            scratch.push(String(args[0]));
            return undefined;
          }
          if (property === 'query') {
            queries.push({
              phase: current,
              sql: String(args[0]),
              params: [...((args[1] as Scalar[] | undefined) ?? [])],
            });
          }
          return (await Reflect.apply(value, object, args)) as unknown;
        } finally {
          begin('JS: copy the results into the training set');
        }
      };
    },
  });
  return {
    store,
    sample: (rss) => {
      if (rss > current.peakRss) current.peakRss = rss;
    },
    begin,
    queries,
    dropScratch: async () => {
      for (const table of scratch.splice(0)) await offline.dropTable(table);
    },
  };
}

/**
 * Runs each of the build's queries again with its result folded into one row
 * (`max(COLUMNS(*))`, which still computes every column): the time DuckDB needs for the query
 * itself, against which the build's time for it shows what turning the rows into JavaScript
 * columns costs.
 */
async function profileQueries(offline: OfflineStore, timed: Instrumented): Promise<string[]> {
  const lines: string[] = [];
  for (const q of timed.queries) {
    const started = performance.now();
    const cpu = cpuMs();
    await offline.query(`SELECT max(COLUMNS(*)) FROM (${q.sql})`, q.params);
    const alone = performance.now() - started;
    const aloneCpu = cpuMs() - cpu;
    lines.push(
      `${q.phase.label.replace(/^query: /, '')}: in the build ${seconds(q.phase.ms, q.phase.cpuMs)}; ` +
        `folded to one row ${seconds(alone, aloneCpu)}`,
    );
  }
  return lines;
}

async function buildCase(dir: string): Promise<PitResult> {
  const paths = pitPaths(dir);
  const offline = await openParquetOfflineStore({ path: paths.offline });
  const online = await openSqliteOnlineStore({ path: ':memory:' });
  const phases: Phase[] = [];
  try {
    const timed = instrumented(offline, phases);
    const store = new FeatureStore({
      spec: pitSpec(),
      projectDir: dir,
      offline: timed.store,
      online,
    });
    const result = await timedCase(
      'build',
      async () => {
        // What `buildTrainingSet(vector, { out })` does, in two calls so that the write is a
        // phase of its own.
        const table = await store.buildTrainingSet(PIT_VECTOR);
        timed.begin('writeTable: the training set → Parquet');
        await writeTable(table, paths.out('build'));
        timed.begin('(end)');
        return { rows: table.rowCount };
      },
      timed.sample,
    );
    phases.pop(); // '(end)'
    const profile = await profileQueries(offline, timed);
    await timed.dropScratch();
    const last = phases.length - 2;
    const label = (p: Phase, i: number): string =>
      i === last && p.label.startsWith('JS:')
        ? 'JS: copy the last results, assemble the set'
        : p.label;
    return {
      ...result,
      details: phases
        .map((p, i) => ({ p, text: label(p, i) }))
        .filter(({ p }) => p.ms >= 50)
        .map(({ p, text }) => `${text}: ${seconds(p.ms, p.cpuMs)}, RSS up to ${mb(p.peakRss)}`)
        .concat(
          'profile, untimed: each query run again with its result folded to one row (max of every column), so no rows reach JavaScript:',
          ...profile.map((l) => `  ${l}`),
        ),
    };
  } finally {
    await online.close();
    await offline.close();
  }
}

async function runPitCase(name: PitCase, dir: string): Promise<PitResult> {
  switch (name) {
    case 'generate':
      return generatePit(dir);
    case 'asof':
    case 'sql':
      return duckdbCase(name, dir);
    case 'build':
      return buildCase(dir);
  }
}

/** Runs a PIT case in a child process of its own, so that its peak RSS is its own. */
function spawnPitCase(name: PitCase, dir: string): Promise<PitResult> {
  const out = path.join(dir, `${name}.result.json`);
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', SELF, '--case', name, '--dir', dir, '--out', out],
      { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'], env: process.env },
    );
    const timer = setTimeout(() => child.kill('SIGKILL'), PIT_CASE_TIMEOUT_MS);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code !== 0) {
        reject(new Error(`PIT case '${name}' exited with ${signal ?? `code ${code}`}`));
        return;
      }
      try {
        resolve(JSON.parse(readFileSync(out, 'utf8')) as PitResult);
      } catch (error) {
        reject(new Error(`PIT case '${name}' wrote no result`, { cause: error }));
      }
    });
  });
}

/**
 * Checks Ferry's training set against the plain-SQL reference: the same rows, and per feature
 * the same count of values and the same sum (numbers) or count of distinct values (strings).
 */
async function compareOutputs(dir: string): Promise<string> {
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  try {
    const features = PIT_SETS.flatMap((s) => [
      ...s.features.map((f) => ({
        name: f.name,
        numeric: f.type !== 'string' && f.type !== 'bool',
      })),
      ...aggregateNames(s).map((a) => ({ name: a.name, numeric: true })),
    ]);
    const stats = async (file: string): Promise<number[]> => {
      const exprs = [
        'count(*)',
        'sum(epoch_ms(ts))',
        ...features.flatMap((f) =>
          f.numeric
            ? [`count(${f.name})`, `sum(CAST(${f.name} AS DOUBLE))`]
            : [`count(${f.name})`, `count(DISTINCT ${f.name})`],
        ),
      ];
      const r = await connection.runAndReadAll(
        `SELECT ${exprs.map((e) => `CAST(${e} AS DOUBLE)`).join(', ')} FROM read_parquet(${quoteString(file)})`,
      );
      return (r.getRowsJS()[0] ?? []).map(Number);
    };
    const mine = await stats(pitPaths(dir).out('build'));
    const reference = await stats(pitPaths(dir).out('sql'));
    const labels = [
      'rows',
      'sum(ts)',
      ...features.flatMap((f) => [
        `count(${f.name})`,
        `${f.numeric ? 'sum' : 'distinct'}(${f.name})`,
      ]),
    ];
    const differ = labels.filter((_, i) => {
      const a = mine[i] as number;
      const b = reference[i] as number;
      return Math.abs(a - b) > 1e-9 * Math.max(1, Math.abs(a), Math.abs(b));
    });
    if (differ.length > 0) {
      throw new Error(
        `Ferry's training set differs from the plain-SQL reference in ${differ
          .map((d) => `${d} (${mine[labels.indexOf(d)]} vs ${reference[labels.indexOf(d)]})`)
          .join(', ')}`,
      );
    }
    return `Ferry's training set matches the plain-SQL reference (rows, and per feature the count of values and their sum, or distinct count for strings)`;
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

function describeCase(r: PitResult): string {
  const hwm =
    r.hwmRss !== null && r.hwmRss > r.peakRss * 1.05 ? ` (kernel high-water ${mb(r.hwmRss)})` : '';
  return (
    `${r.name}: ${r.seconds.toFixed(1)} s, CPU ${r.cpuSeconds.toFixed(1)} s, ` +
    `peak RSS ${mb(r.peakRss)}${hwm}, ${mb(r.peakRss - r.idleRss)} over idle`
  );
}

async function partPit(report: Reporter): Promise<void> {
  report.note(
    `-- 3. point-in-time training set: ${count(PIT_LABELS)} label rows × ${PIT_SETS.length} feature sets of ${count(PIT_EVENTS)} events, ` +
      `${count(PIT_ENTITIES)} entities over ${PIT_DAYS} days; per-label-row figures`,
  );
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ferry-bench-features-pit-'));
  try {
    const generated = await spawnPitCase('generate', dir);
    report.note(
      `generated ${count(PIT_SETS.length * PIT_EVENTS)} events with OfflineStore.append (${count(PIT_CHUNK)} rows per append, ` +
        `partitioned by day) and ${count(PIT_LABELS)} labels in ${generated.seconds.toFixed(1)} s (not timed); ` +
        `vector '${PIT_VECTOR}': ${PIT_SETS.map((s) => `${s.name} ${s.features.length} plain + ${aggregateNames(s).length} windows`).join(', ')}`,
    );
    const results = new Map<PitCase, PitResult>();
    for (const name of ['asof', 'sql', 'build'] as const) {
      const result = await spawnPitCase(name, dir);
      results.set(name, result);
      const row = oneShot(
        {
          asof: `DuckDB ASOF JOIN, labels × 1 set's latest → Parquet`,
          sql: `DuckDB plain SQL, whole vector (3 ASOF + 3 window joins)`,
          build: `FeatureStore.buildTrainingSet → Parquet`,
          generate: '',
        }[name],
        PIT_LABELS,
        [result.seconds],
      );
      if (name === 'asof') report.baseline(row);
      else report.add(row);
      report.note(describeCase(result));
      for (const d of result.details) report.note(`  ${d}`);
    }
    report.note(await compareOutputs(dir));
    const build = results.get('build') as PitResult;
    const peak = Math.max(build.peakRss, build.hwmRss ?? 0);
    report.note(
      `aim < 30 s and < 2 GB: ${build.seconds.toFixed(1)} s (${build.seconds < 30 ? 'met' : 'MISSED'}), ` +
        `peak RSS ${mb(peak)} (${peak < 2 * 1024 * MB ? 'met' : 'MISSED'})`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/* =============================================================================================
 * Entry: the parent runs the parts; `--case <name>` runs one PIT case in this process.
 */

function argument(name: string): string | undefined {
  const at = process.argv.indexOf(name);
  return at >= 0 ? process.argv[at + 1] : undefined;
}

const caseName = argument('--case');
if (caseName !== undefined) {
  if (!(PIT_CASES as readonly string[]).includes(caseName))
    throw new Error(`unknown case '${caseName}'`);
  const dir = argument('--dir') as string;
  const result = await runPitCase(caseName as PitCase, dir);
  writeFileSync(argument('--out') as string, JSON.stringify(result));
} else {
  await runBench(
    'features',
    'the feature store: online lookups, streaming ingestion, point-in-time training sets',
    async (report) => {
      report.note(
        `scale ${SCALE}; parts ${[...SELECTED].join(', ')}; ${os.cpus().length} CPUs, load average ${os.loadavg()[0]?.toFixed(1)} at start`,
      );
      const parts: [Part, (report: Reporter) => Promise<void>][] = [
        ['lookup', partLookups],
        ['ingest', partIngest],
        ['pit', partPit],
      ];
      for (const [part, run] of parts) {
        if (!SELECTED.has(part)) continue;
        await run(report);
        // Other work on the machine slows every row; the ratios to the floors move much less.
        report.note(
          `(load average ${os
            .loadavg()
            .map((l) => l.toFixed(1))
            .join(', ')})`,
        );
      }
    },
  );
}
