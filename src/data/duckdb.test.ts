import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tableFromRows, tableToRows, type Row, type Table } from '../core/table.js';
import { tempDirs } from '../testing/temp.js';
import { loadTable, quoteString, resultToTable, withDuckDB } from './duckdb.js';
import { readTable } from './read.js';

const tmp = tempDirs();

function query(sql: string): Promise<Table> {
  return withDuckDB(async (con) => resultToTable(await con.run(sql)));
}

describe('resultToTable', () => {
  it('maps every DuckDB number type to int or float, with its value', async () => {
    const table = await query(`SELECT
      -7::TINYINT AS ti, 300::SMALLINT AS si, -70000::INTEGER AS i, 9007199254740991::BIGINT AS bi,
      -12345678901234::HUGEINT AS hi, 200::UTINYINT AS uti, 4000000000::UINTEGER AS ui,
      9007199254740991::UBIGINT AS ubi, 5::UHUGEINT AS uhi,
      1.5::FLOAT AS f, -2.25::DOUBLE AS d, 123.45::DECIMAL(5,2) AS d16,
      -1.125::DECIMAL(18,3) AS d64, 2.5::DECIMAL(38,10) AS d128`);
    expect(table.columns.map((c) => `${c.name}:${c.type}`)).toEqual([
      'ti:int',
      'si:int',
      'i:int',
      'bi:int',
      'hi:int',
      'uti:int',
      'ui:int',
      'ubi:int',
      'uhi:int',
      'f:float',
      'd:float',
      'd16:float',
      'd64:float',
      'd128:float',
    ]);
    expect(tableToRows(table)).toEqual([
      {
        ti: -7,
        si: 300,
        i: -70000,
        bi: 9007199254740991,
        hi: -12345678901234,
        uti: 200,
        ui: 4000000000,
        ubi: 9007199254740991,
        uhi: 5,
        f: 1.5,
        d: -2.25,
        d16: 123.45,
        d64: -1.125,
        d128: 2.5,
      },
    ]);
  });

  it('reads every time type as UTC milliseconds, exact to the microsecond, before 1970 too', async () => {
    const table = await query(`SELECT
      TIMESTAMP '2026-10-01 12:00:00.123456' AS ts, TIMESTAMP '1969-12-31 23:59:59.9995' AS before,
      TIMESTAMP_S '2026-10-01 12:00:01' AS s, TIMESTAMP_MS '2026-10-01 12:00:01.250' AS ms,
      TIMESTAMP_NS '2026-10-01 12:00:01.123456' AS ns, TIMESTAMPTZ '2026-10-01 12:00:00+02' AS tz,
      DATE '2026-10-02' AS day, DATE '1960-01-01' AS old_day`);
    expect(table.columns.every((c) => c.type === 'timestamp')).toBe(true);
    const noon = Date.UTC(2026, 9, 1, 12);
    expect(tableToRows(table)).toEqual([
      {
        ts: noon + 123.456,
        before: -0.5,
        s: noon + 1000,
        ms: noon + 1250,
        ns: noon + 1123.456,
        tz: Date.UTC(2026, 9, 1, 10),
        day: Date.UTC(2026, 9, 2),
        old_day: Date.UTC(1960, 0, 1),
      },
    ]);
  });

  it('reads infinite times as ±Infinity and nulls as null', async () => {
    const table = await query(`SELECT
      'infinity'::TIMESTAMP AS a, '-infinity'::TIMESTAMPTZ AS b, 'infinity'::TIMESTAMP_MS AS c,
      '-infinity'::DATE AS d, NULL::TIMESTAMP AS e, NULL::BIGINT AS f, NULL::VARCHAR AS g`);
    expect(tableToRows(table)).toEqual([
      { a: Infinity, b: -Infinity, c: Infinity, d: -Infinity, e: null, f: null, g: null },
    ]);
  });

  it('reads booleans, and anything without a Ferry type as its text', async () => {
    const table = await query(`SELECT true AS b, 'hi' AS s, INTERVAL 1 DAY AS iv, [1, 2] AS list,
      {'a': 1} AS struct, TIME '12:00:00' AS t, 'f47ac10b-58cc-4372-a567-0e02b2c3d479'::UUID AS id`);
    expect(table.columns.map((c) => c.type)).toEqual([
      'bool',
      'string',
      'string',
      'string',
      'string',
      'string',
      'string',
    ]);
    expect(tableToRows(table)).toEqual([
      {
        b: true,
        s: 'hi',
        iv: '1 day',
        list: '[1, 2]',
        struct: "{'a': 1}",
        t: '12:00:00',
        id: 'f47ac10b-58cc-4372-a567-0e02b2c3d479',
      },
    ]);
  });

  it('reads a result of many chunks in order, every value in its row', async () => {
    const table = await query(
      'SELECT i, i * 0.5 AS half, epoch_ms(i) AS at FROM range(5000) t(i) ORDER BY i',
    );
    expect(table.rowCount).toBe(5000);
    const [i, half, at] = table.columns.map((c) => c.values);
    expect(i?.[4999]).toBe(4999);
    expect(half?.[2049]).toBe(1024.5);
    expect(at?.every((v, r) => v === r)).toBe(true);
  });
});

