import { describe, expect, it } from 'vitest';
import type { ModelSignature } from '../core/model.js';
import { takeRows, type Table } from '../core/table.js';
import {
  evaluateCandidate,
  fitDocument,
  fitFoldBag,
  meanCurveStop,
  type Problem,
  type SelectionData,
} from './evaluate.js';
import {
  decodeNativeModel,
  encodeNativeModel,
  NativePredictor,
  type NativeModelDocument,
} from './native-model.js';
import { createRng } from './random.js';
import type { Params } from './candidates.js';
import { holdoutSplit, kFolds } from './split.js';

/**
 * n rows of two numbers (one with missing values) and a category whose effect is strong, so that
 * a fold's category order and the shared one matter; `score` drives the target.
 */
function rows(n: number, seed: number): { table: Table; score: Float64Array } {
  const rand = createRng(seed);
  const a: (number | null)[] = [];
  const b: number[] = [];
  const city: (string | null)[] = [];
  const score = new Float64Array(n);
  const effect: Record<string, number> = { Paris: 1.2, Lyon: -0.8, Nice: 0.3, Lille: -0.2 };
  for (let i = 0; i < n; i++) {
    const x = rand() * 4 - 2;
    const z = rand() * 2 - 1;
    const c =
      rand() < 0.05 ? null : (['Paris', 'Lyon', 'Nice', 'Lille'][Math.floor(rand() * 4)] as string);
    a.push(rand() < 0.1 ? null : x);
    b.push(z);
    city.push(c);
    score[i] = Math.sin(2 * x) + z * z + (c === null ? 0 : (effect[c] as number)) + (rand() - 0.5);
  }
  const table: Table = {
    rowCount: n,
    columns: [
      { name: 'a', type: 'float', values: a },
      { name: 'b', type: 'float', values: b },
      { name: 'city', type: 'string', values: city },
    ],
  };
  return { table, score };
}

function selection(table: Table, problem: Problem, signature: ModelSignature): SelectionData {
  const labels = problem.task === 'classification' ? Int32Array.from(problem.y) : null;
  const folds = kFolds(table.rowCount, labels, problem.nClasses, 5, 3);
  return { table, signature, problem, folds, seed: 3 };
}

const INPUTS = [
  { name: 'a', type: 'float' },
  { name: 'b', type: 'float' },
  { name: 'city', type: 'string' },
] as const;
const PARAMS = {
  learning_rate: 0.1,
  max_leaves: 15,
  max_depth: 4,
  min_child_weight: 1,
  lambda: 1,
  subsample: 0.8,
  colsample_bytree: 1,
};

