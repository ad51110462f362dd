/**
 * A small builder of ONNX models on top of `onnx-proto` (the protobuf classes of onnx.proto):
 * initialisers, nodes with typed attributes, graph inputs and outputs, and the model bytes.
 * `export.ts` writes Ferry's models with it; tests build foreign-style graphs with it too.
 * Also reads a model back (`decodeOnnx`) and the typed view of its inputs and outputs.
 */
import onnxProto from 'onnx-proto';
import type { onnx as Onnx } from 'onnx-proto';

const { onnx } = onnxProto;

export type ModelProto = Onnx.ModelProto;
export type ValueInfo = Onnx.IValueInfoProto;

/** The tensor element types Ferry writes or reads (TensorProto.DataType). */
export const ElemType = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  INT32: 6,
  INT64: 7,
  STRING: 8,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
} as const;
export type ElemType = (typeof ElemType)[keyof typeof ElemType];

/** The operator sets Ferry's exports use; onnxruntime 1.17+ runs them. */
export const OPSET_ONNX = 17;
export const OPSET_ML = 3;
export const ML_DOMAIN = 'ai.onnx.ml';
/** IR version 8 (ONNX 1.10), the newest onnx-proto describes. */
const IR_VERSION = 8;

const AttrType = onnx.AttributeProto.AttributeType;
const utf8 = new TextEncoder();

/** An attribute value, tagged with its ONNX type (a JS number alone cannot say int or float). */
export type Attribute = Omit<Onnx.IAttributeProto, 'name'>;

export const attr = {
  int: (i: number): Attribute => ({ type: AttrType.INT, i }),
  float: (f: number): Attribute => ({ type: AttrType.FLOAT, f }),
  string: (s: string): Attribute => ({ type: AttrType.STRING, s: utf8.encode(s) }),
  ints: (ints: readonly number[]): Attribute => ({ type: AttrType.INTS, ints: [...ints] }),
  floats: (floats: readonly number[]): Attribute => ({
    type: AttrType.FLOATS,
    floats: [...floats],
  }),
  strings: (strings: readonly string[]): Attribute => ({
    type: AttrType.STRINGS,
    strings: strings.map((s) => utf8.encode(s)),
  }),
  tensor: (t: Onnx.ITensorProto): Attribute => ({ type: AttrType.TENSOR, t }),
};

/** A dimension: a fixed size, or a symbolic one such as the batch size `N`. */
export type Dim = number | string;

/** Tensor constants, usable as initialisers or tensor attributes. */
export const tensor = {
  double: (values: readonly number[], dims: readonly number[]): Onnx.ITensorProto => ({
    dataType: ElemType.DOUBLE,
    dims: [...dims],
    doubleData: [...values],
  }),
  float: (values: readonly number[], dims: readonly number[]): Onnx.ITensorProto => ({
    dataType: ElemType.FLOAT,
    dims: [...dims],
    floatData: [...values],
  }),
  int64: (values: readonly number[], dims: readonly number[]): Onnx.ITensorProto => ({
    dataType: ElemType.INT64,
    dims: [...dims],
    int64Data: [...values],
  }),
  bool: (values: readonly boolean[], dims: readonly number[]): Onnx.ITensorProto => ({
    dataType: ElemType.BOOL,
    dims: [...dims],
    int32Data: values.map((v) => (v ? 1 : 0)),
  }),
  string: (values: readonly string[], dims: readonly number[]): Onnx.ITensorProto => ({
    dataType: ElemType.STRING,
    dims: [...dims],
    stringData: values.map((v) => utf8.encode(v)),
  }),
};

function valueInfo(name: string, elemType: ElemType, dims: readonly Dim[]): ValueInfo {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: {
          dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })),
        },
      },
    },
  };
}

/**
 * Accumulates one graph. Every node has one output unless told otherwise; names are generated
 * and unique, also against the graph inputs declared so far (inputs are named after the user's
 * columns, which may well be called `cast_1`): declare the inputs first.
 * @example
 * const g = new GraphBuilder();
 * g.input('x', ElemType.FLOAT, ['N', 1]);
 * g.output(g.node('Identity', ['x'], {}, { name: 'y' }), ElemType.FLOAT, ['N', 1]);
 * const bytes = g.toBytes({});
 */
