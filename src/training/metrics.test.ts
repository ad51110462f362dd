import { describe, expect, it } from 'vitest';
import { isFerryError } from '../errors/index.js';
import {
  accuracy,
  averagePrecision,
  classificationMetrics,
  confusionMatrix,
  f1,
  f1Macro,
  logLoss,
  mae,
  mape,
  prAucMulti,
  precision,
  predictedClasses,
  r2,
  recall,
  regressionMetrics,
  rmse,
  rocAuc,
  rocAucMulti,
} from './metrics.js';

/** Deterministic pseudo-random numbers in [0, 1) (mulberry32), so brute-force cases repeat. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** ROC AUC by its definition: the share of positive/negative pairs ranked right, ties half. */
function bruteRocAuc(labels: readonly number[], scores: readonly number[]): number {
  let pairs = 0;
  let right = 0;
  labels.forEach((yi, i) => {
    labels.forEach((yj, j) => {
      if (yi !== 1 || yj !== 0) return;
      pairs++;
      const si = scores[i] as number;
      const sj = scores[j] as number;
      right += si > sj ? 1 : si === sj ? 0.5 : 0;
    });
  });
  return right / pairs;
}

/** Average precision by its definition: Σ over distinct thresholds of ΔRecall × Precision. */
function bruteAveragePrecision(labels: readonly number[], scores: readonly number[]): number {
  const positives = labels.filter((y) => y === 1).length;
  const thresholds = [...new Set(scores)].sort((a, b) => b - a);
  let ap = 0;
  let previousRecall = 0;
  for (const t of thresholds) {
    const above = labels.filter((_, i) => (scores[i] as number) >= t);
    const tp = above.filter((y) => y === 1).length;
    const r = tp / positives;
    ap += (r - previousRecall) * (tp / above.length);
    previousRecall = r;
  }
  return ap;
}

/** Per-class precision, recall and F1 by their definitions (0 where a denominator is 0). */
function brutePerClass(labels: readonly number[], predicted: readonly number[], c: number) {
  const tp = labels.filter((y, i) => y === c && predicted[i] === c).length;
  const predictedC = predicted.filter((p) => p === c).length;
  const support = labels.filter((y) => y === c).length;
  const p = predictedC === 0 ? 0 : tp / predictedC;
  const r = support === 0 ? 0 : tp / support;
  return {
    p,
    r,
    f: p + r === 0 ? 0 : (2 * p * r) / (p + r),
    support,
    seen: support + predictedC > 0,
  };
}

