/**
 * The MetadataStore contract as Vitest cases, run against every backend (SQLite now,
 * PostgreSQL later) so that they all behave the same. See `src/metadata/metadata-store.ts`.
 *
 * The suite may share one database between its cases and with earlier runs: each case works on
 * names of its own (random suffixes), so a backend needs no reset between cases.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { JsonObject } from '../core/json.js';
import type { MetadataStore, NewModelVersion } from '../metadata/metadata-store.js';
import { expectCode, trackOpened, uniqueName } from './harness.js';

/** Time a backend may stamp may differ from this process's clock (a database server's). */
const CLOCK_SKEW_MS = 5 * 60_000;

/**
 * Declares the conformance cases for one backend.
 *
 * @param open opens the store; every call must reach the same data, so that a case can close the
 *   store and open it again to check what was kept. Cases close what they open.
 * @param cleanup runs once after all cases (delete the temporary database).
 * @example
 * describeMetadataStoreConformance('sqlite', () => openSqliteMetadataStore({ path: file }));
 */
export function describeMetadataStoreConformance(
  name: string,
  open: () => Promise<MetadataStore>,
  cleanup?: () => Promise<void>,
): void {
  describe(`MetadataStore conformance: ${name}`, () => {
    const connect = trackOpened(open, cleanup);

    describe('model versions', () => {
      it('numbers versions from 1 and reads back exactly what was registered', async () => {
        const store = await connect();
        const model = uniqueName('m');
        const first = sampleVersion(model, { metrics: { auc: 0.91, logloss: 0.25 } });
        const second = sampleVersion(model, {
          runtime: 'onnx',
          metrics: { auc: 0.93 },
          description: 'retrained on March data\nwith "quotes"',
        });
        const v1 = await store.registerModelVersion(first);
        const v2 = await store.registerModelVersion(second);

        expect(v1).toEqual({ ...first, version: 1, createdAt: v1.createdAt });
        expect(v2).toEqual({ ...second, version: 2, createdAt: v2.createdAt });
        expectNow(v1.createdAt);
        expect(v2.createdAt).toBeGreaterThanOrEqual(v1.createdAt);
        expect(await store.getModelVersion(model, 1)).toEqual(v1);
        expect(await store.getModelVersion(model, 2)).toEqual(v2);
        expect(await store.listModelVersions(model)).toEqual([v1, v2]);
      });

      it('keeps JSON values exactly, and leaves an absent description absent', async () => {
        const store = await connect();
        const model = uniqueName('m');
        const params: JsonObject = {
          text: 'naïve 日本語 ✓ 🚀 "quoted" back\\slash\ttab\nline </script>',
          numbers: [0, -1, 0.1, 1e-300, 1.7976931348623157e308, Number.MAX_SAFE_INTEGER, -2.5],
          nested: { deeper: { list: [[], {}, [null, true, false]] } },
          empty: '',
          none: null,
        };
        const input = sampleVersion(model, { params, lineage: { run: 'r-1', hash: 'ab' } });
        const v = await store.registerModelVersion(input);
        const read = await store.getModelVersion(model, v.version);
        expect(read?.params).toEqual(params);
        expect(read?.lineage).toEqual({ run: 'r-1', hash: 'ab' });
        expect(read?.profile).toEqual(input.profile);
        expect(read?.signature).toEqual(input.signature);
        expect(read?.description).toBeUndefined();
      });

      it('gives 20 concurrent registrations of one model the versions 1..20, each with its own record', async () => {
        const store = await connect();
        const model = uniqueName('m');
        const inputs = Array.from({ length: 20 }, (_, i) =>
          sampleVersion(model, { artifactKey: `models/${model}/${i}.bin`, metrics: { i } }),
        );
        const registered = await Promise.all(inputs.map((x) => store.registerModelVersion(x)));

        expect(registered.map((v) => v.version).sort((a, b) => a - b)).toEqual(range(1, 20));
        const listed = await store.listModelVersions(model);
        expect(listed.map((v) => v.version)).toEqual(range(1, 20));
        for (const v of registered) {
          // The number went to the record that asked for it, not to another one.
          expect(v.artifactKey).toBe(`models/${model}/${v.metrics.i}.bin`);
          expect(listed[v.version - 1]).toEqual(v);
        }
      });

      it('gives registrations racing through two connections distinct versions', async () => {
        const [a, b] = [await connect(), await connect()];
        const model = uniqueName('m');
        const registered = await Promise.all(
          range(1, 20).map((i) => (i % 2 ? a : b).registerModelVersion(sampleVersion(model))),
        );
        expect(registered.map((v) => v.version).sort((x, y) => x - y)).toEqual(range(1, 20));
        expect((await b.listModelVersions(model)).map((v) => v.version)).toEqual(range(1, 20));
      });

      it('numbers each model on its own', async () => {
        const store = await connect();
        const [m1, m2] = [uniqueName('m'), uniqueName('m')];
        await store.registerModelVersion(sampleVersion(m1));
        await store.registerModelVersion(sampleVersion(m1));
        expect((await store.registerModelVersion(sampleVersion(m2))).version).toBe(1);
        expect((await store.registerModelVersion(sampleVersion(m1))).version).toBe(3);
      });

      it('keeps a version unchanged by later registrations, alias moves and changes to the objects passed or returned', async () => {
        const store = await connect();
        const model = uniqueName('m');
        const input = sampleVersion(model, { params: { depth: 6, features: ['a', 'b'] } });
        const v1 = await store.registerModelVersion(input);
        const snapshot = structuredClone(v1);

        // The caller reuses its objects: that must not reach the stored version.
        input.params['depth'] = 99;
        (input.metrics as Record<string, number>)['auc'] = 0;
        (v1.params['features'] as string[]).push('c');
        await store.registerModelVersion(input);
        await store.setAlias(model, 'champion', 1);
        await store.setAlias(model, 'champion', 2);

        expect(await store.getModelVersion(model, 1)).toEqual(snapshot);
        expect((await store.getModelVersion(model, 2))?.params['depth']).toBe(99);
      });

      it('reads an unknown model or version as empty', async () => {
        const store = await connect();
        const model = uniqueName('m');
        expect(await store.getModelVersion(model, 1)).toBeUndefined();
        expect(await store.listModelVersions(model)).toEqual([]);
        await store.registerModelVersion(sampleVersion(model));
        expect(await store.getModelVersion(model, 2)).toBeUndefined();
        expect(await store.getModelVersion(model, 0)).toBeUndefined();
      });

      it('accepts names of 1 to 128 letters, digits, ".", "_" and "-" starting with a letter or digit', async () => {
        const store = await connect();
        const suffix = randomUUID().slice(0, 8);
        for (const good of [`A${suffix}`, `9.v_1-b${suffix}`, `x${suffix}`.padEnd(128, 'z')]) {
          expect((await store.registerModelVersion(sampleVersion(good))).model).toBe(good);
        }
        const bad = ['', '-lead', '.hidden', '_x', 'a b', 'a/b', '../up', 'naïve', 'x'.repeat(129)];
        for (const name of bad) {
          await expectCode(
            store.registerModelVersion(sampleVersion(name)),
            'FERRY_ARGUMENT_INVALID',
          );
        }
      });

      it('refuses metrics that JSON cannot hold', async () => {
        const store = await connect();
        const model = uniqueName('m');
        for (const value of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
          const err = await expectCode(
            store.registerModelVersion(
              sampleVersion(model, { metrics: { auc: 0.9, rmse: value } }),
            ),
            'FERRY_ARGUMENT_INVALID',
          );
          expect(err.message).toContain('rmse');
        }
        expect(await store.listModelVersions(model)).toEqual([]);
      });
    });

    describe('aliases', () => {
      it('points an alias at a version and moves it, leaving the versions as they were', async () => {
        const store = await connect();
        const model = uniqueName('m');
        const v1 = await store.registerModelVersion(sampleVersion(model));
        const v2 = await store.registerModelVersion(sampleVersion(model));
        await store.setAlias(model, 'champion', 1);
        await store.setAlias(model, 'challenger', 2);
        expect(await store.getAliases(model)).toEqual({ champion: 1, challenger: 2 });

        await store.setAlias(model, 'champion', 2);
        expect(await store.getAliases(model)).toEqual({ champion: 2, challenger: 2 });
        await store.setAlias(model, 'champion', 1);
        expect(await store.getAliases(model)).toEqual({ champion: 1, challenger: 2 });
        expect(await store.listModelVersions(model)).toEqual([v1, v2]);
      });

      it('keeps aliases of each model apart', async () => {
        const store = await connect();
        const [m1, m2] = [uniqueName('m'), uniqueName('m')];
        for (let i = 0; i < 3; i++) await store.registerModelVersion(sampleVersion(m1));
        await store.registerModelVersion(sampleVersion(m2));
        await store.setAlias(m1, 'champion', 3);
        await store.setAlias(m2, 'champion', 1);
        expect(await store.getAliases(m1)).toEqual({ champion: 3 });
        expect(await store.getAliases(m2)).toEqual({ champion: 1 });
      });

      it('refuses an alias to a version that does not exist, and keeps the old target', async () => {
        const store = await connect();
        const model = uniqueName('m');
        await store.registerModelVersion(sampleVersion(model));
        await store.setAlias(model, 'champion', 1);
        await expectCode(store.setAlias(model, 'champion', 2), 'FERRY_MODEL_VERSION_NOT_FOUND');
        await expectCode(store.setAlias(model, 'champion', 0), 'FERRY_MODEL_VERSION_NOT_FOUND');
        expect(await store.getAliases(model)).toEqual({ champion: 1 });
        await expectCode(
          store.setAlias(uniqueName('missing'), 'champion', 1),
          'FERRY_MODEL_NOT_FOUND',
        );
      });

      it('refuses invalid alias names, including all-digit ones', async () => {
        const store = await connect();
        const model = uniqueName('m');
        await store.registerModelVersion(sampleVersion(model));
        for (const alias of ['', '3', '-x', 'a b', 'a/b', 'y'.repeat(129)]) {
          await expectCode(store.setAlias(model, alias, 1), 'FERRY_ARGUMENT_INVALID');
        }
        await store.setAlias(model, 'v3', 1);
        expect(await store.getAliases(model)).toEqual({ v3: 1 });
      });

      it('removes an alias; removing one that does not exist is a no-op', async () => {
        const store = await connect();
        const model = uniqueName('m');
        await store.registerModelVersion(sampleVersion(model));
        await store.setAlias(model, 'champion', 1);
        await store.setAlias(model, 'shadow', 1);
        await store.removeAlias(model, 'champion');
        await store.removeAlias(model, 'champion');
        await store.removeAlias(model, 'never-set');
        await store.removeAlias(uniqueName('missing'), 'champion');
        expect(await store.getAliases(model)).toEqual({ shadow: 1 });
      });

      it('reads the aliases of an unknown model as {}', async () => {
        const store = await connect();
        expect(await store.getAliases(uniqueName('missing'))).toEqual({});
      });
    });

    describe('deleting versions', () => {
      it('refuses to delete a version an alias points to, naming the alias', async () => {
        const store = await connect();
        const model = uniqueName('m');
        const v1 = await store.registerModelVersion(sampleVersion(model));
        await store.registerModelVersion(sampleVersion(model));
        await store.setAlias(model, 'champion', 1);
        const err = await expectCode(store.deleteModelVersion(model, 1), 'FERRY_ARGUMENT_INVALID');
        expect(err.message).toContain('champion');
        expect(await store.getModelVersion(model, 1)).toEqual(v1);

        await store.setAlias(model, 'champion', 2);
        await store.deleteModelVersion(model, 1);
        expect(await store.getModelVersion(model, 1)).toBeUndefined();
        expect((await store.listModelVersions(model)).map((v) => v.version)).toEqual([2]);
      });

      it('reports a missing version or model', async () => {
        const store = await connect();
        const model = uniqueName('m');
        await store.registerModelVersion(sampleVersion(model));
        await expectCode(store.deleteModelVersion(model, 2), 'FERRY_MODEL_VERSION_NOT_FOUND');
        await store.deleteModelVersion(model, 1);
        await expectCode(store.deleteModelVersion(model, 1), 'FERRY_MODEL_NOT_FOUND');
        await expectCode(store.deleteModelVersion(uniqueName('x'), 1), 'FERRY_MODEL_NOT_FOUND');
      });

      it('never gives the number of a deleted version to a new one', async () => {
        const store = await connect();
        const model = uniqueName('m');
        await store.registerModelVersion(sampleVersion(model));
        await store.registerModelVersion(sampleVersion(model));
        await store.deleteModelVersion(model, 2);
        expect((await store.registerModelVersion(sampleVersion(model))).version).toBe(3);
        await store.deleteModelVersion(model, 1);
        await store.deleteModelVersion(model, 3);
        expect(await store.listModelVersions(model)).toEqual([]);
        expect((await store.registerModelVersion(sampleVersion(model))).version).toBe(4);
      });
    });

    describe('listing models', () => {
      it('summarises each model with versions, sorted by name', async () => {
        const store = await connect();
        const prefix = uniqueName('list');
        const [a, b, gone] = [`${prefix}-a`, `${prefix}-b`, `${prefix}-c`];
        for (let i = 0; i < 3; i++) await store.registerModelVersion(sampleVersion(b));
        const a1 = await store.registerModelVersion(sampleVersion(a));
        await store.registerModelVersion(sampleVersion(gone));
        await store.deleteModelVersion(b, 3);
        await store.setAlias(b, 'champion', 2);
        await store.setAlias(b, 'challenger', 1);
        await store.deleteModelVersion(gone, 1);

        const mine = (await store.listModels()).filter((m) => m.name.startsWith(prefix));
        expect(mine.map(({ updatedAt: _, ...rest }) => rest)).toEqual([
          { name: a, latestVersion: 1, versionCount: 1, aliases: {} },
          { name: b, latestVersion: 2, versionCount: 2, aliases: { champion: 2, challenger: 1 } },
        ]);
        expect(mine[0]?.updatedAt).toBeGreaterThanOrEqual(a1.createdAt);
        const b2 = await store.getModelVersion(b, 2);
        expect(mine[1]?.updatedAt).toBeGreaterThanOrEqual(b2?.createdAt ?? Infinity);
        expectNow(mine[1]?.updatedAt);
      });
    });

    describe('runs', () => {
      it('starts a run as running with a fresh id and empty results', async () => {
        const store = await connect();
        const kind = uniqueName('train');
        const params: JsonObject = { target: 'is_fraud', budget: { trials: 20 } };
        const run = await store.createRun({ kind, name: 'nightly', params });
        const other = await store.createRun({ kind, name: 'nightly', params });
        expect(run).toEqual({
          id: run.id,
          kind,
          name: 'nightly',
          params,
          status: 'running',
          startedAt: run.startedAt,
          endedAt: null,
          metrics: {},
          outputs: {},
        });
        expect(typeof run.id).toBe('string');
        expect(run.id).not.toBe(other.id);
        expectNow(run.startedAt);
        expect(await store.getRun(run.id)).toEqual(run);
      });

      it('merges metric and output updates and records when a run ends', async () => {
        const store = await connect();
        const run = await store.createRun({ kind: uniqueName('train'), name: 'r', params: {} });
        const step = await store.updateRun(run.id, {
          metrics: { auc: 0.8, loss: 0.5 },
          outputs: { leaderboard: [{ model: 'gbm', auc: 0.8 }] },
        });
        expect(step).toMatchObject({ status: 'running', endedAt: null });
        const done = await store.updateRun(run.id, {
          status: 'succeeded',
          metrics: { auc: 0.85 },
          outputs: { model: 'fraud@3' },
        });
        expect(done.metrics).toEqual({ auc: 0.85, loss: 0.5 });
        expect(done.outputs).toEqual({
          leaderboard: [{ model: 'gbm', auc: 0.8 }],
          model: 'fraud@3',
        });
        expect(done.status).toBe('succeeded');
        expect(done.endedAt).toBeGreaterThanOrEqual(run.startedAt);
        expect(await store.getRun(run.id)).toEqual(done);

        const failed = await store.createRun({ kind: 'train', name: 'r2', params: {} });
        const endedAt = run.startedAt + 1234;
        const updated = await store.updateRun(failed.id, { status: 'failed', endedAt });
        expect(updated).toMatchObject({ status: 'failed', endedAt, metrics: {}, outputs: {} });
      });

      it('reports an unknown run id', async () => {
        const store = await connect();
        const id = randomUUID();
        expect(await store.getRun(id)).toBeUndefined();
        await expectCode(store.updateRun(id, { status: 'failed' }), 'FERRY_RUN_NOT_FOUND');
      });

      it('refuses run metrics that JSON cannot hold', async () => {
        const store = await connect();
        const run = await store.createRun({ kind: uniqueName('k'), name: 'r', params: {} });
        await expectCode(
          store.updateRun(run.id, { metrics: { loss: Number.NaN } }),
          'FERRY_ARGUMENT_INVALID',
        );
        expect((await store.getRun(run.id))?.metrics).toEqual({});
      });

      it('lists runs newest first, by kind and up to a limit', async () => {
        const store = await connect();
        const [train, pipeline] = [uniqueName('train'), uniqueName('pipeline')];
        const created = [];
        for (let i = 0; i < 5; i++) {
          created.push(
            await store.createRun({ kind: i % 2 ? pipeline : train, name: `r${i}`, params: {} }),
          );
        }
        const ids = (runs: readonly { id: string }[]) => runs.map((r) => r.id);
        const newestFirst = ids(created).reverse();
        const all = ids(await store.listRuns()).filter((id) => newestFirst.includes(id));
        expect(all).toEqual(newestFirst);
        expect(ids(await store.listRuns({ kind: train }))).toEqual(
          ids(created.filter((r) => r.kind === train)).reverse(),
        );
        expect(ids(await store.listRuns({ kind: train, limit: 2 }))).toEqual(
          ids([created[4]!, created[2]!]),
        );
        expect(await store.listRuns({ kind: uniqueName('none') })).toEqual([]);
      });
    });

    describe('documents', () => {
      it('appends numbered versions and reads the newest or a given one', async () => {
        const store = await connect();
        const kind = uniqueName('feature_set');
        const d1 = await store.putDocument(kind, 'transactions', { ttl: '1h', features: ['a'] });
        const d2 = await store.putDocument(kind, 'transactions', {
          ttl: '2h',
          features: ['a', 'b'],
        });
        expect(d1).toEqual({
          kind,
          name: 'transactions',
          version: 1,
          createdAt: d1.createdAt,
          body: { ttl: '1h', features: ['a'] },
        });
        expectNow(d1.createdAt);
        expect(d2.version).toBe(2);
        expect(await store.getDocument(kind, 'transactions')).toEqual(d2);
        expect(await store.getDocument(kind, 'transactions', 1)).toEqual(d1);
        expect(await store.getDocument(kind, 'transactions', 3)).toBeUndefined();
        expect(await store.getDocument(kind, 'other')).toBeUndefined();
      });

      it('numbers each kind and name on its own, and concurrent puts get distinct versions', async () => {
        const store = await connect();
        const [k1, k2] = [uniqueName('endpoint'), uniqueName('deployment')];
        const puts = await Promise.all(
          range(1, 10).map((i) => store.putDocument(k1, 'fraud', { i })),
        );
        expect(puts.map((d) => d.version).sort((a, b) => a - b)).toEqual(range(1, 10));
        for (const d of puts) {
          expect((await store.getDocument(k1, 'fraud', d.version))?.body).toEqual(d.body);
        }
        expect((await store.putDocument(k2, 'fraud', {})).version).toBe(1);
        expect((await store.putDocument(k1, 'other', {})).version).toBe(1);
      });

      it('lists the newest version of each document of a kind, sorted by name', async () => {
        const store = await connect();
        const [kind, otherKind] = [uniqueName('dataset'), uniqueName('dataset')];
        await store.putDocument(kind, 'zeta', { v: 1 });
        await store.putDocument(kind, 'alpha', { v: 1 });
        const zeta2 = await store.putDocument(kind, 'zeta', { v: 2 });
        const alpha2 = await store.putDocument(kind, 'alpha', { v: 2 });
        const alpha3 = await store.putDocument(kind, 'alpha', { v: 3 });
        const beta = await store.putDocument(kind, 'beta', { v: 1 });
        await store.putDocument(otherKind, 'alpha', { v: 1 });
        expect(alpha2.version).toBe(2);
        expect(await store.listDocuments(kind)).toEqual([alpha3, beta, zeta2]);
        expect(await store.listDocuments(uniqueName('none'))).toEqual([]);
      });
    });

    describe('durability and lifecycle', () => {
      it('keeps versions, aliases, runs and documents across close and reopen', async () => {
        const model = uniqueName('m');
        const kind = uniqueName('endpoint');
        const first = await connect();
        const v1 = await first.registerModelVersion(sampleVersion(model));
        const v2 = await first.registerModelVersion(sampleVersion(model));
        await first.setAlias(model, 'champion', 1);
        await first.setAlias(model, 'challenger', 2);
        await first.setAlias(model, 'champion', 2);
        const run = await first.createRun({ kind, name: 'r', params: { a: 1 } });
        const ended = await first.updateRun(run.id, { status: 'succeeded', metrics: { auc: 0.7 } });
        const doc = await first.putDocument(kind, 'fraud', { graph: ['enrich', 'model'] });
        await first.close();

        const second = await connect();
        expect(await second.getAliases(model)).toEqual({ champion: 2, challenger: 2 });
        expect(await second.listModelVersions(model)).toEqual([v1, v2]);
        expect(await second.getRun(run.id)).toEqual(ended);
        expect(await second.getDocument(kind, 'fraud')).toEqual(doc);
        expect((await second.registerModelVersion(sampleVersion(model))).version).toBe(3);
      });

      it('may be closed twice, and refuses every call once closed', async () => {
        const store = await connect();
        await store.close();
        await store.close();
        const model = uniqueName('m');
        const calls: (() => Promise<unknown>)[] = [
          () => store.registerModelVersion(sampleVersion(model)),
          () => store.getModelVersion(model, 1),
          () => store.listModelVersions(model),
          () => store.listModels(),
          () => store.setAlias(model, 'champion', 1),
          () => store.removeAlias(model, 'champion'),
          () => store.getAliases(model),
          () => store.deleteModelVersion(model, 1),
          () => store.createRun({ kind: 'k', name: 'n', params: {} }),
          () => store.updateRun(randomUUID(), {}),
          () => store.getRun(randomUUID()),
          () => store.listRuns(),
          () => store.putDocument('k', 'n', {}),
          () => store.getDocument('k', 'n'),
          () => store.listDocuments('k'),
        ];
        for (const call of calls) await expectCode(call(), 'FERRY_STORE_CLOSED');
      });
    });
  });
}

