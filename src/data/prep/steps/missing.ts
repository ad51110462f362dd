/**
 * Steps about missing values: fill (a constant, or the mean, median or mode learned from the fit
 * rows) and drop_missing (rows missing any of the named columns leave the table).
 *
 * A fill keeps the column's type: the mean or median of an int column is rounded half away from
 * zero. Mean and median apply to int and float columns; the mode (most frequent value, the
 * smallest on ties) and constants to any column.
 */
import type { Scalar } from '../../../core/table.js';
import { FerryError } from '../../../errors/index.js';
import { coerceInput } from '../convert.js';
import { col, literal, requireColumns } from '../relation.js';
import { sub, type StepKind } from '../step.js';

function roundHalfAway(v: number): number {
  return Math.sign(v) * Math.round(Math.abs(v));
}

export const fill: StepKind<'fill'> = {
  batchOnly: null,
  removes: null,
  learns: (spec) => spec.with !== 'constant',
  fit: async (spec, input, ctx) => {
    const columns = requireColumns(input.schema, spec.columns, ctx.where);
    if (spec.with === 'constant') {
      if (spec.value === undefined) {
        throw new FerryError(
          'FERRY_CONFIG_INVALID',
          `${ctx.where}: a constant fill needs \`value\`, e.g. value: 0`,
        );
      }
      return {
        step: 'fill',
        with: 'constant',
        values: columns.map((c) => {
          const value = coerceInput(spec.value, c.type);
          if (value === null) {
            throw new FerryError(
              'FERRY_CONFIG_INVALID',
              `${ctx.where}: value ${JSON.stringify(spec.value)} is not a ${c.type}, the type of column '${c.name}'`,
            );
          }
          return { column: c.name, type: c.type, value };
        }),
      };
    }
    if (spec.value !== undefined) {
      throw new FerryError(
        'FERRY_CONFIG_INVALID',
        `${ctx.where}: \`value\` applies to a constant fill only; remove it or use with: constant`,
      );
    }
    const values: { column: string; type: (typeof columns)[number]['type']; value: Scalar }[] = [];
    for (const c of columns) {
      let value: Scalar;
      if (spec.with === 'mode') {
        const result = await ctx.query(
          `SELECT ${col(c.name)} FROM ${sub(input)} WHERE ${ctx.fitWhere} AND ${col(c.name)} IS NOT NULL ` +
            `GROUP BY ${col(c.name)} ORDER BY count(*) DESC, ${col(c.name)} ASC LIMIT 1`,
        );
        value = result.rowCount > 0 ? (result.columns[0]?.values[0] ?? null) : null;
      } else {
        if (c.type !== 'int' && c.type !== 'float') {
          throw new FerryError(
            'FERRY_CONFIG_INVALID',
            `${ctx.where}: column '${c.name}' is ${c.type}; a ${spec.with} needs an int or float column (use mode or constant)`,
          );
        }
        const aggregate =
          spec.with === 'mean' ? `avg(${col(c.name)})` : `quantile_cont(${col(c.name)}, 0.5)`;
        const result = await ctx.query(
          `SELECT CAST(${aggregate} AS DOUBLE) FROM ${sub(input)} WHERE ${ctx.fitWhere}`,
        );
        const v = result.columns[0]?.values[0] ?? null;
        value = typeof v === 'number' ? (c.type === 'int' ? roundHalfAway(v) : v) : null;
      }
      if (value === null) {
        throw new FerryError(
          'FERRY_DATA_EMPTY',
          `${ctx.where}: column '${c.name}' has no values in the rows the fill is fitted on, so there is no ${spec.with} to fill with; use a constant`,
        );
      }
      values.push({ column: c.name, type: c.type, value });
    }
    return { step: 'fill', with: spec.with, values };
  },
  schema: (_f, input) => [...input],
  sql: (f, input) =>
    `SELECT * REPLACE (${f.values
      .map((v) => `coalesce(${col(v.column)}, ${literal(v.value, v.type)}) AS ${col(v.column)}`)
      .join(', ')}) FROM ${sub(input)}`,
  row: (f) => (row) => {
    for (const v of f.values) {
      if ((row[v.column] ?? null) === null) row[v.column] = v.value;
    }
    return row;
  },
};

export const dropMissing: StepKind<'drop_missing'> = {
  batchOnly: null,
  removes: 'missing',
  learns: () => false,
  fit: async (spec, input, ctx) => {
    requireColumns(input.schema, spec.columns, ctx.where);
    return { step: 'drop_missing', columns: [...new Set(spec.columns)] };
  },
  schema: (_f, input) => [...input],
  sql: (f, input) =>
    `SELECT * FROM ${sub(input)} WHERE ${f.columns.map((c) => `${col(c)} IS NOT NULL`).join(' AND ')}`,
  row: (f) => (row) => (f.columns.some((c) => (row[c] ?? null) === null) ? null : row),
};
