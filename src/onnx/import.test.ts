import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLocalArtifactStore } from '../artifacts/local.js';
import { createLogger } from '../core/logger.js';
import type { ModelSignature } from '../core/model.js';
import type { Scalar, Table } from '../core/table.js';
import { openSqliteMetadataStore } from '../metadata/sqlite.js';
import { ModelRegistry } from '../registry/registry.js';
import { createRegistryCatalog } from '../serving/catalog.js';
import { createServer } from '../serving/http/server.js';
import { nativeRuntime } from '../serving/runtimes/native.js';
import { onnxRuntime } from '../serving/runtimes/onnx.js';
import { tempDirs } from '../testing/temp.js';
import { decodeNativeModel, NativePredictor } from '../training/native-model.js';
import { trainModel } from '../training/train.js';
import { exportOnnx } from './export.js';
import { importOnnx } from './import.js';
import { foreignLinearClassifier, foreignLinearRegressor } from './testing.js';

const tmp = tempDirs();
const logger = createLogger({ level: 'silent' });
let registry: ModelRegistry;
let close: () => Promise<void>;

/** Fraud when a large amount is paid in Paris or online; amounts are float32 values. */
function fraudData(n: number, seed: number): Table {
  let s = seed;
  const next = (): number => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s / 2147483648;
  };
  const cities = ['lyon', 'nice', 'paris'];
  const amount: Scalar[] = [];
  const city: Scalar[] = [];
  const label: Scalar[] = [];
  for (let i = 0; i < n; i++) {
    const a = Math.fround(next() * 300);
    const c = next() < 0.05 ? null : (cities[Math.floor(next() * 3)] as string);
    amount.push(next() < 0.05 ? null : a);
    city.push(c);
    label.push(a > 150 && (c === 'paris' || next() < 0.3) ? 'fraud' : 'ok');
  }
  return {
    rowCount: n,
    columns: [
      { name: 'amount', type: 'float', values: amount },
      { name: 'city', type: 'string', values: city },
      { name: 'label', type: 'string', values: label },
    ],
  };
}

beforeAll(async () => {
  const dir = tmp.fresh();
  const metadata = await openSqliteMetadataStore({ path: path.join(dir, 'metadata.db') });
  const artifacts = await openLocalArtifactStore({ path: path.join(dir, 'artifacts') });
  registry = new ModelRegistry(metadata, artifacts, [nativeRuntime, onnxRuntime]);
  close = async () => {
    await metadata.close();
    await artifacts.close();
  };
});

afterAll(async () => {
  await close?.();
});

describe('importOnnx', () => {
  it('registers an exported model that loads through the registry and predicts like native', async () => {
    const trained = await trainModel(fraudData(600, 3), { target: 'label', seed: 1 });
    const doc = decodeNativeModel(trained.artifact);
    const { version, promoted } = await importOnnx(exportOnnx(doc), {
      registry,
      name: 'fraud-onnx',
    });
    expect(version).toMatchObject({ model: 'fraud-onnx', version: 1, runtime: 'onnx' });
    expect(version.signature).toEqual(doc.signature);
    expect(promoted).toBe(true);
    const loaded = await registry.load(await registry.resolve('fraud-onnx@champion'));
    const live = fraudData(200, 11);
    const native = new NativePredictor(doc).predict(live);
    const onnx = await loaded.predict(live);
    expect(onnx.predict).toEqual(native.predict);
    native.proba?.forEach((p, i) =>
      expect(Math.abs(p - (onnx.proba?.[i] as number))).toBeLessThan(1e-5),
    );
  });

  it('overrides the signature read from the file', async () => {
    const signature: ModelSignature = {
      task: 'regression',
      target: 'price',
      inputs: [
        { name: 'rooms', type: 'int' },
        { name: 'area', type: 'float' },
      ],
    };
    const { version } = await importOnnx(foreignLinearRegressor([10, 2], 5), {
      registry,
      name: 'houses',
      signature,
    });
    expect(version.signature).toEqual(signature);
    const loaded = await registry.load(version);
    expect(loaded.signature).toEqual(signature);
    const table: Table = {
      rowCount: 1,
      columns: [
        { name: 'rooms', type: 'int', values: [3] },
        { name: 'area', type: 'float', values: [50] },
      ],
    };
    expect((await loaded.predict(table)).predict).toEqual([135]);
  });

  it('refuses what is not ONNX and a classifier without class labels', async () => {
    await expect(
      importOnnx(new TextEncoder().encode('not onnx at all'), { registry, name: 'junk' }),
    ).rejects.toMatchObject({ code: 'FERRY_MODEL_INVALID' });
    const signature: ModelSignature = {
      task: 'classification',
      target: 'y',
      inputs: [{ name: 'float_input', type: 'float' }],
    };
    await expect(
      importOnnx(foreignLinearRegressor([1], 0), { registry, name: 'junk', signature }),
    ).rejects.toMatchObject({
      code: 'FERRY_ARGUMENT_INVALID',
      message: expect.stringContaining('without its class labels'),
    });
    await expect(registry.versions('junk')).rejects.toMatchObject({
      code: 'FERRY_MODEL_NOT_FOUND',
    });
  });

  it('serves foreign ONNX models through the Open Inference Protocol server', async () => {
    await importOnnx(foreignLinearRegressor([3, -2, 0.5], 1), { registry, name: 'foreign' });
    await importOnnx(
      foreignLinearClassifier(
        [
          [2, 0],
          [0, 2],
        ],
        [0, 0],
        ['cat', 'dog'],
      ),
      { registry, name: 'pets' },
    );
    const catalog = await createRegistryCatalog(registry, { logger });
    await catalog.whenLoaded();
    const app = createServer({
      catalog,
      logger,
      limits: { bodyLimitBytes: 64 * 1024, maxRowsPerRequest: 100 },
      defaultMetrics: false,
    });
    try {
      const meta = (await app.inject('/v2/models/foreign')).json<{
        platform: string;
        inputs: unknown[];
      }>();
      expect(meta.platform).toBe('onnx');
      expect(meta.inputs).toHaveLength(3);
      const res = await app.inject({
        method: 'POST',
        url: '/v2/models/foreign/infer',
        payload: {
          inputs: [
            { name: 'float_input', shape: [2, 3], datatype: 'FP32', data: [1, 2, 4, 0, 0.5, -2] },
          ],
        },
      });
      expect(res.statusCode).toBe(200);
      const body = res.json<{ outputs: { name: string; data: unknown[] }[] }>();
      expect(body.outputs.find((o) => o.name === 'predict')?.data).toEqual([2, -1]);

      const pets = await app.inject({
        method: 'POST',
        url: '/v2/models/pets/infer',
        payload: {
          inputs: [{ name: 'float_input', shape: [2, 2], datatype: 'FP32', data: [3, 0, 0, 3] }],
        },
      });
      expect(pets.statusCode).toBe(200);
      const answer = pets.json<{ outputs: { name: string; data: unknown[]; shape: number[] }[] }>();
      expect(answer.outputs.find((o) => o.name === 'predict')?.data).toEqual(['cat', 'dog']);
      const proba = answer.outputs.find((o) => o.name === 'predict_proba');
      expect(proba?.shape).toEqual([2, 2]);
      expect((proba?.data[0] as number) > 0.99).toBe(true);
    } finally {
      await app.close();
    }
  });
});
