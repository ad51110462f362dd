/**
 * Deployments over a real workspace (SQLite metadata, registry with a registered toy model): a
 * version is recorded only when the endpoint's spec changes, an invalid spec records nothing,
 * history is newest first, concurrent deploys of one spec agree on one version, and serving
 * reports the deployment version.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadProject } from '../config/load.js';
import type { JsonObject } from '../core/json.js';
import { silentLogger } from '../core/logger.js';
import { FerryError } from '../errors/index.js';
import { openWorkspace, type Workspace } from '../project/workspace.js';
import { toyVersion } from '../testing/model-fixture.js';
import { tempDirs } from '../testing/temp.js';
import {
  DEPLOYMENT_KIND,
  deployEndpoint,
  deploymentHistory,
  endpointSpecHash,
  ensureDeployment,
  latestDeployment,
  listDeployments,
} from './deployments.js';
import { compileGraph } from './graph/compile.js';
import { createModelProvider } from './graph/models.js';
import { startServer } from './start.js';

/** ferry.yaml with one endpoint `toy_score` whose steps are given as YAML lines. */
function yaml(steps: string, extra = ''): string {
  return `project: deploy-test
log_level: silent
endpoints:
  - name: toy_score
    description: toy answers
    steps:
${steps
  .trim()
  .split('\n')
  .map((l) => `      ${l}`)
  .join('\n')}
${extra}`;
}

const BASE = yaml(`
- kind: transform
  set: { x: "x * 2" }
- { kind: model, model: toy@champion }
`);

const dirs = tempDirs();
let dir: string;

/** Opens the project with `text` as its ferry.yaml (state kept across calls), runs `fn`, closes. */
async function withYaml<T>(text: string, fn: (ws: Workspace) => Promise<T>): Promise<T> {
  writeFileSync(path.join(dir, 'ferry.yaml'), text);
  const ws = await openWorkspace(loadProject(dir));
  try {
    return await fn(ws);
  } finally {
    await ws.close();
  }
}

async function registerToy(ws: Workspace, seed: number): Promise<number> {
  const { version } = await ws.registry.register({ model: 'toy', ...toyVersion(seed) });
  return version.version;
}

beforeAll(async () => {
  dir = dirs.fresh();
  await withYaml(BASE, (ws) => registerToy(ws, 1));
});

