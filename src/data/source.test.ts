import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { DataSourceSpec } from '../config/data-schema.js';
import type { Table } from '../core/table.js';
import { tempDirs } from '../testing/temp.js';
import { resultToTable, withDuckDB } from './duckdb.js';
import { offsetSql, openSource, type OpenedSource } from './source.js';

const tmp = tempDirs();

async function open(
  spec: DataSourceSpec,
  dir: string,
): Promise<{ source: OpenedSource; table: Table }> {
  return withDuckDB(async (con) => {
    const source = await openSource(con, spec, dir, { stageDir: tmp.fresh() });
    const table = await resultToTable(
      await con.run(`SELECT * FROM (${source.relation.sql}) ORDER BY __ferry_row`),
    );
    return { source, table };
  });
}

function values(table: Table, name: string): unknown[] {
  return table.columns.find((c) => c.name === name)?.values ?? [];
}

function write(dir: string, name: string, content: string | Buffer): string {
  writeFileSync(path.join(dir, name), content);
  return name;
}

describe('openSource', () => {
  it("reports malformed lines with their line numbers and keeps every other row, numbered as the file's rows", async () => {
    const dir = tmp.fresh();
    const file = write(
      dir,
      'tx.csv',
      'id,name,amount\n1,a,10\n2,b,20,extra\n3,c\n4,"d, quoted",40\n5,e,50\n',
    );
    const { source, table } = await open({ type: 'csv', path: file }, dir);
    expect(source.rows).toBe(3);
    expect(source.malformed.count).toBe(2);
    expect(source.malformed.lines).toBe(2);
    expect(source.malformed.examples.map((m) => [m.line, m.lastLine, m.row, m.error])).toEqual([
      [3, 3, 2, 'TOO MANY COLUMNS'],
      [4, 4, 3, 'MISSING COLUMNS'],
    ]);
    expect(values(table, 'id')).toEqual([1, 4, 5]);
    expect(values(table, 'name')).toEqual(['a', 'd, quoted', 'e']);
    // Row numbers are the file's (the header not counted), so a quarantine report points at them.
    expect(values(table, '__ferry_row')).toEqual([1, 4, 5]);
  });

  it('infers types from every value, widening when a value past the sample does not fit', async () => {
    const dir = tmp.fresh();
    const lines = ['n,flag,when,code'];
    for (let i = 0; i < 25_000; i++) lines.push(`${i},true,2024-01-0${(i % 9) + 1},0${i % 10}`);
    lines.push('12.5,false,2024-02-01T10:00:00Z,07');
    const { source, table } = await open(
      { type: 'csv', path: write(dir, 'big.csv', lines.join('\n')) },
      dir,
    );
    expect(source.relation.schema).toEqual([
      { name: 'n', type: 'float' },
      { name: 'flag', type: 'bool' },
      { name: 'when', type: 'timestamp' },
      { name: 'code', type: 'int' },
    ]);
    expect(values(table, 'n').at(-1)).toBe(12.5);
    expect(values(table, 'when').at(-1)).toBe(Date.parse('2024-02-01T10:00:00Z'));
    expect(source.conversionFailures).toEqual({});
  });

  it('keeps declared types and counts the values that do not fit them instead of dropping rows', async () => {
    const dir = tmp.fresh();
    const file = write(dir, 'x.csv', 'id,amount\n1,10\n2,ten\n3,\n4,12.5\n');
    const { source, table } = await open(
      { type: 'csv', path: file, schema: { amount: 'int', id: 'string' } },
      dir,
    );
    expect(source.rows).toBe(4);
    expect(values(table, 'amount')).toEqual([10, null, null, null]);
    expect(values(table, 'id')).toEqual(['1', '2', '3', '4']);
    // 'ten' and 12.5 fail; the empty value is missing, not a failure.
    expect(source.conversionFailures).toEqual({ amount: 2 });
  });

  it('reads delimiters, quotes, null markers and latin-1 as configured', async () => {
    const dir = tmp.fresh();
    const file = write(
      dir,
      'fr.csv',
      Buffer.from("ville;prix;note\n'Orl\xe9ans';NA;'a;b'\n'Lyon';3;x\n", 'latin1'),
    );
    const { table } = await open(
      {
        type: 'csv',
        path: file,
        options: { delimiter: ';', quote: "'", encoding: 'latin-1', null_values: ['NA'] },
      },
      dir,
    );
    expect(values(table, 'ville')).toEqual(['Orléans', 'Lyon']);
    expect(values(table, 'prix')).toEqual([null, 3]);
    expect(values(table, 'note')).toEqual(['a;b', 'x']);
  });

  it('sets aside lines that are not valid UTF-8 with their line number', async () => {
    const dir = tmp.fresh();
    const file = write(
      dir,
      'bad.csv',
      Buffer.concat([
        Buffer.from('a,b\n1,ok\n2,caf'),
        Buffer.from([0xe9]),
        Buffer.from('\n3,fine\n'),
      ]),
    );
    const { source, table } = await open({ type: 'csv', path: file }, dir);
    expect(values(table, 'a')).toEqual([1, 3]);
    expect(source.malformed.examples).toMatchObject([{ line: 3, error: 'INVALID ENCODING' }]);
  });

  it('gives clear errors for a missing file, an empty file, a header without rows, repeated names and unknown encodings', async () => {
    const dir = tmp.fresh();
    await expect(open({ type: 'csv', path: 'nope.csv' }, dir)).rejects.toMatchObject({
      code: 'FERRY_DATA_UNREADABLE',
      message: expect.stringMatching(/no file at/),
    });
    await expect(
      open({ type: 'csv', path: write(dir, 'empty.csv', '') }, dir),
    ).rejects.toMatchObject({ code: 'FERRY_DATA_EMPTY' });
    await expect(
      open({ type: 'csv', path: write(dir, 'header.csv', 'a,b\n') }, dir),
    ).rejects.toMatchObject({
      code: 'FERRY_DATA_EMPTY',
      message: expect.stringMatching(/no data rows/),
    });
    await expect(
      open({ type: 'csv', path: write(dir, 'dup.csv', 'a,b,a\n1,2,3\n') }, dir),
    ).rejects.toMatchObject({
      code: 'FERRY_DATA_UNREADABLE',
      message: expect.stringMatching(/repeated.*"a"/),
    });
    await expect(
      open(
        {
          type: 'csv',
          path: write(dir, 'ok.csv', 'a\n1\n'),
          options: { encoding: 'ebcdic' as 'utf-8' },
        },
        dir,
      ),
    ).rejects.toMatchObject({
      code: 'FERRY_CONFIG_INVALID',
      message: expect.stringMatching(/ebcdic/),
    });
    await expect(
      open({ type: 'csv', path: write(dir, 'cols.csv', 'a\n1\n'), schema: { b: 'int' } }, dir),
    ).rejects.toMatchObject({ code: 'FERRY_COLUMN_UNKNOWN' });
  });

  it('reads JSON lines and Parquet with their own types, normalised, and refuses malformed JSON', async () => {
    const dir = tmp.fresh();
    const file = write(
      dir,
      'e.jsonl',
      '{"id": 1, "v": 1.5, "at": "2024-01-01T00:00:00Z", "ok": true}\n{"id": 2, "v": null, "at": "2024-01-02T00:00:00Z", "ok": false}\n',
    );
    const { table } = await open({ type: 'jsonl', path: file, schema: { id: 'string' } }, dir);
    expect(table.columns.map((c) => [c.name, c.type])).toEqual([
      ['__ferry_row', 'int'],
      ['id', 'string'],
      ['v', 'float'],
      ['at', 'timestamp'],
      ['ok', 'bool'],
    ]);
    expect(values(table, 'at')).toEqual([Date.parse('2024-01-01'), Date.parse('2024-01-02')]);

    const parquet = path.join(dir, 'p.parquet');
    await withDuckDB(async (con) => {
      await con.run(
        `COPY (SELECT 1::INTEGER AS n, 'nan'::DOUBLE AS x, DATE '2024-05-01' AS d UNION ALL SELECT 2, 2.5, DATE '2024-05-02') TO '${parquet}' (FORMAT parquet)`,
      );
    });
    const read = await open({ type: 'parquet', path: 'p.parquet' }, dir);
    expect(read.source.relation.schema).toEqual([
      { name: 'n', type: 'int' },
      { name: 'x', type: 'float' },
      { name: 'd', type: 'timestamp' },
    ]);
    expect(values(read.table, 'x')).toEqual([null, 2.5]);
    expect(read.source.conversionFailures).toEqual({ x: 1 });
    expect(values(read.table, '__ferry_row')).toEqual([1, 2]);

    // A value of another type past DuckDB's sample of JSON lines.
    const late = Array.from({ length: 25_000 }, (_, i) => `{"a": ${i}}`).join('\n');
    const widened = await open(
      { type: 'jsonl', path: write(dir, 'late.jsonl', `${late}\n{"a": 1.5}\n`) },
      dir,
    );
    expect(widened.source.relation.schema).toEqual([{ name: 'a', type: 'float' }]);
    expect(values(widened.table, 'a').at(-1)).toBe(1.5);

    const bad = write(dir, 'bad.jsonl', '{"a": 1}\n{"a": \n');
    await expect(open({ type: 'jsonl', path: bad }, dir)).rejects.toMatchObject({
      code: 'FERRY_DATA_UNREADABLE',
      message: expect.stringMatching(/one complete JSON object/),
    });
  });

  it('keeps JSON integers of both signs as ints through the Parquet copy', async () => {
    const dir = tmp.fresh();
    const file = write(
      dir,
      'signs.jsonl',
      '{"k": 3, "f": 2.0}\n{"k": -4, "f": -1.0}\n{"k": 9007199254740993, "f": 0.0}\n',
    );
    const { source, table } = await open({ type: 'jsonl', path: file }, dir);
    // Whole numbers written as floats stay floats.
    expect(source.relation.schema).toEqual([
      { name: 'k', type: 'int' },
      { name: 'f', type: 'float' },
    ]);
    // Past 2^53 an int is not exact: null, and counted.
    expect(values(table, 'k')).toEqual([3, -4, null]);
    expect(source.conversionFailures).toEqual({ k: 1 });
  });

  it('infers a type from non-blank values only, and reads blank text as missing', async () => {
    const dir = tmp.fresh();
    const file = write(
      dir,
      'blank.csv',
      'n,b,t\n1, yes ,2024-01-01T00:00:00Z\n  ,,\n" 3",NO,2024-01-02\n',
    );
    const { source, table } = await open({ type: 'csv', path: file }, dir);
    expect(source.relation.schema.map((c) => c.type)).toEqual(['int', 'bool', 'timestamp']);
    expect(values(table, 'n')).toEqual([1, null, 3]);
    expect(values(table, 'b')).toEqual([true, null, false]);
    expect(values(table, 't')).toEqual([Date.UTC(2024, 0, 1), null, Date.UTC(2024, 0, 2)]);
    expect(source.conversionFailures).toEqual({});
  });

  it('accepts a header without rows when asked', async () => {
    const dir = tmp.fresh();
    const file = write(dir, 'head.csv', 'a,b\n');
    const read = await withDuckDB((con) =>
      openSource(con, { type: 'csv', path: file }, dir, {
        stageDir: tmp.fresh(),
        allowEmpty: true,
      }),
    );
    expect(read.rows).toBe(0);
    expect(read.relation.schema.map((c) => c.name)).toEqual(['a', 'b']);
  });
});

