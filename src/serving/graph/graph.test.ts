import fs from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { endpointSchema, type EndpointSpec } from '../../config/endpoint-schema.js';
import { defineProject } from '../../config/load.js';
import { createLogger, silentLogger, type Logger } from '../../core/logger.js';
import type { Label, ModelSignature, Prediction } from '../../core/model.js';
import { tableFromRows, type Row, type Scalar, type Table } from '../../core/table.js';
import { profileTable } from '../../data/profile.js';
import type { EventMessage } from '../../events/event-bus.js';
import { openWorkspace, type Workspace } from '../../project/workspace.js';
import { expectCode } from '../../testing/harness.js';
import { fitToyGbdt, TOY_SCHEMA, TOY_SIGNATURE } from '../../testing/model-fixture.js';
import { tempDirs } from '../../testing/temp.js';
import { fitGbdt } from '../../training/algorithms/gbdt.js';
import {
  encodeNativeModel,
  NATIVE_FORMAT,
  NATIVE_FORMAT_VERSION,
} from '../../training/native-model.js';
import { fit, transform } from '../../training/preprocess.js';
import { createRng } from '../../training/random.js';
import { compileGraph, type CompiledGraph } from './compile.js';
import { createModelProvider } from './models.js';
import { runGraph, type GraphObserver, type GraphRun } from './run.js';
import type { ModelProvider, ServingModel, ShadowPrediction } from './step.js';
import { MAX_SHADOW_IN_FLIGHT, stickyPoint, type RouterStep } from './steps/router.js';

const tmp = tempDirs();
let dir: string;
let ws: Workspace;

/** Toy rows: a float `x` (some missing), a `color`, a `label` and a numeric target `y`. */
function toyRows(n: number, seed: number): Row[] {
  const random = createRng(seed);
  const colors = ['red', 'green', 'blue'];
  const rows: Row[] = [];
  for (let i = 0; i < n; i++) {
    const x = Math.round((random() * 4 - 2) * 100) / 100;
    const color = colors[Math.floor(random() * 3)] ?? 'red';
    const noisy = (color === 'red' ? x + 1 : Math.sin(3 * x)) + (random() - 0.5) * (1 + seed / 2);
    rows.push({
      x: random() < 0.05 ? null : x,
      color,
      label: noisy > 0.3 ? 'yes' : 'no',
      y: 3 * x + (color === 'blue' ? 2 : 0) + (random() - 0.5) * seed,
    });
  }
  return rows;
}

const INPUTS = TOY_SIGNATURE.inputs;
const inputsOf = (rows: readonly Row[]): Table =>
  tableFromRows(
    INPUTS.map((i) => ({ name: i.name, type: i.type })),
    rows,
  );

async function registerClassifier(model: string, seed: number, classes?: Label[]): Promise<void> {
  const table = tableFromRows(TOY_SCHEMA, toyRows(400, seed));
  const doc = fitToyGbdt(table);
  const signature: ModelSignature = classes ? { ...TOY_SIGNATURE, classes } : TOY_SIGNATURE;
  await ws.registry.register({
    model,
    runtime: 'native',
    artifact: encodeNativeModel({ ...doc, signature }),
    signature,
    metrics: {},
    params: {},
    lineage: {},
    profile: profileTable(table),
  });
}

async function registerRegressor(model: string, seed: number): Promise<void> {
  const table = tableFromRows(
    [...INPUTS.map((i) => ({ name: i.name, type: i.type })), { name: 'y', type: 'float' as const }],
    toyRows(400, seed),
  );
  const signature: ModelSignature = { task: 'regression', target: 'y', inputs: INPUTS };
  const preprocess = fit(table, INPUTS, { mode: 'tree' });
  const y = Float64Array.from(table.columns[2]?.values ?? [], (v) => Number(v));
  const { model: gbdt } = fitGbdt(transform(preprocess, table), y, {
    objective: 'regression',
    maxRounds: 20,
  });
  await ws.registry.register({
    model,
    runtime: 'native',
    artifact: encodeNativeModel({
      format: NATIVE_FORMAT,
      version: NATIVE_FORMAT_VERSION,
      signature,
      preprocess,
      model: gbdt,
    }),
    signature,
    metrics: {},
    params: {},
    lineage: {},
    profile: profileTable(table),
  });
}

beforeAll(async () => {
  dir = tmp.fresh();
  ws = await openWorkspace(defineProject(dir, {}));
  await registerClassifier('toy_a', 1);
  await registerClassifier('toy_b', 2);
  await registerClassifier('toy_c', 3);
  await registerClassifier('toy_ny', 4, ['n', 'y']);
  await registerRegressor('reg_a', 1);
  await registerRegressor('reg_b', 2);
}, 60_000);

