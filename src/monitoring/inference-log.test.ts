import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../core/logger.js';
import type { Scalar, Table } from '../core/table.js';
import type { OfflineStore, ReadOptions } from '../feature-store/offline/offline-store.js';
import {
  openParquetOfflineStore,
  type ParquetOfflineStore,
} from '../feature-store/offline/parquet.js';
import { createServerMetrics } from '../serving/metrics.js';
import { InferenceLog, inferenceLogTable, type InferenceRecord } from './inference-log.js';

const logger = createLogger({ level: 'silent' });

/** Fault injection over the real store: appends fail while `failing` (or for `failTables`). */
class FlakyStore implements OfflineStore {
  failing = false;
  failTables = new Set<string>();
  appends = 0;
  constructor(private readonly inner: OfflineStore) {}
  get backend(): string {
    return this.inner.backend;
  }
  async append(table: string, data: Table, options?: { timeColumn?: string }): Promise<void> {
    if (this.failing || this.failTables.has(table))
      throw new Error(`injected failure appending to ${table}`);
    this.appends++;
    await this.inner.append(table, data, options);
  }
  read(table: string, options?: ReadOptions): Promise<Table> {
    return this.inner.read(table, options);
  }
  count(table: string): Promise<number> {
    return this.inner.count(table);
  }
  hasTable(table: string): Promise<boolean> {
    return this.inner.hasTable(table);
  }
  listTables(): Promise<string[]> {
    return this.inner.listTables();
  }
  dropTable(table: string): Promise<void> {
    return this.inner.dropTable(table);
  }
  query(sql: string, params?: readonly Scalar[]): Promise<Table> {
    return this.inner.query(sql, params);
  }
  compact(table: string): Promise<{ files: number; compacted: number }> {
    return this.inner.compact(table);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

function entry(i: number, options: { model?: string; rows?: number } = {}): InferenceRecord {
  const rows = options.rows ?? 1;
  const amount: Scalar[] = [];
  const predict: string[] = [];
  const proba = new Float64Array(rows * 2);
  for (let r = 0; r < rows; r++) {
    amount.push(i + r / 10);
    const fraud = (i + r) % 3 === 0;
    predict.push(fraud ? 'fraud' : 'ok');
    proba[2 * r] = fraud ? 0.9 : 0.2;
    proba[2 * r + 1] = fraud ? 0.1 : 0.8;
  }
  return {
    model: options.model ?? 'fraud',
    served: 'fraud-endpoint',
    version: '3',
    requestId: `req-${i}`,
    ts: Date.UTC(2025, 0, 1) + i,
    latencyMs: 1.5,
    features: { rowCount: rows, columns: [{ name: 'amount', type: 'float', values: amount }] },
    prediction: { predict, proba },
    classes: ['fraud', 'ok'],
  };
}

let dir: string;
let parquet: ParquetOfflineStore;
let store: FlakyStore;
const logs: InferenceLog[] = [];

function openLog(options: { maxBufferedRows?: number; stateDir?: string } = {}): InferenceLog {
  const log = new InferenceLog({
    offline: store,
    stateDir: options.stateDir ?? dir,
    flushIntervalMs: 60_000,
    maxBufferedRows: options.maxBufferedRows ?? 1000,
    logger,
  });
  logs.push(log);
  return log;
}

function spillFiles(): string[] {
  const spill = path.join(dir, 'spill');
  return fs.existsSync(spill) ? fs.readdirSync(spill) : [];
}

function values(table: Table, name: string): Scalar[] | undefined {
  return table.columns.find((c) => c.name === name)?.values;
}

beforeEach(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-'));
  parquet = await openParquetOfflineStore({ path: path.join(dir, 'offline') });
  store = new FlakyStore(parquet);
});

afterEach(async () => {
  store.failing = false;
  store.failTables.clear();
  for (const log of logs.splice(0)) await log.close();
  await parquet.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('inferenceLogTable', () => {
  it('lower-cases and reduces model names to [a-z0-9_]', () => {
    expect(inferenceLogTable('Fraud-Model.v2')).toBe('inference_log/fraud_model_v2');
    expect(inferenceLogTable('churn_7')).toBe('inference_log/churn_7');
  });
});

describe('InferenceLog', () => {
  it('writes one row per prediction with the documented columns', async () => {
    const log = openLog();
    log.record(entry(0, { rows: 2 }));
    log.record({
      model: 'Price.V2',
      served: 'price',
      version: '1',
      requestId: 'r-price',
      ts: Date.UTC(2025, 0, 2),
      latencyMs: 0.25,
      features: {
        rowCount: 2,
        columns: [
          { name: 'x', type: 'int', values: [1, null] },
          { name: 'city', type: 'string', values: ['nice', 'lyon'] },
        ],
      },
      prediction: { predict: [12.5, -3] },
    });
    await log.flush();

    const fraud = await store.query('SELECT * FROM {{inference_log/fraud}} ORDER BY amount');
    expect(fraud.columns.map((c) => [c.name, c.type])).toEqual([
      ['_ts', 'timestamp'],
      ['_request_id', 'string'],
      ['_served', 'string'],
      ['_model_version', 'string'],
      ['_latency_ms', 'float'],
      ['amount', 'float'],
      ['_prediction', 'string'],
      ['_score', 'float'],
    ]);
    expect(values(fraud, '_ts')).toEqual([Date.UTC(2025, 0, 1), Date.UTC(2025, 0, 1)]);
    expect(values(fraud, '_request_id')).toEqual(['req-0', 'req-0']);
    expect(values(fraud, '_served')).toEqual(['fraud-endpoint', 'fraud-endpoint']);
    expect(values(fraud, '_model_version')).toEqual(['3', '3']);
    expect(values(fraud, 'amount')).toEqual([0, 0.1]);
    // Row 0 predicts 'fraud' (p = 0.9), row 1 'ok' (p = 0.8): the score is the predicted class's.
    expect(values(fraud, '_prediction')).toEqual(['fraud', 'ok']);
    expect(values(fraud, '_score')).toEqual([0.9, 0.8]);

    const price = await store.query(
      'SELECT * FROM {{inference_log/price_v2}} ORDER BY _prediction',
    );
    expect(price.columns.map((c) => [c.name, c.type])).toEqual([
      ['_ts', 'timestamp'],
      ['_request_id', 'string'],
      ['_served', 'string'],
      ['_model_version', 'string'],
      ['_latency_ms', 'float'],
      ['x', 'int'],
      ['city', 'string'],
      ['_prediction', 'float'],
    ]);
    expect(values(price, '_prediction')).toEqual([-3, 12.5]);
    expect(values(price, 'x')).toEqual([null, 1]);
    expect(log.stats()).toMatchObject({
      recordedRows: 4,
      writtenRows: 4,
      spilledRows: 0,
      droppedRows: 0,
      bufferedRows: 0,
    });
  });

  it('loses nothing under a burst of 10k records with a tiny buffer', async () => {
    const log = openLog({ maxBufferedRows: 50 });
    for (let i = 0; i < 10_000; i++) log.record(entry(i));
    await log.flush();
    const stats = log.stats();
    expect(stats.spilledRows).toBeGreaterThan(0);
    expect(stats.droppedRows).toBe(0);
    expect(stats.writtenRows + stats.replayedRows).toBe(10_000);
    expect(await store.count('inference_log/fraud')).toBe(10_000);
    const ids = await store.query(
      'SELECT count(DISTINCT _request_id) AS n, min(amount) AS lo, max(amount) AS hi FROM {{inference_log/fraud}}',
    );
    expect(values(ids, 'n')).toEqual([10_000]);
    expect(values(ids, 'lo')).toEqual([0]);
    expect(values(ids, 'hi')).toEqual([9999]);
    expect(spillFiles()).toEqual([]);
  });

  it('spills while the store fails and replays once it answers, row for row', async () => {
    const log = openLog();
    store.failing = true;
    for (let i = 0; i < 3; i++) log.record(entry(i * 100, { rows: 100 }));
    await log.flush();
    expect(await store.hasTable('inference_log/fraud')).toBe(false);
    expect(log.stats()).toMatchObject({ spilledRows: 300, writtenRows: 0, droppedRows: 0 });
    expect(spillFiles().filter((f) => f.endsWith('.jsonl'))).toHaveLength(1);

    // Still failing: the next flush leaves the spill where it is.
    log.record(entry(1000, { rows: 5 }));
    await log.flush();
    expect(log.stats()).toMatchObject({ spilledRows: 305, replayedRows: 0 });

    store.failing = false;
    await log.flush();
    expect(await store.count('inference_log/fraud')).toBe(305);
    expect(log.stats()).toMatchObject({ replayedRows: 305, droppedRows: 0 });
    expect(spillFiles()).toEqual([]);
  });

  it('replays what an earlier process spilled when the next one starts', async () => {
    const first = openLog();
    store.failing = true;
    for (let i = 0; i < 12; i++) first.record(entry(i * 10, { rows: 10 }));
    await first.close();
    expect(first.stats().spilledRows).toBe(120);

    store.failing = false;
    const second = openLog();
    expect(await second.recoverSpill()).toBe(120);
    expect(await store.count('inference_log/fraud')).toBe(120);
    expect(spillFiles()).toEqual([]);
  });

  it('replays a partly failing batch without appending any table twice', async () => {
    const log = openLog();
    store.failing = true;
    log.record(entry(0, { model: 'a', rows: 7 }));
    log.record(entry(100, { model: 'b', rows: 11 }));
    await log.flush();
    store.failing = false;
    store.failTables.add('inference_log/b');
    await log.flush();
    expect(await store.count('inference_log/a')).toBe(7);
    expect(await store.hasTable('inference_log/b')).toBe(false);
    store.failTables.clear();
    await log.flush();
    expect(await store.count('inference_log/a')).toBe(7);
    expect(await store.count('inference_log/b')).toBe(11);
    expect(log.stats().replayedRows).toBe(18);
  });

  it('adopts spill files a crashed process had claimed', async () => {
    const first = openLog();
    store.failing = true;
    first.record(entry(0, { rows: 9 }));
    await first.close();
    const [file] = spillFiles();
    const stale = `${file as string}.claimed-${Date.now() - 3_600_000}-999999`;
    fs.renameSync(path.join(dir, 'spill', file as string), path.join(dir, 'spill', stale));

    store.failing = false;
    const second = openLog();
    // An ordinary flush leaves another process's claim alone; recovery at start takes it.
    await second.flush();
    expect(await store.hasTable('inference_log/fraud')).toBe(false);
    expect(await second.recoverSpill()).toBe(9);
    expect(await store.count('inference_log/fraud')).toBe(9);
  });

  it('adopts at once the claim of a process that no longer runs, and leaves a live one alone', async () => {
    const first = openLog();
    store.failing = true;
    first.record(entry(0, { rows: 5 }));
    first.record(entry(10, { rows: 3 }));
    await first.flush();
    first.record(entry(20, { rows: 4 }));
    await first.close();
    const [deadFile, liveFile] = spillFiles().sort();
    expect(liveFile).toBeDefined();
    // A fresh claim by a process that has exited (a killed serve worker), and one by this process.
    const exited = spawnSync(process.execPath, ['-e', '']).pid;
    const spill = path.join(dir, 'spill');
    fs.renameSync(
      path.join(spill, deadFile as string),
      path.join(spill, `${deadFile as string}.claimed-${Date.now()}-${exited}`),
    );
    const live = `${liveFile as string}.claimed-${Date.now()}-${process.pid}`;
    fs.renameSync(path.join(spill, liveFile as string), path.join(spill, live));

    store.failing = false;
    const second = openLog();
    expect(await second.recoverSpill()).toBe(8);
    expect(await store.count('inference_log/fraud')).toBe(8);
    expect(spillFiles()).toEqual([live]);
  });

  it('counts rows as dropped only when the spill fails too, and exports the count', async () => {
    const notADir = path.join(dir, 'state-file');
    fs.writeFileSync(notADir, 'a file where the state folder should be');
    const log = openLog({ stateDir: notADir });
    const metrics = createServerMetrics({ inferenceLog: log, defaultMetrics: false });
    store.failing = true;
    log.record(entry(0, { rows: 7 }));
    await log.flush();
    expect(log.stats()).toMatchObject({ recordedRows: 7, spilledRows: 0, droppedRows: 7 });
    const text = await metrics.registry.metrics();
    expect(text).toContain('ferry_inference_log_dropped_total 7');
    expect(text).toContain('ferry_inference_log_spilled_rows_total 0');

    await log.close();
    log.record(entry(1, { rows: 2 }));
    expect(log.stats().droppedRows).toBe(9);
  });
});
