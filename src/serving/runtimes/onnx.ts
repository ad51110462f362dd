/**
 * The ONNX model runtime: runs any ONNX model with onnxruntime-node (CPU), answering `predict()`
 * exactly like the native runtime (labels or values, N x K probabilities in the order of
 * `signature.classes`).
 *
 * The signature comes from the model's `ferry.signature` metadata (Ferry's exports and imports
 * write it) or is inferred from the graph. Inputs are read from the graph's input types: a graph
 * input named after a signature input gets that column as `[N,1]` (or `[N]`) of the input's
 * element type; a single graph input named after none of them gets all signature inputs stacked
 * into `[N,F]`, the usual shape of models exported from scikit-learn. Missing values become NaN
 * in float inputs and the empty string in string inputs.
 *
 * Outputs: `predict` and `predict_proba` when present (Ferry's names); otherwise, for a foreign
 * model, the first label-typed output and the first float output. Non-tensor outputs (such as
 * scikit-learn's ZipMap) are never fetched.
 */
import * as ort from 'onnxruntime-node';
import type {
  Label,
  LoadedModel,
  ModelRuntime,
  ModelSignature,
  Prediction,
} from '../../core/model.js';
import type { Column, Table } from '../../core/table.js';
import { FerryError } from '../../errors/index.js';
import { PREDICT_OUTPUT, PROBA_OUTPUT } from '../../onnx/export.js';
import {
  decodeOnnx,
  ElemType,
  graphInterface,
  type ModelProto,
  type TensorInfo,
} from '../../onnx/proto.js';
import { readSignature } from '../../onnx/signature.js';
import { toCategory, toNumber } from '../../training/preprocess.js';

/**
 * One thread per run: a serving process runs many small requests at once (each `run` already
 * takes a libuv worker), where onnxruntime's own thread pool only adds hand-offs and contention.
 */
const SESSION_OPTIONS: ort.InferenceSession.SessionOptions = {
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
};

function invalid(reason: string, cause?: unknown): FerryError {
  return new FerryError('FERRY_MODEL_INVALID', `ONNX model is invalid: ${reason}`, { cause });
}

function column(table: Table, name: string, position: number): Column {
  const at = table.columns[position];
  if (at !== undefined && at.name === name) return at;
  const found = table.columns.find((c) => c.name === name);
  if (found === undefined) {
    throw new FerryError(
      'FERRY_INPUT_MISSING',
      `input column '${name}' is missing; columns given: ${table.columns.map((c) => c.name).join(', ') || '(none)'}`,
      { details: { column: name } },
    );
  }
  return found;
}

type Cells = readonly (readonly Column['values'][number][])[];

/** Writes `columns` (F columns of N cells) row-major into a tensor of `elemType`. */
function toTensor(elemType: number, columns: Cells, rows: number, dims: number[]): ort.Tensor {
  const f = columns.length;
  const size = rows * f;
  const at = (i: number): Column['values'][number] => columns[i % f]?.[Math.floor(i / f)] ?? null;
  switch (elemType) {
    case ElemType.FLOAT:
      return new ort.Tensor(
        'float32',
        Float32Array.from({ length: size }, (_, i) => toNumber(at(i))),
        dims,
      );
    case ElemType.DOUBLE:
      return new ort.Tensor(
        'float64',
        Float64Array.from({ length: size }, (_, i) => toNumber(at(i))),
        dims,
      );
    case ElemType.STRING:
      return new ort.Tensor(
        'string',
        Array.from({ length: size }, (_, i) => toCategory(at(i)) ?? ''),
        dims,
      );
    case ElemType.BOOL:
      return new ort.Tensor(
        'bool',
        Uint8Array.from({ length: size }, (_, i) => (toNumber(at(i)) ? 1 : 0)),
        dims,
      );
    case ElemType.INT64:
    case ElemType.INT32: {
      const ints = Array.from({ length: size }, (_, i) => {
        const v = toNumber(at(i));
        if (!Number.isFinite(v)) {
          throw new FerryError(
            'FERRY_INPUT_DATATYPE',
            `an integer input of the model is missing or not a number in row ${Math.floor(i / f)}`,
          );
        }
        return Math.trunc(v);
      });
      return elemType === ElemType.INT64
        ? new ort.Tensor(
            'int64',
            BigInt64Array.from(ints, (v) => BigInt(v)),
            dims,
          )
        : new ort.Tensor('int32', Int32Array.from(ints), dims);
    }
    default:
      throw invalid(`an input has element type ${elemType}, which Ferry cannot feed`);
  }
}

/** How one graph input is filled from a request table. */
type Feeder = (table: Table) => ort.Tensor;

function feeders(signature: ModelSignature, inputs: readonly TensorInfo[]): Map<string, Feeder> {
  const positions = new Map(signature.inputs.map((i, p) => [i.name, p] as const));
  const result = new Map<string, Feeder>();
  for (const input of inputs) {
    const position = positions.get(input.name);
    const rank = input.dims.length;
    if (position !== undefined) {
      result.set(input.name, (table) =>
        toTensor(
          input.elemType,
          [column(table, input.name, position).values],
          table.rowCount,
          rank === 1 ? [table.rowCount] : [table.rowCount, 1],
        ),
      );
      continue;
    }
    const width = input.dims[1];
    if (
      inputs.length === 1 &&
      rank === 2 &&
      (width === null || width === signature.inputs.length)
    ) {
      const names = signature.inputs.map((i) => i.name);
      result.set(input.name, (table) =>
        toTensor(
          input.elemType,
          names.map((n, p) => column(table, n, p).values),
          table.rowCount,
          [table.rowCount, names.length],
        ),
      );
      continue;
    }
    throw invalid(
      `graph input '${input.name}' (shape [${input.dims.map((d) => d ?? '?').join(', ')}]) matches no signature input (${[...positions.keys()].join(', ')}); import it with a signature whose inputs are named after the graph inputs, or whose inputs fill its single [N,F] input`,
    );
  }
  return result;
}

