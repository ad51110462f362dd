/**
 * A preparation recipe as part of a model: which raw columns a model trained on a recipe's output
 * needs from its callers, which of the recipe's steps run at request time, and the recipe's
 * fingerprint for lineage. The native artifact embeds the fitted recipe (`native-model.ts`);
 * this module holds the reasoning about it, with no I/O.
 *
 * Steps that remove rows (filter, drop_missing) choose the rows a model learns from; at request
 * time they do not run, so that every row of a request gets a prediction. A service that answers
 * "no prediction" for some rows of a batch would fail the whole request (OIP answers a request
 * or an error) and leave a decision (a payment to screen) without an answer; whether a request
 * is acceptable is the signature's and the monitors' business. The rows such a step removed in
 * training are counted in the run's row accounting. Batch-only steps (dedupe, split, merge) pass
 * rows through as `src/data/prep/row.ts` documents; the columns a merge adds are model inputs
 * the caller (or an endpoint's enrich step) provides.
 */
import { createHash } from 'node:crypto';
import type { ModelInput } from '../core/model.js';
import type { ColumnSchema } from '../core/table.js';
import type { FittedRecipe, FittedStep } from '../data/prep/fitted.js';
import { parseExpression, type Expr } from '../data/expr/index.js';

/** Steps that only remove rows; they run in training, not at request time (module comment). */
const TRAINING_ONLY: ReadonlySet<FittedStep['step']> = new Set(['filter', 'drop_missing']);

/**
 * The fitted recipe as it runs at request time: without the steps that remove rows, so every
 * input row comes out prepared. The other steps, constants and output schema are unchanged.
 * @example const { rows } = applyToRows(servingRecipe(fitted), requestRows); // rows.length === requestRows.length
 */
export function servingRecipe(fitted: FittedRecipe): FittedRecipe {
  return { ...fitted, steps: fitted.steps.filter((s) => !TRAINING_ONLY.has(s.step)) };
}

/** The row-removing steps of a fitted recipe, in words, for messages and run records. */
export function trainingOnlySteps(fitted: FittedRecipe): string[] {
  return fitted.steps.flatMap((s) =>
    s.step === 'filter'
      ? [`filter ${s.where}`]
      : s.step === 'drop_missing'
        ? [`drop rows missing ${s.columns.join(', ')}`]
        : [],
  );
}

/** Column names an expression reads. */
function columnsOf(expr: Expr, into: Set<string>): Set<string> {
  switch (expr.kind) {
    case 'column':
      into.add(expr.name);
      break;
    case 'unary':
    case 'is_null':
      columnsOf(expr.operand, into);
      break;
    case 'binary':
      columnsOf(expr.left, into);
      columnsOf(expr.right, into);
      break;
    case 'in':
      columnsOf(expr.operand, into);
      for (const v of expr.values) columnsOf(v, into);
      break;
    case 'call':
      for (const a of expr.args) columnsOf(a, into);
      break;
    default:
      break;
  }
  return into;
}

export interface RecipeInputs {
  /** The raw columns callers send: source columns in source order, then merged columns. */
  readonly inputs: ModelInput[];
  /** Whether a feature is computed from the target (which callers do not send: it reads null). */
  readonly readsTarget: boolean;
}

/**
 * The raw columns a model needs, given the prepared columns it reads (`features`): walks the
 * request-time steps backwards from the features, keeping what each step reads to make a column
 * still needed. Source columns that never reach a feature (dropped, read only by a filter, a
 * merge key, a dedupe key) are not inputs, nor is the target; columns a merge adds are, with the
 * merge's types. Types are the source's as the recipe read it (text for a column the recipe
 * converts), the form a caller sends.
 * @example recipeInputs(fitted, ['amount', 'hour'], 'is_fraud').inputs // [{ name: 'ts', type: 'string' }, { name: 'amount', type: 'string' }]
 */
export function recipeInputs(
  fitted: FittedRecipe,
  features: readonly string[],
  target: string,
): RecipeInputs {
  const needed = new Set(features);
  const merged: ColumnSchema[] = [];
  const steps = servingRecipe(fitted).steps;
  for (let i = steps.length - 1; i >= 0; i--) {
    const step = steps[i] as FittedStep;
    switch (step.step) {
      case 'drop':
        for (const c of step.columns) needed.delete(c);
        break;
      case 'rename': {
        const pairs = Object.entries(step.columns);
        const olds = pairs.filter(([, to]) => needed.has(to)).map(([from]) => from);
        for (const [, to] of pairs) needed.delete(to);
        for (const from of olds) needed.add(from);
        break;
      }
      case 'derive':
        if (needed.delete(step.column)) columnsOf(parseExpression(step.expr), needed);
        break;
      case 'encode':
        if (step.method === 'one_hot') {
          const outputs = [...step.categories.map((c) => c.column), step.other];
          let used = false;
          for (const c of outputs) used = needed.delete(c) || used;
          if (used) needed.add(step.column);
        }
        break;
      case 'merge':
        // At request time the row carries the merged columns: they are inputs themselves.
        for (const c of [...step.columns].reverse()) {
          if (needed.delete(c.to)) merged.unshift({ name: c.to, type: c.type });
        }
        break;
      // select, cast, fill, scale, clip, ordinal encode: a column comes from the same name.
      // dedupe, split: rows pass through.
      default:
        break;
    }
  }
  const readsTarget = needed.delete(target);
  const inputs: ModelInput[] = [
    ...fitted.source.schema.filter((c) => needed.has(c.name)),
    ...merged.filter((c) => c.name !== target),
  ].map((c) => ({ name: c.name, type: c.type }));
  return { inputs, readsTarget };
}

/** JSON with object keys sorted, so that the same recipe always hashes the same. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * SHA-256 (hex) of a fitted recipe's canonical JSON: the same constants give the same hash
 * whatever the key order. Recorded in the model's lineage and checked when the artifact loads.
 * @example lineage.recipeSha256 = recipeSha256(fitted);
 */
export function recipeSha256(fitted: FittedRecipe): string {
  return createHash('sha256').update(canonicalJson(fitted)).digest('hex');
}
