/**
 * `ferry serve --workers N` as an operator runs it, with real processes: N workers answer on one
 * port, a worker killed outright is replaced while requests keep succeeding, SIGTERM lets every
 * in-flight request finish before the primary exits 0 (and their predictions reach the inference
 * log), a worker that cannot start stops the whole command with its own error, and workers that
 * keep dying make the primary give up with a clear error. Whichever worker answers `/metrics`
 * answers for all of them; one process (`--workers 1`) answers from its own registry.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tableFromRows, type Table } from '../src/core/table.js';
import { loadProject } from '../src/config/load.js';
import { inferenceLogTable } from '../src/monitoring/inference-log.js';
import { openWorkspace } from '../src/project/workspace.js';
import { startServer } from '../src/serving/start.js';
import { nativeRuntime } from '../src/serving/runtimes/native.js';
import { TOY_SCHEMA, toyRows, toyVersion } from '../src/testing/model-fixture.js';
import { tempDirs } from '../src/testing/temp.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const MAIN = path.join(ROOT, 'src/cli/main.ts');
const TSX = pathToFileURL(path.join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href;

/** A running `ferry serve --workers` and what it has written to stderr so far. */
interface Serve {
  readonly child: ChildProcess;
  stderr(): string;
  /** Resolves with the first match of `pattern` in stderr (rejects if the primary exits first). */
  waitFor(pattern: RegExp): Promise<RegExpExecArray>;
  exited: Promise<number | null>;
}

