import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openLocalArtifactStore, type LocalArtifactStore } from '../artifacts/local.js';
import type { LoadedModel, ModelRuntime } from '../core/model.js';
import type { Scalar, Table } from '../core/table.js';
import { profileTable } from '../data/profile.js';
import { openSqliteMetadataStore, type SqliteMetadataStore } from '../metadata/sqlite.js';
import { ModelRegistry } from '../registry/registry.js';
import { trainModel, type TrainResult } from '../training/train.js';
import { createRegistryCatalog, warmupTable } from './catalog.js';
import { nativeRuntime } from './runtimes/native.js';
import { nativeVersion } from '../testing/model-fixture.js';

/** The real native runtime, counting the loads it does. */
class CountingRuntime implements ModelRuntime {
  readonly name = 'native';
  loads = 0;
  load(artifact: Uint8Array): Promise<LoadedModel> {
    this.loads++;
    return nativeRuntime.load(artifact);
  }
}

function data(n: number, slope: number): Table {
  const x: Scalar[] = [];
  const y: Scalar[] = [];
  for (let i = 0; i < n; i++) {
    x.push(i % 50);
    y.push(slope * (i % 50) + 1);
  }
  return {
    rowCount: n,
    columns: [
      { name: 'x', type: 'float', values: x },
      { name: 'y', type: 'float', values: y },
    ],
  };
}

let dir: string;
let metadata: SqliteMetadataStore;
let artifacts: LocalArtifactStore;
let runtime: CountingRuntime;
let registry: ModelRegistry;
let trained: TrainResult;

async function register(model: string): Promise<void> {
  await registry.register({ model, ...nativeVersion(trained, data(200, 2)) });
}

beforeEach(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-'));
  metadata = await openSqliteMetadataStore({ path: path.join(dir, 'metadata.db') });
  artifacts = await openLocalArtifactStore({ path: path.join(dir, 'artifacts') });
  runtime = new CountingRuntime();
  registry = new ModelRegistry(metadata, artifacts, [runtime]);
  trained ??= await trainModel(data(200, 2), { target: 'y', seed: 1 });
});

afterEach(async () => {
  await metadata.close();
  await artifacts.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const x = (values: number[]): Table => ({
  rowCount: values.length,
  columns: [{ name: 'x', type: 'float', values }],
});

describe('createRegistryCatalog', () => {
  it('serves the newest version when no champion is set, and loads other versions once, on demand', async () => {
    await register('m');
    await register('m');
    await register('m');
    await registry.removeAlias('m', 'champion'); // it pointed at version 1
    const catalog = await createRegistryCatalog(registry);
    await catalog.whenLoaded();
    expect(catalog.ready()).toBe(true);
    expect(catalog.get('m')?.version).toBe('3');
    expect(catalog.get('m')?.versions).toEqual(['1', '2', '3']);
    expect(runtime.loads).toBe(1);

    const one = await catalog.getVersion('m', '1');
    expect(one.version).toBe('1');
    expect(runtime.loads).toBe(2);
    expect(await catalog.getVersion('m', '1')).toBe(one);
    const result = await one.infer(x([10, 20]), { requestId: 'r' });
    expect(result.modelVersion).toBe('1');
    // Trained on y = 2x + 1.
    expect(result.prediction.predict[1] as number).toBeGreaterThan(
      result.prediction.predict[0] as number,
    );
    expect(runtime.loads).toBe(2);
    await expect(catalog.getVersion('m', '4')).rejects.toMatchObject({
      code: 'FERRY_MODEL_VERSION_NOT_FOUND',
    });
    await expect(catalog.getVersion('m', 'latest')).rejects.toMatchObject({
      code: 'FERRY_MODEL_VERSION_NOT_FOUND',
    });
    await expect(catalog.getVersion('other', '1')).rejects.toMatchObject({
      code: 'FERRY_MODEL_NOT_FOUND',
    });
  });

  it('serves only the models asked for, and names the missing ones', async () => {
    await register('a');
    await register('b');
    const catalog = await createRegistryCatalog(registry, { models: ['b'] });
    expect(catalog.list().map((m) => m.name)).toEqual(['b']);
    await expect(createRegistryCatalog(registry, { models: ['b', 'zz'] })).rejects.toMatchObject({
      code: 'FERRY_MODEL_NOT_FOUND',
    });
  });

  it('picks up models and versions registered after start on refresh', async () => {
    await register('a');
    const catalog = await createRegistryCatalog(registry);
    await catalog.whenLoaded();
    await register('a');
    await register('b');
    const report = await catalog.refresh();
    expect(report.swapped).toEqual([{ model: 'b', from: null, to: '1' }]);
    // Version 2 of 'a' is reachable, while the champion (1) still answers by default.
    expect(catalog.get('a')?.versions).toEqual(['1', '2']);
    expect(catalog.get('a')?.version).toBe('1');
    expect((await catalog.getVersion('a', '2')).version).toBe('2');
    expect(catalog.get('b')?.version).toBe('1');
  });

  it('becomes ready once a model that failed to load loads on refresh', async () => {
    await register('m');
    const version = await registry.resolve('m');
    const file = path.join(dir, 'artifacts', version.artifactKey);
    const original = fs.readFileSync(file);
    fs.writeFileSync(file, 'not the model');
    const catalog = await createRegistryCatalog(registry);
    await catalog.whenLoaded();
    expect(catalog.ready()).toBe(false);
    expect(catalog.isModelReady('m')).toBe(false);
    await expect(catalog.get('m')?.infer(x([1]), { requestId: 'r' })).rejects.toMatchObject({
      code: 'FERRY_ARTIFACT_CORRUPT',
    });
    expect((await catalog.refresh()).failed.map((f) => f.error.code)).toEqual([
      'FERRY_ARTIFACT_CORRUPT',
    ]);

    fs.writeFileSync(file, original);
    expect((await catalog.refresh()).failed).toEqual([]);
    expect(catalog.ready()).toBe(true);
    expect((await catalog.get('m')?.infer(x([1]), { requestId: 'r' }))?.modelVersion).toBe('1');
  });

  it('keeps serving the old champion when the new one fails to load', async () => {
    await register('m');
    await register('m');
    const catalog = await createRegistryCatalog(registry);
    await catalog.whenLoaded();
    const v2 = await registry.resolve('m:2');
    fs.writeFileSync(path.join(dir, 'artifacts', v2.artifactKey), 'damaged');
    await registry.setAlias('m', 'champion', 2);
    const report = await catalog.refresh();
    expect(report.swapped).toEqual([]);
    expect(report.failed.map((f) => [f.model, f.version])).toEqual([['m', '2']]);
    expect(catalog.get('m')?.version).toBe('1');
    expect(catalog.ready()).toBe(true);
  });
});

describe('warmupTable', () => {
  it('uses training medians and most frequent categories, null when unknown', () => {
    const profile = profileTable({
      rowCount: 4,
      columns: [
        { name: 'n', type: 'int', values: [1, 2, 3, 100] },
        { name: 'c', type: 'string', values: ['b', 'a', 'b', null] },
      ],
    });
    const table = warmupTable(
      {
        task: 'regression',
        target: 'y',
        inputs: [
          { name: 'n', type: 'int' },
          { name: 'c', type: 'string' },
          { name: 'new', type: 'float' },
        ],
      },
      profile,
    );
    expect(table.rowCount).toBe(1);
    const n = table.columns[0]?.values[0] as number;
    expect(Number.isInteger(n) && n >= 2 && n <= 3).toBe(true);
    expect(table.columns.slice(1).map((c) => c.values)).toEqual([['b'], [null]]);
  });
});