afterAll(async () => {
  await ws?.close();
});

function endpoint(steps: unknown[], extra: Record<string, unknown> = {}): EndpointSpec {
  return endpointSchema.parse({ name: 'graph_test', timeout: '60s', steps, ...extra });
}

/** Compiles an endpoint of the test project (as if ferry.yaml listed it). */
function compile(spec: EndpointSpec, models?: ModelProvider): Promise<CompiledGraph> {
  return compileGraph(spec, {
    spec: { ...ws.project.spec, endpoints: [spec] },
    root: dir,
    models: models ?? createModelProvider(ws.registry),
    features: ws.features,
    events: ws.events,
  });
}

let requests = 0;
function run(
  graph: CompiledGraph,
  rows: Row[],
  options: { logger?: Logger; observer?: GraphObserver } = {},
): Promise<GraphRun> {
  return runGraph(graph, rows, {
    requestId: `req-${++requests}`,
    logger: options.logger ?? silentLogger(),
    ...(options.observer ? { observer: options.observer } : {}),
  });
}

/** A model's own answer on the given records, straight from the registry. */
async function own(ref: string, rows: readonly Row[]): Promise<Prediction> {
  const loaded = await ws.registry.load(await ws.registry.resolve(ref));
  return loaded.predict(inputsOf(rows));
}

async function versionOf(ref: string): Promise<string> {
  return String((await ws.registry.resolve(ref)).version);
}

/** Records with a user id each, as a request sends them (no label, no target). */
function requestRows(n: number, seed: number): Row[] {
  return toyRows(n, seed).map((r, i) => ({
    user_id: `user-${i}`,
    x: r.x ?? null,
    color: r.color ?? null,
  }));
}

/** A logger whose lines the test reads back, with a way to wait for one. */
function capturingLogger(): {
  logger: Logger;
  lines: Record<string, unknown>[];
  next: (test: (line: Record<string, unknown>) => boolean) => Promise<Record<string, unknown>>;
} {
  const lines: Record<string, unknown>[] = [];
  const waiters: {
    test: (l: Record<string, unknown>) => boolean;
    resolve: (l: Record<string, unknown>) => void;
  }[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const text of chunk.toString('utf8').split('\n')) {
        if (!text) continue;
        const line = JSON.parse(text) as Record<string, unknown>;
        lines.push(line);
        for (const w of waiters.splice(0)) {
          if (w.test(line)) w.resolve(line);
          else waiters.push(w);
        }
      }
      done();
    },
  });
  const logger = createLogger({ level: 'warn', destination });
  return {
    logger,
    lines,
    next: (test) => {
      const found = lines.find(test);
      if (found) return Promise.resolve(found);
      return new Promise((resolve) => waiters.push({ test, resolve }));
    },
  };
}

/** Wraps one model of a provider: its predictions go through `predict` (a real model inside). */
function wrapModel(
  base: ModelProvider,
  model: string,
  predict: (input: Table, inner: ServingModel) => Promise<Prediction>,
): ModelProvider {
  return {
    resolve: (ref) => base.resolve(ref),
    async load(record) {
      const inner = await base.load(record);
      if (record.model !== model) return inner;
      return {
        record: inner.record,
        signature: inner.signature,
        predict: (input) => predict(input, inner),
      };
    },
  };
}

