/**
 * Open Inference Protocol v2 tensors <-> Ferry tables, for one served model.
 *
 * A request carries its features in one of two layouts:
 * - one tensor per feature column: `name` is the column, shape `[N]` or `[N, 1]`;
 * - ONE tensor of shape `[N, F]` (any name) whose F columns follow the order of the model's
 *   metadata `inputs`. With FP64/FP32/INT64/INT32 (or any OIP integer type) it needs a model whose
 *   inputs are all numeric; with BYTES it may mix values, each checked against its own column
 *   (numbers for numeric columns, strings for string columns, booleans for bool columns).
 *
 * Datatypes by column type: numeric (float, int, timestamp) columns take FPxx and INTxx (INTxx
 * data must be integers); bool columns take BOOL, or 0/1 in a numeric datatype (what numpy
 * matrices carry); string columns take BYTES only. A BYTES tensor for a numeric column is
 * refused rather than parsed, so that '1,5' never silently becomes a number. `null` is a missing
 * value anywhere. Data may be flat (row-major) or nested exactly as the shape says.
 *
 * Everything that depends only on the model (the metadata reply, the input index, output
 * datatypes) is computed once per served model and cached, keeping the request path to a single
 * pass over the values.
 */
import type { Label, ModelSignature, Prediction } from '../../core/model.js';
import type { Column, ColumnType, Scalar, Table } from '../../core/table.js';
import { FerryError, type ErrorCode } from '../../errors/index.js';
import type { ServedModel } from '../served-model.js';

export type Datatype =
  | 'BOOL'
  | 'UINT8'
  | 'UINT16'
  | 'UINT32'
  | 'UINT64'
  | 'INT8'
  | 'INT16'
  | 'INT32'
  | 'INT64'
  | 'FP16'
  | 'FP32'
  | 'FP64'
  | 'BYTES';

type Family = 'float' | 'int' | 'bool' | 'bytes';

const FAMILY: Readonly<Record<string, Family>> = {
  BOOL: 'bool',
  UINT8: 'int',
  UINT16: 'int',
  UINT32: 'int',
  UINT64: 'int',
  INT8: 'int',
  INT16: 'int',
  INT32: 'int',
  INT64: 'int',
  FP16: 'float',
  FP32: 'float',
  FP64: 'float',
  BYTES: 'bytes',
};

/** One input tensor of an inference request (the body's outer shape is checked by JSON schema). */
export interface RequestInput {
  readonly name: string;
  readonly shape: readonly number[];
  readonly datatype: string;
  readonly data: unknown[];
  readonly parameters?: Record<string, unknown>;
}

export interface RequestOutput {
  readonly name: string;
  readonly parameters?: Record<string, unknown>;
}

export interface InferRequestBody {
  readonly id?: string;
  readonly parameters?: Record<string, unknown>;
  readonly inputs: readonly RequestInput[];
  readonly outputs?: readonly RequestOutput[];
}

export interface ResponseOutput {
  readonly name: string;
  readonly shape: number[];
  readonly datatype: Datatype;
  readonly data: unknown[];
}

export interface MetadataTensor {
  readonly name: string;
  readonly datatype: Datatype;
  readonly shape: number[];
}

export interface ModelMetadata {
  readonly name: string;
  readonly versions: readonly string[];
  readonly platform: string;
  readonly inputs: readonly MetadataTensor[];
  readonly outputs: readonly MetadataTensor[];
  readonly parameters: {
    readonly task: string;
    readonly target: string;
    readonly classes?: readonly Label[];
  };
}

/** What the server precomputes for one served model (one version of it). */
export interface ModelView {
  readonly served: ServedModel;
  readonly metadata: ModelMetadata;
  readonly signature: ModelSignature;
  readonly inputIndex: ReadonlyMap<string, number>;
  readonly inputTypes: readonly ColumnType[];
  readonly inputList: string;
  readonly numericOnly: boolean;
  readonly outputNames: readonly string[];
  /** Undefined when the signature gives no classes: decided from the values. */
  readonly predictDatatype: Datatype | undefined;
}

