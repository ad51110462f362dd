import { describe, expect, it } from 'vitest';
import type { ColumnType, Scalar } from '../../core/table.js';
import { quoteString, resultToTable, withDuckDB } from '../duckdb.js';
import {
  checkConversion,
  coerceInput,
  conversionFunction,
  conversionSql,
  type ConversionOptions,
} from './convert.js';
import { literal, sqlType } from './relation.js';

/** Converts `inputs` in DuckDB and in JavaScript; returns both result lists. */
async function bothWays(
  from: ColumnType,
  to: ColumnType,
  options: ConversionOptions,
  inputs: readonly Scalar[],
): Promise<{ sql: Scalar[]; js: Scalar[] }> {
  const c = conversionSql('v', from, to, options);
  const values = inputs
    .map(
      (v, i) =>
        `(${i}, ${from === 'string' && typeof v === 'string' ? quoteString(v) : literal(v, from)})`,
    )
    .join(', ');
  const source = `SELECT i, CAST(v AS ${sqlType(from)}) AS v FROM (VALUES ${values}) t(i, v)`;
  const inner = c.helper === null ? `(${source})` : `(SELECT *, ${c.helper} AS h FROM (${source}))`;
  const table = await withDuckDB(async (con) =>
    resultToTable(await con.run(`SELECT ${c.value('h')} AS out FROM ${inner} ORDER BY i`)),
  );
  const convert = conversionFunction(from, to, options);
  return { sql: [...(table.columns[0]?.values ?? [])], js: inputs.map((v) => convert(v)) };
}

const utc = (iso: string): number => Date.parse(iso);

