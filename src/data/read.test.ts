import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { getColumn, tableToRows, type Table } from '../core/table.js';
import { FerryError } from '../errors/index.js';
import { tempDirs } from '../testing/temp.js';
import { withDuckDB } from './duckdb.js';
import { readSource, readTable, type ReadIssues } from './read.js';

const dir = tempDirs().root;

function file(name: string, text: string | Buffer): string {
  const full = path.join(dir, name);
  writeFileSync(full, text);
  return full;
}

/** readTable's result and what it handed to `onIssues` (null when it did not call it). */
async function readWithIssues(name: string): Promise<{ table: Table; issues: ReadIssues | null }> {
  let issues: ReadIssues | null = null;
  const table = await readTable(name, {
    onIssues: (i) => {
      issues = i;
    },
  });
  return { table, issues };
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

  it('types JSON lines from every line: a late 1.5 makes a column float, never rounded', async () => {
    const lines = Array.from(
      { length: 25_000 },
      (_, i) => `{"n": ${i}, "k": ${i % 7 === 0 ? -i : i}}`,
    );
    lines.push('{"n": 1.5, "k": 3}');
    const table = await readTable(file('late.jsonl', `${lines.join('\n')}\n`));
    expect(getColumn(table, 'n')?.type).toBe('float');
    expect(getColumn(table, 'n')?.values.at(-1)).toBe(1.5);
    expect(getColumn(table, 'n')?.values[7]).toBe(7);
    // Integers of both signs (a 128-bit column in DuckDB) stay ints.
    expect(getColumn(table, 'k')?.type).toBe('int');
    expect(getColumn(table, 'k')?.values.slice(6, 8)).toEqual([6, -7]);
  });

  it('reads an integer past 2^53 as null and says so, rather than rounding it', async () => {
    const { table, issues } = await readWithIssues(
      file('big.jsonl', '{"id": 1}\n{"id": -2}\n{"id": 9007199254740993}\n'),
    );
    expect(getColumn(table, 'id')?.values).toEqual([1, -2, null]);
    expect(issues?.conversionFailures).toEqual({ id: 1 });
    expect(issues?.malformed.count).toBe(0);
  });

  it('leaves out malformed CSV lines and reports them with their line numbers', async () => {
    const csv = file('broken.csv', 'id,name\n1,a\n2,b,extra\n3,c\n4\n5,"e"\n');
    const { table, issues } = await readWithIssues(csv);
    expect(getColumn(table, 'id')?.values).toEqual([1, 3, 5]);
    expect(issues?.file).toBe(csv);
    expect(issues?.malformed.count).toBe(2);
    expect(issues?.malformed.examples.map((m) => [m.line, m.error])).toEqual([
      [3, 'TOO MANY COLUMNS'],
      [5, 'MISSING COLUMNS'],
    ]);
    // A clean file does not call onIssues at all.
    expect((await readWithIssues(file('clean.csv', 'id\n1\n'))).issues).toBeNull();
  });

  it('warns on stderr by default with the count and the first line numbers', async () => {
    const lines = ['a,b', '1,2'];
    for (let i = 0; i < 5; i++) lines.push('x,y,z');
    const csv = file('warn.csv', `${lines.join('\n')}\n`);
    const warned = new Promise<Error>((resolve) => process.once('warning', resolve));
    const table = await readTable(csv);
    const warning = await warned;
    expect(table.rowCount).toBe(1);
    expect(warning.name).toBe('FerryDataWarning');
    expect(warning.message).toContain(csv);
    expect(warning.message).toMatch(/5 malformed lines were left out/);
    expect(warning.message).toMatch(/line 3: too many columns; line 4: .*line 5: .*and 2 more/);
  });

  it('reads on after an unclosed quote and says which line it left out', async () => {
    const lines = ['id,name', '1,a', '"2,b'];
    for (let i = 3; i <= 40; i++) lines.push(i === 30 ? '30,x,extra' : `${i},n${i}`);
    const csv = file('stray.csv', `${lines.join('\n')}\n`);
    const warned = new Promise<Error>((resolve) => process.once('warning', resolve));
    const table = await readTable(csv);
    const warning = await warned;
    // Only line 3 and the line with an extra field are lost; the 37 lines after the quote are read.
    expect(getColumn(table, 'id')?.values).toEqual([
      1,
      ...Array.from({ length: 38 }, (_, k) => k + 3).filter((id) => id !== 30),
    ]);
    expect(warning.message).toMatch(
      /2 malformed lines were left out \(line 3: unclosed quote; line 31: too many columns\)/,
    );
  });

  it('names the lines of a malformed record that spans several', async () => {
    const csv = file(
      'span.csv',
      Buffer.concat([
        Buffer.from('id,note\n1,ok\n2,"caf'),
        Buffer.from([0xe9]),
        Buffer.from('\nau lait"\n3,x,extra\n4,end\n'),
      ]),
    );
    const { table, issues } = await readWithIssues(csv);
    expect(getColumn(table, 'id')?.values).toEqual([1, 4]);
    expect(issues?.malformed).toMatchObject({ count: 2, lines: 3 });
    const warned = new Promise<Error>((resolve) => process.once('warning', resolve));
    await readTable(csv);
    expect((await warned).message).toMatch(
      /2 malformed records \(3 lines\) were left out \(lines 3–4: invalid encoding; line 5: too many columns\)/,
    );
  });

  it('refuses a file in which no line can be read', async () => {
    const error = await errorOf(readTable(file('none.csv', 'a,b\n1,2,3\n4,5,6\n')));
    expect(error.code).toBe('FERRY_DATA_UNREADABLE');
    expect(error.message).toMatch(/none of its 2 lines could be read \(line 2: /);
  });

  it('picks a semicolon, tab or pipe delimiter from the header of a file given without options', async () => {
    const semi = await readTable(file('semi.csv', 'id;amount;note\n1;2.5;"a;b"\n2;3;c\n'));
    expect(tableToRows(semi)).toEqual([
      { id: 1, amount: 2.5, note: 'a;b' },
      { id: 2, amount: 3, note: 'c' },
    ]);
    const tabs = await readTable(file('tabs.txt', 'a\tb\n1\tx\n'));
    expect(tableToRows(tabs)).toEqual([{ a: 1, b: 'x' }]);
    // A comma inside a quoted name does not count; a semicolon inside a value is data.
    const quoted = await readTable(file('quoted.csv', '"x,y";z\n1;2\n'));
    expect(quoted.columns.map((c) => c.name)).toEqual(['x,y', 'z']);
    const commas = await readTable(file('commas.csv', 'a,b\n"1;2",3\n'));
    expect(tableToRows(commas)).toEqual([{ a: '1;2', b: 3 }]);
  });

  it('keeps the columns of a header-only file when empty files are allowed', async () => {
    const table = await readTable(file('cols.csv', 'a,b\n'), { allowEmpty: true });
    expect(table.columns.map((c) => c.name)).toEqual(['a', 'b']);
    expect((await errorOf(readTable(file('zero.jsonl', '')))).code).toBe('FERRY_DATA_EMPTY');
  });
});

