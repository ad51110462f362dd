/**
 * The validation report: every rule with pass/fail, failing counts and example rows, plus the
 * row totals. The object is plain JSON (the shape of `ferry data validate --json`);
 * {@link formatReport} renders it for the terminal.
 *
 * Totals: `checked = passed + failed`, where `failed` counts rows failing at least one row-level
 * rule; `quarantined` equals `failed` when the policy set them aside, else 0.
 */
import type { RuleSpec } from '../../config/data-schema.js';
import type { Row } from '../../core/table.js';
import { FerryError } from '../../errors/index.js';
import {
  actionOf,
  type Action,
  type Policy,
  type PreparedRule,
  type PreparedRuleSet,
  type TableRuleOutcome,
} from './rules.js';

/** Examples kept per rule. */
export const MAX_EXAMPLES = 5;

export interface RuleExample {
  /** 1-based row number in the source (the header not counted). */
  readonly row: number;
  readonly reason: string;
  readonly values: Row;
}

export interface RuleResult {
  /** Unique label, e.g. `range(amount)`. */
  readonly name: string;
  readonly rule: RuleSpec['rule'];
  readonly description: string;
  readonly level: 'row' | 'table';
  /** `skipped`: a table-level rule on a path that checks rows only. */
  readonly status: 'pass' | 'fail' | 'skipped';
  /** What a failure of this rule does under the policy. */
  readonly action: Action;
  /** Rows failing this rule (a row can fail several); 0 for table-level rules. */
  readonly failing: number;
  /** Table-level: what was measured (rows, share of nulls, PSI). */
  readonly observed?: number;
  /** Table-level failure in words. */
  readonly reason?: string;
  /** At most {@link MAX_EXAMPLES} failing rows, first rows first. */
  readonly examples: readonly RuleExample[];
}

export interface ValidationReport {
  readonly ruleSet: string;
  readonly policy: Policy;
  /**
   * `failed`: a rule whose action is fail failed, nothing may be written; `quarantined`: failing
   * rows were set aside; `warned`: rules failed, everything continues; `passed`: every rule held.
   */
  readonly outcome: 'passed' | 'warned' | 'quarantined' | 'failed';
  /** Identifies this run in the quarantine. */
  readonly runId: string;
  /** UTC milliseconds. */
  readonly checkedAt: number;
  readonly rows: {
    readonly checked: number;
    readonly passed: number;
    readonly failed: number;
    readonly quarantined: number;
  };
  readonly rules: readonly RuleResult[];
  /** Where quarantined rows went (offline table), when any did. */
  readonly quarantine?: { readonly table: string; readonly rows: number };
}

/** A row-level rule's outcome, as counted by either path. */
export interface RowRuleOutcome {
  readonly failing: number;
  readonly examples: readonly RuleExample[];
}

export interface ReportInput {
  readonly prepared: PreparedRuleSet;
  readonly runId: string;
  readonly checkedAt: number;
  readonly checked: number;
  /** Rows failing at least one row-level rule. */
  readonly failed: number;
  readonly rowOutcomes: ReadonlyMap<number, RowRuleOutcome>;
  /** Table-level outcomes by rule index; a rule without one was not checked (skipped). */
  readonly tableOutcomes: ReadonlyMap<number, TableRuleOutcome>;
}

/**
 * Assembles the report and decides the outcome; quarantine counts are filled in by whoever
 * writes the rows (see {@link withQuarantine}).
 */
export function buildReport(input: ReportInput): ValidationReport {
  const { prepared } = input;
  const rules = prepared.rules.map((rule) => ruleResult(rule, prepared.policy, input));
  const failing = rules.filter((r) => r.status === 'fail');
  const quarantines = prepared.policy === 'quarantine' && input.failed > 0;
  const outcome = failing.some((r) => r.action === 'fail')
    ? 'failed'
    : quarantines
      ? 'quarantined'
      : failing.length > 0
        ? 'warned'
        : 'passed';
  return {
    ruleSet: prepared.name,
    policy: prepared.policy,
    outcome,
    runId: input.runId,
    checkedAt: input.checkedAt,
    rows: {
      checked: input.checked,
      passed: input.checked - input.failed,
      failed: input.failed,
      quarantined: outcome === 'quarantined' ? input.failed : 0,
    },
    rules,
  };
}

