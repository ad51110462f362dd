/**
 * Histogram gradient boosting of decision trees (the LightGBM / XGBoost-hist recipe):
 * features are cut into at most 255 quantile bins once, trees grow leaf-wise on per-bin
 * gradient sums (the larger child's histogram is the parent's minus the smaller child's), and
 * missing values get a learned default direction at every split.
 *
 * Losses: squared error, binary log loss, multiclass softmax (one tree per class per round).
 * Early stopping watches the loss on a validation matrix. The fitted forest serialises to flat
 * arrays (feature, threshold, left, right, value, defaultLeft), evaluated on raw feature values:
 * `x <= threshold` goes left, NaN follows `defaultLeft`.
 */
import { FerryError } from '../../errors/index.js';
import type { Matrix } from '../preprocess.js';
import { createRng } from '../random.js';
import { HistogramBuilder, SLOT } from './histogram.js';
import { outputsPerRow, sigmoid, type Objective } from './objective.js';

export interface GbdtOptions {
  readonly objective: Objective;
  /** Number of classes (classification). */
  readonly nClasses?: number;
  readonly learningRate?: number;
  /** Boosting rounds at most (default 300); early stopping may keep fewer. */
  readonly maxRounds?: number;
  readonly maxDepth?: number;
  readonly maxLeaves?: number;
  /** Minimum hessian sum in a child (default 1, as XGBoost; for squared error, rows). */
  readonly minChildWeight?: number;
  /** L2 penalty on leaf values (default 1). */
  readonly lambda?: number;
  readonly maxBins?: number;
  /** Fraction of rows drawn (without replacement) for each round (default 1). */
  readonly subsample?: number;
  /** Fraction of features each tree may split on, drawn per tree from the seed (default 1). */
  readonly colsampleByTree?: number;
  /** Stop after this many rounds without a better validation loss (default 20). */
  readonly earlyStoppingRounds?: number;
  readonly seed?: number;
  /** Validation rows: regression values, or class indices for classification. */
  readonly validation?: { readonly x: Matrix; readonly y: Float64Array };
  /**
   * Keep every round trained instead of cutting the forest back to the best validation round
   * (cross-validation picks one round count for all folds afterwards; see `truncateForest`).
   */
  readonly keepAllRounds?: boolean;
  /**
   * 1 keeps histogram building on the calling thread; absent, large fits on the main thread
   * share it with helper threads (`histogram.ts`). The model is the same either way.
   */
  readonly threads?: number;
  /**
   * Wall-clock time (`Date.now()` milliseconds) after which no further round starts, as with a
   * time budget; the rounds so far are kept (cut to the best validation round, as usual).
   */
  readonly stopAt?: number;
  /** Called after every boosting round with its validation loss (null without validation). */
  readonly onRound?: (round: number, validationLoss: number | null) => void;
}

export interface GbdtModel {
  readonly kind: 'gbdt';
  readonly objective: Objective;
  readonly nFeatures: number;
  /** Outputs per row; tree t adds to output t % nOutputs. */
  readonly nOutputs: number;
  readonly baseScore: readonly number[];
  /** Boosting rounds kept. */
  readonly rounds: number;
  /** First node of each tree; nodes of a tree are contiguous and children follow parents. */
  readonly roots: readonly number[];
  /** Split feature, or -1 for a leaf. */
  readonly feature: readonly number[];
  readonly threshold: readonly number[];
  readonly left: readonly number[];
  readonly right: readonly number[];
  /** Leaf value (learning rate included); 0 on split nodes. */
  readonly value: readonly number[];
  /** 1 when a missing value goes left. */
  readonly defaultLeft: readonly number[];
}

export interface GbdtResult {
  readonly model: GbdtModel;
  /** Validation loss after each round (empty without validation). */
  readonly validationLoss: readonly number[];
  /** Rounds up to the lowest validation loss (all rounds without validation). */
  readonly bestRounds: number;
}

/** Rounds without a better validation loss after which boosting stops, unless told otherwise. */
export const DEFAULT_EARLY_STOPPING_ROUNDS = 20;