describe('readSource', () => {
  it('honours delimiter, quote, latin-1 encoding and null strings', async () => {
    const folder = path.dirname(
      file(
        'fr.csv',
        Buffer.from("ville;prix;code\n'Orl\xe9ans';NA;'007'\n'Lyon';-;3\n'Nice';4,5;x\n", 'latin1'),
      ),
    );
    const { table, malformed } = await readSource(
      {
        type: 'csv',
        path: 'fr.csv',
        options: { delimiter: ';', quote: "'", encoding: 'latin-1', null_values: ['NA', '-'] },
      },
      folder,
    );
    expect(malformed.count).toBe(0);
    expect(tableToRows(table)).toEqual([
      { ville: 'Orléans', prix: null, code: '007' },
      { ville: 'Lyon', prix: null, code: '3' },
      { ville: 'Nice', prix: '4,5', code: 'x' },
    ]);
    // Read as UTF-8, the 0xE9 byte makes its line malformed instead of garbling it.
    const utf8 = await readSource(
      { type: 'csv', path: 'fr.csv', options: { delimiter: ';', quote: "'" } },
      folder,
    );
    expect(utf8.malformed.examples).toMatchObject([{ line: 2, error: 'INVALID ENCODING' }]);
    expect(getColumn(utf8.table, 'ville')?.values).toEqual(['Lyon', 'Nice']);
  });

  it('applies schema overrides and counts the values that do not fit them', async () => {
    file('typed.csv', 'zip,amount,when\n01234,10,1700000000000\n98000,ten,2024-01-02\n');
    const { table, conversionFailures } = await readSource(
      {
        type: 'csv',
        path: 'typed.csv',
        schema: { zip: 'string', amount: 'int', when: 'timestamp' },
      },
      dir,
    );
    expect(table.columns.map((c) => `${c.name}:${c.type}`)).toEqual([
      'zip:string',
      'amount:int',
      'when:timestamp',
    ]);
    expect(tableToRows(table)).toEqual([
      { zip: '01234', amount: 10, when: 1_700_000_000_000 },
      { zip: '98000', amount: null, when: Date.UTC(2024, 0, 2) },
    ]);
    expect(conversionFailures).toEqual({ amount: 1 });
    await expect(
      readSource({ type: 'csv', path: 'typed.csv', schema: { nope: 'int' } }, dir),
    ).rejects.toMatchObject({ code: 'FERRY_COLUMN_UNKNOWN' });
  });

  it('reads paths relative to the folder it is given, and names that folder when the file is missing', async () => {
    const folder = path.dirname(file('rel.jsonl', '{"a": 1}\n'));
    expect(
      tableToRows((await readSource({ type: 'jsonl', path: 'rel.jsonl' }, folder)).table),
    ).toEqual([{ a: 1 }]);
    await expect(
      readSource({ type: 'csv', name: 'tx', path: 'missing.csv' }, folder),
    ).rejects.toMatchObject({
      code: 'FERRY_DATA_UNREADABLE',
      message: expect.stringContaining(
        `source 'tx' (missing.csv): no file at ${path.join(folder, 'missing.csv')}`,
      ),
    });
  });

  it('refuses a header that repeats a name, whatever the delimiter', async () => {
    file('dup.psv', 'a|b|a\n1|2|3\n');
    await expect(
      readSource({ type: 'csv', path: 'dup.psv', options: { delimiter: '|' } }, dir),
    ).rejects.toMatchObject({
      code: 'FERRY_DATA_UNREADABLE',
      message: expect.stringMatching(/repeated column names.*"a"/),
    });
  });
});