describe('conversions', () => {
  it('reads locale numbers and refuses what is not a number, the same in SQL and JS', async () => {
    const inputs = ['1.234,5', ' 1.234.567,25 ', '-0,001', '12', '1,2,3', 'abc', '', '1e3', 'NaN'];
    const { sql, js } = await bothWays('string', 'float', { decimal: ',', thousands: '.' }, inputs);
    expect(js).toEqual([1234.5, 1234567.25, -0.001, 12, null, null, null, 1000, null]);
    expect(sql).toEqual(js);
  });

  it('reads ints only from whole numbers within 2^53', async () => {
    const inputs = [
      '42',
      ' 7 ',
      '3.0',
      '1e3',
      '2.5',
      '9007199254740991',
      '9007199254740993',
      '0x10',
    ];
    const { sql, js } = await bothWays('string', 'int', {}, inputs);
    expect(js).toEqual([42, 7, 3, 1000, null, 9007199254740991, null, null]);
    expect(sql).toEqual(js);
  });

  it('reads ISO timestamps with offsets, epoch milliseconds, and refuses impossible dates', async () => {
    const inputs = [
      '2024-03-05',
      '2024-03-05T10:20:30.123456Z',
      '2024-03-05 10:20:30+02:00',
      '2024-03-05T10:20:30-0530',
      '1709634030000',
      '2024-02-29 23:59:59',
      '2023-02-29',
      '2024-03-05 24:00',
      '2024-03-05 10:20:60',
      '2024-03-05T10:20:30.1234567',
      'yesterday',
    ];
    const { sql, js } = await bothWays('string', 'timestamp', {}, inputs);
    expect(js).toEqual([
      utc('2024-03-05T00:00:00Z'),
      utc('2024-03-05T10:20:30.123Z') + 0.456,
      utc('2024-03-05T08:20:30Z'),
      utc('2024-03-05T15:50:30Z'),
      1709634030000,
      utc('2024-02-29T23:59:59Z'),
      null,
      null,
      null,
      utc('2024-03-05T10:20:30.123Z') + 0.456,
      null,
    ]);
    expect(sql).toEqual(js);
  });

  it('reads wall-clock times in a zone across daylight-saving changes like DuckDB', async () => {
    const inputs = [
      '2024-03-31 01:59:59', // Paris, just before the spring jump: +01:00
      '2024-03-31 02:30:00', // skipped: read with the offset from before, +01:00
      '2024-03-31 03:00:00', // after the jump: +02:00
      '2024-10-27 01:30:00', // before the fall-back: +02:00
      '2024-10-27 02:30:00', // happens twice: the later one, +01:00
      '2024-10-27 03:30:00', // after: +01:00
      '2024-07-01 12:00:00Z', // an explicit offset wins over the zone
    ];
    const { sql, js } = await bothWays('string', 'timestamp', { timezone: 'Europe/Paris' }, inputs);
    expect(js).toEqual([
      utc('2024-03-31T00:59:59Z'),
      utc('2024-03-31T01:30:00Z'),
      utc('2024-03-31T01:00:00Z'),
      utc('2024-10-26T23:30:00Z'),
      utc('2024-10-27T01:30:00Z'),
      utc('2024-10-27T02:30:00Z'),
      utc('2024-07-01T12:00:00Z'),
    ]);
    expect(sql).toEqual(js);
    const ny = await bothWays('string', 'timestamp', { timezone: 'America/New_York' }, [
      '2024-03-10 02:30',
      '2024-11-03 01:30',
    ]);
    expect(ny.js).toEqual([utc('2024-03-10T07:30:00Z'), utc('2024-11-03T06:30:00Z')]);
    expect(ny.sql).toEqual(ny.js);
  });

  it('reads strftime formats with names, 12-hour clocks and two-digit years', async () => {
    const format = '%d %b %y %I:%M %p';
    const inputs = [
      '05 Jan 24 12:30 AM',
      '5 jan 69 1:05 pm',
      '31 Feb 24 10:00 AM',
      '05 Foo 24 1:00 PM',
    ];
    const { sql, js } = await bothWays('string', 'timestamp', { format }, inputs);
    expect(js).toEqual([utc('2024-01-05T00:30:00Z'), utc('1969-01-05T13:05:00Z'), null, null]);
    expect(sql).toEqual(js);
    const dotted = await bothWays('string', 'timestamp', { format: '%d/%m/%Y %H:%M:%S.%f%z' }, [
      '05/01/2024 10:30:00.5+01:00',
      '05/01/2024 10:30:00.5',
    ]);
    expect(dotted.js).toEqual([utc('2024-01-05T09:30:00.500Z'), null]);
    expect(dotted.sql).toEqual(dotted.js);
  });

  it('converts numbers to timestamps by unit and back to UTC milliseconds', async () => {
    const seconds = await bothWays('float', 'timestamp', { unit: 's' }, [1.5, -1.0000005, 1e300]);
    expect(seconds.js).toEqual([1500, -1000.001, null]);
    expect(seconds.sql).toEqual(seconds.js);
    const back = await bothWays('timestamp', 'int', {}, [1500, 1500.25, -2000]);
    expect(back.js).toEqual([1500, null, -2000]);
    expect(back.sql).toEqual(back.js);
    const text = await bothWays('timestamp', 'string', {}, [utc('2024-01-05T10:00:00Z'), -1.5]);
    expect(text.js).toEqual(['2024-01-05 10:00:00', '1969-12-31 23:59:59.998500']);
    expect(text.sql).toEqual(text.js);
  });

  it('converts between numbers and booleans only where the value fits', async () => {
    const toInt = await bothWays('float', 'int', {}, [2, 2.5, -0]);
    expect(toInt.js).toEqual([2, null, 0]);
    expect(toInt.sql).toEqual(toInt.js);
    const toBool = await bothWays('int', 'bool', {}, [0, 1, 2]);
    expect(toBool.js).toEqual([false, true, null]);
    expect(toBool.sql).toEqual(toBool.js);
    const fromText = await bothWays('string', 'bool', {}, ['Yes', ' f ', 'maybe', '1']);
    expect(fromText.js).toEqual([true, false, null, true]);
    expect(fromText.sql).toEqual(fromText.js);
  });

  it('refuses conversions and options that do not apply, naming the step', () => {
    const where = "recipe 'r', step 1 (cast)";
    expect(() => checkConversion('float', 'string', {}, where)).toThrow(/float to string/);
    expect(() => checkConversion('int', 'float', { format: '%Y' }, where)).toThrow(/format/);
    expect(() =>
      checkConversion('string', 'timestamp', { timezone: 'Mars/Olympus' }, where),
    ).toThrow(/not a time zone/);
    expect(() => checkConversion('string', 'timestamp', { format: '%Y-%m-%d %Q' }, where)).toThrow(
      /%Q/,
    );
    expect(() => checkConversion('string', 'timestamp', { format: '%H:%M' }, where)).toThrow(
      /a year/,
    );
  });

  it('reads request values against a column type', () => {
    expect(coerceInput('12', 'int')).toBe(12);
    expect(coerceInput(12.5, 'int')).toBeNull();
    expect(coerceInput(Number.NaN, 'float')).toBeNull();
    expect(coerceInput(true, 'float')).toBe(1);
    expect(coerceInput('2024-01-01', 'timestamp')).toBe(utc('2024-01-01T00:00:00Z'));
    expect(coerceInput({ a: 1 }, 'string')).toBeNull();
    expect(coerceInput(undefined, 'bool')).toBeNull();
  });
});
