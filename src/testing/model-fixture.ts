/**
 * The toy classifier of the runtime tests: a float `x` and a string `color` predict a label
 * 'yes' or 'no', and a GBDT fitted on such rows gives a native model document to load, export
 * and compare across runtimes. Each test makes its own rows (with or without missing values).
 */
import type { ModelSignature } from '../core/model.js';
import { profileTable } from '../data/profile.js';
import type { ModelVersion } from '../metadata/metadata-store.js';
import type { ModelRegistry } from '../registry/registry.js';
import { trainModel } from '../training/train.js';
import type { ColumnSchema, Table } from '../core/table.js';
import { fitGbdt } from '../training/algorithms/gbdt.js';
import {
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
  return registry.register({
    model,
    runtime: 'native',
    artifact: trained.artifact,
    signature: trained.signature,
    metrics: trained.metrics,
    params: {},
    lineage: {},
    profile: profileTable(table),
  });
}
