import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLocalArtifactStore } from '../../artifacts/local.js';
import { createLogger } from '../../core/logger.js';
import type { LoadedModel, ModelSignature } from '../../core/model.js';
import type { Column, Scalar, Table } from '../../core/table.js';
import {
  openParquetOfflineStore,
  type ParquetOfflineStore,
} from '../../feature-store/offline/parquet.js';
import { openSqliteMetadataStore } from '../../metadata/sqlite.js';
import { InferenceLog } from '../../monitoring/inference-log.js';
import { ModelRegistry } from '../../registry/registry.js';
import { trainModel } from '../../training/train.js';
import { FERRY_VERSION } from '../../version.js';
import { createRegistryCatalog, type RegistryCatalog } from '../catalog.js';
import { nativeRuntime } from '../runtimes/native.js';
import type {
  InferContext,
  InferResult,
  ServedModel,
  ServedModelCatalog,
} from '../served-model.js';
import { createServer } from './server.js';
import { nativeVersion } from '../../testing/model-fixture.js';

const logger = createLogger({ level: 'silent' });
const LIMITS = { bodyLimitBytes: 64 * 1024, maxRowsPerRequest: 1000 };
const CITIES = ['lyon', 'nice', 'paris'];

/** Deterministic data: fraud when a large amount is paid online. */
function fraudData(n: number, seed: number): Table {
  let s = seed;
  const next = (): number => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s / 2147483648;
  };
  const amount: Scalar[] = [];
  const count: Scalar[] = [];
  const city: Scalar[] = [];
  const online: Scalar[] = [];
  const label: Scalar[] = [];
  for (let i = 0; i < n; i++) {
    const a = Math.round(next() * 30000) / 100;
    const o = next() < 0.5;
    amount.push(a);
    count.push(Math.floor(next() * 20));
    city.push(CITIES[Math.floor(next() * 3)] as string);
    online.push(o);
    label.push(a > 150 && o ? 'fraud' : 'ok');
  }
  return {
    rowCount: n,
    columns: [
      { name: 'amount', type: 'float', values: amount },
      { name: 'count', type: 'int', values: count },
      { name: 'city', type: 'string', values: city },
      { name: 'online', type: 'bool', values: online },
      { name: 'label', type: 'string', values: label },
    ],
  };
}

function priceData(n: number): Table {
  const x1: Scalar[] = [];
  const x2: Scalar[] = [];
  const y: Scalar[] = [];
  for (let i = 0; i < n; i++) {
    const a = (i % 37) * 1.5;
    const b = (i * 7) % 11;
    x1.push(a);
    x2.push(b);
    y.push(3 * a - 2 * b + 1);
  }
  return {
    rowCount: n,
    columns: [
      { name: 'x1', type: 'float', values: x1 },
      { name: 'x2', type: 'int', values: x2 },
      { name: 'y', type: 'float', values: y },
    ],
  };
}

function withoutColumns(table: Table, names: readonly string[]): Table {
  return {
    rowCount: table.rowCount,
    columns: table.columns.filter((c) => !names.includes(c.name)),
  };
}

function col(name: string, type: Column['type'], values: Scalar[]): Column {
  return { name, type, values };
}

/** The rows the tests send, as a table (for predicting directly) and as OIP tensors. */
const ROWS = {
  amount: [250.5, 10, 199.99, null] as Scalar[],
  count: [3, 0, 12, 5] as Scalar[],
  city: ['paris', 'nice', 'lyon', null] as Scalar[],
  online: [true, true, false, true] as Scalar[],
};
const ROWS_TABLE: Table = {
  rowCount: 4,
  columns: [
    col('amount', 'float', ROWS.amount),
    col('count', 'int', ROWS.count),
    col('city', 'string', ROWS.city),
    col('online', 'bool', ROWS.online),
  ],
};
function columnInputs(): object[] {
  return [
    { name: 'amount', shape: [4], datatype: 'FP64', data: [...ROWS.amount] },
    { name: 'count', shape: [4], datatype: 'INT64', data: [...ROWS.count] },
    { name: 'city', shape: [4], datatype: 'BYTES', data: [...ROWS.city] },
    { name: 'online', shape: [4], datatype: 'BOOL', data: [...ROWS.online] },
  ];
}

interface ErrorBody {
  error: string;
  code: string;
}
interface OutputBody {
  name: string;
  shape: number[];
  datatype: string;
  data: unknown[];
}
interface InferBody {
  model_name: string;
  model_version: string;
  id: string;
  outputs: OutputBody[];
}

