/**
 * Evaluation metrics for model selection and monitoring. Classification metrics take class
 * indices (0..K-1) and row-major N x K probabilities; regression metrics take values.
 * A single metric that is undefined for the data (AUC with one class present) is NaN, never a
 * guess; the bundles Ferry records (`classificationMetrics`, `regressionMetrics`) omit such a
 * metric, so every recorded number is finite (the metadata store accepts nothing else).
 */

import { FerryError } from '../errors/index.js';

/** How per-class scores become one number: `macro` is the plain mean over classes, `weighted`
 * weights each class by its support (its number of rows in the labels). */
export type Averaging = 'macro' | 'weighted';

/**
 * Share of rows whose most probable class is the true one.
 * @example accuracy(Int32Array.of(0, 1), Float64Array.of(0.9, 0.1, 0.2, 0.8), 2) // 1
 */
export function accuracy(labels: ArrayLike<number>, proba: Float64Array, k: number): number {
  const n = labels.length;
  if (n === 0) return NaN;
  let correct = 0;
  for (let i = 0; i < n; i++) if (argmaxRow(proba, i, k) === labels[i]) correct++;
  return correct / n;
}

/** Index of the largest of `proba[i*k .. i*k+k)`; the first on ties. */
export function argmaxRow(proba: Float64Array, i: number, k: number): number {
  let best = 0;
  let max = -Infinity;
  for (let c = 0; c < k; c++) {
    const p = proba[i * k + c] as number;
    if (p > max) {
      max = p;
      best = c;
    }
  }
  return best;
}

/**
 * Mean negative log-likelihood of the true class, probabilities clipped to [1e-15, 1].
 * @example logLoss(Int32Array.of(1), Float64Array.of(0.5, 0.5), 2) // ln 2
 */
export function logLoss(labels: ArrayLike<number>, proba: Float64Array, k: number): number {
  const n = labels.length;
  if (n === 0) return NaN;
  let loss = 0;
  for (let i = 0; i < n; i++) {
    const p = proba[i * k + (labels[i] as number)] as number;
    loss -= Math.log(Math.min(1, Math.max(1e-15, p)));
  }
  return loss / n;
}

/** ROC AUC and average precision of one binary ranking, from a single sort of the scores. */
interface Ranking {
  readonly rocAuc: number;
  readonly averagePrecision: number;
}

