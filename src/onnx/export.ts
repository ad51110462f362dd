/**
 * ONNX export of Ferry's native models: the preprocessing (imputation, scaling, one-hot and
 * ordinal encoding, unseen categories included) and the algorithm in one graph, so that any
 * ONNX runtime predicts what the native predictor predicts.
 *
 * The graph's contract:
 * - one input per signature input, named after its column: `float [N,1]` for numeric columns
 *   (NaN or a non-finite value is missing), `string [N,1]` for string columns (the empty string
 *   is missing, as null is natively);
 * - outputs `predict` (`[N]`: the value, or the class label) and, for classifiers,
 *   `predict_proba` (`double [N,K]`, columns in the order of `signature.classes`), the names
 *   the Open Inference Protocol server uses;
 * - the Ferry signature as JSON in the metadata property `ferry.signature`.
 *
 * Inside, features are doubles, as natively. Linear models are MatMul + Add; tree ensembles are
 * one ai.onnx.ml TreeEnsembleRegressor (BRANCH_LEQ, missing values follow the learned default
 * direction; aggregate SUM for boosting, AVERAGE for random forests and decision trees). Boosted
 * and linear scores become probabilities by Sigmoid or Softmax in double precision exactly as
 * `objective.ts` does; a forest's averages already are probabilities (`forestProbabilities`). A regressor op rather than TreeEnsembleClassifier
 * keeps one code path for every algorithm and avoids that op's special case for binary models.
 * The tree op sums in double but returns float scores: the only rounding versus native (about
 * 1e-7 relative); scores beyond float's range are carried in units of a power of two.
 *
 * Models with an embedded preparation recipe are refused (FERRY_EXPORT_UNSUPPORTED naming the
 * recipe's request-time steps): recipe steps (derive expressions, merges, casts...) have no ONNX
 * translation yet. Known debt.
 */
import type { Label } from '../core/model.js';
import { FerryError } from '../errors/index.js';
import type { ForestModel } from '../training/algorithms/forest.js';
import type { GbdtModel } from '../training/algorithms/gbdt.js';
import type { LinearModel } from '../training/algorithms/linear.js';
import type { NativeModelDocument } from '../training/native-model.js';
import { STANDARD_LIMIT, type FeatureTransform } from '../training/preprocess.js';
import { servingRecipe } from '../training/recipe-model.js';
import { attr, ElemType, GraphBuilder, ML_DOMAIN, tensor } from './proto.js';

/** Metadata key holding the model's Ferry signature as JSON. */
export const SIGNATURE_METADATA = 'ferry.signature';
export const PREDICT_OUTPUT = 'predict';
export const PROBA_OUTPUT = 'predict_proba';

/**
 * Flat tree arrays, as every tree algorithm of Ferry stores them: node `i` splits on
 * `feature[i]` (-1: a leaf) with `x <= threshold[i]` going to `left[i]`, NaN to the left when
 * `defaultLeft[i]` is 1. A leaf holds `leafValues(i)`: one value per output it adds to.
 */
export interface FlatTrees {
  readonly roots: readonly number[];
  readonly feature: readonly number[];
  readonly threshold: readonly number[];
  readonly left: readonly number[];
  readonly right: readonly number[];
  readonly defaultLeft: readonly number[];
  /** `[output, value]` pairs a leaf of tree `tree` contributes. */
  readonly leafValues: (tree: number, node: number) => readonly (readonly [number, number])[];
  readonly nOutputs: number;
  /** SUM for boosting, AVERAGE for forests (divides by the number of trees). */
  readonly aggregate: 'SUM' | 'AVERAGE';
}

function unsupported(message: string): FerryError {
  return new FerryError('FERRY_EXPORT_UNSUPPORTED', message);
}

type NumericTransform = Extract<FeatureTransform, { kind: 'numeric' }>;
type CategoricalTransform = Exclude<FeatureTransform, NumericTransform>;

/**
 * All numeric columns as one double [N,m] block: concatenated first, so that the graph has a
 * handful of nodes whatever the number of columns (each node costs time on every run).
 */
