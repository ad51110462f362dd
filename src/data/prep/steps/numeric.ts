/**
 * Numeric steps with constants learned from the fit rows (nulls ignored):
 * - scale: `standard` makes each column (x - mean) / standard deviation (population), `min_max`
 *   makes it (x - min) / (max - min); a constant column is only shifted (divided by 1). The
 *   result is a float.
 * - clip: values below the `lower` quantile become it, above the `upper` one become it. Float
 *   columns use interpolated quantiles; int columns use the nearest value of the column, so that
 *   they stay ints. Nulls stay null.
 */
import type { ColumnSchema } from '../../../core/table.js';
import { FerryError } from '../../../errors/index.js';
import { col, doubleLiteral, literal, requireColumns } from '../relation.js';
import { sub, type FitContext, type StepKind } from '../step.js';

function requireNumeric(columns: readonly ColumnSchema[], where: string, what: string): void {
  for (const c of columns) {
    if (c.type !== 'int' && c.type !== 'float') {
      throw new FerryError(
        'FERRY_CONFIG_INVALID',
        `${where}: column '${c.name}' is ${c.type}; ${what} needs int or float columns (cast it first)`,
      );
    }
  }
}

async function fitNumbers(
  sql: string,
  ctx: FitContext,
  columns: readonly ColumnSchema[],
  per: number,
): Promise<number[][]> {
  const result = await ctx.query(sql);
  return columns.map((c, i) => {
    const values = Array.from({ length: per }, (_, k) => result.columns[i * per + k]?.values[0]);
    if (values.some((v) => typeof v !== 'number' || !Number.isFinite(v))) {
      throw new FerryError(
        'FERRY_DATA_EMPTY',
        `${ctx.where}: column '${c.name}' has no values in the rows the step is fitted on; fill or drop its missing values first`,
      );
    }
    return values as number[];
  });
}

export const scale: StepKind<'scale'> = {
  batchOnly: null,
  removes: null,
  learns: () => true,
  fit: async (spec, input, ctx) => {
    const columns = requireColumns(input.schema, spec.columns, ctx.where);
    requireNumeric(columns, ctx.where, 'scale');
    const aggregates = columns.flatMap((c) => {
      const x = `CAST(${col(c.name)} AS DOUBLE)`;
      return spec.method === 'standard'
        ? [`avg(${x})`, `coalesce(stddev_pop(${x}), 0)`]
        : [`min(${x})`, `max(${x}) - min(${x})`];
    });
    const fitted = await fitNumbers(
      `SELECT ${aggregates.join(', ')} FROM ${sub(input)} WHERE ${ctx.fitWhere}`,
      ctx,
      columns,
      2,
    );
    return {
      step: 'scale',
      method: spec.method,
      columns: columns.map((c, i) => {
        const [offset, spread] = fitted[i] as [number, number];
        return { column: c.name, offset, scale: spread === 0 ? 1 : spread };
      }),
    };
  },
  schema: (f, input) =>
    input.map((c) =>
      f.columns.some((s) => s.column === c.name) ? { name: c.name, type: 'float' } : c,
    ),
  sql: (f, input) =>
    `SELECT * REPLACE (${f.columns
      .map(
        (s) =>
          `(CAST(${col(s.column)} AS DOUBLE) - ${doubleLiteral(s.offset)}) / ${doubleLiteral(s.scale)} AS ${col(s.column)}`,
      )
      .join(', ')}) FROM ${sub(input)}`,
  row: (f) => (row) => {
    for (const s of f.columns) {
      const v = row[s.column] ?? null;
      row[s.column] = typeof v === 'number' ? (v - s.offset) / s.scale : null;
    }
    return row;
  },
};

export const clip: StepKind<'clip'> = {
  batchOnly: null,
  removes: null,
  learns: () => true,
  fit: async (spec, input, ctx) => {
    if (spec.lower > spec.upper) {
      throw new FerryError(
        'FERRY_CONFIG_INVALID',
        `${ctx.where}: lower (${spec.lower}) is above upper (${spec.upper}); give lower <= upper`,
      );
    }
    const columns = requireColumns(input.schema, spec.columns, ctx.where);
    requireNumeric(columns, ctx.where, 'clip');
    const aggregates = columns.flatMap((c) => {
      const q = c.type === 'int' ? 'quantile_disc' : 'quantile_cont';
      return [
        `CAST(${q}(${col(c.name)}, ${spec.lower}) AS DOUBLE)`,
        `CAST(${q}(${col(c.name)}, ${spec.upper}) AS DOUBLE)`,
      ];
    });
    const fitted = await fitNumbers(
      `SELECT ${aggregates.join(', ')} FROM ${sub(input)} WHERE ${ctx.fitWhere}`,
      ctx,
      columns,
      2,
    );
    return {
      step: 'clip',
      lower: spec.lower,
      upper: spec.upper,
      columns: columns.map((c, i) => {
        const [min, max] = fitted[i] as [number, number];
        return { column: c.name, type: c.type, min, max };
      }),
    };
  },
  schema: (_f, input) => [...input],
  sql: (f, input) =>
    `SELECT * REPLACE (${f.columns
      .map((s) => {
        const c = col(s.column);
        const lo = literal(s.min, s.type);
        const hi = literal(s.max, s.type);
        return `CASE WHEN ${c} < ${lo} THEN ${lo} WHEN ${c} > ${hi} THEN ${hi} ELSE ${c} END AS ${c}`;
      })
      .join(', ')}) FROM ${sub(input)}`,
  row: (f) => (row) => {
    for (const s of f.columns) {
      const v = row[s.column] ?? null;
      if (typeof v === 'number') row[s.column] = v < s.min ? s.min : v > s.max ? s.max : v;
    }
    return row;
  },
};
