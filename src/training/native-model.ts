/**
 * The native model artifact: signature + preprocessing + algorithm, as versioned JSON bytes, and
 * the predictor that runs it. Training writes it; `src/serving/runtimes/native.ts` loads it. The
 * predictor compiles everything into typed arrays and Maps once, so a one-row prediction only
 * allocates its small input and output buffers.
 *
 * Version 2 may embed the fitted preparation recipe the model was trained on (`recipe`): the
 * signature's inputs are then the raw columns callers send (the recipe's source columns that
 * reach a feature, and the columns its merges add), and the predictor runs the recipe's
 * request-time steps (`applyToRows`) before its own preprocessing, so serving applies exactly
 * what training applied. Steps that remove rows (filter, drop_missing) chose the training rows
 * and do not run at request time: every row of a request gets a prediction (see
 * `recipe-model.ts` for why). Version 1 documents, and version 2 ones without a recipe, load as
 * they always did.
 */
import type { Label, LoadedModel, ModelInput, ModelSignature, Prediction } from '../core/model.js';
import { tableFromRows, tableToRows, type Table } from '../core/table.js';
import { parseFittedRecipe, type FittedRecipe } from '../data/prep/fitted.js';
import { applyToRows } from '../data/prep/row.js';
import { FerryError, isFerryError } from '../errors/index.js';
import {
  compileForestModel,
  forestProbabilities,
  predictForestMeans,
  type ForestModel,
} from './algorithms/forest.js';
import { compileForest, predictForestRaw, type GbdtModel } from './algorithms/gbdt.js';
import { compileLinear, predictLinearRaw, type LinearModel } from './algorithms/linear.js';
import { toProbabilities } from './algorithms/objective.js';
import { recipeInputs, recipeSha256, servingRecipe } from './recipe-model.js';
import {
  createTransformer,
  type FeatureTransform,
  type Matrix,
  type PreprocessSpec,
} from './preprocess.js';

export const NATIVE_FORMAT = 'ferry-native';
/** Bumped on any change a previous predictor could not read; 2 added `recipe`. */
export const NATIVE_FORMAT_VERSION = 2;
/** The versions this predictor reads. */
export const NATIVE_FORMAT_VERSIONS: readonly NativeFormatVersion[] = [1, 2];
export type NativeFormatVersion = 1 | 2;

/**
 * The fitted algorithm. A kind this predictor does not know is rejected on load with
 * FERRY_MODEL_INVALID ("unknown algorithm"), so a new kind needs no new format version: an
 * older Ferry names what it cannot run instead of running it wrongly.
 */
export type AlgorithmModel = LinearModel | GbdtModel | ForestModel;

/** The preparation a model runs on its raw inputs before its preprocessing (version 2). */
export interface EmbeddedRecipe {
  /** The fitted recipe, as training fitted it. */
  readonly fitted: FittedRecipe;
  /** `recipeSha256(fitted)`, as recorded in the model's lineage; checked on load. */
  readonly sha256: string;
  /** The prepared columns the preprocessing reads, in its order (the model's features). */
  readonly features: readonly ModelInput[];
}

export interface NativeModelDocument {
  readonly format: typeof NATIVE_FORMAT;
  readonly version: NativeFormatVersion;
  /** With a recipe, `inputs` are the raw columns; the features are `recipe.features`. */
  readonly signature: ModelSignature;
  readonly recipe?: EmbeddedRecipe;
  readonly preprocess: PreprocessSpec;
  readonly model: AlgorithmModel;
}

/**
 * Serialises a model document to UTF-8 JSON bytes.
 * @example const bytes = encodeNativeModel({ format: NATIVE_FORMAT, version: NATIVE_FORMAT_VERSION, signature, preprocess, model });
 */
export function encodeNativeModel(doc: NativeModelDocument): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(doc));
}

function invalid(reason: string, cause?: unknown): FerryError {
  return new FerryError('FERRY_MODEL_INVALID', `native model artifact is invalid: ${reason}`, {
    cause,
  });
}

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function numberArray(v: unknown, name: string, length?: number): number[] {
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'number' && Number.isFinite(x))) {
    throw invalid(`'${name}' must be an array of finite numbers`);
  }
  if (length !== undefined && v.length !== length) {
    throw invalid(`'${name}' has ${v.length} entries, expected ${length}`);
  }
  return v as number[];
}