describe('fold bagging', () => {
  it('predicts the mean of its fold models, as one native boosted model (regression)', () => {
    const { table, score } = rows(400, 1);
    const signature: ModelSignature = { task: 'regression', target: 'y', inputs: [...INPUTS] };
    const problem: Problem = { task: 'regression', objective: 'regression', nClasses: 0, y: score };
    const bag = fitFoldBag(selection(table, problem, signature), 'gbdt', PARAMS);
    expect(bag.members).toHaveLength(5);
    // Each member early-stops on its own fold: the round counts are theirs, not one shared count.
    expect(new Set(bag.rounds).size).toBeGreaterThan(1);
    const doc = decodeNativeModel(encodeNativeModel(bag.doc));
    expect(doc.model.kind).toBe('gbdt');
    const { table: fresh } = rows(300, 2);
    const bagged = new NativePredictor(doc).predict(fresh).predict as number[];
    const members = bag.members.map(
      (m) => new NativePredictor(m).predict(fresh).predict as number[],
    );
    let maxDiff = 0;
    let spread = 0;
    bagged.forEach((v, i) => {
      const mean = members.reduce((s, p) => s + (p[i] as number), 0) / members.length;
      maxDiff = Math.max(maxDiff, Math.abs(v - mean));
      spread = Math.max(spread, Math.abs((members[0]?.[i] as number) - mean));
    });
    expect(maxDiff).toBeLessThan(1e-9);
    expect(spread).toBeGreaterThan(0.05);
  });

  it('averages softmax scores of its fold models (multiclass): log-probability ratios are the mean', () => {
    const { table, score } = rows(450, 4);
    const y = Float64Array.from(score, (s) => (s < 0.2 ? 0 : s < 1.2 ? 1 : 2));
    const signature: ModelSignature = {
      task: 'classification',
      target: 'y',
      inputs: [...INPUTS],
      classes: ['low', 'mid', 'high'],
    };
    const problem: Problem = { task: 'classification', objective: 'multiclass', nClasses: 3, y };
    const bag = fitFoldBag(selection(table, problem, signature), 'gbdt', PARAMS);
    const { table: fresh } = rows(200, 5);
    const proba = new NativePredictor(decodeNativeModel(encodeNativeModel(bag.doc))).predict(fresh)
      .proba as Float64Array;
    const members = bag.members.map(
      (m) => new NativePredictor(m).predict(fresh).proba as Float64Array,
    );
    // Softmax of the mean scores: log(p_c / p_0) is the mean of the members' log(p_c / p_0).
    let maxDiff = 0;
    for (let i = 0; i < fresh.rowCount; i++) {
      for (let c = 1; c < 3; c++) {
        const ratio = (p: Float64Array): number =>
          Math.log((p[i * 3 + c] as number) / (p[i * 3] as number));
        const mean = members.reduce((s, p) => s + ratio(p), 0) / members.length;
        maxDiff = Math.max(maxDiff, Math.abs(ratio(proba) - mean));
      }
    }
    expect(maxDiff).toBeLessThan(1e-9);
  });
});

describe('boosting rounds chosen on the mean validation curve', () => {
  it('stops on the mean curve: patience rounds without a better weighted mean', () => {
    // Weighted means: 0.55, 0.45, 0.5, 0.4825, 0.4225 (the best, but after a patience of 2 ran out).
    const curves = [
      [0.5, 0.4, 0.45, 0.42, 0.35],
      [0.7, 0.6, 0.65, 0.67, 0.64],
    ];
    expect(meanCurveStop(curves, [3, 1], 2)).toEqual({ rounds: 2, stopped: true });
    expect(meanCurveStop(curves, [3, 1], 3)).toEqual({ rounds: 5, stopped: false });
    // Only as far as the shortest curve: the choice is open, not stopped.
    expect(
      meanCurveStop(
        [
          [0.5, 0.4],
          [0.7, 0.6, 0.5],
        ],
        [1, 1],
        1,
      ),
    ).toEqual({
      rounds: 2,
      stopped: false,
    });
  });

  it('is not capped by the fold that stops first: the folds boost as far as the mean curve needs', () => {
    // 800 clean rows and 60 rows whose target is noise. Fold 0 validates on the noise rows, so
    // its own early stopping ends within a few rounds of the start; folds 1-4 validate on clean
    // rows and improve for far longer, and they outweigh fold 0 in the mean.
    const { table, score } = rows(860, 6);
    const rand = createRng(60);
    for (let i = 800; i < 860; i++) score[i] = rand() * 6 - 3;
    const range = (from: number, to: number): number[] =>
      Array.from({ length: to - from }, (_, i) => from + i);
    const folds = [
      { train: Uint32Array.from(range(200, 800)), valid: Uint32Array.from(range(800, 860)) },
      ...[0, 1, 2, 3].map((b) => ({
        train: Uint32Array.from(range(0, 800).filter((i) => Math.floor(i / 200) !== b)),
        valid: Uint32Array.from(range(200 * b, 200 * b + 200)),
      })),
    ];
    const signature: ModelSignature = { task: 'regression', target: 'y', inputs: [...INPUTS] };
    const problem: Problem = { task: 'regression', objective: 'regression', nClasses: 0, y: score };
    const data: SelectionData = { table, signature, problem, folds, seed: 5 };
    const params = { ...PARAMS, learning_rate: 0.05 };
    // Each fold on its own (its own early stopping, patience 20), and run to the round cap.
    const sub = (r: Uint32Array): { table: Table; problem: Problem } => ({
      table: takeRows(table, r),
      problem: { ...problem, y: Float64Array.from(r, (i) => score[i] as number) },
    });
    const curve = (f: number, p: Params): readonly number[] => {
      const fold = folds[f] as (typeof folds)[number];
      const train = sub(fold.train);
      const valid = sub(fold.valid);
      return fitDocument(
        train.table,
        signature,
        train.problem,
        5,
        'gbdt',
        p,
        { table: valid.table, y: valid.problem.y },
        null,
      ).validationLoss;
    };
    const own = folds.map((_, f) => curve(f, params).length);
    const full = folds.map((_, f) => curve(f, { ...params, early_stopping_rounds: 100000 }));
    const weights = folds.map((f) => f.valid.length);
    const lockstep = meanCurveStop(full, weights, 20);
    expect(lockstep.stopped).toBe(true);
    // The shortest fold stops far below the rounds the mean curve asks for.
    expect(Math.min(...own)).toBeLessThan(lockstep.rounds - 20);
    const evaluation = evaluateCandidate(data, { algorithm: 'gbdt', params, rowFraction: 1 });
    // Capped by the shortest fold, the count could not exceed min(own); lockstep boosting of all
    // folds with early stopping on their mean gives this count.
    expect(evaluation.rounds).toBe(lockstep.rounds);
    expect(evaluation.params.rounds).toBe(lockstep.rounds);
    expect(evaluation.params.early_stopping_rounds).toBeUndefined();
    // With a round cap the mean curve does not stop before, the choice is the best within it.
    const capped = { ...params, max_rounds: 40 };
    const toCap = folds.map((_, f) => curve(f, { ...capped, early_stopping_rounds: 100000 }));
    expect(Math.max(...toCap.map((c) => c.length))).toBe(40);
    const atCap = meanCurveStop(toCap, weights, 20);
    expect(atCap.stopped).toBe(false);
    const short = evaluateCandidate(data, { algorithm: 'gbdt', params: capped, rowFraction: 1 });
    expect(short.rounds).toBe(atCap.rounds);
  });
});

