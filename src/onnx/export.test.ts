import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import type { Label, ModelInput, ModelSignature, Prediction } from '../core/model.js';
import { tableFromRows, type ColumnSchema, type Row, type Table } from '../core/table.js';
import { FITTED_RECIPE_FORMAT, type FittedRecipe } from '../data/prep/fitted.js';
import { fitDecisionTree, fitForest } from '../training/algorithms/forest.js';
import { fitGbdt } from '../training/algorithms/gbdt.js';
import { fitLogistic, fitRidge } from '../training/algorithms/linear.js';
import type { Objective } from '../training/algorithms/objective.js';
import {
  NATIVE_FORMAT,
  NATIVE_FORMAT_VERSION,
  NativePredictor,
  type AlgorithmModel,
  type NativeModelDocument,
} from '../training/native-model.js';
import { fit, toCategory, toNumber, transform } from '../training/preprocess.js';
import { createRng } from '../training/random.js';
import { recipeSha256 } from '../training/recipe-model.js';
import { exportOnnx, PREDICT_OUTPUT, PROBA_OUTPUT, SIGNATURE_METADATA } from './export.js';
import { decodeOnnx, metadataOf } from './proto.js';

const INPUTS: ModelInput[] = [
  { name: 'amount', type: 'float' },
  { name: 'age', type: 'int' },
  { name: 'color', type: 'string' },
  { name: 'city', type: 'string' },
];
const SCHEMA: ColumnSchema[] = [...INPUTS, { name: 'target', type: 'string' }];
const COLORS = ['red', 'green', 'blue', 'black'];
const CITIES = ['Paris', 'Lyon', 'Nice'];

/**
 * Rows whose target depends on every input, with missing numbers and strings. Numbers are
 * float32 values, since ONNX numeric inputs are float: both predictors then see the same input.
 * `teal` is a rare colour (folded into an "other" code in tree mode); `odd` rows bring unseen
 * categories.
 */
function makeRows(n: number, seed: number, odd: boolean): Row[] {
  const rand = createRng(seed);
  return Array.from({ length: n }, (_, i) => {
    const amount = rand() < 0.1 ? null : Math.fround(rand() * 4 - 2);
    const age = rand() < 0.1 ? null : Math.floor(rand() * 60) + 18;
    const color =
      rand() < 0.1
        ? null
        : odd && rand() < 0.15
          ? 'purple'
          : i % 150 === 0
            ? 'teal'
            : (COLORS[Math.floor(rand() * COLORS.length)] as string);
    const city =
      rand() < 0.1
        ? null
        : odd && rand() < 0.15
          ? 'Berlin'
          : (CITIES[Math.floor(rand() * CITIES.length)] as string);
    const score =
      (amount ?? 0.5) +
      ((age ?? 40) - 40) / 20 +
      (color === 'red' ? 1 : color === 'blue' ? -1 : 0) +
      (city === 'Paris' ? 0.7 : 0) +
      (rand() - 0.5);
    return { amount, age, color, city, target: String(score) };
  });
}

type Task = Objective;

function targets(table: Table, task: Task): { y: Float64Array; classes?: Label[] } {
  const scores = (table.columns[4]?.values ?? []).map((v) => Number(v));
  if (task === 'regression') return { y: Float64Array.from(scores) };
  if (task === 'binary')
    return { y: Float64Array.from(scores, (s) => (s > 0.3 ? 1 : 0)), classes: ['no', 'yes'] };
  // Numeric class labels: the export's `predict` is then an int64 tensor.
  return {
    y: Float64Array.from(scores, (s) => (s < -0.5 ? 0 : s < 1 ? 1 : 2)),
    classes: [10, 20, 30],
  };
}

type Algorithm = 'linear' | 'gbdt' | 'forest' | 'tree';

function train(algorithm: Algorithm, task: Task, table: Table): NativeModelDocument {
  const { y, classes } = targets(table, task);
  const k = classes?.length ?? 0;
  const signature: ModelSignature =
    task === 'regression'
      ? { task: 'regression', target: 'target', inputs: INPUTS }
      : { task: 'classification', target: 'target', inputs: INPUTS, classes: classes ?? [] };
  const mode = algorithm === 'linear' ? 'linear' : 'tree';
  const preprocess = fit(table, INPUTS, {
    mode,
    ...(task === 'multiclass' ? {} : { target: y }),
  });
  const x = transform(preprocess, table);
  let model: AlgorithmModel;
  if (algorithm === 'linear') {
    model = task === 'regression' ? fitRidge(x, y) : fitLogistic(x, Int32Array.from(y), k);
  } else if (algorithm === 'gbdt') {
    model = fitGbdt(x, y, { objective: task, nClasses: k, maxRounds: 40, seed: 3 }).model;
  } else if (algorithm === 'forest') {
    model = fitForest(x, y, { objective: task, nClasses: k, nEstimators: 15, seed: 3 });
  } else {
    model = fitDecisionTree(x, y, { objective: task, nClasses: k, maxDepth: 6 });
  }
  return {
    format: NATIVE_FORMAT,
    version: NATIVE_FORMAT_VERSION,
    signature,
    preprocess,
    model,
  };
}

