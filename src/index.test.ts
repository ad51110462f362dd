/** The public API composes: a user's backend can run the loop with the names src/index.ts exports. */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import * as ferry from './index.js';
import { tempDirs } from './testing/temp.js';

const tmp = tempDirs();

describe('public API', () => {
  it('trains, registers, loads and predicts through the exported names', async () => {
    const dir = tmp.fresh();
    writeFileSync(path.join(dir, 'ferry.yaml'), 'project: api\n');
    const rows = Array.from({ length: 400 }, (_, i) => {
      const x = (i % 40) / 4;
      return `${x},${i % 3 === 0 ? 'a' : 'b'},${x > 5 ? 1 : 0}`;
    });
    writeFileSync(path.join(dir, 'train.csv'), ['x,kind,label', ...rows].join('\n') + '\n');
    const ws = await ferry.openWorkspace(ferry.loadProject(dir));
    try {
      const table = await ferry.readTable(path.join(dir, 'train.csv'));
      const { version } = await ferry.runTrainingJob(ws.metadata, ws.registry, {
        table,
        target: 'label',
        model: 'threshold',
      });
      const model = await ws.registry.load(await ws.registry.resolve('threshold@champion'));
      const out = await model.predict({
        columns: [
          { name: 'x', type: 'float', values: [1, 9] },
          { name: 'kind', type: 'string', values: ['a', 'zzz'] },
        ],
        rowCount: 2,
      });
      expect(version.version).toBe(1);
      expect(out.predict).toEqual([0, 1]);
    } finally {
      await ws.close();
    }
  });

  it('defines a feature set in code, streams events into it and looks them up online', async () => {
    const project = ferry.defineProject(tmp.fresh(), {
      entities: [{ name: 'card', keys: ['card_id'] }],
      feature_sets: [
        {
          name: 'tx',
          entity: 'card',
          timestamp: 'ts',
          features: [{ name: 'amount', type: 'float' }],
          aggregations: [{ column: 'amount', ops: ['sum', 'count'], windows: ['1h'] }],
        },
      ],
      feature_vectors: [{ name: 'card_1h', features: ['tx.amount', 'tx.amount_sum_1h'] }],
    });
    const ws = await ferry.openWorkspace(project);
    try {
      const t = Date.UTC(2026, 9, 1, 12);
      const result = await ws.features.ingestEvents('tx', [
        { card_id: 'c1', ts: new Date(t).toISOString(), amount: 10 },
        { card_id: 'c1', ts: t + 60_000, amount: 2.5 },
        { card_id: 'c1', ts: t + 60_000, amount: 'lots' },
      ]);
      expect(result.written).toBe(2);
      expect(result.rejected.map((r) => r.rule)).toEqual(['type(amount)']);
      const [row] = await ws.features.getOnlineVector('card_1h', ['c1'], t + 120_000);
      expect(row).toEqual({ card_id: 'c1', amount: 2.5, amount_sum_1h: 12.5 });
      expect((await ws.catalog.list('feature_set')).map((d) => d.name)).toEqual(['tx']);
    } finally {
      await ws.close();
    }
  });

  it('compiles an expression once for request-time use', () => {
    const fn = ferry.compileToFunction(ferry.parseExpression('clip(amount, 0, 100) * 2'), {
      amount: 'float',
    });
    expect(fn({ amount: 250 })).toBe(200);
    expect(fn({ amount: null })).toBeNull();
  });
});
