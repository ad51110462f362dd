import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { getColumn, tableToRows } from '../core/table.js';
import { FerryError } from '../errors/index.js';
import { tempDirs } from '../testing/temp.js';
import { withDuckDB } from './duckdb.js';
import { readTable } from './read.js';

const dir = tempDirs().root;

function file(name: string, text: string): string {
  const full = path.join(dir, name);
  writeFileSync(full, text);
  return full;
}

async function errorOf(promise: Promise<unknown>): Promise<FerryError> {
  const error = await promise.catch((e: unknown) => e);
  if (error instanceof FerryError) return error;
  throw new Error(`expected a FerryError, got ${String(error)}`);
}

describe('readTable', () => {
  it('reads a CSV with odd column names and maps every type', async () => {
    const csv = file(
      'odd.csv',
      [
        '"card id","amount (€)","n","ok","when","day","note, with comma","select"',
        'a,1.5,3,true,2026-10-01 12:00:00,2026-10-02,"say ""hi""",x',
        'b,,4,false,2026-10-01 12:00:01.250,2026-10-03,,y',
      ].join('\n'),
    );
    const table = await readTable(csv);
    expect(table.columns.map((c) => `${c.name}:${c.type}`)).toEqual([
      'card id:string',
      'amount (€):float',
      'n:int',
      'ok:bool',
      'when:timestamp',
      'day:timestamp',
      'note, with comma:string',
      'select:string',
    ]);
    expect(tableToRows(table)).toEqual([
      {
        'card id': 'a',
        'amount (€)': 1.5,
        n: 3,
        ok: true,
        when: Date.UTC(2026, 9, 1, 12),
        day: Date.UTC(2026, 9, 2),
        'note, with comma': 'say "hi"',
        select: 'x',
      },
      {
        'card id': 'b',
        'amount (€)': null,
        n: 4,
        ok: false,
        when: Date.UTC(2026, 9, 1, 12, 0, 1, 250),
        day: Date.UTC(2026, 9, 3),
        'note, with comma': null,
        select: 'y',
      },
    ]);
  });

  it('reads times with an offset as UTC', async () => {
    const table = await readTable(
      file('tz.csv', 'ts\n2026-10-01T02:00:00+02:00\n2026-10-01T00:00:00Z\n'),
    );
    expect(getColumn(table, 'ts')?.values).toEqual([Date.UTC(2026, 9, 1), Date.UTC(2026, 9, 1)]);
  });

  it('keeps a column whose odd value comes after the type-guessing sample', async () => {
    const lines = ['v'];
    for (let i = 0; i < 30_000; i++) lines.push(String(i));
    lines.push('n/a');
    const table = await readTable(file('late.csv', lines.join('\n')));
    const v = getColumn(table, 'v');
    expect(v?.type).toBe('string');
    expect(v?.values.at(-1)).toBe('n/a');
    expect(table.rowCount).toBe(30_001);
  });

  it('reads a 100k-row CSV in bulk, with every value', async () => {
    const lines = ['id,amount,card,ts'];
    let sum = 0;
    for (let i = 0; i < 100_000; i++) {
      const amount = (i % 997) / 4;
      sum += amount;
      lines.push(
        `${i},${amount},c${i % 500},${new Date(Date.UTC(2026, 9, 1) + i * 1000).toISOString()}`,
      );
    }
    const table = await readTable(file('big.csv', lines.join('\n')));
    expect(table.rowCount).toBe(100_000);
    const amounts = getColumn(table, 'amount')?.values as number[];
    expect(amounts.reduce((a, b) => a + b, 0)).toBeCloseTo(sum, 6);
    expect(getColumn(table, 'ts')?.values[99_999]).toBe(Date.UTC(2026, 9, 1) + 99_999_000);
    expect(getColumn(table, 'id')?.type).toBe('int');
  });

  it('reads JSON lines and Parquet', async () => {
    const jsonl = file(
      'rows.jsonl',
      '{"k":"a","x":1,"t":"2026-10-01T00:00:00Z"}\n{"k":"b","x":2.5,"t":null}\n',
    );
    expect(tableToRows(await readTable(jsonl))).toEqual([
      { k: 'a', x: 1, t: Date.UTC(2026, 9, 1) },
      { k: 'b', x: 2.5, t: null },
    ]);
    const parquet = path.join(dir, 'rows.parquet');
    await withDuckDB((con) =>
      con.run(
        `COPY (SELECT 'a' AS "k k", 7::INTEGER AS i, 2.25::DECIMAL(6,2) AS d, TIMESTAMP '2026-10-01 00:00:01' AS t, true AS b) TO '${parquet}' (FORMAT parquet)`,
      ),
    );
    const table = await readTable(parquet);
    expect(table.columns.map((c) => c.type)).toEqual([
      'string',
      'int',
      'float',
      'timestamp',
      'bool',
    ]);
    expect(tableToRows(table)).toEqual([
      { 'k k': 'a', i: 7, d: 2.25, t: Date.UTC(2026, 9, 1, 0, 0, 1), b: true },
    ]);
  });

  it('says which file is missing', async () => {
    const error = await errorOf(readTable(path.join(dir, 'nope.csv')));
    expect(error.code).toBe('FERRY_DATA_UNREADABLE');
    expect(error.message).toContain('nope.csv');
  });

  it('refuses empty files and files with only a header', async () => {
    expect((await errorOf(readTable(file('empty.csv', '')))).code).toBe('FERRY_DATA_EMPTY');
    const headerOnly = file('header.csv', 'a,b\n');
    expect((await errorOf(readTable(headerOnly))).code).toBe('FERRY_DATA_EMPTY');
    expect((await readTable(headerOnly, { allowEmpty: true })).rowCount).toBe(0);
  });

  it('refuses a header that repeats a name, which DuckDB would silently rename', async () => {
    const error = await errorOf(readTable(file('dup.csv', 'a,b,a\n1,2,3\n')));
    expect(error.code).toBe('FERRY_DATA_UNREADABLE');
    expect(error.message).toContain('"a"');
    // A real column named like a rename is fine.
    expect((await readTable(file('fine.csv', 'a,a_1\n1,2\n'))).columns.map((c) => c.name)).toEqual([
      'a',
      'a_1',
    ]);
  });

  it('refuses unreadable content and unknown extensions, naming the file', async () => {
    const parquet = await errorOf(readTable(file('bad.parquet', 'PAR1 but not really')));
    expect(parquet.code).toBe('FERRY_DATA_UNREADABLE');
    expect(parquet.message).toContain('bad.parquet');
    const json = await errorOf(readTable(file('bad.jsonl', '{"a": 1}\n{not json\n')));
    expect(json.code).toBe('FERRY_DATA_UNREADABLE');
    const ext = await errorOf(readTable(file('data.xlsx', 'x')));
    expect(ext.code).toBe('FERRY_DATA_UNREADABLE');
    expect(ext.message).toMatch(/\.csv, \.parquet or \.jsonl/);
    // An explicit format wins over the extension.
    expect((await readTable(file('data.dat', 'a\n1\n'), { format: 'csv' })).rowCount).toBe(1);
  });
});
