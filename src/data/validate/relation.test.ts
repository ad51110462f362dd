import fs from 'node:fs';
import path from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import { describe, expect, it } from 'vitest';
import type { RuleSpec, ValidationSpec } from '../../config/data-schema.js';
import { schemaOf, type Table } from '../../core/table.js';
import { FerryError } from '../../errors/index.js';
import { offlineFixture } from '../../testing/offline-fixture.js';
import { psi } from '../../monitoring/drift.js';
import { loadTable, resultToTable, withDuckDB } from '../duckdb.js';
import { profileTable } from '../profile.js';
import { readQuarantine } from './quarantine.js';
import { validateRelation, type ValidateRelationOptions } from './relation.js';
import type { ValidationReport } from './report.js';

const fx = offlineFixture();

function spec(
  rules: RuleSpec[],
  policy: ValidationSpec['policy'] = 'warn',
  name = 'checks',
): ValidationSpec {
  return { name, policy, rules };
}

/** Loads `table` as `temp.src`, validates `SELECT * FROM temp.src`, and returns what came out. */
async function run(
  table: Table,
  ruleSet: ValidationSpec,
  options: ValidateRelationOptions = {},
): Promise<{ report: ValidationReport; output: Table }> {
  return withDuckDB(async (con) => {
    await loadTable(con, 'src', table);
    const result = await validateRelation(
      con,
      { sql: 'SELECT * FROM temp.src', schema: schemaOf(table) },
      ruleSet,
      { quarantine: { offline: fx.offline, name: ruleSet.name, source: 'test.csv' }, ...options },
    );
    const output = await resultToTable(await con.run(result.output.sql));
    await result.release();
    return { report: result.report, output };
  });
}

function col(
  name: string,
  type: Table['columns'][number]['type'],
  values: Table['columns'][number]['values'],
): Table {
  return { columns: [{ name, type, values }], rowCount: values.length };
}

/** Row numbers failing the report's only rule. */
function failingRows(report: ValidationReport, rule = 0): number[] {
  return (report.rules[rule]?.examples ?? []).map((e) => e.row);
}

