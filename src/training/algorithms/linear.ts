/**
 * Linear models on a preprocessed matrix: ridge regression (closed form, Cholesky) and L2
 * logistic regression, binary or multinomial softmax (L-BFGS). Intercepts are not penalised.
 * Both are deterministic and serialise to a flat weight array.
 */
import { FerryError } from '../../errors/index.js';
import type { Matrix } from '../preprocess.js';
import { minimizeLbfgs } from './lbfgs.js';
import type { Objective } from './objective.js';

export interface LinearModel {
  readonly kind: 'linear';
  readonly objective: Objective;
  readonly nFeatures: number;
  /** 1 for regression and binary, K for multiclass. */
  readonly nOutputs: number;
  /** `nOutputs` blocks of `nFeatures` weights followed by the intercept. */
  readonly weights: readonly number[];
}

export interface RidgeOptions {
  /** Penalty on the sum of squared errors (default 1, as scikit-learn's Ridge). */
  readonly alpha?: number;
}

export interface LogisticOptions {
  /** Penalty on the mean log loss; default 1/n, the same optimum as scikit-learn's C = 1. */
  readonly l2?: number;
  readonly maxIterations?: number;
}

/** Solves A x = b for symmetric positive definite A (p x p, row-major); A is overwritten. */
function choleskySolve(a: Float64Array, b: Float64Array, p: number): Float64Array {
  for (let j = 0; j < p; j++) {
    let d = a[j * p + j] as number;
    for (let k = 0; k < j; k++) d -= (a[j * p + k] as number) ** 2;
    if (!(d > 0)) throw new Error('matrix is not positive definite');
    const ljj = Math.sqrt(d);
    a[j * p + j] = ljj;
    for (let i = j + 1; i < p; i++) {
      let s = a[i * p + j] as number;
      for (let k = 0; k < j; k++) s -= (a[i * p + k] as number) * (a[j * p + k] as number);
      a[i * p + j] = s / ljj;
    }
  }
  const x = Float64Array.from(b);
  for (let i = 0; i < p; i++) {
    let s = x[i] as number;
    for (let k = 0; k < i; k++) s -= (a[i * p + k] as number) * (x[k] as number);
    x[i] = s / (a[i * p + i] as number);
  }
  for (let i = p - 1; i >= 0; i--) {
    let s = x[i] as number;
    for (let k = i + 1; k < p; k++) s -= (a[k * p + i] as number) * (x[k] as number);
    x[i] = s / (a[i * p + i] as number);
  }
  return x;
}

/**
 * Ridge regression: minimises ||y - Xw - b||^2 + alpha ||w||^2.
 * @example const model = fitRidge({ data, rows, cols }, y, { alpha: 1 });
 */
export function fitRidge(x: Matrix, y: Float64Array, options: RidgeOptions = {}): LinearModel {
  const { data, rows: n, cols: p } = x;
  if (n === 0) throw new FerryError('FERRY_DATA_EMPTY', 'ridge regression needs at least one row');
  const alpha = options.alpha ?? 1;
  const mx = new Float64Array(p);
  let my = 0;
  for (let i = 0; i < n; i++) {
    my += y[i] as number;
    for (let j = 0; j < p; j++) mx[j] = (mx[j] as number) + (data[i * p + j] as number);
  }
  my /= n;
  for (let j = 0; j < p; j++) mx[j] = (mx[j] as number) / n;
  // Centred normal equations, so the intercept is free of the penalty.
  const a = new Float64Array(p * p);
  const b = new Float64Array(p);
  const xc = new Float64Array(p);
  for (let i = 0; i < n; i++) {
    const yc = (y[i] as number) - my;
    for (let j = 0; j < p; j++) xc[j] = (data[i * p + j] as number) - (mx[j] as number);
    for (let j = 0; j < p; j++) {
      const v = xc[j] as number;
      if (v === 0) continue;
      b[j] = (b[j] as number) + v * yc;
      const row = j * p;
      for (let k = 0; k <= j; k++) a[row + k] = (a[row + k] as number) + v * (xc[k] as number);
    }
  }
  for (let j = 0; j < p; j++) {
    for (let k = 0; k < j; k++) a[k * p + j] = a[j * p + k] as number;
    // A tiny jitter keeps alpha = 0 solvable when columns are collinear (one-hot + other).
    a[j * p + j] = (a[j * p + j] as number) + Math.max(alpha, 1e-10 * n);
  }
  const w = choleskySolve(a, b, p);
  let intercept = my;
  for (let j = 0; j < p; j++) intercept -= (w[j] as number) * (mx[j] as number);
  return {
    kind: 'linear',
    objective: 'regression',
    nFeatures: p,
    nOutputs: 1,
    weights: [...w, intercept],
  };
}