function checkSignature(v: unknown): ModelSignature {
  if (!isObject(v)) throw invalid('signature missing');
  if (v.task !== 'classification' && v.task !== 'regression') throw invalid('unknown task');
  if (typeof v.target !== 'string') throw invalid('signature target missing');
  if (
    !Array.isArray(v.inputs) ||
    !v.inputs.every((i) => isObject(i) && typeof i.name === 'string' && typeof i.type === 'string')
  ) {
    throw invalid('signature inputs malformed');
  }
  if (v.task === 'classification') {
    const classes = v.classes;
    if (!Array.isArray(classes) || classes.length < 2 || !classes.every(isLabel)) {
      throw invalid('a classifier needs 2 or more class labels');
    }
  }
  return v as unknown as ModelSignature;
}

function isLabel(v: unknown): v is Label {
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';
}

function checkPreprocess(v: unknown, inputs: number): PreprocessSpec {
  if (!isObject(v) || (v.mode !== 'linear' && v.mode !== 'tree') || !Array.isArray(v.transforms)) {
    throw invalid('preprocess spec malformed');
  }
  if (v.transforms.length !== inputs) throw invalid('preprocess does not match the inputs');
  let width = 0;
  for (const t of v.transforms as unknown[]) {
    if (!isObject(t) || typeof t.column !== 'string') throw invalid('preprocess step malformed');
    if (t.kind === 'numeric') {
      numberArray([t.median, t.center, t.scale], `numeric step of '${t.column}'`);
      width += 1;
    } else if (t.kind === 'onehot' || t.kind === 'ordinal') {
      if (!Array.isArray(t.categories) || !t.categories.every((c) => typeof c === 'string')) {
        throw invalid(`categories of '${t.column}' malformed`);
      }
      if (t.kind === 'ordinal' && t.otherCode !== null && typeof t.otherCode !== 'number') {
        throw invalid(`otherCode of '${t.column}' malformed`);
      }
      width += t.kind === 'onehot' ? t.categories.length + 1 : 1;
    } else throw invalid(`unknown preprocess step kind '${String(t.kind)}'`);
  }
  if (v.width !== width) throw invalid('preprocess width does not match its steps');
  return v as unknown as PreprocessSpec;
}

function checkModel(v: unknown, width: number, outputs: number): AlgorithmModel {
  if (!isObject(v)) throw invalid('model missing');
  if (v.nFeatures !== width) throw invalid('model width does not match the preprocessing');
  if (v.nOutputs !== outputs) throw invalid('model outputs do not match the signature');
  if (v.kind === 'linear') {
    numberArray(v.weights, 'weights', outputs * (width + 1));
    return v as unknown as LinearModel;
  }
  if (v.kind === 'gbdt' || v.kind === 'forest') {
    if (v.kind === 'gbdt') numberArray(v.baseScore, 'baseScore', outputs);
    const feature = numberArray(v.feature, 'feature');
    const nodes = feature.length;
    const left = numberArray(v.left, 'left', nodes);
    const right = numberArray(v.right, 'right', nodes);
    numberArray(v.threshold, 'threshold', nodes);
    // A forest's node holds one value per output, a boosted tree's node one.
    numberArray(v.value, 'value', v.kind === 'forest' ? nodes * outputs : nodes);
    numberArray(v.defaultLeft, 'defaultLeft', nodes);
    const roots = numberArray(v.roots, 'roots');
    if (roots.some((r) => !Number.isInteger(r) || r < 0 || r >= nodes)) throw invalid('bad root');
    for (let i = 0; i < nodes; i++) {
      const f = feature[i] as number;
      if (f < 0) continue;
      // Children after parents: walking a tree always ends, whatever the bytes say.
      const l = left[i] as number;
      const r = right[i] as number;
      if (!Number.isInteger(f) || f >= width || !(l > i && l < nodes && r > i && r < nodes)) {
        throw invalid(`tree node ${i} is malformed`);
      }
    }
    return v.kind === 'forest' ? (v as unknown as ForestModel) : (v as unknown as GbdtModel);
  }
  throw invalid(
    `unknown algorithm '${String(v.kind)}' (this Ferry runs linear, gbdt and forest models; a newer Ferry may have written it)`,
  );
}

/**
 * A model trained on a recipe's prepared rows (a document whose signature lists prepared
 * columns), turned into one that takes the recipe's raw columns and embeds the fitted recipe.
 * Throws FERRY_DATA_EMPTY when no raw column reaches the model.
 * @example const doc = embedRecipe(decodeNativeModel(result.artifact), report.fitted);
 */