describe('validateRelation: row-level rules', () => {
  it('not_null fails nulls only: empty text and NaN are values', async () => {
    const t: Table = {
      columns: [
        { name: 's', type: 'string', values: ['a', null, '', 'b'] },
        { name: 'x', type: 'float', values: [1, Number.NaN, null, 2] },
      ],
      rowCount: 4,
    };
    const { report } = await run(
      t,
      spec([
        { rule: 'not_null', column: 's' },
        { rule: 'not_null', column: 'x' },
      ]),
    );
    expect(report.rules.map((r) => [r.name, r.failing])).toEqual([
      ['not_null(s)', 1],
      ['not_null(x)', 1],
    ]);
    expect(failingRows(report, 0)).toEqual([2]);
    expect(failingRows(report, 1)).toEqual([3]);
    expect(report.rules[0]?.examples[0]?.reason).toBe('s is missing');
  });

  it('unique fails the rows after a key first appears; nulls never collide', async () => {
    const t: Table = {
      columns: [
        { name: 'k', type: 'string', values: ['a', 'b', 'a', null, null, 'a', 'b'] },
        { name: 'n', type: 'int', values: [1, 1, 2, 1, 1, 1, 1] },
      ],
      rowCount: 7,
    };
    const { report } = await run(
      t,
      spec([
        { rule: 'unique', columns: ['k'] },
        { rule: 'unique', columns: ['k', 'n'] },
      ]),
    );
    expect(failingRows(report, 0)).toEqual([3, 6, 7]);
    expect(report.rules[0]?.examples.map((e) => e.reason)).toEqual([
      "duplicate key k='a', first seen at row 1",
      "duplicate key k='a', first seen at row 1",
      "duplicate key k='b', first seen at row 2",
    ]);
    // (a,1) repeats at row 6, (b,1) at row 7; (a,2) is new; (null,1) rows are not checked.
    expect(failingRows(report, 1)).toEqual([6, 7]);
    expect(report.rows).toEqual({ checked: 7, passed: 4, failed: 3, quarantined: 0 });
  });

  it('unique treats NaN as equal to NaN and -0 as equal to 0', async () => {
    const { report } = await run(
      col('x', 'float', [Number.NaN, 0, Number.NaN, -0, 1]),
      spec([{ rule: 'unique', columns: ['x'] }]),
    );
    expect(failingRows(report)).toEqual([3, 4]);
  });

  it('range is inclusive at both ends; NaN fails and null passes', async () => {
    const { report } = await run(
      col('x', 'float', [0, 10, -0.000001, 10.000001, Number.NaN, null, 5, -Infinity]),
      spec([{ rule: 'range', column: 'x', min: 0, max: 10 }]),
    );
    expect(failingRows(report)).toEqual([3, 4, 5, 8]);
    expect(report.rules[0]?.examples.map((e) => e.reason)).toEqual([
      'x is -0.000001, below the minimum 0',
      'x is 10.000001, above the maximum 10',
      'x is NaN, not a number in range',
      'x is -Infinity, below the minimum 0',
    ]);
  });

  it('range with only a minimum still fails NaN; ints compare exactly', async () => {
    const { report } = await run(
      col('x', 'float', [Number.NaN, 1e308, 3]),
      spec([{ rule: 'range', column: 'x', min: 3 }]),
    );
    expect(failingRows(report)).toEqual([1]);
    const ints = await run(
      col('n', 'int', [9007199254740991, 9007199254740990, -5]),
      spec([{ rule: 'range', column: 'n', max: 9007199254740990 }]),
    );
    expect(failingRows(ints.report)).toEqual([1]);
  });

  it('range on timestamps compares UTC milliseconds, sub-millisecond exact', async () => {
    const t0 = Date.UTC(2024, 0, 1);
    const { report } = await run(
      col('ts', 'timestamp', [t0, t0 - 0.001, t0 + 86_400_000, t0 + 86_400_000.001, null]),
      spec([{ rule: 'range', column: 'ts', min: t0, max: t0 + 86_400_000 }]),
    );
    expect(failingRows(report)).toEqual([2, 4]);
    expect(report.rules[0]?.examples[0]?.reason).toBe(
      'ts is 2023-12-31T23:59:59.999Z, below the minimum 2024-01-01T00:00:00.000Z',
    );
  });

  it('allowed compares in the column type; text is case-sensitive and null passes', async () => {
    const text = await run(
      col('c', 'string', ['FR', 'fr', '1', null, 'DE', '1.0']),
      spec([{ rule: 'allowed', column: 'c', values: ['FR', 'DE', 1] }]),
    );
    expect(failingRows(text.report)).toEqual([2, 6]);
    expect(text.report.rules[0]?.examples[0]?.reason).toBe("c is 'fr', not one of 'FR', 'DE', '1'");
    const numbers = await run(
      col('n', 'float', [1, 2, 0.1, 0.30000000000000004, Number.NaN, null]),
      spec([{ rule: 'allowed', column: 'n', values: [1, 0.1, 0.3] }]),
    );
    expect(failingRows(numbers.report)).toEqual([2, 4, 5]);
    const flags = await run(
      col('b', 'bool', [true, false, null]),
      spec([{ rule: 'allowed', column: 'b', values: [true] }]),
    );
    expect(failingRows(flags.report)).toEqual([2]);
  });

  it('pattern matches whole values; null passes', async () => {
    const { report } = await run(
      col('email', 'string', ['a@b.io', 'x a@b.io', 'a@b.io\n', null, 'A@B.IO', '']),
      spec([{ rule: 'pattern', column: 'email', regex: '[a-z]+@[a-z]+\\.[a-z]{2,}' }]),
    );
    expect(failingRows(report)).toEqual([2, 3, 5, 6]);
    expect(report.rules[0]?.examples[0]?.reason).toBe(
      "email is 'x a@b.io', which does not match /[a-z]+@[a-z]+\\.[a-z]{2,}/",
    );
  });

  it('type fails values that do not convert; blanks count as missing', async () => {
    const { report } = await run(
      col('age', 'string', ['42', ' 7 ', '4.5', 'abc', '', null, '1e2', '0x10']),
      spec([{ rule: 'type', column: 'age', type: 'int' }]),
    );
    expect(failingRows(report)).toEqual([3, 4, 8]);
    expect(report.rules[0]?.examples[1]?.reason).toBe("age is 'abc', not a valid int");
    const times = await run(
      col('when', 'string', ['2024-02-29', '2023-02-29', '2024-01-01T25:00', '1700000000000']),
      spec([{ rule: 'type', column: 'when', type: 'timestamp' }]),
    );
    expect(failingRows(times.report)).toEqual([2, 3]);
  });
});

