import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { DataSourceSpec } from '../config/data-schema.js';
import type { Table } from '../core/table.js';
import { tempDirs } from '../testing/temp.js';
import { resultToTable, withDuckDB } from './duckdb.js';
import { openSource, type OpenedSource } from './source.js';

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
  it('reports malformed lines with their line numbers and keeps every other row, numbered in file order', async () => {
    const dir = tmp.fresh();
    const file = write(
      dir,
      'tx.csv',
      'id,name,amount\n1,a,10\n2,b,20,extra\n3,c\n4,"d, quoted",40\n5,e,50\n',
    );
    const { source, table } = await open({ type: 'csv', path: file }, dir);
    expect(source.rows).toBe(3);
    expect(source.malformed.count).toBe(2);
    expect(source.malformed.examples.map((m) => [m.line, m.error])).toEqual([
      [3, 'TOO MANY COLUMNS'],
      [4, 'MISSING COLUMNS'],
    ]);
    expect(values(table, 'id')).toEqual([1, 4, 5]);
    expect(values(table, 'name')).toEqual(['a', 'd, quoted', 'e']);
    expect(values(table, '__ferry_row')).toEqual([1, 2, 3]);
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
