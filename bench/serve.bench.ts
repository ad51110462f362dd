/**
 * The server under load (issue 6, "Measured"): requests per second and p50/p99 latency of
 * `ferry serve` driven by autocannon over real HTTP on 127.0.0.1, at concurrency 1, 16 and 64
 * (autocannon connections, each sending its next request when the previous one answers).
 *
 * Every server runs in a child process of its own (this file with `--serve <dir>` or `--floor`),
 * so autocannon's CPU never shares the server's event loop; client and server each get a core,
 * as they would in production. Per concurrency, in this order:
 * - the floor [baseline]: a minimal `node:http` server that reads the request body and answers a
 *   constant JSON (a real reply of the model, so the same bytes travel): what this machine's
 *   HTTP stack and autocannon manage with no work at all;
 * - (a) a gradient-boosting model with 30 numeric inputs over OIP v2
 *   (`POST /v2/models/{name}/infer`, one row as a `[1, 30]` FP64 tensor), on the native runtime,
 *   then the same model exported to ONNX and imported under another name (onnxruntime), then
 *   (concurrency 16 and 64) the native one in a project with `server.batching` on;
 * - (b) the `fraud` endpoint (`enrich` through a feature vector of 5 plain features and 3 window
 *   aggregations over 100,000 events of 10,000 cards, ingested first, then `fraud_gbdt@champion`,
 *   a gbdt trained on generated rows with the vector's feature names): the request carries only
 *   the card (a random one per request); on the SQLite online store, then on Redis;
 * - at concurrency 16, a run against (a) during which a second version is registered (the same
 *   artifact: what is measured is the move) and the `champion` alias moved to it halfway, from
 *   this process's own workspace handle on the project; the server picks it up by polling
 *   (`server.refresh_interval: 200ms`). It reports requests, non-2xx, errors, how many replies
 *   came from each version (`model_version` of each reply) and when the first new one came.
 * Each row is followed by the requests that failed and the CPU both sides used; the aims of the
 * issue are checked at the end. Latency is of each request as autocannon saw it, in µs (its own
 * histogram rounds to whole milliseconds, so the response events are recorded here instead).
 *
 * Durations: `FERRY_BENCH_SECONDS` per run (default 10), after an untimed warm-up of a fifth of
 * that (1 to 2 s) at the same concurrency. Redis at `FERRY_BENCH_REDIS_URL` (default
 * redis://127.0.0.1:6379); when it is down the Redis rows are skipped with a note. Keys written
 * there carry a unique prefix and are removed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { stringify } from 'yaml';
import { loadProject } from '../src/config/load.js';
import type { Column, ColumnType, Scalar, Table } from '../src/core/table.js';
import { nativeRuntime } from '../src/serving/runtimes/native.js';
import { exportOnnx } from '../src/onnx/export.js';
import { importOnnx } from '../src/onnx/import.js';
import { openWorkspace, type Workspace } from '../src/project/workspace.js';
import { decodeNativeModel } from '../src/training/native-model.js';
import { createRng } from '../src/training/random.js';
import { trainModel, type TrainResult } from '../src/training/train.js';
import { percentile, type LatencyResult } from './measure.js';
import { cardFeatures, cardKey, cardProject, COUNTRIES, gbdtData, GBDT_INPUTS } from './data.js';
import { nativeVersion } from '../src/testing/model-fixture.js';
import { reachableUrl } from '../src/testing/services.js';
import { deleteRedisPrefix } from './redis.js';
import { runBench, type Reporter } from './report.js';

const SELF = fileURLToPath(import.meta.url);
const ROOT = path.dirname(path.dirname(SELF));

/** FERRY_BENCH_SECONDS: timed seconds of each load run. */
const SECONDS = ((): number => {
  const raw = process.env.FERRY_BENCH_SECONDS;
  const seconds = raw === undefined || raw === '' ? 10 : Number(raw);
  if (!(Number.isInteger(seconds) && seconds >= 1 && seconds <= 600)) {
    throw new Error(`FERRY_BENCH_SECONDS must be a whole number of seconds (1-600), got '${raw}'`);
  }
  return seconds;
})();
const WARMUP_SECONDS = Math.min(2, Math.max(1, Math.round(SECONDS / 5)));
const CONCURRENCIES = [1, 16, 64] as const;
const REDIS_URL = process.env.FERRY_BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';

const MODEL = 'bench_gbdt';
const ONNX_MODEL = 'bench_gbdt_onnx';
const TRAIN_ROWS = 20_000;
const REQUEST_ROWS = 1024;

