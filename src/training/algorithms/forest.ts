/**
 * Decision trees and random forests (CART, Breiman 2001) on the quantile bins of gbdt.ts.
 *
 * A tree splits on variance reduction (regression) or Gini impurity (classification). Both are
 * one criterion: the Gini impurity of a node is the summed variance of its one-hot class
 * indicators, so a split's gain is Σ_k (Sl_k²/nl + Sr_k²/nr − S_k²/n) over target sums S_k, with
 * one target for regression and binary classification (the label itself, 0/1) and one indicator
 * per class for multiclass. Each split weighs a random subset of the features (`maxFeatures`),
 * trees grow on bootstrap samples, and missing values get a learned default direction as in
 * boosting. A decision tree is a forest of one tree, without bootstrap, on all features.
 *
 * Leaves hold the mean target of their training rows (class frequencies for classification) and
 * the forest averages its trees, so outputs are predictions, not scores: see
 * `forestProbabilities` for how they become class probabilities.
 */
import { FerryError } from '../../errors/index.js';
import type { Matrix } from '../preprocess.js';
import { createRng } from '../random.js';
import { binMatrix, MISSING_BIN as MISSING_BIN_OF_GBDT } from './gbdt.js';
import { outputsPerRow, type Objective } from './objective.js';

/** 'sqrt' and 'third' are √F and F/3 features of F; a number is a fraction of F in (0, 1]. */
export type MaxFeatures = 'sqrt' | 'third' | 'all' | number;

export interface ForestOptions {
  readonly objective: Objective;
  /** Number of classes (classification). */
  readonly nClasses?: number;
  /** Trees (default 100). */
  readonly nEstimators?: number;
  /** Depth limit (default none: trees grow until leaves are pure or too small). */
  readonly maxDepth?: number;
  /** Fewest training rows (bootstrap draws) in a leaf (default 1). */
  readonly minSamplesLeaf?: number;
  /** Fewest rows in a node that may split (default 2). */
  readonly minSamplesSplit?: number;
  /** Features weighed per split (default 'sqrt' for classification, 'third' for regression). */
  readonly maxFeatures?: MaxFeatures;
  /** Grow each tree on n rows drawn with replacement (default true). */
  readonly bootstrap?: boolean;
  readonly maxBins?: number;
  readonly seed?: number;
}

/** Options of a single tree: a forest of one, without bootstrap, weighing every feature. */
export type DecisionTreeOptions = Omit<ForestOptions, 'nEstimators' | 'bootstrap' | 'maxFeatures'>;

/**
 * A fitted forest as flat arrays. Nodes of all trees share the arrays; tree t starts at
 * `roots[t]`, its nodes are contiguous and children come after their parent. Node i is a leaf when
 * `feature[i] === -1`; otherwise a raw value x of that feature goes to `left[i]` when
 * `x <= threshold[i]`, to `right[i]` when greater, and a missing value (NaN) goes left when
 * `defaultLeft[i] === 1`. Each node owns `nOutputs` consecutive entries of `value`
 * (`value[i * nOutputs + j]`), zeros on split nodes. The forest's output j for a row is the
 * average over trees of its leaf's value j (ONNX: TreeEnsemble with aggregate AVERAGE, weights
 * as stored). Outputs are: the mean target (regression, nOutputs 1); the probability of class 1
 * (binary, nOutputs 1); the probability of each class (multiclass, nOutputs = classes).
 */
export interface ForestModel {
  readonly kind: 'forest';
  readonly objective: Objective;
  readonly nFeatures: number;
  readonly nOutputs: number;
  readonly roots: readonly number[];
  readonly feature: readonly number[];
  readonly threshold: readonly number[];
  readonly left: readonly number[];
  readonly right: readonly number[];
  readonly defaultLeft: readonly number[];
  readonly value: readonly number[];
}

/** A local copy: hot loops read it, and some module loaders make imports getters. */
const MISSING_BIN = MISSING_BIN_OF_GBDT;

