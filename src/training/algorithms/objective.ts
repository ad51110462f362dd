/**
 * What a model's raw outputs mean and how they become predictions: a value (regression), one
 * log-odds (binary) or one score per class (multiclass). Shared by every algorithm so that a
 * linear model and a boosted forest turn scores into probabilities the same way.
 */

export type Objective = 'regression' | 'binary' | 'multiclass';

/** Raw outputs per row: 1 for regression and binary, K for multiclass. */
export function outputsPerRow(objective: Objective, nClasses: number): number {
  return objective === 'multiclass' ? nClasses : 1;
}

export function sigmoid(z: number): number {
  return z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z));
}

/** Softmax of `scores[offset .. offset+k)` written to `out[outOffset ..)`. */
export function softmaxInto(
  scores: Float64Array,
  offset: number,
  k: number,
  out: Float64Array,
  outOffset: number,
): void {
  let max = -Infinity;
  for (let j = 0; j < k; j++) max = Math.max(max, scores[offset + j] as number);
  let sum = 0;
  for (let j = 0; j < k; j++) {
    const e = Math.exp((scores[offset + j] as number) - max);
    out[outOffset + j] = e;
    sum += e;
  }
  for (let j = 0; j < k; j++) out[outOffset + j] = (out[outOffset + j] as number) / sum;
}

/**
 * Row-major N x K class probabilities from raw scores (binary gives K = 2: [1 - p, p]).
 * @example toProbabilities('binary', Float64Array.of(0), 1, 2) // Float64Array [0.5, 0.5]
 */
export function toProbabilities(
  objective: Objective,
  raw: Float64Array,
  rows: number,
  nClasses: number,
  out: Float64Array = new Float64Array(rows * nClasses),
): Float64Array {
  if (objective === 'binary') {
    for (let i = 0; i < rows; i++) {
      const p = sigmoid(raw[i] as number);
      out[2 * i] = 1 - p;
      out[2 * i + 1] = p;
    }
  } else {
    for (let i = 0; i < rows; i++) softmaxInto(raw, i * nClasses, nClasses, out, i * nClasses);
  }
  return out;
}