let dir: string;
let registry: ModelRegistry;
let catalog: RegistryCatalog;
let app: FastifyInstance;
let offline: ParquetOfflineStore;
let inferenceLog: InferenceLog;
let fraudV1: LoadedModel;
let fraudV2: LoadedModel;
let price: LoadedModel;
let closeStores: () => Promise<void>;

async function infer(url: string, body: unknown, headers: Record<string, string> = {}) {
  return app.inject({ method: 'POST', url, payload: body as object, headers });
}

function output(body: InferBody, name: string): OutputBody {
  const found = body.outputs.find((o) => o.name === name);
  if (!found) throw new Error(`no output ${name} in ${JSON.stringify(body)}`);
  return found;
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-'));
  const metadata = await openSqliteMetadataStore({ path: path.join(dir, 'metadata.db') });
  const artifacts = await openLocalArtifactStore({ path: path.join(dir, 'artifacts') });
  offline = await openParquetOfflineStore({ path: path.join(dir, 'offline') });
  closeStores = async () => {
    await metadata.close();
    await artifacts.close();
    await offline.close();
  };
  registry = new ModelRegistry(metadata, artifacts, [nativeRuntime]);
  const data = fraudData(600, 7);
  // Version 1 never saw `online`; version 2 did: the two have different signatures.
  const v1Data = withoutColumns(data, ['online']);
  const v1 = await trainModel(v1Data, { target: 'label', seed: 1 });
  const v2 = await trainModel(data, { target: 'label', seed: 1 });
  const p = await trainModel(priceData(300), { target: 'y', seed: 1 });
  const register = (model: string, trained: typeof v1, table: Table) =>
    registry.register({
      model,
      ...nativeVersion(trained, withoutColumns(table, [trained.signature.target])),
    });
  await register('fraud', v1, v1Data);
  await register('fraud', v2, data);
  await registry.setAlias('fraud', 'champion', 2);
  await register('price', p, priceData(300));
  fraudV1 = await nativeRuntime.load(v1.artifact);
  fraudV2 = await nativeRuntime.load(v2.artifact);
  price = await nativeRuntime.load(p.artifact);

  inferenceLog = new InferenceLog({
    offline,
    stateDir: dir,
    flushIntervalMs: 60_000,
    maxBufferedRows: 10_000,
    logger,
  });
  catalog = await createRegistryCatalog(registry, { logger });
  await catalog.whenLoaded();
  catalog.add(linearServed('linear', ['1', '2']));
  app = createServer({ catalog, inferenceLog, logger, limits: LIMITS });
  await app.ready();
});