function ruleResult(rule: PreparedRule, policy: Policy, input: ReportInput): RuleResult {
  const action: Action = actionOf(policy, rule.kind);
  const base = {
    name: rule.name,
    rule: rule.spec.rule,
    description: rule.description,
    action,
  };
  const row = input.rowOutcomes.get(rule.index);
  if (row !== undefined) {
    return {
      ...base,
      level: 'row',
      status: row.failing > 0 ? 'fail' : 'pass',
      failing: row.failing,
      examples: row.examples,
    };
  }
  const table = input.tableOutcomes.get(rule.index);
  if (table === undefined) {
    return { ...base, level: 'table', status: 'skipped', failing: 0, examples: [] };
  }
  return {
    ...base,
    level: 'table',
    status: table.pass ? 'pass' : 'fail',
    failing: 0,
    observed: table.observed,
    ...(table.pass ? {} : { reason: table.reason }),
    examples: [],
  };
}

/** The report once `rows` failing rows were written to the offline table `table`. */
export function withQuarantine(
  report: ValidationReport,
  table: string,
  rows: number,
): ValidationReport {
  return { ...report, quarantine: { table, rows } };
}

/**
 * The error of a run stopped by its rules: names each rule that stopped it, with a count and a
 * first example, and carries the report in `details.report`.
 * @example throw validationError(report);
 */
export function validationError(report: ValidationReport): FerryError {
  const stopping = report.rules.filter((r) => r.status === 'fail' && r.action === 'fail');
  const parts = stopping.slice(0, 5).map((r) => {
    if (r.level === 'table') return `${r.name}: ${r.reason ?? 'failed'}`;
    const first = r.examples[0];
    const example = first ? `, e.g. row ${first.row}: ${first.reason}` : '';
    return `${r.name}: ${r.failing} ${r.failing === 1 ? 'row' : 'rows'}${example}`;
  });
  if (stopping.length > 5) parts.push(`and ${stopping.length - 5} more`);
  return new FerryError(
    'FERRY_VALIDATION_FAILED',
    `rule set '${report.ruleSet}' failed (policy ${report.policy}), so nothing was written: ${parts.join('; ')}. Fix the data, or change the rules or the policy in ferry.yaml`,
    { details: { report } },
  );
}

/**
 * The report for people: a summary line, the totals, one aligned line per rule and the examples
 * of the rules that failed.
 * @example process.stdout.write(formatReport(report));
 */
export function formatReport(report: ValidationReport): string {
  const failed = report.rules.filter((r) => r.status === 'fail');
  const { rows } = report;
  const verdict =
    failed.length === 0
      ? `all ${report.rules.length} rules passed`
      : `${failed.length} of ${report.rules.length} rules failed`;
  const outcome =
    report.outcome === 'failed'
      ? 'failed, nothing written'
      : report.outcome === 'quarantined'
        ? `${rows.quarantined} rows quarantined${report.quarantine ? ` in ${report.quarantine.table}` : ''}`
        : report.outcome === 'warned'
          ? 'warned, every row continues'
          : 'passed';
  const lines = [
    `Rule set ${report.ruleSet} (policy ${report.policy}): ${verdict}; ${outcome}`,
    `Rows: ${rows.checked} checked, ${rows.passed} passed, ${rows.failed} failed, ${rows.quarantined} quarantined`,
    '',
  ];
  const table = [
    ['', 'rule', 'failing', 'on failure', 'requires'],
    ...report.rules.map((r) => [
      r.status === 'pass' ? 'ok' : r.status === 'fail' ? 'FAIL' : 'skip',
      r.name,
      r.level === 'row' ? String(r.failing) : r.observed === undefined ? '-' : formatObserved(r),
      r.action,
      r.description,
    ]),
  ];
  const widths = (table[0] as string[]).map((_, i) =>
    Math.max(...table.map((row) => (row[i] ?? '').length)),
  );
  for (const row of table) {
    lines.push(
      row
        .map((cell, i) => (i === 2 ? cell.padStart(widths[i] ?? 0) : cell.padEnd(widths[i] ?? 0)))
        .join('  ')
        .trimEnd(),
    );
  }
  if (failed.length > 0) {
    lines.push('', 'Failures:');
    for (const r of failed) {
      if (r.level === 'table') {
        lines.push(`  ${r.name}: ${r.reason ?? 'failed'}`);
        continue;
      }
      lines.push(`  ${r.name}`);
      for (const e of r.examples) lines.push(`    row ${e.row}: ${e.reason}`);
      if (r.failing > r.examples.length) {
        lines.push(`    ... and ${r.failing - r.examples.length} more`);
      }
    }
  }
  return lines.join('\n') + '\n';
}

function formatObserved(r: RuleResult): string {
  const v = r.observed as number;
  if (r.rule === 'null_share') return `${Number((v * 100).toPrecision(3))}%`;
  if (r.rule === 'distribution') return `psi ${v.toFixed(3)}`;
  return `${v} rows`;
}
