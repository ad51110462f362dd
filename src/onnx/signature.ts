/**
 * The Ferry signature of an ONNX model: read from its `ferry.signature` metadata (Ferry's exports
 * and imports write it), or inferred from the graph for a foreign file. Inference maps each graph
 * input to a column (a single `[N,F]` input to F columns `<input>_<i>`), and finds class labels
 * in the ai.onnx.ml classifier nodes (`classlabels_strings` / `classlabels_int64s`).
 */
import type { Label, ModelInput, ModelSignature } from '../core/model.js';
import type { ColumnType } from '../core/table.js';
import { FerryError } from '../errors/index.js';
import { SIGNATURE_METADATA } from './export.js';
import { ElemType, graphInterface, metadataOf, type ModelProto, type TensorInfo } from './proto.js';

function columnTypeOf(elemType: number): ColumnType {
  if (elemType === ElemType.STRING) return 'string';
  if (elemType === ElemType.BOOL) return 'bool';
  if (elemType === ElemType.INT64 || elemType === ElemType.INT32 || elemType === ElemType.INT8) {
    return 'int';
  }
  return 'float';
}

/** The width of a stacked `[N,F]` input, or null when the input is one column per tensor. */
export function stackedWidth(input: TensorInfo): number | null {
  const f = input.dims[1];
  return input.dims.length === 2 && f !== null && f !== undefined && f > 1 ? f : null;
}

function classLabels(model: ModelProto): Label[] | undefined {
  const decoder = new TextDecoder();
  for (const node of model.graph?.node ?? []) {
    for (const a of node.attribute ?? []) {
      if (a.name === 'classlabels_strings' && (a.strings?.length ?? 0) > 0) {
        return (a.strings ?? []).map((s) => decoder.decode(s));
      }
      if (a.name === 'classlabels_int64s' && (a.ints?.length ?? 0) > 0) {
        return (a.ints ?? []).map((i) => Number(i));
      }
    }
  }
  return undefined;
}

/**
 * A signature guessed from the graph alone (what `ferry models import --onnx` records unless
 * `--signature` says otherwise).
 * @example const signature = inferSignature(decodeOnnx(bytes));
 */
export function inferSignature(model: ModelProto): ModelSignature {
  const { inputs: graphInputs, outputs } = graphInterface(model);
  const only = graphInputs.length === 1 ? graphInputs[0] : undefined;
  const width = only === undefined ? null : stackedWidth(only);
  const inputs: ModelInput[] =
    only !== undefined && width !== null
      ? Array.from({ length: width }, (_, i) => ({
          name: `${only.name}_${i}`,
          type: columnTypeOf(only.elemType),
        }))
      : graphInputs.map((i) => ({ name: i.name, type: columnTypeOf(i.elemType) }));
  const classes = classLabels(model);
  if (classes !== undefined) {
    return { task: 'classification', target: 'target', inputs, classes };
  }
  if (outputs.some((o) => /proba|probabilit/i.test(o.name))) {
    throw new FerryError(
      'FERRY_ARGUMENT_INVALID',
      `the ONNX graph looks like a classifier (output '${outputs.map((o) => o.name).join("', '")}') but names no class labels; pass a signature file with "task": "classification" and "classes"`,
    );
  }
  return { task: 'regression', target: 'target', inputs };
}

function isSignature(v: unknown): v is ModelSignature {
  if (typeof v !== 'object' || v === null) return false;
  const s = v as Record<string, unknown>;
  return (
    (s.task === 'classification' || s.task === 'regression') &&
    typeof s.target === 'string' &&
    Array.isArray(s.inputs) &&
    s.inputs.every(
      (i: unknown) =>
        typeof i === 'object' &&
        i !== null &&
        typeof (i as Record<string, unknown>).name === 'string' &&
        typeof (i as Record<string, unknown>).type === 'string',
    ) &&
    (s.classes === undefined || Array.isArray(s.classes))
  );
}

/**
 * Checks a signature given by a user (a `--signature` file) or found in the metadata.
 * Throws FERRY_ARGUMENT_INVALID naming `where`.
 */
export function parseSignature(value: unknown, where: string): ModelSignature {
  if (!isSignature(value)) {
    throw new FerryError(
      'FERRY_ARGUMENT_INVALID',
      `${where} is not a model signature; expected {"task": "classification"|"regression", "target": string, "inputs": [{"name", "type"}], "classes"?: [...]}`,
    );
  }
  if (value.task === 'classification' && (value.classes?.length ?? 0) < 2) {
    throw new FerryError(
      'FERRY_ARGUMENT_INVALID',
      `${where} describes a classifier without its class labels; add "classes" (2 or more, in the order of the probability columns)`,
    );
  }
  return value;
}

/** The signature recorded in the model's metadata, else the inferred one. */
export function readSignature(model: ModelProto): ModelSignature {
  const text = metadataOf(model, SIGNATURE_METADATA);
  if (text === undefined) return inferSignature(model);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (cause) {
    throw new FerryError(
      'FERRY_MODEL_INVALID',
      `the ONNX metadata '${SIGNATURE_METADATA}' is not JSON`,
      { cause },
    );
  }
  return parseSignature(parsed, `the ONNX metadata '${SIGNATURE_METADATA}'`);
}
