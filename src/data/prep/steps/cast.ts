/**
 * The cast step: one column to another type, with the conversion rules of `convert.ts`. A value
 * that does not convert becomes null, and the step reports how many did so.
 */
import type { ColumnType } from '../../../core/table.js';
import {
  checkConversion,
  conversionFunction,
  conversionSql,
  textSql,
  type ConversionOptions,
} from '../convert.js';
import { col, HIDDEN_PREFIX, requireColumn, type Relation } from '../relation.js';
import { sub, type StepKind } from '../step.js';

/** The SQL of `input` with column `column` replaced by its conversion. */
export function convertColumnSql(
  input: Relation,
  column: string,
  from: ColumnType,
  to: ColumnType,
  options: ConversionOptions,
  index: number,
): string {
  const c = conversionSql(col(column), from, to, options);
  if (c.helper === null) {
    return `SELECT * REPLACE (${c.value('')} AS ${col(column)}) FROM ${sub(input)}`;
  }
  const helper = col(`${HIDDEN_PREFIX}cast${index}`);
  return (
    `SELECT * EXCLUDE (${helper}) REPLACE (${c.value(helper)} AS ${col(column)}) ` +
    `FROM (SELECT *, ${c.helper} AS ${helper} FROM ${sub(input)})`
  );
}

/** SQL counting, over `input`, the non-null values of `column` that do not convert. */
export function failuresSql(
  input: Relation,
  column: string,
  from: ColumnType,
  to: ColumnType,
  options: ConversionOptions,
): string {
  const c = conversionSql(col(column), from, to, options);
  const helper = col(`${HIDDEN_PREFIX}check`);
  const from_ =
    c.helper === null ? sub(input) : `(SELECT *, ${c.helper} AS ${helper} FROM ${sub(input)})`;
  // Blank text is missing, not a failure: it converts to null on both sides of the count.
  const present =
    from === 'string' ? `${textSql(col(column))} IS NOT NULL` : `${col(column)} IS NOT NULL`;
  return `SELECT count(*) FILTER (WHERE ${present} AND (${c.value(helper)}) IS NULL) FROM ${from_}`;
}

function optionsOf(spec: {
  format?: string | undefined;
  timezone?: string | undefined;
  unit?: 's' | 'ms' | 'us' | undefined;
  decimal?: string | undefined;
  thousands?: string | undefined;
}): ConversionOptions {
  const options: Record<string, string> = {};
  for (const key of ['format', 'timezone', 'unit', 'decimal', 'thousands'] as const) {
    const value = spec[key];
    if (value !== undefined) options[key] = value;
  }
  return options;
}

export const cast: StepKind<'cast'> = {
  batchOnly: null,
  removes: null,
  learns: () => false,
  fit: async (spec, input, ctx) => {
    const from = requireColumn(input.schema, spec.column, ctx.where).type;
    const options = optionsOf(spec);
    checkConversion(from, spec.to, options, ctx.where);
    return { step: 'cast', column: spec.column, from, to: spec.to, options };
  },
  schema: (f, input) => input.map((c) => (c.name === f.column ? { name: c.name, type: f.to } : c)),
  sql: (f, input, ctx) => convertColumnSql(input, f.column, f.from, f.to, f.options, ctx.index),
  row: (f) => {
    const convert = conversionFunction(f.from, f.to, f.options);
    return (row) => {
      row[f.column] = convert(row[f.column] ?? null);
      return row;
    };
  },
  measure: async (f, input, _output, ctx) => {
    if (f.from === f.to) return {};
    const result = await ctx.query(failuresSql(input, f.column, f.from, f.to, f.options));
    const failed = Number(result.columns[0]?.values[0] ?? 0);
    return failed > 0 ? { conversionFailures: { [f.column]: failed } } : {};
  },
};
