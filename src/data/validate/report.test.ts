import { describe, expect, it } from 'vitest';
import type { ValidationSpec } from '../../config/data-schema.js';
import type { Row } from '../../core/table.js';
import { formatReport, validationError } from './report.js';
import { compileRules } from './rows.js';

const ruleSet: ValidationSpec = {
  name: 'payments',
  policy: 'quarantine',
  rules: [
    { rule: 'not_null', column: 'card' },
    { rule: 'range', column: 'amount', min: 0, max: 100 },
    { rule: 'row_count', min: 10 },
    { rule: 'null_share', column: 'card', max: 0.5 },
    { rule: 'allowed', column: 'card', values: ['a', 'b'] },
  ],
};
const schema = [
  { name: 'card', type: 'string' as const },
  { name: 'amount', type: 'float' as const },
];
const rows: Row[] = Array.from({ length: 12 }, (_, i) => ({
  card: i % 4 === 0 ? null : 'a',
  amount: i * 10,
}));

async function report() {
  return (await compileRules(ruleSet, schema)).check(rows, { tableRules: true }).report;
}

describe('the report', () => {
  it('counts add up: checked = passed + failed, and each rule counts its own failures', async () => {
    const r = await report();
    // Rows 1, 5, 9 have no card; rows 12 (110) is above 100; row 9 fails both.
    expect(r.rows).toEqual({ checked: 12, passed: 8, failed: 4, quarantined: 4 });
    expect(r.rows.checked).toBe(r.rows.passed + r.rows.failed);
    expect(r.rules.map((x) => [x.name, x.status, x.failing, x.action])).toEqual([
      ['not_null(card)', 'fail', 3, 'quarantine'],
      ['range(amount)', 'fail', 1, 'quarantine'],
      ['row_count', 'pass', 0, 'fail'],
      ['null_share(card)', 'pass', 0, 'warn'],
      ['allowed(card)', 'pass', 0, 'quarantine'],
    ]);
    expect(r.outcome).toBe('quarantined');
    // Plain JSON: what --json prints reads back the same.
    expect(JSON.parse(JSON.stringify(r))).toEqual(r);
  });

  it('formats aligned lines with the failures and their rows', async () => {
    const text = formatReport(await report());
    expect(text).toBe(
      [
        'Rule set payments (policy quarantine): 2 of 5 rules failed; 4 rows quarantined',
        'Rows: 12 checked, 8 passed, 4 failed, 4 quarantined',
        '',
        '      rule              failing  on failure  requires',
        'FAIL  not_null(card)          3  quarantine  card is present',
        'FAIL  range(amount)           1  quarantine  0 <= amount <= 100',
        'ok    row_count         12 rows  fail        at least 10 rows',
        'ok    null_share(card)      25%  warn        at most 50% of card is null',
        'ok    allowed(card)           0  quarantine  card in {a, b}',
        '',
        'Failures:',
        '  not_null(card)',
        '    row 1: card is missing',
        '    row 5: card is missing',
        '    row 9: card is missing',
        '  range(amount)',
        '    row 12: amount is 110, above the maximum 100',
        '',
      ].join('\n'),
    );
  });

  it('says how many more failed than the examples show, and table-level reasons', async () => {
    const compiled = await compileRules(
      {
        name: 'n',
        policy: 'fail',
        rules: [
          { rule: 'not_null', column: 'card' },
          { rule: 'row_count', max: 3 },
        ],
      },
      schema,
    );
    const r = compiled.check(
      Array.from({ length: 8 }, () => ({ card: null, amount: 1 })),
      { tableRules: true },
    ).report;
    const text = formatReport(r);
    expect(text).toContain('    ... and 3 more\n');
    expect(text).toContain('  row_count: 8 rows, more than the maximum 3\n');
    expect(text.split('\n')[0]).toBe(
      'Rule set n (policy fail): 2 of 2 rules failed; failed, nothing written',
    );
    const error = validationError(r);
    expect(error.message).toBe(
      "rule set 'n' failed (policy fail), so nothing was written: not_null(card): 8 rows, e.g. row 1: card is missing; row_count: 8 rows, more than the maximum 3. Fix the data, or change the rules or the policy in ferry.yaml",
    );
  });
});
