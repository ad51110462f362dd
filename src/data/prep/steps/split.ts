/**
 * The split step: every row goes to train, validation or test, with exact shares.
 * - random: rows are ranked by a seeded hash of their row number in the source file; the first
 *   `round(n × train)` are train, up to `round(n × (train + validation))` validation, the rest test.
 * - stratified: the same within each value of `column` (null is a value of its own), so every
 *   class keeps the shares.
 * - time: rows are ranked by `column`, earliest first; rows with equal times share the rank of
 *   the first of them, so one instant never straddles two parts. Rows without a time cannot be
 *   placed and leave the table (reason `missing`).
 * The hash is a 32-bit integer mix written in SQL arithmetic (not DuckDB's `hash()` or
 * `random()`, which may change between versions), so a seed gives the same split on every run,
 * machine and DuckDB version. Batch only.
 */
import { FerryError } from '../../../errors/index.js';
import { col, doubleLiteral, requireColumn, ROW, SPLIT } from '../relation.js';
import { sub, type StepKind } from '../step.js';

export const SPLIT_PARTS = ['train', 'validation', 'test'] as const;
export type SplitPart = (typeof SPLIT_PARTS)[number];

const MASK = 4294967295;

/** murmur3's 32-bit finaliser, on a UBIGINT holding 32 bits. */
function mixSql(x: string): string[] {
  // Each line is one projection over the previous, to keep the SQL small.
  return [
    `xor(${x}, ${x} >> 16)`,
    `(${x} * 2246822507) & ${MASK}`,
    `xor(${x}, ${x} >> 13)`,
    `(${x} * 3266489909) & ${MASK}`,
    `xor(${x}, ${x} >> 16)`,
  ];
}

/** The same hash in JavaScript, for tests and tools: an unsigned 32-bit integer. */
export function splitHash(seed: number, row: number): number {
  const mix = (v: number): number => {
    let x = v >>> 0;
    x = (x ^ (x >>> 16)) >>> 0;
    x = Math.imul(x, 2246822507) >>> 0;
    x = (x ^ (x >>> 13)) >>> 0;
    x = Math.imul(x, 3266489909) >>> 0;
    return (x ^ (x >>> 16)) >>> 0;
  };
  const low = row % 2 ** 32;
  const high = Math.floor(row / 2 ** 32);
  return mix((mix((low ^ seed) >>> 0) ^ high) >>> 0);
}

/** SQL adding column `name`, the seeded hash of the row number, to `from`. */
function hashSql(from: string, seed: number, name: string): string {
  const h = col(name);
  const seed32 = ((seed % 2 ** 32) + 2 ** 32) % 2 ** 32;
  let sql = `SELECT *, xor(CAST(${col(ROW)} % 4294967296 AS UBIGINT), CAST(${seed32} AS UBIGINT)) AS ${h} FROM ${from}`;
  const steps = [
    ...mixSql(h),
    `xor(${h}, CAST(${col(ROW)} // 4294967296 AS UBIGINT))`,
    ...mixSql(h),
  ];
  for (const step of steps) sql = `SELECT * REPLACE (${step} AS ${h}) FROM (${sql})`;
  return sql;
}

export const split: StepKind<'split'> = {
  batchOnly: 'a split assigns stored rows to parts; a single row at request time belongs to none',
  removes: 'missing',
  learns: () => false,
  fit: async (spec, input, ctx) => {
    if (spec.method === 'random') {
      if (spec.column !== undefined) {
        throw new FerryError(
          'FERRY_CONFIG_INVALID',
          `${ctx.where}: a random split takes no column; use method: stratified to split by '${spec.column}'`,
        );
      }
    } else {
      if (spec.column === undefined) {
        throw new FerryError(
          'FERRY_CONFIG_INVALID',
          `${ctx.where}: a ${spec.method} split needs \`column\` (${spec.method === 'time' ? 'the time to order by' : 'the class to stratify by'})`,
        );
      }
      const c = requireColumn(input.schema, spec.column, ctx.where);
      if (spec.method === 'time' && !['timestamp', 'int', 'float'].includes(c.type)) {
        throw new FerryError(
          'FERRY_CONFIG_INVALID',
          `${ctx.where}: a time split orders by '${c.name}', which is ${c.type}; cast it to timestamp first`,
        );
      }
    }
    return {
      step: 'split',
      method: spec.method,
      fractions: { ...spec.fractions },
      column: spec.column ?? null,
      seed: spec.seed,
    };
  },
  schema: (_f, input) => [...input],
  sql: (f, input, ctx) => {
    // Parts are ranked on the few columns that decide them (row number, class or time), then
    // joined back by row number: the window sorts those columns, not whole rows.
    const h = `__ferry_hash${ctx.index}`;
    const row = col(`__ferry_part_row${ctx.index}`);
    const train = doubleLiteral(f.fractions.train);
    const upToValidation = doubleLiteral(f.fractions.train + f.fractions.validation);
    let ranked: string;
    if (f.method === 'time') {
      const t = col(f.column as string);
      ranked =
        `SELECT ${col(ROW)}, rank() OVER (ORDER BY ${t}) - 1 AS __ferry_rank, count(*) OVER () AS __ferry_n ` +
        `FROM ${sub(input)} WHERE ${t} IS NOT NULL`;
    } else {
      const by = f.method === 'stratified' ? col(f.column as string) : null;
      const partition = by === null ? '' : `PARTITION BY ${by} `;
      const keys = `(SELECT ${col(ROW)}${by === null ? '' : `, ${by}`} FROM ${sub(input)})`;
      ranked =
        `SELECT ${col(ROW)}, row_number() OVER (${partition}ORDER BY ${col(h)}, ${col(ROW)}) - 1 AS __ferry_rank, ` +
        `count(*) OVER (${partition.trim()}) AS __ferry_n FROM (${hashSql(keys, f.seed, h)})`;
    }
    const part =
      `CASE WHEN __ferry_rank < round(__ferry_n * ${train}) THEN 'train' ` +
      `WHEN __ferry_rank < round(__ferry_n * ${upToValidation}) THEN 'validation' ELSE 'test' END`;
    const parts = `SELECT ${col(ROW)} AS ${row}, ${part} AS ${col(SPLIT)} FROM (${ranked})`;
    return (
      `SELECT i.*, p.${col(SPLIT)} FROM ${sub(input)} i ` +
      `JOIN (${parts}) p ON i.${col(ROW)} = p.${row}`
    );
  },
};