describe('classification metrics', () => {
  it('counts tied scores as half a correctly ordered pair in ROC AUC', () => {
    // 9 positive/negative pairs: 2.5 + 1.5 + 1 correctly ordered (ties count one half).
    const labels = Int32Array.of(1, 0, 1, 0, 1, 0);
    const scores = Float64Array.of(0.9, 0.9, 0.5, 0.5, 0.2, 0.1);
    expect(rocAuc(labels, scores)).toBeCloseTo(5 / 9, 12);
  });

  it('gives AUC 1 for a perfect ranking, 0 for a reversed one, NaN with a single class', () => {
    expect(rocAuc(Int32Array.of(0, 0, 1, 1), Float64Array.of(0.1, 0.2, 0.3, 0.4))).toBe(1);
    expect(rocAuc(Int32Array.of(1, 1, 0, 0), Float64Array.of(0.1, 0.2, 0.3, 0.4))).toBe(0);
    expect(rocAuc(Int32Array.of(1, 1), Float64Array.of(0.1, 0.2))).toBeNaN();
  });

  it('averages one-vs-rest AUC over classes for multiclass, and uses the positive class for two', () => {
    const labels = Int32Array.of(0, 1, 2, 0);
    const proba = Float64Array.of(0.6, 0.3, 0.1, 0.2, 0.5, 0.3, 0.1, 0.2, 0.7, 0.3, 0.6, 0.1);
    // Class 0: 1, class 1: 2/3 (row 3 outranks the true row 1), class 2: 1.
    expect(rocAucMulti(labels, proba, 3)).toBeCloseTo(8 / 9, 12);
    const binary = Float64Array.of(0.7, 0.3, 0.4, 0.6, 0.2, 0.8);
    expect(rocAucMulti(Int32Array.of(0, 1, 0), binary, 2)).toBe(0.5);
  });

  it('computes accuracy and log loss from probabilities', () => {
    const labels = Int32Array.of(0, 1);
    const proba = Float64Array.of(0.8, 0.2, 0.4, 0.6);
    expect(accuracy(labels, proba, 2)).toBe(1);
    expect(logLoss(labels, proba, 2)).toBeCloseTo(-(Math.log(0.8) + Math.log(0.6)) / 2, 12);
    // A zero probability on the true class is clipped, not infinite.
    expect(logLoss(Int32Array.of(1), Float64Array.of(1, 0), 2)).toBeCloseTo(-Math.log(1e-15), 6);
  });

  it('averages per-class F1 without weighting by class size', () => {
    // Class 0: 2*1/(2+1+1) = 0.5; class 1: 4/5; class 2: never predicted right = 0.
    const f1 = f1Macro(Int32Array.of(0, 0, 1, 1, 2), Int32Array.of(0, 1, 1, 1, 0), 3);
    expect(f1).toBeCloseTo((0.5 + 0.8 + 0) / 3, 12);
  });

  it('bundles the recorded metrics under their snake_case names', () => {
    const m = classificationMetrics(Int32Array.of(0, 1), Float64Array.of(0.8, 0.2, 0.4, 0.6), 2);
    expect(Object.keys(m).sort()).toEqual([
      'accuracy',
      'f1_macro',
      'f1_weighted',
      'log_loss',
      'pr_auc',
      'precision_macro',
      'precision_weighted',
      'recall_macro',
      'recall_weighted',
      'roc_auc',
    ]);
    expect(m.roc_auc).toBe(1);
    expect(m.pr_auc).toBe(1);
  });

  it('omits roc_auc and pr_auc when one class is present, and records only finite numbers', () => {
    const labels = Int32Array.of(1, 1, 1);
    const proba = Float64Array.of(0.3, 0.7, 0.6, 0.4, 0.5, 0.5);
    const m = classificationMetrics(labels, proba, 2);
    expect(m).not.toHaveProperty('roc_auc');
    expect(m).not.toHaveProperty('pr_auc');
    expect(m.accuracy).toBeCloseTo(1 / 3, 12);
    // Three classes, only class 2 present: no one-vs-rest ranking has both outcomes.
    const three = classificationMetrics(
      Int32Array.of(2, 2),
      Float64Array.of(0.2, 0.3, 0.5, 1, 0, 0),
      3,
    );
    expect(three).not.toHaveProperty('roc_auc');
    expect(three).not.toHaveProperty('pr_auc');
    expect(three.recall_weighted).toBe(0.5);
    for (const value of [...Object.values(m), ...Object.values(three)]) {
      expect(Number.isFinite(value)).toBe(true);
    }
    // No rows: nothing is defined, so nothing is recorded.
    expect(classificationMetrics(new Int32Array(0), new Float64Array(0), 2)).toEqual({});
  });

  it('bundles the same precision, recall and F1 as the single functions, from the argmax', () => {
    const labels = Int32Array.of(0, 0, 0, 0, 1, 1, 2);
    const proba = Float64Array.of(
      ...[0.6, 0.3, 0.1],
      ...[0.5, 0.4, 0.1],
      ...[0.7, 0.2, 0.1],
      ...[0.2, 0.5, 0.3],
      ...[0.1, 0.8, 0.1],
      ...[0.3, 0.4, 0.3],
      ...[0.5, 0.1, 0.4],
    );
    const predicted = predictedClasses(proba, 3);
    expect([...predicted]).toEqual([0, 0, 0, 1, 1, 1, 0]);
    const m = classificationMetrics(labels, proba, 3);
    for (const average of ['macro', 'weighted'] as const) {
      expect(m[`precision_${average}`]).toBe(precision(labels, predicted, 3, average));
      expect(m[`recall_${average}`]).toBe(recall(labels, predicted, 3, average));
      expect(m[`f1_${average}`]).toBe(f1(labels, predicted, 3, average));
    }
    expect(m.roc_auc).toBe(rocAucMulti(labels, proba, 3));
    expect(m.pr_auc).toBe(prAucMulti(labels, proba, 3));
  });
});