describe('validateRelation: table-level rules', () => {
  it('row_count bounds are inclusive', async () => {
    const t = col('x', 'int', [1, 2, 3]);
    const { report } = await run(
      t,
      spec([
        { rule: 'row_count', min: 3, max: 3 },
        { rule: 'row_count', min: 4 },
        { rule: 'row_count', max: 2 },
      ]),
    );
    expect(report.rules.map((r) => [r.name, r.status, r.observed])).toEqual([
      ['row_count', 'pass', 3],
      ['row_count#2', 'fail', 3],
      ['row_count#3', 'fail', 3],
    ]);
    expect(report.rules[1]?.reason).toBe('3 rows, fewer than the minimum 4');
    expect(report.outcome).toBe('warned');
  });

  it('null_share passes at exactly the maximum and fails above it', async () => {
    const t = col('x', 'float', [1, null, 3, null]);
    const { report } = await run(
      t,
      spec([
        { rule: 'null_share', column: 'x', max: 0.5 },
        { rule: 'null_share', column: 'x', max: 0.49 },
      ]),
    );
    expect(report.rules.map((r) => [r.status, r.observed])).toEqual([
      ['pass', 0.5],
      ['fail', 0.5],
    ]);
    expect(report.rules[1]?.reason).toBe('50% of x is null (2 of 4 rows), above 49%');
  });

  it('distribution gives the PSI that monitoring gives, numeric and categorical', async () => {
    const reference: Table = {
      columns: [
        {
          name: 'amount',
          type: 'float',
          values: Array.from({ length: 200 }, (_, i) => (i % 50) * 2 + 0.5),
        },
        {
          name: 'country',
          type: 'string',
          values: Array.from({ length: 200 }, (_, i) => ['FR', 'DE', 'ES', 'IT'][i % 4] as string),
        },
      ],
      rowCount: 200,
    };
    const profile = profileTable(reference);
    const file = path.join(fx.dir, 'reference.json');
    fs.writeFileSync(file, JSON.stringify(profile));
    const live: Table = {
      columns: [
        {
          name: 'amount',
          type: 'float',
          values: [
            ...Array.from({ length: 150 }, (_, i) => (i % 30) * 5),
            null,
            Number.NaN,
            Infinity,
            -1e9,
            1e9,
          ],
        },
        {
          name: 'country',
          type: 'string',
          values: [
            ...Array.from({ length: 150 }, (_, i) => ['FR', 'FR', 'US', 'DE'][i % 4] as string),
            null,
            'ES',
            'fr',
            'IT',
            'IT',
          ],
        },
      ],
      rowCount: 155,
    };
    const { report } = await run(
      live,
      spec([
        { rule: 'distribution', column: 'amount', reference: file, max_psi: 0.25 },
        { rule: 'distribution', column: 'country', reference: 'reference.json', max_psi: 100 },
      ]),
      { baseDir: fx.dir },
    );
    const expectedAmount = psi(profile.columns.amount!, live.columns[0]!.values);
    const expectedCountry = psi(profile.columns.country!, live.columns[1]!.values);
    expect(expectedAmount).toBeGreaterThan(0.25);
    expect(report.rules[0]?.observed).toBeCloseTo(expectedAmount, 12);
    expect(report.rules[0]?.status).toBe('fail');
    expect(report.rules[1]?.observed).toBeCloseTo(expectedCountry, 12);
    expect(report.rules[1]?.status).toBe('pass');
  });

  it('distribution passes data against its own profile, and resolves model references through the caller', async () => {
    const t = col(
      'x',
      'float',
      Array.from({ length: 100 }, (_, i) => i),
    );
    const own = profileTable(t).columns.x!;
    const asked: string[] = [];
    const { report } = await run(
      t,
      spec([
        { rule: 'distribution', column: 'x', reference: 'model:fraud@champion', max_psi: 0.01 },
      ]),
      {
        resolveReference: async (reference, column) => {
          asked.push(`${reference}/${column}`);
          return own;
        },
      },
    );
    expect(asked).toEqual(['model:fraud@champion/x']);
    expect(report.rules[0]).toMatchObject({ status: 'pass', observed: 0 });
  });

  it('refuses a model reference without a resolver, and a missing profile file', async () => {
    const t = col('x', 'float', [1]);
    await expect(
      run(t, spec([{ rule: 'distribution', column: 'x', reference: 'model:fraud', max_psi: 1 }])),
    ).rejects.toMatchObject({ code: 'FERRY_ARGUMENT_INVALID' });
    await expect(
      run(t, spec([{ rule: 'distribution', column: 'x', reference: 'nope.json', max_psi: 1 }]), {
        baseDir: fx.dir,
      }),
    ).rejects.toMatchObject({ code: 'FERRY_DATA_UNREADABLE' });
  });
});