function rank(binaryLabels: ArrayLike<number>, scores: ArrayLike<number>): Ranking {
  const n = binaryLabels.length;
  const order = Array.from({ length: n }, (_, i) => i).sort(
    (a, b) => (scores[a] as number) - (scores[b] as number),
  );
  // Groups of tied scores, ascending: average ranks for the Mann-Whitney U of ROC AUC, and
  // positives per group for the precision-recall steps, walked from the top down below.
  const groupEnd: number[] = [];
  const groupPositives: number[] = [];
  let positives = 0;
  let rankSum = 0;
  for (let i = 0; i < n;) {
    let j = i;
    const s = scores[order[i] as number] as number;
    while (j < n && (scores[order[j] as number] as number) === s) j++;
    const avgRank = (i + 1 + j) / 2;
    let inGroup = 0;
    for (let t = i; t < j; t++) if (binaryLabels[order[t] as number] === 1) inGroup++;
    positives += inGroup;
    rankSum += inGroup * avgRank;
    groupEnd.push(j);
    groupPositives.push(inGroup);
    i = j;
  }
  const negatives = n - positives;
  const rocAuc =
    positives === 0 || negatives === 0
      ? NaN
      : (rankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
  let averagePrecision = NaN;
  if (positives > 0) {
    // Threshold at each distinct score, highest first: rows at or above it are predicted
    // positive; precision there weights the recall that group adds.
    let tp = 0;
    averagePrecision = 0;
    for (let g = groupEnd.length - 1; g >= 0; g--) {
      const gained = groupPositives[g] as number;
      const start = g === 0 ? 0 : (groupEnd[g - 1] as number);
      tp += gained;
      averagePrecision += (gained / positives) * (tp / (n - start));
    }
  }
  return { rocAuc, averagePrecision };
}

/** One-vs-rest rankings of class-index labels: the positive class alone for K = 2. */
function classRankings(labels: ArrayLike<number>, proba: Float64Array, k: number): Ranking[] {
  const n = labels.length;
  const scores = new Float64Array(n);
  const binary = new Int32Array(n);
  const classes = k === 2 ? [1] : Array.from({ length: k }, (_, c) => c);
  return classes.map((c) => {
    for (let i = 0; i < n; i++) {
      scores[i] = proba[i * k + c] as number;
      binary[i] = labels[i] === c ? 1 : 0;
    }
    return rank(binary, scores);
  });
}

/** Mean of the defined (non-NaN) values; NaN when none is. */
function meanDefined(values: readonly number[]): number {
  const defined = values.filter((v) => !Number.isNaN(v));
  return defined.length === 0 ? NaN : defined.reduce((s, v) => s + v, 0) / defined.length;
}

/**
 * Area under the ROC curve of scores against 0/1 labels; tied scores count one half
 * (Mann-Whitney U with average ranks). NaN when only one class is present.
 * @example rocAuc(Int32Array.of(0, 0, 1, 1), Float64Array.of(0.1, 0.4, 0.35, 0.8)) // 0.75
 */
export function rocAuc(binaryLabels: ArrayLike<number>, scores: ArrayLike<number>): number {
  return rank(binaryLabels, scores).rocAuc;
}

/**
 * ROC AUC of class-index labels: the positive class's AUC for K = 2, else the unweighted mean of
 * one-vs-rest AUCs over the classes present with both outcomes.
 * @example rocAucMulti(Int32Array.of(0, 1), Float64Array.of(0.7, 0.3, 0.2, 0.8), 2) // 1
 */
export function rocAucMulti(labels: ArrayLike<number>, proba: Float64Array, k: number): number {
  return meanDefined(classRankings(labels, proba, k).map((r) => r.rocAuc));
}

/**
 * Area under the precision-recall curve as average precision: the sum over score thresholds,
 * highest first, of the recall gained at the threshold times the precision there (no
 * interpolation, as scikit-learn's `average_precision_score`). Tied scores form one threshold,
 * so their order among themselves does not matter. NaN when no label is positive.
 * @example averagePrecision(Int32Array.of(1, 0, 1), Float64Array.of(0.9, 0.8, 0.7)) // (1 + 2/3) / 2
 */
export function averagePrecision(
  binaryLabels: ArrayLike<number>,
  scores: ArrayLike<number>,
): number {
  return rank(binaryLabels, scores).averagePrecision;
}

/**
 * PR AUC of class-index labels: the positive class's average precision for K = 2, else the
 * unweighted mean of one-vs-rest average precisions over the classes present in the labels.
 * @example prAucMulti(Int32Array.of(0, 1), Float64Array.of(0.7, 0.3, 0.2, 0.8), 2) // 1
 */
export function prAucMulti(labels: ArrayLike<number>, proba: Float64Array, k: number): number {
  return meanDefined(classRankings(labels, proba, k).map((r) => r.averagePrecision));
}

/**
 * The most probable class of each row of row-major N x K probabilities (the first on ties).
 * @example predictedClasses(Float64Array.of(0.9, 0.1, 0.2, 0.8), 2) // Int32Array [0, 1]
 */
export function predictedClasses(proba: Float64Array, k: number): Int32Array {
  const n = Math.floor(proba.length / k);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = argmaxRow(proba, i, k);
  return out;
}

/**
 * K x K counts of rows: `counts[actual][predicted]`, classes in index order. Throws
 * FERRY_ARGUMENT_INVALID for a class index outside 0..K-1 or arrays of different lengths.
 * @example confusionMatrix(Int32Array.of(0, 1, 1), Int32Array.of(0, 0, 1), 2) // [[1, 0], [1, 1]]
 */
export function confusionMatrix(
  labels: ArrayLike<number>,
  predicted: ArrayLike<number>,
  k: number,
): number[][] {
  if (labels.length !== predicted.length) {
    throw new FerryError(
      'FERRY_ARGUMENT_INVALID',
      `confusion matrix needs one prediction per label; got ${labels.length} labels and ${predicted.length} predictions`,
    );
  }
  const counts = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i] as number;
    const p = predicted[i] as number;
    const row = counts[y];
    if (row === undefined || !Number.isInteger(p) || p < 0 || p >= k) {
      throw new FerryError(
        'FERRY_ARGUMENT_INVALID',
        `row ${i} has class index ${row === undefined ? y : p} outside 0..${k - 1}; pass class indices, not labels`,
      );
    }
    row[p] = (row[p] as number) + 1;
  }
  return counts;
}

/** Per-class precision, recall and F1 from a confusion matrix, with each class's support. */
interface ClassScores {
  readonly precision: Float64Array;
  readonly recall: Float64Array;
  readonly f1: Float64Array;
  readonly support: Float64Array;
  /** Whether the class occurs in the labels or the predictions; only those enter a macro mean. */
  readonly present: Uint8Array;
}

