/**
 * The encode step, with categories learned from the fit rows (non-null values seen at least
 * `min_count` times, in DuckDB's order of the values):
 * - one_hot replaces the column by one int column per category, `<column>_<value>`, holding 1
 *   for that value and 0 otherwise, plus `<column>_other` holding 1 for a value that is not a
 *   category (too rare, or unseen when fitted); a null sets no column;
 * - ordinal replaces the column by the category's position (0, 1, ...), -1 for a value that is
 *   not a category, null for null.
 */
import type { Scalar } from '../../../core/table.js';
import { FerryError } from '../../../errors/index.js';
import { col, literal, requireColumn, requireNewName } from '../relation.js';
import { sub, type StepKind } from '../step.js';

/** One-hot encoding of more categories than this is almost always a mistake. */
const MAX_ONE_HOT = 1000;

function label(value: Scalar): string {
  return typeof value === 'string' ? value : String(value);
}

export const encode: StepKind<'encode'> = {
  batchOnly: null,
  removes: null,
  learns: () => true,
  fit: async (spec, input, ctx) => {
    const column = requireColumn(input.schema, spec.column, ctx.where);
    const c = col(column.name);
    const result = await ctx.query(
      `SELECT ${c} FROM ${sub(input)} WHERE ${ctx.fitWhere} AND ${c} IS NOT NULL ` +
        `GROUP BY ${c} HAVING count(*) >= ${spec.min_count} ORDER BY ${c}`,
    );
    const values = result.columns[0]?.values ?? [];
    if (spec.method === 'ordinal') {
      return {
        step: 'encode',
        method: 'ordinal',
        column: column.name,
        type: column.type,
        min_count: spec.min_count,
        categories: [...values],
      };
    }
    if (values.length > MAX_ONE_HOT) {
      throw new FerryError(
        'FERRY_CONFIG_INVALID',
        `${ctx.where}: column '${column.name}' has ${values.length} categories seen at least ${spec.min_count} times; one-hot encoding makes a column for each, and at most ${MAX_ONE_HOT} are allowed: raise min_count or use method: ordinal`,
      );
    }
    const rest = input.schema.filter((s) => s.name !== column.name);
    const categories = values.map((value) => {
      const name = `${column.name}_${label(value)}`;
      requireNewName(rest, name, ctx.where);
      return { value, column: name };
    });
    const taken = new Set(categories.map((x) => x.column));
    let other = `${column.name}_other`;
    while (taken.has(other)) other = `${other}_`;
    requireNewName(rest, other, ctx.where);
    return {
      step: 'encode',
      method: 'one_hot',
      column: column.name,
      type: column.type,
      min_count: spec.min_count,
      categories,
      other,
    };
  },
  schema: (f, input) => {
    if (f.method === 'ordinal') {
      return input.map((c) => (c.name === f.column ? { name: c.name, type: 'int' } : c));
    }
    const out = input.filter((c) => c.name !== f.column);
    for (const x of f.categories) out.push({ name: x.column, type: 'int' });
    out.push({ name: f.other, type: 'int' });
    return out;
  },
  sql: (f, input) => {
    const c = col(f.column);
    if (f.method === 'ordinal') {
      const list = `[${f.categories.map((v) => literal(v, f.type)).join(', ')}]`;
      const code =
        f.categories.length === 0
          ? 'CAST(-1 AS BIGINT)'
          : `CAST(coalesce(list_position(${list}, ${c}), 0) - 1 AS BIGINT)`;
      return `SELECT * REPLACE (CASE WHEN ${c} IS NULL THEN NULL ELSE ${code} END AS ${c}) FROM ${sub(input)}`;
    }
    const hot = f.categories.map(
      (x) =>
        `CAST(CASE WHEN ${c} = ${literal(x.value, f.type)} THEN 1 ELSE 0 END AS BIGINT) AS ${col(x.column)}`,
    );
    const known =
      f.categories.length === 0
        ? 'FALSE'
        : `list_contains([${f.categories.map((x) => literal(x.value, f.type)).join(', ')}], ${c})`;
    const other = `CAST(CASE WHEN ${c} IS NOT NULL AND NOT ${known} THEN 1 ELSE 0 END AS BIGINT) AS ${col(f.other)}`;
    return `SELECT * EXCLUDE (${c}), ${[...hot, other].join(', ')} FROM ${sub(input)}`;
  },
  row: (f) => {
    if (f.method === 'ordinal') {
      const codes = new Map<Scalar, number>(f.categories.map((v, i) => [v, i]));
      return (row) => {
        const v = row[f.column] ?? null;
        row[f.column] = v === null ? null : (codes.get(v) ?? -1);
        return row;
      };
    }
    const columns = new Map<Scalar, string>(f.categories.map((x) => [x.value, x.column]));
    return (row) => {
      const v = row[f.column] ?? null;
      delete row[f.column];
      for (const x of f.categories) row[x.column] = 0;
      const hit = v === null ? undefined : columns.get(v);
      if (hit !== undefined) row[hit] = 1;
      row[f.other] = v !== null && hit === undefined ? 1 : 0;
      return row;
    };
  },
};
