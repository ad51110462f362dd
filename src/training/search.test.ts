import { describe, expect, it } from 'vitest';
import type { Column, Table } from '../core/table.js';
import { CANDIDATES, resolveCandidates, type Params } from './candidates.js';
import type { Evaluation, EvaluationTask } from './evaluate.js';
import { createRng } from './random.js';
import {
  gridConfigs,
  planCandidates,
  randomConfigs,
  runSearch,
  selectionKeys,
  type CandidateConfig,
} from './search.js';
import { kFolds } from './split.js';
import { trainModel, type TrainResult } from './train.js';
import type { Executor } from './worker-pool.js';

const gbdt = CANDIDATES.gbdt as NonNullable<(typeof CANDIDATES)['gbdt']>;

/** n rows of a regression with an interaction, a category and noise. */
function regressionTable(n: number, seed: number): Table {
  const rand = createRng(seed);
  const cols: Record<string, (number | string)[]> = { a: [], b: [], g: [], y: [] };
  for (let i = 0; i < n; i++) {
    const a = rand() * 4 - 2;
    const b = rand() * 4 - 2;
    const g = rand() < 0.3 ? 'x' : 'z';
    cols.a?.push(a);
    cols.b?.push(b);
    cols.g?.push(g);
    cols.y?.push(a * b + (g === 'x' ? 2 : 0) + 0.3 * (rand() - 0.5));
  }
  const column = (name: string, type: Column['type']): Column => ({
    name,
    type,
    values: cols[name] ?? [],
  });
  return {
    rowCount: n,
    columns: [
      column('a', 'float'),
      column('b', 'float'),
      column('g', 'string'),
      column('y', 'float'),
    ],
  };
}

/** Leaderboards compared without fit times, which are measured. */
function scores(result: TrainResult): unknown[] {
  return result.candidates.map(({ seconds: _seconds, ...rest }) => rest);
}

describe('search strategies', () => {
  it('grid search tries every combination of the grid values once, defaults first', () => {
    const space = gbdt.space('regression');
    const configs = gridConfigs(space, gbdt.defaults('regression', 1000));
    // 3 learning rates x 2 leaf counts x 4 depths x 2 child weights x 1 lambda x 1 subsample.
    expect(configs).toHaveLength(48);
    expect(configs[0]).toEqual(gbdt.defaults('regression', 1000));
    const keys = new Set(configs.map((c) => JSON.stringify(c)));
    expect(keys.size).toBe(48);
    for (const lr of [0.03, 0.1, 0.3]) {
      for (const depth of [3, 4, 6, 8]) {
        expect(configs.some((c) => c.learning_rate === lr && c.max_depth === depth)).toBe(true);
      }
    }
  });

  it('random search is seeded: the same seed draws the same configurations, inside the space', () => {
    const space = gbdt.space('regression');
    const defaults = gbdt.defaults('regression', 1000);
    const a = randomConfigs(space, defaults, 12, createRng(5));
    const b = randomConfigs(space, defaults, 12, createRng(5));
    const c = randomConfigs(space, defaults, 12, createRng(6));
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    expect(a).toHaveLength(12);
    expect(a[0]).toEqual(defaults);
    for (const params of a) {
      expect(params.learning_rate).toBeGreaterThanOrEqual(0.02);
      expect(params.learning_rate).toBeLessThanOrEqual(0.3);
      expect(Number.isInteger(params.max_leaves)).toBe(true);
      expect([3, 4, 6, 8]).toContain(params.max_depth);
    }
  });

  it('grows the default boosted trees with the training rows', () => {
    expect(gbdt.defaults('classification', 4000)).toMatchObject({ max_leaves: 31, max_depth: 6 });
    expect(gbdt.defaults('classification', 80_000)).toMatchObject({ max_leaves: 63, max_depth: 8 });
    expect(gbdt.defaults('regression', 600_000)).toMatchObject({ max_leaves: 127, max_depth: 10 });
  });

  it('plans each algorithm at its defaults first, then interleaves the rest', () => {
    const plan = planCandidates(
      resolveCandidates(['logreg', 'gbdt']),
      'classification',
      'random',
      3,
      1,
      800,
    );
    expect(plan.map((c) => c.name)).toEqual([
      'logistic_regression',
      'gbdt',
      'logistic_regression_2',
      'gbdt_2',
      'logistic_regression_3',
      'gbdt_3',
    ]);
    expect(plan.map((c) => c.mandatory)).toEqual([true, true, false, false, false, false]);
    expect(() => resolveCandidates(['svm'])).toThrow(/unknown model 'svm'/);
  });

  it('successive halving keeps the best third of each rung and ends on all rows', async () => {
    // A scripted executor: the score of a configuration is its parameter q (lower is better).
    const executor: Executor = {
      parallelism: 2,
      kind: () => 'in-process',
      run: (task: EvaluationTask): Promise<Evaluation> =>
        Promise.resolve({
          metrics: { rmse: (task.params.q as number) + (1 - task.rowFraction) },
          params: { ...task.params },
          rounds: null,
        }),
      close: () => Promise.resolve(),
    };
    const qs = [5, 3, 8, 1, 9, 2, 7, 4, 6];
    const plan: CandidateConfig[] = qs.map((q, i) => ({
      name: `c${i}`,
      algorithm: 'fake',
      params: { q } as Params,
      mandatory: i === 0,
    }));
    const result = await runSearch(plan, executor, {
      strategy: 'halving',
      keys: selectionKeys('regression', false),
      trainRows: 360,
    });
    const rung = (r: number): number[] =>
      result.leaderboard.filter((e) => e.rung === r).map((e) => e.params.q as number);
    expect(rung(0)).toEqual(qs);
    expect(result.leaderboard.filter((e) => e.rung === 0)[0]?.rowFraction).toBeCloseTo(1 / 9);
    expect(rung(1).sort()).toEqual([1, 2, 3]);
    expect(rung(2)).toEqual([1]);
    expect(result.best.params.q).toBe(1);
    expect(result.best.rowFraction).toBe(1);
  });
});