afterAll(async () => {
  await app?.close();
  await inferenceLog?.close();
  await closeStores?.();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A served model written here: y = 2x + version (so the version that answered shows). */
function linearServed(name: string, versions: readonly string[]): ServedModel {
  const signature: ModelSignature = {
    task: 'regression',
    target: 'y',
    inputs: [{ name: 'x', type: 'float' }],
  };
  return {
    name,
    version: versions[versions.length - 1] as string,
    versions,
    platform: 'test-linear',
    signature,
    monitoredModel: name,
    async infer(input: Table, _context: InferContext, version?: string): Promise<InferResult> {
      const v = version ?? (versions[versions.length - 1] as string);
      const x = input.columns[0]?.values ?? [];
      return {
        prediction: { predict: x.map((value) => 2 * Number(value) + Number(v)) },
        modelVersion: v,
        features: input,
      };
    },
  };
}

describe('health and metadata', () => {
  it('answers live, ready and server metadata', async () => {
    expect((await app.inject('/v2/health/live')).json()).toEqual({ live: true });
    const ready = await app.inject('/v2/health/ready');
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toEqual({ ready: true });
    expect((await app.inject('/v2')).json()).toEqual({
      name: 'ferry',
      version: FERRY_VERSION,
      extensions: [],
    });
  });

  it('describes a model with its champion signature, outputs and classes', async () => {
    const res = await app.inject('/v2/models/fraud');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      name: 'fraud',
      versions: ['1', '2'],
      platform: 'ferry-native',
      inputs: [
        { name: 'amount', datatype: 'FP64', shape: [-1] },
        { name: 'count', datatype: 'INT64', shape: [-1] },
        { name: 'city', datatype: 'BYTES', shape: [-1] },
        { name: 'online', datatype: 'BOOL', shape: [-1] },
      ],
      outputs: [
        { name: 'predict', datatype: 'BYTES', shape: [-1] },
        { name: 'predict_proba', datatype: 'FP64', shape: [-1, 2] },
      ],
      parameters: { task: 'classification', target: 'label', classes: ['fraud', 'ok'] },
    });
  });

  it('describes another version with that version own inputs', async () => {
    const res = await app.inject('/v2/models/fraud/versions/1');
    expect(res.statusCode).toBe(200);
    const body = res.json<{ inputs: { name: string }[]; versions: string[] }>();
    expect(body.inputs.map((i) => i.name)).toEqual(['amount', 'count', 'city']);
    expect(body.versions).toEqual(['1', '2']);
  });

  it('describes a regression model with an FP64 prediction and no probabilities', async () => {
    const body = (await app.inject('/v2/models/price')).json<{
      outputs: unknown;
      parameters: unknown;
    }>();
    expect(body.outputs).toEqual([{ name: 'predict', datatype: 'FP64', shape: [-1] }]);
    expect(body.parameters).toEqual({ task: 'regression', target: 'y' });
  });

  it('answers model and version readiness, 404 for unknown ones', async () => {
    expect((await app.inject('/v2/models/fraud/ready')).json()).toEqual({
      name: 'fraud',
      ready: true,
    });
    const v1 = await app.inject('/v2/models/fraud/versions/1/ready');
    expect(v1.statusCode).toBe(200);
    expect(v1.json()).toEqual({ name: 'fraud', ready: true });
    const nine = await app.inject('/v2/models/fraud/versions/9/ready');
    expect(nine.statusCode).toBe(404);
    expect(nine.json<ErrorBody>().code).toBe('FERRY_MODEL_VERSION_NOT_FOUND');
    const unknown = await app.inject('/v2/models/nope/ready');
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json<ErrorBody>().code).toBe('FERRY_MODEL_NOT_FOUND');
  });

  it('answers 404 with codes for unknown models, versions and routes', async () => {
    const model = await app.inject('/v2/models/nope');
    expect(model.statusCode).toBe(404);
    expect(model.json<ErrorBody>()).toMatchObject({ code: 'FERRY_MODEL_NOT_FOUND' });
    expect(model.json<ErrorBody>().error).toContain('fraud, price');
    const version = await app.inject('/v2/models/fraud/versions/7');
    expect(version.statusCode).toBe(404);
    expect(version.json<ErrorBody>()).toMatchObject({ code: 'FERRY_MODEL_VERSION_NOT_FOUND' });
    expect(version.json<ErrorBody>().error).toContain('versions: 1, 2');
    const route = await app.inject('/v1/whatever');
    expect(route.statusCode).toBe(404);
    expect(route.json<ErrorBody>().code).toBe('FERRY_NOT_FOUND');
    const inferUnknown = await infer('/v2/models/nope/infer', { inputs: columnInputs() });
    expect(inferUnknown.statusCode).toBe(404);
    expect(inferUnknown.json<ErrorBody>().code).toBe('FERRY_MODEL_NOT_FOUND');
    const versionUnknown = await infer('/v2/models/fraud/versions/3/infer', {
      inputs: columnInputs(),
    });
    expect(versionUnknown.statusCode).toBe(404);
    expect(versionUnknown.json<ErrorBody>().code).toBe('FERRY_MODEL_VERSION_NOT_FOUND');
  });
});