/** Rows at or below which a node sorts its rows by bin instead of filling a 256-bin histogram. */
const SMALL_NODE = 64;

function featuresPerSplit(maxFeatures: MaxFeatures, nf: number): number {
  const m =
    maxFeatures === 'all'
      ? nf
      : maxFeatures === 'sqrt'
        ? Math.sqrt(nf)
        : maxFeatures === 'third'
          ? nf / 3
          : maxFeatures * nf;
  if (!(m > 0)) {
    throw new FerryError(
      'FERRY_ARGUMENT_INVALID',
      `maxFeatures ${String(maxFeatures)} selects no feature; use 'sqrt', 'third', 'all' or a fraction in (0, 1]`,
    );
  }
  return Math.min(nf, Math.max(1, Math.round(m)));
}

interface Split {
  readonly gain: number;
  readonly feature: number;
  /** Last bin of the left side. */
  readonly bin: number;
  readonly threshold: number;
  readonly defaultLeft: boolean;
}

interface Pending {
  readonly node: number;
  readonly start: number;
  readonly end: number;
  readonly depth: number;
}

/**
 * Trains a random forest; `y` holds regression values or class indices.
 * @example
 * const model = fitForest(train, yTrain, { objective: 'multiclass', nClasses: 3, seed: 7 });
 */