/** The source's rows as its relation gives them, without sorting: the order a reader sees. */
async function openAsStaged(
  spec: DataSourceSpec,
  dir: string,
  options: { csvBufferBytes?: number; maxExamples?: number } = {},
): Promise<{ source: OpenedSource; table: Table }> {
  return withDuckDB(async (con) => {
    const source = await openSource(con, spec, dir, { stageDir: tmp.fresh(), ...options });
    const table = await resultToTable(await con.run(`SELECT * FROM (${source.relation.sql})`));
    return { source, table };
  });
}

function increasing(numbers: unknown[]): boolean {
  return numbers.every((n, i) => i === 0 || (n as number) > (numbers[i - 1] as number));
}

describe('openSource: file order, row numbers and every line accounted for', () => {
  // 64 kB buffers: DuckDB scans a file of a few MB on all its threads, buffer by buffer.
  const SMALL_BUFFERS = 1 << 16;

  it("keeps file order and the file's row numbers across parallel buffers, with a bool column and malformed lines", async () => {
    const dir = tmp.fresh();
    const lines = ['id,amount,ok,note'];
    const bad: number[] = [];
    for (let i = 0; i < 60_000; i++) {
      if (i % 4999 === 7) {
        lines.push(`${i},1,yes,x,extra`);
        bad.push(i + 2);
      } else lines.push(`${i},${(i * 0.37).toFixed(2)},${i % 3 === 0 ? 'yes' : 'no'},n${i % 17}`);
    }
    const file = write(dir, 'order.csv', `${lines.join('\n')}\n`);
    const { source, table } = await openAsStaged({ type: 'csv', path: file }, dir, {
      csvBufferBytes: SMALL_BUFFERS,
    });
    expect(source.relation.schema.map((c) => c.type)).toEqual(['int', 'float', 'bool', 'string']);
    const ids = values(table, 'id');
    expect(ids).toHaveLength(60_000 - bad.length);
    expect(increasing(ids)).toBe(true);
    // Data row i + 1 of the file holds id i: numbers count the malformed lines too.
    expect(values(table, '__ferry_row')).toEqual(ids.map((id) => (id as number) + 1));
    expect(source.malformed.examples.map((m) => [m.line, m.error])).toEqual(
      bad.map((line) => [line, 'TOO MANY COLUMNS']),
    );
    expect(source.rows + source.malformed.count).toBe(60_000);
  });

  it('leaves out only the line of an unclosed quote and reads the lines after it', async () => {
    const dir = tmp.fresh();
    const file = write(
      dir,
      'stray.csv',
      'id,name,amount\n1,a,10\n"2,b,20\n3,c,30\n4,"d, quoted",40\n5,e,50,extra\n6,f,60\n',
    );
    const { source, table } = await openAsStaged({ type: 'csv', path: file }, dir);
    expect(values(table, 'id')).toEqual([1, 3, 4, 6]);
    expect(values(table, 'name')).toEqual(['a', 'c', 'd, quoted', 'f']);
    expect(values(table, '__ferry_row')).toEqual([1, 3, 4, 6]);
    expect(source.malformed).toMatchObject({ count: 2, lines: 2 });
    expect(
      source.malformed.examples.map((m) => [m.line, m.lastLine, m.row, m.error, m.text]),
    ).toEqual([
      [3, 3, 2, 'UNCLOSED QUOTE', '"2,b,20'],
      [6, 6, 5, 'TOO MANY COLUMNS', '5,e,50,extra'],
    ]);
    expect(source.malformed.examples[0]?.message).toMatch(/line 3 .*reading went on at line 4/);
    expect(source.malformed.examples[1]?.message).toMatch(/Expected Number of Columns: 3 Found: 4/);
  });

  it('accounts for every line of a large file with unclosed quotes read in parallel buffers', async () => {
    // The shape of a real failure: DuckDB read a stray quote across lines up to the next quote
    // or its line size limit, differently in each buffer, and lost the rows in between.
    const dir = tmp.fresh();
    const lines = ['id,a,b,c'];
    const expected: [number, string][] = [];
    for (let i = 0; i < 60_000; i++) {
      if (i % 5000 === 7) {
        lines.push(`${i},1,2,3,4,5`);
        expected.push([i + 2, 'TOO MANY COLUMNS']);
      } else if (i % 7777 === 3) {
        lines.push(`"${i},broken`);
        expected.push([i + 2, 'UNCLOSED QUOTE']);
      } else lines.push(`${i},${(i % 1000) / 8},x${i % 13},${i % 2 === 0}`);
    }
    const file = write(dir, 'stray-big.csv', `${lines.join('\n')}\n`);
    const { source, table } = await openAsStaged({ type: 'csv', path: file }, dir, {
      csvBufferBytes: SMALL_BUFFERS,
      maxExamples: 100,
    });
    const ids = values(table, 'id');
    expect(source.rows).toBe(60_000 - expected.length);
    expect(ids).toHaveLength(source.rows);
    expect(increasing(ids)).toBe(true);
    expect(values(table, '__ferry_row')).toEqual(ids.map((id) => (id as number) + 1));
    expect(source.malformed).toMatchObject({ count: expected.length, lines: expected.length });
    expect(source.malformed.examples.map((m) => [m.line, m.error])).toEqual(expected);
  });

  it('numbers rows and lines of a file with quoted line breaks and blank lines as they are in it', async () => {
    const dir = tmp.fresh();
    const file = write(
      dir,
      'multi.csv',
      Buffer.concat([
        Buffer.from('id,note\n1,"two\nlines"\n2,ok\n\n3,x,extra\n4,"caf'),
        Buffer.from([0xe9]), // Latin-1 in a UTF-8 file, inside a quoted field of two lines
        Buffer.from('\nau lait"\n5,end\n'),
      ]),
    );
    const { source, table } = await openAsStaged({ type: 'csv', path: file }, dir);
    expect(values(table, 'id')).toEqual([1, 2, 5]);
    expect(values(table, 'note')).toEqual(['two\nlines', 'ok', 'end']);
    expect(values(table, '__ferry_row')).toEqual([1, 2, 5]);
    expect(source.malformed).toMatchObject({ count: 2, lines: 3 });
    expect(source.malformed.examples.map((m) => [m.line, m.lastLine, m.row, m.error])).toEqual([
      [6, 6, 3, 'TOO MANY COLUMNS'],
      [7, 8, 4, 'INVALID ENCODING'],
    ]);
  });

  it('numbers rows right when more than a thousand lines are malformed', async () => {
    const dir = tmp.fresh();
    const lines = ['id,v'];
    for (let i = 0; i < 3000; i++) lines.push(i % 2 === 1 ? `${i},x,extra` : `${i},ok`);
    const file = write(dir, 'many.csv', `${lines.join('\n')}\n`);
    const { source, table } = await openAsStaged({ type: 'csv', path: file }, dir);
    const ids = values(table, 'id');
    expect(ids).toEqual(Array.from({ length: 1500 }, (_, k) => 2 * k));
    expect(values(table, '__ferry_row')).toEqual(ids.map((id) => (id as number) + 1));
    expect(source.malformed).toMatchObject({ count: 1500, lines: 1500 });
    expect(source.malformed.examples.slice(0, 3).map((m) => [m.line, m.row])).toEqual([
      [3, 2],
      [5, 4],
      [7, 6],
    ]);
  });

  it('repairs Latin-1 and UTF-16 files with an unclosed quote', async () => {
    const dir = tmp.fresh();
    const text = 'ville,prix\nOrléans,1\n"Nîmes,2\nLyon,3\nSète,4,extra\nAix,5\n';
    const utf16 = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')]);
    for (const [encoding, bytes] of [
      ['latin-1', Buffer.from(text, 'latin1')],
      ['utf-16', utf16],
    ] as const) {
      const file = write(dir, `${encoding}.csv`, bytes);
      const { source, table } = await openAsStaged(
        { type: 'csv', path: file, options: { encoding } },
        dir,
      );
      expect(values(table, 'ville')).toEqual(['Orléans', 'Lyon', 'Aix']);
      expect(values(table, '__ferry_row')).toEqual([1, 3, 5]);
      expect(source.malformed.examples.map((m) => [m.line, m.error, m.text])).toEqual([
        [3, 'UNCLOSED QUOTE', '"Nîmes,2'],
        [5, 'TOO MANY COLUMNS', 'Sète,4,extra'],
      ]);
    }
  });

  it('offsetSql counts the breaks below a row number', async () => {
    const sql = offsetSql('k', [0, 1, 1, 5]);
    const table = await withDuckDB(async (con) =>
      resultToTable(await con.run(`SELECT ${sql} AS n FROM range(1, 8) t(k) ORDER BY k`)),
    );
    // Breaks below k: k=1 → {0}, k=2..5 → {0,1,1}, k=6,7 → all four.
    expect(values(table, 'n')).toEqual([1, 3, 3, 3, 3, 4, 4]);
    expect(offsetSql('k', [])).toBe('0');
  });
});
