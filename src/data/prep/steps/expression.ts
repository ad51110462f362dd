/**
 * Steps written in Ferry's expression language: filter (rows whose condition is true stay; false
 * or null leave) and derive (a new or replaced column; with `type`, the expression's value is
 * converted by the rules of `convert.ts`, and values that do not convert are counted).
 */
import type { ColumnSchema, ColumnType } from '../../../core/table.js';
import { FerryError, isFerryError } from '../../../errors/index.js';
import { compileToFunction, compileToSql, typeOf } from '../../expr/index.js';
import { checkConversion, conversionFunction, conversionSql, textSql } from '../convert.js';
import { col, HIDDEN_PREFIX, requireNewName } from '../relation.js';
import { sub, type StepKind } from '../step.js';
import { countFailed, failedMarker } from './cast.js';

function schemaRecord(schema: readonly ColumnSchema[]): Record<string, ColumnType> {
  const record: Record<string, ColumnType> = {};
  for (const c of schema) record[c.name] = c.type;
  return record;
}

/** Runs `work`, re-throwing expression errors with the step named. */
function inStep<T>(where: string, work: () => T): T {
  try {
    return work();
  } catch (error) {
    if (isFerryError(error)) {
      throw new FerryError(
        error.code === 'FERRY_COLUMN_UNKNOWN' ? error.code : 'FERRY_CONFIG_INVALID',
        `${where}: ${error.message}`,
        { cause: error },
      );
    }
    throw error;
  }
}

export const filter: StepKind<'filter'> = {
  batchOnly: null,
  removes: 'filtered',
  learns: () => false,
  fit: async (spec, input, ctx) => {
    const type = inStep(ctx.where, () => typeOf(spec.where, schemaRecord(input.schema)));
    if (type !== 'bool') {
      throw new FerryError(
        'FERRY_CONFIG_INVALID',
        `${ctx.where}: the condition '${spec.where}' gives a ${type}, not a bool; write a comparison such as 'amount > 0'`,
      );
    }
    return { step: 'filter', where: spec.where };
  },
  schema: (_f, input) => [...input],
  sql: (f, input) =>
    `SELECT * FROM ${sub(input)} WHERE coalesce(${compileToSql(f.where, schemaRecord(input.schema))}, FALSE)`,
  row: (f, input) => {
    const test = compileToFunction(f.where, schemaRecord(input));
    return (row) => (test(row) === true ? row : null);
  },
};

export const derive: StepKind<'derive'> = {
  batchOnly: null,
  removes: null,
  learns: () => false,
  fit: async (spec, input, ctx) => {
    requireNewName(input.schema, spec.column, ctx.where, [spec.column]);
    const exprType = inStep(ctx.where, () => typeOf(spec.expr, schemaRecord(input.schema)));
    const type = spec.type ?? exprType;
    checkConversion(exprType, type, {}, ctx.where);
    return { step: 'derive', column: spec.column, expr: spec.expr, exprType, type };
  },
  schema: (f, input) =>
    input.some((c) => c.name === f.column)
      ? input.map((c) => (c.name === f.column ? { name: f.column, type: f.type } : c))
      : [...input, { name: f.column, type: f.type }],
  sql: (f, input, ctx) => {
    const expr = `(${compileToSql(f.expr, schemaRecord(input.schema))})`;
    const replace = input.schema.some((s) => s.name === f.column);
    if (f.exprType === f.type) {
      const value = `${expr} AS ${col(f.column)}`;
      return replace
        ? `SELECT * REPLACE (${value}) FROM ${sub(input)}`
        : `SELECT *, ${value} FROM ${sub(input)}`;
    }
    // A conversion: the expression is computed once into a hidden column, converted from there,
    // and values that do not convert are marked for the report (see `convertColumnSql`).
    const raw = col(`${HIDDEN_PREFIX}expr${ctx.index}`);
    const c = conversionSql(raw, f.exprType, f.type);
    const helper = col(`${HIDDEN_PREFIX}derive${ctx.index}`);
    const value = col(`${HIDDEN_PREFIX}value${ctx.index}`);
    let from = `(SELECT *, ${expr} AS ${raw} FROM ${sub(input)})`;
    if (c.helper !== null) from = `(SELECT *, ${c.helper} AS ${helper} FROM ${from})`;
    const present = f.exprType === 'string' ? `${textSql(raw)} IS NOT NULL` : `${raw} IS NOT NULL`;
    const hidden = [raw, ...(c.helper === null ? [] : [helper]), value].join(', ');
    const failed = `(${present} AND ${value} IS NULL) AS ${col(failedMarker(ctx.index))}`;
    const converted = `(SELECT *, ${c.value(helper)} AS ${value} FROM ${from})`;
    return replace
      ? `SELECT * EXCLUDE (${hidden}) REPLACE (${value} AS ${col(f.column)}), ${failed} FROM ${converted}`
      : `SELECT * EXCLUDE (${hidden}), ${value} AS ${col(f.column)}, ${failed} FROM ${converted}`;
  },
  row: (f, input) => {
    const evaluate = compileToFunction(f.expr, schemaRecord(input));
    const convert = conversionFunction(f.exprType, f.type);
    return (row) => {
      row[f.column] = convert(evaluate(row));
      return row;
    };
  },
  measure: async (f, _input, output, ctx) =>
    f.exprType === f.type ? {} : countFailed(output, f.column, ctx.index, ctx),
};
