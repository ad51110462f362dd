/**
 * The dedupe step: of rows that are equal (on every column, or on the key columns), one stays.
 * `keep: first` keeps the earliest by `order_by`, `keep: last` the latest; rows tied on
 * `order_by` (or all rows, without it) are ordered by their place in the source file, so the
 * result never depends on how DuckDB schedules its work. A null `order_by` value never wins
 * while another row of the group has one. Nulls in key columns are equal to each other, as SQL's
 * DISTINCT has it. Batch only: at request time a row has no group to be a duplicate in. The
 * step reads its input three times (key hashes, candidate rows, the rows kept).
 */
import { col, requireColumn, requireColumns, ROW } from '../relation.js';
import { sub, type StepKind } from '../step.js';

export const dedupe: StepKind<'dedupe'> = {
  batchOnly:
    'de-duplication compares rows with each other; a single row has nothing to compare with',
  removes: 'deduplicated',
  learns: () => false,
  fit: async (spec, input, ctx) => {
    if (spec.columns) requireColumns(input.schema, spec.columns, ctx.where);
    if (spec.order_by !== undefined) requireColumn(input.schema, spec.order_by, ctx.where);
    return {
      step: 'dedupe',
      columns: spec.columns ? [...spec.columns] : null,
      keep: spec.keep,
      order_by: spec.order_by ?? null,
    };
  },
  schema: (_f, input) => [...input],
  sql: (f, input) => {
    const keyList = (f.columns ?? input.schema.map((c) => c.name)).map(col).join(', ');
    const direction = f.keep === 'first' ? 'ASC' : 'DESC';
    const order = [
      ...(f.order_by === null ? [] : [`${col(f.order_by)} ${direction} NULLS LAST`]),
      `${col(ROW)} ${direction}`,
    ].join(', ');
    // Only rows whose key hash repeats can be duplicates: the window ranks those alone, on the
    // key columns, instead of sorting every whole row; equal keys always hash alike.
    const hash = `hash(${keyList})`;
    const repeated = `SELECT ${hash} FROM ${sub(input)} GROUP BY ALL HAVING count(*) > 1`;
    const candidates = `SELECT * FROM ${sub(input)} WHERE ${hash} IN (${repeated})`;
    const dropped =
      `SELECT ${col(ROW)} FROM (${candidates}) ` +
      `QUALIFY row_number() OVER (PARTITION BY ${keyList} ORDER BY ${order}) > 1`;
    return `SELECT * FROM ${sub(input)} WHERE ${col(ROW)} NOT IN (${dropped})`;
  },
};