describe('deployments', () => {
  it('records version 1, then nothing while the spec is the same, then 2 when it changes', async () => {
    const first = await withYaml(BASE, (ws) => deployEndpoint(ws, 'toy_score'));
    expect(first.created).toBe(true);
    expect(first.deployment).toMatchObject({
      endpoint: 'toy_score',
      version: 1,
      models: [{ ref: 'toy@champion', model: 'toy', version: 1 }],
      ferryVersion: expect.any(String),
    });
    expect(first.deployment.spec).toMatchObject({ name: 'toy_score', description: 'toy answers' });
    expect(first.deployment.specHash).toMatch(/^[0-9a-f]{64}$/);

    // Same spec written differently (key order, flow vs block style): still the same deployment.
    const reordered = yaml(`
- set: { x: "x * 2" }
  kind: transform
- model: toy@champion
  kind: model
`);
    const again = await withYaml(reordered, (ws) => deployEndpoint(ws, 'toy_score'));
    expect(again.created).toBe(false);
    expect(again.deployment).toEqual(first.deployment);

    // An alias move is not a spec change: no deployment (a running server swaps the version).
    await withYaml(BASE, async (ws) => {
      const v2 = await registerToy(ws, 2);
      await ws.registry.setAlias('toy', 'champion', v2);
      const moved = await deployEndpoint(ws, 'toy_score');
      expect(moved.created).toBe(false);
      expect(moved.deployment.version).toBe(1);
      expect(moved.graph.resolved.get('toy@champion')).toBe(v2);
      await ws.registry.setAlias('toy', 'champion', 1);
    });

    const changed = yaml(`
- kind: transform
  set: { x: "x * 3" }
- { kind: model, model: toy@champion }
`);
    const second = await withYaml(changed, (ws) => deployEndpoint(ws, 'toy_score'));
    expect(second.created).toBe(true);
    expect(second.deployment.version).toBe(2);
    expect(second.deployment.specHash).not.toBe(first.deployment.specHash);
    expect(second.deployment.createdAt).toBeGreaterThanOrEqual(first.deployment.createdAt);

    // Back to the first spec: a new version (3) with the first version's hash.
    const third = await withYaml(BASE, (ws) => deployEndpoint(ws, 'toy_score'));
    expect(third.created).toBe(true);
    expect(third.deployment.version).toBe(3);
    expect(third.deployment.specHash).toBe(first.deployment.specHash);

    await withYaml(BASE, async (ws) => {
      const history = await deploymentHistory(ws.metadata, 'toy_score');
      expect(history.map((d) => d.version)).toEqual([3, 2, 1]);
      expect(history[1]?.spec).toEqual(second.deployment.spec);
      expect(await latestDeployment(ws.metadata, 'toy_score')).toEqual(third.deployment);
      expect(await latestDeployment(ws.metadata, 'other')).toBeUndefined();
      expect(await deploymentHistory(ws.metadata, 'other')).toEqual([]);
      expect(await listDeployments(ws.metadata)).toEqual([third.deployment]);
    });
  });

  it('records nothing for a spec that does not compile, and throws the compile error', async () => {
    const before = await withYaml(BASE, (ws) => deploymentHistory(ws.metadata, 'toy_score'));
    const bad = [
      {
        text: yaml('- { kind: model, model: nope@champion }'),
        code: 'FERRY_MODEL_NOT_FOUND',
        mention: 'nope',
      },
      {
        text: yaml(`
- kind: transform
  set: { x: "zzz + 1" }
- { kind: model, model: toy@champion }
`),
        code: 'FERRY_CONFIG_INVALID',
        mention: 'zzz',
      },
      {
        text: yaml('- { kind: model, model: "toy:9" }'),
        code: 'FERRY_MODEL_VERSION_NOT_FOUND',
        mention: 'toy',
      },
    ];
    for (const { text, code, mention } of bad) {
      const error = await withYaml(text, (ws) => deployEndpoint(ws, 'toy_score')).catch(
        (e: unknown) => e,
      );
      expect(error, text).toBeInstanceOf(FerryError);
      expect((error as FerryError).code, text).toBe(code);
      expect((error as FerryError).message).toContain('toy_score');
      expect((error as FerryError).message).toContain(mention);
    }
    const after = await withYaml(BASE, (ws) => deploymentHistory(ws.metadata, 'toy_score'));
    expect(after).toEqual(before);
  });

  it('names the endpoints of ferry.yaml when asked for an unknown one', async () => {
    const error = await withYaml(BASE, (ws) => deployEndpoint(ws, 'fraud')).catch(
      (e: unknown) => e,
    );
    expect((error as FerryError).code).toBe('FERRY_ENDPOINT_NOT_FOUND');
    expect((error as FerryError).message).toContain("'fraud'");
    expect((error as FerryError).message).toContain('toy_score');
  });

  it('agrees on one version when three deploys of the same new spec run at once', async () => {
    const text = yaml(`
- kind: transform
  set: { x: "x + 1" }
- { kind: model, model: toy@champion }
`);
    await withYaml(text, async (ws) => {
      const earlier = (await deploymentHistory(ws.metadata, 'toy_score')).map((d) => d.version);
      const before = earlier[0] ?? 0;
      // Both compile first and then find the same latest deployment, as two serve workers do.
      const results = await Promise.all([
        deployEndpoint(ws, 'toy_score'),
        deployEndpoint(ws, 'toy_score'),
        deployEndpoint(ws, 'toy_score'),
      ]);
      const versions = new Set(results.map((r) => r.deployment.version));
      expect(versions).toEqual(new Set([before + 1]));
      expect(results.filter((r) => r.created)).toHaveLength(1);
      const latest = await latestDeployment(ws.metadata, 'toy_score');
      expect(latest?.version).toBe(before + 1);
      const history = await deploymentHistory(ws.metadata, 'toy_score');
      expect(history.map((d) => d.version)).toEqual([before + 1, ...earlier]);
    });
  });

  it('agrees with another worker that recorded the same spec a moment before it', async () => {
    const text = yaml(`
- kind: transform
  set: { x: "x + 2" }
- { kind: model, model: toy@champion }
`);
    await withYaml(text, async (ws) => {
      const earlier = (await deploymentHistory(ws.metadata, 'toy_score')).map((d) => d.version);
      const before = earlier[0] ?? 0;
      // The real store, except that another worker appends the same deployment just before this
      // one's first append: both had read the same latest deployment.
      let raced = false;
      const racing = new Proxy(ws.metadata, {
        get(target, prop) {
          if (prop === 'putDocument') {
            return async (kind: string, name: string, body: JsonObject) => {
              if (!raced) {
                raced = true;
                await target.putDocument(kind, name, body);
              }
              return target.putDocument(kind, name, body);
            };
          }
          const value: unknown = Reflect.get(target, prop, target);
          return typeof value === 'function' ? value.bind(target) : value;
        },
      });
      const result = await deployEndpoint({ ...ws, metadata: racing }, 'toy_score');
      expect(raced).toBe(true);
      expect((await ws.metadata.getDocument(DEPLOYMENT_KIND, 'toy_score'))?.version).toBe(
        before + 2,
      );
      expect(result.created).toBe(false);
      expect(result.deployment.version).toBe(before + 1);
      expect((await latestDeployment(ws.metadata, 'toy_score'))?.version).toBe(before + 1);
      expect((await listDeployments(ws.metadata))[0]?.version).toBe(before + 1);
      const history = await deploymentHistory(ws.metadata, 'toy_score');
      expect(history.map((d) => d.version)).toEqual([before + 1, ...earlier]);
      // Deploying it again changes nothing; the next spec gets the next number.
      const again = await deployEndpoint(ws, 'toy_score');
      expect(again).toMatchObject({ created: false, deployment: { version: before + 1 } });
    });
  });

  it('takes a graph compiled by the caller, and refuses one of another spec', async () => {
    const text = yaml(`
- kind: transform
  set: { x: "x - 1" }
- { kind: model, model: toy@champion }
`);
    await withYaml(text, async (ws) => {
      const endpoint = ws.project.spec.endpoints[0]!;
      const deps = {
        spec: ws.project.spec,
        root: ws.project.dir,
        models: createModelProvider(ws.registry),
        features: ws.features,
        events: ws.events,
      };
      const graph = await compileGraph(endpoint, deps);
      const { deployment, created } = await ensureDeployment(ws, 'toy_score', graph, {
        logger: silentLogger(),
      });
      expect(created).toBe(true);
      expect(deployment.specHash).toBe(endpointSpecHash(endpoint));
      const other = await compileGraph({ ...endpoint, description: 'other' }, deps);
      await expect(ensureDeployment(ws, 'toy_score', other)).rejects.toMatchObject({
        code: 'FERRY_INTERNAL',
      });
    });
  });

  it('serves the deployment version as the OIP model_version and in /v1/endpoints', async () => {
    const text = yaml(`
- kind: transform
  set: { x: "x / 2" }
- { kind: model, model: toy@champion }
`);
    await withYaml(text, async (ws) => {
      const before = (await latestDeployment(ws.metadata, 'toy_score'))?.version ?? 0;
      const server = await startServer(ws, { port: 0, logLevel: 'silent' });
      try {
        const deployed = await latestDeployment(ws.metadata, 'toy_score');
        expect(deployed?.version).toBe(before + 1);
        const version = String(before + 1);
        const list = (await (await fetch(`${server.url}/v1/endpoints`)).json()) as {
          endpoints: { name: string; version: string }[];
        };
        expect(list.endpoints).toEqual([expect.objectContaining({ name: 'toy_score', version })]);
        const reply = await fetch(`${server.url}/v2/models/toy_score/infer`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            inputs: [
              { name: 'x', shape: [1], datatype: 'FP64', data: [7] },
              { name: 'color', shape: [1], datatype: 'BYTES', data: ['red'] },
            ],
          }),
        });
        const body = (await reply.json()) as { model_version?: string };
        expect(reply.status).toBe(200);
        expect(body.model_version).toBe(version);
      } finally {
        await server.close();
      }
      // Restarting on the same spec records nothing new.
      const again = await startServer(ws, { port: 0, logLevel: 'silent' });
      await again.close();
      expect((await latestDeployment(ws.metadata, 'toy_score'))?.version).toBe(before + 1);
    });
  });
});