describe('confusion matrix', () => {
  it('counts rows by actual class and columns by predicted class, in class index order', () => {
    // Class 2 is never predicted: its column is all zeros, its row holds the misses.
    const counts = confusionMatrix(
      Int32Array.of(0, 0, 0, 0, 1, 1, 2),
      Int32Array.of(0, 0, 0, 1, 1, 1, 0),
      3,
    );
    expect(counts).toEqual([
      [3, 1, 0],
      [0, 2, 0],
      [1, 0, 0],
    ]);
  });

  it('rejects a class index outside 0..K-1 and arrays of different lengths', () => {
    const code = (fn: () => unknown): string | undefined => {
      try {
        fn();
      } catch (error) {
        return isFerryError(error) ? error.code : 'not a FerryError';
      }
      return undefined;
    };
    expect(code(() => confusionMatrix(Int32Array.of(0, 3), Int32Array.of(0, 1), 3))).toBe(
      'FERRY_ARGUMENT_INVALID',
    );
    expect(code(() => confusionMatrix(Int32Array.of(0, 1), Int32Array.of(0, -1), 3))).toBe(
      'FERRY_ARGUMENT_INVALID',
    );
    expect(code(() => confusionMatrix(Int32Array.of(0, 1), Int32Array.of(0), 3))).toBe(
      'FERRY_ARGUMENT_INVALID',
    );
  });
});

describe('precision, recall and F1', () => {
  // Confusion [[3,1,0],[0,2,0],[1,0,0]]: class 0 P 3/4 R 3/4 F1 3/4 (support 4); class 1 P 2/3
  // R 1 F1 4/5 (support 2); class 2, never predicted, P 0 R 0 F1 0 (support 1).
  const labels = Int32Array.of(0, 0, 0, 0, 1, 1, 2);
  const predicted = Int32Array.of(0, 0, 0, 1, 1, 1, 0);

  it('averages per class without weights for macro', () => {
    expect(precision(labels, predicted, 3, 'macro')).toBeCloseTo((3 / 4 + 2 / 3 + 0) / 3, 12);
    expect(recall(labels, predicted, 3, 'macro')).toBeCloseTo((3 / 4 + 1 + 0) / 3, 12);
    expect(f1(labels, predicted, 3, 'macro')).toBeCloseTo((3 / 4 + 4 / 5 + 0) / 3, 12);
    expect(f1Macro(labels, predicted, 3)).toBe(f1(labels, predicted, 3, 'macro'));
  });

  it('weights each class by its support for weighted, which differs from macro', () => {
    expect(precision(labels, predicted, 3, 'weighted')).toBeCloseTo(
      (4 * (3 / 4) + 2 * (2 / 3)) / 7,
      12,
    );
    // Weighted recall is accuracy.
    expect(recall(labels, predicted, 3, 'weighted')).toBeCloseTo(5 / 7, 12);
    expect(f1(labels, predicted, 3, 'weighted')).toBeCloseTo((4 * (3 / 4) + 2 * (4 / 5)) / 7, 12);
    expect(f1(labels, predicted, 3, 'weighted')).not.toBeCloseTo(
      f1(labels, predicted, 3, 'macro'),
      3,
    );
  });

  it('counts a class predicted but never actual in macro, and ignores a class seen nowhere', () => {
    // Class 2 is predicted once and never occurs: precision 0, recall 0, weight 0 in weighted.
    const y = Int32Array.of(0, 0, 1);
    const p = Int32Array.of(0, 2, 1);
    for (const k of [3, 4]) {
      expect(precision(y, p, k, 'macro')).toBeCloseTo(2 / 3, 12);
      expect(recall(y, p, k, 'macro')).toBeCloseTo((1 / 2 + 1 + 0) / 3, 12);
      expect(precision(y, p, k, 'weighted')).toBeCloseTo(1, 12);
      expect(recall(y, p, k, 'weighted')).toBeCloseTo(2 / 3, 12);
    }
  });

  it('matches the per-class definitions on random data with absent classes', () => {
    for (let seed = 1; seed <= 50; seed++) {
      const next = random(seed);
      const k = 2 + (seed % 4);
      const n = 1 + Math.floor(next() * 15);
      // Labels draw from fewer classes than predictions, so some classes are never actual.
      const y = Array.from({ length: n }, () => Math.floor(next() * Math.max(1, k - 1)));
      const p = Array.from({ length: n }, () => Math.floor(next() * k));
      const per = Array.from({ length: k }, (_, c) => brutePerClass(y, p, c));
      const seen = per.filter((c) => c.seen);
      const macro = (f: (c: (typeof per)[number]) => number): number =>
        seen.reduce((s, c) => s + f(c), 0) / seen.length;
      const weighted = (f: (c: (typeof per)[number]) => number): number =>
        per.reduce((s, c) => s + c.support * f(c), 0) / n;
      expect(precision(y, p, k, 'macro')).toBeCloseTo(
        macro((c) => c.p),
        12,
      );
      expect(recall(y, p, k, 'macro')).toBeCloseTo(
        macro((c) => c.r),
        12,
      );
      expect(f1(y, p, k, 'macro')).toBeCloseTo(
        macro((c) => c.f),
        12,
      );
      expect(precision(y, p, k, 'weighted')).toBeCloseTo(
        weighted((c) => c.p),
        12,
      );
      expect(recall(y, p, k, 'weighted')).toBeCloseTo(
        weighted((c) => c.r),
        12,
      );
      expect(f1(y, p, k, 'weighted')).toBeCloseTo(
        weighted((c) => c.f),
        12,
      );
    }
  });
});

