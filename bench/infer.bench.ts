/**
 * The serving path: from a native predict call to an Open Inference Protocol v2 request over HTTP.
 *
 * Setup: gradient-boosted trees trained with `trainModel` on 20,000 generated rows of 30 numeric
 * inputs and a binary target that depends on them non-linearly (so the trees win selection),
 * registered in a temporary project.
 *
 * Cases:
 * - `LoadedModel.predict` (the native runtime) on 1 row, the baseline: the floor of any path;
 *   and on 100 rows per call, per row;
 * - a full OIP v2 request through the server `ferry serve` builds (`startServer`: registry
 *   catalog, inference log, metrics) with `app.inject()`, in this process, no socket;
 * - the same over real HTTP on 127.0.0.1: `ferry serve` in a process of its own, and `fetch`
 *   (undici, keep-alive) from here at concurrency 1 and 16, after `GET /v2/health/live` as the
 *   floor of HTTP itself. Client and server each get a core of their own, as they would in
 *   production; at 16 the latency includes queueing. Each HTTP row is followed by the CPU both
 *   sides used: `fetch` costs more CPU per request than the server, so once the client's core is
 *   full the throughput is the client's; the server's CPU per request is the figure to watch.
 * Requests use the single `[N, 30]` FP64 tensor layout a numpy client sends.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadProject } from '../src/config/load.js';
import type { LoadedModel } from '../src/core/model.js';
import type { Scalar, Table } from '../src/core/table.js';
import { openWorkspace, type Workspace } from '../src/project/workspace.js';
import { nativeRuntime } from '../src/serving/runtimes/native.js';
import { startServer, type RunningServer } from '../src/serving/start.js';
import { trainModel } from '../src/training/train.js';
import { measureConcurrent, measureLatency } from './measure.js';
import { gbdtData, GBDT_INPUTS } from './data.js';
import { runBench, type Reporter } from './report.js';
import { nativeVersion } from '../src/testing/model-fixture.js';

const ROOT = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const TRAIN_ROWS = 20_000;
const REQUEST_ROWS = 1024;
const BATCH = 100;
const MODEL = 'bench_gbdt';
const HTTP_SECONDS = 3;

function slice(table: Table, start: number, end: number): Table {
  return {
    rowCount: end - start,
    columns: table.columns.map((c) => ({ ...c, values: c.values.slice(start, end) })),
  };
}

/** An OIP v2 body with the rows as one `[N, 30]` FP64 tensor, row-major. */
function oipBody(table: Table): string {
  const data: Scalar[] = [];
  for (let i = 0; i < table.rowCount; i++)
    for (const c of table.columns) data.push(c.values[i] ?? null);
  return JSON.stringify({
    inputs: [{ name: 'x', shape: [table.rowCount, table.columns.length], datatype: 'FP64', data }],
  });
}

interface OipReply {
  outputs: { name: string; data: unknown[] }[];
}

/** Checks that the server's answer is the model's own: otherwise the timings measure nothing. */
function checkReply(text: string, expected: readonly unknown[]): void {
  const reply = JSON.parse(text) as OipReply;
  const got = reply.outputs.find((o) => o.name === 'predict')?.data;
  if (!got || got.length !== expected.length || got.some((v, i) => v !== expected[i])) {
    throw new Error(
      `the server answered ${text.slice(0, 200)}, expected predict ${JSON.stringify(expected)}`,
    );
  }
}

