import { describe, expect, it } from 'vitest';
import { loadProject } from '../config/load.js';
import type { Scalar, Table } from '../core/table.js';
import { openWorkspace, type Workspace } from '../project/workspace.js';
import { expectCode } from '../testing/harness.js';
import { tempDirs } from '../testing/temp.js';
import { createRng } from '../training/random.js';
import { runTrainingJob } from '../training/job.js';
import { decodeBundle, exportBundle, importBundle } from './bundle.js';

const tmp = tempDirs();

/** Rows with a numeric input (10% missing), a string input, and a class that depends on both. */
function table(rows: number, seed: number): Table {
  const random = createRng(seed);
  const x: Scalar[] = [];
  const color: Scalar[] = [];
  const label: Scalar[] = [];
  const colors = ['red', 'green', 'blue'];
  for (let i = 0; i < rows; i++) {
    const v = Math.round((random() * 4 - 2) * 100) / 100;
    const c = colors[Math.floor(random() * 3)] ?? 'red';
    x.push(random() < 0.1 ? null : v);
    color.push(c);
    label.push((c === 'red' ? v + 1 : Math.sin(3 * v)) + (random() - 0.5) > 0.3 ? 'yes' : 'no');
  }
  return {
    rowCount: rows,
    columns: [
      { name: 'x', type: 'float', values: x },
      { name: 'color', type: 'string', values: color },
      { name: 'label', type: 'string', values: label },
    ],
  };
}

async function withProject<T>(dir: string, fn: (ws: Workspace) => Promise<T>): Promise<T> {
  const ws = await openWorkspace(loadProject(dir, { requireConfig: false }));
  try {
    return await fn(ws);
  } finally {
    await ws.close();
  }
}

async function train(ws: Workspace, model: string, seed: number): Promise<number> {
  const { version } = await runTrainingJob(ws.metadata, ws.registry, {
    table: table(400, seed),
    target: 'label',
    model,
    seed,
  });
  return version.version;
}

