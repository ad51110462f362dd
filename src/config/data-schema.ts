/**
 * The ferry.yaml schema of data preparation: sources with their read options, preparation
 * steps, validation rules and recipes that tie them together. Steps and rules are discriminated
 * unions (`step:` and `rule:`), unknown keys rejected, so a typo is an error.
 */
import { z } from 'zod';

const columnType = z.enum(['float', 'int', 'bool', 'string', 'timestamp']);
const column = z.string().min(1);
const columns = z.array(column).min(1);
/** An expression of Ferry's language, e.g. `log(amount + 1)` or `country != home_country`. */
const expression = z.string().min(1);

export const readOptionsSchema = z.strictObject({
  delimiter: z.string().length(1).optional(),
  header: z.boolean().optional(),
  quote: z.string().length(1).optional(),
  escape: z.string().length(1).optional(),
  /** utf-8 (default), utf-16, latin-1 */
  encoding: z.enum(['utf-8', 'utf-16', 'latin-1']).optional(),
  /** Strings read as null. */
  null_values: z.array(z.string()).optional(),
});

export const sourceSchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('csv'),
    /** Required in the top-level `sources:` list, where recipes and merges refer to it. */
    name: z.string().optional(),
    path: z.string(),
    options: readOptionsSchema.optional(),
    /** Column types that override inference, by column name. */
    schema: z.record(z.string(), columnType).optional(),
  }),
  z.strictObject({
    type: z.literal('parquet'),
    name: z.string().optional(),
    path: z.string(),
    schema: z.record(z.string(), columnType).optional(),
  }),
  z.strictObject({
    type: z.literal('jsonl'),
    name: z.string().optional(),
    path: z.string(),
    schema: z.record(z.string(), columnType).optional(),
  }),
]);

const quantile = z.number().min(0).max(1);

export const stepSchema = z.discriminatedUnion('step', [
  z.strictObject({ step: z.literal('select'), columns }),
  z.strictObject({ step: z.literal('drop'), columns }),
  z.strictObject({ step: z.literal('rename'), columns: z.record(z.string(), column) }),
  z.strictObject({
    step: z.literal('cast'),
    column,
    to: columnType,
    /** For strings to timestamps: a strftime format such as `%d/%m/%Y %H:%M`; ISO 8601 when absent. */
    format: z.string().optional(),
    /** Time zone of zone-less timestamp strings, e.g. `Europe/Paris` (default UTC). */
    timezone: z.string().optional(),
    /** For numbers to timestamps: the epoch unit. */
    unit: z.enum(['s', 'ms', 'us']).optional(),
    /** For strings to numbers: locale separators, e.g. decimal `,` and thousands `.`. */
    decimal: z.string().length(1).optional(),
    thousands: z.string().length(1).optional(),
  }),
  z.strictObject({
    step: z.literal('fill'),
    columns,
    with: z.enum(['constant', 'mean', 'median', 'mode']),
    value: z.union([z.number(), z.string(), z.boolean()]).optional(),
  }),
  z.strictObject({ step: z.literal('drop_missing'), columns }),
  z.strictObject({
    step: z.literal('dedupe'),
    /** Key columns; all columns (exact duplicate rows) when absent. */
    columns: columns.optional(),
    keep: z.enum(['first', 'last']).default('first'),
    /** Order that decides first and last (file order when absent). */
    order_by: column.optional(),
  }),
  z.strictObject({ step: z.literal('filter'), where: expression }),
  z.strictObject({
    step: z.literal('derive'),
    column,
    expr: expression,
    type: columnType.optional(),
  }),
  z.strictObject({
    step: z.literal('encode'),
    column,
    method: z.enum(['one_hot', 'ordinal']),
    /** Categories seen fewer times are grouped as `other` (one-hot). */
    min_count: z.number().int().positive().default(1),
  }),
  z.strictObject({ step: z.literal('scale'), columns, method: z.enum(['standard', 'min_max']) }),
  z.strictObject({
    step: z.literal('clip'),
    columns,
    lower: quantile.default(0.01),
    upper: quantile.default(0.99),
  }),
  z.strictObject({
    step: z.literal('merge'),
    /** Name of another source of this file. */
    source: z.string().min(1),
    on: columns,
    how: z.enum(['inner', 'left']).default('left'),
    /** Point-in-time: each left row gets the latest right row with right.ts <= left.ts. */
    as_of: z.strictObject({ left: column, right: column }).optional(),
  }),
  z.strictObject({
    step: z.literal('split'),
    method: z.enum(['random', 'stratified', 'time']),
    /** Shares of train, validation and test; they must sum to 1. */
    fractions: z
      .strictObject({
        train: z.number().min(0).max(1),
        validation: z.number().min(0).max(1),
        test: z.number().min(0).max(1),
      })
      .refine(
        (f) => Math.abs(f.train + f.validation + f.test - 1) < 1e-9,
        'train + validation + test must be 1',
      ),
    /** Stratify by (stratified) or order by (time). */
    column: column.optional(),
    seed: z.number().int().default(42),
  }),
]);

export const ruleSchema = z.discriminatedUnion('rule', [
  z.strictObject({ rule: z.literal('not_null'), column }),
  z.strictObject({ rule: z.literal('unique'), columns }),
  z.strictObject({
    rule: z.literal('range'),
    column,
    min: z.number().optional(),
    max: z.number().optional(),
  }),
  z.strictObject({
    rule: z.literal('allowed'),
    column,
    values: z.array(z.union([z.string(), z.number(), z.boolean()])).min(1),
  }),
  z.strictObject({ rule: z.literal('pattern'), column, regex: z.string().min(1) }),
  z.strictObject({ rule: z.literal('type'), column, type: columnType }),
  z.strictObject({
    rule: z.literal('row_count'),
    min: z.number().int().nonnegative().optional(),
    max: z.number().int().positive().optional(),
  }),
  z.strictObject({ rule: z.literal('null_share'), column, max: z.number().min(0).max(1) }),
  z.strictObject({
    rule: z.literal('distribution'),
    column,
    /** A profile JSON file (`ferry data profile --json`) or `model:<name>` for a model's training profile. */
    reference: z.string().min(1),
    max_psi: z.number().positive().default(0.25),
  }),
  z.strictObject({
    rule: z.literal('expression'),
    check: expression,
    message: z.string().optional(),
  }),
]);

export const validationSchema = z.strictObject({
  name: z.string().regex(/^[a-z][a-z0-9_]*$/, 'a lower-case name'),
  /** fail: nothing is written; quarantine: failing rows are set aside with the reason; warn: report only. */
  policy: z.enum(['fail', 'quarantine', 'warn']).default('quarantine'),
  rules: z.array(ruleSchema).min(1),
});

export const recipeSchema = z.strictObject({
  name: z.string().regex(/^[a-z][a-z0-9_]*$/, 'a lower-case name'),
  description: z.string().optional(),
  /** Name of a source under `sources:`. */
  source: z.string().min(1),
  steps: z.array(stepSchema).default([]),
  /** Name of a rule set under `validations:`, checked after the steps. */
  validation: z.string().optional(),
  /** Where `ferry data prep` writes (.parquet, .csv or .jsonl); splits go to <name>.<split>.<ext>. */
  out: z.string().optional(),
});

export type ReadOptions = z.output<typeof readOptionsSchema>;
export type DataSourceSpec = z.output<typeof sourceSchema>;
export type StepSpec = z.output<typeof stepSchema>;
export type RuleSpec = z.output<typeof ruleSchema>;
export type ValidationSpec = z.output<typeof validationSchema>;
export type RecipeSpec = z.output<typeof recipeSchema>;
