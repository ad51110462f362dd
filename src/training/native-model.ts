/**
 * The native model artifact: signature + preprocessing + algorithm, as versioned JSON bytes, and
 * the predictor that runs it. Training writes it; `src/serving/runtimes/native.ts` loads it. The
 * predictor compiles everything into typed arrays and Maps once, so a one-row prediction only
 * allocates its small input and output buffers.
 */
import type { Label, LoadedModel, ModelSignature, Prediction } from '../core/model.js';
import type { Table } from '../core/table.js';
import { FerryError } from '../errors/index.js';
import { compileForest, predictForestRaw, type GbdtModel } from './algorithms/gbdt.js';
import { compileLinear, predictLinearRaw, type LinearModel } from './algorithms/linear.js';
import { toProbabilities } from './algorithms/objective.js';
import {
  createTransformer,
  type FeatureTransform,
  type Matrix,
  type PreprocessSpec,
  type Transformer,
} from './preprocess.js';

export const NATIVE_FORMAT = 'ferry-native';
/** Bumped on any change a previous predictor could not read. */
export const NATIVE_FORMAT_VERSION = 1;

export type AlgorithmModel = LinearModel | GbdtModel;

export interface NativeModelDocument {
  readonly format: typeof NATIVE_FORMAT;
  readonly version: typeof NATIVE_FORMAT_VERSION;
  readonly signature: ModelSignature;
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
  if (v.kind === 'gbdt') {
    numberArray(v.baseScore, 'baseScore', outputs);
    const feature = numberArray(v.feature, 'feature');
    const nodes = feature.length;
    const left = numberArray(v.left, 'left', nodes);
    const right = numberArray(v.right, 'right', nodes);
    numberArray(v.threshold, 'threshold', nodes);
    numberArray(v.value, 'value', nodes);
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
    return v as unknown as GbdtModel;
  }
  throw invalid(`unknown algorithm '${String(v.kind)}'`);
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
  if (parsed.version !== NATIVE_FORMAT_VERSION) {
    throw invalid(
      `format version ${String(parsed.version)} is not supported (this Ferry reads version ${NATIVE_FORMAT_VERSION})`,
    );
  }
  const signature = checkSignature(parsed.signature);
  const preprocess = checkPreprocess(parsed.preprocess, signature.inputs.length);
  preprocess.transforms.forEach((t: FeatureTransform, i) => {
    if (t.column !== signature.inputs[i]?.name)
      throw invalid('preprocess columns differ from inputs');
  });
  const classes = signature.classes?.length ?? 0;
  const outputs = signature.task === 'regression' ? 1 : classes === 2 ? 1 : classes;
  const model = checkModel(parsed.model, preprocess.width, outputs);
  const expected =
    signature.task === 'regression' ? 'regression' : classes === 2 ? 'binary' : 'multiclass';
  if (model.objective !== expected)
    throw invalid(`objective '${model.objective}' does not fit the task`);
  return parsed as unknown as NativeModelDocument;
}

/** Runs a native model document in memory. */
export class NativePredictor implements LoadedModel {
  readonly signature: ModelSignature;
  readonly document: NativeModelDocument;
  private readonly transformer: Transformer;
  private readonly raw: (x: Matrix) => Float64Array;
  private readonly classes: readonly Label[];

  /**
   * @example const predictor = new NativePredictor(decodeNativeModel(bytes)); predictor.predict(table);
   */
  constructor(doc: NativeModelDocument) {
    this.document = doc;
    this.signature = doc.signature;
    this.transformer = createTransformer(doc.preprocess);
    this.classes = doc.signature.classes ?? [];
    if (doc.model.kind === 'linear') {
      const compiled = compileLinear(doc.model);
      this.raw = (x) => predictLinearRaw(compiled, x);
    } else {
      const compiled = compileForest(doc.model);
      this.raw = (x) => predictForestRaw(compiled, x);
    }
  }

  predict(input: Table): Prediction {
    const x = this.transformer.transform(input);
    const raw = this.raw(x);
    const rows = x.rows;
    if (this.signature.task === 'regression') return { predict: Array.from(raw) };
    const k = this.classes.length;
    const objective = this.document.model.objective;
    const proba = toProbabilities(objective, raw, rows, k);
    const predict: Label[] = new Array<Label>(rows);
    for (let i = 0; i < rows; i++) {
      let best = 0;
      for (let c = 1; c < k; c++)
        if ((proba[i * k + c] as number) > (proba[i * k + best] as number)) best = c;
      predict[i] = this.classes[best] as Label;
    }
    return { predict, proba };
  }
}