// A ratio with a zero denominator (precision of a class never predicted, recall of a class that
// never occurs) scores 0, as scikit-learn's default `zero_division` does.
function classScores(counts: readonly (readonly number[])[]): ClassScores {
  const k = counts.length;
  const scores: ClassScores = {
    precision: new Float64Array(k),
    recall: new Float64Array(k),
    f1: new Float64Array(k),
    support: new Float64Array(k),
    present: new Uint8Array(k),
  };
  for (let c = 0; c < k; c++) {
    const row = counts[c] as readonly number[];
    let support = 0;
    let predicted = 0;
    for (let j = 0; j < k; j++) {
      support += row[j] as number;
      predicted += (counts[j] as readonly number[])[c] as number;
    }
    const tp = row[c] as number;
    scores.support[c] = support;
    scores.present[c] = support + predicted > 0 ? 1 : 0;
    scores.precision[c] = predicted > 0 ? tp / predicted : 0;
    scores.recall[c] = support > 0 ? tp / support : 0;
    scores.f1[c] = support + predicted > 0 ? (2 * tp) / (support + predicted) : 0;
  }
  return scores;
}

function averageScores(scores: ClassScores, perClass: Float64Array, average: Averaging): number {
  let sum = 0;
  let weight = 0;
  for (let c = 0; c < perClass.length; c++) {
    const w =
      average === 'weighted' ? (scores.support[c] as number) : (scores.present[c] as number);
    sum += w * (perClass[c] as number);
    weight += w;
  }
  return weight === 0 ? NaN : sum / weight;
}

/**
 * Precision averaged over classes: `macro` over the classes that occur in the labels or the
 * predictions, `weighted` by support. A class never predicted has precision 0. NaN with no rows.
 * @example precision(Int32Array.of(0, 0, 1), Int32Array.of(0, 1, 1), 2, 'macro') // (1 + 0.5) / 2
 */
export function precision(
  labels: ArrayLike<number>,
  predicted: ArrayLike<number>,
  k: number,
  average: Averaging,
): number {
  const scores = classScores(confusionMatrix(labels, predicted, k));
  return averageScores(scores, scores.precision, average);
}

/**
 * Recall averaged over classes, as `precision` averages (weighted recall equals accuracy). A
 * class predicted but absent from the labels has recall 0.
 * @example recall(Int32Array.of(0, 0, 1), Int32Array.of(0, 1, 1), 2, 'macro') // (0.5 + 1) / 2
 */
export function recall(
  labels: ArrayLike<number>,
  predicted: ArrayLike<number>,
  k: number,
  average: Averaging,
): number {
  const scores = classScores(confusionMatrix(labels, predicted, k));
  return averageScores(scores, scores.recall, average);
}

/**
 * F1 (2·TP / (2·TP + FP + FN) per class) averaged over classes, as `precision` averages.
 * @example f1(Int32Array.of(0, 1, 1), Int32Array.of(0, 1, 0), 2, 'weighted') // (2/3 + 2 * 2/3) / 3
 */
export function f1(
  labels: ArrayLike<number>,
  predicted: ArrayLike<number>,
  k: number,
  average: Averaging,
): number {
  const scores = classScores(confusionMatrix(labels, predicted, k));
  return averageScores(scores, scores.f1, average);
}

/**
 * Unweighted mean of per-class F1 over the classes that occur in the labels or the predictions.
 * @example f1Macro(Int32Array.of(0, 1, 1), Int32Array.of(0, 1, 0), 2) // (2/3 + 2/3) / 2
 */
export function f1Macro(
  labels: ArrayLike<number>,
  predicted: ArrayLike<number>,
  k: number,
): number {
  return f1(labels, predicted, k, 'macro');
}

/**
 * 1, or for values beyond 1e150 or all below 1e-150 (whose squares would overflow to Infinity or
 * underflow to 0) their largest magnitude: squared errors are then summed in that unit, so a
 * target of 1e300s or 1e-300s still gets an RMSE and an R² to select on.
 */
function squareUnit(actual: ArrayLike<number>, predicted: ArrayLike<number>): number {
  let largest = 0;
  for (let i = 0; i < actual.length; i++) {
    largest = Math.max(largest, Math.abs(actual[i] as number), Math.abs(predicted[i] as number));
  }
  const extreme = largest > 1e150 || (largest > 0 && largest < 1e-150);
  return extreme && Number.isFinite(largest) ? largest : 1;
}

/** @example rmse(Float64Array.of(1, 2), Float64Array.of(1, 4)) // Math.sqrt(2) */
export function rmse(actual: ArrayLike<number>, predicted: ArrayLike<number>): number {
  const n = actual.length;
  if (n === 0) return NaN;
  const unit = squareUnit(actual, predicted);
  let s = 0;
  for (let i = 0; i < n; i++) {
    s += (((actual[i] as number) - (predicted[i] as number)) / unit) ** 2;
  }
  return Math.sqrt(s / n) * unit;
}