/**
 * True when a validation loss counts as better than the best so far (a relative 1e-12 margin,
 * so rounding noise on a flat curve is no improvement). Early stopping of one fit and of the
 * folds' mean curve (`evaluate.ts`) share it, so both stop on the same rule.
 * @example improvesOn(0.41, 0.42) // true
 */
export function improvesOn(loss: number, best: number): boolean {
  return loss < best - 1e-12 * Math.abs(best);
}

/** The bin of a missing (NaN) value; value bins are 0..254. */
export const MISSING_BIN = 255;

/** Upper bounds of the value bins of one feature: bin(x) is the first b with x <= t[b]. */
export function featureThresholds(values: Float64Array, maxBins: number): Float64Array {
  const sorted = values.sort();
  const distinct: number[] = [];
  const counts: number[] = [];
  for (let i = 0; i < sorted.length; i++) {
    const v = sorted[i] as number;
    if (distinct.length > 0 && distinct[distinct.length - 1] === v) {
      counts[counts.length - 1] = (counts[counts.length - 1] as number) + 1;
    } else {
      distinct.push(v);
      counts.push(1);
    }
  }
  const cuts: number[] = [];
  const push = (j: number): void => {
    const cut = ((distinct[j] as number) + (distinct[j + 1] as number)) / 2;
    if (cuts.length === 0 || cut > (cuts[cuts.length - 1] as number)) cuts.push(cut);
  };
  if (distinct.length <= maxBins) {
    for (let j = 0; j < distinct.length - 1; j++) push(j);
  } else {
    // Equal-frequency bins over distinct values, so heavy ties never share a bin with neighbours.
    const perBin = sorted.length / maxBins;
    let cum = 0;
    for (let j = 0; j < distinct.length - 1 && cuts.length < maxBins - 1; j++) {
      cum += counts[j] as number;
      if (cum >= (cuts.length + 1) * perBin) push(j);
    }
  }
  return Float64Array.from(cuts);
}