function addNumericBlock(
  g: GraphBuilder,
  ts: readonly NumericTransform[],
  linear: boolean,
): string {
  const m = ts.length;
  const floats =
    m === 1
      ? ts[0]!.column
      : g.node(
          'Concat',
          ts.map((t) => t.column),
          { axis: attr.int(1) },
        );
  const asDouble = g.node('Cast', [floats], { to: attr.int(ElemType.DOUBLE) });
  // Natively, infinities are missing too (toNumber); NaN is what both modes treat as missing.
  const nan = g.constant(tensor.double([NaN], []), 'nan');
  const finite = g.node('Where', [g.node('IsInf', [asDouble]), nan, asDouble]);
  if (!linear) return finite;
  // Standardising is (x - center) / scale natively, clamped to ±STANDARD_LIMIT. Here each
  // column is first divided by the power of two nearest its scale (exact, so the centring below
  // rounds exactly as natively), and the rest of the scale is folded into the linear weights
  // (`linearScales`). Why not a Sub and a Div: onnxruntime rewrites one-element constants in
  // float32 terms (a Div next to MatMul becomes FusedMatMul's float alpha, a Sub of less than
  // 1e-8 is dropped as a no-op), which breaks a column of 1e300s or 1e-300s; in units of its
  // scale nothing is that small or large.
  const units = g.constant(tensor.double(ts.map(unitOf), [m]), 'units');
  const scaled = g.node('Div', [finite, units]);
  const medians = g.constant(
    tensor.double(
      ts.map((t) => t.median / unitOf(t)),
      [m],
    ),
    'medians',
  );
  const imputed = g.node('Where', [g.node('IsNaN', [scaled]), medians, scaled]);
  const centers = g.constant(
    tensor.double(
      ts.map((t) => t.center / unitOf(t)),
      [m],
    ),
    'centers',
  );
  // The native clamp of standardised values to ±STANDARD_LIMIT, in units.
  const limits = ts.map((t) => (STANDARD_LIMIT * t.scale) / unitOf(t));
  const upper = g.constant(tensor.double(limits, [m]), 'upper');
  const lower = g.constant(
    tensor.double(
      limits.map((l) => -l),
      [m],
    ),
    'lower',
  );
  return g.node('Max', [g.node('Min', [g.node('Sub', [imputed, centers]), upper]), lower]);
}

/** The power of two nearest a numeric column's scale (1 for a constant column or tree mode). */
function unitOf(t: NumericTransform): number {
  return 2 ** Math.round(Math.log2(t.scale));
}

/**
 * What divides each feature's linear weights: the rest of a numeric column's scale once the
 * graph has divided by its unit (`addNumericBlock`); 1 for encoded categories.
 */
function linearScales(preprocess: NativeModelDocument['preprocess']): number[] {
  return preprocess.transforms.flatMap((t) =>
    t.kind === 'numeric'
      ? [t.scale / unitOf(t)]
      : new Array<number>(t.kind === 'onehot' ? t.categories.length + 1 : 1).fill(1),
  );
}

/**
 * Declares one graph input per column, in signature order, and builds the double [N, width]
 * feature matrix: the numeric block first, then each string column's codes or one-hot columns.
 * `position[j]` is where the preprocessing's feature j lands in it.
 */
function addFeatures(
  g: GraphBuilder,
  preprocess: NativeModelDocument['preprocess'],
): { x: string; position: number[] } {
  const numeric: NumericTransform[] = [];
  const categorical: CategoricalTransform[] = [];
  for (const t of preprocess.transforms) {
    if (t.kind === 'numeric') {
      g.input(t.column, ElemType.FLOAT, ['N', 1]);
      numeric.push(t);
      continue;
    }
    if (t.categories.includes('')) {
      throw unsupported(
        `column '${t.column}' has the empty string as a category, which the ONNX graph uses for missing values; map empty strings to null before training`,
      );
    }
    g.input(t.column, ElemType.STRING, ['N', 1]);
    categorical.push(t);
  }
  const parts: string[] = [];
  if (numeric.length > 0) parts.push(addNumericBlock(g, numeric, preprocess.mode === 'linear'));
  for (const t of categorical) parts.push(addCategorical(g, t));
  // Where each original feature went: numeric columns first, then the string blocks in order.
  const position = new Array<number>(preprocess.width);
  let numericAt = 0;
  let categoricalAt = numeric.length;
  let original = 0;
  for (const t of preprocess.transforms) {
    const width = t.kind === 'onehot' ? t.categories.length + 1 : 1;
    for (let i = 0; i < width; i++) {
      position[original++] = t.kind === 'numeric' ? numericAt++ : categoricalAt++;
    }
  }
  const x =
    parts.length === 1 ? (parts[0] as string) : g.node('Concat', parts, { axis: attr.int(1) });
  return { x, position };
}

