import { describe, expect, it } from 'vitest';
import { createRng } from '../random.js';
import { compileLinear, fitLogistic, fitRidge, predictLinearRaw } from './linear.js';
import { toProbabilities } from './objective.js';

function gaussian(rand: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
}

function matrix(
  rows: number,
  cols: number,
  seed: number,
): { data: Float64Array; rows: number; cols: number } {
  const rand = createRng(seed);
  const data = new Float64Array(rows * cols);
  for (let i = 0; i < data.length; i++) data[i] = gaussian(rand);
  return { data, rows, cols };
}

function dot(x: Float64Array, row: number, cols: number, w: readonly number[]): number {
  let s = 0;
  for (let j = 0; j < cols; j++) s += (x[row * cols + j] as number) * (w[j] as number);
  return s;
}

describe('ridge regression', () => {
  it('recovers the coefficients and intercept of a noisy linear relation', () => {
    const x = matrix(5000, 3, 1);
    const rand = createRng(2);
    const truth = [3, -2, 0.5];
    const y = Float64Array.from(
      { length: x.rows },
      (_, i) => 5 + dot(x.data, i, 3, truth) + 0.1 * gaussian(rand),
    );
    const model = fitRidge(x, y, { alpha: 1 });
    expect(model.weights).toHaveLength(4);
    truth.forEach((w, j) => expect(model.weights[j]).toBeCloseTo(w, 1));
    expect(model.weights[3]).toBeCloseTo(5, 1);
  });

  it('shrinks coefficients toward zero as alpha grows, leaving the intercept alone', () => {
    const x = matrix(200, 2, 3);
    const y = Float64Array.from({ length: 200 }, (_, i) => 10 + 4 * (x.data[i * 2] as number));
    const weak = fitRidge(x, y, { alpha: 0 });
    const strong = fitRidge(x, y, { alpha: 1e6 });
    expect(weak.weights[0]).toBeCloseTo(4, 6);
    expect(Math.abs(strong.weights[0] as number)).toBeLessThan(0.01);
    // With the slope gone, the intercept is the mean of y.
    const mean = y.reduce((s, v) => s + v, 0) / y.length;
    expect(strong.weights[2]).toBeCloseTo(mean, 1);
  });

  it('still solves with perfectly collinear columns (one-hot plus other)', () => {
    const data = new Float64Array(100 * 2);
    for (let i = 0; i < 100; i++) {
      data[i * 2] = i % 2;
      data[i * 2 + 1] = 1 - (i % 2);
    }
    const y = Float64Array.from({ length: 100 }, (_, i) => (i % 2 === 0 ? 1 : 3));
    const model = fitRidge({ data, rows: 100, cols: 2 }, y, { alpha: 0 });
    const raw = predictLinearRaw(compileLinear(model), { data, rows: 100, cols: 2 });
    expect(raw[0]).toBeCloseTo(1, 4);
    expect(raw[1]).toBeCloseTo(3, 4);
  });
});

describe('logistic regression', () => {
  it('recovers the coefficients of a binary logistic model', () => {
    const x = matrix(20000, 3, 4);
    const rand = createRng(5);
    const truth = [1.5, -2, 0.5];
    const labels = Int32Array.from({ length: x.rows }, (_, i) => {
      const z = 0.3 + dot(x.data, i, 3, truth);
      return rand() < 1 / (1 + Math.exp(-z)) ? 1 : 0;
    });
    const model = fitLogistic(x, labels, 2, { l2: 1e-6 });
    expect(model.objective).toBe('binary');
    expect(model.nOutputs).toBe(1);
    truth.forEach((w, j) => expect(Math.abs((model.weights[j] as number) - w)).toBeLessThan(0.1));
    expect(Math.abs((model.weights[3] as number) - 0.3)).toBeLessThan(0.1);
  });

  it('recovers softmax coefficient differences for three classes', () => {
    const x = matrix(30000, 2, 6);
    const rand = createRng(7);
    // Class scores relative to class 0.
    const truth = [
      [0, 0, 0],
      [2, -1, 0.5],
      [-1, 2, -0.5],
    ];
    const labels = Int32Array.from({ length: x.rows }, (_, i) => {
      const z = truth.map((w) => (w[2] as number) + dot(x.data, i, 2, w));
      const e = z.map(Math.exp);
      const total = e.reduce((s, v) => s + v, 0);
      let u = rand() * total;
      for (let c = 0; c < 3; c++) if ((u -= e[c] as number) < 0) return c;
      return 2;
    });
    const model = fitLogistic(x, labels, 3, { l2: 1e-6 });
    expect(model.objective).toBe('multiclass');
    const w = (c: number, j: number): number => model.weights[c * 3 + j] as number;
    for (const c of [1, 2]) {
      for (let j = 0; j < 3; j++) {
        expect(Math.abs(w(c, j) - w(0, j) - (truth[c]?.[j] as number))).toBeLessThan(0.12);
      }
    }
    const proba = toProbabilities(
      'multiclass',
      predictLinearRaw(compileLinear(model), x),
      x.rows,
      3,
    );
    for (let i = 0; i < 5; i++) {
      expect(
        (proba[i * 3] as number) + (proba[i * 3 + 1] as number) + (proba[i * 3 + 2] as number),
      ).toBeCloseTo(1, 12);
    }
  });

  it('stays finite on separable data thanks to the L2 penalty', () => {
    const data = Float64Array.of(-2, -1, 1, 2);
    const model = fitLogistic({ data, rows: 4, cols: 1 }, Int32Array.of(0, 0, 1, 1), 2);
    expect(model.weights.every(Number.isFinite)).toBe(true);
    expect(model.weights[0]).toBeGreaterThan(0);
  });

  it('gives identical weights on identical input', () => {
    const x = matrix(500, 4, 8);
    const labels = Int32Array.from({ length: 500 }, (_, i) =>
      (x.data[i * 4] as number) > 0 ? 1 : 0,
    );
    expect(fitLogistic(x, labels, 2).weights).toEqual(fitLogistic(x, labels, 2).weights);
  });
});