describe('inference', () => {
  it('predicts one tensor per column exactly as the model does, with probabilities', async () => {
    const res = await infer('/v2/models/fraud/infer', { id: 'req-1', inputs: columnInputs() });
    expect(res.statusCode).toBe(200);
    const body = res.json<InferBody>();
    const expected = await fraudV2.predict(ROWS_TABLE);
    expect(body.model_name).toBe('fraud');
    expect(body.model_version).toBe('2');
    expect(body.id).toBe('req-1');
    const predict = output(body, 'predict');
    expect(predict).toEqual({
      name: 'predict',
      shape: [4],
      datatype: 'BYTES',
      data: expected.predict,
    });
    // The obvious cases: a large online payment is fraud, a small one is not.
    expect(predict.data[0]).toBe('fraud');
    expect(predict.data[1]).toBe('ok');
    const proba = output(body, 'predict_proba');
    expect(proba.shape).toEqual([4, 2]);
    expect(proba.datatype).toBe('FP64');
    expect(proba.data).toEqual(Array.from(expected.proba ?? []));
    for (let r = 0; r < 4; r++) {
      expect((proba.data[2 * r] as number) + (proba.data[2 * r + 1] as number)).toBeCloseTo(1, 9);
    }
  });

  it('takes nested [N, 1] data and [N] data alike', async () => {
    const nested = columnInputs().map((t) => {
      const tensor = t as { name: string; datatype: string; data: Scalar[] };
      return { ...tensor, shape: [4, 1], data: tensor.data.map((v) => [v]) };
    });
    const flat = (
      await infer('/v2/models/fraud/infer', { inputs: columnInputs() })
    ).json<InferBody>();
    const res = await infer('/v2/models/fraud/infer', { inputs: nested });
    expect(res.statusCode).toBe(200);
    expect(res.json<InferBody>().outputs).toEqual(flat.outputs);
  });

  it('takes one [N, F] BYTES tensor with mixed values in metadata order', async () => {
    const data: Scalar[][] = [];
    for (let r = 0; r < 4; r++) {
      data.push([
        ROWS.amount[r] ?? null,
        ROWS.count[r] ?? null,
        ROWS.city[r] ?? null,
        ROWS.online[r] ?? null,
      ]);
    }
    const columns = (
      await infer('/v2/models/fraud/infer', { inputs: columnInputs() })
    ).json<InferBody>();
    const nested = await infer('/v2/models/fraud/infer', {
      inputs: [{ name: 'features', shape: [4, 4], datatype: 'BYTES', data }],
    });
    expect(nested.statusCode).toBe(200);
    expect(nested.json<InferBody>().outputs).toEqual(columns.outputs);
    const flat = await infer('/v2/models/fraud/infer', {
      inputs: [{ name: 'x', shape: [4, 4], datatype: 'BYTES', data: data.flat() }],
    });
    expect(flat.json<InferBody>().outputs).toEqual(columns.outputs);
  });

  it('takes one [N, F] FP64 tensor for an all-numeric model', async () => {
    const res = await infer('/v2/models/price/infer', {
      inputs: [
        {
          name: 'input-0',
          shape: [3, 2],
          datatype: 'FP64',
          data: [
            [10, 4],
            [0, 0],
            [30.5, 10],
          ],
        },
      ],
    });
    expect(res.statusCode).toBe(200);
    const expected = await price.predict({
      rowCount: 3,
      columns: [col('x1', 'float', [10, 0, 30.5]), col('x2', 'int', [4, 0, 10])],
    });
    const body = res.json<InferBody>();
    expect(body.outputs).toEqual([
      { name: 'predict', shape: [3], datatype: 'FP64', data: expected.predict },
    ]);
    // The model learned y = 3 x1 - 2 x2 + 1 well enough to tell these rows apart.
    expect(body.outputs[0]?.data[2] as number).toBeGreaterThan(body.outputs[0]?.data[0] as number);
  });

  it('refuses a numeric [N, F] tensor for a model with string inputs', async () => {
    const res = await infer('/v2/models/fraud/infer', {
      inputs: [{ name: 'x', shape: [1, 4], datatype: 'FP64', data: [1, 2, 3, 1] }],
    });
    expect(res.statusCode).toBe(400);
    expect(res.json<ErrorBody>().code).toBe('FERRY_INPUT_DATATYPE');
    expect(res.json<ErrorBody>().error).toContain('city');
  });

  it('treats null values as missing and predicts like the model does on nulls', async () => {
    const inputs = [
      { name: 'amount', shape: [2], datatype: 'FP64', data: [null, null] },
      { name: 'count', shape: [2], datatype: 'INT64', data: [null, 4] },
      { name: 'city', shape: [2], datatype: 'BYTES', data: [null, 'nice'] },
      { name: 'online', shape: [2], datatype: 'BOOL', data: [null, false] },
    ];
    const res = await infer('/v2/models/fraud/infer', { inputs });
    expect(res.statusCode).toBe(200);
    const expected = await fraudV2.predict({
      rowCount: 2,
      columns: [
        col('amount', 'float', [null, null]),
        col('count', 'int', [null, 4]),
        col('city', 'string', [null, 'nice']),
        col('online', 'bool', [null, false]),
      ],
    });
    expect(output(res.json<InferBody>(), 'predict').data).toEqual(expected.predict);
  });

  it('takes 0/1 in a numeric tensor for a bool column', async () => {
    const inputs = columnInputs().map((t) => {
      const tensor = t as { name: string; data: Scalar[] };
      return tensor.name === 'online'
        ? { ...tensor, datatype: 'INT32', data: tensor.data.map((v) => (v ? 1 : 0)) }
        : tensor;
    });
    const res = await infer('/v2/models/fraud/infer', { inputs });
    expect(res.statusCode).toBe(200);
    expect(output(res.json<InferBody>(), 'predict').data).toEqual(
      (await fraudV2.predict(ROWS_TABLE)).predict,
    );
  });

  it('returns only the outputs asked for', async () => {
    const res = await infer('/v2/models/fraud/infer', {
      inputs: columnInputs(),
      outputs: [{ name: 'predict_proba' }],
    });
    expect(res.json<InferBody>().outputs.map((o) => o.name)).toEqual(['predict_proba']);
    const bad = await infer('/v2/models/fraud/infer', {
      inputs: columnInputs(),
      outputs: [{ name: 'scores' }],
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json<ErrorBody>()).toMatchObject({ code: 'FERRY_ARGUMENT_INVALID' });
    expect(bad.json<ErrorBody>().error).toContain('predict, predict_proba');
  });

  it('serves another version with its own signature', async () => {
    const inputs = columnInputs().filter((t) => (t as { name: string }).name !== 'online');
    const res = await infer('/v2/models/fraud/versions/1/infer', { inputs });
    expect(res.statusCode).toBe(200);
    const body = res.json<InferBody>();
    expect(body.model_version).toBe('1');
    expect(output(body, 'predict').data).toEqual(
      (await fraudV1.predict(withoutColumns(ROWS_TABLE, ['online']))).predict,
    );
    // Version 1 does not take `online`.
    const extra = await infer('/v2/models/fraud/versions/1/infer', { inputs: columnInputs() });
    expect(extra.statusCode).toBe(400);
    expect(extra.json<ErrorBody>().code).toBe('FERRY_INPUT_UNKNOWN');
    // The explicit default version is the champion.
    const two = await infer('/v2/models/fraud/versions/2/infer', { inputs: columnInputs() });
    expect(two.json<InferBody>().model_version).toBe('2');
  });

  it('serves an added ServedModel, and its versions', async () => {
    const x = [{ name: 'x', shape: [2], datatype: 'FP32', data: [1, 2.5] }];
    const latest = (await infer('/v2/models/linear/infer', { inputs: x })).json<InferBody>();
    expect(latest.model_version).toBe('2');
    expect(latest.outputs).toEqual([
      { name: 'predict', shape: [2], datatype: 'FP64', data: [4, 7] },
    ]);
    const first = (
      await infer('/v2/models/linear/versions/1/infer', { inputs: x })
    ).json<InferBody>();
    expect(first.model_version).toBe('1');
    expect(first.outputs[0]?.data).toEqual([3, 6]);
    expect(() => catalog.add(linearServed('fraud', ['1']))).toThrow(/already served/);
  });

  it('echoes x-request-id, and uses it as the reply id when the body has none', async () => {
    const res = await infer(
      '/v2/models/fraud/infer',
      { inputs: columnInputs() },
      { 'x-request-id': 'trace-42' },
    );
    expect(res.headers['x-request-id']).toBe('trace-42');
    expect(res.json<InferBody>().id).toBe('trace-42');
    const generated = await infer('/v2/models/fraud/infer', { inputs: columnInputs() });
    const id = generated.headers['x-request-id'] as string;
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-/);
    expect(generated.json<InferBody>().id).toBe(id);
    // An id that could break a log line or a header is replaced.
    const unsafe = await app.inject({ url: '/v2/health/live', headers: { 'x-request-id': 'a b' } });
    expect(unsafe.headers['x-request-id']).not.toBe('a b');
    // Error replies carry it too.
    const bad = await app.inject({ url: '/nowhere', headers: { 'x-request-id': 'trace-43' } });
    expect(bad.headers['x-request-id']).toBe('trace-43');
  });
});

