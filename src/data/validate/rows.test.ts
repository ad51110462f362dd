import { describe, expect, it } from 'vitest';
import type { RuleSpec, ValidationSpec } from '../../config/data-schema.js';
import type { Row, Table } from '../../core/table.js';
import { FerryError } from '../../errors/index.js';
import { offlineFixture } from '../../testing/offline-fixture.js';
import { readQuarantine } from './quarantine.js';
import type { ValidationReport } from './report.js';
import { compileRules, SeenKeys, validateRows } from './rows.js';

const fx = offlineFixture();

const schema = [
  { name: 'card', type: 'string' as const },
  { name: 'amount', type: 'float' as const },
];
const rules: RuleSpec[] = [
  { rule: 'unique', columns: ['card'] },
  { rule: 'range', column: 'amount', min: 0, max: 100 },
  {
    rule: 'expression',
    check: "amount < 50 or card != 'vip'",
    message: 'vip amounts stay below 50',
  },
  { rule: 'row_count', min: 10 },
];
const spec = (policy: ValidationSpec['policy']): ValidationSpec => ({
  name: 'payments',
  policy,
  rules,
});

describe('CompiledRules.check', () => {
  it('numbers rows from firstRow and checks unique across batches with SeenKeys', async () => {
    const compiled = await compileRules(spec('quarantine'), schema);
    const seen = new SeenKeys();
    const first = compiled.check(
      [
        { card: 'a', amount: 1 },
        { card: 'b', amount: 200 },
        { card: 'a', amount: 2 },
      ],
      { seen, firstRow: 1 },
    );
    expect(first.failures.map((f) => [f.row, f.rule, f.reason])).toEqual([
      [2, 'range(amount)', 'amount is 200, above the maximum 100'],
      [3, 'unique(card)', "duplicate key card='a', first seen at row 1"],
    ]);
    expect(first.passing).toEqual([0]);
    // Keys of failing rows count as seen too, as in the SQL path.
    const second = compiled.check(
      [
        { card: 'b', amount: 3 },
        { card: null, amount: 3 },
        { card: 'c', amount: 4 },
        { card: null, amount: 5 },
      ],
      { seen, firstRow: 4 },
    );
    expect(second.failures.map((f) => [f.row, f.reason])).toEqual([
      [4, "duplicate key card='b', already seen in an earlier batch"],
    ]);
    expect(seen.size).toBe(3);
  });

  it('reports the first failing rule per row but counts every rule a row fails', async () => {
    const compiled = await compileRules(spec('warn'), schema);
    const { report, failures } = compiled.check([
      { card: 'vip', amount: 70 },
      { card: 'vip', amount: 500 },
    ]);
    expect(failures.map((f) => f.rule)).toEqual([
      "expression(amount < 50 or card != 'vip')",
      'unique(card)',
    ]);
    expect(report.rules.map((r) => [r.name, r.status, r.failing])).toEqual([
      ['unique(card)', 'fail', 1],
      ['range(amount)', 'fail', 1],
      ["expression(amount < 50 or card != 'vip')", 'fail', 2],
      ['row_count', 'skipped', 0],
    ]);
    expect(report.rules[2]?.examples.map((e) => e.reason)).toEqual([
      'vip amounts stay below 50',
      'vip amounts stay below 50',
    ]);
  });

  it('fails an expression that is null, not only false', async () => {
    const compiled = await compileRules(
      { name: 'n', policy: 'warn', rules: [{ rule: 'expression', check: 'amount > 0' }] },
      schema,
    );
    const { failures } = compiled.check([
      { card: 'a', amount: null },
      { card: 'b', amount: 1 },
      { card: 'c', amount: -1 },
    ]);
    expect(failures.map((f) => [f.row, f.reason])).toEqual([
      [1, 'check amount > 0 is not true (false or null)'],
      [3, 'check amount > 0 is not true (false or null)'],
    ]);
  });

  it('refuses an expression that is not true or false', async () => {
    await expect(
      compileRules(
        { name: 'n', policy: 'warn', rules: [{ rule: 'expression', check: 'amount + 1' }] },
        schema,
      ).then((c) => c.check([])),
    ).rejects.toMatchObject({ code: 'FERRY_CONFIG_INVALID' });
  });

  it('keeps at most 5 examples per rule, first rows first', async () => {
    const compiled = await compileRules(
      { name: 'n', policy: 'warn', rules: [{ rule: 'not_null', column: 'card' }] },
      schema,
    );
    const rows: Row[] = Array.from({ length: 12 }, () => ({ card: null, amount: 1 }));
    const { report } = compiled.check(rows);
    expect(report.rules[0]?.failing).toBe(12);
    expect(report.rules[0]?.examples.map((e) => e.row)).toEqual([1, 2, 3, 4, 5]);
  });
});