describe('validateRelation: policies', () => {
  const table: Table = {
    columns: [
      { name: 'id', type: 'string', values: ['a', 'b', null, 'd', 'e'] },
      { name: 'amount', type: 'float', values: [10, -1, 5, 7, -2] },
    ],
    rowCount: 5,
  };
  const rules: RuleSpec[] = [
    { rule: 'not_null', column: 'id' },
    { rule: 'range', column: 'amount', min: 0 },
  ];

  it('fail: throws FERRY_VALIDATION_FAILED naming the rules, writes nothing, drops its table', async () => {
    const error = await withDuckDB(async (con) => {
      await loadTable(con, 'src', table);
      const caught = await validateRelation(
        con,
        { sql: 'SELECT * FROM temp.src', schema: schemaOf(table) },
        spec(rules, 'fail'),
        { quarantine: { offline: fx.offline, name: 'checks', source: 'x' } },
      ).catch((e: unknown) => e);
      const left = await con.runAndReadAll(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE 'ferry_validate_%'",
      );
      expect(Number(left.getRows()[0]?.[0])).toBe(0);
      return caught;
    });
    expect(error).toBeInstanceOf(FerryError);
    const ferry = error as FerryError;
    expect(ferry.code).toBe('FERRY_VALIDATION_FAILED');
    expect(ferry.status).toBe(422);
    expect(ferry.message).toContain('not_null(id): 1 row, e.g. row 3: id is missing');
    expect(ferry.message).toContain('range(amount): 2 rows, e.g. row 2: amount is -1');
    const report = ferry.details?.report as ValidationReport;
    expect(report.outcome).toBe('failed');
    expect(await fx.offline.listTables()).toEqual([]);
  });

  it('fail: a table-level rule alone stops the run too', async () => {
    await expect(run(table, spec([{ rule: 'row_count', min: 10 }], 'fail'))).rejects.toThrow(
      /row_count: 5 rows, fewer than the minimum 10/,
    );
  });

  it('quarantine: failing rows go to the quarantine with their first failing rule, the rest continue', async () => {
    const { report, output } = await run(table, spec(rules, 'quarantine'), { runId: 'run-7' });
    expect(report.outcome).toBe('quarantined');
    expect(report.rows).toEqual({ checked: 5, passed: 2, failed: 3, quarantined: 3 });
    expect(report.rows.checked).toBe(report.rows.passed + report.rows.quarantined);
    expect(report.quarantine).toEqual({ table: 'quarantine/checks', rows: 3 });
    expect(output.columns.map((c) => c.name)).toEqual(['id', 'amount']);
    expect(output.columns[0]?.values).toEqual(['a', 'd']);
    const entries = await readQuarantine(fx.offline, 'checks');
    expect(
      entries
        .map((e) => [e.row, e.rule, e.reason, e.runId, e.source])
        .sort((a, b) => (a[0] as number) - (b[0] as number)),
    ).toEqual([
      [2, 'range(amount)', 'amount is -1, below the minimum 0', 'run-7', 'test.csv'],
      [3, 'not_null(id)', 'id is missing', 'run-7', 'test.csv'],
      [5, 'range(amount)', 'amount is -2, below the minimum 0', 'run-7', 'test.csv'],
    ]);
    expect(entries.find((e) => e.row === 3)?.record).toEqual({ id: null, amount: 5 });
  });

  it('quarantine: a row_count failure stops the run and quarantines nothing', async () => {
    await expect(
      run(table, spec([...rules, { rule: 'row_count', min: 6 }], 'quarantine')),
    ).rejects.toMatchObject({ code: 'FERRY_VALIDATION_FAILED' });
    expect(await fx.offline.listTables()).toEqual([]);
  });

  it('quarantine: null_share and distribution failures only warn', async () => {
    const { report, output } = await run(
      table,
      spec([...rules, { rule: 'null_share', column: 'id', max: 0 }], 'quarantine'),
    );
    expect(report.outcome).toBe('quarantined');
    expect(report.rules[2]).toMatchObject({ status: 'fail', action: 'warn' });
    expect(output.rowCount).toBe(2);
  });

  it('quarantine: refuses to drop rows when no quarantine is given', async () => {
    await expect(
      withDuckDB(async (con) => {
        await loadTable(con, 'src', table);
        await validateRelation(
          con,
          { sql: 'SELECT * FROM temp.src', schema: schemaOf(table) },
          spec(rules, 'quarantine'),
        );
      }),
    ).rejects.toMatchObject({ code: 'FERRY_ARGUMENT_INVALID' });
  });

  it('warn: every row continues and the report says what failed', async () => {
    const { report, output } = await run(table, spec(rules, 'warn'));
    expect(report.outcome).toBe('warned');
    expect(report.rows).toEqual({ checked: 5, passed: 2, failed: 3, quarantined: 0 });
    expect(output.rowCount).toBe(5);
    expect(await fx.offline.listTables()).toEqual([]);
  });

  it('passes cleanly when every rule holds', async () => {
    const { report, output } = await run(
      table,
      spec([{ rule: 'range', column: 'amount', min: -5 }], 'fail'),
    );
    expect(report.outcome).toBe('passed');
    expect(output.rowCount).toBe(5);
  });
});