function serve(project: string, args: readonly string[]): Serve {
  const child = spawn(
    process.execPath,
    ['--import', TSX, MAIN, 'serve', '--project', project, ...args],
    { cwd: project, env: { ...process.env, FERRY_PROJECT: '' } },
  );
  let err = '';
  const waiters: (() => void)[] = [];
  child.stderr?.on('data', (chunk: Buffer) => {
    err += chunk.toString();
    for (const w of waiters.splice(0)) w();
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    child,
    stderr: () => err,
    exited,
    waitFor: (pattern) =>
      new Promise((resolve, reject) => {
        const check = (): void => {
          const match = pattern.exec(err);
          if (match) resolve(match);
          else waiters.push(check);
        };
        void exited.then((code) => reject(new Error(`serve exited with ${code}:\n${err}`)));
        check();
      }),
  };
}

interface InferReply {
  readonly status: number;
  readonly predict?: unknown[];
}

function inferBody(id: string, rows: readonly Record<string, string | number>[]): string {
  return JSON.stringify({
    id,
    inputs: [
      { name: 'x', shape: [rows.length], datatype: 'FP64', data: rows.map((r) => r.x) },
      { name: 'color', shape: [rows.length], datatype: 'BYTES', data: rows.map((r) => r.color) },
    ],
  });
}

/** One inference request on a connection of its own, so replies come from every worker. */
async function infer(
  url: string,
  id: string,
  rows: readonly Record<string, string | number>[],
): Promise<InferReply> {
  const reply = await fetch(`${url}/v2/models/toy/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-request-id': id, connection: 'close' },
    body: inferBody(id, rows),
  });
  const json = (await reply.json()) as { outputs?: { name: string; data: unknown[] }[] };
  return {
    status: reply.status,
    predict: json.outputs?.find((o) => o.name === 'predict')?.data,
  };
}

/** One scrape of `/metrics` on a connection of its own (so scrapes reach every worker). */
async function scrape(url: string): Promise<string> {
  const reply = await fetch(`${url}/metrics`, { headers: { connection: 'close' } });
  expect(reply.status).toBe(200);
  return reply.text();
}

/** `ferry_requests_total` of successful inference requests to `model`, every series summed. */
function inferCount(text: string, model: string): number {
  const series = new RegExp(
    `^ferry_requests_total\\{route="/v2/models/:name/infer",model="${model}",status="200"\\} (\\S+)$`,
    'gm',
  );
  return [...text.matchAll(series)].reduce((sum, m) => sum + Number(m[1]), 0);
}

/**
 * Starts a request whose headers the server has read (it answered `100 Continue`) and whose body
 * is held back: a request in flight for as long as the caller wants. `send()` writes the body.
 */
function heldRequest(
  url: string,
  id: string,
  rows: readonly Record<string, string | number>[],
): Promise<{ send(): Promise<InferReply> }> {
  const body = inferBody(id, rows);
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.request({
      hostname,
      port,
      method: 'POST',
      path: '/v2/models/toy/infer',
      headers: {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
        'x-request-id': id,
        expect: '100-continue',
      },
    });
    const replied = new Promise<InferReply>((done, fail) => {
      req.on('response', (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => {
          const json = JSON.parse(text) as { outputs?: { name: string; data: unknown[] }[] };
          done({
            status: res.statusCode ?? 0,
            predict: json.outputs?.find((o) => o.name === 'predict')?.data,
          });
        });
      });
      req.on('error', fail);
    });
    req.on('error', reject);
    req.on('continue', () =>
      resolve({
        send: () => {
          req.end(body);
          return replied;
        },
      }),
    );
    req.flushHeaders();
  });
}

/** Resolves once nothing accepts connections at the URL's port any more. */
async function refused(url: string): Promise<void> {
  const { hostname, port } = new URL(url);
  for (;;) {
    const accepted = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host: hostname, port: Number(port) });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (!accepted) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('ferry serve --workers', () => {
  const tmp = tempDirs();
  let project: string;
  let expected: (rows: Table) => Promise<unknown[]>;
  const running: Serve[] = [];

  beforeAll(async () => {
    project = tmp.fresh();
    // Small files are merged early, so that merges run while several workers append.
    fs.writeFileSync(
      path.join(project, 'ferry.yaml'),
      'project: workers\nlog_level: warn\noffline_store: { type: parquet, compact_after_files: 2 }\nmonitoring: { flush_interval: 200ms }\n',
    );
    const ws = await openWorkspace(loadProject(project));
    const version = toyVersion(1);
    try {
      await ws.registry.register({ model: 'toy', ...version });
    } finally {
      await ws.close();
    }
    const model = await nativeRuntime.load(version.artifact);
    expected = async (rows) => [...(await model.predict(rows)).predict];
  });

  afterAll(() => {
    for (const s of running) s.child.kill('SIGKILL');
  });

  it('serves on one port, replaces a killed worker, and drains in-flight requests on SIGTERM', async () => {
    const server = serve(project, ['--workers', '2', '--port', '0']);
    running.push(server);
    const ready = await server.waitFor(
      /Serving toy at (http:\/\/\S+) with 2 workers \(pids (\d+), (\d+)\)/,
    );
    const url = ready[1] as string;
    const pids = [Number(ready[2]), Number(ready[3])];
    expect(new Set(pids).size).toBe(2);

    const rows = toyRows(8, 2);
    const want = await expected(tableFromRows(TOY_SCHEMA.slice(0, 2), rows));
    expect(new Set(want).size).toBe(2); // both classes, so a wrong answer shows
    const logged: string[] = [];
    const first = await Promise.all(
      Array.from({ length: 10 }, (_, i) => infer(url, `before-${i}`, rows)),
    );
    for (const reply of first) expect(reply).toEqual({ status: 200, predict: want });

    // Round-robin spreads both the requests and the scrapes over the two workers; every scrape,
    // whichever worker answers it, counts all 10 (a worker's own registry holds about half).
    const scrapes: string[] = [];
    for (let i = 0; i < 4; i++) scrapes.push(await scrape(url));
    for (const text of scrapes) {
      expect(inferCount(text, 'toy')).toBe(first.length);
      expect(text).toContain('ferry_workers{state="ready"} 2');
      expect(text).not.toContain('# ferry: partial');
      // Summed over both workers, once each: two workers' worth of rows, one version line.
      expect(text).toMatch(/^ferry_inference_rows_total\{model="toy"\} 80$/m);
      expect(text.match(/^nodejs_version_info\{/gm)).toHaveLength(1);
    }

    // A worker that does not answer (stopped) counts in a scrape as it last answered, and the
    // scrape says so; the scrape it took itself is answered, complete, once it runs again. (A
    // stopped worker acknowledges no connection, so of two scrapes it takes at most one.)
    const stopped = pids[0] as number;
    process.kill(stopped, 'SIGSTOP');
    const pending = [scrape(url), scrape(url)];
    const partial = await Promise.race(pending);
    process.kill(stopped, 'SIGCONT');
    expect(partial).toMatch(
      new RegExp(
        `^# ferry: partial: left out worker ${stopped} \\(no answer within 1.5 s; its counters as it last sent them\\)$`,
        'm',
      ),
    );
    expect(inferCount(partial, 'toy')).toBe(first.length);
    const complete = (await Promise.all(pending)).filter((t) => !t.includes('# ferry: partial'));
    expect(complete.map((t) => inferCount(t, 'toy'))).toEqual([first.length]);

    // A worker killed outright: the primary says so, forks another, and service goes on.
    const victim = pids[0] as number;
    process.kill(victim, 'SIGKILL');
    const replaced = await server.waitFor(
      new RegExp(`worker ${victim} died \\(signal SIGKILL\\); started worker (\\d+)`),
    );
    const replacement = Number(replaced[1]);
    await server.waitFor(new RegExp(`worker ${replacement} ready`));
    const afterKill = await Promise.all(
      Array.from({ length: 10 }, (_, i) => infer(url, `after-kill-${i}`, rows)),
    );
    for (const reply of afterKill) expect(reply).toEqual({ status: 200, predict: want });
    for (const id of afterKill.keys()) logged.push(`after-kill-${id}`);
    // The killed worker's requests stay counted (as it last sent them, here all of them): a total
    // that went down would read as a counter reset.
    for (let i = 0; i < 4; i++) {
      const text = await scrape(url);
      expect(inferCount(text, 'toy')).toBe(first.length + afterKill.length);
      expect(text).toContain('ferry_workers{state="ready"} 2');
    }

    // Requests the workers have started reading when SIGTERM arrives all finish with a 200.
    const held = await Promise.all(
      Array.from({ length: 12 }, (_, i) => heldRequest(url, `draining-${i}`, rows)),
    );
    server.child.kill('SIGTERM');
    await server.waitFor(/SIGTERM: draining in-flight requests in 2 worker/);
    // Once every worker has closed its server the port refuses new connections; the requests
    // already in flight must still be answered.
    await refused(url);
    const drained = await Promise.all(held.map((h) => h.send()));
    for (const reply of drained) expect(reply).toEqual({ status: 200, predict: want });
    for (const id of drained.keys()) logged.push(`draining-${id}`);
    expect(await server.exited).toBe(0);
    expect(server.stderr()).not.toContain('killing');

    // Every worker flushed its inference log on the way out (the killed one may have lost its
    // last second, so only requests answered after the kill are required).
    const ws = await openWorkspace(loadProject(project));
    try {
      const log = await ws.offline.read(inferenceLogTable('toy'));
      const ids = log.columns.find((c) => c.name === '_request_id')?.values ?? [];
      for (const id of logged) expect(ids.filter((v) => v === id)).toHaveLength(rows.length);
    } finally {
      await ws.close();
    }
  }, 90_000);

  it('answers /metrics from its own registry in one process (--workers 1)', async () => {
    const ws = await openWorkspace(loadProject(project));
    try {
      const server = await startServer(ws, { port: 0, logLevel: 'warn' });
      try {
        const rows = toyRows(3, 4);
        for (let i = 0; i < 3; i++)
          expect((await infer(server.url, `one-${i}`, rows)).status).toBe(200);
        const text = await scrape(server.url);
        expect(inferCount(text, 'toy')).toBe(3);
        expect(text).not.toContain('ferry_workers');
        expect(text).not.toContain('# ferry: partial');
      } finally {
        await server.close();
      }
    } finally {
      await ws.close();
    }
  });

  it('stops with the workers own error when they cannot start', async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const taken = (blocker.address() as net.AddressInfo).port;
    try {
      const server = serve(project, ['--workers', '2', '--port', String(taken)]);
      running.push(server);
      expect(await server.exited).toBe(2);
      const lines = server.stderr().match(/FERRY_ARGUMENT_INVALID: cannot listen/g) ?? [];
      expect(lines).toHaveLength(1);
    } finally {
      await new Promise((r) => blocker.close(r));
    }
  }, 60_000);

  it('gives up when workers keep dying', async () => {
    const server = serve(project, ['--workers', '2', '--port', '0']);
    running.push(server);
    // Kill every worker the primary forks, as soon as it forks it: the crash loop it must stop.
    const killer = setInterval(() => {
      const pids = spawnSync('ps', ['-o', 'pid=', '--ppid', String(server.child.pid)], {
        encoding: 'utf8',
      }).stdout;
      for (const pid of pids.split('\n').map(Number)) {
        try {
          if (pid > 0) process.kill(pid, 'SIGKILL');
        } catch {
          // Already gone.
        }
      }
    }, 100);
    try {
      expect(await server.exited).toBe(1);
    } finally {
      clearInterval(killer);
    }
    expect(server.stderr()).toContain('FERRY_INTERNAL: serve workers keep crashing');
    expect(server.stderr()).toContain('--workers 1');
  }, 60_000);
});