export function fitForest(x: Matrix, y: Float64Array, options: ForestOptions): ForestModel {
  const { rows: n, cols: nf } = x;
  if (n === 0) throw new FerryError('FERRY_DATA_EMPTY', 'a forest needs at least one row');
  const objective = options.objective;
  const nClasses = options.nClasses ?? 2;
  const k = outputsPerRow(objective, nClasses);
  const nTrees = Math.max(1, Math.round(options.nEstimators ?? 100));
  const maxDepth = options.maxDepth ?? Infinity;
  const minLeaf = Math.max(1, options.minSamplesLeaf ?? 1);
  const minSplit = Math.max(2, options.minSamplesSplit ?? 2, 2 * minLeaf);
  const mtry = featuresPerSplit(
    options.maxFeatures ?? (objective === 'regression' ? 'third' : 'sqrt'),
    nf,
  );
  const bootstrap = options.bootstrap ?? true;
  const maxBins = Math.min(255, Math.max(2, options.maxBins ?? 255));
  const rand = createRng(options.seed ?? 0);
  const { thresholds, nBins, byFeature } = binMatrix(x, maxBins);

  // Targets: the label (centred, so sums of squares keep their precision) or the class index.
  const multi = objective === 'multiclass';
  let offset = 0;
  if (objective === 'regression') {
    for (let i = 0; i < n; i++) offset += y[i] as number;
    offset /= n;
  }
  const target = new Float64Array(n);
  for (let i = 0; i < n; i++) target[i] = (y[i] as number) - offset;
  // Per bin: row count, then k target sums.
  const slot = 1 + k;

  const roots: number[] = [];
  const feature: number[] = [];
  const threshold: number[] = [];
  const left: number[] = [];
  const right: number[] = [];
  const defaultLeft: number[] = [];
  const value: number[] = [];
  const addNode = (): number => {
    feature.push(-1);
    threshold.push(0);
    left.push(-1);
    right.push(-1);
    defaultLeft.push(0);
    for (let j = 0; j < k; j++) value.push(0);
    return feature.length - 1;
  };

  const idx = new Uint32Array(n);
  const tmp = new Uint32Array(n);
  const draws = new Uint32Array(bootstrap ? n : 0);
  const order = new Uint32Array(nf);
  const hist = new Float64Array(256 * slot);
  // Bins present in the node, in order, with their sums (a compact histogram).
  const present = new Uint16Array(256);
  const sums = new Float64Array(256 * slot);
  const keys = new Float64Array(Math.min(n, SMALL_NODE));
  const nodeSums = new Float64Array(k);
  const leftSums = new Float64Array(k);
  const cut = new Float64Array(k);

  const addRow = (h: Float64Array, o: number, r: number): void => {
    h[o] = (h[o] as number) + 1;
    const t = target[r] as number;
    const j = multi ? o + 1 + t : o + 1;
    h[j] = (h[j] as number) + (multi ? 1 : t);
  };

  /** Σ_k S_k² / count: the part of a side's score the split criterion needs. */
  const score = (s: Float64Array, count: number): number => {
    let q = 0;
    for (let j = 0; j < k; j++) q += (s[j] as number) ** 2;
    return q / count;
  };

  /**
   * Compacts the node's rows for feature f into `present`/`sums` (value bins only) and `hist`'s
   * missing slot at 0; returns the number of value bins present.
   */
  const gather = (f: number, start: number, end: number): number => {
    const col = byFeature.subarray(f * n, f * n + n);
    const count = end - start;
    hist.fill(0, 0, slot);
    let m = 0;
    if (count <= SMALL_NODE) {
      // Sort rows by bin; the key keeps the position so ties stay apart.
      for (let p = start; p < end; p++) {
        keys[p - start] = (col[idx[p] as number] as number) * 65536 + (p - start);
      }
      const sorted = keys.subarray(0, count).sort();
      let last = -1;
      for (let q = 0; q < count; q++) {
        const key = sorted[q] as number;
        const b = Math.floor(key / 65536);
        const r = idx[start + (key - b * 65536)] as number;
        if (b === MISSING_BIN) {
          addRow(hist, 0, r);
          continue;
        }
        if (b !== last) {
          present[m] = b;
          sums.fill(0, m * slot, (m + 1) * slot);
          m++;
          last = b;
        }
        addRow(sums, (m - 1) * slot, r);
      }
      return m;
    }
    hist.fill(0);
    for (let p = start; p < end; p++) {
      const r = idx[p] as number;
      const b = col[r] as number;
      addRow(hist, b === MISSING_BIN ? 0 : (b + 1) * slot, r);
    }
    const nb = nBins[f] as number;
    for (let b = 0; b < nb; b++) {
      const o = (b + 1) * slot;
      if ((hist[o] as number) === 0) continue;
      present[m] = b;
      for (let j = 0; j < slot; j++) sums[m * slot + j] = hist[o + j] as number;
      m++;
    }
    return m;
  };

  const findSplit = (start: number, end: number): Split | null => {
    const count = end - start;
    nodeSums.fill(0);
    // Σ of squared targets: the node's impurity times its rows is total − parent.
    let total = multi ? count : 0;
    for (let p = start; p < end; p++) {
      const t = target[idx[p] as number] as number;
      if (multi) nodeSums[t] = (nodeSums[t] as number) + 1;
      else {
        nodeSums[0] = (nodeSums[0] as number) + t;
        total += t * t;
      }
    }
    const parent = score(nodeSums, count);
    // Gains below this are rounding, not structure; a pure node has nothing to gain.
    const floor = 1e-12 * total;
    if (total - parent <= floor) return null;
    for (let f = 0; f < nf; f++) order[f] = f;
    let best: Split | null = null;
    /** Scores the cut with `nl` rows and target sums `cut` on the left; keeps the best. */
    const consider = (f: number, bin: number, nl: number, defaultLeft: boolean): void => {
      const nr = count - nl;
      if (nl < minLeaf || nr < minLeaf) return;
      let ql = 0;
      let qr = 0;
      for (let c = 0; c < k; c++) {
        const sl = cut[c] as number;
        ql += sl * sl;
        qr += ((nodeSums[c] as number) - sl) ** 2;
      }
      const gain = ql / nl + qr / nr - parent;
      if (gain > floor && (best === null || gain > best.gain)) {
        const threshold = (thresholds[f] as Float64Array)[bin] as number;
        best = { gain, feature: f, bin, threshold, defaultLeft };
      }
    };
    // Weigh mtry random features; when none of them splits, keep drawing (as scikit-learn).
    for (let j = 0; j < nf && (j < mtry || best === null); j++) {
      const pick = mtry >= nf ? j : j + Math.floor(rand() * (nf - j));
      const f = order[pick] as number;
      order[pick] = order[j] as number;
      order[j] = f;
      const m = gather(f, start, end);
      if (m === 0) continue;
      const missing = hist[0] as number;
      let cl = 0;
      leftSums.fill(0);
      // Cuts between the bins present; missing values right, then left.
      for (let q = 0; q < m - 1; q++) {
        const o = q * slot;
        cl += sums[o] as number;
        for (let c = 0; c < k; c++) {
          leftSums[c] = (leftSums[c] as number) + (sums[o + 1 + c] as number);
          cut[c] = leftSums[c] as number;
        }
        const bin = present[q] as number;
        // With no missing values here, future ones go to the larger side.
        consider(f, bin, cl, missing === 0 && cl >= count - cl);
        if (missing === 0) continue;
        for (let c = 0; c < k; c++) cut[c] = (leftSums[c] as number) + (hist[1 + c] as number);
        consider(f, bin, cl + missing, true);
      }
      // "Is the value known?": every value on one side, the missing ones on the other. A cut
      // needs a bin boundary outside the values present, as in boosting.
      if (missing > 0) {
        const top = present[m - 1] as number;
        const bottom = present[0] as number;
        if (top < (nBins[f] as number) - 1) {
          for (let c = 0; c < k; c++) cut[c] = (nodeSums[c] as number) - (hist[1 + c] as number);
          consider(f, top, count - missing, false);
        } else if (bottom > 0) {
          for (let c = 0; c < k; c++) cut[c] = hist[1 + c] as number;
          consider(f, bottom - 1, missing, true);
        }
      }
    }
    return best;
  };

  const setLeaf = (node: number, start: number, end: number): void => {
    const count = end - start;
    const o = node * k;
    for (let p = start; p < end; p++) {
      const t = target[idx[p] as number] as number;
      if (multi) value[o + t] = (value[o + t] as number) + 1;
      else value[o] = (value[o] as number) + t;
    }
    for (let j = 0; j < k; j++) value[o + j] = (value[o + j] as number) / count + offset;
  };

  const growTree = (count: number): void => {
    const root = addNode();
    roots.push(root);
    // Depth first: a node's children are added when it splits, so they follow it.
    const stack: Pending[] = [{ node: root, start: 0, end: count, depth: 0 }];
    for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
      const { node, start, end, depth } = item;
      const split = depth < maxDepth && end - start >= minSplit ? findSplit(start, end) : null;
      if (split === null) {
        setLeaf(node, start, end);
        continue;
      }
      const col = byFeature.subarray(split.feature * n, split.feature * n + n);
      let w = start;
      let t = 0;
      for (let p = start; p < end; p++) {
        const r = idx[p] as number;
        const b = col[r] as number;
        if (b === MISSING_BIN ? split.defaultLeft : b <= split.bin) idx[w++] = r;
        else tmp[t++] = r;
      }
      idx.set(tmp.subarray(0, t), w);
      const l = addNode();
      const r = addNode();
      feature[node] = split.feature;
      threshold[node] = split.threshold;
      left[node] = l;
      right[node] = r;
      defaultLeft[node] = split.defaultLeft ? 1 : 0;
      stack.push({ node: r, start: w, end, depth: depth + 1 });
      stack.push({ node: l, start, end: w, depth: depth + 1 });
    }
  };

  for (let tree = 0; tree < nTrees; tree++) {
    if (bootstrap) {
      // n draws with replacement; a row drawn twice counts twice. Rows stay in ascending order
      // (partitions are stable), so reading a feature column walks memory forwards.
      draws.fill(0);
      for (let i = 0; i < n; i++) {
        const r = Math.floor(rand() * n);
        draws[r] = (draws[r] as number) + 1;
      }
      for (let r = 0, p = 0; r < n; r++) for (let c = draws[r] as number; c > 0; c--) idx[p++] = r;
    } else {
      for (let i = 0; i < n; i++) idx[i] = i;
    }
    growTree(n);
  }
  return {
    kind: 'forest',
    objective,
    nFeatures: nf,
    nOutputs: k,
    roots,
    feature,
    threshold,
    left,
    right,
    defaultLeft,
    value,
  };
}

