/**
 * What `ferry serve` bounds and batches, through a real server on a real workspace: the in-flight
 * limit answers 503 at once instead of queueing, an endpoint's time limit answers 504, and
 * configured micro-batching merges concurrent requests into fewer prediction calls without
 * changing any answer.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadProject } from '../config/load.js';
import type { Scalar, Table } from '../core/table.js';
import { openWorkspace, type Workspace } from '../project/workspace.js';
import { tempDirs } from '../testing/temp.js';
import { registerTrained } from '../testing/model-fixture.js';
import { startServer, type RunningServer } from './start.js';

const YAML = `
project: limits-test
log_level: silent
server: { max_in_flight: 2 }
endpoints:
  - name: gated
    timeout: 5s
    inputs: { x: float }
    steps:
      - { kind: custom, module: gate.mjs, outputs: { opened: bool } }
      - { kind: model, model: line }
  - name: hung
    timeout: 150ms
    inputs: { x: float }
    steps:
      - { kind: custom, module: gate.mjs, export: never, outputs: { opened: bool } }
      - { kind: model, model: line }
`;

/** Holds requests until the test opens the gate (the module reads it from globalThis). */
const GATE = `
export default async function gate(records) {
  await globalThis.ferryTestGate;
  for (const r of records) r.opened = true;
}
export function never() {
  return new Promise(() => {});
}
`;

interface Gate {
  ferryTestGate?: Promise<void>;
}

const BATCHING_YAML = `
project: batching-test
log_level: silent
server:
  batching: { max_batch_rows: 1, max_wait_us: 0, models: { line: { max_batch_rows: 64, max_wait_us: 3000 } } }
`;

const dirs = tempDirs();
let ws: Workspace;
let server: RunningServer;
let batchingWs: Workspace;
let batching: RunningServer;

function lineTable(): Table {
  const x: Scalar[] = [];
  const y: Scalar[] = [];
  for (let i = 0; i < 200; i++) {
    x.push(i);
    y.push(3 * i - 7);
  }
  return {
    rowCount: 200,
    columns: [
      { name: 'x', type: 'float', values: x },
      { name: 'y', type: 'float', values: y },
    ],
  };
}

async function serve(yaml: string): Promise<[Workspace, RunningServer]> {
  const dir = dirs.fresh();
  writeFileSync(path.join(dir, 'ferry.yaml'), yaml);
  writeFileSync(path.join(dir, 'gate.mjs'), GATE);
  const workspace = await openWorkspace(loadProject(dir));
  await registerTrained(workspace.registry, 'line', lineTable(), { target: 'y' });
  return [workspace, await startServer(workspace, { port: 0, logLevel: 'silent' })];
}

beforeAll(async () => {
  [ws, server] = await serve(YAML);
  [batchingWs, batching] = await serve(BATCHING_YAML);
});

afterAll(async () => {
  await server.close();
  await ws.close();
  await batching.close();
  await batchingWs.close();
});

const post = (route: string, body: unknown, to = server): Promise<Response> =>
  fetch(`${to.url}${route}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

describe('limits', () => {
  it('answers 503 at once beyond server.max_in_flight, and serves again once requests finish', async () => {
    let open!: () => void;
    (globalThis as Gate).ferryTestGate = new Promise<void>((resolve) => (open = resolve));
    const held = [1, 2].map((x) => post('/v1/endpoints/gated/predict', { records: [{ x }] }));
    // Let both held requests reach the gate before the next ones arrive.
    await new Promise((r) => setTimeout(r, 200));
    const refused = await Promise.all(
      [3, 4, 5].map((x) => post('/v1/endpoints/gated/predict', { records: [{ x }] })),
    );
    expect(refused.map((r) => r.status)).toEqual([503, 503, 503]);
    const body = (await refused[0]!.json()) as { code: string; error: string };
    expect(body.code).toBe('FERRY_OVERLOADED');
    expect(body.error).toMatch(/max_in_flight/);
    open();
    const answered = await Promise.all(held);
    expect(answered.map((r) => r.status)).toEqual([200, 200]);
    const again = await post('/v1/endpoints/gated/predict', { records: [{ x: 6 }] });
    expect(again.status).toBe(200);
  });

  it("answers 504 when a graph outlives its endpoint's timeout", async () => {
    const res = await post('/v1/endpoints/hung/predict', { records: [{ x: 1 }] });
    expect(res.status).toBe(504);
    expect(((await res.json()) as { code: string }).code).toBe('FERRY_STEP_TIMEOUT');
  });
});

describe('micro-batching from ferry.yaml', () => {
  it('merges concurrent requests into fewer calls and answers each exactly as alone', async () => {
    const infer = (xs: number[]): Promise<Response> =>
      post(
        '/v2/models/line/infer',
        { inputs: [{ name: 'x', shape: [xs.length], datatype: 'FP64', data: xs }] },
        batching,
      );
    const requests = Array.from({ length: 30 }, (_, i) => [i, 100 + i]);
    // One at a time, each request is a batch of its own.
    const alone: number[][] = [];
    for (const xs of requests)
      alone.push(((await (await infer(xs)).json()) as Reply).outputs[0]!.data);
    const before = await batchCounts();
    const replies = await Promise.all(
      requests.map(async (xs) => (await (await infer(xs)).json()) as Reply),
    );
    const after = await batchCounts();
    expect(after.rows - before.rows).toBe(60);
    expect(after.batches - before.batches).toBeLessThan(30);
    // Every prediction call is timed, by model and version.
    const text = await (await fetch(`${batching.url}/metrics`)).text();
    expect(text).toMatch(
      /ferry_model_predict_duration_seconds_count\{model="line",version="1"\} [1-9]/,
    );
    expect(replies.map((r) => r.outputs[0]!.data)).toEqual(alone);
    // The answers are the line's: rows did not move between requests.
    expect(alone[29]![1]! - alone[0]![1]!).toBeGreaterThan(50);
  });
});

interface Reply {
  outputs: { name: string; data: number[] }[];
}

async function batchCounts(): Promise<{ rows: number; batches: number }> {
  const text = await (await fetch(`${batching.url}/metrics`)).text();
  const value = (name: string): number => {
    const line = text
      .split('\n')
      .find((l) => l.startsWith(`${name}{`) && l.includes('model="line"'));
    return line ? Number(line.split(' ').at(-1)) : 0;
  };
  return { rows: value('ferry_batch_rows_sum'), batches: value('ferry_batch_rows_count') };
}