describe('PR AUC (average precision)', () => {
  it('treats tied scores as one threshold, whatever their order', () => {
    // Thresholds 0.9 (P 1/2, R 1/3), 0.5 (P 2/4, R 2/3), 0.2 (P 3/5, R 1); 0.1 adds no recall.
    // Breaking the ties positive-first would give (1 + 2/3 + 3/5) / 3 instead.
    const expected = (1 / 3) * (1 / 2) + (1 / 3) * (2 / 4) + (1 / 3) * (3 / 5);
    const labels = [1, 0, 1, 0, 1, 0];
    const scores = [0.9, 0.9, 0.5, 0.5, 0.2, 0.1];
    expect(averagePrecision(labels, scores)).toBeCloseTo(expected, 12);
    const swapped = [0, 1, 0, 1, 1, 0];
    expect(averagePrecision(swapped, scores)).toBeCloseTo(expected, 12);
  });

  it('is 1 for a perfect ranking, the positive rate for constant scores, NaN without positives', () => {
    expect(averagePrecision([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4])).toBe(1);
    expect(averagePrecision([1, 0, 0, 0], [0.5, 0.5, 0.5, 0.5])).toBe(0.25);
    // Worst ranking: the positive is last, precision 1/3 when it is reached.
    expect(averagePrecision([1, 0, 0], [0.1, 0.2, 0.3])).toBeCloseTo(1 / 3, 12);
    expect(averagePrecision([0, 0], [0.1, 0.2])).toBeNaN();
  });

  it('matches the threshold definition, and ROC AUC the pair definition, on random tied scores', () => {
    for (let seed = 1; seed <= 100; seed++) {
      const next = random(seed);
      const n = 2 + Math.floor(next() * 20);
      const labels = Array.from({ length: n }, () => (next() < 0.4 ? 1 : 0));
      // Five score levels, so most cases have ties across both classes.
      const scores = Array.from({ length: n }, () => Math.floor(next() * 5) / 5);
      const positives = labels.filter((y) => y === 1).length;
      if (positives === 0) {
        expect(averagePrecision(labels, scores)).toBeNaN();
        continue;
      }
      expect(averagePrecision(labels, scores)).toBeCloseTo(
        bruteAveragePrecision(labels, scores),
        12,
      );
      if (positives < n)
        expect(rocAuc(labels, scores)).toBeCloseTo(bruteRocAuc(labels, scores), 12);
    }
  });

  it('uses the positive class for two classes and the one-vs-rest mean for more', () => {
    // Binary: class 1 scores 0.3, 0.6, 0.8 for labels 0, 1, 0 -> P 0 at 0.8, then 1/2: AP 1/2.
    const binary = Float64Array.of(0.7, 0.3, 0.4, 0.6, 0.2, 0.8);
    expect(prAucMulti(Int32Array.of(0, 1, 0), binary, 2)).toBeCloseTo(0.5, 12);
    // Three classes: class 0 scores (0.6, 0.2, 0.1, 0.3) for labels (0, 1, 2, 0): AP 1;
    // class 1 scores (0.3, 0.5, 0.2, 0.6): row 3 outranks row 1, AP 1/2; class 2: AP 1.
    const labels = Int32Array.of(0, 1, 2, 0);
    const proba = Float64Array.of(0.6, 0.3, 0.1, 0.2, 0.5, 0.3, 0.1, 0.2, 0.7, 0.3, 0.6, 0.1);
    expect(prAucMulti(labels, proba, 3)).toBeCloseTo((1 + 1 / 2 + 1) / 3, 12);
    // A class absent from the labels is left out of the mean (class 3 here).
    const four = Float64Array.of(
      ...[0.5, 0.2, 0.1, 0.2],
      ...[0.1, 0.5, 0.2, 0.2],
      ...[0.1, 0.1, 0.6, 0.2],
      ...[0.2, 0.6, 0.1, 0.1],
    );
    expect(prAucMulti(labels, four, 4)).toBeCloseTo((1 + 1 / 2 + 1) / 3, 12);
  });
});