describe('bad requests', () => {
  async function expectError(
    body: unknown,
    status: number,
    code: string,
    mentions?: string,
    url = '/v2/models/fraud/infer',
  ) {
    const res = await infer(url, body);
    expect(res.statusCode).toBe(status);
    const json = res.json<ErrorBody>();
    expect(json.code).toBe(code);
    if (mentions !== undefined) expect(json.error).toContain(mentions);
    return json;
  }
  function replace(name: string, patch: object): object[] {
    return columnInputs().map((t) =>
      (t as { name: string }).name === name ? { ...t, ...patch } : t,
    );
  }

  it('refuses malformed JSON, an empty body and a wrong content type with 400', async () => {
    const broken = await app.inject({
      method: 'POST',
      url: '/v2/models/fraud/infer',
      payload: '{"inputs": [',
      headers: { 'content-type': 'application/json' },
    });
    expect(broken.statusCode).toBe(400);
    expect(broken.json<ErrorBody>().code).toBe('FERRY_REQUEST_MALFORMED');
    expect(broken.json<ErrorBody>().error).toContain('not valid JSON');
    const empty = await app.inject({
      method: 'POST',
      url: '/v2/models/fraud/infer',
      payload: '',
      headers: { 'content-type': 'application/json' },
    });
    expect(empty.statusCode).toBe(400);
    expect(empty.json<ErrorBody>().code).toBe('FERRY_REQUEST_MALFORMED');
    const text = await app.inject({
      method: 'POST',
      url: '/v2/models/fraud/infer',
      payload: 'amount=3',
      headers: { 'content-type': 'text/plain' },
    });
    expect(text.statusCode).toBe(400);
    expect(text.json<ErrorBody>()).toMatchObject({ code: 'FERRY_REQUEST_MALFORMED' });
    expect(text.json<ErrorBody>().error).toContain('application/json');
  });

  it('refuses bodies of the wrong outer shape', async () => {
    await expectError([1, 2], 400, 'FERRY_REQUEST_MALFORMED');
    await expectError({ data: [] }, 400, 'FERRY_REQUEST_MALFORMED', 'inputs');
    await expectError({ inputs: [] }, 400, 'FERRY_REQUEST_MALFORMED');
    await expectError(
      { inputs: [{ name: 'amount', shape: [1], datatype: 'FP64' }] },
      400,
      'FERRY_REQUEST_MALFORMED',
      'data',
    );
    await expectError({ inputs: replace('amount', { shape: ['4'] }) }, 400, 'FERRY_INPUT_SHAPE');
    await expectError({ inputs: replace('amount', { shape: [1.5] }) }, 400, 'FERRY_INPUT_SHAPE');
    await expectError({ inputs: replace('amount', { datatype: 64 }) }, 400, 'FERRY_INPUT_DATATYPE');
    await expectError(
      { inputs: [...columnInputs(), columnInputs()[0]] },
      400,
      'FERRY_REQUEST_MALFORMED',
      'twice',
    );
  });

  it('refuses shapes that do not match the data or the model', async () => {
    await expectError(
      { inputs: replace('amount', { shape: [5] }) },
      400,
      'FERRY_INPUT_SHAPE',
      "'amount'",
    );
    await expectError(
      { inputs: replace('amount', { shape: [2, 2] }) },
      400,
      'FERRY_INPUT_SHAPE',
      '[N] or [N, 1]',
    );
    await expectError(
      { inputs: replace('amount', { shape: [3], data: [1, 2, 3] }) },
      400,
      'FERRY_INPUT_SHAPE',
      'same number of rows',
    );
    await expectError(
      { inputs: replace('amount', { shape: [4, 1], data: [[1], [2], [3, 4], [5]] }) },
      400,
      'FERRY_INPUT_SHAPE',
    );
    await expectError(
      { inputs: replace('amount', { data: [1, [2], 3, 4] }) },
      400,
      'FERRY_INPUT_SHAPE',
    );
    await expectError(
      { inputs: [{ name: 'm', shape: [1, 3], datatype: 'BYTES', data: [1, 2, 'nice'] }] },
      400,
      'FERRY_INPUT_SHAPE',
      'F = 4',
    );
    await expectError(
      { inputs: replace('amount', { shape: [0], data: [] }) },
      400,
      'FERRY_INPUT_SHAPE',
    );
  });

  it('refuses datatypes that do not match the values or the column', async () => {
    await expectError(
      { inputs: replace('amount', { data: [1, 'abc', 3, 4] }) },
      400,
      'FERRY_INPUT_DATATYPE',
      '"abc" at index 1',
    );
    await expectError(
      { inputs: replace('amount', { datatype: 'BYTES', data: ['1', '2', '3', '4'] }) },
      400,
      'FERRY_INPUT_DATATYPE',
      'BYTES',
    );
    await expectError(
      { inputs: replace('city', { data: ['paris', 7, 'nice', null] }) },
      400,
      'FERRY_INPUT_DATATYPE',
      'index 1',
    );
    await expectError(
      { inputs: replace('city', { datatype: 'FP64' }) },
      400,
      'FERRY_INPUT_DATATYPE',
      'send it as BYTES',
    );
    await expectError(
      { inputs: replace('count', { data: [1.5, 2, 3, 4] }) },
      400,
      'FERRY_INPUT_DATATYPE',
      'integers',
    );
    await expectError(
      { inputs: replace('online', { data: [true, 'yes', false, true] }) },
      400,
      'FERRY_INPUT_DATATYPE',
    );
    await expectError(
      { inputs: replace('online', { datatype: 'FP64', data: [1, 2, 0, 1] }) },
      400,
      'FERRY_INPUT_DATATYPE',
      '0, 1 or null',
    );
    await expectError(
      { inputs: replace('amount', { datatype: 'FLOAT' }) },
      400,
      'FERRY_INPUT_DATATYPE',
      'FLOAT',
    );
    await expectError(
      { inputs: replace('amount', { datatype: 'BOOL', data: [true, false, true, false] }) },
      400,
      'FERRY_INPUT_DATATYPE',
    );
  });

  it('names unknown inputs and the expected ones, and missing inputs', async () => {
    const unknown = await expectError(
      {
        inputs: [
          ...columnInputs(),
          { name: 'amuont', shape: [4], datatype: 'FP64', data: [1, 2, 3, 4] },
        ],
      },
      400,
      'FERRY_INPUT_UNKNOWN',
      "'amuont'",
    );
    expect(unknown.error).toContain('amount, count, city, online');
    const missing = await expectError(
      { inputs: columnInputs().filter((t) => (t as { name: string }).name !== 'city') },
      400,
      'FERRY_INPUT_MISSING',
      'city',
    );
    expect(missing.error).not.toContain('needs inputs');
  });

  it('refuses more rows than a request may carry, and bodies over the limit', async () => {
    const n = LIMITS.maxRowsPerRequest + 1;
    const tooMany = await expectError(
      { inputs: [{ name: 'x', shape: [n], datatype: 'FP64', data: new Array<number>(n).fill(1) }] },
      400,
      'FERRY_INPUT_SHAPE',
      'max_rows_per_request',
      '/v2/models/linear/infer',
    );
    expect(tooMany.error).toContain(String(n));
    const big = await infer('/v2/models/linear/infer', {
      inputs: [
        {
          name: 'x',
          shape: [20000],
          datatype: 'FP64',
          data: new Array<number>(20000).fill(123.456),
        },
      ],
    });
    expect(big.statusCode).toBe(413);
    expect(big.json<ErrorBody>().code).toBe('FERRY_REQUEST_TOO_LARGE');
  });

  it('keeps answering good requests after bad ones', async () => {
    for (const payload of ['{', '[]', '{"inputs": 3}', 'null']) {
      await app.inject({
        method: 'POST',
        url: '/v2/models/fraud/infer',
        payload,
        headers: { 'content-type': 'application/json' },
      });
    }
    const res = await infer('/v2/models/fraud/infer', { inputs: columnInputs() });
    expect(res.statusCode).toBe(200);
    expect((await app.inject('/v2/health/live')).statusCode).toBe(200);
  });
});