export function binOf(thresholds: Float64Array, v: number): number {
  if (Number.isNaN(v)) return MISSING_BIN;
  let lo = 0;
  let hi = thresholds.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (v <= (thresholds[mid] as number)) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/** Rows whose values set the bin bounds of a larger matrix (as LightGBM's 200,000). */
export const BIN_SAMPLE_ROWS = 200_000;

/**
 * Draws exactly `into.length` of the rows 0..n-1 into `into`, ascending (selection sampling), and
 * the rows left out into `outside` when given, ascending too.
 */
function selectRows(n: number, rand: () => number, into: Uint32Array, outside?: Uint32Array): void {
  let needed = into.length;
  let o = 0;
  let i = 0;
  for (let j = 0; i < n && needed > 0; i++) {
    if (rand() * (n - i) < needed) {
      into[j++] = i;
      needed--;
    } else if (outside !== undefined) outside[o++] = i;
  }
  if (outside !== undefined) for (; i < n; i++) outside[o++] = i;
}

/** A matrix cut into quantile bins, shared by the tree learners (boosting, forests). */
export interface BinnedMatrix {
  readonly rows: number;
  readonly cols: number;
  /** Per feature, the upper bounds of its value bins (see `featureThresholds`). */
  readonly thresholds: readonly Float64Array[];
  /** Per feature, its value bins plus one (the count of bins a split can cut between). */
  readonly nBins: readonly number[];
  /** Column-major bins: feature f of row i at `f * rows + i`; NaN is `MISSING_BIN`. */
  readonly byFeature: Uint8Array;
}

/**
 * Cuts every feature of a matrix into at most `maxBins` (≤ 255) quantile bins (quantiles of a
 * sample of `BIN_SAMPLE_ROWS` rows when the matrix has more).
 * @example const binned = binMatrix(x, 255); // binned.byFeature[f * x.rows + i]
 */
export function binMatrix(x: Matrix, maxBins: number): BinnedMatrix {
  const { data, rows: n, cols: nf } = x;
  const thresholds: Float64Array[] = [];
  // Bin bounds come from at most BIN_SAMPLE_ROWS rows, the same seeded sample for every feature:
  // sorting a million values per feature cost more than 30 rounds of boosting.
  let sampled: Uint32Array | null = null;
  if (n > BIN_SAMPLE_ROWS) {
    sampled = new Uint32Array(BIN_SAMPLE_ROWS);
    selectRows(n, createRng(0x5eed), sampled);
  }
  const column = new Float64Array(sampled?.length ?? n);
  const byFeature = new Uint8Array(n * nf);
  for (let f = 0; f < nf; f++) {
    let m = 0;
    if (sampled === null) {
      for (let i = 0; i < n; i++) {
        const v = data[i * nf + f] as number;
        if (!Number.isNaN(v)) column[m++] = v;
      }
    } else {
      for (let s = 0; s < sampled.length; s++) {
        const v = data[(sampled[s] as number) * nf + f] as number;
        if (!Number.isNaN(v)) column[m++] = v;
      }
    }
    const t = featureThresholds(column.slice(0, m), maxBins);
    thresholds.push(t);
    for (let i = 0; i < n; i++) byFeature[f * n + i] = binOf(t, data[i * nf + f] as number);
  }
  return { rows: n, cols: nf, thresholds, nBins: thresholds.map((t) => t.length + 1), byFeature };
}

interface Split {
  readonly gain: number;
  readonly feature: number;
  readonly bin: number;
  readonly defaultLeft: boolean;
  readonly gl: number;
  readonly hl: number;
}

interface Leaf {
  readonly node: number;
  readonly start: number;
  readonly end: number;
  readonly depth: number;
  readonly g: number;
  readonly h: number;
  readonly c: number;
  hist: Float64Array | null;
  split: Split | null;
}

/** Growable node arrays of the whole forest. */
class Forest {
  readonly roots: number[] = [];
  readonly feature: number[] = [];
  readonly threshold: number[] = [];
  readonly left: number[] = [];
  readonly right: number[] = [];
  readonly value: number[] = [];
  readonly defaultLeft: number[] = [];
  /** Split bin per node, for walking the binned training matrix. */
  readonly bin: number[] = [];

  addNode(): number {
    this.feature.push(-1);
    this.threshold.push(0);
    this.left.push(-1);
    this.right.push(-1);
    this.value.push(0);
    this.defaultLeft.push(0);
    this.bin.push(0);
    return this.feature.length - 1;
  }
}

function lossOf(objective: Objective, raw: Float64Array, y: Float64Array, k: number): number {
  const n = y.length;
  let loss = 0;
  for (let i = 0; i < n; i++) {
    const yi = y[i] as number;
    if (objective === 'regression') loss += ((raw[i] as number) - yi) ** 2;
    else if (objective === 'binary') {
      const s = raw[i] as number;
      loss += (s > 0 ? s + Math.log1p(Math.exp(-s)) : Math.log1p(Math.exp(s))) - yi * s;
    } else {
      let max = -Infinity;
      for (let c = 0; c < k; c++) max = Math.max(max, raw[i * k + c] as number);
      let sum = 0;
      for (let c = 0; c < k; c++) sum += Math.exp((raw[i * k + c] as number) - max);
      loss += max + Math.log(sum) - (raw[i * k + yi] as number);
    }
  }
  return n === 0 ? 0 : loss / n;
}

/**
 * Trains a boosted forest; `y` holds regression values or class indices.
 * @example
 * const { model } = fitGbdt(train, yTrain, { objective: 'binary', nClasses: 2, validation: { x: valid, y: yValid } });
 */
export function fitGbdt(x: Matrix, y: Float64Array, options: GbdtOptions): GbdtResult {
  const { rows: n, cols: nf } = x;
  if (n === 0) throw new FerryError('FERRY_DATA_EMPTY', 'gradient boosting needs at least one row');
  const objective = options.objective;
  const nClasses = options.nClasses ?? 2;
  const k = outputsPerRow(objective, nClasses);
  const lr = options.learningRate ?? 0.1;
  const maxRounds = options.maxRounds ?? 300;
  const maxDepth = options.maxDepth ?? 6;
  const maxLeaves = Math.max(2, options.maxLeaves ?? 31);
  const minChildWeight = options.minChildWeight ?? 1;
  const lambda = options.lambda ?? 1;
  const maxBins = Math.min(255, Math.max(2, options.maxBins ?? 255));
  const subsample = options.subsample ?? 1;
  const patience = options.earlyStoppingRounds ?? DEFAULT_EARLY_STOPPING_ROUNDS;
  const rand = createRng(options.seed ?? 0);

  // Bin every feature once. Row-major bins feed the histograms (consecutive updates hit
  // different features, so they do not wait on each other); the column-major ones make
  // partitioning rows by one feature cheap.
  const { thresholds, nBins, byFeature: binsByFeature } = binMatrix(x, maxBins);
  const histograms = new HistogramBuilder(n, nBins, options.threads);
  const { bins, offsets, gh, idx, featureOrder } = histograms.space;
  for (let f = 0; f < nf; f++) {
    const missingSlot = nBins[f] as number;
    for (let i = 0; i < n; i++) {
      const b = binsByFeature[f * n + i] as number;
      bins[i * nf + f] = b === MISSING_BIN ? missingSlot : b;
    }
  }
  // Features the current tree may split on (all unless colsampleByTree < 1).
  const colsample = Math.min(1, Math.max(0, options.colsampleByTree ?? 1));
  const treeFeatures = new Uint8Array(nf).fill(1);
  // The tree's features are the first nActive entries, ascending (histograms fill in order).
  const nActive = colsample >= 1 ? nf : Math.max(1, Math.round(nf * colsample));
  const drawTreeFeatures = (): void => {
    if (colsample >= 1) return;
    const m = nActive;
    for (let f = 0; f < nf; f++) featureOrder[f] = f;
    // Partial Fisher-Yates: the first m entries are a uniform sample without replacement.
    for (let j = 0; j < m; j++) {
      const pick = j + Math.floor(rand() * (nf - j));
      const chosen = featureOrder[pick] as number;
      featureOrder[pick] = featureOrder[j] as number;
      featureOrder[j] = chosen;
    }
    treeFeatures.fill(0);
    for (let j = 0; j < m; j++) treeFeatures[featureOrder[j] as number] = 1;
    featureOrder.subarray(0, m).sort();
  };

  // Initial scores: the constant that minimises the loss.
  const baseScore = new Array<number>(k).fill(0);
  // Below this a split counts as no gain. Gains scale with the square of a regression target, so
  // for a target of tiny values (1e-12) the floor follows its variance.
  let gainFloor = 1e-12;
  if (objective === 'regression') {
    let s = 0;
    for (let i = 0; i < n; i++) s += y[i] as number;
    baseScore[0] = s / n;
    let ss = 0;
    for (let i = 0; i < n; i++) ss += ((y[i] as number) - s / n) ** 2;
    if (ss > 0) gainFloor = 1e-12 * Math.min(1, ss / n);
  } else {
    const counts = new Array<number>(nClasses).fill(0);
    for (let i = 0; i < n; i++) counts[y[i] as number] = (counts[y[i] as number] as number) + 1;
    const prior = (c: number): number => Math.min(1 - 1e-6, Math.max(1e-6, (counts[c] ?? 0) / n));
    if (objective === 'binary') baseScore[0] = Math.log(prior(1) / (1 - prior(1)));
    else for (let c = 0; c < k; c++) baseScore[c] = Math.log(prior(c));
  }
  const raw = new Float64Array(n * k);
  for (let i = 0; i < n; i++) for (let c = 0; c < k; c++) raw[i * k + c] = baseScore[c] as number;

  const validation = options.validation;
  const nv = validation?.x.rows ?? 0;
  const valRaw = new Float64Array(nv * k);
  for (let i = 0; i < nv; i++)
    for (let c = 0; c < k; c++) valRaw[i * k + c] = baseScore[c] as number;

  const grad = new Float64Array(n * k);
  const hess = new Float64Array(n * k);
  const prob = new Float64Array(k);
  const computeGradients = (): void => {
    for (let i = 0; i < n; i++) {
      const yi = y[i] as number;
      if (objective === 'regression') {
        grad[i] = (raw[i] as number) - yi;
        hess[i] = 1;
      } else if (objective === 'binary') {
        const p = sigmoid(raw[i] as number);
        grad[i] = p - yi;
        hess[i] = Math.max(p * (1 - p), 1e-16);
      } else {
        let max = -Infinity;
        for (let c = 0; c < k; c++) max = Math.max(max, raw[i * k + c] as number);
        let sum = 0;
        for (let c = 0; c < k; c++) {
          const e = Math.exp((raw[i * k + c] as number) - max);
          prob[c] = e;
          sum += e;
        }
        for (let c = 0; c < k; c++) {
          const p = (prob[c] as number) / sum;
          grad[c * n + i] = p - (c === yi ? 1 : 0);
          hess[c * n + i] = Math.max(p * (1 - p), 1e-16);
        }
      }
    }
  };

  const forest = new Forest();
  const tmp = new Uint32Array(n);
  const pool: Float64Array[] = [];
  const histSize = histograms.histSize;
  const takeHist = (): Float64Array => {
    const h = pool.pop();
    if (h === undefined) return new Float64Array(histSize);
    h.fill(0);
    return h;
  };
  const release = (h: Float64Array | null): void => {
    if (h !== null) pool.push(h);
  };

  const buildHist = (start: number, end: number): Float64Array => {
    const hist = takeHist();
    // Only the tree's features under column sampling: the others stay zero and are never read.
    histograms.build(hist, start, end, colsample < 1 ? nActive : -1);
    return hist;
  };

  const splittable = (leaf: Leaf): boolean =>
    leaf.depth < maxDepth && leaf.c >= 2 && leaf.h >= 2 * minChildWeight;

  const findSplit = (leaf: Leaf): Split | null => {
    const hist = leaf.hist as Float64Array;
    const { g: G, h: H } = leaf;
    // Sums of hessians in bins without rows are exactly 0, except for rounding left by the
    // histogram subtraction: anything this small means "no missing values here".
    const noise = 1e-12 * H;
    const parentScore = (G * G) / (H + lambda);
    let best: Split | null = null;
    let bestGain = gainFloor;
    for (let f = 0; f < nf; f++) {
      if (treeFeatures[f] === 0) continue;
      const o = offsets[f] as number;
      const nb = nBins[f] as number;
      const mo = o + nb * SLOT;
      const mg = hist[mo] as number;
      const mh = hist[mo + 1] as number;
      const hasMissing = mh > noise;
      let gl = 0;
      let hl = 0;
      for (let b = 0; b < nb - 1; b++) {
        const j = o + b * SLOT;
        gl += hist[j] as number;
        hl += hist[j + 1] as number;
        // Missing values right (also the only option when the node has none), then left.
        for (let side = 0; side < (hasMissing ? 2 : 1); side++) {
          const lg = side === 0 ? gl : gl + mg;
          const lh = side === 0 ? hl : hl + mh;
          const rh = H - lh;
          if (lh < minChildWeight || rh < minChildWeight || lh <= noise || rh <= noise) continue;
          const rg = G - lg;
          const gain = (lg * lg) / (lh + lambda) + (rg * rg) / (rh + lambda) - parentScore;
          if (gain > bestGain) {
            bestGain = gain;
            // With no missing values here, send future ones to the heavier side.
            const defaultLeft = hasMissing ? side === 1 : lh >= rh;
            best = { gain, feature: f, bin: b, defaultLeft, gl: lg, hl: lh };
          }
        }
      }
    }
    return best;
  };

  const growTree = (g: Float64Array, h: Float64Array, count: number, output: number): void => {
    drawTreeFeatures();
    const root = forest.addNode();
    forest.roots.push(root);
    let G = 0;
    let H = 0;
    for (let p = 0; p < count; p++) {
      const r = idx[p] as number;
      const gr = g[r] as number;
      const hr = h[r] as number;
      gh[2 * r] = gr;
      gh[2 * r + 1] = hr;
      G += gr;
      H += hr;
    }
    const rootLeaf: Leaf = {
      node: root,
      start: 0,
      end: count,
      depth: 0,
      g: G,
      h: H,
      c: count,
      hist: null,
      split: null,
    };
    if (splittable(rootLeaf)) {
      rootLeaf.hist = buildHist(0, count);
      rootLeaf.split = findSplit(rootLeaf);
    }
    const leaves: Leaf[] = [rootLeaf];
    while (leaves.length < maxLeaves) {
      let chosen = -1;
      for (let i = 0; i < leaves.length; i++) {
        const s = (leaves[i] as Leaf).split;
        if (s === null) continue;
        const current = chosen < 0 ? null : (leaves[chosen] as Leaf).split;
        if (current === null || s.gain > current.gain) chosen = i;
      }
      if (chosen < 0) break;
      const leaf = leaves[chosen] as Leaf;
      const split = leaf.split as Split;
      // Stable partition of the leaf's rows: left in place, right through `tmp`.
      let w = leaf.start;
      let t = 0;
      const featureBins = binsByFeature.subarray(split.feature * n, split.feature * n + n);
      for (let p = leaf.start; p < leaf.end; p++) {
        const r = idx[p] as number;
        const b = featureBins[r] as number;
        if (b === MISSING_BIN ? split.defaultLeft : b <= split.bin) idx[w++] = r;
        else tmp[t++] = r;
      }
      idx.set(tmp.subarray(0, t), w);
      const node = leaf.node;
      const leftNode = forest.addNode();
      const rightNode = forest.addNode();
      forest.feature[node] = split.feature;
      forest.threshold[node] = (thresholds[split.feature] as Float64Array)[split.bin] as number;
      forest.bin[node] = split.bin;
      forest.left[node] = leftNode;
      forest.right[node] = rightNode;
      forest.defaultLeft[node] = split.defaultLeft ? 1 : 0;
      const l: Leaf = {
        node: leftNode,
        start: leaf.start,
        end: w,
        depth: leaf.depth + 1,
        g: split.gl,
        h: split.hl,
        c: w - leaf.start,
        hist: null,
        split: null,
      };
      const rr: Leaf = {
        node: rightNode,
        start: w,
        end: leaf.end,
        depth: leaf.depth + 1,
        g: leaf.g - split.gl,
        h: leaf.h - split.hl,
        c: leaf.end - w,
        hist: null,
        split: null,
      };
      const lOk = splittable(l);
      const rOk = splittable(rr);
      if (lOk || rOk) {
        const [small, large] = l.c <= rr.c ? [l, rr] : [rr, l];
        const parentHist = leaf.hist as Float64Array;
        small.hist = buildHist(small.start, small.end);
        if (splittable(large)) {
          const sh = small.hist;
          for (let j = 0; j < histSize; j++)
            parentHist[j] = (parentHist[j] as number) - (sh[j] as number);
          large.hist = parentHist;
        } else release(parentHist);
        leaf.hist = null;
        for (const child of [l, rr]) {
          if (splittable(child)) child.split = findSplit(child);
          else {
            release(child.hist);
            child.hist = null;
          }
        }
      } else {
        release(leaf.hist);
        leaf.hist = null;
      }
      leaves.splice(chosen, 1, l, rr);
    }
    for (const leaf of leaves) {
      release(leaf.hist);
      leaf.hist = null;
      const v = (-leaf.g / (leaf.h + lambda)) * lr;
      forest.value[leaf.node] = v;
      for (let p = leaf.start; p < leaf.end; p++) {
        const r = idx[p] as number;
        raw[r * k + output] = (raw[r * k + output] as number) + v;
      }
    }
    if (subsample < 1) {
      // Rows left out of this round's sample still need the tree's output: they walk the tree.
      for (let o = 0; o < nOutside; o++) {
        const r = outside[o] as number;
        let nd = root;
        while ((forest.feature[nd] as number) >= 0) {
          const b = binsByFeature[(forest.feature[nd] as number) * n + r] as number;
          const goLeft =
            b === MISSING_BIN ? forest.defaultLeft[nd] === 1 : b <= (forest.bin[nd] as number);
          nd = (goLeft ? forest.left[nd] : forest.right[nd]) as number;
        }
        raw[r * k + output] = (raw[r * k + output] as number) + (forest.value[nd] as number);
      }
    }
    if (validation !== undefined) {
      const vx = validation.x.data;
      for (let r = 0; r < nv; r++) {
        let nd = root;
        while ((forest.feature[nd] as number) >= 0) {
          const v = vx[r * nf + (forest.feature[nd] as number)] as number;
          const thr = forest.threshold[nd] as number;
          const goLeft = v <= thr ? true : v > thr ? false : forest.defaultLeft[nd] === 1;
          nd = (goLeft ? forest.left[nd] : forest.right[nd]) as number;
        }
        valRaw[r * k + output] = (valRaw[r * k + output] as number) + (forest.value[nd] as number);
      }
    }
  };

  const validationLoss: number[] = [];
  let bestLoss = Infinity;
  let bestRound = -1;
  let rounds = 0;
  const sample = new Uint32Array(n);
  for (let i = 0; i < n; i++) sample[i] = i;
  const sampleSize = subsample >= 1 ? n : Math.max(1, Math.round(n * subsample));
  // The rows a round's sample leaves out, ascending.
  const outside = new Uint32Array(subsample >= 1 ? 0 : n - sampleSize);
  const nOutside = outside.length;
  for (let round = 0; round < maxRounds; round++) {
    computeGradients();
    if (subsample < 1) {
      selectRows(n, rand, sample.subarray(0, sampleSize), outside);
    }
    for (let c = 0; c < k; c++) {
      idx.set(sample.subarray(0, sampleSize));
      growTree(grad.subarray(c * n, c * n + n), hess.subarray(c * n, c * n + n), sampleSize, c);
    }
    rounds = round + 1;
    if (validation === undefined || nv === 0) options.onRound?.(rounds, null);
    else {
      const loss = lossOf(objective, valRaw, validation.y, k);
      validationLoss.push(loss);
      options.onRound?.(rounds, loss);
      if (bestRound < 0 || improvesOn(loss, bestLoss)) {
        bestLoss = loss;
        bestRound = round;
      } else if (round - bestRound >= patience) break;
    }
    if (options.stopAt !== undefined && Date.now() >= options.stopAt) break;
  }
  histograms.close();
  const bestRounds = validation !== undefined && nv > 0 && bestRound >= 0 ? bestRound + 1 : rounds;
  const model: GbdtModel = {
    kind: 'gbdt',
    objective,
    nFeatures: nf,
    nOutputs: k,
    baseScore,
    rounds,
    roots: forest.roots,
    feature: forest.feature,
    threshold: forest.threshold,
    left: forest.left,
    right: forest.right,
    value: forest.value,
    defaultLeft: forest.defaultLeft,
  };
  return {
    model: options.keepAllRounds ? model : truncateForest(model, bestRounds),
    validationLoss,
    bestRounds,
  };
}

/**
 * The first `rounds` boosting rounds of a forest (the same model when it has no more).
 * @example const shorter = truncateForest(model, 50);
 */
export function truncateForest(model: GbdtModel, rounds: number): GbdtModel {
  const trees = rounds * model.nOutputs;
  if (trees >= model.roots.length) return model;
  const nodes = model.roots[trees] as number;
  return {
    ...model,
    rounds,
    roots: model.roots.slice(0, trees),
    feature: model.feature.slice(0, nodes),
    threshold: model.threshold.slice(0, nodes),
    left: model.left.slice(0, nodes),
    right: model.right.slice(0, nodes),
    value: model.value.slice(0, nodes),
    defaultLeft: model.defaultLeft.slice(0, nodes),
  };
}

/**
 * The average of boosted forests fitted on the same features (fold bagging), as one forest:
 * their trees concatenated with every leaf value divided by their count, and the mean of their
 * base scores. Exact in raw-score space (regression values, log-odds, softmax logits), where a
 * forest's output is a sum; probabilities are then the link of the mean score, not the mean of
 * the probabilities. `rounds` is the sum of the members' rounds, so that trees = rounds ×
 * outputs still holds; `truncateForest` on the result would cut members, not rounds.
 * @example const bagged = averageForests(foldModels); // predictForestRaw = mean of the members'
 */
export function averageForests(models: readonly GbdtModel[]): GbdtModel {
  const first = models[0];
  if (first === undefined) {
    throw new FerryError('FERRY_INTERNAL', 'averageForests needs at least one model');
  }
  const weight = 1 / models.length;
  const baseScore = new Array<number>(first.nOutputs).fill(0);
  const roots: number[] = [];
  const feature: number[] = [];
  const threshold: number[] = [];
  const left: number[] = [];
  const right: number[] = [];
  const value: number[] = [];
  const defaultLeft: number[] = [];
  let rounds = 0;
  for (const model of models) {
    if (
      model.objective !== first.objective ||
      model.nOutputs !== first.nOutputs ||
      model.nFeatures !== first.nFeatures
    ) {
      throw new FerryError(
        'FERRY_INTERNAL',
        'averageForests needs forests of one objective over the same features',
      );
    }
    const offset = feature.length;
    for (let c = 0; c < first.nOutputs; c++) {
      baseScore[c] = (baseScore[c] as number) + (model.baseScore[c] as number) * weight;
    }
    for (const r of model.roots) roots.push(r + offset);
    for (let i = 0; i < model.feature.length; i++) {
      const split = (model.feature[i] as number) >= 0;
      feature.push(model.feature[i] as number);
      threshold.push(model.threshold[i] as number);
      left.push(split ? (model.left[i] as number) + offset : (model.left[i] as number));
      right.push(split ? (model.right[i] as number) + offset : (model.right[i] as number));
      value.push((model.value[i] as number) * weight);
      defaultLeft.push(model.defaultLeft[i] as number);
    }
    rounds += model.rounds;
  }
  return {
    kind: 'gbdt',
    objective: first.objective,
    nFeatures: first.nFeatures,
    nOutputs: first.nOutputs,
    baseScore,
    rounds,
    roots,
    feature,
    threshold,
    left,
    right,
    value,
    defaultLeft,
  };
}

/** A forest in typed arrays, ready for the prediction loop. */
export interface CompiledForest {
  readonly nFeatures: number;
  readonly nOutputs: number;
  readonly baseScore: Float64Array;
  readonly roots: Int32Array;
  readonly feature: Int32Array;
  readonly threshold: Float64Array;
  readonly left: Int32Array;
  readonly right: Int32Array;
  readonly value: Float64Array;
  readonly defaultLeft: Uint8Array;
}

export function compileForest(model: GbdtModel): CompiledForest {
  return {
    nFeatures: model.nFeatures,
    nOutputs: model.nOutputs,
    baseScore: Float64Array.from(model.baseScore),
    roots: Int32Array.from(model.roots),
    feature: Int32Array.from(model.feature),
    threshold: Float64Array.from(model.threshold),
    left: Int32Array.from(model.left),
    right: Int32Array.from(model.right),
    value: Float64Array.from(model.value),
    defaultLeft: Uint8Array.from(model.defaultLeft),
  };
}

/**
 * Raw outputs (`nOutputs` per row) of a forest for a matrix of raw feature values.
 * @example const raw = predictForestRaw(compileForest(model), matrix);
 */
export function predictForestRaw(
  forest: CompiledForest,
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
    value,
    defaultLeft,
  } = forest;
  const { data, rows } = x;
  const trees = roots.length;
  for (let i = 0; i < rows; i++) {
    const row = i * nf;
    const o = i * k;
    for (let c = 0; c < k; c++) out[o + c] = forest.baseScore[c] as number;
    for (let t = 0, c = 0; t < trees; t++) {
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
      out[o + c] = (out[o + c] as number) + (value[nd] as number);
      if (++c === k) c = 0;
    }
  }
  return out;
}