/** A matrix's rows as their non-zero entries: row i is `cols`/`vals` from `start[i]` to `start[i + 1]`. */
interface SparseRows {
  readonly start: Uint32Array;
  readonly cols: Uint32Array;
  readonly vals: Float64Array;
}

/**
 * The non-zero entries of a matrix by row, or null when more than half are non-zero. One-hot
 * columns make most entries of a linear model's matrix zero, and a zero adds nothing to a dot
 * product or a gradient: leaving them out gives bit-identical sums for a fraction of the work.
 */
function sparseRows(x: Matrix): SparseRows | null {
  const { data, rows: n, cols: p } = x;
  let nnz = 0;
  for (let j = 0; j < data.length; j++) if (data[j] !== 0) nnz++;
  if (nnz > 0.5 * n * p) return null;
  const start = new Uint32Array(n + 1);
  const cols = new Uint32Array(nnz);
  const vals = new Float64Array(nnz);
  let e = 0;
  for (let i = 0; i < n; i++) {
    start[i] = e;
    for (let j = 0; j < p; j++) {
      const v = data[i * p + j] as number;
      if (v !== 0) {
        cols[e] = j;
        vals[e++] = v;
      }
    }
  }
  start[n] = e;
  return { start, cols, vals };
}

/**
 * L2-regularised logistic regression; `labels` are class indices 0..nClasses-1. Two classes give
 * one log-odds output, more give a multinomial softmax with one weight block per class.
 * @example const model = fitLogistic({ data, rows, cols }, Int32Array.from([0, 1, 1]), 2);
 */