const views = new WeakMap<ServedModel, ModelView>();

/** The precomputed view of a served model; cached by object identity (served models are immutable). */
export function viewOf(served: ServedModel): ModelView {
  let view = views.get(served);
  if (!view) {
    view = buildView(served);
    views.set(served, view);
  }
  return view;
}

function buildView(served: ServedModel): ModelView {
  const signature = served.signature;
  const classifier = signature.task === 'classification';
  const predictDatatype = classifier ? labelDatatype(signature.classes) : 'FP64';
  const outputs: MetadataTensor[] = [
    { name: 'predict', datatype: predictDatatype ?? 'BYTES', shape: [-1] },
  ];
  if (classifier) {
    outputs.push({
      name: 'predict_proba',
      datatype: 'FP64',
      shape: [-1, signature.classes?.length ?? -1],
    });
  }
  const parameters = {
    task: signature.task,
    target: signature.target,
    ...(classifier && signature.classes ? { classes: [...signature.classes] } : {}),
  };
  return {
    served,
    signature,
    metadata: {
      name: served.name,
      versions: [...served.versions],
      platform: served.platform,
      inputs: signature.inputs.map((i) => ({
        name: i.name,
        datatype: datatypeOfColumn(i.type),
        shape: [-1],
      })),
      outputs,
      parameters,
    },
    inputIndex: new Map(signature.inputs.map((input, index) => [input.name, index])),
    inputTypes: signature.inputs.map((i) => i.type),
    inputList: signature.inputs.map((i) => i.name).join(', '),
    numericOnly: signature.inputs.every((i) => i.type !== 'string'),
    outputNames: outputs.map((o) => o.name),
    predictDatatype,
  };
}

/** The OIP datatype a column's values travel as. */
export function datatypeOfColumn(type: ColumnType): Datatype {
  switch (type) {
    case 'int':
      return 'INT64';
    case 'bool':
      return 'BOOL';
    case 'string':
      return 'BYTES';
    case 'float':
    case 'timestamp':
      return 'FP64';
  }
}

function labelDatatype(classes: readonly Label[] | undefined): Datatype | undefined {
  if (!classes || classes.length === 0) return undefined;
  if (classes.every((c) => typeof c === 'boolean')) return 'BOOL';
  if (classes.every((c) => typeof c === 'number' && Number.isInteger(c))) return 'INT64';
  if (classes.every((c) => typeof c === 'number')) return 'FP64';
  return 'BYTES';
}

function labelValuesDatatype(values: readonly Label[]): Datatype {
  return labelDatatype(values.length === 0 ? undefined : values) ?? 'BYTES';
}

function fail(code: ErrorCode, message: string): never {
  throw new FerryError(code, message);
}

function describe(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}

function formatShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/**
 * Turns the request's input tensors into a table with one column per model input, in the
 * signature's order and types; throws a coded 400 error naming the tensor at fault.
 * @example decodeInputs(viewOf(served), body.inputs, 10_000) // Table with N rows
 */
export function decodeInputs(
  view: ModelView,
  inputs: readonly RequestInput[],
  maxRows: number,
): Table {
  const only = inputs.length === 1 ? inputs[0] : undefined;
  if (only && only.shape.length === 2 && (only.shape[1] !== 1 || !view.inputIndex.has(only.name))) {
    return decodeMatrix(view, only, maxRows);
  }
  return decodeColumns(view, inputs, maxRows);
}

