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
import { sub, type MeasureContext, type StepKind, type StepMeasures } from '../step.js';

/** Hidden column of a converting step: true where a present value did not convert. */
export function failedMarker(index: number): string {
  return `${HIDDEN_PREFIX}failed${index}`;
}

/**
 * The SQL of `input` with column `column` replaced by its conversion and, when the types differ,
 * the hidden column {@link failedMarker} marking present values that did not convert: the step's
 * report counts them from its own output, so the conversion runs once per row, not once more to
 * count its failures. Blank text is missing, not a failure.
 */
export function convertColumnSql(
  input: Relation,
  column: string,
  from: ColumnType,
  to: ColumnType,
  options: ConversionOptions,
  index: number,
): string {
  const c = conversionSql(col(column), from, to, options);
  if (from === to) return `SELECT * REPLACE (${c.value('')} AS ${col(column)}) FROM ${sub(input)}`;
  const helper = col(`${HIDDEN_PREFIX}cast${index}`);
  const value = col(`${HIDDEN_PREFIX}value${index}`);
  const from_ =
    c.helper === null ? sub(input) : `(SELECT *, ${c.helper} AS ${helper} FROM ${sub(input)})`;
  const present =
    from === 'string' ? `${textSql(col(column))} IS NOT NULL` : `${col(column)} IS NOT NULL`;
  const hidden = c.helper === null ? value : `${helper}, ${value}`;
  return (
    `SELECT * EXCLUDE (${hidden}) REPLACE (${value} AS ${col(column)}), ` +
    `(${present} AND ${value} IS NULL) AS ${col(failedMarker(index))} ` +
    `FROM (SELECT *, ${c.value(helper)} AS ${value} FROM ${from_})`
  );
}

/** The count of `failedMarker(index)` over a step's output, as the report's figure for `column`. */
export async function countFailed(
  output: Relation,
  column: string,
  index: number,
  ctx: MeasureContext,
): Promise<StepMeasures> {
  const result = await ctx.query(
    `SELECT count_if(${col(failedMarker(index))}) FROM ${sub(output)}`,
  );
  const failed = Number(result.columns[0]?.values[0] ?? 0);
  return failed > 0 ? { conversionFailures: { [column]: failed } } : {};
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
  measure: async (f, _input, output, ctx) =>
    f.from === f.to ? {} : countFailed(output, f.column, ctx.index, ctx),
};