/** Adds the encoding of one string column; returns its double [N,w] value. */
function addCategorical(g: GraphBuilder, t: CategoricalTransform): string {
  const x = t.column;
  const k = t.categories.length;
  // LabelEncoder needs at least one key; '' (missing) maps to the default anyway.
  const keys = k === 0 ? [''] : [...t.categories];
  if (t.kind === 'onehot') {
    const code = g.node(
      'LabelEncoder',
      [x],
      {
        keys_strings: attr.strings(keys),
        values_int64s: attr.ints(k === 0 ? [0] : keys.map((_, i) => i)),
        default_int64: attr.int(k),
      },
      { domain: ML_DOMAIN },
    );
    // Unseen categories and missing values take the last ("other") column.
    const range = g.constant(
      tensor.int64(
        Array.from({ length: k + 1 }, (_, i) => i),
        [k + 1],
      ),
      `${t.column}_codes`,
    );
    return g.node('Cast', [g.node('Equal', [code, range])], { to: attr.int(ElemType.DOUBLE) });
  }
  // Ordinal: unseen categories take otherCode (or NaN), missing ones always NaN.
  const values: number[] = k === 0 ? [NaN] : keys.map((_, i) => i);
  if (k > 0 && t.otherCode !== null) {
    keys.push('');
    values.push(NaN);
  }
  const code = g.node(
    'LabelEncoder',
    [x],
    {
      keys_strings: attr.strings(keys),
      values_floats: attr.floats(values),
      default_float: attr.float(t.otherCode ?? NaN),
    },
    { domain: ML_DOMAIN },
  );
  return g.node('Cast', [code], { to: attr.int(ElemType.DOUBLE) });
}

/**
 * MatMul + Add over the feature matrix. `scales[j]` divides feature j's weights: the numeric
 * block arrives centred but not fully scaled (see `addNumericBlock`).
 */
function addLinear(
  g: GraphBuilder,
  x: string,
  position: readonly number[],
  scales: readonly number[],
  model: LinearModel,
): string {
  const { nFeatures: p, nOutputs: k, weights } = model;
  const w = new Array<number>(p * k);
  const b = new Array<number>(k);
  for (let c = 0; c < k; c++) {
    for (let j = 0; j < p; j++) {
      w[(position[j] as number) * k + c] =
        (weights[c * (p + 1) + j] as number) / (scales[j] as number);
    }
    b[c] = weights[c * (p + 1) + p] as number;
  }
  const wName = g.constant(tensor.double(w, [p, k]), 'weights');
  const bName = g.constant(tensor.double(b, [k]), 'intercepts');
  return g.node('Add', [g.node('MatMul', [x, wName]), bName]);
}

/**
 * Adds a TreeEnsembleRegressor over flat tree arrays; returns the double [N,K] raw scores (without
 * base scores). Nodes are renumbered per tree in visiting order, so any layout of the flat
 * arrays works as long as each tree is reachable from its root. `position` maps a feature index
 * to its column of `x` (identity when empty).
 */
