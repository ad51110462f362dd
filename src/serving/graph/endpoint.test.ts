/**
 * Endpoint graphs end to end over a real workspace (SQLite online store, Parquet offline store,
 * registry, in-process bus): what an enrich → transform → model graph answers against the same
 * computation done by hand, what it asks of callers, the errors of bad specs and bad records,
 * both HTTP inputs, and alias moves under load.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadProject } from '../../config/load.js';
import { silentLogger } from '../../core/logger.js';
import { FerryError } from '../../errors/index.js';
import { openWorkspace, type Workspace } from '../../project/workspace.js';
import { tempDirs } from '../../testing/temp.js';
import { registerTrained } from '../../testing/model-fixture.js';
import { SCORE_EVENTS, scoreProject, spendTable, T0 } from '../../testing/endpoint-fixture.js';
import { startServer, type RunningServer } from '../start.js';
import { compileGraph } from './compile.js';
import { ServedEndpoint } from './endpoint.js';
import { createModelProvider } from './models.js';

const dirs = tempDirs();
let dir: string;
let ws: Workspace;

async function registerSpend(slope: number): Promise<number> {
  const { version } = await registerTrained(ws.registry, 'spend', spendTable(slope), {
    target: 'y',
  });
  return version.version;
}

beforeAll(async () => {
  dir = dirs.fresh();
  writeFileSync(path.join(dir, 'ferry.yaml'), scoreProject());
  ws = await openWorkspace(loadProject(dir));
  await ws.features.ingestEvents('tx', SCORE_EVENTS);
  await registerSpend(2);
});

afterAll(async () => {
  await ws.close();
});

function deps() {
  return {
    spec: ws.project.spec,
    root: dir,
    models: createModelProvider(ws.registry),
    features: ws.features,
    events: ws.events,
  };
}

describe('an enrich → transform → model → transform graph', () => {
  it('asks callers for the entity key, the event time and the fields no step gives', async () => {
    const graph = await compileGraph(ws.project.spec.endpoints[0]!, deps());
    expect(graph.inputs).toEqual([
      { name: 'card_id', type: 'string' },
      { name: 'ts', type: 'timestamp', optional: true },
      { name: 'amount', type: 'float' },
    ]);
    expect(graph.response.map((r) => r.name)).toEqual([
      'prediction',
      'decision',
      'model',
      'model_version',
    ]);
    expect(graph.steps.map((s) => s.name)).toEqual(['enrich', 'transform', 'model', 'transform_2']);
  });

  it('answers what the model predicts for the features computed by hand', async () => {
    const endpoint = await ServedEndpoint.create({
      endpoint: ws.project.spec.endpoints[0]!,
      deps: deps(),
      logger: silentLogger(),
    });
    const answer = await endpoint.predictRecords(
      [
        { card_id: 'a', ts: new Date(T0).toISOString(), amount: 25 },
        { card_id: 'b', ts: T0, amount: 500 },
        { card_id: 'zz', ts: T0, amount: 3 },
      ],
      { requestId: 'r1' },
    );
    // Card a within the hour before T0: 40 + 60 (the 1000 is two hours old); b: 7; zz: nothing.
    expect(answer.run.rows.map((r) => r.amount_sum_1h)).toEqual([100, 7, 0]);
    const spend = [100 + 25, 7 + 500, 3];
    const model = await ws.registry.load(await ws.registry.resolve('spend@champion'));
    const expected = await model.predict({
      rowCount: 3,
      columns: [{ name: 'spend', type: 'float', values: spend }],
    });
    expect(answer.results.map((r) => r.prediction)).toEqual(expected.predict);
    expect(answer.results[0]!.prediction).toBeGreaterThan(200);
    expect(answer.results.map((r) => r.decision)).toEqual(
      expected.predict.map((p) => (typeof p === 'number' && p > 500 ? 'review' : 'allow')),
    );
    expect(answer.results[1]!.decision).toBe('review');
    expect(answer.results.map((r) => r.model_version)).toEqual(['1', '1', '1']);
    expect(answer.run.rows[0]!.big).toBe(false);
    expect(answer.run.rows[1]!.big).toBe(true);
  });

  it('lets a request field override a feature of the online store', async () => {
    const endpoint = await ServedEndpoint.create({
      endpoint: ws.project.spec.endpoints[0]!,
      deps: deps(),
      logger: silentLogger(),
    });
    const answer = await endpoint.predictRecords(
      [{ card_id: 'a', ts: T0, amount: 25, amount_sum_1h: 0 }],
      { requestId: 'r2' },
    );
    expect(answer.run.rows[0]!.spend).toBe(25);
  });

  it('refuses a record whose value has the wrong type, naming the record and field', async () => {
    const endpoint = await ServedEndpoint.create({
      endpoint: ws.project.spec.endpoints[0]!,
      deps: deps(),
      logger: silentLogger(),
    });
    const failure = await endpoint
      .predictRecords(
        [
          { card_id: 'a', amount: 1 },
          { card_id: 'a', amount: 'lots' },
        ],
        {
          requestId: 'r3',
        },
      )
      .catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(FerryError);
    expect((failure as FerryError).code).toBe('FERRY_INPUT_DATATYPE');
    expect((failure as FerryError).message).toMatch(/record 1, field 'amount'/);
    const missing = await endpoint
      .predictRecords([{ amount: 1 }], { requestId: 'r4' })
      .catch((e: unknown) => e);
    expect((missing as FerryError).code).toBe('FERRY_ENTITY_KEY_MISSING');
  });
});

describe('a bad endpoint spec fails before anything is served', () => {
  const base = (steps: unknown[], extra: Record<string, unknown> = {}) =>
    ({ ...ws.project.spec.endpoints[0]!, ...extra, steps }) as never;

  it.each([
    [
      'an expression over a field nobody writes',
      [{ kind: 'transform', set: { y: 'mystery * 2' }, on_error: 'fail' }],
      /'mystery' is not written by an earlier step.*inputs:/,
    ],
    [
      'an unknown model',
      [{ kind: 'model', model: 'nope@champion', output: 'prediction', on_error: 'fail' }],
      /nope/,
    ],
    [
      'on_error: default without values',
      [{ kind: 'model', model: 'spend', output: 'prediction', on_error: 'default' }],
      /needs `default:` values/,
    ],
    [
      'a default for a field the step does not write',
      [
        {
          kind: 'model',
          model: 'spend',
          output: 'prediction',
          on_error: 'default',
          default: { score: 0 },
        },
      ],
      /does not write/,
    ],
    [
      'no step that answers',
      [{ kind: 'transform', set: { y: '1' }, on_error: 'fail' }],
      /no model, router or ensemble step/,
    ],
  ])('%s', async (_what, steps, message) => {
    await expect(compileGraph(base(steps), deps())).rejects.toThrow(message);
  });
});

describe('served over HTTP, with alias moves under load', () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await startServer(ws, { port: 0, logLevel: 'silent' });
  });
  afterAll(async () => {
    await server.close();
  });

  it('answers /v1/endpoints/{name}/predict and /v2/models/{name}/infer alike', async () => {
    const v1 = await fetch(`${server.url}/v1/endpoints/score/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ records: [{ card_id: 'b', ts: T0, amount: 3 }] }),
    });
    expect(v1.status).toBe(200);
    const body = (await v1.json()) as { results: { prediction: number }[]; version: string };
    const v2 = await fetch(`${server.url}/v2/models/score/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        inputs: [
          { name: 'card_id', shape: [1], datatype: 'BYTES', data: ['b'] },
          { name: 'ts', shape: [1], datatype: 'INT64', data: [T0] },
          { name: 'amount', shape: [1], datatype: 'FP64', data: [3] },
        ],
      }),
    });
    expect(v2.status).toBe(200);
    const oip = (await v2.json()) as { outputs: { data: number[] }[]; model_version: string };
    expect(oip.outputs[0]!.data[0]).toBeCloseTo(body.results[0]!.prediction, 9);
    expect(body.results[0]!.prediction).toBeGreaterThan(0);
    expect(oip.model_version).toBe(body.version);

    const list = (await (await fetch(`${server.url}/v1/endpoints`)).json()) as {
      endpoints: { name: string; models: unknown[] }[];
    };
    expect(list.endpoints.map((e) => e.name)).toEqual(['score']);
    const bad = await fetch(`${server.url}/v1/endpoints/score/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ records: [] }),
    });
    expect(bad.status).toBe(400);
    const unknown = await fetch(`${server.url}/v1/endpoints/nope/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ records: [{}] }),
    });
    expect(unknown.status).toBe(404);
  });

  it('moves to a new version without a failed or mixed request, and back', async () => {
    const v2 = await registerSpend(-3);
    const seen: string[] = [];
    const answers: { sent: number; received: number; version: string }[] = [];
    const problems: string[] = [];
    let failures = 0;
    let stop = false;
    const client = async (): Promise<void> => {
      while (!stop) {
        const sent = performance.now();
        const res = await fetch(`${server.url}/v1/endpoints/score/predict`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            records: [
              { card_id: 'b', ts: T0, amount: 3 },
              { card_id: 'a', ts: T0, amount: 3 },
            ],
          }),
        });
        if (res.status !== 200) {
          failures++;
          continue;
        }
        const body = (await res.json()) as {
          results: { prediction: number; model_version: string }[];
        };
        const [first, second] = body.results;
        // One request, one version: both records answered by the same one, and each version's
        // answer has its own sign (slope 2 against slope -3).
        if (first!.model_version !== second!.model_version) problems.push('mixed versions');
        if (first!.prediction > 0 !== (first!.model_version === '1'))
          problems.push(`version ${first!.model_version} answered ${first!.prediction}`);
        seen.push(first!.model_version);
        answers.push({ sent, received: performance.now(), version: first!.model_version });
      }
    };
    const clients = [client(), client(), client(), client()];
    await waitFor(() => seen.length > 20);
    await ws.registry.setAlias('spend', 'champion', v2);
    await waitFor(() => seen.at(-1) === String(v2));
    const moved = seen.length;
    await waitFor(() => seen.length > moved + 20);
    const rollback = performance.now();
    await ws.registry.setAlias('spend', 'champion', 1);
    await waitFor(() => seen.at(-1) === '1');
    const back = seen.length;
    await waitFor(() => seen.length > back + 20);
    stop = true;
    await Promise.all(clients);
    expect(failures).toBe(0);
    expect(problems).toEqual([]);
    expect(new Set(seen)).toEqual(new Set(['1', String(v2)]));
    // Once an answer came from a version, every request sent after it is answered by that
    // version too, until the alias moves again: swaps happen once and never flap.
    const firstNew = Math.min(
      ...answers.filter((a) => a.version === String(v2)).map((a) => a.received),
    );
    const firstBack = Math.min(
      ...answers.filter((a) => a.version === '1' && a.sent > rollback).map((a) => a.received),
    );
    const betweenSwaps = answers.filter((a) => a.sent > firstNew && a.received < rollback);
    expect(betweenSwaps.length).toBeGreaterThan(10);
    expect(betweenSwaps.every((a) => a.version === String(v2))).toBe(true);
    expect(answers.filter((a) => a.sent > firstBack).every((a) => a.version === '1')).toBe(true);
  }, 60_000);
});

async function waitFor(condition: () => boolean, timeoutMs = 20_000): Promise<void> {
  const started = Date.now();
  while (!condition()) {
    if (Date.now() - started > timeoutMs) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 10));
  }
}
