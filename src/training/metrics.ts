/**
 * Evaluation metrics for model selection and monitoring. Classification metrics take class
 * indices (0..K-1) and row-major N x K probabilities; regression metrics take values.
 * A metric that is undefined for the data (AUC with one class present) is NaN, never a guess.
 */

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

/**
 * Area under the ROC curve of scores against 0/1 labels; tied scores count one half
 * (Mann-Whitney U with average ranks). NaN when only one class is present.
 * @example rocAuc(Int32Array.of(0, 0, 1, 1), Float64Array.of(0.1, 0.4, 0.35, 0.8)) // 0.75
 */
export function rocAuc(binaryLabels: ArrayLike<number>, scores: ArrayLike<number>): number {
  const n = binaryLabels.length;
  const order = Array.from({ length: n }, (_, i) => i).sort(
    (a, b) => (scores[a] as number) - (scores[b] as number),
  );
  let positives = 0;
  let rankSum = 0;
  for (let i = 0; i < n;) {
    let j = i;
    const s = scores[order[i] as number] as number;
    while (j < n && (scores[order[j] as number] as number) === s) j++;
    const avgRank = (i + 1 + j) / 2;
    for (let t = i; t < j; t++) {
      if (binaryLabels[order[t] as number] === 1) {
        positives++;
        rankSum += avgRank;
      }
    }
    i = j;
  }
  const negatives = n - positives;
  if (positives === 0 || negatives === 0) return NaN;
  return (rankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}

/**
 * ROC AUC of class-index labels: the positive class's AUC for K = 2, else the unweighted mean of
 * one-vs-rest AUCs over the classes present with both outcomes.
 * @example rocAucMulti(Int32Array.of(0, 1), Float64Array.of(0.7, 0.3, 0.2, 0.8), 2) // 1
 */
export function rocAucMulti(labels: ArrayLike<number>, proba: Float64Array, k: number): number {
  const n = labels.length;
  const scores = new Float64Array(n);
  const binary = new Int32Array(n);
  const aucOf = (c: number): number => {
    for (let i = 0; i < n; i++) {
      scores[i] = proba[i * k + c] as number;
      binary[i] = labels[i] === c ? 1 : 0;
    }
    return rocAuc(binary, scores);
  };
  if (k === 2) return aucOf(1);
  let sum = 0;
  let count = 0;
  for (let c = 0; c < k; c++) {
    const auc = aucOf(c);
    if (!Number.isNaN(auc)) {
      sum += auc;
      count++;
    }
  }
  return count === 0 ? NaN : sum / count;
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
  const tp = new Float64Array(k);
  const fp = new Float64Array(k);
  const fn = new Float64Array(k);
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i] as number;
    const p = predicted[i] as number;
    if (y === p) tp[y] = (tp[y] as number) + 1;
    else {
      fp[p] = (fp[p] as number) + 1;
      fn[y] = (fn[y] as number) + 1;
    }
  }
  let sum = 0;
  let count = 0;
  for (let c = 0; c < k; c++) {
    const denom = 2 * (tp[c] as number) + (fp[c] as number) + (fn[c] as number);
    if (denom === 0) continue;
    sum += (2 * (tp[c] as number)) / denom;
    count++;
  }
  return count === 0 ? NaN : sum / count;
}

/** @example rmse(Float64Array.of(1, 2), Float64Array.of(1, 4)) // Math.sqrt(2) */
export function rmse(actual: ArrayLike<number>, predicted: ArrayLike<number>): number {
  const n = actual.length;
  if (n === 0) return NaN;
  let s = 0;
  for (let i = 0; i < n; i++) s += ((actual[i] as number) - (predicted[i] as number)) ** 2;
  return Math.sqrt(s / n);
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
  let mean = 0;
  for (let i = 0; i < n; i++) mean += actual[i] as number;
  mean /= n;
  let sse = 0;
  let sst = 0;
  for (let i = 0; i < n; i++) {
    sse += ((actual[i] as number) - (predicted[i] as number)) ** 2;
    sst += ((actual[i] as number) - mean) ** 2;
  }
  return sst === 0 ? NaN : 1 - sse / sst;
}

/**
 * The classification metrics Ferry records: accuracy, log_loss, roc_auc, f1_macro.
 * @example classificationMetrics(labels, proba, 3).log_loss
 */
export function classificationMetrics(
  labels: ArrayLike<number>,
  proba: Float64Array,
  k: number,
): Record<string, number> {
  const predicted = new Int32Array(labels.length);
  for (let i = 0; i < labels.length; i++) predicted[i] = argmaxRow(proba, i, k);
  return {
    accuracy: accuracy(labels, proba, k),
    log_loss: logLoss(labels, proba, k),
    roc_auc: rocAucMulti(labels, proba, k),
    f1_macro: f1Macro(labels, predicted, k),
  };
}

/**
 * The regression metrics Ferry records: rmse, mae, r2.
 * @example regressionMetrics(actual, predicted).rmse
 */
export function regressionMetrics(
  actual: ArrayLike<number>,
  predicted: ArrayLike<number>,
): Record<string, number> {
  return { rmse: rmse(actual, predicted), mae: mae(actual, predicted), r2: r2(actual, predicted) };
}
