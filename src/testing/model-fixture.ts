/**
 * The toy classifier of the runtime tests: a float `x` and a string `color` predict a label
 * 'yes' or 'no', and a GBDT fitted on such rows gives a native model document to load, export
 * and compare across runtimes. Each test makes its own rows (with or without missing values).
 */
import type { ModelSignature } from '../core/model.js';
import { profileTable } from '../data/profile.js';
import type { ModelVersion } from '../metadata/metadata-store.js';
import type { ModelRegistry, RegisterInput } from '../registry/registry.js';
import { trainModel, type TrainResult } from '../training/train.js';
import { tableFromRows, type ColumnSchema, type Table } from '../core/table.js';
import { fitGbdt } from '../training/algorithms/gbdt.js';
import {
  encodeNativeModel,
  NATIVE_FORMAT,
  NATIVE_FORMAT_VERSION,
  type NativeModelDocument,
} from '../training/native-model.js';
import { fit, transform } from '../training/preprocess.js';

/** The columns of a table of toy rows: the two inputs, then the label. */
export const TOY_SCHEMA: ColumnSchema[] = [
  { name: 'x', type: 'float' },
  { name: 'color', type: 'string' },
  { name: 'label', type: 'string' },
];

export const TOY_SIGNATURE: ModelSignature = {
  task: 'classification',
  target: 'label',
  inputs: [
    { name: 'x', type: 'float' },
    { name: 'color', type: 'string' },
  ],
  classes: ['no', 'yes'],
};

/**
 * A binary GBDT (30 rounds, tree-mode preprocessing) fitted on a table of {@link TOY_SCHEMA},
 * as a native model document.
 * @example const doc = fitToyGbdt(tableFromRows(TOY_SCHEMA, rows));
 */
export function fitToyGbdt(table: Table): NativeModelDocument {
  const labels = table.columns[2]?.values.map((v) => (v === 'yes' ? 1 : 0)) ?? [];
  const preprocess = fit(table, TOY_SIGNATURE.inputs, { mode: 'tree' });
  const { model } = fitGbdt(transform(preprocess, table), Float64Array.from(labels), {
    objective: 'binary',
    maxRounds: 30,
  });
  return {
    format: NATIVE_FORMAT,
    version: NATIVE_FORMAT_VERSION,
    signature: TOY_SIGNATURE,
    preprocess,
    model,
  };
}

/** A version as `register` takes it, its model name aside. */
export type VersionInput = Omit<RegisterInput, 'model'>;

const COLORS = ['red', 'green', 'blue'];

/**
 * Deterministic toy rows of {@link TOY_SCHEMA}: 'yes' when x is large and the color is not blue.
 * @example tableFromRows(TOY_SCHEMA, toyRows(300, 1))
 */
export function toyRows(n: number, seed = 0): Record<string, string | number>[] {
  return Array.from({ length: n }, (_, i) => {
    const x = ((i * 37 + seed * 11) % 100) / 10;
    const color = COLORS[(i + seed) % 3] as string;
    return { x, color, label: x > 5 && color !== 'blue' ? 'yes' : 'no' };
  });
}

/**
 * The toy GBDT fitted on 300 toy rows of `seed`, as a version to register, profiled on its inputs.
 * @example await registry.register({ model: 'toy', ...toyVersion(2) });
 */
export function toyVersion(seed = 0): VersionInput {
  const table = tableFromRows(TOY_SCHEMA, toyRows(300, seed));
  return {
    runtime: 'native',
    artifact: encodeNativeModel(fitToyGbdt(table)),
    signature: TOY_SIGNATURE,
    metrics: {},
    params: {},
    lineage: {},
    profile: profileTable(tableFromRows(TOY_SCHEMA.slice(0, 2), toyRows(300, seed))),
  };
}

/**
 * A trained model as a native version to register, with `inputs`' profile as its training
 * profile.
 * @example await registry.register({ model: 'fraud', ...nativeVersion(trained, inputs) });
 */
export function nativeVersion(trained: TrainResult, inputs: Table): VersionInput {
  return {
    runtime: 'native',
    artifact: trained.artifact,
    signature: trained.signature,
    metrics: trained.metrics,
    params: {},
    lineage: {},
    profile: profileTable(inputs),
  };
}

/**
 * Trains on `table` (only the given algorithms, `linear` by default) and registers the winner as
 * the next version of `model`, with the table's profile as its training profile.
 * @example const { version } = await registerTrained(ws.registry, 'spend', table, { target: 'y' });
 */
export async function registerTrained(
  registry: ModelRegistry,
  model: string,
  table: Table,
  options: { readonly target: string; readonly models?: readonly string[]; readonly seed?: number },
): Promise<{ version: ModelVersion; promoted: boolean }> {
  const trained = await trainModel(table, {
    target: options.target,
    seed: options.seed ?? 1,
    models: options.models ?? ['linear'],
  });
  return registry.register({ model, ...nativeVersion(trained, table) });
}