describe('model bundles', () => {
  it('moves a version to another project: same predictions, metrics and lineage, as the next version', async () => {
    const a = tmp.fresh();
    const b = tmp.fresh();
    const probe = table(200, 99);
    const source = await withProject(a, async (ws) => {
      await train(ws, 'churn', 1);
      const { bytes, version } = await exportBundle(ws, 'churn@champion');
      const loaded = await ws.registry.load(version);
      return { bytes, version, prediction: await loaded.predict(probe) };
    });
    expect(source.prediction.predict.length).toBe(200);

    await withProject(b, async (ws) => {
      // B already has a model of that name: the import becomes its version 2, not its champion.
      await train(ws, 'churn', 2);
      const imported = await importBundle(ws.registry, source.bytes, { source: 'churn.json' });
      expect(imported.version.version).toBe(2);
      expect(imported.promoted).toBe(false);
      expect(imported.version.sha256).toBe(source.version.sha256);
      expect(imported.version.metrics).toEqual(source.version.metrics);
      expect(imported.version.params).toEqual(source.version.params);
      expect(imported.version.signature).toEqual(source.version.signature);
      expect(imported.version.profile).toEqual(source.version.profile);
      expect(imported.version.lineage).toEqual({
        ...source.version.lineage,
        imported_from: {
          model: 'churn',
          version: 1,
          sha256: source.version.sha256,
          exported_at: imported.bundle.exportedAt,
          ferry_version: imported.bundle.ferryVersion,
          bundle: 'churn.json',
        },
      });
      const loaded = await ws.registry.load(await ws.registry.resolve('churn:2'));
      const prediction = await loaded.predict(probe);
      expect(prediction.predict).toEqual(source.prediction.predict);
      expect(prediction.proba).toEqual(source.prediction.proba);

      // Under another name, into an empty model: version 1 and champion.
      const renamed = await importBundle(ws.registry, source.bytes, { name: 'churn_eu' });
      expect(renamed.version).toMatchObject({ model: 'churn_eu', version: 1 });
      expect(renamed.promoted).toBe(true);
    });
  }, 60_000);

  it('refuses a tampered or foreign bundle and stores nothing', async () => {
    const a = tmp.fresh();
    const { bytes } = await withProject(a, async (ws) => {
      await train(ws, 'churn', 1);
      return exportBundle(ws, 'churn:1');
    });
    const envelope = JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>;
    const artifact = Buffer.from(envelope.artifact as string, 'base64');
    // One changed byte in the middle of the artifact.
    artifact[artifact.length >> 1] = (artifact[artifact.length >> 1] ?? 0) ^ 0x01;
    const tampered = new TextEncoder().encode(
      JSON.stringify({ ...envelope, artifact: artifact.toString('base64') }),
    );
    const foreign = new TextEncoder().encode(JSON.stringify({ format: 'onnx', model: 'x' }));
    const truncated = bytes.slice(0, bytes.length >> 1);

    await withProject(tmp.fresh(), async (ws) => {
      const error = await expectCode(importBundle(ws.registry, tampered), 'FERRY_ARTIFACT_CORRUPT');
      expect(error.message).toContain('SHA-256');
      await expectCode(importBundle(ws.registry, foreign), 'FERRY_ARGUMENT_INVALID');
      await expectCode(importBundle(ws.registry, truncated), 'FERRY_ARGUMENT_INVALID');
      const wrongShape = new TextEncoder().encode(
        JSON.stringify({ ...envelope, signature: { task: 'ranking' } }),
      );
      await expectCode(importBundle(ws.registry, wrongShape), 'FERRY_ARGUMENT_INVALID');
      expect(await ws.registry.listModels()).toEqual([]);
      expect(await ws.artifacts.list()).toEqual([]);
    });
    expect(decodeBundle(bytes).model).toBe('churn');
  }, 60_000);

  it('deletes only a version no alias points to, with its artifact', async () => {
    await withProject(tmp.fresh(), async (ws) => {
      await train(ws, 'churn', 1);
      await train(ws, 'churn', 2);
      await train(ws, 'churn', 3);
      await ws.registry.setAlias('churn', 'challenger', 2);
      const [v1, v2, v3] = await ws.registry.versions('churn');

      // champion -> 1, challenger -> 2: both refused, naming the alias.
      const champion = await expectCode(
        ws.registry.deleteVersion('churn', 1),
        'FERRY_ARGUMENT_INVALID',
      );
      expect(champion.message).toContain("'champion'");
      const challenger = await expectCode(
        ws.registry.deleteVersion('churn', 2),
        'FERRY_ARGUMENT_INVALID',
      );
      expect(challenger.message).toContain("'challenger'");

      expect(await ws.registry.deleteVersion('churn', 3)).toEqual({ artifactDeleted: true });
      expect(await ws.artifacts.exists(v3?.artifactKey ?? '')).toBe(false);
      expect((await ws.registry.versions('churn')).map((v) => v.version)).toEqual([1, 2]);
      await expectCode(ws.registry.deleteVersion('churn', 3), 'FERRY_MODEL_VERSION_NOT_FOUND');
      await expectCode(ws.registry.deleteVersion('nope', 1), 'FERRY_MODEL_NOT_FOUND');

      // Once the alias moves away, the version goes; a deleted number is never reused.
      await ws.registry.removeAlias('churn', 'challenger');
      await ws.registry.deleteVersion('churn', 2);
      expect(await ws.artifacts.exists(v2?.artifactKey ?? '')).toBe(false);
      expect(await ws.artifacts.exists(v1?.artifactKey ?? '')).toBe(true);
      expect((await train(ws, 'churn', 4)) as number).toBe(4);

      // An artifact another version still records is kept.
      const shared = await ws.metadata.registerModelVersion({ ...(v1 ?? fail()), model: 'copy' });
      await ws.registry.setAlias('churn', 'champion', 4);
      expect(await ws.registry.deleteVersion('churn', 1)).toEqual({ artifactDeleted: false });
      expect(await ws.artifacts.exists(shared.artifactKey)).toBe(true);
      await ws.registry.load(await ws.registry.resolve('copy:1'));
    });
  }, 60_000);
});

function fail(): never {
  throw new Error('expected a version');
}
