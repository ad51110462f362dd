import { describe, expect, it } from 'vitest';
import { accuracy, r2 } from '../metrics.js';
import { createRng } from '../random.js';
import {
  averageForests,
  compileForest,
  fitGbdt,
  predictForestRaw,
  truncateForest,
} from './gbdt.js';
import { compileLinear, fitLogistic, predictLinearRaw } from './linear.js';
import { toProbabilities } from './objective.js';

type M = { data: Float64Array; rows: number; cols: number };

function uniform(rows: number, cols: number, seed: number): M {
  const rand = createRng(seed);
  return { data: Float64Array.from({ length: rows * cols }, () => rand() * 2 - 1), rows, cols };
}

function slice(x: M, from: number, to: number): M {
  return { data: x.data.subarray(from * x.cols, to * x.cols), rows: to - from, cols: x.cols };
}

/** XOR of the signs of the first two features: no linear model can do better than chance. */
function xorLabels(x: M): Float64Array {
  return Float64Array.from({ length: x.rows }, (_, i) =>
    (x.data[i * x.cols] as number) * (x.data[i * x.cols + 1] as number) > 0 ? 1 : 0,
  );
}

describe('gradient boosting', () => {
  it('starts no round past its stop time, keeping the rounds it made', () => {
    const x = uniform(2000, 4, 3);
    const y = xorLabels(x);
    const full = fitGbdt(x, y, { objective: 'binary', maxRounds: 40 });
    const cut = fitGbdt(x, y, { objective: 'binary', maxRounds: 40, stopAt: Date.now() - 1 });
    expect(full.model.rounds).toBe(40);
    expect(cut.model.rounds).toBe(1);
    // The one round made is the first round of the full fit.
    expect(cut.model.value).toEqual(truncateForest(full.model, 1).value);
  });

  it('learns an XOR target that logistic regression cannot', () => {
    const x = uniform(6000, 4, 1);
    const y = xorLabels(x);
    const train = slice(x, 0, 5000);
    const test = slice(x, 5000, 6000);
    const yTrain = y.subarray(0, 5000);
    const yTest = y.subarray(5000);
    const { model } = fitGbdt(train, yTrain, { objective: 'binary', nClasses: 2 });
    const boosted = toProbabilities(
      'binary',
      predictForestRaw(compileForest(model), test),
      test.rows,
      2,
    );
    const linear = fitLogistic(train, Int32Array.from(yTrain), 2);
    const straight = toProbabilities(
      'binary',
      predictLinearRaw(compileLinear(linear), test),
      test.rows,
      2,
    );
    expect(accuracy(yTest, boosted, 2)).toBeGreaterThan(0.95);
    expect(accuracy(yTest, straight, 2)).toBeLessThan(0.6);
  });

  it('fits a smooth non-linear regression with a high R²', () => {
    const x = uniform(5000, 3, 2);
    const rand = createRng(3);
    const f = (i: number): number =>
      Math.sin(3 * (x.data[i * 3] as number)) + (x.data[i * 3 + 1] as number) ** 2;
    const y = Float64Array.from({ length: x.rows }, (_, i) => f(i) + 0.05 * (rand() - 0.5));
    const { model } = fitGbdt(slice(x, 0, 4000), y.subarray(0, 4000), { objective: 'regression' });
    const predicted = predictForestRaw(compileForest(model), slice(x, 4000, 5000));
    expect(r2(y.subarray(4000), predicted)).toBeGreaterThan(0.97);
  });

  it('separates three classes with one tree per class per round', () => {
    const x = uniform(3000, 2, 4);
    const y = Float64Array.from({ length: x.rows }, (_, i) => {
      const a = x.data[i * 2] as number;
      return a < -0.33 ? 0 : a < 0.33 ? 1 : 2;
    });
    const { model } = fitGbdt(slice(x, 0, 2500), y.subarray(0, 2500), {
      objective: 'multiclass',
      nClasses: 3,
      maxRounds: 30,
    });
    expect(model.roots).toHaveLength(30 * 3);
    const test = slice(x, 2500, 3000);
    const proba = toProbabilities(
      'multiclass',
      predictForestRaw(compileForest(model), test),
      test.rows,
      3,
    );
    expect(accuracy(y.subarray(2500), proba, 3)).toBeGreaterThan(0.97);
  });

  it('learns where missing values should go', () => {
    // y = 1 when x is missing or above 0.5: missing rows must follow the "high" branch.
    const rand = createRng(5);
    const n = 4000;
    const data = new Float64Array(n);
    const y = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const missing = rand() < 0.2;
      const v = rand();
      data[i] = missing ? NaN : v;
      y[i] = missing || v > 0.5 ? 1 : 0;
    }
    const { model } = fitGbdt({ data, rows: n, cols: 1 }, y, {
      objective: 'binary',
      maxRounds: 50,
    });
    const probe = { data: Float64Array.of(NaN, 0.2, 0.9), rows: 3, cols: 1 };
    const p = toProbabilities('binary', predictForestRaw(compileForest(model), probe), 3, 2);
    expect(p[1]).toBeGreaterThan(0.9);
    expect(p[3]).toBeLessThan(0.1);
    expect(p[5]).toBeGreaterThan(0.9);
  });

  it('sends missing values to the heavier side when training had none', () => {
    const x = uniform(2000, 1, 6);
    // 80% of rows have x > -0.6, where y = 1.
    const y = Float64Array.from({ length: x.rows }, (_, i) =>
      (x.data[i] as number) > -0.6 ? 1 : 0,
    );
    const { model } = fitGbdt(x, y, { objective: 'binary', maxRounds: 20 });
    const raw = predictForestRaw(compileForest(model), {
      data: Float64Array.of(NaN),
      rows: 1,
      cols: 1,
    });
    expect(raw[0]).toBeGreaterThan(0);
  });

  it('stops early when validation loss stops improving, keeping the best round', () => {
    const x = uniform(3000, 5, 7);
    const rand = createRng(8);
    const y = Float64Array.from({ length: x.rows }, () => (rand() < 0.5 ? 1 : 0));
    const result = fitGbdt(slice(x, 0, 2000), y.subarray(0, 2000), {
      objective: 'binary',
      validation: { x: slice(x, 2000, 3000), y: y.subarray(2000) },
      earlyStoppingRounds: 10,
    });
    expect(result.validationLoss.length).toBeLessThan(300);
    const best = result.validationLoss.indexOf(Math.min(...result.validationLoss)) + 1;
    expect(result.model.rounds).toBe(best);
    expect(result.model.roots).toHaveLength(best);
  });

  it('evaluates validation rows on raw values exactly as the serialised forest does', () => {
    // Training tracks validation loss with its own tree walk; it must agree with prediction.
    const x = uniform(3000, 4, 9);
    const y = xorLabels(x);
    const valid = slice(x, 2000, 3000);
    valid.data[0] = NaN;
    const result = fitGbdt(slice(x, 0, 2000), y.subarray(0, 2000), {
      objective: 'binary',
      maxRounds: 40,
      subsample: 0.7,
      validation: { x: valid, y: y.subarray(2000) },
      keepAllRounds: true,
    });
    expect(result.model.rounds).toBe(40);
    for (const rounds of [1, 17, 40]) {
      const raw = predictForestRaw(compileForest(truncateForest(result.model, rounds)), valid);
      let loss = 0;
      for (let i = 0; i < valid.rows; i++) {
        const p = 1 / (1 + Math.exp(-(raw[i] as number)));
        loss -= y[2000 + i] === 1 ? Math.log(p) : Math.log(1 - p);
      }
      expect(loss / valid.rows).toBeCloseTo(result.validationLoss[rounds - 1] as number, 10);
    }
  });

  it('is deterministic for a seed, including row subsampling', () => {
    const x = uniform(2000, 4, 10);
    const y = xorLabels(x);
    const a = fitGbdt(x, y, { objective: 'binary', subsample: 0.5, seed: 1, maxRounds: 20 });
    const b = fitGbdt(x, y, { objective: 'binary', subsample: 0.5, seed: 1, maxRounds: 20 });
    const c = fitGbdt(x, y, { objective: 'binary', subsample: 0.5, seed: 2, maxRounds: 20 });
    expect(JSON.stringify(a.model)).toBe(JSON.stringify(b.model));
    expect(JSON.stringify(a.model)).not.toBe(JSON.stringify(c.model));
  });

  it('respects the depth and leaf limits', () => {
    const x = uniform(5000, 6, 11);
    const y = Float64Array.from({ length: x.rows }, (_, i) =>
      Math.sin(10 * (x.data[i * 6] as number)),
    );
    const { model } = fitGbdt(x, y, {
      objective: 'regression',
      maxRounds: 5,
      maxDepth: 3,
      maxLeaves: 31,
    });
    const depth = (node: number): number =>
      (model.feature[node] as number) < 0
        ? 0
        : 1 + Math.max(depth(model.left[node] as number), depth(model.right[node] as number));
    for (const root of model.roots) expect(depth(root)).toBeLessThanOrEqual(3);
    const limited = fitGbdt(x, y, {
      objective: 'regression',
      maxRounds: 5,
      maxDepth: 20,
      maxLeaves: 7,
    }).model;
    const leaves = limited.feature.filter((f) => f < 0).length;
    expect(leaves).toBeLessThanOrEqual(5 * 7);
  });

  it('splits each tree on its own seeded sample of features (colsampleByTree)', () => {
    const x = uniform(3000, 8, 13);
    // The target needs every feature, so a tree uses as many as it is allowed.
    const y = Float64Array.from({ length: x.rows }, (_, i) => {
      let s = 0;
      for (let f = 0; f < 8; f++) s += Math.sin(3 * (x.data[i * 8 + f] as number));
      return s;
    });
    const options = { objective: 'regression', maxRounds: 30, colsampleByTree: 0.25 } as const;
    const { model } = fitGbdt(x, y, { ...options, seed: 1 });
    const used = model.roots.map((root, t) => {
      const end = model.roots[t + 1] ?? model.feature.length;
      return new Set(model.feature.slice(root, end).filter((f) => f >= 0));
    });
    for (const features of used) expect(features.size).toBeLessThanOrEqual(2);
    // Across trees the samples differ and cover every feature.
    expect(new Set(used.flatMap((s) => [...s])).size).toBe(8);
    const again = fitGbdt(x, y, { ...options, seed: 1 }).model;
    const other = fitGbdt(x, y, { ...options, seed: 2 }).model;
    expect(JSON.stringify(again)).toBe(JSON.stringify(model));
    expect(JSON.stringify(other)).not.toBe(JSON.stringify(model));
    // Still a good model: every feature gets its trees.
    const full = fitGbdt(x, y, { ...options, colsampleByTree: 1 }).model;
    const test = uniform(1000, 8, 14);
    const yTest = Float64Array.from({ length: test.rows }, (_, i) => {
      let s = 0;
      for (let f = 0; f < 8; f++) s += Math.sin(3 * (test.data[i * 8 + f] as number));
      return s;
    });
    const sampled = r2(yTest, predictForestRaw(compileForest(model), test));
    expect(sampled).toBeGreaterThan(0.5);
    expect(r2(yTest, predictForestRaw(compileForest(full), test))).toBeGreaterThan(0.5);
  });

  it('averages forests exactly in raw-score space (fold bagging), for every objective', () => {
    // Members of different sizes, class balances and round counts, with missing values: a wrong
    // node offset, leaf weight, base score or output order would show in the raw scores.
    const x = uniform(900, 3, 13);
    for (let i = 0; i < x.rows; i += 7) x.data[i * 3 + 1] = NaN;
    const targets = {
      regression: Float64Array.from(
        { length: x.rows },
        (_, i) => 3 * (x.data[i * 3] as number) + 5,
      ),
      binary: xorLabels(x),
      multiclass: Float64Array.from({ length: x.rows }, (_, i) => {
        const a = (x.data[i * 3] as number) + 0.3 * (x.data[i * 3 + 2] as number);
        return a < -0.2 ? 0 : a < 0.5 ? 1 : 2;
      }),
    };
    for (const objective of ['regression', 'binary', 'multiclass'] as const) {
      const y = targets[objective];
      const parts = [
        [0, 300, 5],
        [200, 700, 12],
        [500, 900, 9],
      ] as const;
      const members = parts.map(
        ([from, to, rounds]) =>
          fitGbdt(slice(x, from, to), y.subarray(from, to), {
            objective,
            nClasses: 3,
            maxRounds: rounds,
            seed: from,
          }).model,
      );
      const bagged = averageForests(members);
      const k = bagged.nOutputs;
      expect(bagged.roots).toHaveLength(members.reduce((s, m) => s + m.roots.length, 0));
      expect(bagged.rounds * k).toBe(bagged.roots.length);
      const raw = predictForestRaw(compileForest(bagged), x);
      const raws = members.map((m) => predictForestRaw(compileForest(m), x));
      let maxDiff = 0;
      let spread = 0;
      raw.forEach((v, j) => {
        const mean = raws.reduce((s, r) => s + (r[j] as number), 0) / raws.length;
        maxDiff = Math.max(maxDiff, Math.abs(v - mean));
        spread = Math.max(spread, Math.abs((raws[0]?.[j] as number) - mean));
      });
      expect(maxDiff).toBeLessThan(1e-9);
      // The members disagree, so the equality is not that of copies.
      expect(spread).toBeGreaterThan(0.01);
    }
  });

  it('serialises to flat JSON arrays that survive a round trip', () => {
    const x = uniform(500, 3, 12);
    const y = xorLabels(x);
    const { model } = fitGbdt(x, y, { objective: 'binary', maxRounds: 10 });
    const copy = JSON.parse(JSON.stringify(model)) as typeof model;
    expect(predictForestRaw(compileForest(copy), x)).toEqual(
      predictForestRaw(compileForest(model), x),
    );
    for (const key of ['feature', 'threshold', 'left', 'right', 'value', 'defaultLeft'] as const) {
      expect(copy[key]).toHaveLength(model.feature.length);
    }
  });
});