describe('validateRows', () => {
  const rows: Row[] = [
    { card: 'a', amount: 10 },
    { card: 'b', amount: -5 },
    { card: 'a', amount: 20 },
    { card: 'c', amount: 30 },
  ];

  it('fail: throws with the report and writes nothing', async () => {
    const error = await validateRows(rows, spec('fail'), {
      schema,
      quarantine: { offline: fx.offline, name: 'payments', source: 'api' },
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FerryError);
    expect((error as FerryError).code).toBe('FERRY_VALIDATION_FAILED');
    expect(((error as FerryError).details?.report as ValidationReport).rows.failed).toBe(2);
    expect(await fx.offline.listTables()).toEqual([]);
  });

  it('quarantine: writes failing rows with their row numbers and returns the rest', async () => {
    const { output, report, failures } = await validateRows(rows, spec('quarantine'), {
      schema,
      firstRow: 101,
      runId: 'run-1',
      quarantine: { offline: fx.offline, name: 'payments', source: 'api' },
    });
    expect(output).toEqual([rows[0], rows[3]]);
    expect(failures).toHaveLength(2);
    expect(report.rows).toEqual({ checked: 4, passed: 2, failed: 2, quarantined: 2 });
    expect(report.quarantine).toEqual({ table: 'quarantine/payments', rows: 2 });
    const stored = await readQuarantine(fx.offline, 'payments');
    expect(stored.map((e) => [e.row, e.rule, e.runId, e.record]).sort()).toEqual([
      [102, 'range(amount)', 'run-1', { card: 'b', amount: -5 }],
      [103, 'unique(card)', 'run-1', { card: 'a', amount: 20 }],
    ]);
  });

  it('quarantine on a Table returns a Table of the passing rows', async () => {
    const table: Table = {
      columns: [
        { name: 'card', type: 'string', values: ['a', 'a', 'b'] },
        { name: 'amount', type: 'float', values: [1, 2, 3] },
      ],
      rowCount: 3,
    };
    const { output } = await validateRows(table, spec('quarantine'));
    expect(output.rowCount).toBe(2);
    expect(output.columns[0]?.values).toEqual(['a', 'b']);
  });

  it('warn: returns every row; table-level rules are checked only when asked', async () => {
    const plain = await validateRows(rows, spec('warn'), { schema });
    expect(plain.output).toBe(rows);
    expect(plain.report.outcome).toBe('warned');
    expect(plain.report.rules[3]?.status).toBe('skipped');
    const withTable = await validateRows(rows, spec('warn'), { schema, tableRules: true });
    expect(withTable.report.rules[3]).toMatchObject({
      status: 'fail',
      observed: 4,
      reason: '4 rows, fewer than the minimum 10',
    });
  });

  it('infers the schema of plain rows when none is given', async () => {
    const { report } = await validateRows([{ code: 'x1' }, { code: 'y' }], {
      name: 'n',
      policy: 'warn',
      rules: [{ rule: 'pattern', column: 'code', regex: '[a-z]\\d' }],
    });
    expect(report.rules[0]?.examples.map((e) => e.row)).toEqual([2]);
  });
});
