/** Steps that choose and name columns: select, drop, rename. */
import type { ColumnSchema } from '../../../core/table.js';
import { FerryError } from '../../../errors/index.js';
import { col, columnList, requireColumns, requireNewName } from '../relation.js';
import { sub, type StepKind } from '../step.js';

/** Keeps the listed columns, in the listed order. */
export const select: StepKind<'select'> = {
  batchOnly: null,
  removes: null,
  learns: () => false,
  fit: async (spec, input, ctx) => {
    requireColumns(input.schema, spec.columns, ctx.where);
    const repeated = spec.columns.filter((c, i) => spec.columns.indexOf(c) !== i);
    if (repeated.length > 0) {
      throw new FerryError(
        'FERRY_CONFIG_INVALID',
        `${ctx.where}: column '${repeated[0]}' is listed twice; list each column once`,
      );
    }
    return { step: 'select', columns: [...spec.columns] };
  },
  schema: (f, input) => requireColumns(input, f.columns, 'select'),
  sql: (f, input) => {
    const others = input.schema.filter((c) => !f.columns.includes(c.name)).map((c) => c.name);
    return others.length === 0
      ? `SELECT * FROM ${sub(input)}`
      : `SELECT * EXCLUDE (${columnList(others)}) FROM ${sub(input)}`;
  },
  row: (f) => (row) => {
    const out: typeof row = {};
    for (const name of f.columns) out[name] = row[name] ?? null;
    return out;
  },
};

/** Removes the listed columns. */
export const drop: StepKind<'drop'> = {
  batchOnly: null,
  removes: null,
  learns: () => false,
  fit: async (spec, input, ctx) => {
    requireColumns(input.schema, spec.columns, ctx.where);
    if (spec.columns.length >= input.schema.length) {
      throw new FerryError(
        'FERRY_CONFIG_INVALID',
        `${ctx.where}: dropping ${spec.columns.join(', ')} would leave no columns`,
      );
    }
    return { step: 'drop', columns: [...new Set(spec.columns)] };
  },
  schema: (f, input) => input.filter((c) => !f.columns.includes(c.name)),
  sql: (f, input) => `SELECT * EXCLUDE (${columnList(f.columns)}) FROM ${sub(input)}`,
  row: (f) => (row) => {
    for (const name of f.columns) delete row[name];
    return row;
  },
};

/** Renames columns (`old: new`); names may be swapped. */
export const rename: StepKind<'rename'> = {
  batchOnly: null,
  removes: null,
  learns: () => false,
  fit: async (spec, input, ctx) => {
    const olds = Object.keys(spec.columns);
    requireColumns(input.schema, olds, ctx.where);
    const kept = input.schema.filter((c) => !olds.includes(c.name));
    const news = Object.values(spec.columns);
    news.forEach((name, i) => {
      requireNewName(kept, name, ctx.where);
      if (news.indexOf(name) !== i) {
        throw new FerryError(
          'FERRY_CONFIG_INVALID',
          `${ctx.where}: two columns would be named '${name}'; give each a distinct name`,
        );
      }
    });
    return { step: 'rename', columns: { ...spec.columns } };
  },
  schema: (f, input): ColumnSchema[] =>
    input.map((c) => ({ name: f.columns[c.name] ?? c.name, type: c.type })),
  sql: (f, input) => {
    const olds = Object.keys(f.columns);
    const renamed = olds.map((old) => `${col(old)} AS ${col(f.columns[old] as string)}`);
    return `SELECT * EXCLUDE (${columnList(olds)}), ${renamed.join(', ')} FROM ${sub(input)}`;
  },
  row: (f) => {
    const pairs = Object.entries(f.columns);
    return (row) => {
      const values = pairs.map(([old]) => row[old] ?? null);
      for (const [old] of pairs) delete row[old];
      pairs.forEach(([, name], i) => {
        row[name] = values[i] ?? null;
      });
      return row;
    };
  },
};
