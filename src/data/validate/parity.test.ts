/**
 * The SQL path (`validateRelation`) and the rows path (`compileRules(...).check`) must find the
 * same failing rows, first failing rules and reasons, the same per-rule counts and examples, and
 * the same table-level measures, on data full of the values that tell implementations apart.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { RuleSpec, ValidationSpec } from '../../config/data-schema.js';
import { schemaOf, type Scalar, type Table } from '../../core/table.js';
import { offlineFixture } from '../../testing/offline-fixture.js';
import { loadTable, resultToTable, withDuckDB } from '../duckdb.js';
import { profileTable } from '../profile.js';
import { readQuarantine } from './quarantine.js';
import { validateRelation } from './relation.js';
import { compileRules } from './rows.js';
import { createRng } from '../../training/random.js';

const fx = offlineFixture();

function pick<T>(next: () => number, values: readonly T[]): T {
  return values[Math.floor(next() * values.length)] as T;
}

function generate(rows: number, seed: number): Table {
  const next = createRng(seed);
  const t0 = Date.UTC(2024, 0, 1);
  const amount: Scalar[] = [];
  const count: Scalar[] = [];
  const country: Scalar[] = [];
  const email: Scalar[] = [];
  const age: Scalar[] = [];
  const ts: Scalar[] = [];
  const active: Scalar[] = [];
  const card: Scalar[] = [];
  for (let i = 0; i < rows; i++) {
    amount.push(
      next() < 0.2
        ? pick(next, [null, Number.NaN, 0, 1000, -0, -1e-9, 1000.0000001, Infinity, -Infinity])
        : Math.round((next() * 1200 - 100) * 100) / 100,
    );
    count.push(next() < 0.1 ? null : Math.floor(next() * 20) - 2);
    country.push(pick(next, ['FR', 'DE', 'ES', 'fr', 'US', null, '', ' FR', 'IT', 'DE']));
    email.push(
      pick(next, ['a@b.io', 'ab@cd.com', 'x y@b.io', 'A@B.IO', null, '', 'é@b.io', 'a@b.io\n']),
    );
    age.push(
      pick(next, ['42', ' 7 ', '4.5', 'abc', '', null, '1e2', '0x10', '-3', '9007199254740993']),
    );
    ts.push(next() < 0.1 ? null : t0 + Math.floor(next() * 40) * 86_400_000 + pick(next, [0, 0.5]));
    active.push(pick(next, [true, false, null]));
    card.push(next() < 0.05 ? null : `c${Math.floor(next() * rows * 0.8)}`);
  }
  return {
    columns: [
      { name: 'amount', type: 'float', values: amount },
      { name: 'count', type: 'int', values: count },
      { name: 'country', type: 'string', values: country },
      { name: 'email', type: 'string', values: email },
      { name: 'age', type: 'string', values: age },
      { name: 'ts', type: 'timestamp', values: ts },
      { name: 'active', type: 'bool', values: active },
      { name: 'card', type: 'string', values: card },
    ],
    rowCount: rows,
  };
}

describe('SQL and rows paths agree', () => {
  it.each([42, 1, 2024])(
    'on every rule kind, row by row, over generated data (seed %i)',
    async (seed) => {
      const reference = generate(500, 7);
      fs.writeFileSync(path.join(fx.dir, 'ref.json'), JSON.stringify(profileTable(reference)));
      const rules: RuleSpec[] = [
        { rule: 'unique', columns: ['card'] },
        { rule: 'unique', columns: ['country', 'count'] },
        { rule: 'not_null', column: 'amount' },
        { rule: 'range', column: 'amount', min: 0, max: 1000 },
        { rule: 'range', column: 'count', min: 0 },
        { rule: 'range', column: 'ts', max: Date.UTC(2024, 0, 31) },
        { rule: 'allowed', column: 'country', values: ['FR', 'DE', 'ES', 'IT'] },
        { rule: 'allowed', column: 'count', values: [1, 2, 3, 5, 8, 13] },
        { rule: 'allowed', column: 'active', values: [true] },
        { rule: 'pattern', column: 'email', regex: '[a-z]+@[a-z]+\\.[a-z]{2,3}' },
        { rule: 'type', column: 'age', type: 'int' },
        { rule: 'type', column: 'age', type: 'float' },
        { rule: 'type', column: 'amount', type: 'int' },
        { rule: 'type', column: 'ts', type: 'int' },
        { rule: 'expression', check: 'amount * 2 > count' },
        {
          rule: 'expression',
          check: "coalesce(country, '') != 'US' or active",
          message: 'US rows must be active',
        },
        { rule: 'row_count', min: 1000 },
        { rule: 'null_share', column: 'amount', max: 0.01 },
        { rule: 'distribution', column: 'amount', reference: 'ref.json', max_psi: 0.1 },
        { rule: 'distribution', column: 'country', reference: 'ref.json', max_psi: 0.1 },
        { rule: 'distribution', column: 'active', reference: 'ref.json', max_psi: 0.1 },
      ];
      const ruleSet: ValidationSpec = { name: 'parity', policy: 'quarantine', rules };
      const generated = generate(3000, seed);

      const { sqlReport, table } = await withDuckDB(async (con) => {
        await loadTable(con, 'src', generated);
        // The rows path sees the values exactly as DuckDB holds them.
        const table = await resultToTable(await con.run('SELECT * FROM temp.src'));
        const result = await validateRelation(
          con,
          { sql: 'SELECT * FROM temp.src', schema: schemaOf(generated) },
          ruleSet,
          {
            baseDir: fx.dir,
            quarantine: { offline: fx.offline, name: 'parity', source: 'gen' },
            runId: 'r',
          },
        );
        await result.release();
        return { sqlReport: result.report, table };
      });
      const compiled = await compileRules(ruleSet, schemaOf(table), { baseDir: fx.dir });
      const rows = compiled.check(table, { tableRules: true, runId: 'r' });

      // Every failing row, its first failing rule and its reason.
      const quarantined = (await readQuarantine(fx.offline, 'parity', { limit: 100_000 }))
        .map((e) => [e.row, e.rule, e.reason])
        .sort((a, b) => (a[0] as number) - (b[0] as number));
      const failures = rows.failures.map((f) => [f.row, f.rule, f.reason]);
      expect(failures.length).toBeGreaterThan(1000);
      expect(quarantined).toEqual(failures);

      // Per-rule counts, examples and table-level measures.
      const shape = (r: (typeof sqlReport.rules)[number]) => ({
        name: r.name,
        status: r.status,
        failing: r.failing,
        observed: r.observed === undefined ? undefined : Number(r.observed.toPrecision(12)),
        examples: r.examples.map((e) => [e.row, e.reason]),
      });
      expect(sqlReport.rules.map(shape)).toEqual(rows.report.rules.map(shape));
      // Every rule kind fails somewhere, so the comparison above is not vacuous.
      for (const r of sqlReport.rules.filter((r) => r.level === 'row')) {
        expect({ rule: r.name, failing: r.failing > 0 }).toEqual({ rule: r.name, failing: true });
      }
      expect(sqlReport.rows.failed).toBe(rows.report.rows.failed);
      expect(sqlReport.rows.checked).toBe(sqlReport.rows.passed + sqlReport.rows.quarantined);
    },
  );
});
