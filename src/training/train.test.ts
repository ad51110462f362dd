import { describe, expect, it } from 'vitest';
import type { Column, Table } from '../core/table.js';
import { decodeNativeModel } from './native-model.js';
import { createRng } from './random.js';
import { CROSS_VALIDATION_MAX_ROWS, inferTask, trainModel, type TrainResult } from './train.js';

function table(columns: Column[]): Table {
  return { columns, rowCount: columns[0]?.values.length ?? 0 };
}

/** n rows: x1, x2 uniform, a category, and a binary target driven by an interaction. */
function interactionTable(n: number, seed: number): Table {
  const rand = createRng(seed);
  const x1: number[] = [];
  const x2: number[] = [];
  const group: string[] = [];
  const y: number[] = [];
  for (let i = 0; i < n; i++) {
    const a = rand() * 2 - 1;
    const b = rand() * 2 - 1;
    const g = rand() < 0.5 ? 'a' : 'b';
    x1.push(a);
    x2.push(b);
    group.push(g);
    y.push(a * b > 0 !== (g === 'b') ? 1 : 0);
  }
  return table([
    { name: 'x1', type: 'float', values: x1 },
    { name: 'x2', type: 'float', values: x2 },
    { name: 'group', type: 'string', values: group },
    { name: 'y', type: 'int', values: y },
  ]);
}