describe('metrics and the inference log', () => {
  it('exports request counts, latency, rows and inference log counters', async () => {
    await infer('/v2/models/price/infer', {
      inputs: [{ name: 'p', shape: [2, 2], datatype: 'FP64', data: [1, 2, 3, 4] }],
    });
    await app.inject('/v2/models/made-up-name');
    const res = await app.inject('/metrics');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toContain('text/plain');
    const text = res.body;
    expect(text).toMatch(
      /ferry_requests_total\{route="\/v2\/models\/:name\/infer",model="price",status="200"\} [1-9]/,
    );
    expect(text).toMatch(
      /ferry_requests_total\{route="\/v2\/models\/:name\/infer",model="fraud",status="400"\} [1-9]/,
    );
    expect(text).toMatch(/ferry_request_duration_seconds_count\{model="price",version="1"\} [1-9]/);
    expect(text).toMatch(/ferry_inference_rows_total\{model="price"\} [2-9]/);
    expect(text).toContain('ferry_inference_log_dropped_total 0');
    expect(text).toContain('ferry_inference_log_spilled_rows_total 0');
    expect(text).toContain('process_cpu_user_seconds_total');
    // A name nobody serves never becomes a label value.
    expect(text).not.toContain('made-up-name');
  });

  it('logs each prediction with its features, version and request id', async () => {
    await inferenceLog.flush();
    const before = (await offline.hasTable('inference_log/fraud'))
      ? await offline.count('inference_log/fraud')
      : 0;
    const res = await infer(
      '/v2/models/fraud/infer',
      { inputs: columnInputs() },
      { 'x-request-id': 'logged-1' },
    );
    const predicted = output(res.json<InferBody>(), 'predict').data;
    await inferenceLog.flush();
    expect(await offline.count('inference_log/fraud')).toBe(before + 4);
    const rows = await offline.query(
      "SELECT * FROM {{inference_log/fraud}} WHERE _request_id = 'logged-1' ORDER BY amount NULLS LAST",
    );
    const get = (name: string) => rows.columns.find((c) => c.name === name)?.values;
    expect(rows.rowCount).toBe(4);
    expect(get('_model_version')).toEqual(['2', '2', '2', '2']);
    expect(get('_served')).toEqual(['fraud', 'fraud', 'fraud', 'fraud']);
    expect(get('amount')).toEqual([10, 199.99, 250.5, null]);
    expect(get('city')).toEqual(['nice', 'lyon', 'paris', null]);
    // Rows sorted by amount: 10 (row 1), 199.99 (row 2), 250.5 (row 0), null (row 3).
    expect(get('_prediction')).toEqual([predicted[1], predicted[2], predicted[0], predicted[3]]);
  });
});