/**
 * A single CART tree: a forest of one tree grown on every row, weighing every feature per split.
 * @example const tree = fitDecisionTree(x, y, { objective: 'regression', maxDepth: 8 });
 */
export function fitDecisionTree(
  x: Matrix,
  y: Float64Array,
  options: DecisionTreeOptions,
): ForestModel {
  return fitForest(x, y, { ...options, nEstimators: 1, bootstrap: false, maxFeatures: 'all' });
}

/** A forest in typed arrays, ready for the prediction loop. */
export interface CompiledAveragedForest {
  readonly nFeatures: number;
  readonly nOutputs: number;
  readonly roots: Int32Array;
  readonly feature: Int32Array;
  readonly threshold: Float64Array;
  readonly left: Int32Array;
  readonly right: Int32Array;
  readonly defaultLeft: Uint8Array;
  readonly value: Float64Array;
}

export function compileForestModel(model: ForestModel): CompiledAveragedForest {
  return {
    nFeatures: model.nFeatures,
    nOutputs: model.nOutputs,
    roots: Int32Array.from(model.roots),
    feature: Int32Array.from(model.feature),
    threshold: Float64Array.from(model.threshold),
    left: Int32Array.from(model.left),
    right: Int32Array.from(model.right),
    defaultLeft: Uint8Array.from(model.defaultLeft),
    value: Float64Array.from(model.value),
  };
}