export function addTreeEnsemble(
  g: GraphBuilder,
  x: string,
  trees: FlatTrees,
  position: readonly number[] = [],
): string {
  const treeIds: number[] = [];
  const nodeIds: number[] = [];
  const featureIds: number[] = [];
  const modes: string[] = [];
  const values: number[] = [];
  const trueIds: number[] = [];
  const falseIds: number[] = [];
  const missingTrue: number[] = [];
  const targetTree: number[] = [];
  const targetNode: number[] = [];
  const targetIds: number[] = [];
  const targetWeights: number[] = [];
  trees.roots.forEach((root, t) => {
    // Local ids: the order nodes are first reached from the root.
    const local = new Map<number, number>([[root, 0]]);
    const stack = [root];
    const order: number[] = [];
    while (stack.length > 0) {
      const nd = stack.pop() as number;
      order.push(nd);
      if ((trees.feature[nd] as number) < 0) continue;
      for (const child of [trees.right[nd] as number, trees.left[nd] as number]) {
        if (!local.has(child)) local.set(child, local.size);
        stack.push(child);
      }
    }
    order.sort((a, b) => (local.get(a) as number) - (local.get(b) as number));
    for (const nd of order) {
      const id = local.get(nd) as number;
      const f = trees.feature[nd] as number;
      treeIds.push(t);
      nodeIds.push(id);
      if (f < 0) {
        featureIds.push(0);
        modes.push('LEAF');
        values.push(0);
        trueIds.push(0);
        falseIds.push(0);
        missingTrue.push(0);
        for (const [output, value] of trees.leafValues(t, nd)) {
          targetTree.push(t);
          targetNode.push(id);
          targetIds.push(output);
          targetWeights.push(value);
        }
      } else {
        featureIds.push(position[f] ?? f);
        modes.push('BRANCH_LEQ');
        values.push(trees.threshold[nd] as number);
        trueIds.push(local.get(trees.left[nd] as number) as number);
        falseIds.push(local.get(trees.right[nd] as number) as number);
        missingTrue.push(trees.defaultLeft[nd] === 1 ? 1 : 0);
      }
    }
  });
  const n = values.length;
  // The op returns float scores: sums beyond float's range (a target of 1e300s) would come out
  // infinite, and below it (1e-300s) zero. Such weights are given in units of a power of two
  // near their largest possible sum, exact both ways, and the double scores multiplied back.
  const largest = new Map<number, number>();
  targetWeights.forEach((w, i) => {
    const t = targetTree[i] as number;
    largest.set(t, Math.max(largest.get(t) ?? 0, Math.abs(w)));
  });
  const perTree = [...largest.values()];
  const bound =
    trees.aggregate === 'SUM'
      ? perTree.reduce((a, b) => a + b, 0)
      : perTree.reduce((a, b) => Math.max(a, b), 0);
  const unit =
    Number.isFinite(bound) && (bound > 1e30 || (bound > 0 && bound < 1e-30))
      ? 2 ** Math.round(Math.log2(bound))
      : 1;
  const weights = unit === 1 ? targetWeights : targetWeights.map((w) => w / unit);
  const scores = g.node(
    'TreeEnsembleRegressor',
    [x],
    {
      n_targets: attr.int(trees.nOutputs),
      aggregate_function: attr.string(trees.aggregate),
      post_transform: attr.string('NONE'),
      nodes_treeids: attr.ints(treeIds),
      nodes_nodeids: attr.ints(nodeIds),
      nodes_featureids: attr.ints(featureIds),
      nodes_modes: attr.strings(modes),
      // Double thresholds and weights: with a double input, onnxruntime compares and sums in
      // double, so splits fall exactly where they fall natively.
      nodes_values_as_tensor: attr.tensor(tensor.double(values, [n])),
      nodes_truenodeids: attr.ints(trueIds),
      nodes_falsenodeids: attr.ints(falseIds),
      nodes_missing_value_tracks_true: attr.ints(missingTrue),
      target_treeids: attr.ints(targetTree),
      target_nodeids: attr.ints(targetNode),
      target_ids: attr.ints(targetIds),
      target_weights_as_tensor: attr.tensor(tensor.double(weights, [weights.length])),
    },
    { domain: ML_DOMAIN },
  );
  const asDouble = g.node('Cast', [scores], { to: attr.int(ElemType.DOUBLE) });
  if (unit === 1) return asDouble;
  return g.node('Mul', [asDouble, g.constant(tensor.double([unit], []), 'score_unit')]);
}

/** The flat arrays of a boosted forest: tree t adds its leaf value to output t % nOutputs. */
export function gbdtTrees(model: GbdtModel): FlatTrees {
  return {
    roots: model.roots,
    feature: model.feature,
    threshold: model.threshold,
    left: model.left,
    right: model.right,
    defaultLeft: model.defaultLeft,
    nOutputs: model.nOutputs,
    aggregate: 'SUM',
    leafValues: (tree, node) => [[tree % model.nOutputs, model.value[node] as number]],
  };
}

/**
 * The flat arrays of a random forest or decision tree: each leaf holds one value per output, and
 * the forest averages its trees.
 */
export function forestTrees(model: ForestModel): FlatTrees {
  const k = model.nOutputs;
  return {
    roots: model.roots,
    feature: model.feature,
    threshold: model.threshold,
    left: model.left,
    right: model.right,
    defaultLeft: model.defaultLeft,
    nOutputs: k,
    aggregate: 'AVERAGE',
    leafValues: (_tree, node) =>
      Array.from({ length: k }, (_, j) => [j, model.value[node * k + j] as number] as const),
  };
}