describe('catalog', () => {
  it('swaps to a new champion on refresh while a taken snapshot keeps its version', async () => {
    const taken = catalog.get('fraud') as ServedModel;
    await registry.setAlias('fraud', 'champion', 1);
    const report = await catalog.refresh();
    expect(report.swapped).toEqual([{ model: 'fraud', from: '2', to: '1' }]);
    expect(report.failed).toEqual([]);
    const res = await infer('/v2/models/fraud/infer', {
      inputs: columnInputs().filter((t) => (t as { name: string }).name !== 'online'),
    });
    expect(res.statusCode).toBe(200);
    expect(res.json<InferBody>().model_version).toBe('1');
    const meta = (await app.inject('/v2/models/fraud')).json<{ inputs: unknown[] }>();
    expect(meta.inputs).toHaveLength(3);
    // A request that took the old snapshot finishes on version 2, all of it.
    const old = await taken.infer(ROWS_TABLE, { requestId: 'in-flight' });
    expect(old.modelVersion).toBe('2');
    expect(old.prediction.predict).toEqual((await fraudV2.predict(ROWS_TABLE)).predict);
    await registry.setAlias('fraud', 'champion', 2);
    expect((await catalog.refresh()).swapped).toEqual([{ model: 'fraud', from: '1', to: '2' }]);
    expect((await catalog.refresh()).swapped).toEqual([]);
  });

  it('stays not ready, and says why, when a model artifact is corrupt', async () => {
    const artifactsDir = path.join(dir, 'artifacts');
    const files = fs
      .readdirSync(artifactsDir, { recursive: true, withFileTypes: true })
      .filter((f) => f.isFile());
    const priceVersion = await registry.resolve('price');
    const file = files.find((f) =>
      path.join(f.parentPath, f.name).endsWith(priceVersion.artifactKey),
    );
    expect(file).toBeDefined();
    const full = path.join((file as fs.Dirent).parentPath, (file as fs.Dirent).name);
    const original = fs.readFileSync(full);
    fs.writeFileSync(full, Buffer.concat([original, Buffer.from(' ')]));
    try {
      const broken = await createRegistryCatalog(registry, { logger, models: ['price'] });
      await broken.whenLoaded();
      expect(broken.ready()).toBe(false);
      expect(broken.failures().map((f) => [f.model, f.error.code])).toEqual([
        ['price', 'FERRY_ARTIFACT_CORRUPT'],
      ]);
      const server = createServer({
        catalog: broken,
        logger,
        limits: LIMITS,
        defaultMetrics: false,
      });
      const ready = await server.inject('/v2/health/ready');
      expect(ready.statusCode).toBe(503);
      expect(ready.json()).toEqual({ ready: false });
      expect((await server.inject('/v2/models/price/ready')).statusCode).toBe(503);
      const res = await server.inject({
        method: 'POST',
        url: '/v2/models/price/infer',
        payload: { inputs: [{ name: 'p', shape: [1, 2], datatype: 'FP64', data: [1, 2] }] },
      });
      expect(res.statusCode).toBe(500);
      expect(res.json<ErrorBody>().code).toBe('FERRY_ARTIFACT_CORRUPT');
      await server.close();
    } finally {
      fs.writeFileSync(full, original);
    }
  });

  it('works over any ServedModelCatalog, passing the version to infer', async () => {
    let ready = false;
    const served = linearServed('plain', ['1', '2']);
    const plain: ServedModelCatalog = {
      list: () => [served],
      get: (n) => (n === 'plain' ? served : undefined),
      ready: () => ready,
    };
    const server = createServer({ catalog: plain, logger, limits: LIMITS, defaultMetrics: false });
    expect((await server.inject('/v2/health/ready')).statusCode).toBe(503);
    ready = true;
    expect((await server.inject('/v2/health/ready')).statusCode).toBe(200);
    const res = await server.inject({
      method: 'POST',
      url: '/v2/models/plain/versions/1/infer',
      payload: { inputs: [{ name: 'x', shape: [1], datatype: 'FP64', data: [10] }] },
    });
    expect(res.json<InferBody>()).toMatchObject({ model_version: '1', outputs: [{ data: [21] }] });
    expect((await server.inject('/v2/models/plain/versions/5')).statusCode).toBe(404);
    await server.close();
  });
});