/** Runs ONNX bytes in onnxruntime-node on a table: one [N,1] tensor per input column. */
async function runOnnx(bytes: Uint8Array, table: Table): Promise<Record<string, ort.Tensor>> {
  const session = await ort.InferenceSession.create(bytes);
  const n = table.rowCount;
  const feeds: Record<string, ort.Tensor> = {};
  for (const input of INPUTS) {
    const values = table.columns.find((c) => c.name === input.name)?.values ?? [];
    feeds[input.name] =
      input.type === 'string'
        ? new ort.Tensor(
            'string',
            values.map((v) => toCategory(v) ?? ''),
            [n, 1],
          )
        : new ort.Tensor(
            'float32',
            Float32Array.from(values, (v) => toNumber(v)),
            [n, 1],
          );
  }
  return session.run(feeds);
}

/** Labels must agree wherever the two best probabilities are not tied within 1e-6. */
function expectSamePredictions(
  native: Prediction,
  onnx: Record<string, ort.Tensor>,
  k: number,
): void {
  const labels = Array.from(onnx[PREDICT_OUTPUT]?.data as ArrayLike<unknown>, (v) =>
    typeof v === 'bigint' ? Number(v) : v,
  );
  expect(labels).toHaveLength(native.predict.length);
  if (native.proba === undefined) {
    labels.forEach((v, i) =>
      expect(Math.abs((v as number) - (native.predict[i] as number))).toBeLessThan(1e-5),
    );
    return;
  }
  const proba = onnx[PROBA_OUTPUT]?.data as Float64Array;
  expect(proba).toHaveLength(native.proba.length);
  let maxDiff = 0;
  native.proba.forEach((p, i) => (maxDiff = Math.max(maxDiff, Math.abs(p - (proba[i] as number)))));
  expect(maxDiff).toBeLessThan(1e-5);
  let compared = 0;
  native.predict.forEach((label, i) => {
    const row = Array.from(native.proba?.subarray(i * k, i * k + k) ?? []).sort((a, b) => b - a);
    if ((row[0] as number) - (row[1] as number) < 1e-6) return;
    expect(labels[i]).toBe(label);
    compared++;
  });
  expect(compared).toBeGreaterThan(native.predict.length / 2);
}

const trainTable = tableFromRows(SCHEMA, makeRows(600, 1, false));
const testRows = makeRows(300, 2, true);
const testTable = tableFromRows(SCHEMA, testRows);

describe('ONNX export', () => {
  const algorithms: Algorithm[] = ['linear', 'gbdt', 'forest', 'tree'];
  const tasks: Task[] = ['regression', 'binary', 'multiclass'];
  for (const algorithm of algorithms) {
    for (const task of tasks) {
      it(`${algorithm} ${task}: onnxruntime predicts what the native predictor predicts`, async () => {
        const doc = train(algorithm, task, trainTable);
        const native = new NativePredictor(doc).predict(testTable);
        const onnx = await runOnnx(exportOnnx(doc), testTable);
        expectSamePredictions(native, onnx, doc.signature.classes?.length ?? 0);
      });
    }
  }

  it('covers missing values and unseen categories in the rows it compares', () => {
    expect(testRows.some((r) => r.amount === null)).toBe(true);
    expect(testRows.some((r) => r.color === null)).toBe(true);
    expect(testRows.some((r) => r.color === 'purple')).toBe(true);
    expect(testRows.some((r) => r.city === 'Berlin')).toBe(true);
    // The tree-mode colour encoding has a rare-category code that unseen colours take.
    const doc = train('gbdt', 'binary', trainTable);
    const color = doc.preprocess.transforms[2];
    expect(color?.kind === 'ordinal' && color.otherCode !== null).toBe(true);
  });

  it('gives one-row predictions of a single odd row exactly like the native predictor', async () => {
    const doc = train('gbdt', 'multiclass', trainTable);
    const odd = tableFromRows(SCHEMA, [
      { amount: Number.NaN, age: null, color: 'purple', city: null, target: null },
    ]);
    const native = new NativePredictor(doc).predict(odd);
    expectSamePredictions(native, await runOnnx(exportOnnx(doc), odd), 3);
  });

  it('records the signature in the metadata and declares the OIP output names', () => {
    const doc = train('linear', 'binary', trainTable);
    const model = decodeOnnx(exportOnnx(doc));
    expect(JSON.parse(metadataOf(model, SIGNATURE_METADATA) ?? 'null')).toEqual(doc.signature);
    expect(model.graph?.input?.map((i) => i.name)).toEqual(INPUTS.map((i) => i.name));
    expect(model.graph?.output?.map((o) => o.name)).toEqual([PREDICT_OUTPUT, PROBA_OUTPUT]);
  });

  it('refuses a model with an embedded recipe, naming its steps', () => {
    const doc = train('linear', 'regression', trainTable);
    const fitted: FittedRecipe = {
      format: FITTED_RECIPE_FORMAT,
      recipe: 'payments',
      source: { name: 'payments', type: 'csv', schema: SCHEMA },
      fittedOn: 'all',
      fitRows: 600,
      steps: [{ step: 'drop', columns: ['target'] }],
      schema: INPUTS,
      createdAt: '2024-07-01T00:00:00.000Z',
    };
    const withRecipe: NativeModelDocument = {
      ...doc,
      recipe: { fitted, sha256: recipeSha256(fitted), features: INPUTS },
    };
    expect(() => exportOnnx(withRecipe)).toThrow(
      expect.objectContaining({
        code: 'FERRY_EXPORT_UNSUPPORTED',
        message: expect.stringMatching(/recipe 'payments' \(request-time steps: drop\)/),
      }),
    );
  });
});