describe('trainModel', () => {
  it('selects gradient boosting on an interaction and reports both candidates', async () => {
    const result = await trainModel(interactionTable(1500, 1), { target: 'y', seed: 3 });
    expect(result.signature).toEqual({
      task: 'classification',
      target: 'y',
      inputs: [
        { name: 'x1', type: 'float' },
        { name: 'x2', type: 'float' },
        { name: 'group', type: 'string' },
      ],
      classes: [0, 1],
    });
    expect(result.candidates.map((c) => c.name)).toEqual(['logistic_regression', 'gbdt']);
    expect(result.best).toBe('gbdt');
    expect(result.metrics.roc_auc).toBeGreaterThan(0.95);
    const linear = result.candidates.find((c) => c.name === 'logistic_regression');
    expect(linear?.metrics.roc_auc).toBeLessThan(0.7);
    expect(result.validation).toEqual({ method: 'cross_validation', folds: 5, rows: 1500 });
    const doc = decodeNativeModel(result.artifact);
    expect(doc.model.kind).toBe('gbdt');
  });

  it("counts the test split's predictions by actual and predicted class", async () => {
    const data = interactionTable(800, 5);
    const result = await trainModel(data, {
      target: 'y',
      seed: 3,
      models: ['gbdt', 'linear'],
      testFraction: 0.25,
    });
    const test = result.test;
    const confusion = test?.confusionMatrix;
    expect(confusion?.classes).toEqual([0, 1]);
    const counts = confusion?.counts ?? [];
    expect(counts.flat().reduce((a, b) => a + b, 0)).toBe(test?.rows);
    // Its diagonal is the test accuracy, and its rows the test split's own class counts.
    expect(((counts[0]?.[0] ?? 0) + (counts[1]?.[1] ?? 0)) / (test?.rows ?? 1)).toBeCloseTo(
      test?.metrics.accuracy ?? NaN,
      12,
    );
    const y = data.columns[3]?.values ?? [];
    const ones = (test?.indices ?? []).filter((i) => y[i] === 1).length;
    expect((counts[1]?.[0] ?? 0) + (counts[1]?.[1] ?? 0)).toBe(ones);
    expect(counts[0]?.[1] ?? 0).toBeLessThan((counts[0]?.[0] ?? 0) / 4);
  });

  it('is deterministic for a seed: same artifact bytes and metrics', async () => {
    const data = interactionTable(600, 2);
    const a = await trainModel(data, { target: 'y', seed: 11 });
    const b = await trainModel(data, { target: 'y', seed: 11 });
    expect(Buffer.from(a.artifact).equals(Buffer.from(b.artifact))).toBe(true);
    expect(a.metrics).toEqual(b.metrics);
  });

  it('uses one hold-out split above the cross-validation size', async () => {
    const n = CROSS_VALIDATION_MAX_ROWS + 1000;
    const result = await trainModel(interactionTable(n, 3), {
      target: 'y',
      seed: 1,
      gbdt: { maxRounds: 40 },
    });
    expect(result.validation.method).toBe('holdout');
    expect(result.validation.folds).toBe(1);
    expect(result.validation.rows).toBe(Math.round(n * 0.2));
  });

  it('drops rows with a null target and says so', async () => {
    const data = interactionTable(300, 4);
    const y = data.columns[3] as Column;
    const values = y.values.map((v, i) => (i % 10 === 0 ? null : v));
    const messages: string[] = [];
    const result = await trainModel(table([...data.columns.slice(0, 3), { ...y, values }]), {
      target: 'y',
      onProgress: (m) => messages.push(m),
    });
    expect(messages.some((m) => m.includes('dropped 30 of 300 rows'))).toBe(true);
    expect(result.validation.rows).toBe(270);
  });

  it('sorts classes ascending in their own type: numbers numerically, strings lexicographically', async () => {
    const rand = createRng(5);
    const x = Array.from({ length: 300 }, () => rand());
    const numeric = x.map((v) => (v < 0.33 ? 100 : v < 0.66 ? 9 : 10));
    const result = await trainModel(
      table([
        { name: 'x', type: 'float', values: x },
        { name: 'y', type: 'int', values: numeric },
      ]),
      { target: 'y' },
    );
    expect(result.signature.classes).toEqual([9, 10, 100]);
    const strings = x.map((v) => (v < 0.5 ? 'b' : 'B'));
    const s = await trainModel(
      table([
        { name: 'x', type: 'float', values: x },
        { name: 'y', type: 'string', values: strings },
      ]),
      { target: 'y' },
    );
    expect(s.signature.classes).toEqual(['B', 'b']);
  });

  it('refuses an unknown target column, listing the columns', async () => {
    const promise = trainModel(interactionTable(50, 6), { target: 'Y' });
    await expect(promise).rejects.toThrow(
      expect.objectContaining({ code: 'FERRY_COLUMN_UNKNOWN' }),
    );
    await expect(trainModel(interactionTable(50, 6), { target: 'Y' })).rejects.toThrow(
      /x1, x2, group, y/,
    );
  });

  it('refuses a target with a single class', async () => {
    const data = table([
      { name: 'x', type: 'float', values: [1, 2, 3, 4] },
      { name: 'y', type: 'string', values: ['a', 'a', 'a', null] },
    ]);
    await expect(trainModel(data, { target: 'y' })).rejects.toThrow(
      expect.objectContaining({ code: 'FERRY_TARGET_INVALID' }),
    );
  });

  it('refuses regression on a string target', async () => {
    const data = table([
      { name: 'x', type: 'float', values: [1, 2, 3, 4] },
      { name: 'y', type: 'string', values: ['a', 'b', 'a', 'b'] },
    ]);
    await expect(trainModel(data, { target: 'y', task: 'regression' })).rejects.toThrow(
      expect.objectContaining({ code: 'FERRY_TARGET_INVALID' }),
    );
  });

  it('averages the fold models of a boosted winner by default, or refits it in full', async () => {
    const data = interactionTable(500, 5);
    const bagged = await trainModel(data, { target: 'y', seed: 2, models: ['gbdt'] });
    const full = await trainModel(data, { target: 'y', seed: 2, models: ['gbdt'], refit: 'full' });
    expect(bagged.refit.mode).toBe('folds');
    expect(bagged.refit.models).toBe(5);
    expect(bagged.refit.rounds).toHaveLength(5);
    const bag = decodeNativeModel(bagged.artifact).model;
    expect(bag.kind === 'gbdt' && bag.rounds).toBe(bagged.refit.rounds.reduce((s, r) => s + r, 0));
    // Selection is the same either way; only the artifact differs.
    expect(full.metrics).toEqual(bagged.metrics);
    expect(full.refit).toEqual({
      mode: 'full',
      models: 1,
      rounds: [full.candidates[0]?.params.rounds],
    });
    expect(Buffer.from(full.artifact).equals(Buffer.from(bagged.artifact))).toBe(false);

    // A winner that is not boosted is refitted on all rows; a hold-out keeps its one model.
    const linear = await trainModel(data, { target: 'y', seed: 2, models: ['linear'] });
    expect(linear.refit).toEqual({ mode: 'full', models: 1, rounds: [] });
    const holdout = await trainModel(data, { target: 'y', seed: 2, models: ['gbdt'], cv: 1 });
    expect(holdout.refit.mode).toBe('folds');
    expect(holdout.refit.models).toBe(1);
    await expect(
      trainModel(data, { target: 'y', refit: 'all' as unknown as 'full' }),
    ).rejects.toThrow(expect.objectContaining({ code: 'FERRY_ARGUMENT_INVALID' }));
  });

  it('says where a long boosting fit is, every 5 s of its clock, in this thread', async () => {
    // Each reading of this clock is a second later: boosting rounds read it, so lines come often.
    let now = 0;
    const messages: string[] = [];
    await trainModel(interactionTable(600, 3), {
      target: 'y',
      seed: 1,
      models: ['gbdt'],
      clock: () => (now += 1000),
      onProgress: (m) => messages.push(m),
    });
    const rounds = messages.filter((m) =>
      /^ {2}gbdt: fit \d\/5, round \d+, validation loss \d/.test(m),
    );
    expect(rounds.length).toBeGreaterThan(3);
    expect(messages.some((m) => m.startsWith('  gbdt (fold bag): fit '))).toBe(true);
    // Never two heartbeats closer than 5 s of the clock: at most one per 5 readings.
    expect(rounds.length).toBeLessThan(now / 1000 / 5 + 1);
  });

  it('stops boosting at the time budget, as well as launching candidates', async () => {
    const data = interactionTable(3000, 4);
    const free = await trainModel(data, { target: 'y', seed: 1, models: ['gbdt'], cv: 1 });
    const budgeted = await trainModel(data, {
      target: 'y',
      seed: 1,
      models: ['gbdt'],
      cv: 1,
      timeBudgetMs: 1,
    });
    const rounds = (r: TrainResult): number => Number(r.candidates[0]?.params.rounds);
    expect(rounds(free)).toBeGreaterThan(20);
    // One millisecond: the first round ends past it, and no other starts.
    expect(rounds(budgeted)).toBeLessThanOrEqual(2);
    expect(budgeted.refit.rounds).toEqual([rounds(budgeted)]);
  });

  it('trains a regression with a high R² and reports RMSE, MAE and R²', async () => {
    const rand = createRng(7);
    const x = Array.from({ length: 800 }, () => rand() * 4);
    const y = x.map((v) => Math.sin(v) * 10 + v + 0.1 * rand());
    const result = await trainModel(
      table([
        { name: 'x', type: 'float', values: x },
        { name: 'y', type: 'float', values: y },
      ]),
      { target: 'y', seed: 1 },
    );
    expect(result.signature.task).toBe('regression');
    expect(result.signature.classes).toBeUndefined();
    expect(Object.keys(result.metrics).sort()).toEqual(['mae', 'mape', 'r2', 'rmse']);
    expect(result.metrics.r2).toBeGreaterThan(0.98);
  });
});

describe('inferTask', () => {
  it('classifies strings, booleans and few integer values; regresses on the rest', () => {
    expect(inferTask({ name: 'y', type: 'string', values: ['a', 'b'] })).toBe('classification');
    expect(inferTask({ name: 'y', type: 'bool', values: [true, false] })).toBe('classification');
    expect(inferTask({ name: 'y', type: 'int', values: [1, 2, 3, 2, null] })).toBe(
      'classification',
    );
    expect(inferTask({ name: 'y', type: 'float', values: [0.5, 1.5] })).toBe('classification');
    expect(inferTask({ name: 'y', type: 'float', values: [0.5, 1.5, 2.25] })).toBe('regression');
    const many = Array.from({ length: 21 }, (_, i) => i);
    expect(inferTask({ name: 'y', type: 'int', values: many })).toBe('regression');
  });
});
