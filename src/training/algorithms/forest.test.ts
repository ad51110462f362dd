import { describe, expect, it } from 'vitest';
import type { ModelSignature } from '../../core/model.js';
import { tableFromRows, type ColumnSchema, type Row } from '../../core/table.js';
import { accuracy, rmse } from '../metrics.js';
import {
  decodeNativeModel,
  encodeNativeModel,
  NATIVE_FORMAT,
  NATIVE_FORMAT_VERSION,
  NativePredictor,
  type NativeModelDocument,
} from '../native-model.js';
import { fit, transform } from '../preprocess.js';
import { createRng } from '../random.js';
import {
  compileForestModel,
  fitDecisionTree,
  fitForest,
  forestProbabilities,
  predictForestMeans,
  type ForestModel,
} from './forest.js';

type M = { data: Float64Array; rows: number; cols: number };

function uniform(rows: number, cols: number, seed: number): M {
  const rand = createRng(seed);
  return { data: Float64Array.from({ length: rows * cols }, () => rand() * 2 - 1), rows, cols };
}

function slice(x: M, from: number, to: number): M {
  return { data: x.data.subarray(from * x.cols, to * x.cols), rows: to - from, cols: x.cols };
}

/** XOR of the signs of the first two features: no single split says anything about it. */
function xorLabels(x: M): Float64Array {
  return Float64Array.from({ length: x.rows }, (_, i) =>
    (x.data[i * x.cols] as number) * (x.data[i * x.cols + 1] as number) > 0 ? 1 : 0,
  );
}

function predict(model: ForestModel, x: M): Float64Array {
  return predictForestMeans(compileForestModel(model), x);
}

function depthOf(model: ForestModel, node: number): number {
  return (model.feature[node] as number) < 0
    ? 0
    : 1 +
        Math.max(
          depthOf(model, model.left[node] as number),
          depthOf(model, model.right[node] as number),
        );
}