describe('the hold-out model', () => {
  it('hands back the model it validated, the same as fitting the winner again', () => {
    const { table, score } = rows(600, 6);
    const signature: ModelSignature = { task: 'regression', target: 'y', inputs: [...INPUTS] };
    const problem: Problem = { task: 'regression', objective: 'regression', nClasses: 0, y: score };
    const fold = holdoutSplit(table.rowCount, null, 0, 0.2, 3);
    const data: SelectionData = { table, signature, problem, folds: [fold], seed: 3 };
    for (const [algorithm, params] of [
      ['gbdt', PARAMS],
      ['linear', { alpha: 1 }],
    ] as const) {
      const evaluation = evaluateCandidate(data, { algorithm, params, rowFraction: 1 });
      const again = fitDocument(
        takeRows(table, fold.train),
        signature,
        { ...problem, y: Float64Array.from(fold.train, (i) => score[i] as number) },
        3,
        algorithm,
        params,
        null,
        evaluation.rounds,
      ).doc;
      expect(evaluation.model).toBeDefined();
      expect(encodeNativeModel(evaluation.model as NativeModelDocument)).toEqual(
        encodeNativeModel(again),
      );
    }
    // Boosting stopped early: the model kept only the rounds validation chose.
    const boosted = evaluateCandidate(data, { algorithm: 'gbdt', params: PARAMS, rowFraction: 1 });
    expect((boosted.model?.model as { rounds: number }).rounds).toBe(boosted.rounds);
    // Under cross-validation there is no one validated model to hand back.
    const folds = selection(table, problem, signature);
    expect(
      evaluateCandidate(folds, { algorithm: 'linear', params: { alpha: 1 }, rowFraction: 1 }).model,
    ).toBeUndefined();
  });
});
