/**
 * The endpoint graph with its features in Redis: the enrich step reads the same windows from
 * the Redis online store as from SQLite, and the answers are the model's on those features.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadProject } from '../../config/load.js';
import { silentLogger } from '../../core/logger.js';
import { openWorkspace } from '../../project/workspace.js';
import { SCORE_EVENTS, scoreProject, spendTable, T0 } from '../../testing/endpoint-fixture.js';
import { uniqueName } from '../../testing/harness.js';
import { registerTrained } from '../../testing/model-fixture.js';
import { testService } from '../../testing/services.js';
import { tempDirs } from '../../testing/temp.js';
import { ServedEndpoint } from './endpoint.js';
import { createModelProvider } from './models.js';

const redis = await testService('redis');
const dirs = tempDirs();

describe.skipIf(!redis.available)('an endpoint enriching from Redis', () => {
  const prefix = uniqueName('ferry_endpoint');
  const dir = dirs.fresh();
  writeFileSync(
    path.join(dir, 'ferry.yaml'),
    scoreProject(`online_store: { type: redis, url: "${redis.url}", key_prefix: ${prefix} }`),
  );
  const opening = openWorkspace(loadProject(dir));

  afterAll(async () => {
    const ws = await opening;
    await ws.online.deleteFeatureSet('tx');
    await ws.close();
  });

  it('answers from the windows of the events stored in Redis', async () => {
    const ws = await opening;
    expect(ws.online.backend).toBe('redis');
    await ws.features.ingestEvents('tx', SCORE_EVENTS);
    await registerTrained(ws.registry, 'spend', spendTable(2), { target: 'y' });
    const endpoint = await ServedEndpoint.create({
      endpoint: ws.project.spec.endpoints[0]!,
      deps: {
        spec: ws.project.spec,
        root: dir,
        models: createModelProvider(ws.registry),
        features: ws.features,
        events: ws.events,
      },
      logger: silentLogger(),
    });
    const answer = await endpoint.predictRecords(
      [
        { card_id: 'a', ts: T0, amount: 25 },
        { card_id: 'b', ts: T0, amount: 500 },
        { card_id: 'zz', ts: T0, amount: 3 },
      ],
      { requestId: 'redis-1' },
    );
    expect(answer.run.rows.map((r) => r.amount_sum_1h)).toEqual([100, 7, 0]);
    expect(answer.run.rows.map((r) => r.amount_count_1h)).toEqual([2, 1, 0]);
    const model = await ws.registry.load(await ws.registry.resolve('spend@champion'));
    const expected = await model.predict({
      rowCount: 3,
      columns: [{ name: 'spend', type: 'float', values: [125, 507, 3] }],
    });
    expect(answer.results.map((r) => r.prediction)).toEqual(expected.predict);
    expect(answer.results[1]!.decision).toBe('review');
  });
});
