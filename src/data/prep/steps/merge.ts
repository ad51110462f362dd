/**
 * The merge step: columns of another named source joined on key columns.
 * - Without `as_of`, each row gets the other source's row with equal keys. When the other source
 *   has several rows for a key, the last one in its file is used (the report counts the rows
 *   passed over), so a merge never multiplies rows.
 * - With `as_of` (point in time), each row gets the other source's latest row with equal keys and
 *   `right` time <= this row's `left` time (DuckDB's ASOF join): never a row from the future.
 *   Rows tied on keys and time resolve the same way, the last in the file.
 * `how: left` keeps rows without a match (the added columns are null); `how: inner` removes
 * them. A null key or time matches nothing. Added columns keep their names, unless the table
 * already has one of that name: then they are named `<column>_<source>`.
 * Batch only: at request time the added columns are expected in the row itself (enriched, for
 * instance, from the feature store); a missing one is null.
 */
import { FerryError } from '../../../errors/index.js';
import { coerceInput } from '../convert.js';
import type { FittedStepOf } from '../fitted.js';
import { col, requireColumn, requireNewName, ROW, type Relation } from '../relation.js';
import { sub, type StepKind } from '../step.js';

/** The other source, one row per key (and time), the last in file order. */
function latestPerKey(right: Relation, keys: readonly string[]): string {
  return (
    `SELECT * FROM ${sub(right)} WHERE ${keys.map((k) => `${col(k)} IS NOT NULL`).join(' AND ')} ` +
    `QUALIFY row_number() OVER (PARTITION BY ${keys.map(col).join(', ')} ORDER BY ${col(ROW)} DESC) = 1`
  );
}

export const merge: StepKind<'merge'> = {
  batchOnly:
    'a merge needs the other source; at request time the row must already carry the columns it adds',
  removes: 'no_match',
  learns: () => false,
  fit: async (spec, input, ctx) => {
    const right = await ctx.source(spec.source);
    const where = `${ctx.where} (source '${spec.source}')`;
    for (const key of spec.on) {
      const l = requireColumn(input.schema, key, ctx.where);
      const r = requireColumn(right.schema, key, where);
      if (l.type !== r.type) {
        throw new FerryError(
          'FERRY_CONFIG_INVALID',
          `${ctx.where}: key '${key}' is ${l.type} here but ${r.type} in source '${spec.source}'; cast one side first`,
        );
      }
    }
    if (spec.as_of) {
      const l = requireColumn(input.schema, spec.as_of.left, ctx.where);
      const r = requireColumn(right.schema, spec.as_of.right, where);
      if (l.type !== r.type || !['timestamp', 'int', 'float'].includes(l.type)) {
        throw new FerryError(
          'FERRY_CONFIG_INVALID',
          `${ctx.where}: as_of compares '${l.name}' (${l.type}) with '${r.name}' (${r.type}); both must be timestamps (or both numbers)`,
        );
      }
    }
    const columns = right.schema
      .filter((c) => !spec.on.includes(c.name))
      .map((c) => {
        const taken = input.schema.some((s) => s.name === c.name);
        const to = taken ? `${c.name}_${spec.source}` : c.name;
        requireNewName(input.schema, to, ctx.where);
        return { from: c.name, to, type: c.type };
      });
    return {
      step: 'merge',
      source: spec.source,
      on: [...spec.on],
      how: spec.how,
      as_of: spec.as_of ? { ...spec.as_of } : null,
      columns,
    };
  },
  schema: (f, input) => [...input, ...f.columns.map((c) => ({ name: c.to, type: c.type }))],
  sql: (f, input, ctx) => mergeSql(f, input, other(f.source, ctx.sources), ctx.index),
  row: (f) => (row) => {
    for (const c of f.columns) row[c.to] = coerceInput(row[c.to], c.type);
    return row;
  },
  measure: async (f, _input, output, ctx) => {
    const notes: string[] = [];
    const passed = await ctx.query(passedOverSql(f, other(f.source, ctx.sources)));
    const n = Number(passed.columns[0]?.values[0] ?? 0);
    if (n > 0) {
      notes.push(
        `${n} row(s) of source '${f.source}' repeat an earlier key${f.as_of ? ' and time' : ''}; the last in its file was used`,
      );
    }
    if (f.how === 'left') {
      const unmatched = await ctx.query(
        `SELECT count(*) FROM ${sub(output)} WHERE ${col(matchMarker(ctx.index))} IS NULL`,
      );
      const u = Number(unmatched.columns[0]?.values[0] ?? 0);
      if (u > 0)
        notes.push(`${u} row(s) found no match in '${f.source}'; its columns are null there`);
    }
    return { notes };
  },
};

function other(name: string, sources: ReadonlyMap<string, Relation>): Relation {
  const found = sources.get(name);
  if (!found) throw new FerryError('FERRY_INTERNAL', `source '${name}' was not opened for a merge`);
  return found;
}

type FittedMerge = FittedStepOf<'merge'>;

/** The merge's SQL, given the other source's relation. */
export function mergeSql(f: FittedMerge, input: Relation, right: Relation, index: number): string {
  const keys = f.as_of ? [...f.on, f.as_of.right] : f.on;
  const r = `(${latestPerKey(right, keys)})`;
  const added = f.columns.map((c) => `r.${col(c.from)} AS ${col(c.to)}`);
  // A marker of matched rows, for the report; dropped by the runner.
  added.push(`r.${col(ROW)} AS ${col(matchMarker(index))}`);
  const on = f.on.map((k) => `l.${col(k)} = r.${col(k)}`);
  if (f.as_of) on.push(`l.${col(f.as_of.left)} >= r.${col(f.as_of.right)}`);
  const join = f.as_of
    ? f.how === 'left'
      ? 'ASOF LEFT JOIN'
      : 'ASOF JOIN'
    : f.how === 'left'
      ? 'LEFT JOIN'
      : 'JOIN';
  return `SELECT l.*, ${added.join(', ')} FROM ${sub(input)} l ${join} ${r} r ON ${on.join(' AND ')}`;
}

/** Hidden column marking rows a merge matched. */
export function matchMarker(index: number): string {
  return `__ferry_matched${index}`;
}

/** How many rows of the other source a merge passes over (repeated keys, or keys and time). */
export function passedOverSql(f: FittedMerge, right: Relation): string {
  const keys = f.as_of ? [...f.on, f.as_of.right] : f.on;
  const present = keys.map((k) => `${col(k)} IS NOT NULL`).join(' AND ');
  return (
    `SELECT count(*) - (SELECT count(*) FROM (${latestPerKey(right, keys)})) ` +
    `FROM ${sub(right)} WHERE ${present}`
  );
}