describe('validateRelation: relations', () => {
  it("numbers rows by a recipe's hidden __ferry_row and passes hidden columns through", async () => {
    await withDuckDB(async (con) => {
      await con.run(
        `CREATE TEMP TABLE src AS SELECT * FROM (VALUES (3, 'x', 'train'), (8, NULL, 'test'), (9, 'z', 'train')) t(__ferry_row, s, __ferry_split)`,
      );
      const result = await validateRelation(
        con,
        { sql: 'SELECT * FROM temp.src', schema: [{ name: 's', type: 'string' }] },
        spec([{ rule: 'not_null', column: 's' }], 'quarantine'),
        { quarantine: { offline: fx.offline, name: 'checks', source: 'f.csv' } },
      );
      const output = await resultToTable(await con.run(result.output.sql));
      expect(output.columns.map((c) => c.name)).toEqual(['__ferry_row', 's', '__ferry_split']);
      expect(output.columns[0]?.values).toEqual([3, 9]);
      expect(result.report.rules[0]?.examples.map((e) => [e.row, e.values])).toEqual([
        [8, { s: null }],
      ]);
      await result.release();
    });
    expect((await readQuarantine(fx.offline, 'checks')).map((e) => e.row)).toEqual([8]);
  });

  it('quarantines many rows in pages, every one of them, in bounded batches', async () => {
    const n = 120_000;
    await withDuckDB(async (con) => {
      await con.run(
        `CREATE TEMP TABLE big AS SELECT i AS id, CASE WHEN i % 2 = 0 THEN NULL ELSE 'v' END AS s FROM range(${n}) t(i)`,
      );
      const result = await validateRelation(
        con,
        {
          sql: 'SELECT * FROM temp.big',
          schema: [
            { name: 'id', type: 'int' },
            { name: 's', type: 'string' },
          ],
        },
        spec([{ rule: 'not_null', column: 's' }], 'quarantine'),
        { quarantine: { offline: fx.offline, name: 'big', source: 'gen' } },
      );
      expect(result.report.rows).toEqual({
        checked: n,
        passed: n / 2,
        failed: n / 2,
        quarantined: n / 2,
      });
      expect(result.report.rules[0]?.examples).toHaveLength(5);
      await result.release();
    });
    expect(await fx.offline.count('quarantine/big')).toBe(n / 2);
    const rows = await fx.offline.query(
      'SELECT count(DISTINCT "row") AS d, min("row") AS lo, max("row") AS hi FROM {{quarantine/big}}',
    );
    expect(rows.columns.map((c) => c.values[0])).toEqual([n / 2, 1, n - 1]);
  });

  it('keeps the flagged rows in a Parquet file of the stage folder, which release removes', async () => {
    const stageDir = path.join(fx.dir, 'stage');
    fs.mkdirSync(stageDir);
    await withDuckDB(async (con) => {
      await con.run(
        `CREATE TEMP TABLE src AS SELECT * FROM (VALUES (2, 'b'), (1, 'a'), (3, NULL)) t(__ferry_row, s)`,
      );
      const result = await validateRelation(
        con,
        { sql: 'SELECT * FROM temp.src', schema: [{ name: 's', type: 'string' }] },
        spec([{ rule: 'not_null', column: 's' }], 'quarantine'),
        { quarantine: { offline: fx.offline, name: 'checks', source: 'f.csv' }, stageDir },
      );
      expect(fs.readdirSync(stageDir).filter((f) => f.endsWith('.parquet'))).toHaveLength(1);
      // The source table is gone: the output reads the file, in row order.
      await con.run('DROP TABLE temp.src');
      const output = await resultToTable(await con.run(result.output.sql));
      expect(output.columns.map((c) => c.values)).toEqual([
        [1, 2],
        ['a', 'b'],
      ]);
      await result.release();
      expect(fs.readdirSync(stageDir)).toEqual([]);
    });
  });

  it('refuses rules that do not fit the columns, naming what to do', async () => {
    const t: Table = {
      columns: [
        { name: 's', type: 'string', values: ['a'] },
        { name: 'n', type: 'int', values: [1] },
      ],
      rowCount: 1,
    };
    const cases: [RuleSpec, string, RegExp][] = [
      [{ rule: 'not_null', column: 'nope' }, 'FERRY_COLUMN_UNKNOWN', /columns: s, n/],
      [{ rule: 'range', column: 's', min: 0 }, 'FERRY_CONFIG_INVALID', /numeric or timestamp/],
      [{ rule: 'range', column: 'n' }, 'FERRY_CONFIG_INVALID', /min, max or both/],
      [{ rule: 'range', column: 'n', min: 2, max: 1 }, 'FERRY_CONFIG_INVALID', /above max/],
      [{ rule: 'pattern', column: 'n', regex: '\\d+' }, 'FERRY_CONFIG_INVALID', /text column/],
      [
        { rule: 'pattern', column: 's', regex: '(?=a)a' },
        'FERRY_CONFIG_INVALID',
        /read differently/,
      ],
      [{ rule: 'allowed', column: 'n', values: ['1'] }, 'FERRY_CONFIG_INVALID', /without quotes/],
    ];
    for (const [rule, code, message] of cases) {
      await expect(run(t, spec([rule]))).rejects.toMatchObject({
        code,
        message: expect.stringMatching(message),
      });
    }
  });
});

// Keeps the connection type in use for editors that prune unused imports.
export type { DuckDBConnection };