describe('loadTable', () => {
  it('loads a table that reads back unchanged: odd names, sub-millisecond times, NaN, nulls', async () => {
    const schema = [
      { name: 'card "id"', type: 'string' },
      { name: 'n', type: 'int' },
      { name: 'amount', type: 'float' },
      { name: 'ok', type: 'bool' },
      { name: 'at', type: 'timestamp' },
    ] as const;
    const rows = Array.from({ length: 3000 }, (_, r) => ({
      'card "id"': r % 7 === 0 ? null : `c${r}`,
      n: r % 5 === 0 ? null : r - 1500,
      amount: r === 1 ? Number.NaN : r % 3 === 0 ? null : r / 8,
      ok: r % 11 === 0 ? null : r % 2 === 0,
      at: r % 13 === 0 ? null : Date.UTC(1969, 11, 31) + r * 1000.25,
    }));
    const table = tableFromRows([...schema], rows);
    const back = await withDuckDB(async (con) => {
      await loadTable(con, 'loaded', table);
      return resultToTable(await con.run('SELECT * FROM loaded'));
    });
    expect(back.columns.map((c) => `${c.name}:${c.type}`)).toEqual(
      schema.map((c) => `${c.name}:${c.type}`),
    );
    expect(tableToRows(back)).toEqual(rows);
  });
});

describe('withDuckDB', () => {
  it('keeps concurrent callers apart: same temporary table name, each sees only its own rows', async () => {
    const callers = 20;
    const seen = await Promise.all(
      Array.from({ length: callers }, (_, k) =>
        withDuckDB(async (con) => {
          const rows = Array.from({ length: 3000 + k }, (_, i) => ({ k, i }));
          const schema = [
            { name: 'k', type: 'int' },
            { name: 'i', type: 'int' },
          ] as const;
          await loadTable(con, 'mine', tableFromRows([...schema], rows));
          const result = await con.run(
            'SELECT min(k) AS lo, max(k) AS hi, count(*) AS n, sum(i) AS total FROM mine',
          );
          return tableToRows(await resultToTable(result))[0];
        }),
      ),
    );
    expect(seen).toEqual(
      Array.from({ length: callers }, (_, k) => {
        const n = 3000 + k;
        return { lo: k, hi: k, n, total: (n * (n - 1)) / 2 };
      }),
    );
  });

  it('reads 20 different files at the same time, each into its own right table', async () => {
    const dir = tmp.fresh();
    const formats = ['csv', 'parquet', 'jsonl'] as const;
    const files: { file: string; rows: Row[] }[] = [];
    for (let k = 0; k < 20; k++) {
      const format = formats[k % formats.length] ?? 'csv';
      // Sizes differ and every value names its file, so a row read from the wrong file shows;
      // amounts are never whole, so every format reads them as float.
      const rows = Array.from({ length: 500 + 97 * k }, (_, i) => ({
        id: i,
        file: k,
        name: `f${k}-${i}`,
        amount: i + 0.25 + k / 1024,
      }));
      const file = path.join(dir, `part-${k}.${format}`);
      if (format === 'csv') {
        const lines = rows.map((r) => `${r.id},${r.file},${r.name},${r.amount}`);
        writeFileSync(file, ['id,file,name,amount', ...lines].join('\n'));
      } else if (format === 'jsonl') {
        writeFileSync(file, rows.map((r) => JSON.stringify(r)).join('\n'));
      } else {
        await withDuckDB((con) =>
          con.run(
            `COPY (SELECT i AS id, ${k}::BIGINT AS file, 'f${k}-' || i AS name, i + ${0.25 + k / 1024} AS amount
              FROM range(${rows.length}) t(i) ORDER BY i) TO ${quoteString(file)} (FORMAT parquet)`,
          ),
        );
      }
      files.push({ file, rows });
    }
    const tables = await Promise.all(files.map(({ file }) => readTable(file)));
    tables.forEach((table, k) => {
      expect(table.columns.map((c) => `${c.name}:${c.type}`)).toEqual([
        'id:int',
        'file:int',
        'name:string',
        'amount:float',
      ]);
      expect(tableToRows(table)).toEqual(files[k]?.rows);
    });
  });
});
