import { describe, expect, it } from 'vitest';
import {
  accuracy,
  classificationMetrics,
  f1Macro,
  logLoss,
  mae,
  r2,
  regressionMetrics,
  rmse,
  rocAuc,
  rocAucMulti,
} from './metrics.js';

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

  it('bundles the four metrics under their recorded names', () => {
    const m = classificationMetrics(Int32Array.of(0, 1), Float64Array.of(0.8, 0.2, 0.4, 0.6), 2);
    expect(Object.keys(m).sort()).toEqual(['accuracy', 'f1_macro', 'log_loss', 'roc_auc']);
    expect(m.roc_auc).toBe(1);
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
    });
  });

  it('gives R² NaN for a constant target rather than a division by zero', () => {
    expect(r2(Float64Array.of(2, 2), Float64Array.of(1, 3))).toBeNaN();
  });
});