export function embedRecipe(doc: NativeModelDocument, fitted: FittedRecipe): NativeModelDocument {
  const features = doc.signature.inputs;
  const { inputs } = recipeInputs(
    fitted,
    features.map((f) => f.name),
    doc.signature.target,
  );
  if (inputs.length === 0) {
    throw new FerryError(
      'FERRY_DATA_EMPTY',
      `no column of recipe '${fitted.recipe}' reaches the model's features (${features.map((f) => f.name).join(', ')}); keep at least one source column`,
    );
  }
  return {
    format: NATIVE_FORMAT,
    version: 2,
    signature: { ...doc.signature, inputs },
    recipe: { fitted, sha256: recipeSha256(fitted), features },
    preprocess: doc.preprocess,
    model: doc.model,
  };
}

function checkInputs(v: unknown, name: string): ModelInput[] {
  if (
    !Array.isArray(v) ||
    !v.every((i) => isObject(i) && typeof i.name === 'string' && typeof i.type === 'string')
  ) {
    throw invalid(`${name} malformed`);
  }
  return v as ModelInput[];
}

function checkRecipe(v: unknown, signature: ModelSignature): EmbeddedRecipe {
  if (!isObject(v)) throw invalid('recipe malformed');
  let fitted: FittedRecipe;
  try {
    fitted = parseFittedRecipe(v.fitted, 'the embedded recipe');
  } catch (cause) {
    throw invalid(isFerryError(cause) ? cause.message : 'embedded recipe malformed', cause);
  }
  if (v.sha256 !== recipeSha256(fitted)) {
    throw invalid(`the embedded recipe does not match its SHA-256 (${String(v.sha256)})`);
  }
  const features = checkInputs(v.features, 'recipe features');
  const prepared = new Set(fitted.schema.map((c) => c.name));
  const missing = features.find((f) => !prepared.has(f.name));
  if (missing) throw invalid(`feature '${missing.name}' is not an output of the recipe`);
  // Callers may send only what the recipe reads: its source's columns and merged ones.
  const raw = new Set(fitted.source.schema.map((c) => c.name));
  for (const step of fitted.steps) {
    if (step.step === 'merge') for (const c of step.columns) raw.add(c.to);
  }
  const unread = signature.inputs.find((i) => !raw.has(i.name));
  if (unread) throw invalid(`input '${unread.name}' is not a column the recipe reads`);
  return { fitted, sha256: v.sha256, features };
}

/**
 * Parses and validates artifact bytes; throws FERRY_MODEL_INVALID on anything unexpected.
 * @example const doc = decodeNativeModel(await fs.promises.readFile('model.json'));
 */
export function decodeNativeModel(bytes: Uint8Array): NativeModelDocument {
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (cause) {
    throw invalid('not UTF-8 JSON', cause);
  }
  if (!isObject(parsed) || parsed.format !== NATIVE_FORMAT) {
    throw invalid(`not a '${NATIVE_FORMAT}' document`);
  }
  const version = parsed.version;
  if (!NATIVE_FORMAT_VERSIONS.includes(version as NativeFormatVersion)) {
    throw invalid(
      `format version ${String(version)} is not supported (this Ferry reads versions ${NATIVE_FORMAT_VERSIONS.join(' and ')})`,
    );
  }
  const signature = checkSignature(parsed.signature);
  let recipe: EmbeddedRecipe | undefined;
  if (parsed.recipe !== undefined) {
    if (version === 1) throw invalid('a version 1 document cannot embed a recipe');
    recipe = checkRecipe(parsed.recipe, signature);
  }
  const features = recipe?.features ?? signature.inputs;
  const preprocess = checkPreprocess(parsed.preprocess, features.length);
  preprocess.transforms.forEach((t: FeatureTransform, i) => {
    if (t.column !== features[i]?.name) {
      throw invalid(`preprocess columns differ from ${recipe ? 'the recipe features' : 'inputs'}`);
    }
  });
  const classes = signature.classes?.length ?? 0;
  const outputs = signature.task === 'regression' ? 1 : classes === 2 ? 1 : classes;
  const model = checkModel(parsed.model, preprocess.width, outputs);
  const expected =
    signature.task === 'regression' ? 'regression' : classes === 2 ? 'binary' : 'multiclass';
  if (model.objective !== expected)
    throw invalid(`objective '${model.objective}' does not fit the task`);
  const doc = parsed as unknown as NativeModelDocument;
  return recipe === undefined ? doc : { ...doc, recipe };
}