function checkRows(input: RequestInput, maxRows: number): number {
  const rows = input.shape[0];
  if (rows === undefined || input.shape.some((d) => d < 0)) {
    fail(
      'FERRY_INPUT_SHAPE',
      `input '${input.name}' has shape ${formatShape(input.shape)}; dimensions must be non-negative and the first one is the row count`,
    );
  }
  if (rows < 1)
    fail(
      'FERRY_INPUT_SHAPE',
      `input '${input.name}' has no rows (shape ${formatShape(input.shape)}); send at least one row`,
    );
  if (rows > maxRows) {
    fail(
      'FERRY_INPUT_SHAPE',
      `input '${input.name}' has ${rows} rows, more than the ${maxRows} rows a request may carry; split it into smaller requests or raise server.max_rows_per_request`,
    );
  }
  return rows;
}

function decodeColumns(view: ModelView, inputs: readonly RequestInput[], maxRows: number): Table {
  const unknown = inputs.filter((i) => !view.inputIndex.has(i.name)).map((i) => `'${i.name}'`);
  if (unknown.length > 0) {
    const many = unknown.length > 1;
    fail(
      'FERRY_INPUT_UNKNOWN',
      `input${many ? 's' : ''} ${unknown.join(', ')} ${many ? 'are' : 'is'} not an input of model '${view.served.name}'; expected inputs: ${view.inputList} (one tensor each, or one [N, ${view.signature.inputs.length}] tensor in that order)`,
    );
  }
  const byIndex: (RequestInput | undefined)[] = new Array<RequestInput | undefined>(
    view.signature.inputs.length,
  );
  let rows = -1;
  let first = '';
  for (const input of inputs) {
    const index = view.inputIndex.get(input.name) as number;
    if (byIndex[index])
      fail(
        'FERRY_REQUEST_MALFORMED',
        `input '${input.name}' is given twice; send each column once`,
      );
    byIndex[index] = input;
    if (input.shape.length !== 1 && !(input.shape.length === 2 && input.shape[1] === 1)) {
      fail(
        'FERRY_INPUT_SHAPE',
        `input '${input.name}' has shape ${formatShape(input.shape)}; a column tensor has shape [N] or [N, 1] (an [N, F] tensor must be the only input, with F = ${view.signature.inputs.length})`,
      );
    }
    const n = checkRows(input, maxRows);
    if (rows === -1) {
      rows = n;
      first = input.name;
    } else if (n !== rows) {
      fail(
        'FERRY_INPUT_SHAPE',
        `input '${input.name}' has ${n} rows but '${first}' has ${rows}; every column must have the same number of rows`,
      );
    }
  }
  const missing = view.signature.inputs
    .filter((spec, i) => byIndex[i] === undefined && spec.optional !== true)
    .map((i) => i.name);
  if (missing.length > 0) {
    fail(
      'FERRY_INPUT_MISSING',
      `model '${view.served.name}' needs input${missing.length > 1 ? 's' : ''} ${missing.join(', ')}, missing from the request; expected inputs: ${view.inputList}`,
    );
  }
  const columns: Column[] = view.signature.inputs.map((spec, i) => {
    const input = byIndex[i];
    // An optional input left out (an endpoint's event time) reads as missing values.
    if (input === undefined) {
      return { name: spec.name, type: spec.type, values: new Array<Scalar>(rows).fill(null) };
    }
    const family = familyOf(input);
    checkColumnFamily(input.name, spec.type, family, input.datatype);
    const values = flatten(input, rows);
    convertColumn(input, values, spec.type, family);
    return { name: spec.name, type: spec.type, values: values as Scalar[] };
  });
  return { columns, rowCount: rows };
}