const FRAUD_ENDPOINT = 'fraud';
/** Not `fraud`: a registered model and an endpoint of the same name cannot both be served. */
const FRAUD_MODEL = 'fraud_gbdt';
const FRAUD_SET = 'tx';
const FRAUD_VECTOR = 'card_live';
const CARDS = 10_000;
const DAY = 86_400_000;

const count = (n: number): string => Math.round(n).toLocaleString('en-US');
const ms = (us: number): string => (us / 1000).toFixed(2);
const load = (): string =>
  os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(', ');

/* =============================================================================================
 * autocannon: its programmatic API, typed for what this file uses (the package ships no types).
 */

interface CannonRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body: string;
  readonly onResponse?: (status: number, body: string) => void;
}

interface CannonClient {
  setRequests(requests: CannonRequest[]): void;
}

interface CannonOptions {
  readonly url: string;
  readonly connections: number;
  readonly duration: number;
  readonly timeout: number;
  readonly requests: CannonRequest[];
  readonly setupClient?: (client: CannonClient) => void;
}

interface CannonResult {
  readonly errors: number;
  readonly timeouts: number;
  readonly non2xx: number;
  readonly mismatches: number;
  readonly duration: number;
  readonly '2xx': number;
  readonly statusCodeStats: Record<string, { count: number }>;
}

interface CannonInstance extends PromiseLike<CannonResult> {
  on(
    event: 'response',
    listener: (client: unknown, status: number, bytes: number, responseMs: number) => void,
  ): this;
}

const autocannon = createRequire(import.meta.url)('autocannon') as (
  options: CannonOptions,
) => CannonInstance;

interface LoadRun {
  readonly result: LatencyResult;
  /** Responses other than 2xx; connection errors, of which timeouts (autocannon counts both). */
  readonly non2xx: number;
  readonly errors: number;
  readonly timeouts: number;
  readonly ok: number;
  readonly statusCodes: Record<string, number>;
  /** CPU of the server process and of this one (autocannon), % of one core. */
  readonly serverCpuPct: number;
  readonly clientCpuPct: number;
  /** Server CPU per answered request, µs. */
  readonly serverCpuUs: number;
}

interface LoadTarget {
  readonly name: string;
  readonly server: ServerChild;
  readonly path: string;
  /** Request bodies; each connection cycles through them from its own starting point. */
  readonly bodies: readonly string[];
  readonly concurrency: number;
  readonly onResponse?: (status: number, body: string) => void;
  /** Called once the timed run has started. */
  readonly during?: () => void;
}

const JSON_HEADERS = { 'content-type': 'application/json' };

function cannon(target: LoadTarget, seconds: number, record: boolean): CannonInstance {
  const requests = (offset: number): CannonRequest[] =>
    target.bodies.map((_, i) => ({
      method: 'POST',
      path: target.path,
      headers: JSON_HEADERS,
      body: target.bodies[(i + offset) % target.bodies.length] as string,
      ...(record && target.onResponse ? { onResponse: target.onResponse } : {}),
    }));
  let client = 0;
  return autocannon({
    url: target.server.url,
    connections: target.concurrency,
    duration: seconds,
    timeout: 10,
    requests: requests(0),
    // Connections start at different places in the bodies, so they do not ask the same at once.
    setupClient: (c) => c.setRequests(requests((client++ * 7919) % target.bodies.length)),
  });
}

/** Response times of the run in progress, µs; one buffer for every run. */
const latencies = new Float64Array(4_000_000);