describe('regression metrics', () => {
  it('computes RMSE, MAE and R² against hand-worked values', () => {
    const actual = Float64Array.of(1, 2, 3, 4);
    const predicted = Float64Array.of(1.5, 2, 2, 5);
    expect(rmse(actual, predicted)).toBeCloseTo(0.75, 12);
    expect(mae(actual, predicted)).toBeCloseTo(0.625, 12);
    expect(r2(actual, predicted)).toBeCloseTo(1 - 2.25 / 5, 12);
    expect(regressionMetrics(actual, predicted)).toEqual({
      rmse: rmse(actual, predicted),
      mae: mae(actual, predicted),
      r2: r2(actual, predicted),
      mape: mape(actual, predicted),
    });
  });

  it('computes MAPE as a fraction over the rows whose actual value is not 0', () => {
    // |2-1|/2 = 0.5, the row with actual 0 skipped, |4-5|/4 = 0.25, |-5+4|/5 = 0.2.
    expect(mape([2, 0, 4, -5], [1, 5, 5, -4])).toBeCloseTo((0.5 + 0.25 + 0.2) / 3, 12);
    expect(mape([3, 3], [3, 3])).toBe(0);
    expect(mape([0, 0], [1, 2])).toBeNaN();
  });

  it('omits MAPE when every actual value is 0 and R² when they are constant, never NaN', () => {
    const m = regressionMetrics([0, 0, 0], [1, -1, 0]);
    expect(Object.keys(m).sort()).toEqual(['mae', 'rmse']);
    expect(m.mae).toBeCloseTo(2 / 3, 12);
    expect(regressionMetrics([], [])).toEqual({});
  });

  it('gives R² NaN for a constant target rather than a division by zero', () => {
    expect(r2(Float64Array.of(2, 2), Float64Array.of(1, 3))).toBeNaN();
  });
});