describe('decision trees and random forests', () => {
  it('learn an XOR interaction that a single split cannot', () => {
    const x = uniform(4000, 4, 1);
    const y = xorLabels(x);
    const [train, test] = [slice(x, 0, 3000), slice(x, 3000, 4000)];
    const [yTrain, yTest] = [y.subarray(0, 3000), y.subarray(3000)];
    const proba = (m: ForestModel): Float64Array =>
      forestProbabilities('binary', predict(m, test), test.rows, 2);
    const tree = fitDecisionTree(train, yTrain, { objective: 'binary' });
    const stump = fitDecisionTree(train, yTrain, { objective: 'binary', maxDepth: 1 });
    const forest = fitForest(train, yTrain, { objective: 'binary', nEstimators: 50, seed: 1 });
    expect(accuracy(yTest, proba(tree), 2)).toBeGreaterThan(0.95);
    expect(accuracy(yTest, proba(forest), 2)).toBeGreaterThan(0.95);
    expect(accuracy(yTest, proba(stump), 2)).toBeLessThan(0.6);
  });

  it('average away the noise one deep tree memorises (regression)', () => {
    const x = uniform(3000, 5, 2);
    const rand = createRng(3);
    const y = Float64Array.from(
      { length: x.rows },
      (_, i) =>
        Math.sin(3 * (x.data[i * 5] as number)) +
        (x.data[i * 5 + 1] as number) ** 2 +
        (rand() - 0.5) * 1.5,
    );
    const [train, test] = [slice(x, 0, 2000), slice(x, 2000, 3000)];
    const [yTrain, yTest] = [y.subarray(0, 2000), y.subarray(2000)];
    const tree = fitDecisionTree(train, yTrain, { objective: 'regression' });
    const forest = fitForest(train, yTrain, { objective: 'regression', seed: 4 });
    const treeRmse = rmse(yTest, predict(tree, test));
    const forestRmse = rmse(yTest, predict(forest, test));
    // The noise alone has an RMSE of 1.5/√12 ≈ 0.43; an unpruned tree adds about as much again.
    expect(forestRmse).toBeLessThan(0.85 * treeRmse);
    expect(forestRmse).toBeLessThan(0.55);
    // A tree grown to purity reproduces its training rows.
    expect(rmse(yTrain, predict(tree, train))).toBeLessThan(1e-9);
  });

  it('give multiclass probabilities that sum to 1 and separate the classes', () => {
    const x = uniform(3000, 3, 5);
    const y = Float64Array.from({ length: x.rows }, (_, i) => {
      const a = x.data[i * 3] as number;
      return a < -0.33 ? 0 : a < 0.33 ? 1 : 2;
    });
    const model = fitForest(slice(x, 0, 2500), y.subarray(0, 2500), {
      objective: 'multiclass',
      nClasses: 3,
      nEstimators: 30,
      seed: 6,
    });
    expect(model.nOutputs).toBe(3);
    expect(model.value).toHaveLength(3 * model.feature.length);
    const test = slice(x, 2500, 3000);
    const proba = forestProbabilities('multiclass', predict(model, test), test.rows, 3);
    for (let i = 0; i < test.rows; i++) {
      const row = proba.subarray(3 * i, 3 * i + 3);
      expect(row.reduce((s, p) => s + p, 0)).toBeCloseTo(1, 12);
      for (const p of row) expect(p).toBeGreaterThanOrEqual(0);
    }
    expect(accuracy(y.subarray(2500), proba, 3)).toBeGreaterThan(0.97);
  });

  it('are deterministic for a seed', () => {
    const x = uniform(1500, 6, 7);
    const y = xorLabels(x);
    const options = { objective: 'binary', nEstimators: 10 } as const;
    const a = fitForest(x, y, { ...options, seed: 1 });
    const b = fitForest(x, y, { ...options, seed: 1 });
    const c = fitForest(x, y, { ...options, seed: 2 });
    expect(JSON.stringify(a)).toBe(JSON.stringify(b));
    expect(JSON.stringify(a)).not.toBe(JSON.stringify(c));
  });

  it('learn where missing values should go', () => {
    // y = 1 when x is missing or above 0.5: missing rows must follow the "high" branch.
    const rand = createRng(8);
    const n = 3000;
    const data = new Float64Array(n);
    const y = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const missing = rand() < 0.2;
      const v = rand();
      data[i] = missing ? NaN : v;
      y[i] = missing || v > 0.5 ? 1 : 0;
    }
    const probe = { data: Float64Array.of(NaN, 0.2, 0.9), rows: 3, cols: 1 };
    for (const model of [
      fitDecisionTree({ data, rows: n, cols: 1 }, y, { objective: 'binary', maxDepth: 2 }),
      fitForest({ data, rows: n, cols: 1 }, y, { objective: 'binary', nEstimators: 20, seed: 9 }),
    ]) {
      const p = predict(model, probe);
      expect(p[0]).toBeGreaterThan(0.95);
      expect(p[1]).toBeLessThan(0.05);
      expect(p[2]).toBeGreaterThan(0.95);
    }
  });

  it('split known values from missing ones when a node holds a single value', () => {
    // x in {0, 1, NaN}, y = 1 only when x is missing: the first split cuts 0 from 1 and sends
    // NaN to one side; that side (one value bin plus NaN) must then split on "missing or not".
    const rand = createRng(19);
    const data = Float64Array.from(
      { length: 900 },
      () => [0, 1, NaN][Math.floor(rand() * 3)] as number,
    );
    const y = data.map((v) => (Number.isNaN(v) ? 1 : 0));
    const tree = fitDecisionTree({ data, rows: 900, cols: 1 }, y, {
      objective: 'binary',
      maxDepth: 2,
    });
    const p = predict(tree, { data: Float64Array.of(0, 1, NaN), rows: 3, cols: 1 });
    expect(Array.from(p)).toEqual([0, 0, 1]);
  });

  it('send missing values to the larger side when training had none', () => {
    const x = uniform(2000, 1, 10);
    // 80% of rows have x > -0.6, where y = 1.
    const y = Float64Array.from({ length: x.rows }, (_, i) =>
      (x.data[i] as number) > -0.6 ? 1 : 0,
    );
    const tree = fitDecisionTree(x, y, { objective: 'binary' });
    expect(predict(tree, { data: Float64Array.of(NaN), rows: 1, cols: 1 })[0]).toBe(1);
  });

  it('respect the depth limit and the smallest leaf', () => {
    const x = uniform(3000, 4, 11);
    const y = Float64Array.from({ length: x.rows }, (_, i) =>
      Math.sin(10 * (x.data[i * 4] as number)),
    );
    const model = fitForest(x, y, { objective: 'regression', nEstimators: 5, maxDepth: 4 });
    for (const root of model.roots) expect(depthOf(model, root)).toBeLessThanOrEqual(4);
    expect(Math.max(...model.roots.map((r) => depthOf(model, r)))).toBe(4);
    // With at least 200 of 3000 rows per leaf, a tree has at most 15 leaves.
    const coarse = fitDecisionTree(x, y, { objective: 'regression', minSamplesLeaf: 200 });
    const leaves = coarse.feature.filter((f) => f < 0).length;
    expect(leaves).toBeGreaterThan(4);
    expect(leaves).toBeLessThanOrEqual(15);
  });

  it('weigh every feature in a decision tree and a subset per split in a forest', () => {
    // Only feature 0 carries signal (on a grid, so that one split separates the classes
    // exactly); a tree weighing all features splits on it once and stops.
    const x = uniform(2000, 9, 12);
    for (let i = 0; i < x.rows; i++) x.data[i * 9] = Math.round((x.data[i * 9] as number) * 10);
    const y = Float64Array.from({ length: x.rows }, (_, i) =>
      (x.data[i * 9] as number) > 0 ? 1 : 0,
    );
    const tree = fitDecisionTree(x, y, { objective: 'binary' });
    expect(tree.feature[0]).toBe(0);
    expect(tree.feature.filter((f) => f >= 0)).toHaveLength(1);
    // With 3 of 9 features per split, some root splits must start on a noise feature.
    const forest = fitForest(x, y, { objective: 'binary', nEstimators: 20, seed: 13 });
    expect(forest.roots.some((r) => forest.feature[r] !== 0)).toBe(true);
    expect(() => fitForest(x, y, { objective: 'binary', maxFeatures: 0 })).toThrow(
      /maxFeatures 0 selects no feature/,
    );
  });
});