/** An untimed warm-up, then a timed run of SECONDS; latency recorded per 2xx response. */
async function runLoad(target: LoadTarget): Promise<LoadRun> {
  await cannon(target, WARMUP_SECONDS, false);
  // The warm-up's last requests may still be running on the server when its connections close.
  await new Promise((resolve) => setTimeout(resolve, 250));
  let n = 0;
  const serverBefore = await target.server.cpuSeconds();
  const clientBefore = process.cpuUsage();
  const wall = performance.now();
  const instance = cannon(target, SECONDS, true);
  instance.on('response', (_client, status, _bytes, responseMs) => {
    if (status >= 200 && status < 300 && n < latencies.length) latencies[n++] = responseMs * 1000;
  });
  target.during?.();
  const out = await instance;
  const seconds = (performance.now() - wall) / 1000;
  const used = process.cpuUsage(clientBefore);
  const serverSeconds = (await target.server.cpuSeconds()) - serverBefore;
  const sorted = latencies.subarray(0, n).sort();
  let total = 0;
  for (const d of sorted) total += d;
  const ok = out['2xx'];
  const statusCodes: Record<string, number> = {};
  for (const [code, stats] of Object.entries(out.statusCodeStats))
    statusCodes[code] = Number(stats.count);
  return {
    result: {
      name: target.name,
      samples: n,
      opsPerCall: 1,
      concurrency: target.concurrency,
      p50Us: percentile(sorted, 0.5),
      p99Us: percentile(sorted, 0.99),
      meanUs: n === 0 ? NaN : total / n,
      opsPerSec: ok / out.duration,
    },
    non2xx: out.non2xx,
    errors: out.errors,
    timeouts: out.timeouts,
    ok,
    statusCodes,
    serverCpuPct: (serverSeconds / seconds) * 100,
    clientCpuPct: ((used.user + used.system) / 1e6 / seconds) * 100,
    serverCpuUs: ok > 0 ? (serverSeconds / ok) * 1e6 : NaN,
  };
}

function describeRun(run: LoadRun): string {
  const failed = run.non2xx + run.errors;
  const codes =
    run.non2xx > 0
      ? ` (${Object.entries(run.statusCodes)
          .filter(([c]) => !c.startsWith('2'))
          .map(([c, k]) => `${c}: ${k}`)
          .join(', ')})`
      : '';
  return (
    `  ${count(run.ok)} answered, ${failed === 0 ? 'none failed' : `FAILED: non-2xx ${run.non2xx}${codes}, errors ${run.errors} (of which timeouts ${run.timeouts})`}; ` +
    `CPU: server ${run.serverCpuPct.toFixed(0)}% of a core (${run.serverCpuUs.toFixed(0)} µs per request), client ${run.clientCpuPct.toFixed(0)}%`
  );
}

/* =============================================================================================
 * Server processes: this file with `--serve <dir>` (startServer over a project) or `--floor`.
 */

interface ServerChild {
  readonly url: string;
  /** User + system CPU the process has used so far, in seconds. */
  cpuSeconds(): Promise<number>;
  stop(): Promise<void>;
}

type ChildMessage = { url: string } | { cpu: NodeJS.CpuUsage } | { error: string };

function spawnServer(args: string[], label: string): Promise<ServerChild> {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', SELF, ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  // Should this process die before stopping it, take it along.
  const orphanGuard = (): void => void child.kill('SIGKILL');
  process.once('exit', orphanGuard);
  child.once('exit', () => process.off('exit', orphanGuard));
  const next = (): Promise<ChildMessage> =>
    new Promise((resolve, reject) => {
      const onMessage = (m: ChildMessage): void => {
        child.off('exit', onExit);
        resolve(m);
      };
      const onExit = (code: number | null, signal: string | null): void => {
        child.off('message', onMessage);
        reject(new Error(`${label} exited with ${signal ?? `code ${code}`}`));
      };
      child.once('message', onMessage);
      child.once('exit', onExit);
    });
  const started = next();
  const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
  return started
    .then((m) => {
      clearTimeout(timer);
      if ('error' in m) throw new Error(`${label} failed to start: ${m.error}`);
      if (!('url' in m)) throw new Error(`${label} sent ${JSON.stringify(m)} before its URL`);
      // Requests for CPU go one at a time, so each answer is the one asked for.
      let queue: Promise<unknown> = Promise.resolve();
      return {
        url: m.url,
        cpuSeconds: () => {
          const asked = queue.then(async () => {
            const answer = next();
            child.send('cpu');
            const reply = await answer;
            if (!('cpu' in reply)) throw new Error(`${label} answered ${JSON.stringify(reply)}`);
            return (reply.cpu.user + reply.cpu.system) / 1e6;
          });
          queue = asked.catch(() => undefined);
          return asked;
        },
        stop: async () => {
          if (child.exitCode !== null || child.signalCode !== null) return;
          const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
          child.kill('SIGTERM');
          const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
          await exited;
          clearTimeout(kill);
        },
      };
    })
    .catch((error: unknown) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      throw error;
    });
}