const FLOATS: readonly number[] = [ElemType.FLOAT, ElemType.DOUBLE];
const LABELS: readonly number[] = [ElemType.STRING, ElemType.INT64, ElemType.INT32, ElemType.BOOL];

function pickOutputs(
  signature: ModelSignature,
  outputs: readonly TensorInfo[],
): { label?: string; proba?: string; value?: string } {
  const named = (n: string): string | undefined => outputs.find((o) => o.name === n)?.name;
  if (signature.task === 'regression') {
    const value = named(PREDICT_OUTPUT) ?? outputs.find((o) => FLOATS.includes(o.elemType))?.name;
    if (value === undefined) throw invalid('a regressor needs a float output');
    return { value };
  }
  const label = named(PREDICT_OUTPUT) ?? outputs.find((o) => LABELS.includes(o.elemType))?.name;
  const proba =
    named(PROBA_OUTPUT) ??
    outputs.find((o) => o.name !== label && FLOATS.includes(o.elemType) && o.dims.length === 2)
      ?.name;
  if (proba === undefined && label === undefined) {
    throw invalid('a classifier needs a label output or an [N,K] probability output');
  }
  return { ...(label === undefined ? {} : { label }), ...(proba === undefined ? {} : { proba }) };
}

function toLabel(value: unknown, byText: ReadonlyMap<string, Label>): Label {
  const v = typeof value === 'bigint' ? Number(value) : (value as Label);
  return byText.get(String(v)) ?? v;
}

/** A loaded ONNX model. */
export class OnnxModel implements LoadedModel {
  private readonly feeds: Map<string, Feeder>;
  private readonly outputs: { label?: string; proba?: string; value?: string };
  private readonly fetches: string[];
  private readonly byText: ReadonlyMap<string, Label>;

  private constructor(
    private readonly session: ort.InferenceSession,
    readonly signature: ModelSignature,
    model: ModelProto,
  ) {
    const { inputs, outputs } = graphInterface(model);
    this.feeds = feeders(signature, inputs);
    this.outputs = pickOutputs(signature, outputs);
    this.fetches = [this.outputs.value, this.outputs.label, this.outputs.proba].filter(
      (n): n is string => n !== undefined,
    );
    const classes = signature.classes ?? [];
    const byText = new Map(classes.map((c) => [String(c), c] as const));
    // onnxruntime-node hands boolean tensors over as bytes: 0 and 1 stand for false and true.
    if (classes.length > 0 && classes.every((c) => typeof c === 'boolean')) {
      byText.set('0', false).set('1', true);
    }
    this.byText = byText;
  }

  /**
   * @example const model = await OnnxModel.create(bytes); const { predict, proba } = await model.predict(table);
   */
  static async create(bytes: Uint8Array, signature?: ModelSignature): Promise<OnnxModel> {
    let model: ModelProto;
    try {
      model = decodeOnnx(bytes);
    } catch (cause) {
      throw invalid('the bytes are not an ONNX ModelProto', cause);
    }
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(bytes, SESSION_OPTIONS);
    } catch (cause) {
      throw invalid(
        `onnxruntime refused it: ${cause instanceof Error ? cause.message : String(cause)}`,
        cause,
      );
    }
    return new OnnxModel(session, signature ?? readSignature(model), model);
  }

  /** Frees the native session; the model cannot predict afterwards. */
  release(): Promise<void> {
    return this.session.release();
  }

  async predict(input: Table): Promise<Prediction> {
    const rows = input.rowCount;
    const feeds: Record<string, ort.Tensor> = {};
    for (const [name, feed] of this.feeds) feeds[name] = feed(input);
    const result = await this.session.run(feeds, this.fetches);
    const { value, label, proba } = this.outputs;
    if (value !== undefined) {
      const data = result[value]?.data as Float32Array | Float64Array;
      const stride = rows === 0 ? 1 : data.length / rows;
      return { predict: Array.from({ length: rows }, (_, i) => data[i * stride] as number) };
    }
    const classes = this.signature.classes ?? [];
    const k = classes.length;
    let probabilities: Float64Array | undefined;
    if (proba !== undefined) {
      const data = result[proba]?.data as Float32Array | Float64Array;
      if (data.length !== rows * k) {
        throw new FerryError(
          'FERRY_INTERNAL',
          `ONNX output '${proba}' has ${data.length} values for ${rows} rows of ${k} classes; fix the signature's classes`,
        );
      }
      probabilities = data instanceof Float64Array ? data : Float64Array.from(data);
    }
    let predict: Label[];
    if (label !== undefined) {
      const data = result[label]?.data as ArrayLike<unknown>;
      predict = Array.from({ length: rows }, (_, i) => toLabel(data[i], this.byText));
    } else {
      const p = probabilities as Float64Array;
      predict = Array.from({ length: rows }, (_, i) => {
        let best = 0;
        for (let c = 1; c < k; c++)
          if ((p[i * k + c] as number) > (p[i * k + best] as number)) best = c;
        return classes[best] as Label;
      });
    }
    return probabilities === undefined ? { predict } : { predict, proba: probabilities };
  }
}

/**
 * @example
 * const model = await onnxRuntime.load(onnxBytes);
 * const { predict, proba } = await model.predict(table);
 */
export const onnxRuntime: ModelRuntime = {
  name: 'onnx',
  load(artifact: Uint8Array): Promise<LoadedModel> {
    return OnnxModel.create(artifact);
  },
};
