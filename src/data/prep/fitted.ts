/**
 * The fitted recipe: a recipe with every step's learned constants (fill values, categories,
 * scaling parameters, clip bounds) and the types it saw, as plain JSON. It is written beside a
 * recipe's output (`<out>.recipe.json`) and is all that is needed to apply the same preparation
 * again, in batch (`runRecipe` with `fitted`) or to single rows at request time
 * (`applyToRow`), without refitting. Timestamps are UTC milliseconds.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import type { ColumnSchema } from '../../core/table.js';
import { FerryError } from '../../errors/index.js';

export const FITTED_RECIPE_FORMAT = 'ferry.fitted-recipe/1';

const columnType = z.enum(['float', 'int', 'bool', 'string', 'timestamp']);
const scalar = z.union([z.number(), z.string(), z.boolean(), z.null()]);
const columnSchema = z.strictObject({ name: z.string(), type: columnType });

const conversionOptions = z.strictObject({
  format: z.string().optional(),
  timezone: z.string().optional(),
  unit: z.enum(['s', 'ms', 'us']).optional(),
  decimal: z.string().optional(),
  thousands: z.string().optional(),
});

export const fittedStepSchema = z.discriminatedUnion('step', [
  z.strictObject({ step: z.literal('select'), columns: z.array(z.string()) }),
  z.strictObject({ step: z.literal('drop'), columns: z.array(z.string()) }),
  z.strictObject({ step: z.literal('rename'), columns: z.record(z.string(), z.string()) }),
  z.strictObject({
    step: z.literal('cast'),
    column: z.string(),
    from: columnType,
    to: columnType,
    options: conversionOptions,
  }),
  z.strictObject({
    step: z.literal('fill'),
    with: z.enum(['constant', 'mean', 'median', 'mode']),
    /** The value each column's nulls become, in the column's type. */
    values: z.array(z.strictObject({ column: z.string(), type: columnType, value: scalar })),
  }),
  z.strictObject({ step: z.literal('drop_missing'), columns: z.array(z.string()) }),
  z.strictObject({
    step: z.literal('dedupe'),
    columns: z.array(z.string()).nullable(),
    keep: z.enum(['first', 'last']),
    order_by: z.string().nullable(),
  }),
  z.strictObject({ step: z.literal('filter'), where: z.string() }),
  z.strictObject({
    step: z.literal('derive'),
    column: z.string(),
    expr: z.string(),
    /** The expression's own type, and the column's (a conversion when they differ). */
    exprType: columnType,
    type: columnType,
  }),
  z.discriminatedUnion('method', [
    z.strictObject({
      step: z.literal('encode'),
      method: z.literal('one_hot'),
      column: z.string(),
      type: columnType,
      min_count: z.number(),
      /** Categories seen at least min_count times in the fit rows, with their output columns. */
      categories: z.array(z.strictObject({ value: scalar, column: z.string() })),
      /** Output column for values that are not a category (rare or unseen); nulls set no column. */
      other: z.string(),
    }),
    z.strictObject({
      step: z.literal('encode'),
      method: z.literal('ordinal'),
      column: z.string(),
      type: columnType,
      min_count: z.number(),
      /** Category i is coded i; values that are not a category are coded -1; nulls stay null. */
      categories: z.array(scalar),
    }),
  ]),
  z.strictObject({
    step: z.literal('scale'),
    method: z.enum(['standard', 'min_max']),
    /** Each column becomes (x - offset) / scale, a float. */
    columns: z.array(z.strictObject({ column: z.string(), offset: z.number(), scale: z.number() })),
  }),
  z.strictObject({
    step: z.literal('clip'),
    lower: z.number(),
    upper: z.number(),
    columns: z.array(
      z.strictObject({ column: z.string(), type: columnType, min: z.number(), max: z.number() }),
    ),
  }),
  z.strictObject({
    step: z.literal('merge'),
    source: z.string(),
    on: z.array(z.string()),
    how: z.enum(['inner', 'left']),
    as_of: z.strictObject({ left: z.string(), right: z.string() }).nullable(),
    /** Columns the merge adds: `from` in the other source, `to` in the output. */
    columns: z.array(z.strictObject({ from: z.string(), to: z.string(), type: columnType })),
  }),
  z.strictObject({
    step: z.literal('split'),
    method: z.enum(['random', 'stratified', 'time']),
    fractions: z.strictObject({ train: z.number(), validation: z.number(), test: z.number() }),
    column: z.string().nullable(),
    seed: z.number(),
  }),
]);

export const fittedRecipeSchema = z.strictObject({
  format: z.literal(FITTED_RECIPE_FORMAT),
  recipe: z.string(),
  source: z.strictObject({ name: z.string(), type: z.string(), schema: z.array(columnSchema) }),
  /** `train`: learned constants come from the training part of the split; `all`: every row. */
  fittedOn: z.enum(['train', 'all']),
  /** How many rows the constants were learned from. */
  fitRows: z.number(),
  steps: z.array(fittedStepSchema),
  /** The output columns. */
  schema: z.array(columnSchema),
  createdAt: z.string(),
});

export type FittedStep = z.output<typeof fittedStepSchema>;
export type FittedRecipe = z.output<typeof fittedRecipeSchema>;
export type FittedStepOf<K extends FittedStep['step']> = Extract<FittedStep, { step: K }>;

/** The schema of a fitted recipe's input (its source). */
export function inputSchema(fitted: FittedRecipe): readonly ColumnSchema[] {
  return fitted.source.schema;
}

/**
 * Validates a parsed fitted recipe (e.g. from `<out>.recipe.json`).
 * @example const fitted = parseFittedRecipe(JSON.parse(text), 'out.parquet.recipe.json');
 */
export function parseFittedRecipe(value: unknown, label = 'fitted recipe'): FittedRecipe {
  const result = fittedRecipeSchema.safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new FerryError(
      'FERRY_CONFIG_INVALID',
      `${label} is not a fitted recipe of this Ferry version (${FITTED_RECIPE_FORMAT}): ` +
        `${issue ? `${issue.path.join('.') || '(top)'}: ${issue.message}` : 'invalid'}; write it again with 'ferry data prep'`,
    );
  }
  return result.data;
}

/**
 * Reads a fitted recipe JSON file.
 * @example const fitted = loadFittedRecipe('prepared/tx.parquet.recipe.json');
 */
export function loadFittedRecipe(file: string): FittedRecipe {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    throw new FerryError(
      'FERRY_DATA_UNREADABLE',
      `cannot read the fitted recipe ${file}; run 'ferry data prep' to write it`,
      { cause },
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (cause) {
    throw new FerryError('FERRY_DATA_UNREADABLE', `${file} is not JSON: ${String(cause)}`, {
      cause,
    });
  }
  return parseFittedRecipe(parsed, file);
}
