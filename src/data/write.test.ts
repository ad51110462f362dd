import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tableFromRows, tableToRows, type ColumnSchema } from '../core/table.js';
import { tempDirs } from '../testing/temp.js';
import { readTable } from './read.js';
import { toCsv, writeCsv, writeTable } from './write.js';

const dir = tempDirs().root;

const SCHEMA: ColumnSchema[] = [
  { name: 'name, full', type: 'string' },
  { name: 'x', type: 'float' },
  { name: 'n', type: 'int' },
  { name: 'ok', type: 'bool' },
  { name: 'ts', type: 'timestamp' },
];
const ROWS = [
  { 'name, full': 'plain', x: 1.25, n: 1, ok: true, ts: Date.UTC(2026, 9, 1, 8, 30, 0, 125) },
  { 'name, full': 'a "quoted", word', x: -0.1, n: -7, ok: false, ts: Date.UTC(2026, 9, 2) },
  { 'name, full': 'two\nlines\r\nhere', x: null, n: null, ok: null, ts: null },
  { 'name, full': ' edge spaces ', x: 1e-7, n: 9_007_199_254_740_991, ok: true, ts: 0 },
];

describe('writeCsv', () => {
  it('quotes fields as RFC 4180 says, and only when needed', () => {
    const text = toCsv(tableFromRows(SCHEMA, ROWS.slice(0, 2)));
    expect(text).toBe(
      '"name, full",x,n,ok,ts\n' +
        'plain,1.25,1,true,2026-10-01T08:30:00.125Z\n' +
        '"a ""quoted"", word",-0.1,-7,false,2026-10-02T00:00:00.000Z\n',
    );
  });

  it('reads back to the same table, types included', async () => {
    const file = path.join(dir, 'nested', 'rows.csv');
    writeCsv(tableFromRows(SCHEMA, ROWS), file);
    const back = await readTable(file);
    expect(back.columns.map((c) => `${c.name}:${c.type}`)).toEqual(
      SCHEMA.map((c) => `${c.name}:${c.type}`),
    );
    expect(tableToRows(back)).toEqual(ROWS);
    expect(readFileSync(file, 'utf8')).toContain('"two\nlines\r\nhere"');
  });
});

describe('writeTable', () => {
  for (const ext of ['parquet', 'jsonl', 'csv']) {
    it(`writes .${ext} that readTable reads back unchanged`, async () => {
      const file = path.join(dir, `rows.${ext}`);
      await writeTable(tableFromRows(SCHEMA, ROWS), file);
      const back = await readTable(file);
      expect(back.columns.map((c) => `${c.name}:${c.type}`)).toEqual(
        SCHEMA.map((c) => `${c.name}:${c.type}`),
      );
      expect(tableToRows(back)).toEqual(ROWS);
    });
  }

  it('refuses a file name without a known format', async () => {
    await expect(
      writeTable(tableFromRows(SCHEMA, ROWS), path.join(dir, 'rows.xlsx')),
    ).rejects.toMatchObject({
      code: 'FERRY_ARGUMENT_INVALID',
    });
  });
});