/**
 * Outputs (`nOutputs` per row) of a forest for raw feature values: the average of its trees.
 * @example const raw = predictForestMeans(compileForestModel(model), matrix);
 */
export function predictForestMeans(
  forest: CompiledAveragedForest,
  x: Matrix,
  out: Float64Array = new Float64Array(x.rows * forest.nOutputs),
): Float64Array {
  const {
    nFeatures: nf,
    nOutputs: k,
    roots,
    feature,
    threshold,
    left,
    right,
    defaultLeft,
  } = forest;
  const { value } = forest;
  const { data, rows } = x;
  const trees = roots.length;
  const scale = 1 / trees;
  for (let i = 0; i < rows; i++) {
    const row = i * nf;
    const o = i * k;
    for (let c = 0; c < k; c++) out[o + c] = 0;
    for (let t = 0; t < trees; t++) {
      let nd = roots[t] as number;
      let f = feature[nd] as number;
      while (f >= 0) {
        const v = data[row + f] as number;
        const thr = threshold[nd] as number;
        nd = (
          v <= thr ? left[nd] : v > thr ? right[nd] : defaultLeft[nd] === 1 ? left[nd] : right[nd]
        ) as number;
        f = feature[nd] as number;
      }
      const leaf = nd * k;
      for (let c = 0; c < k; c++) out[o + c] = (out[o + c] as number) + (value[leaf + c] as number);
    }
    for (let c = 0; c < k; c++) out[o + c] = (out[o + c] as number) * scale;
  }
  return out;
}

/**
 * Row-major N x K class probabilities from a forest's outputs, which already are probabilities
 * (binary: P(class 1) per row, giving [1 - p, p]; multiclass: K per row, copied). The
 * counterpart of `toProbabilities` for models whose outputs are not scores.
 * @example forestProbabilities('binary', Float64Array.of(0.25), 1, 2) // Float64Array [0.75, 0.25]
 */
export function forestProbabilities(
  objective: Objective,
  raw: Float64Array,
  rows: number,
  nClasses: number,
  out: Float64Array = new Float64Array(rows * nClasses),
): Float64Array {
  if (objective === 'binary') {
    for (let i = 0; i < rows; i++) {
      const p = raw[i] as number;
      out[2 * i] = 1 - p;
      out[2 * i + 1] = p;
    }
  } else out.set(raw.subarray(0, rows * nClasses));
  return out;
}
