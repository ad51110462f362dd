/**
 * A fitted recipe applied to single rows, for streaming ingestion and request time: the same
 * semantics as the SQL chain for every row-wise step (select, drop, rename, cast, fill,
 * drop_missing, filter, derive, encode, scale, clip), as `parity.test.ts` proves on data made to
 * expose differences. Batch-only steps pass rows through: dedupe and split (a single row has no
 * duplicates and belongs to no part), and merge, whose added columns must already be in the row
 * (enriched, for instance, from the feature store; a missing one is null).
 *
 * Input rows are read against the recipe's source schema first, as the batch path reads its
 * source: a value of the right kind passes, text converts by the rules of `convert.ts` (so a CSV
 * line's fields can be given as they are), anything else is null.
 */
import type { ColumnSchema, Row } from '../../core/table.js';
import { coerceInput } from './convert.js';
import type { FittedRecipe, FittedStep } from './fitted.js';
import type { StepKind } from './step.js';
import { kindOf } from './steps/index.js';

/** A fitted recipe compiled once into a function of one row. */
export type RowPipeline = (row: Readonly<Record<string, unknown>>) => Row | null;

const compiled = new WeakMap<FittedRecipe, RowPipeline>();

/**
 * Compiles a fitted recipe into a function of one row (null when a filter or drop_missing
 * removes it). Expressions compile once here, not per row.
 * @example const prepare = compileRecipe(fitted); const row = prepare({ amount: '12,5' });
 */
export function compileRecipe(fitted: FittedRecipe): RowPipeline {
  const cached = compiled.get(fitted);
  if (cached) return cached;
  const source = fitted.source.schema;
  const stages: ((row: Row) => Row | null)[] = [];
  let schema: readonly ColumnSchema[] = source;
  const merged: string[] = [];
  for (const step of fitted.steps) {
    if (step.step === 'merge') merged.push(...step.columns.map((c) => c.to));
    const kind = kindOf(step.step) as StepKind<FittedStep['step']>;
    if (kind.row) stages.push(kind.row(step as never, schema));
    schema = kind.schema(step as never, schema);
  }
  const output = schema;
  const pipeline: RowPipeline = (input) => {
    let row: Row | null = {};
    for (const c of source) row[c.name] = coerceInput(input[c.name], c.type);
    // Columns a merge adds come with the row (the merge step reads them by their types).
    for (const name of merged) row[name] = (input[name] ?? null) as Row[string];
    for (const stage of stages) {
      row = stage(row);
      if (row === null) return null;
    }
    const out: Row = {};
    for (const c of output) out[c.name] = row[c.name] ?? null;
    return out;
  };
  compiled.set(fitted, pipeline);
  return pipeline;
}

/**
 * One row through a fitted recipe: the prepared row, or null when a step removes it.
 * @example applyToRow(fitted, { amount: 12.5, country: 'FR' })
 */
export function applyToRow(
  fitted: FittedRecipe,
  row: Readonly<Record<string, unknown>>,
): Row | null {
  return compileRecipe(fitted)(row);
}

/**
 * Rows through a fitted recipe, in order; removed rows are left out, and `removed` counts them.
 * @example const { rows, removed } = applyToRows(fitted, batch);
 */
export function applyToRows(
  fitted: FittedRecipe,
  rows: readonly Readonly<Record<string, unknown>>[],
): { rows: Row[]; removed: number } {
  const prepare = compileRecipe(fitted);
  const out: Row[] = [];
  for (const row of rows) {
    const prepared = prepare(row);
    if (prepared !== null) out.push(prepared);
  }
  return { rows: out, removed: rows.length - out.length };
}
