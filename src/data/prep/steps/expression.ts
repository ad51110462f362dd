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
    const c = conversionSql(expr, f.exprType, f.type);
    const replace = input.schema.some((s) => s.name === f.column);
    if (c.helper === null) {
      const value = `${c.value('')} AS ${col(f.column)}`;
      return replace
        ? `SELECT * REPLACE (${value}) FROM ${sub(input)}`
        : `SELECT *, ${value} FROM ${sub(input)}`;
    }
    const helper = col(`${HIDDEN_PREFIX}derive${ctx.index}`);
    const value = `${c.value(helper)} AS ${col(f.column)}`;
    const inner = `(SELECT *, ${c.helper} AS ${helper} FROM ${sub(input)})`;
    return replace
      ? `SELECT * EXCLUDE (${helper}) REPLACE (${value}) FROM ${inner}`
      : `SELECT * EXCLUDE (${helper}), ${value} FROM ${inner}`;
  },
  row: (f, input) => {
    const evaluate = compileToFunction(f.expr, schemaRecord(input));
    const convert = conversionFunction(f.exprType, f.type);
    return (row) => {
      row[f.column] = convert(evaluate(row));
      return row;
    };
  },
  measure: async (f, input, _output, ctx) => {
    if (f.exprType === f.type) return {};
    const expr = `(${compileToSql(f.expr, schemaRecord(input.schema))})`;
    const c = conversionSql(expr, f.exprType, f.type);
    const helper = col(`${HIDDEN_PREFIX}check`);
    const from =
      c.helper === null ? sub(input) : `(SELECT *, ${c.helper} AS ${helper} FROM ${sub(input)})`;
    const present = f.exprType === 'string' ? textSql(expr) : expr;
    const result = await ctx.query(
      `SELECT count(*) FILTER (WHERE ${present} IS NOT NULL AND (${c.value(helper)}) IS NULL) FROM ${from}`,
    );
    const failed = Number(result.columns[0]?.values[0] ?? 0);
    return failed > 0 ? { conversionFailures: { [f.column]: failed } } : {};
  },
};