function decodeMatrix(view: ModelView, input: RequestInput, maxRows: number): Table {
  const f = view.signature.inputs.length;
  if (input.shape[1] !== f) {
    fail(
      'FERRY_INPUT_SHAPE',
      `input '${input.name}' has shape ${formatShape(input.shape)}; an [N, F] tensor needs F = ${f}, one column per model input in this order: ${view.inputList}`,
    );
  }
  const rows = checkRows(input, maxRows);
  const family = familyOf(input);
  if (family !== 'bytes') {
    if (!view.numericOnly) {
      const strings = view.signature.inputs.filter((i) => i.type === 'string').map((i) => i.name);
      fail(
        'FERRY_INPUT_DATATYPE',
        `input '${input.name}' is ${input.datatype}, but model '${view.served.name}' also takes string inputs (${strings.join(', ')}); send the [N, F] tensor as BYTES with mixed values, or one tensor per column`,
      );
    }
    for (let j = 0; j < f; j++)
      checkColumnFamily(input.name, view.inputTypes[j] as ColumnType, family, input.datatype);
  }
  const flat = flatten(input, rows * f);
  const columns: Column[] = view.signature.inputs.map((spec, j) => {
    const values: Scalar[] = new Array<Scalar>(rows);
    for (let r = 0; r < rows; r++) {
      const at = r * f + j;
      values[r] = convertValue(input, flat[at], at, spec.type, family, spec.name);
    }
    return { name: spec.name, type: spec.type, values };
  });
  return { columns, rowCount: rows };
}

function familyOf(input: RequestInput): Family {
  const family = FAMILY[input.datatype];
  if (!family) {
    fail(
      'FERRY_INPUT_DATATYPE',
      `input '${input.name}' has datatype '${input.datatype}'; use FP64, FP32, INT64, INT32, BOOL or BYTES`,
    );
  }
  return family;
}

function checkColumnFamily(name: string, type: ColumnType, family: Family, datatype: string): void {
  if (type === 'string') {
    if (family !== 'bytes')
      fail(
        'FERRY_INPUT_DATATYPE',
        `input '${name}' is ${datatype}, but the column holds strings; send it as BYTES`,
      );
    return;
  }
  if (family === 'bytes') {
    fail(
      'FERRY_INPUT_DATATYPE',
      `input '${name}' is BYTES, but the column holds ${type} values; send it as ${datatypeOfColumn(type)} (numbers are not parsed from strings)`,
    );
  }
  if (family === 'bool' && type !== 'bool') {
    fail(
      'FERRY_INPUT_DATATYPE',
      `input '${name}' is BOOL, but the column holds ${type} values; send it as ${datatypeOfColumn(type)}`,
    );
  }
}

/**
 * The values of a tensor in row-major order: the data itself when flat, else the leaves of a
 * nesting that must follow the shape exactly.
 */
function flatten(input: RequestInput, expected: number): unknown[] {
  const { data, shape } = input;
  if (data.length === 0 || !Array.isArray(data[0])) {
    if (data.length !== expected) {
      fail(
        'FERRY_INPUT_SHAPE',
        `input '${input.name}' has shape ${formatShape(shape)} (${expected} values) but its data holds ${data.length}`,
      );
    }
    return data;
  }
  const out: unknown[] = new Array<unknown>(expected);
  let k = 0;
  const walk = (level: unknown[], depth: number, path: string): void => {
    const size = shape[depth];
    if (level.length !== size) {
      fail(
        'FERRY_INPUT_SHAPE',
        `input '${input.name}' has shape ${formatShape(shape)} but data${path} holds ${level.length} entries instead of ${size}`,
      );
    }
    if (depth === shape.length - 1) {
      for (const v of level) {
        if (Array.isArray(v))
          fail(
            'FERRY_INPUT_SHAPE',
            `input '${input.name}' has shape ${formatShape(shape)} but data${path} nests deeper than the shape`,
          );
        out[k++] = v;
      }
      return;
    }
    for (let i = 0; i < level.length; i++) {
      const next = level[i];
      if (!Array.isArray(next)) {
        fail(
          'FERRY_INPUT_SHAPE',
          `input '${input.name}' has shape ${formatShape(shape)} but data${path}[${i}] is ${describe(next)}, not an array; send flat data or nest it exactly as the shape`,
        );
      }
      walk(next, depth + 1, `${path}[${i}]`);
    }
  };
  walk(data, 0, '');
  return out;
}