describe('stratified folds', () => {
  it('keep the class ratio in every fold', () => {
    const n = 1000;
    const labels = Int32Array.from({ length: n }, (_, i) =>
      i % 10 === 0 ? 1 : i % 3 === 0 ? 2 : 0,
    );
    const share = (rows: Uint32Array, c: number): number =>
      rows.reduce((s, i) => s + (labels[i] === c ? 1 : 0), 0) / rows.length;
    const folds = kFolds(n, labels, 3, 5, 9);
    for (const fold of folds) {
      expect(fold.valid.length).toBe(200);
      for (const c of [0, 1, 2]) {
        expect(
          Math.abs(
            share(fold.valid, c) -
              share(
                Uint32Array.from({ length: n }, (_, i) => i),
                c,
              ),
          ),
        ).toBeLessThan(0.006);
      }
    }
  });
});

describe('trainModel with a search', () => {
  const data = regressionTable(400, 3);

  it('stops launching candidates at the time budget, keeping each algorithm once (injected clock)', async () => {
    let now = 0;
    const run = (budgetMs: number): Promise<TrainResult> =>
      trainModel(data, {
        target: 'y',
        seed: 1,
        search: 'random',
        trials: 5,
        workers: 0,
        timeBudgetMs: budgetMs,
        clock: () => now,
        // Every candidate "takes" 10 s of the injected clock.
        onSearchProgress: () => (now += 10_000),
      });
    now = 0;
    const some = await run(35_000);
    expect(some.search.planned).toBe(10);
    expect(some.search.launched).toBe(4);
    expect(some.search.budgetExhausted).toBe(true);
    expect(some.candidates.map((c) => c.name)).toEqual([
      'ridge_regression',
      'gbdt',
      'ridge_regression_2',
      'gbdt_2',
    ]);
    now = 0;
    const tiny = await run(1);
    expect(tiny.candidates.map((c) => c.algorithm)).toEqual(['linear', 'gbdt']);
  });

  it('gives the same leaderboard and model with 0, 1 and 2 workers', async () => {
    const options = {
      target: 'y',
      seed: 4,
      search: 'random' as const,
      trials: 3,
      testFraction: 0.2,
    };
    const inProcess = await trainModel(data, { ...options, workers: 0 });
    const one = await trainModel(data, { ...options, workers: 1 });
    const two = await trainModel(data, { ...options, workers: 2 });
    expect(two.search.executor).toBe('workers');
    expect(one.search.executor).toBe('workers');
    expect(scores(one)).toEqual(scores(inProcess));
    expect(scores(two)).toEqual(scores(inProcess));
    expect(Buffer.from(two.artifact).equals(Buffer.from(inProcess.artifact))).toBe(true);
    expect(two.test).toEqual(inProcess.test);
    // The boosted winner is a fold bag, fitted after the search: the same whatever the workers.
    expect(inProcess.refit.mode).toBe('folds');
    expect(two.refit).toEqual(inProcess.refit);
  }, 60_000);

  it('never lets the test split into selection: changing its rows changes only the test score', async () => {
    const options = {
      target: 'y',
      seed: 8,
      search: 'grid' as const,
      models: ['linear'],
      testFraction: 0.25,
    };
    const clean = await trainModel(data, options);
    const test = clean.test;
    expect(test?.rows).toBe(100);
    // Scramble the test rows: targets and features.
    const rows = new Set(test?.indices);
    const scrambled: Table = {
      rowCount: data.rowCount,
      columns: data.columns.map((c) => ({
        ...c,
        values: c.values.map((v, i) => (rows.has(i) && typeof v === 'number' ? v * -7 + 3 : v)),
      })),
    };
    const dirty = await trainModel(scrambled, options);
    expect(scores(dirty)).toEqual(scores(clean));
    expect(Buffer.from(dirty.artifact).equals(Buffer.from(clean.artifact))).toBe(true);
    expect(dirty.metrics).toEqual(clean.metrics);
    expect(dirty.test?.indices).toEqual(test?.indices);
    expect(dirty.test?.metrics.rmse).not.toBe(test?.metrics.rmse);
    // The validation rows are the selection rows only.
    expect(clean.validation.rows).toBe(300);
  });

  it('records every candidate in the leaderboard with its algorithm, parameters, scores and time', async () => {
    const result = await trainModel(data, {
      target: 'y',
      seed: 2,
      search: 'halving',
      trials: 4,
      models: ['gbdt', 'rf', 'tree', 'ridge'],
      metric: 'mae',
      workers: 0,
    });
    expect(result.search.metric).toBe('mae');
    expect(new Set(result.candidates.map((c) => c.algorithm))).toEqual(
      new Set(['gbdt', 'rf', 'tree', 'linear']),
    );
    for (const c of result.candidates) {
      expect(c.error).toBeUndefined();
      expect(Object.keys(c.metrics).sort()).toEqual(['mae', 'mape', 'r2', 'rmse']);
      expect(c.seconds).toBeGreaterThanOrEqual(0);
      if (c.algorithm === 'gbdt') expect(c.params.rounds).toBeGreaterThan(0);
    }
    const full = result.candidates.filter((c) => c.rowFraction === 1);
    expect(full.length).toBeGreaterThan(0);
    expect(full.length).toBeLessThan(16);
    const best = full.reduce((a, b) => ((b.metrics.mae ?? 0) < (a.metrics.mae ?? 0) ? b : a));
    expect(result.best).toBe(best.name);
    expect(result.metrics).toEqual(best.metrics);
    // The interaction needs trees: a linear model cannot win.
    expect(best.algorithm).not.toBe('linear');
  });

  it('refuses a metric of the other task and an unknown search', async () => {
    await expect(trainModel(data, { target: 'y', metric: 'accuracy' })).rejects.toThrow(
      /metric 'accuracy' does not apply to regression; choose one of rmse, mae, r2/,
    );
    await expect(
      trainModel(data, { target: 'y', search: 'bayes' as unknown as 'grid' }),
    ).rejects.toThrow(/search must be one of defaults, grid, random, halving/);
  });
});