/** The constant tensor of class labels, typed as the labels are. */
function classTensor(classes: readonly Label[]): {
  t: ReturnType<typeof tensor.string>;
  type: ElemType;
} {
  const k = classes.length;
  if (classes.every((c) => typeof c === 'boolean')) {
    return { t: tensor.bool(classes as boolean[], [k]), type: ElemType.BOOL };
  }
  if (classes.every((c) => typeof c === 'number')) {
    const numbers = classes as number[];
    return numbers.every((c) => Number.isSafeInteger(c))
      ? { t: tensor.int64(numbers, [k]), type: ElemType.INT64 }
      : { t: tensor.double(numbers, [k]), type: ElemType.DOUBLE };
  }
  return { t: tensor.string(classes.map(String), [k]), type: ElemType.STRING };
}

/**
 * The model as ONNX bytes (ai.onnx 17, ai.onnx.ml 3), preprocessing included.
 * Throws FERRY_EXPORT_UNSUPPORTED for what has no ONNX form (an embedded recipe, an input
 * column named `predict` or `predict_proba` like an output).
 * @example
 * const bytes = exportOnnx(decodeNativeModel(artifact));
 * await fs.promises.writeFile('model.onnx', bytes);
 */
export function exportOnnx(doc: NativeModelDocument): Uint8Array {
  if (doc.recipe !== undefined) {
    const steps = servingRecipe(doc.recipe.fitted).steps.map((s) => s.step);
    throw unsupported(
      `model embeds preparation recipe '${doc.recipe.fitted.recipe}' (request-time steps: ${steps.join(', ') || 'none'}); recipe steps have no ONNX form yet: serve it with the native runtime, or train on prepared data without a recipe to export it`,
    );
  }
  const { signature, preprocess, model } = doc;
  const clash = signature.inputs.find((i) => i.name === PREDICT_OUTPUT || i.name === PROBA_OUTPUT);
  if (clash !== undefined) {
    throw unsupported(
      `input column '${clash.name}' has the name of an output of the ONNX graph (${PREDICT_OUTPUT}, ${PROBA_OUTPUT}); rename the column and train again to export the model, or serve it with the native runtime`,
    );
  }
  const g = new GraphBuilder();
  const { x, position } = addFeatures(g, preprocess);

  // raw: double [N, nOutputs]: scores (linear, gbdt) or averaged predictions (forest).
  let raw: string;
  if (model.kind === 'linear') raw = addLinear(g, x, position, linearScales(preprocess), model);
  else if (model.kind === 'forest') raw = addTreeEnsemble(g, x, forestTrees(model), position);
  else {
    const scores = addTreeEnsemble(g, x, gbdtTrees(model), position);
    const base = g.constant(tensor.double(model.baseScore, [model.nOutputs]), 'base_score');
    raw = g.node('Add', [scores, base]);
  }

  const metadata = { [SIGNATURE_METADATA]: JSON.stringify(signature) };
  if (signature.task === 'regression') {
    const shape = g.constant(tensor.int64([-1], [1]), 'flat');
    g.node('Reshape', [raw, shape], {}, { name: PREDICT_OUTPUT });
    g.output(PREDICT_OUTPUT, ElemType.DOUBLE, ['N']);
    return g.toBytes({ name: signature.target, metadata });
  }
  const classes = signature.classes ?? [];
  const k = classes.length;
  // A forest's outputs are already probabilities (of class 1 when binary); scores need a link.
  const averaged = model.kind === 'forest';
  if (model.objective === 'binary') {
    const p = averaged ? raw : g.node('Sigmoid', [raw]);
    const one = g.constant(tensor.double([1], []), 'one');
    g.node('Concat', [g.node('Sub', [one, p]), p], { axis: attr.int(1) }, { name: PROBA_OUTPUT });
  } else if (averaged) {
    g.node('Identity', [raw], {}, { name: PROBA_OUTPUT });
  } else {
    g.node('Softmax', [raw], { axis: attr.int(1) }, { name: PROBA_OUTPUT });
  }
  // ArgMax keeps the first of equal maxima, as the native predictor does.
  const best = g.node('ArgMax', [PROBA_OUTPUT], { axis: attr.int(1), keepdims: attr.int(0) });
  const labels = classTensor(classes);
  g.node(
    'Gather',
    [g.constant(labels.t, 'classes'), best],
    { axis: attr.int(0) },
    {
      name: PREDICT_OUTPUT,
    },
  );
  g.output(PREDICT_OUTPUT, labels.type, ['N']);
  g.output(PROBA_OUTPUT, ElemType.DOUBLE, ['N', k]);
  return g.toBytes({ name: signature.target, metadata });
}