/**
 * The recipe's request-time steps as a function of a raw input table to the prepared table the
 * preprocessing reads: one prepared row per input row, in order.
 */
function recipePreparer(
  signature: ModelSignature,
  recipe: EmbeddedRecipe,
): (input: Table) => Table {
  const serving = servingRecipe(recipe.fitted);
  const schema = recipe.fitted.schema;
  return (input) => {
    const given = new Set(input.columns.map((c) => c.name));
    for (const i of signature.inputs) {
      if (i.optional !== true && !given.has(i.name)) {
        throw new FerryError(
          'FERRY_INPUT_MISSING',
          `input column '${i.name}' is missing; columns given: ${[...given].join(', ') || '(none)'}`,
          { details: { column: i.name } },
        );
      }
    }
    const { rows, removed } = applyToRows(serving, tableToRows(input));
    if (removed > 0) {
      throw new FerryError(
        'FERRY_INTERNAL',
        `recipe '${recipe.fitted.recipe}' removed ${removed} request row(s); request-time steps must keep every row`,
      );
    }
    return tableFromRows(schema, rows);
  };
}

/**
 * Runs a native model document in memory. With an embedded recipe it takes raw rows, prepares
 * them with the recipe, and predicts with `inner`, the model of prepared rows.
 */
export class NativePredictor implements LoadedModel {
  readonly signature: ModelSignature;
  readonly document: NativeModelDocument;
  /** The predictor of prepared rows (the features): itself when the model has no recipe. */
  readonly inner: NativePredictor;
  private readonly run: (input: Table) => Prediction;
  private readonly preparer: ((input: Table) => Table) | null;

  /**
   * @example const predictor = new NativePredictor(decodeNativeModel(bytes)); predictor.predict(table);
   */
  constructor(doc: NativeModelDocument) {
    this.document = doc;
    this.signature = doc.signature;
    if (doc.recipe !== undefined) {
      const inner = new NativePredictor({
        format: doc.format,
        version: doc.version,
        signature: { ...doc.signature, inputs: doc.recipe.features },
        preprocess: doc.preprocess,
        model: doc.model,
      });
      const prepare = recipePreparer(doc.signature, doc.recipe);
      this.inner = inner;
      this.preparer = prepare;
      this.run = (input) => inner.predict(prepare(input));
      return;
    }
    this.inner = this;
    this.preparer = null;
    const transformer = createTransformer(doc.preprocess);
    const classes = doc.signature.classes ?? [];
    let raw: (x: Matrix) => Float64Array;
    // Scores go through the objective's link; a forest's averaged outputs are probabilities.
    let proba = toProbabilities;
    if (doc.model.kind === 'linear') {
      const compiled = compileLinear(doc.model);
      raw = (x) => predictLinearRaw(compiled, x);
    } else if (doc.model.kind === 'forest') {
      const compiled = compileForestModel(doc.model);
      raw = (x) => predictForestMeans(compiled, x);
      proba = forestProbabilities;
    } else {
      const compiled = compileForest(doc.model);
      raw = (x) => predictForestRaw(compiled, x);
    }
    this.run = (input) => predictMatrix(doc, transformer.transform(input), raw, proba, classes);
  }

  predict(input: Table): Prediction {
    return this.run(input);
  }

  /**
   * The rows `inner` reads for these inputs: the embedded recipe's output (one row per input
   * row), or the input itself when the model has no recipe.
   * @example const features = predictor.prepare(requestTable); // what the model saw, for explanations and logs
   */
  prepare(input: Table): Table {
    return this.preparer === null ? input : this.preparer(input);
  }
}

function predictMatrix(
  doc: NativeModelDocument,
  x: Matrix,
  rawOf: (x: Matrix) => Float64Array,
  probabilities: typeof toProbabilities,
  classes: readonly Label[],
): Prediction {
  const raw = rawOf(x);
  const rows = x.rows;
  if (doc.signature.task === 'regression') return { predict: Array.from(raw) };
  const k = classes.length;
  const proba = probabilities(doc.model.objective, raw, rows, k);
  const predict: Label[] = new Array<Label>(rows);
  for (let i = 0; i < rows; i++) {
    let best = 0;
    for (let c = 1; c < k; c++)
      if ((proba[i * k + c] as number) > (proba[i * k + best] as number)) best = c;
    predict[i] = classes[best] as Label;
  }
  return { predict, proba };
}