/** Checks (and, for bool columns fed 0/1, converts) a column's values in place. */
function convertColumn(
  input: RequestInput,
  values: unknown[],
  type: ColumnType,
  family: Family,
): void {
  for (let i = 0; i < values.length; i++) {
    values[i] = convertValue(input, values[i], i, type, family, input.name);
  }
}

function convertValue(
  input: RequestInput,
  v: unknown,
  at: number,
  type: ColumnType,
  family: Family,
  column: string,
): Scalar {
  if (v === null) return null;
  switch (type) {
    case 'float':
    case 'timestamp':
    case 'int':
      if (typeof v === 'number' && (family !== 'int' || Number.isInteger(v))) return v;
      break;
    case 'bool':
      if (typeof v === 'boolean' && (family === 'bool' || family === 'bytes')) return v;
      if (family !== 'bool' && (v === 0 || v === 1)) return v === 1;
      break;
    case 'string':
      if (typeof v === 'string') return v;
      break;
  }
  return badValue(input, v, at, type, family, column);
}

function badValue(
  input: RequestInput,
  v: unknown,
  at: number,
  type: ColumnType,
  family: Family,
  column: string,
): never {
  if (Array.isArray(v)) {
    fail(
      'FERRY_INPUT_SHAPE',
      `input '${input.name}' mixes nested arrays and values (${describe(v)} at index ${at}); send flat data or nest it exactly as the shape ${formatShape(input.shape)}`,
    );
  }
  const where =
    column === input.name ? `input '${input.name}'` : `input '${input.name}' (column '${column}')`;
  let wanted: string;
  if (type === 'string') wanted = 'strings or null';
  else if (type === 'bool')
    wanted = family === 'bool' || family === 'bytes' ? 'true, false or null' : '0, 1 or null';
  else if (family === 'int') wanted = 'integers or null';
  else wanted = 'numbers or null';
  return fail(
    'FERRY_INPUT_DATATYPE',
    `${where} holds ${describe(v)} at index ${at}, but ${input.datatype} data for a ${type} column takes ${wanted}`,
  );
}

/** The outputs a request asked for (all when it names none); unknown names are a 400. */
export function selectOutputs(
  view: ModelView,
  requested: readonly RequestOutput[] | undefined,
): ReadonlySet<string> | undefined {
  if (!requested || requested.length === 0) return undefined;
  const names = new Set<string>();
  for (const r of requested) {
    if (!view.outputNames.includes(r.name)) {
      fail(
        'FERRY_ARGUMENT_INVALID',
        `output '${r.name}' is not an output of model '${view.served.name}'; outputs: ${view.outputNames.join(', ')}`,
      );
    }
    names.add(r.name);
  }
  return names;
}

/** The response tensors of a prediction: `predict` `[N]` and, for classifiers, `predict_proba` `[N, K]`. */
export function encodeOutputs(
  view: ModelView,
  prediction: Prediction,
  selected: ReadonlySet<string> | undefined,
): ResponseOutput[] {
  const outputs: ResponseOutput[] = [];
  const n = prediction.predict.length;
  if (!selected || selected.has('predict')) {
    outputs.push({
      name: 'predict',
      shape: [n],
      datatype: view.predictDatatype ?? labelValuesDatatype(prediction.predict),
      data: prediction.predict,
    });
  }
  const proba = prediction.proba;
  if (
    proba &&
    view.signature.task === 'classification' &&
    (!selected || selected.has('predict_proba'))
  ) {
    const k = n === 0 ? (view.signature.classes?.length ?? 0) : proba.length / n;
    const data: number[] = new Array<number>(proba.length);
    for (let i = 0; i < proba.length; i++) data[i] = proba[i] as number;
    outputs.push({ name: 'predict_proba', shape: [n, k], datatype: 'FP64', data });
  }
  return outputs;
}