/** `ferry serve` on a free port in a child process; resolves with it and its URL once it listens. */
function spawnServe(projectDir: string): Promise<{ child: ChildProcess; url: string }> {
  const cli = path.join(ROOT, 'src/cli/main.ts');
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', cli, '--project', projectDir, 'serve', '--port', '0'],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  // Should this process die before stopping it (an uncaught error, a closed stdout), take it along.
  const orphanGuard = (): void => void child.kill('SIGKILL');
  process.once('exit', orphanGuard);
  child.once('exit', () => process.off('exit', orphanGuard));
  // The last lines it printed, to explain a failure. Both pipes are drained for its whole life.
  const output: string[] = [];
  const keep = (chunk: Buffer): void => {
    output.push(...chunk.toString('utf8').split('\n').filter(Boolean));
    output.splice(0, Math.max(0, output.length - 30));
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return new Promise((resolve, reject) => {
    const done = (error: Error | null, url?: string): void => {
      clearTimeout(timer);
      child.off('exit', onExit);
      child.stderr?.off('data', onStderr);
      if (error) {
        child.kill('SIGKILL');
        reject(error);
      } else resolve({ child, url: url as string });
    };
    const failure = (why: string): Error => new Error(`ferry serve ${why}:\n${output.join('\n')}`);
    const timer = setTimeout(() => done(failure('did not start within 60 s')), 60_000);
    const onExit = (code: number | null, signal: string | null): void =>
      done(failure(`exited with ${signal ?? `code ${code}`}`));
    const onStderr = (): void => {
      const match = /Serving .* at (http:\/\/\S+)/.exec(output.join('\n'));
      if (match) done(null, match[1]);
    };
    child.on('exit', onExit);
    child.stderr?.on('data', onStderr);
  });
}

/** SIGTERM (ferry serve drains and flushes), then SIGKILL if it is still there after 10 s. */
async function stopServe(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

async function post(url: string, body: string): Promise<string> {
  const res = await fetch(url, {
    method: 'POST',
    body,
    headers: { 'content-type': 'application/json' },
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`POST ${url} answered ${res.status}: ${text}`);
  return text;
}

/** The server process's CPU time so far, from its own `/metrics`. */
async function serverCpuSeconds(base: string): Promise<number> {
  const res = await fetch(`${base}/metrics`);
  const text = await res.text();
  const match = /^process_cpu_seconds_total (\S+)$/m.exec(text);
  return match ? Number(match[1]) : NaN;
}

async function waitReady(url: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const res = await fetch(`${url}/v2/models/${MODEL}/ready`);
    await res.arrayBuffer();
    if (res.status === 200) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`model '${MODEL}' was not ready within 30 s`);
}

/**
 * Trains the model and registers it as `ferry train` would. A function of its own so that the
 * training data is garbage by the time requests are timed: a server's heap does not hold it.
 */
async function trainAndRegister(ws: Workspace, report: Reporter): Promise<Uint8Array> {
  const data = gbdtData(TRAIN_ROWS, 1, true);
  const started = performance.now();
  const trained = await trainModel(data, { target: 'label', seed: 1 });
  const seconds = (performance.now() - started) / 1000;
  if (trained.best !== 'gbdt') {
    throw new Error(`selection chose ${trained.best}, not gbdt: the data no longer favours trees`);
  }
  const rounds = trained.candidates.find((c) => c.name === 'gbdt')?.params.rounds;
  report.note(
    `gbdt on ${TRAIN_ROWS.toLocaleString('en-US')} rows × ${GBDT_INPUTS} inputs: ${rounds} rounds, ` +
      `ROC AUC ${trained.metrics.roc_auc?.toFixed(3)}, artifact ${Math.round(trained.artifact.length / 1024)} KiB, trained in ${seconds.toFixed(1)} s`,
  );
  // The training profile describes the inputs only.
  const inputs: Table = { rowCount: data.rowCount, columns: data.columns.slice(0, GBDT_INPUTS) };
  await ws.registry.register({ model: MODEL, ...nativeVersion(trained, inputs) });
  return trained.artifact;
}

await runBench('infer', 'the serving path (native predict → OIP v2 over HTTP)', async (report) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ferry-bench-infer-'));
  let ws: Workspace | undefined;
  let server: RunningServer | undefined;
  let serve: ChildProcess | undefined;
  try {
    writeFileSync(path.join(dir, 'ferry.yaml'), 'project: bench\nlog_level: warn\n');
    ws = await openWorkspace(loadProject(dir));
    const artifact = await trainAndRegister(ws, report);

    const model: LoadedModel = await nativeRuntime.load(artifact);
    const requests = gbdtData(REQUEST_ROWS, 2, false);
    const singles = Array.from({ length: REQUEST_ROWS }, (_, i) => slice(requests, i, i + 1));
    const batches = Array.from({ length: (REQUEST_ROWS / BATCH) | 0 }, (_, b) =>
      slice(requests, b * BATCH, (b + 1) * BATCH),
    );
    const expected = (await model.predict(requests)).predict;
    const single = (i: number): Table => singles[i % REQUEST_ROWS] as Table;
    const batch = (i: number): Table => batches[i % batches.length] as Table;

    report.baseline(
      await measureLatency('LoadedModel.predict, 1 row', (i) => model.predict(single(i))),
    );
    report.add(
      await measureLatency(
        `LoadedModel.predict, ${BATCH} rows per call (per row)`,
        (i) => model.predict(batch(i)),
        { opsPerCall: BATCH },
      ),
    );

    // In process: the server as `ferry serve` builds it, reached without a socket.
    server = await startServer(ws, { port: 0, logLevel: 'silent' });
    const app = server.app;
    const url = `/v2/models/${MODEL}/infer`;
    const singleBodies = singles.map(oipBody);
    const batchBodies = batches.map(oipBody);
    const inject = async (body: string): Promise<string> => {
      const res = await app.inject({
        method: 'POST',
        url,
        payload: body,
        headers: { 'content-type': 'application/json' },
      });
      if (res.statusCode !== 200) throw new Error(`inject answered ${res.statusCode}: ${res.body}`);
      return res.body;
    };
    checkReply(await inject(singleBodies[7] as string), [expected[7]]);
    checkReply(await inject(batchBodies[1] as string), expected.slice(BATCH, 2 * BATCH));
    report.add(
      await measureLatency('OIP v2 via app.inject, 1 row (in process, no socket)', (i) =>
        inject(singleBodies[i % REQUEST_ROWS] as string),
      ),
    );
    report.add(
      await measureLatency(
        `OIP v2 via app.inject, ${BATCH} rows per request (per row)`,
        (i) => inject(batchBodies[i % batchBodies.length] as string),
        { opsPerCall: BATCH },
      ),
    );
    await server.close();
    server = undefined;
    // `ferry serve` opens the same state folder: this process lets go of it first.
    await ws.close();
    ws = undefined;

    const started = performance.now();
    const running = await spawnServe(dir);
    serve = running.child;
    await waitReady(running.url);
    report.note(
      `ferry serve (own process) listening at ${running.url} after ${((performance.now() - started) / 1000).toFixed(1)} s`,
    );
    const httpUrl = `${running.url}${url}`;
    checkReply(await post(httpUrl, singleBodies[3] as string), [expected[3]]);
    // Client and server CPU over a run tell which side limits it (100% = one core busy).
    const http = async (
      name: string,
      concurrency: number,
      fn: (i: number) => Promise<unknown>,
    ): Promise<void> => {
      const client = process.cpuUsage();
      const serverBefore = await serverCpuSeconds(running.url);
      const wall = performance.now();
      const result = await measureConcurrent(name, fn, {
        concurrency,
        warmupMs: 1000,
        durationMs: HTTP_SECONDS * 1000,
      });
      const seconds = (performance.now() - wall) / 1000;
      const used = process.cpuUsage(client);
      const clientPct = ((used.user + used.system) / 1e6 / seconds) * 100;
      const serverSeconds = (await serverCpuSeconds(running.url)) - serverBefore;
      const serverPct = (serverSeconds / seconds) * 100;
      // Requests during warm-up ran at about the measured rate, so this is per request served.
      const serverUs = (serverSeconds / (result.opsPerSec * seconds)) * 1e6;
      report.add(result);
      report.note(
        `  CPU: client (fetch) ${clientPct.toFixed(0)}%, server ${serverPct.toFixed(0)}% of one core; ` +
          `server CPU ≈ ${serverUs.toFixed(0)} µs per request`,
      );
    };
    // What HTTP and the fetch client cost on their own: a route that does no work.
    const live = `${running.url}/v2/health/live`;
    await http('GET /v2/health/live over HTTP, concurrency 1 (HTTP floor)', 1, async () => {
      const res = await fetch(live);
      await res.arrayBuffer();
      if (res.status !== 200) throw new Error(`GET ${live} answered ${res.status}`);
    });
    for (const concurrency of [1, 16]) {
      await http(
        `OIP v2 over HTTP (ferry serve, fetch), 1 row, concurrency ${concurrency}`,
        concurrency,
        (i) => post(httpUrl, singleBodies[i % REQUEST_ROWS] as string),
      );
    }
  } finally {
    if (serve) await stopServe(serve);
    await server?.close();
    await ws?.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