export class GraphBuilder {
  private readonly nodes: Onnx.INodeProto[] = [];
  private readonly initializers: Onnx.ITensorProto[] = [];
  private readonly inputs: ValueInfo[] = [];
  private readonly outputs: ValueInfo[] = [];
  private counter = 0;
  /** Input names, which generated names must not take. */
  private readonly taken = new Set<string>();

  /** A new unique value name starting with `prefix`. */
  fresh(prefix: string): string {
    let name: string;
    do {
      this.counter += 1;
      name = `${prefix}_${this.counter}`;
    } while (this.taken.has(name));
    return name;
  }

  /**
   * Adds a node and returns the name of its (first) output. `name` names that output; `outputs`
   * names every output of a node that has several.
   */
  node(
    op: string,
    inputs: readonly string[],
    attributes: Readonly<Record<string, Attribute>> = {},
    options: {
      readonly name?: string;
      readonly outputs?: readonly string[];
      readonly domain?: string;
    } = {},
  ): string {
    const outputs = options.outputs ?? [options.name ?? this.fresh(op.toLowerCase())];
    const output = outputs[0] as string;
    this.nodes.push({
      opType: op,
      domain: options.domain ?? '',
      name: this.fresh(`n_${op}`),
      input: [...inputs],
      output: [...outputs],
      attribute: Object.entries(attributes).map(([name, a]) => ({ name, ...a })),
    });
    return output;
  }

  /** Adds an initialiser (a constant input) and returns its name. */
  constant(t: Onnx.ITensorProto, prefix = 'const'): string {
    const name = this.fresh(prefix);
    this.initializers.push({ ...t, name });
    return name;
  }

  input(name: string, elemType: ElemType, dims: readonly Dim[]): string {
    this.taken.add(name);
    this.inputs.push(valueInfo(name, elemType, dims));
    return name;
  }

  output(name: string, elemType: ElemType, dims: readonly Dim[]): void {
    this.outputs.push(valueInfo(name, elemType, dims));
  }

  /** The serialised ModelProto. */
  toBytes(options: {
    readonly name?: string;
    readonly docString?: string;
    readonly metadata?: Readonly<Record<string, string>>;
  }): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: IR_VERSION,
      producerName: 'ferry',
      opsetImport: [
        { domain: '', version: OPSET_ONNX },
        { domain: ML_DOMAIN, version: OPSET_ML },
      ],
      docString: options.docString ?? '',
      metadataProps: Object.entries(options.metadata ?? {}).map(([key, value]) => ({
        key,
        value,
      })),
      graph: {
        name: options.name ?? 'ferry',
        node: this.nodes,
        initializer: this.initializers,
        input: this.inputs,
        output: this.outputs,
      },
    });
    return onnx.ModelProto.encode(model).finish();
  }
}

/** Parses ONNX bytes; throws what protobufjs throws on bytes that are not a ModelProto. */
export function decodeOnnx(bytes: Uint8Array): ModelProto {
  return onnx.ModelProto.decode(bytes);
}

/** Serialises a (possibly modified) decoded model. */
export function encodeOnnx(model: ModelProto): Uint8Array {
  return onnx.ModelProto.encode(model).finish();
}

/** A graph input or output as a tensor: its element type and dimensions (null: unknown). */
export interface TensorInfo {
  readonly name: string;
  /** 0 when the value is not a tensor (a sequence or a map). */
  readonly elemType: number;
  readonly dims: readonly (number | null)[];
}

function tensorInfo(v: ValueInfo): TensorInfo {
  const t = v.type?.tensorType;
  const dims = (t?.shape?.dim ?? []).map((d) =>
    d.dimValue !== undefined && d.dimValue !== null && Number(d.dimValue) > 0
      ? Number(d.dimValue)
      : null,
  );
  return { name: v.name ?? '', elemType: t?.elemType ?? 0, dims };
}

/**
 * The graph's real inputs (initialisers listed as inputs by old exporters are left out) and its
 * outputs.
 */
export function graphInterface(model: ModelProto): {
  inputs: TensorInfo[];
  outputs: TensorInfo[];
} {
  const graph = model.graph;
  const constants = new Set((graph?.initializer ?? []).map((t) => t.name));
  return {
    inputs: (graph?.input ?? []).filter((i) => !constants.has(i.name)).map(tensorInfo),
    outputs: (graph?.output ?? []).map(tensorInfo),
  };
}

/** A model's metadata property, or undefined. */
export function metadataOf(model: ModelProto, key: string): string | undefined {
  return (model.metadataProps ?? []).find((p) => p.key === key)?.value ?? undefined;
}