/** A promise and its resolve, for work the test releases when it chooses. */
function gate<T = void>(): { promise: Promise<T>; open: (value: T) => void } {
  let open!: (value: T) => void;
  const promise = new Promise<T>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

/** |count - n p| within 5 standard deviations of a binomial. */
function expectBinomial(count: number, n: number, p: number): void {
  const sigma = Math.sqrt(n * p * (1 - p));
  expect(Math.abs(count - n * p)).toBeLessThanOrEqual(5 * sigma);
}

describe('router: split', () => {
  it('sends 80/20 of 10k distinct keys, each key to the same route in another compiled graph and batch', async () => {
    const spec = endpoint([
      {
        kind: 'router',
        mode: 'split',
        routes: [
          { model: 'toy_a', weight: 80 },
          { model: 'toy_b', weight: 20 },
        ],
        key: 'user_id',
      },
    ]);
    const rows = requestRows(10_000, 7);
    const first = await run(
      await compile(spec),
      rows.map((r) => ({ ...r })),
    );
    const toB = first.answeredBy.filter((a) => a?.model === 'toy_b').length;
    expect(first.answeredBy.every((a) => a?.model === 'toy_a' || a?.model === 'toy_b')).toBe(true);
    expectBinomial(toB, 10_000, 0.2);

    // Each record carries the answer of the model it was routed to, at its own position.
    const [a, b] = await Promise.all([own('toy_a', rows), own('toy_b', rows)]);
    first.rows.forEach((row, i) => {
      const by = first.answeredBy[i]?.model === 'toy_a' ? a : b;
      expect(row.prediction).toBe(by.predict[i]);
      expect(row.prediction_score).toBe(by.proba?.[i * 2 + 1]);
      expect(first.prediction?.predict[i]).toBe(by.predict[i]);
      expect(first.prediction?.proba?.[i * 2 + 1]).toBe(by.proba?.[i * 2 + 1]);
    });
    expect(first.results[0]).toHaveProperty(
      'model_version',
      await versionOf(String(first.results[0]?.model)),
    );

    // Another graph (its own model provider), the records reversed and in small requests.
    const second = await compile(spec, createModelProvider(ws.registry));
    const route = new Map(first.rows.map((r, i) => [r.user_id, first.answeredBy[i]?.model]));
    const reversed = [...rows].reverse();
    for (let i = 0; i < reversed.length; i += 997) {
      const chunk = reversed.slice(i, i + 997).map((r) => ({ ...r }));
      const again = await run(second, chunk);
      again.rows.forEach((r, j) => expect(again.answeredBy[j]?.model).toBe(route.get(r.user_id)));
    }
  });

  it("predicts each route's records in one call", async () => {
    const calls: number[] = [];
    const provider = wrapModel(createModelProvider(ws.registry), 'toy_b', (input, inner) => {
      calls.push(input.rowCount);
      return inner.predict(input);
    });
    const spec = endpoint([
      {
        kind: 'router',
        mode: 'split',
        routes: [
          { model: 'toy_a', weight: 1 },
          { model: 'toy_b', weight: 1 },
        ],
        key: 'user_id',
      },
    ]);
    const result = await run(await compile(spec, provider), requestRows(500, 15));
    expect(calls).toEqual([result.answeredBy.filter((a) => a?.model === 'toy_b').length]);
  });

  it('hashes keys to fixed points (the assignment survives restarts and other processes)', () => {
    // Pinned values (also computed by an independent implementation below): a change of the hash
    // would move every sticky key to another route.
    const keys = ['user-1', 'user-2', 42, true];
    const points = keys.map(stickyPoint);
    expect(points.map((p) => p * 2 ** 32)).toEqual([2005895916, 853201105, 686566589, 1715307617]);
    expect(points).toEqual(keys.map((k) => referenceHash(String(k))));
    expect(stickyPoint(42)).toBe(stickyPoint('42'));
    for (const p of points) expect(p >= 0 && p < 1).toBe(true);
  });

  it('draws per record without a key, and routes records whose key is null', async () => {
    const spec = endpoint([
      {
        kind: 'router',
        mode: 'split',
        routes: [
          { model: 'toy_a', weight: 1 },
          { model: 'toy_b', weight: 3 },
        ],
      },
    ]);
    const result = await run(await compile(spec), requestRows(10_000, 8));
    expectBinomial(result.answeredBy.filter((a) => a?.model === 'toy_b').length, 10_000, 0.75);

    const keyed = endpoint([
      {
        kind: 'router',
        mode: 'split',
        routes: [
          { model: 'toy_a', weight: 1 },
          { model: 'toy_b', weight: 1 },
        ],
        key: 'user_id',
      },
    ]);
    const graph = await compile(keyed);
    expect(graph.inputs.find((i) => i.name === 'user_id')).toEqual({
      name: 'user_id',
      type: 'string',
      optional: true,
    });
    const nulls = requestRows(4000, 9).map((r) => ({ ...r, user_id: null }));
    const random = await run(graph, nulls);
    expect(random.answeredBy.every((a) => a !== undefined)).toBe(true);
    expectBinomial(random.answeredBy.filter((a) => a?.model === 'toy_b').length, 4000, 0.5);
  });
});

/** An independent FNV-1a + fmix32 over UTF-8, written out from the algorithms' definitions. */
function referenceHash(text: string): number {
  let h = 2166136261n;
  for (const byte of Buffer.from(text, 'utf8')) {
    h ^= BigInt(byte);
    h = (h * 16777619n) & 0xffffffffn;
  }
  h ^= h >> 16n;
  h = (h * 0x85ebca6bn) & 0xffffffffn;
  h ^= h >> 13n;
  h = (h * 0xc2b2ae35n) & 0xffffffffn;
  h ^= h >> 16n;
  return Number(h) / 2 ** 32;
}

describe('router: canary', () => {
  const canary = (share: number, key?: string): EndpointSpec =>
    endpoint([
      {
        kind: 'router',
        mode: 'canary',
        model: 'toy_a',
        canary: 'toy_b',
        share,
        ...(key ? { key } : {}),
      },
    ]);

  it('sends its share to the canary; raising the share keeps every canary key there', async () => {
    const rows = requestRows(10_000, 10);
    const low = await run(
      await compile(canary(0.1, 'user_id')),
      rows.map((r) => ({ ...r })),
    );
    const inCanary = new Set(
      low.rows.filter((_, i) => low.answeredBy[i]?.model === 'toy_b').map((r) => r.user_id),
    );
    expectBinomial(inCanary.size, 10_000, 0.1);
    const high = await run(
      await compile(canary(0.3, 'user_id')),
      rows.map((r) => ({ ...r })),
    );
    const highCanary = new Set(
      high.rows.filter((_, i) => high.answeredBy[i]?.model === 'toy_b').map((r) => r.user_id),
    );
    expectBinomial(highCanary.size, 10_000, 0.3);
    for (const key of inCanary) expect(highCanary.has(key)).toBe(true);
  });

  it('sends nothing to a canary at share 0 and everything at share 1, without a key', async () => {
    const rows = requestRows(500, 11);
    const none = await run(
      await compile(canary(0)),
      rows.map((r) => ({ ...r })),
    );
    expect(none.answeredBy.every((a) => a?.model === 'toy_a')).toBe(true);
    const all = await run(
      await compile(canary(1)),
      rows.map((r) => ({ ...r })),
    );
    expect(all.answeredBy.every((a) => a?.model === 'toy_b')).toBe(true);
    const unkeyed = await run(await compile(canary(0.25)), requestRows(10_000, 12));
    expectBinomial(unkeyed.answeredBy.filter((a) => a?.model === 'toy_b').length, 10_000, 0.25);
  });
});

describe('router: shadow', () => {
  const shadowSpec = endpoint([
    { kind: 'router', mode: 'shadow', model: 'toy_a', shadow: ['toy_b'] },
  ]);

  async function baseline(rows: Row[]): Promise<GraphRun> {
    return run(
      await compile(endpoint([{ kind: 'model', model: 'toy_a' }])),
      rows.map((r) => ({ ...r })),
    );
  }

  it('answers with the primary while a slow shadow is pending, then logs the shadow answers', async () => {
    const rows = requestRows(50, 13);
    const release = gate();
    const provider = wrapModel(createModelProvider(ws.registry), 'toy_b', async (input, inner) => {
      await release.promise;
      return inner.predict(input);
    });
    const graph = await compile(shadowSpec, provider);
    expect(graph.models.map((m) => m.model).sort()).toEqual(['toy_a', 'toy_b']);
    const seen: ShadowPrediction[] = [];
    const logged = gate<{ shadow: ShadowPrediction; requestId: string }>();
    const observer: GraphObserver = {
      onShadow: (_endpoint, shadow, requestId) => {
        seen.push(shadow);
        logged.open({ shadow, requestId });
      },
    };
    // Resolves although the shadow model has not answered (it would hang otherwise).
    const result = await run(
      graph,
      rows.map((r) => ({ ...r })),
      { observer },
    );
    const id = `req-${requests}`;
    expect(result.results).toEqual((await baseline(rows)).results);
    expect(result.answeredBy.every((a) => a?.model === 'toy_a')).toBe(true);
    expect(seen).toEqual([]);

    release.open();
    const { shadow, requestId } = await logged.promise;
    expect(requestId).toBe(id);
    expect(shadow.model).toEqual({ model: 'toy_b', version: await versionOf('toy_b') });
    expect(shadow.classes).toEqual(['no', 'yes']);
    expect(shadow.features).toEqual(rows.map((r) => ({ x: r.x, color: r.color })));
    const mine = await own('toy_b', rows);
    expect(shadow.prediction.predict).toEqual(mine.predict);
    expect(Array.from(shadow.prediction.proba ?? [])).toEqual(Array.from(mine.proba ?? []));
    // The shadow's answers never reached the response.
    expect(result.rows.map((r) => r.prediction)).toEqual((await own('toy_a', rows)).predict);
  });

  it('logs a failing shadow at warn with the request id; the response is the primary alone', async () => {
    const rows = requestRows(20, 14);
    const provider = wrapModel(createModelProvider(ws.registry), 'toy_b', () =>
      Promise.reject(new Error('shadow runtime crashed')),
    );
    const { logger, next } = capturingLogger();
    const result = await run(
      await compile(shadowSpec, provider),
      rows.map((r) => ({ ...r })),
      { logger },
    );
    const id = `req-${requests}`;
    expect(result.results).toEqual((await baseline(rows)).results);
    const line = await next((l) => String(l.msg).includes('shadow prediction failed'));
    expect(line).toMatchObject({ requestId: id, model: 'toy_b', level: 40 });
    expect(String(line.msg)).toContain('shadow runtime crashed');
  });

  it(`keeps at most ${MAX_SHADOW_IN_FLIGHT} shadow predictions in flight, counting and logging the dropped`, async () => {
    const release = gate();
    let started = 0;
    const provider = wrapModel(createModelProvider(ws.registry), 'toy_b', async (input, inner) => {
      started++;
      await release.promise;
      return inner.predict(input);
    });
    const graph = await compile(shadowSpec, provider);
    const step = graph.steps[0] as RouterStep;
    const { logger, next } = capturingLogger();
    let logged = 0;
    const all = gate();
    const observer: GraphObserver = {
      onShadow: () => {
        if (++logged === MAX_SHADOW_IN_FLIGHT) all.open();
      },
    };
    const extra = 6;
    for (let i = 0; i < MAX_SHADOW_IN_FLIGHT + extra; i++) {
      const result = await run(graph, requestRows(1, 100 + i), { logger, observer });
      expect(result.answeredBy[0]?.model).toBe('toy_a');
    }
    expect(step.shadowsDropped()).toBe(extra);
    const warn = await next((l) => l.shadowsDropped !== undefined);
    expect(warn).toMatchObject({ shadowsDropped: 1, level: 40 });
    release.open();
    await all.promise;
    // Each prediction leaves the in-flight count once its answers were handed over.
    await new Promise((resolve) => setImmediate(resolve));
    expect(started).toBe(MAX_SHADOW_IN_FLIGHT);
    expect(logged).toBe(MAX_SHADOW_IN_FLIGHT);
    // Room again once they answered.
    await run(graph, requestRows(1, 99), { logger, observer });
    expect(step.shadowsDropped()).toBe(extra);
  });
});

describe('router and ensemble: models must answer alike', () => {
  it('rejects a classifier and a regressor, or classifiers of other classes, at compile time', async () => {
    await expectCode(
      compile(
        endpoint([
          {
            kind: 'router',
            mode: 'split',
            routes: [
              { model: 'toy_a', weight: 1 },
              { model: 'reg_a', weight: 1 },
            ],
          },
        ]),
      ),
      'FERRY_CONFIG_INVALID',
    );
    await expectCode(
      compile(endpoint([{ kind: 'router', mode: 'shadow', model: 'toy_a', shadow: ['toy_ny'] }])),
      'FERRY_CONFIG_INVALID',
    );
    const err = await expectCode(
      compile(endpoint([{ kind: 'ensemble', method: 'mean', models: ['toy_a', 'toy_ny'] }])),
      'FERRY_CONFIG_INVALID',
    );
    expect(err.message).toContain('do not answer alike');
  });
});

describe('ensemble', () => {
  const rows = requestRows(300, 20);

  async function ensemble(method: string, models: unknown[]): Promise<GraphRun> {
    return run(
      await compile(endpoint([{ kind: 'ensemble', method, models }])),
      rows.map((r) => ({ ...r })),
    );
  }

  it('mean: averages class probabilities, the label is the likelier class', async () => {
    const [a, b] = await Promise.all([own('toy_a', rows), own('toy_b', rows)]);
    const result = await ensemble('mean', ['toy_a', 'toy_b']);
    rows.forEach((_, i) => {
      const yes = ((a.proba?.[i * 2 + 1] ?? NaN) + (b.proba?.[i * 2 + 1] ?? NaN)) / 2;
      const no = ((a.proba?.[i * 2] ?? NaN) + (b.proba?.[i * 2] ?? NaN)) / 2;
      expect(result.rows[i]?.prediction_score).toBeCloseTo(yes, 12);
      expect(result.rows[i]?.prediction).toBe(yes > no ? 'yes' : 'no');
      expect(result.prediction?.proba?.[i * 2]).toBeCloseTo(no, 12);
    });
    const by = {
      model: 'ensemble(toy_a,toy_b)',
      version: `${await versionOf('toy_a')},${await versionOf('toy_b')}`,
    };
    expect(result.answeredBy.every((x) => x?.model === by.model && x.version === by.version)).toBe(
      true,
    );
    expect(result.results[0]).toMatchObject({ model: by.model, model_version: by.version });
  });

  it('weighted: weights the probabilities (a plain reference weighs 1)', async () => {
    const [a, b] = await Promise.all([own('toy_a', rows), own('toy_b', rows)]);
    const result = await ensemble('weighted', [{ model: 'toy_a', weight: 3 }, 'toy_b']);
    let differs = 0;
    rows.forEach((_, i) => {
      const pa = a.proba?.[i * 2 + 1] ?? NaN;
      const pb = b.proba?.[i * 2 + 1] ?? NaN;
      const yes = (3 * pa + pb) / 4;
      if (yes > 0.5 !== (pa + pb) / 2 > 0.5) differs++;
      expect(result.rows[i]?.prediction_score).toBeCloseTo(yes, 12);
      expect(result.rows[i]?.prediction).toBe(yes > 1 - yes ? 'yes' : 'no');
    });
    // The weights decide some labels (else this would not tell weighted from mean).
    expect(differs).toBeGreaterThan(0);
  });

  it('vote: the majority label of three, or with two the likelier class on a tie', async () => {
    const [a, b, c] = await Promise.all([
      own('toy_a', rows),
      own('toy_b', rows),
      own('toy_c', rows),
    ]);
    const three = await ensemble('vote', ['toy_a', 'toy_b', 'toy_c']);
    rows.forEach((_, i) => {
      const labels = [a, b, c].map((p) => p.predict[i]);
      const yes = labels.filter((l) => l === 'yes').length;
      expect(three.rows[i]?.prediction).toBe(yes >= 2 ? 'yes' : 'no');
      expect(three.rows[i]?.prediction_score).toBeCloseTo(yes / 3, 12);
    });
    const two = await ensemble('vote', ['toy_a', 'toy_b']);
    let ties = 0;
    rows.forEach((_, i) => {
      const la = a.predict[i];
      const lb = b.predict[i];
      if (la === lb) {
        expect(two.rows[i]?.prediction).toBe(la);
        return;
      }
      ties++;
      const meanYes = ((a.proba?.[i * 2 + 1] ?? NaN) + (b.proba?.[i * 2 + 1] ?? NaN)) / 2;
      const meanNo = ((a.proba?.[i * 2] ?? NaN) + (b.proba?.[i * 2] ?? NaN)) / 2;
      expect(two.rows[i]?.prediction).toBe(meanYes > meanNo ? 'yes' : 'no');
      expect(two.rows[i]?.prediction_score).toBe(0.5);
    });
    expect(ties).toBeGreaterThan(0);
  });

  it('averages regression values, plain or weighted; vote over regressors is a config error', async () => {
    const [a, b] = await Promise.all([own('reg_a', rows), own('reg_b', rows)]);
    const mean = await ensemble('mean', ['reg_a', 'reg_b']);
    const weighted = await ensemble('weighted', [
      { model: 'reg_a', weight: 1 },
      { model: 'reg_b', weight: 4 },
    ]);
    rows.forEach((_, i) => {
      const va = Number(a.predict[i]);
      const vb = Number(b.predict[i]);
      expect(mean.rows[i]?.prediction).toBeCloseTo((va + vb) / 2, 12);
      expect(weighted.rows[i]?.prediction).toBeCloseTo((va + 4 * vb) / 5, 12);
      expect(mean.rows[i]).not.toHaveProperty('prediction_score');
    });
    await expectCode(
      compile(endpoint([{ kind: 'ensemble', method: 'vote', models: ['reg_a', 'reg_b'] }])),
      'FERRY_CONFIG_INVALID',
    );
    await expectCode(
      compile(
        endpoint([
          { kind: 'ensemble', method: 'mean', models: [{ model: 'reg_a', weight: 2 }, 'reg_b'] },
        ]),
      ),
      'FERRY_CONFIG_INVALID',
    );
  });
});

describe('custom', () => {
  function write(file: string, text: string): void {
    fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    fs.writeFileSync(path.join(dir, file), text);
  }

  it('loads a .mjs and a .ts module; their declared outputs reach later steps', async () => {
    write(
      'steps/double.mjs',
      'export default function (records) { for (const r of records) r.doubled = r.x === null ? null : r.x * 2; }\n',
    );
    write(
      'steps/flag.ts',
      [
        'type Row = Record<string, string | number | boolean | null>;',
        'export function flag(records: Row[], context: { requestId: string }): Row[] {',
        "  return records.map((r) => ({ ...r, big: typeof r.doubled === 'number' && r.doubled > 1, tag: `${context.requestId}:${String(r.color)}`, ignored: 1 }));",
        '}',
        '',
      ].join('\n'),
    );
    const spec = endpoint(
      [
        { kind: 'custom', module: 'steps/double.mjs', outputs: { doubled: 'float' } },
        {
          kind: 'custom',
          module: 'steps/flag.ts',
          export: 'flag',
          outputs: { big: 'bool', tag: 'string' },
        },
        { kind: 'transform', set: { x2: 'doubled + 1' } },
        { kind: 'model', model: 'toy_a' },
      ],
      { response: ['doubled', 'big', 'tag', 'x2', 'prediction'] },
    );
    const rows = [
      { x: 1.5, color: 'red' },
      { x: null, color: 'blue' },
      { x: 0.25, color: 'green' },
    ];
    const result = await run(await compile(spec), rows);
    const id = `req-${requests}`;
    expect(result.results.map((r) => ({ ...r, prediction: undefined }))).toEqual([
      { doubled: 3, big: true, tag: `${id}:red`, x2: 4, prediction: undefined },
      { doubled: null, big: false, tag: `${id}:blue`, x2: null, prediction: undefined },
      { doubled: 0.5, big: false, tag: `${id}:green`, x2: 1.5, prediction: undefined },
    ]);
    expect(result.rows[0]).not.toHaveProperty('ignored');
  });

  it('fails the step on a value of the wrong type, a wrong number of records, or a missing export', async () => {
    write(
      'steps/wrong.mjs',
      "export const wrong = (records) => { records.forEach((r, i) => { r.big = i === 1 ? 'yes' : true; }); };\nexport const short = (records) => records.slice(1);\n",
    );
    const model = { kind: 'model', model: 'toy_a' };
    const wrong = await compile(
      endpoint([
        { kind: 'custom', module: 'steps/wrong.mjs', export: 'wrong', outputs: { big: 'bool' } },
        model,
      ]),
    );
    const err = await expectCode(run(wrong, requestRows(3, 30)), 'FERRY_STEP_FAILED');
    expect(err.message).toContain("'big' of record 1");
    expect(err.message).toContain('bool');
    const short = await compile(
      endpoint([
        { kind: 'custom', module: 'steps/wrong.mjs', export: 'short', outputs: { big: 'bool' } },
        model,
      ]),
    );
    await expectCode(run(short, requestRows(3, 31)), 'FERRY_STEP_FAILED');
    const missing = await expectCode(
      compile(endpoint([{ kind: 'custom', module: 'steps/wrong.mjs', outputs: {} }, model])),
      'FERRY_CONFIG_INVALID',
    );
    expect(missing.message).toContain("no function export 'default'");
    expect(missing.message).toContain('short, wrong');
    await expectCode(
      compile(endpoint([{ kind: 'custom', module: 'steps/none.mjs' }, model])),
      'FERRY_CONFIG_INVALID',
    );
  });
});

describe('error policies with these steps', () => {
  const GATE = Symbol.for('ferry.graph.test.gate');
  const DONE = Symbol.for('ferry.graph.test.done');
  const globals = globalThis as unknown as Record<symbol, unknown>;

  beforeAll(() => {
    fs.mkdirSync(path.join(dir, 'steps'), { recursive: true });
    fs.writeFileSync(
      path.join(dir, 'steps', 'boom.mjs'),
      "export default () => { throw new Error('risk service down'); };\n",
    );
    fs.writeFileSync(
      path.join(dir, 'steps', 'hang.mjs'),
      [
        `export default async function (records) {`,
        `  await globalThis[Symbol.for('ferry.graph.test.gate')];`,
        `  for (const r of records) r.risk = 0.99;`,
        `  globalThis[Symbol.for('ferry.graph.test.done')]();`,
        `}`,
        '',
      ].join('\n'),
    );
  });

  const withRisk = (step: Record<string, unknown>): EndpointSpec =>
    endpoint(
      [
        { kind: 'custom', outputs: { risk: 'float' }, ...step },
        { kind: 'model', model: 'toy_a' },
      ],
      {
        response: ['risk', 'prediction', 'model'],
      },
    );

  it('skip leaves the fields null and default sets them; the graph goes on', async () => {
    const skipped = await run(
      await compile(withRisk({ module: 'steps/boom.mjs', on_error: 'skip' })),
      requestRows(2, 40),
    );
    expect(skipped.results.map((r) => r.risk)).toEqual([null, null]);
    expect(skipped.results.every((r) => r.prediction === 'yes' || r.prediction === 'no')).toBe(
      true,
    );
    const defaulted = await run(
      await compile(
        withRisk({ module: 'steps/boom.mjs', on_error: 'default', default: { risk: 0.5 } }),
      ),
      requestRows(2, 41),
    );
    expect(defaulted.results.map((r) => r.risk)).toEqual([0.5, 0.5]);
    await expectCode(
      run(await compile(withRisk({ module: 'steps/boom.mjs' })), requestRows(2, 42)),
      'FERRY_STEP_FAILED',
    );
  });

  it('a step past its timeout takes its defaults, and its late finish changes nothing', async () => {
    const release = gate();
    const done = gate();
    globals[GATE] = release.promise;
    globals[DONE] = () => done.open();
    const graph = await compile(
      withRisk({
        module: 'steps/hang.mjs',
        timeout: '50ms',
        on_error: 'default',
        default: { risk: 0.25 },
      }),
    );
    const result = await run(graph, requestRows(3, 43));
    expect(result.results.map((r) => r.risk)).toEqual([0.25, 0.25, 0.25]);
    const before = structuredClone(result.rows);
    release.open();
    await done.promise;
    expect(result.rows).toEqual(before);
    expect(result.results.map((r) => r.risk)).toEqual([0.25, 0.25, 0.25]);
    delete globals[GATE];
    delete globals[DONE];
  });

  it('a router whose model fails under default answers with the default prediction', async () => {
    const provider = wrapModel(createModelProvider(ws.registry), 'toy_b', () =>
      Promise.reject(new Error('model crashed')),
    );
    const spec = endpoint([
      {
        kind: 'router',
        mode: 'canary',
        model: 'toy_a',
        canary: 'toy_b',
        share: 1,
        on_error: 'default',
        default: { prediction: 'no', prediction_score: 0 },
      },
    ]);
    const result = await run(await compile(spec, provider), requestRows(3, 44));
    expect(result.results).toEqual(
      [0, 1, 2].map(() => ({
        prediction: 'no',
        prediction_score: 0,
        model: null,
        model_version: null,
      })),
    );
    expect(result.prediction?.predict).toEqual(['no', 'no', 'no']);
  });
});

describe('output', () => {
  async function collect(
    subject: string,
  ): Promise<{ messages: EventMessage[]; stop: () => Promise<void> }> {
    const messages: EventMessage[] = [];
    const sub = await ws.events.subscribe(subject, async (m) => {
      messages.push(m);
    });
    return { messages, stop: () => sub.unsubscribe() };
  }

  it('publishes each record with the listed fields and the request id', async () => {
    const subject = 'ferry.scores.graph_test';
    const { messages, stop } = await collect(subject);
    const spec = endpoint(
      [
        { kind: 'model', model: 'toy_a' },
        {
          kind: 'output',
          subject,
          fields: ['user_id', 'x', 'prediction', 'prediction_score', 'model'],
        },
      ],
      { inputs: { user_id: 'string' } },
    );
    const graph = await compile(spec);
    expect(graph.inputs.map((i) => i.name).sort()).toEqual(['color', 'user_id', 'x']);
    const rows = requestRows(3, 50);
    const result = await run(
      graph,
      rows.map((r) => ({ ...r })),
    );
    await ws.events.drain();
    await stop();
    const id = `req-${requests}`;
    expect(messages.map((m) => m.data)).toEqual(
      result.rows.map((r) => ({
        request_id: id,
        user_id: r.user_id,
        x: r.x,
        prediction: r.prediction,
        prediction_score: r.prediction_score,
        model: 'toy_a',
      })),
    );
  });

  it('without fields publishes every field the records have so far, with model and version', async () => {
    const subject = 'ferry.scores.graph_test_all';
    const { messages, stop } = await collect(subject);
    const graph = await compile(
      endpoint([
        { kind: 'ensemble', method: 'mean', models: ['toy_a', 'toy_b'] },
        { kind: 'output', subject },
      ]),
    );
    const result = await run(graph, [{ x: 1, color: 'red' }]);
    await ws.events.drain();
    await stop();
    const [only] = messages;
    const versions = `${await versionOf('toy_a')},${await versionOf('toy_b')}`;
    expect(only?.data).toEqual({
      request_id: `req-${requests}`,
      x: 1,
      color: 'red',
      prediction: result.rows[0]?.prediction as Scalar,
      prediction_score: result.rows[0]?.prediction_score as Scalar,
      model: 'ensemble(toy_a,toy_b)',
      model_version: versions,
    });
    await expectCode(
      compile(
        endpoint([
          { kind: 'model', model: 'toy_a' },
          { kind: 'output', subject, fields: ['nobody_writes_this'] },
        ]),
      ),
      'FERRY_CONFIG_INVALID',
    );
  });

  it("without fields publishes the endpoint's listed response fields", async () => {
    const subject = 'ferry.scores.graph_test_response';
    const { messages, stop } = await collect(subject);
    const steps = [
      { kind: 'model', model: 'toy_a' },
      { kind: 'output', subject },
    ];
    const graph = await compile(endpoint(steps, { response: ['prediction', 'model_version'] }));
    const result = await run(graph, [{ x: -1, color: 'blue' }]);
    await ws.events.drain();
    await stop();
    expect(messages.map((m) => m.data)).toEqual([
      {
        request_id: `req-${requests}`,
        prediction: result.rows[0]?.prediction as Scalar,
        model_version: await versionOf('toy_a'),
      },
    ]);
    // A response field written only after the output step cannot be published by it.
    await expectCode(
      compile(
        endpoint([...steps, { kind: 'transform', set: { late: 'x * 2' } }], {
          response: ['prediction', 'late'],
        }),
      ),
      'FERRY_CONFIG_INVALID',
    );
  });
});