export function fitLogistic(
  x: Matrix,
  labels: Int32Array,
  nClasses: number,
  options: LogisticOptions = {},
): LinearModel {
  const { data, rows: n, cols: p } = x;
  if (n === 0)
    throw new FerryError('FERRY_DATA_EMPTY', 'logistic regression needs at least one row');
  const l2 = options.l2 ?? 1 / n;
  const binary = nClasses === 2;
  const k = binary ? 1 : nClasses;
  const stride = p + 1;
  const z = new Float64Array(k);
  // Row i's dot product with the weight block at wo (added to `from`), and grad[wo..] += r * row i.
  const sparse = sparseRows(x);
  const dot =
    sparse === null
      ? (w: Float64Array, wo: number, i: number, from: number): number => {
          let s = from;
          const row = i * p;
          for (let j = 0; j < p; j++) s += (w[wo + j] as number) * (data[row + j] as number);
          return s;
        }
      : (w: Float64Array, wo: number, i: number, from: number): number => {
          let s = from;
          const { cols, vals } = sparse;
          for (
            let e = sparse.start[i] as number, end = sparse.start[i + 1] as number;
            e < end;
            e++
          ) {
            s += (w[wo + (cols[e] as number)] as number) * (vals[e] as number);
          }
          return s;
        };
  const axpy =
    sparse === null
      ? (grad: Float64Array, wo: number, r: number, i: number): void => {
          const row = i * p;
          for (let j = 0; j < p; j++)
            grad[wo + j] = (grad[wo + j] as number) + r * (data[row + j] as number);
        }
      : (grad: Float64Array, wo: number, r: number, i: number): void => {
          const { cols, vals } = sparse;
          for (
            let e = sparse.start[i] as number, end = sparse.start[i + 1] as number;
            e < end;
            e++
          ) {
            const j = wo + (cols[e] as number);
            grad[j] = (grad[j] as number) + r * (vals[e] as number);
          }
        };
  const objective = (w: Float64Array, grad: Float64Array): number => {
    grad.fill(0);
    let loss = 0;
    for (let i = 0; i < n; i++) {
      const yi = labels[i] as number;
      for (let c = 0; c < k; c++) {
        const wo = c * stride;
        z[c] = dot(w, wo, i, w[wo + p] as number);
      }
      if (binary) {
        const s = z[0] as number;
        // log(1 + e^s) - y s, computed without overflow.
        loss += (s > 0 ? s + Math.log1p(Math.exp(-s)) : Math.log1p(Math.exp(s))) - yi * s;
        const r = (s >= 0 ? 1 / (1 + Math.exp(-s)) : Math.exp(s) / (1 + Math.exp(s))) - yi;
        axpy(grad, 0, r, i);
        grad[p] = (grad[p] as number) + r;
      } else {
        let max = -Infinity;
        for (let c = 0; c < k; c++) max = Math.max(max, z[c] as number);
        let sum = 0;
        for (let c = 0; c < k; c++) sum += Math.exp((z[c] as number) - max);
        const lse = max + Math.log(sum);
        loss += lse - (z[yi] as number);
        for (let c = 0; c < k; c++) {
          const r = Math.exp((z[c] as number) - lse) - (c === yi ? 1 : 0);
          const wo = c * stride;
          axpy(grad, wo, r, i);
          grad[wo + p] = (grad[wo + p] as number) + r;
        }
      }
    }
    let penalty = 0;
    for (let c = 0; c < k; c++) {
      const wo = c * stride;
      for (let j = 0; j <= p; j++) {
        grad[wo + j] = (grad[wo + j] as number) / n;
        if (j < p) {
          const wj = w[wo + j] as number;
          penalty += wj * wj;
          grad[wo + j] = (grad[wo + j] as number) + l2 * wj;
        }
      }
    }
    return loss / n + 0.5 * l2 * penalty;
  };
  const result = minimizeLbfgs(objective, new Float64Array(k * stride), {
    maxIterations: options.maxIterations ?? 500,
  });
  return {
    kind: 'linear',
    objective: binary ? 'binary' : 'multiclass',
    nFeatures: p,
    nOutputs: k,
    weights: Array.from(result.weights),
  };
}

/** A linear model with its weights in a typed array, ready for the prediction loop. */
export interface CompiledLinear {
  readonly nFeatures: number;
  readonly nOutputs: number;
  readonly weights: Float64Array;
}

export function compileLinear(model: LinearModel): CompiledLinear {
  return {
    nFeatures: model.nFeatures,
    nOutputs: model.nOutputs,
    weights: Float64Array.from(model.weights),
  };
}

/**
 * Raw outputs (`nOutputs` per row) of a linear model for a matrix.
 * @example const raw = predictLinearRaw(compileLinear(model), matrix);
 */
export function predictLinearRaw(
  model: CompiledLinear,
  x: Matrix,
  out: Float64Array = new Float64Array(x.rows * model.nOutputs),
): Float64Array {
  const { nFeatures: p, nOutputs: k, weights: w } = model;
  const { data, rows } = x;
  const stride = p + 1;
  for (let i = 0; i < rows; i++) {
    const row = i * p;
    for (let c = 0; c < k; c++) {
      const wo = c * stride;
      let s = w[wo + p] as number;
      for (let j = 0; j < p; j++) s += (w[wo + j] as number) * (data[row + j] as number);
      out[i * k + c] = s;
    }
  }
  return out;
}
