import { describe, expect, it } from 'vitest';
import type { ColumnType, Scalar } from '../../core/table.js';
import { quoteIdent, resultToTable, withDuckDB } from '../duckdb.js';
import { convertsTo, convertsToSql } from './convert.js';

const TYPES: readonly ColumnType[] = ['float', 'int', 'bool', 'timestamp', 'string'];

/** DuckDB's verdict for each value of a column built by `valuesSql`, per target type. */
async function sqlVerdicts(
  valuesSql: string,
  from: ColumnType,
  numeric: (c: string) => string,
): Promise<{ values: Scalar[]; verdicts: Record<ColumnType, boolean[]> }> {
  return withDuckDB(async (con) => {
    const c = quoteIdent('v');
    const checks = TYPES.map(
      (to) => `${convertsToSql(c, from, to, numeric(c))} AS ${quoteIdent(to)}`,
    );
    const table = await resultToTable(
      await con.run(`SELECT v, ${checks.join(', ')} FROM (${valuesSql}) ORDER BY i`),
    );
    const verdicts = {} as Record<ColumnType, boolean[]>;
    TYPES.forEach((to, i) => {
      verdicts[to] = (table.columns[i + 1]?.values ?? []).map((v) => v === true);
    });
    return { values: table.columns[0]?.values ?? [], verdicts };
  });
}

const TEXTS = [
  '12',
  ' 12 ',
  '\t-3.5e2\r\n',
  '+7',
  '.5',
  '5.',
  '3.0',
  '1e3',
  '1.5',
  '9007199254740991',
  '9007199254740992',
  '-9007199254740991.0',
  '',
  '   ',
  '0x1F',
  '1_000',
  'Infinity',
  'NaN',
  '1e400',
  '12abc',
  '--1',
  'true',
  'FALSE',
  ' Yes ',
  'n',
  '1',
  '0',
  '2',
  'on',
  '2024-02-29',
  '2023-02-29',
  '2024-02-30',
  '2024-13-01',
  '2024-04-31',
  '2024-01-15T10:30',
  '2024-01-15 10:30:59.123456789',
  '2024-01-15T24:00:00',
  '2024-01-15T10:60:00',
  '2024-01-15T10:30:60',
  '2024-01-15T10:30:00Z',
  '2024-01-15T10:30:00+05:30',
  '2024-01-15T10:30:00-0800',
  '2024-01-15T10:30:00+24:00',
  '0000-02-29',
  '1900-02-29',
  '2024-1-15',
  '15/01/2024',
  '1700000000000',
  '-86400000',
  'March 7 2024',
  '\u00a012',
];

describe('convertsTo and convertsToSql agree', () => {
  it('on text, value by value, for every target type', async () => {
    const rows = TEXTS.map((t, i) => `(${i}, '${t.replaceAll("'", "''")}')`).join(', ');
    const { verdicts } = await sqlVerdicts(
      `SELECT * FROM (VALUES ${rows}) t(i, v)`,
      'string',
      () => 'CAST(NULL AS DOUBLE)',
    );
    for (const to of TYPES) {
      const js = TEXTS.map((t) => convertsTo(t, to));
      expect({ to, verdicts: js }).toEqual({ to, verdicts: verdicts[to] });
    }
  });

  it('on floats, including NaN and infinities', async () => {
    const { values, verdicts } = await sqlVerdicts(
      `SELECT * FROM (VALUES (0, 1.5::DOUBLE), (1, 3.0), (2, 'nan'::DOUBLE), (3, 'inf'::DOUBLE), (4, 0.0), (5, 1.0), (6, NULL), (7, 9007199254740992.0), (8, -9007199254740991.0)) t(i, v)`,
      'float',
      (c) => `CAST(${c} AS DOUBLE)`,
    );
    for (const to of TYPES) {
      expect(values.map((v) => convertsTo(v, to))).toEqual(verdicts[to]);
    }
  });

  it('on booleans', async () => {
    const { values, verdicts } = await sqlVerdicts(
      `SELECT * FROM (VALUES (0, TRUE), (1, FALSE), (2, NULL::BOOLEAN)) t(i, v)`,
      'bool',
      (c) => `CAST(${c} AS DOUBLE)`,
    );
    for (const to of TYPES) {
      expect(values.map((v) => convertsTo(v, to))).toEqual(verdicts[to]);
    }
  });
});

describe('convertsTo', () => {
  it('lets missing values through and judges the rest', () => {
    expect(convertsTo(null, 'int')).toBe(true);
    expect(convertsTo('  ', 'timestamp')).toBe(true);
    expect(convertsTo('12', 'int')).toBe(true);
    expect(convertsTo('12.5', 'int')).toBe(false);
    expect(convertsTo('0x1F', 'float')).toBe(false);
    expect(convertsTo('2024-02-30', 'timestamp')).toBe(false);
    expect(convertsTo('2024-02-29T23:59:59Z', 'timestamp')).toBe(true);
    expect(convertsTo(true, 'timestamp')).toBe(false);
    expect(convertsTo(2, 'bool')).toBe(false);
    expect(convertsTo(Number.NaN, 'float')).toBe(false);
    expect(convertsTo('anything', 'string')).toBe(true);
  });
});