/** @example mae(Float64Array.of(1, 2), Float64Array.of(1, 4)) // 1 */
export function mae(actual: ArrayLike<number>, predicted: ArrayLike<number>): number {
  const n = actual.length;
  if (n === 0) return NaN;
  let s = 0;
  for (let i = 0; i < n; i++) s += Math.abs((actual[i] as number) - (predicted[i] as number));
  return s / n;
}

/**
 * Coefficient of determination: 1 - SSE / SST (NaN when the actual values are constant).
 * @example r2(Float64Array.of(1, 2, 3), Float64Array.of(1, 2, 3)) // 1
 */
export function r2(actual: ArrayLike<number>, predicted: ArrayLike<number>): number {
  const n = actual.length;
  if (n === 0) return NaN;
  const unit = squareUnit(actual, predicted);
  let mean = 0;
  for (let i = 0; i < n; i++) mean += (actual[i] as number) / unit;
  mean /= n;
  let sse = 0;
  let sst = 0;
  for (let i = 0; i < n; i++) {
    const a = (actual[i] as number) / unit;
    sse += (a - (predicted[i] as number) / unit) ** 2;
    sst += (a - mean) ** 2;
  }
  return sst === 0 ? NaN : 1 - sse / sst;
}

/**
 * Mean absolute percentage error as a fraction (0.05 is 5%): the mean of |actual - predicted| /
 * |actual| over the rows whose actual value is not 0. Rows with an actual 0 are skipped, since
 * their error has no finite percentage; NaN when every actual value is 0 (or there are no rows).
 * @example mape(Float64Array.of(2, 0, 4), Float64Array.of(1, 5, 5)) // (0.5 + 0.25) / 2
 */
export function mape(actual: ArrayLike<number>, predicted: ArrayLike<number>): number {
  let s = 0;
  let rows = 0;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i] as number;
    if (a === 0) continue;
    s += Math.abs(a - (predicted[i] as number)) / Math.abs(a);
    rows++;
  }
  return rows === 0 ? NaN : s / rows;
}

/** The entries whose value is a finite number: an undefined metric is left out, not recorded. */
function finiteOnly(metrics: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(metrics).filter(([, v]) => Number.isFinite(v)));
}

/**
 * The classification metrics Ferry records: accuracy, log_loss, roc_auc, pr_auc, f1_macro,
 * f1_weighted, precision_macro, precision_weighted, recall_macro, recall_weighted. Predictions
 * are each row's most probable class. A metric undefined for the data is omitted: roc_auc and
 * pr_auc when no class has both outcomes (one class present), everything with no rows.
 * @example classificationMetrics(labels, proba, 3).log_loss
 */
export function classificationMetrics(
  labels: ArrayLike<number>,
  proba: Float64Array,
  k: number,
): Record<string, number> {
  const predicted = predictedClasses(proba, k);
  const scores = classScores(confusionMatrix(labels, predicted, k));
  const rankings = classRankings(labels, proba, k);
  const rocAuc = meanDefined(rankings.map((r) => r.rocAuc));
  return finiteOnly({
    accuracy: accuracy(labels, proba, k),
    log_loss: logLoss(labels, proba, k),
    roc_auc: rocAuc,
    // With one class present average precision is defined (1 when every row is positive) but
    // says nothing about ranking; it is left out whenever ROC AUC is.
    pr_auc: Number.isNaN(rocAuc) ? NaN : meanDefined(rankings.map((r) => r.averagePrecision)),
    f1_macro: averageScores(scores, scores.f1, 'macro'),
    f1_weighted: averageScores(scores, scores.f1, 'weighted'),
    precision_macro: averageScores(scores, scores.precision, 'macro'),
    precision_weighted: averageScores(scores, scores.precision, 'weighted'),
    recall_macro: averageScores(scores, scores.recall, 'macro'),
    recall_weighted: averageScores(scores, scores.recall, 'weighted'),
  });
}

/**
 * The regression metrics Ferry records: rmse, mae, r2, mape. A metric undefined for the data is
 * omitted: r2 when the actual values are constant, mape when every actual value is 0 (rows with
 * an actual 0 are skipped by mape), everything with no rows.
 * @example regressionMetrics(actual, predicted).rmse
 */
export function regressionMetrics(
  actual: ArrayLike<number>,
  predicted: ArrayLike<number>,
): Record<string, number> {
  return finiteOnly({
    rmse: rmse(actual, predicted),
    mae: mae(actual, predicted),
    r2: r2(actual, predicted),
    mape: mape(actual, predicted),
  });
}