/** A realistic version record whose JSON parts have mutable containers (for the tests). */
type SampleVersion = NewModelVersion & { params: JsonObject; lineage: JsonObject };

function sampleVersion(model: string, overrides: Partial<NewModelVersion> = {}): SampleVersion {
  return {
    model,
    runtime: 'native',
    artifactKey: `models/${model}/${randomUUID()}.bin`,
    sha256: 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    sizeBytes: 1024,
    signature: {
      task: 'classification',
      target: 'is_fraud',
      inputs: [
        { name: 'amount', type: 'float' },
        { name: 'merchant', type: 'string' },
        { name: 'ts', type: 'timestamp' },
      ],
      classes: [false, true],
    },
    metrics: { auc: 0.9 },
    params: { learningRate: 0.1, maxDepth: 6 },
    lineage: { runId: 'run-1', data: { path: 'data/tx.csv', sha256: 'ab'.repeat(32) } },
    profile: {
      rowCount: 1000,
      columns: {
        amount: {
          kind: 'numeric',
          count: 1000,
          nulls: 3,
          distinct: 950,
          min: -5.5,
          max: 10_000,
          mean: 123.25,
          std: 45.5,
          quantiles: { '0.01': 1, '0.5': 99.5, '0.99': 5000 },
          histogram: { edges: [-5.5, 0, 100, 10_000], counts: [10, 500, 487] },
        },
        merchant: {
          kind: 'categorical',
          count: 1000,
          nulls: 0,
          distinct: 3,
          top: [
            { value: 'café', count: 600 },
            { value: 'shop', count: 300 },
          ],
          otherCount: 100,
        },
      },
    },
    ...overrides,
  } as SampleVersion;
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

function expectNow(ms: number | undefined): void {
  expect(Number.isSafeInteger(ms)).toBe(true);
  expect(Math.abs((ms ?? 0) - Date.now())).toBeLessThan(CLOCK_SKEW_MS);
}