/** What both kinds of child do: report the URL, answer CPU questions, close on SIGTERM. */
function serveChild(url: string, close: () => Promise<void>): void {
  const send = (m: ChildMessage): void => void process.send?.(m);
  process.on('message', (m) => {
    if (m === 'cpu') send({ cpu: process.cpuUsage() });
  });
  let closing = false;
  const stop = (): void => {
    if (closing) return;
    closing = true;
    void close().finally(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('disconnect', stop);
  send({ url });
}

async function childServe(dir: string): Promise<void> {
  // Imported here: the parent process never loads the server.
  const { startServer } = await import('../src/serving/start.js');
  const ws = await openWorkspace(loadProject(dir));
  try {
    const server = await startServer(ws, { port: 0, logLevel: 'silent' });
    serveChild(server.url, async () => {
      await server.close();
      await ws.close();
    });
  } catch (error) {
    await ws.close();
    throw error;
  }
}

/** The floor: reads each request's body, answers the same JSON, nothing else. */
async function childFloor(reply: string): Promise<void> {
  const body = Buffer.from(reply);
  const server = http.createServer((req, res) => {
    req.on('data', () => undefined);
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
      res.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  serveChild(
    `http://127.0.0.1:${port}`,
    () => new Promise((resolve) => server.close(() => resolve())),
  );
}

/* =============================================================================================
 * (a) The 30-input gradient-boosting model, as bench/infer.bench.ts trains it.
 */

/** One OIP v2 body per row, each a `[1, 30]` FP64 tensor as a numpy client sends it. */
function rowBodies(table: Table): string[] {
  return Array.from({ length: table.rowCount }, (_, i) =>
    JSON.stringify({
      inputs: [
        {
          name: 'x',
          shape: [1, table.columns.length],
          datatype: 'FP64',
          data: table.columns.map((c) => c.values[i] ?? null),
        },
      ],
    }),
  );
}

async function trainGbdt(
  data: Table,
  target: string,
  what: string,
  report: Reporter,
): Promise<TrainResult> {
  const started = performance.now();
  const trained = await trainModel(data, { target, seed: 1, models: ['gbdt'], cv: 1 });
  const rounds = trained.candidates.find((c) => c.name === 'gbdt')?.params.rounds;
  report.note(
    `${what}: gbdt on ${count(data.rowCount)} rows × ${data.columns.length - 1} inputs, ${rounds} rounds, ` +
      `ROC AUC ${trained.metrics.roc_auc?.toFixed(3)}, artifact ${Math.round(trained.artifact.length / 1024)} KiB, ` +
      `trained in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
  return trained;
}

function registerNative(
  ws: Workspace,
  model: string,
  trained: TrainResult,
  inputs: Table,
): ReturnType<Workspace['registry']['register']> {
  return ws.registry.register({ model, ...nativeVersion(trained, inputs) });
}

/** Writes ferry.yaml into a fresh folder and returns the folder. */
function project(spec: Record<string, unknown>, tag: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), `ferry-bench-serve-${tag}-`));
  writeFileSync(path.join(dir, 'ferry.yaml'), stringify(spec));
  return dir;
}

interface OipReply {
  readonly model_version?: string;
  readonly outputs?: { name: string; data: unknown[] }[];
}

async function post(url: string, body: string): Promise<{ status: number; text: string }> {
  const res = await fetch(url, { method: 'POST', body, headers: JSON_HEADERS });
  return { status: res.status, text: await res.text() };
}

/** Checks the server answers `body` with `expected` as `predict`: wrong answers fast are no result. */
async function checkPredict(
  url: string,
  body: string,
  expected: unknown,
  what: string,
): Promise<string> {
  const { status, text } = await post(url, body);
  const got = (JSON.parse(text) as OipReply).outputs?.find((o) => o.name === 'predict')?.data;
  if (status !== 200 || got?.length !== 1 || (expected !== undefined && got[0] !== expected)) {
    throw new Error(
      `${what} answered ${status} ${text.slice(0, 300)}; expected predict [${String(expected)}]`,
    );
  }
  return text;
}

/* =============================================================================================
 * (b) The fraud endpoint: cards' events in the online store, enriched, then a model.
 */

const FRAUD_FEATURES = cardFeatures('amount', 'items', 'merchant_risk', 'device_score', 'country');

function fraudSpec(onlineStore: Record<string, unknown>): Record<string, unknown> {
  return {
    project: 'bench_serve_fraud',
    log_level: 'warn',
    online_store: onlineStore,
    ...cardProject(FRAUD_SET, FRAUD_VECTOR, FRAUD_FEATURES),
    endpoints: [
      {
        name: FRAUD_ENDPOINT,
        steps: [
          { kind: 'enrich', vector: FRAUD_VECTOR },
          { kind: 'model', model: `${FRAUD_MODEL}@champion` },
        ],
      },
    ],
  };
}

/** 5 to 15 events per card in (at - 1d, at], skewed towards `at` so the short windows are not empty. */
function fraudEvents(at: number, seed: number): Table {
  const random = createRng(seed);
  const keys: Scalar[] = [];
  const ts: Scalar[] = [];
  const values: Scalar[][] = FRAUD_FEATURES.map(() => []);
  for (let card = 0; card < CARDS; card++) {
    const n = 5 + Math.floor(random() * 11);
    const times = new Set<number>();
    while (times.size < n) times.add(at - Math.floor(DAY * random() ** 2));
    for (const t of times) {
      keys.push(cardKey(card));
      ts.push(t);
      FRAUD_FEATURES.forEach((f, j) => (values[j] as Scalar[]).push(f.draw(random)));
    }
  }
  return {
    rowCount: keys.length,
    columns: [
      { name: 'card_id', type: 'string', values: keys },
      { name: 'ts', type: 'timestamp', values: ts },
      ...FRAUD_FEATURES.map((f, j) => ({
        name: f.name,
        type: f.type,
        values: values[j] as Scalar[],
      })),
    ],
  };
}

/**
 * Training rows with the vector's feature names and types and a label that depends on them: the
 * model's inputs are what the enrich step gives it.
 */
function fraudTraining(
  features: readonly { readonly name: string; readonly type: ColumnType }[],
  rows: number,
): Table {
  const random = createRng(7);
  const columns: Column[] = features.map((f) => ({ name: f.name, type: f.type, values: [] }));
  const label: Scalar[] = [];
  for (let i = 0; i < rows; i++) {
    let score = -1;
    columns.forEach((c, j) => {
      const u = random();
      const sign = j % 2 === 0 ? 1 : -1;
      let value: Scalar;
      switch (c.type) {
        case 'int':
          value = Math.floor(u * 10);
          break;
        case 'bool':
          value = u < 0.1;
          break;
        case 'string':
          value = COUNTRIES[Math.floor(u * COUNTRIES.length)] ?? 'FR';
          break;
        default:
          value = Math.round(Math.exp(u * 7) * 100) / 100;
      }
      score += sign * (u - 0.5) * 2;
      c.values.push(value);
    });
    label.push(random() < 1 / (1 + Math.exp(-2 * score)) ? 1 : 0);
  }
  return {
    rowCount: rows,
    columns: [...columns, { name: 'is_fraud', type: 'int', values: label }],
  };
}

/** Deletes the benchmark's keys under `prefix` on the benchmark's Redis. */
async function deleteRedisKeys(prefix: string): Promise<number> {
  const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  try {
    return await deleteRedisPrefix(redis, prefix);
  } finally {
    redis.disconnect();
  }
}

interface FraudProject {
  readonly dir: string;
  readonly label: string;
}

/**
 * A fraud project on one online store: the events ingested, the model registered. The workspace
 * is closed again: the server process opens its own.
 */
async function prepareFraud(
  label: string,
  onlineStore: Record<string, unknown>,
  events: Table,
  model: { trained: TrainResult; inputs: Table } | null,
  report: Reporter,
): Promise<{ project: FraudProject; model: { trained: TrainResult; inputs: Table } }> {
  const dir = project(fraudSpec(onlineStore), `fraud-${label.toLowerCase()}`);
  const ws = await openWorkspace(loadProject(dir));
  try {
    const started = performance.now();
    const ingested = await ws.features.ingest(FRAUD_SET, { table: events });
    if (ingested.written !== events.rowCount) {
      throw new Error(`${label}: ingested ${ingested.written} of ${events.rowCount} events`);
    }
    report.note(
      `fraud on ${label}: ${count(CARDS)} cards, ${count(ingested.written)} events ingested with FeatureStore.ingest in ${((performance.now() - started) / 1000).toFixed(1)} s`,
    );
    let ready = model;
    if (ready === null) {
      const data = fraudTraining(ws.features.vectorFeatures(FRAUD_VECTOR), TRAIN_ROWS);
      const trained = await trainGbdt(data, 'is_fraud', `model '${FRAUD_MODEL}'`, report);
      ready = { trained, inputs: { ...data, columns: data.columns.slice(0, -1) } };
    }
    await registerNative(ws, FRAUD_MODEL, ready.trained, ready.inputs);
    return { project: { dir, label }, model: ready };
  } finally {
    await ws.close();
  }
}

/** The endpoint's OIP signature, and one body per card: `card_id` only, as a BYTES tensor. */
async function fraudBodies(
  server: ServerChild,
  label: string,
  report: Reporter,
): Promise<string[]> {
  const res = await fetch(`${server.url}/v2/models/${FRAUD_ENDPOINT}`);
  const meta = (await res.json()) as {
    inputs?: { name: string; datatype: string; shape: number[] }[];
  };
  if (res.status !== 200 || !meta.inputs?.some((i) => i.name === 'card_id')) {
    throw new Error(
      `${label}: GET /v2/models/${FRAUD_ENDPOINT} answered ${res.status} ${JSON.stringify(meta)}`,
    );
  }
  report.note(
    `fraud on ${label}: endpoint inputs ${meta.inputs.map((i) => `${i.name} ${i.datatype}`).join(', ')}`,
  );
  const random = createRng(11);
  const bodies = Array.from({ length: 4096 }, () =>
    JSON.stringify({
      inputs: [
        {
          name: 'card_id',
          shape: [1],
          datatype: 'BYTES',
          data: [cardKey(Math.floor(random() * CARDS))],
        },
      ],
    }),
  );
  await checkPredict(
    `${server.url}/v2/models/${FRAUD_ENDPOINT}/infer`,
    bodies[0] as string,
    undefined,
    `fraud on ${label}`,
  );
  return bodies;
}

/* =============================================================================================
 * The benchmark.
 */

interface Case {
  readonly name: string;
  readonly server: ServerChild;
  readonly path: string;
  readonly bodies: readonly string[];
  readonly concurrencies: readonly number[];
}

/** Per case and concurrency, the run: for the aims at the end. */
type Runs = Map<string, Map<number, LoadRun>>;

function keep(runs: Runs, name: string, concurrency: number, run: LoadRun): void {
  let byConcurrency = runs.get(name);
  if (!byConcurrency) runs.set(name, (byConcurrency = new Map()));
  byConcurrency.set(concurrency, run);
}

/**
 * At concurrency 16 against the native model: halfway through, registers another version and
 * moves `champion` to it; counts replies per `model_version`.
 */
async function swapUnderLoad(
  ws: Workspace,
  server: ServerChild,
  bodies: readonly string[],
  trained: TrainResult,
  inputs: Table,
  report: Reporter,
): Promise<LoadRun> {
  // Everything the new version needs is ready before the run: the move itself is two writes.
  const record = nativeVersion(trained, inputs);
  const byVersion = new Map<string, number>();
  let movedAt = 0;
  let firstNewAt = 0;
  let newVersion = '';
  let moveError: unknown;
  const run = await runLoad({
    name: `swap under load (a) native, alias moved, concurrency 16`,
    server,
    path: `/v2/models/${MODEL}/infer`,
    bodies,
    concurrency: 16,
    onResponse: (status, body) => {
      if (status !== 200) return;
      const version = /"model_version":"([^"]*)"/.exec(body)?.[1] ?? '(none)';
      byVersion.set(version, (byVersion.get(version) ?? 0) + 1);
      if (version === newVersion && firstNewAt === 0) firstNewAt = performance.now();
    },
    during: () => {
      setTimeout(
        () => {
          void (async () => {
            const { version } = await ws.registry.register({ ...record, model: MODEL });
            newVersion = String(version.version);
            await ws.registry.setAlias(MODEL, 'champion', version.version);
            movedAt = performance.now();
          })().catch((error: unknown) => (moveError = error));
        },
        (SECONDS * 1000) / 2,
      );
    },
  });
  if (moveError !== undefined) throw moveError;
  report.add(run.result);
  report.note(describeRun(run));
  const versions = [...byVersion]
    .sort(([a], [b]) => Number(a) - Number(b))
    .map(([v, k]) => `v${v}: ${count(k)}`)
    .join(', ');
  const failed = run.non2xx + run.errors;
  report.note(
    `  swap: ${count(run.ok + run.non2xx + run.errors)} requests, non-2xx ${run.non2xx}, errors ${run.errors} (of which timeouts ${run.timeouts}) ` +
      `(aim: zero failed, ${failed === 0 ? 'met' : 'MISSED'}); replies by version: ${versions}; ` +
      (firstNewAt > 0
        ? `first reply from v${newVersion} ${((firstNewAt - movedAt) / 1000).toFixed(2)} s after the alias moved`
        : `NO reply came from v${newVersion || '?'}: the server did not pick up the alias move (does it poll server.refresh_interval?)`),
  );
  return run;
}

async function bench(report: Reporter): Promise<void> {
  report.note(
    `${SECONDS} s per run after ${WARMUP_SECONDS} s of warm-up; ${os.cpus().length} CPUs (${os.cpus()[0]?.model.trim() ?? '?'}), ` +
      `load average ${load()} at start; servers in child processes, autocannon ${createRequire(import.meta.url)('autocannon/package.json').version as string} in this one`,
  );
  const dirs: string[] = [];
  const servers: ServerChild[] = [];
  const redisPrefix = `ferry_bench_serve_${randomBytes(6).toString('hex')}`;
  let redisUsed = false;
  let ws: Workspace | undefined;
  try {
    // (a): the model project, its native model, the ONNX export of it.
    const modelDir = project(
      { project: 'bench_serve', log_level: 'warn', server: { refresh_interval: '200ms' } },
      'model',
    );
    dirs.push(modelDir);
    ws = await openWorkspace(loadProject(modelDir));
    const data = gbdtData(TRAIN_ROWS, 1, true);
    const inputs: Table = { rowCount: data.rowCount, columns: data.columns.slice(0, GBDT_INPUTS) };
    const trained = await trainGbdt(data, 'label', `model '${MODEL}'`, report);
    await registerNative(ws, MODEL, trained, inputs);
    const onnx = exportOnnx(decodeNativeModel(trained.artifact));
    await importOnnx(onnx, { registry: ws.registry, name: ONNX_MODEL });
    report.note(
      `'${ONNX_MODEL}': the same model exported to ONNX (${Math.round(onnx.length / 1024)} KiB), imported with importOnnx`,
    );

    // The same model where the server micro-batches concurrent predictions.
    const batchedDir = project(
      {
        project: 'bench_serve_batched',
        log_level: 'warn',
        server: { batching: { max_batch_rows: 32, max_wait_us: 200 } },
      },
      'batched',
    );
    dirs.push(batchedDir);
    const batchedWs = await openWorkspace(loadProject(batchedDir));
    try {
      await registerNative(batchedWs, MODEL, trained, inputs);
    } finally {
      await batchedWs.close();
    }
    report.note(
      `batching rows: the same model in a project with server.batching { max_batch_rows: 32, max_wait_us: 200 }; ` +
        `a server that does not apply the setting repeats the native rows`,
    );

    const requests = gbdtData(REQUEST_ROWS, 2, false);
    const bodies = rowBodies(requests);
    const expected = (await (await nativeRuntime.load(trained.artifact)).predict(requests)).predict;

    // (b): the fraud projects, on SQLite and (when it is up) on Redis.
    const events = fraudEvents(Date.now(), 3);
    const sqliteFraud = await prepareFraud('SQLite', { type: 'sqlite' }, events, null, report);
    dirs.push(sqliteFraud.project.dir);
    const fraudProjects = [sqliteFraud.project];
    if (await reachableUrl(REDIS_URL, 6379)) {
      redisUsed = true;
      const redisFraud = await prepareFraud(
        'Redis',
        { type: 'redis', url: REDIS_URL, key_prefix: redisPrefix },
        events,
        sqliteFraud.model,
        report,
      );
      dirs.push(redisFraud.project.dir);
      fraudProjects.push(redisFraud.project);
    } else {
      report.note(`fraud on Redis skipped: Redis is not reachable at ${REDIS_URL}`);
    }

    // The servers, each in a process of its own, all up before any run.
    const started = performance.now();
    const modelServer = await spawnServer(['--serve', modelDir], 'the model server');
    servers.push(modelServer);
    const batchedServer = await spawnServer(['--serve', batchedDir], 'the batching server');
    servers.push(batchedServer);
    const fraudServers = new Map<string, ServerChild>();
    for (const p of fraudProjects) {
      const server = await spawnServer(['--serve', p.dir], `the fraud server (${p.label})`);
      servers.push(server);
      fraudServers.set(p.label, server);
    }
    const inferUrl = (server: ServerChild, model: string): string =>
      `${server.url}/v2/models/${model}/infer`;
    const reply = await checkPredict(
      inferUrl(modelServer, MODEL),
      bodies[3] as string,
      expected[3],
      MODEL,
    );
    await checkPredict(
      inferUrl(modelServer, ONNX_MODEL),
      bodies[3] as string,
      expected[3],
      ONNX_MODEL,
    );
    await checkPredict(
      inferUrl(batchedServer, MODEL),
      bodies[3] as string,
      expected[3],
      `${MODEL} (batching)`,
    );
    const floor = await spawnServer(['--floor', reply], 'the floor server');
    servers.push(floor);
    report.note(
      `${servers.length} servers up in ${((performance.now() - started) / 1000).toFixed(1)} s; the floor answers ${reply.length} bytes, a real reply of '${MODEL}'`,
    );

    const cases: Case[] = [
      {
        name: '(a) gbdt, native runtime',
        server: modelServer,
        path: `/v2/models/${MODEL}/infer`,
        bodies,
        concurrencies: CONCURRENCIES,
      },
      {
        name: '(a) gbdt, ONNX runtime',
        server: modelServer,
        path: `/v2/models/${ONNX_MODEL}/infer`,
        bodies,
        concurrencies: CONCURRENCIES,
      },
      {
        name: '(a) gbdt, native, batching 32 rows/200 µs',
        server: batchedServer,
        path: `/v2/models/${MODEL}/infer`,
        bodies,
        concurrencies: [16, 64],
      },
    ];
    for (const p of fraudProjects) {
      const server = fraudServers.get(p.label) as ServerChild;
      cases.push({
        name: `(b) fraud endpoint, ${p.label}`,
        server,
        path: `/v2/models/${FRAUD_ENDPOINT}/infer`,
        bodies: await fraudBodies(server, p.label, report),
        concurrencies: CONCURRENCIES,
      });
    }

    const runs: Runs = new Map();
    const floorName = 'floor: node:http, constant JSON';
    for (const concurrency of CONCURRENCIES) {
      report.note(`-- concurrency ${concurrency} (load average ${load()})`);
      const floorRun = await runLoad({
        name: `${floorName}, concurrency ${concurrency}`,
        server: floor,
        path: `/v2/models/${MODEL}/infer`,
        bodies,
        concurrency,
      });
      report.baseline(floorRun.result);
      report.note(describeRun(floorRun));
      keep(runs, floorName, concurrency, floorRun);
      for (const c of cases) {
        if (!c.concurrencies.includes(concurrency)) continue;
        const run = await runLoad({
          name: `${c.name}, concurrency ${concurrency}`,
          server: c.server,
          path: c.path,
          bodies: c.bodies,
          concurrency,
        });
        report.add(run.result);
        report.note(describeRun(run));
        keep(runs, c.name, concurrency, run);
      }
      if (concurrency === 16) {
        const swap = await swapUnderLoad(ws, modelServer, bodies, trained, inputs, report);
        keep(runs, 'swap', 16, swap);
      }
    }
    report.note(`(load average ${load()} at the end)`);

    // The aims of the issue, at concurrency 16.
    const floor16 = runs.get(floorName)?.get(16);
    for (const c of cases) {
      const run = runs.get(c.name)?.get(16);
      if (!run || !floor16) continue;
      const share = run.result.opsPerSec / floor16.result.opsPerSec;
      const p99 = run.result.p99Us;
      if (c.name.startsWith('(a)')) {
        report.note(
          `aim (a) at 16, ${c.name}: ${(share * 100).toFixed(0)}% of the floor's throughput (≥ 60%: ${share >= 0.6 ? 'met' : 'MISSED'}), ` +
            `p99 ${ms(p99)} ms (< 2 ms: ${p99 < 2000 ? 'met' : 'MISSED'})`,
        );
      } else {
        report.note(
          `aim (b) at 16, ${c.name}: p99 ${ms(p99)} ms (< 3 ms: ${p99 < 3000 ? 'met' : 'MISSED'}); ` +
            `${(share * 100).toFixed(0)}% of the floor's throughput`,
        );
      }
    }
  } finally {
    await Promise.allSettled(servers.map((s) => s.stop()));
    await ws?.close();
    if (redisUsed) {
      const removed = await deleteRedisKeys(redisPrefix);
      report.note(`removed ${count(removed)} Redis keys under ${redisPrefix}`);
    }
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  }
}

/* =============================================================================================
 * Entry: the parent runs the benchmark; `--serve <dir>` and `--floor <reply>` are its servers.
 */

function argument(name: string): string | undefined {
  const at = process.argv.indexOf(name);
  return at >= 0 ? process.argv[at + 1] : undefined;
}

const serveDir = argument('--serve');
const floorReply = argument('--floor');
if (serveDir !== undefined) {
  await childServe(serveDir).catch((error: unknown) => {
    process.send?.({
      error: error instanceof Error ? (error.stack ?? error.message) : String(error),
    });
    process.exitCode = 1;
  });
} else if (floorReply !== undefined) {
  await childFloor(floorReply);
} else {
  await runBench(
    'serve',
    'the server under load (autocannon over HTTP, 1/16/64 connections)',
    bench,
  );
}
