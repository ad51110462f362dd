import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openLocalArtifactStore } from '../artifacts/local.js';
import type { ArtifactStore } from '../artifacts/artifact-store.js';
import type { LoadedModel, ModelRuntime, ModelSignature } from '../core/model.js';
import { FerryError } from '../errors/index.js';
import type { MetadataStore } from '../metadata/metadata-store.js';
import { openSqliteMetadataStore } from '../metadata/sqlite.js';
import { ModelRegistry, parseModelRef, type RegisterInput } from './registry.js';

const SIGNATURE: ModelSignature = {
  task: 'regression',
  target: 'y',
  inputs: [{ name: 'x', type: 'float' }],
};

/** A runtime whose artifact is the slope of y = slope * x, as text: enough to tell versions apart. */
const slopeRuntime: ModelRuntime = {
  name: 'slope',
  load: async (bytes): Promise<LoadedModel> => {
    const slope = Number(new TextDecoder().decode(bytes));
    return {
      signature: SIGNATURE,
      predict: (table) => ({
        predict: (table.columns[0]?.values ?? []).map((v) => slope * Number(v)),
      }),
    };
  },
};

function input(slope: number): RegisterInput {
  return {
    model: 'demand',
    runtime: 'slope',
    artifact: new TextEncoder().encode(String(slope)),
    signature: SIGNATURE,
    metrics: { rmse: 1 / slope },
    params: { slope },
    lineage: { data: 'test' },
    profile: { rowCount: 0, columns: {} },
  };
}

async function code(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof FerryError) return error.code;
    throw error;
  }
  return 'no error';
}

describe('ModelRegistry', () => {
  let dir: string;
  let metadata: MetadataStore;
  let artifacts: ArtifactStore;
  let registry: ModelRegistry;

  beforeEach(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'ferry-registry-'));
    metadata = await openSqliteMetadataStore({ path: path.join(dir, 'metadata.db') });
    artifacts = await openLocalArtifactStore({ path: path.join(dir, 'artifacts') });
    registry = new ModelRegistry(metadata, artifacts, [slopeRuntime]);
  });

  afterEach(async () => {
    await metadata.close();
    await artifacts.close();
  });

  it('makes the first version champion and leaves champion alone afterwards', async () => {
    const first = await registry.register(input(2));
    const second = await registry.register(input(3));
    expect(first).toMatchObject({ promoted: true, version: { version: 1 } });
    expect(second).toMatchObject({ promoted: false, version: { version: 2 } });
    expect((await registry.resolve('demand')).version).toBe(1);
    expect((await registry.resolve('demand@champion')).version).toBe(1);
    expect((await registry.resolve('demand:2')).version).toBe(2);
    await registry.setAlias('demand', 'champion', 2);
    expect((await registry.resolve('demand')).version).toBe(2);
  });

  it('resolves a bare name without champion to the newest version', async () => {
    await registry.register(input(2));
    await registry.register(input(5));
    await registry.removeAlias('demand', 'champion');
    expect((await registry.resolve('demand')).version).toBe(2);
  });

  it('loads the artifact of each version with its runtime', async () => {
    await registry.register(input(2));
    await registry.register(input(5));
    const v2 = await registry.load(await registry.resolve('demand:2'));
    const out = await v2.predict({
      columns: [{ name: 'x', type: 'float', values: [1, 3] }],
      rowCount: 2,
    });
    expect(out.predict).toEqual([5, 15]);
  });

  it('refuses an artifact changed on disk after registration', async () => {
    await registry.register(input(2));
    const folder = path.join(dir, 'artifacts', 'models', 'demand');
    const file = readdirSync(folder).find((f) => f.endsWith('.bin'));
    expect(file).toBeDefined();
    writeFileSync(path.join(folder, file as string), '9');
    expect(await code(registry.load(await registry.resolve('demand')))).toBe(
      'FERRY_ARTIFACT_CORRUPT',
    );
  });

  it('names what exists when a reference does not resolve', async () => {
    await registry.register(input(2));
    expect(await code(registry.resolve('nobody'))).toBe('FERRY_MODEL_NOT_FOUND');
    expect(await code(registry.resolve('demand:7'))).toBe('FERRY_MODEL_VERSION_NOT_FOUND');
    expect(await code(registry.resolve('demand@challenger'))).toBe('FERRY_MODEL_VERSION_NOT_FOUND');
    await registry
      .resolve('demand@challenger')
      .catch((e: Error) => expect(e.message).toContain('champion -> 1'));
  });

  it('parses model references', () => {
    expect(parseModelRef('fraud')).toEqual({ model: 'fraud' });
    expect(parseModelRef('fraud@champion')).toEqual({ model: 'fraud', alias: 'champion' });
    expect(parseModelRef('fraud.v2:12')).toEqual({ model: 'fraud.v2', version: 12 });
    expect(() => parseModelRef('fraud@')).toThrow(FerryError);
    expect(() => parseModelRef('../x')).toThrow(FerryError);
  });
});