describe('forest models in the native artifact', () => {
  const schema: ColumnSchema[] = [
    { name: 'a', type: 'float' },
    { name: 'b', type: 'float' },
    { name: 'color', type: 'string' },
    { name: 'label', type: 'string' },
  ];
  const rows = (n: number, seed: number): Row[] => {
    const rand = createRng(seed);
    return Array.from({ length: n }, () => {
      const a = rand() * 2 - 1;
      const b = rand() * 2 - 1;
      const color = (['red', 'green', 'blue'] as const)[Math.floor(rand() * 3)] as string;
      const label = color === 'red' ? 'c' : a * b > 0 ? 'a' : 'b';
      return { a: rand() < 0.1 ? null : a, b, color, label };
    });
  };
  const signature: ModelSignature = {
    task: 'classification',
    target: 'label',
    inputs: [
      { name: 'a', type: 'float' },
      { name: 'b', type: 'float' },
      { name: 'color', type: 'string' },
    ],
    classes: ['a', 'b', 'c'],
  };

  function document(): NativeModelDocument {
    const table = tableFromRows(schema, rows(1500, 14));
    const labels = table.columns[3]?.values.map((v) => ['a', 'b', 'c'].indexOf(v as string)) ?? [];
    const preprocess = fit(table, signature.inputs, { mode: 'tree' });
    const model = fitForest(transform(preprocess, table), Float64Array.from(labels), {
      objective: 'multiclass',
      nClasses: 3,
      nEstimators: 25,
      seed: 15,
    });
    return { format: NATIVE_FORMAT, version: NATIVE_FORMAT_VERSION, signature, preprocess, model };
  }

  it('predicts after encode and decode exactly what the fitted forest predicts', () => {
    const doc = document();
    const loaded = new NativePredictor(decodeNativeModel(encodeNativeModel(doc)));
    const live = tableFromRows(schema, rows(300, 16));
    const { predict: labels, proba } = loaded.predict(live);
    const x = transform(doc.preprocess, live);
    const expected = forestProbabilities(
      'multiclass',
      predictForestMeans(compileForestModel(doc.model as ForestModel), x),
      x.rows,
      3,
    );
    expect(proba).toEqual(expected);
    const truth = live.columns[3]?.values ?? [];
    const right = labels.filter((l, i) => l === truth[i]).length;
    expect(right / live.rowCount).toBeGreaterThan(0.9);
  });

  it('rejects a forest whose arrays do not fit together, and kinds it does not know', () => {
    const doc = document();
    const model = doc.model as ForestModel;
    const bad = (m: object): Uint8Array => encodeNativeModel({ ...doc, model: m as ForestModel });
    expect(() => decodeNativeModel(bad({ ...model, value: model.value.slice(1) }))).toThrow(
      /'value' has/,
    );
    expect(() => decodeNativeModel(bad({ ...model, left: model.left.map(() => 0) }))).toThrow(
      /malformed/,
    );
    expect(() => decodeNativeModel(bad({ ...model, kind: 'forest9' }))).toThrow(
      /unknown algorithm 'forest9'/,
    );
  });

  it('binary forests give [1 - p, p] from the mean of their leaves', () => {
    const x = uniform(800, 2, 17);
    const y = xorLabels(x);
    const model = fitForest(x, y, { objective: 'binary', nEstimators: 5, seed: 18 });
    const raw = predict(model, slice(x, 0, 10));
    const proba = forestProbabilities('binary', raw, 10, 2);
    for (let i = 0; i < 10; i++) {
      expect(proba[2 * i + 1]).toBe(raw[i]);
      expect((proba[2 * i] as number) + (proba[2 * i + 1] as number)).toBeCloseTo(1, 12);
    }
  });
});
