/**
 * Validation of rows in memory, for streaming ingestion and request-time checks: the same rules,
 * meanings and reasons as the SQL path (`relation.ts`), written in TypeScript. Compile a rule set
 * once with {@link compileRules} and check each batch synchronously; {@link validateRows} does
 * both and applies the policy.
 *
 * `unique` is checked within the batch and, when the caller passes {@link SeenKeys}, against the
 * keys of earlier batches; every non-null key of a batch is added to it (including keys of rows
 * that fail other rules, as the SQL path counts them). Table-level rules are skipped unless
 * asked for (`tableRules: true` checks them on the batch as if it were the whole table).
 *
 * Rows must hold the schema's types (numbers for int, float and timestamp as UTC ms, booleans,
 * strings): the expression language refuses a row whose value has another type
 * (FERRY_ARGUMENT_INVALID), and the other rules judge the value as it is (a text value fails a
 * `range`). Cast request rows to the schema first, or check them with `type` rules on text.
 */
import { randomUUID } from 'node:crypto';
import type { ValidationSpec } from '../../config/data-schema.js';
import {
  inferType,
  schemaOf,
  tableToRows,
  takeRows,
  type ColumnSchema,
  type Row,
  type Scalar,
  type Table,
} from '../../core/table.js';
import { expressionFunction } from './expression.js';
import { quarantineTableName, writeQuarantine, type QuarantineTarget } from './quarantine.js';
import { actualCounts } from './reference.js';
import {
  buildReport,
  MAX_EXAMPLES,
  validationError,
  withQuarantine,
  type RuleExample,
  type RowRuleOutcome,
  type ValidationReport,
} from './report.js';
import {
  failsValue,
  prepareRules,
  reasonOf,
  tableOutcome,
  type FirstSeen,
  type PrepareOptions,
  type PreparedRowRule,
  type PreparedRuleSet,
  type TableRuleOutcome,
} from './rules.js';

/** Keys of `unique` rules seen in earlier batches; grows with every batch checked against it. */
export class SeenKeys {
  private readonly byRule = new Map<string, Set<string>>();

  /** The keys of one rule, by its columns. */
  keysOf(columns: readonly string[]): Set<string> {
    const id = JSON.stringify(columns);
    let keys = this.byRule.get(id);
    if (keys === undefined) {
      keys = new Set();
      this.byRule.set(id, keys);
    }
    return keys;
  }

  /** Keys held over all rules. */
  get size(): number {
    let n = 0;
    for (const keys of this.byRule.values()) n += keys.size;
    return n;
  }
}

export interface CheckOptions {
  /** Row number of the batch's first row (default 1); reasons and the quarantine use it. */
  readonly firstRow?: number;
  /**
   * The source row number of each row of the batch, when they are not consecutive (rows a
   * filter removed before the check); overrides `firstRow`.
   */
  readonly rowNumbers?: readonly number[];
  readonly seen?: SeenKeys;
  /** Check table-level rules on this batch too (default false: they are reported as skipped). */
  readonly tableRules?: boolean;
  /** Identifies the run in the report and the quarantine (default: a new UUID). */
  readonly runId?: string;
  /** The check's time, UTC ms (default: now). */
  readonly now?: number;
}

/** A failing row with its first failing rule (in rule-set order). */
export interface RowFailure {
  /** Position in the batch (0-based). */
  readonly index: number;
  /** Row number in the source (1-based). */
  readonly row: number;
  readonly rule: string;
  readonly reason: string;
  readonly values: Row;
}

export interface RowCheck {
  /** The report, before the policy wrote anything (no `quarantine` field). */
  readonly report: ValidationReport;
  /** Every row failing a row-level rule, once, in batch order. */
  readonly failures: readonly RowFailure[];
  /** Positions of the rows failing no rule. */
  readonly passing: readonly number[];
}

type Check = (row: Row) => boolean;

/** A rule set compiled for one schema; {@link CompiledRules.check} is synchronous. */
export class CompiledRules {
  private readonly checks: readonly Check[];

  constructor(readonly prepared: PreparedRuleSet) {
    this.checks = prepared.rowRules.map((rule) => compileCheck(rule, prepared.schema));
  }

  /**
   * Checks a batch (policy not applied: see {@link validateRows}).
   * @example const { failures, passing } = compiled.check(rows, { firstRow: 1001, seen });
   */
  check(input: readonly Row[] | Table, options: CheckOptions = {}): RowCheck {
    const rows = isTable(input) ? tableToRows(input) : input;
    const firstRow = options.firstRow ?? 1;
    const { rowRules } = this.prepared;
    const failing = new Array<number>(rowRules.length).fill(0);
    const examples: RuleExample[][] = rowRules.map(() => []);
    const failures: RowFailure[] = [];
    const passing: number[] = [];
    const uniques = rowRules.map((rule) =>
      rule.kind === 'unique' ? new UniqueState(rule, options.seen) : null,
    );
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i] as Row;
      const number = options.rowNumbers?.[i] ?? firstRow + i;
      let first = -1;
      let firstSeenOfFirst: FirstSeen | undefined;
      for (let r = 0; r < rowRules.length; r++) {
        const unique = uniques[r];
        let fails: boolean;
        let firstSeen: FirstSeen | undefined;
        if (unique) {
          firstSeen = unique.visit(row, number);
          fails = firstSeen !== undefined;
        } else {
          fails = (this.checks[r] as Check)(row);
        }
        if (!fails) continue;
        failing[r] = (failing[r] as number) + 1;
        const list = examples[r] as RuleExample[];
        if (list.length < MAX_EXAMPLES) {
          list.push({
            row: number,
            reason: reasonOf(rowRules[r] as PreparedRowRule, row, firstSeen),
            values: row,
          });
        }
        if (first < 0) {
          first = r;
          firstSeenOfFirst = firstSeen;
        }
      }
      if (first < 0) {
        passing.push(i);
      } else {
        const rule = rowRules[first] as PreparedRowRule;
        failures.push({
          index: i,
          row: number,
          rule: rule.name,
          reason: reasonOf(rule, row, firstSeenOfFirst),
          values: row,
        });
      }
    }
    for (const unique of uniques) unique?.commit();

    const rowOutcomes = new Map<number, RowRuleOutcome>(
      rowRules.map((rule, r) => [
        rule.index,
        { failing: failing[r] as number, examples: examples[r] as RuleExample[] },
      ]),
    );
    const tableOutcomes = new Map<number, TableRuleOutcome>();
    if (options.tableRules) {
      for (const rule of this.prepared.tableRules) {
        const values =
          rule.kind === 'row_count' ? [] : rows.map((row) => row[rule.column.name] ?? null);
        tableOutcomes.set(
          rule.index,
          tableOutcome(rule, {
            rows: rows.length,
            nulls: values.reduce<number>((n, v) => (v === null ? n + 1 : n), 0),
            ...(rule.kind === 'distribution' ? { counts: actualCounts(rule.profile, values) } : {}),
          }),
        );
      }
    }
    const report = buildReport({
      prepared: this.prepared,
      runId: options.runId ?? randomUUID(),
      checkedAt: options.now ?? Date.now(),
      checked: rows.length,
      failed: failures.length,
      rowOutcomes,
      tableOutcomes,
    });
    return { report, failures, passing };
  }
}

/** First occurrences of a `unique` rule's keys within a batch, plus the caller's earlier keys. */
class UniqueState {
  private readonly firstRow = new Map<string, number>();
  private readonly seen: Set<string> | undefined;

  constructor(
    private readonly rule: Extract<PreparedRowRule, { kind: 'unique' }>,
    seen: SeenKeys | undefined,
  ) {
    this.seen = seen?.keysOf(rule.columns.map((c) => c.name));
  }

  /** Where this row's key was first seen, or undefined when the row passes. */
  visit(row: Row, number: number): FirstSeen | undefined {
    const key = keyOf(row, this.rule.columns);
    if (key === null) return undefined;
    if (this.seen?.has(key)) return 'earlier';
    const first = this.firstRow.get(key);
    if (first !== undefined) return first;
    this.firstRow.set(key, number);
    return undefined;
  }

  commit(): void {
    if (this.seen) for (const key of this.firstRow.keys()) this.seen.add(key);
  }
}

/** A row's key for `unique`, or null when a key column is null (nulls never collide). */
function keyOf(row: Row, columns: readonly ColumnSchema[]): string | null {
  const parts: string[] = [];
  for (const c of columns) {
    const v = row[c.name];
    if (v === null || v === undefined) return null;
    // Typed so that 1 and '1' differ; String() makes -0 equal 0 and NaN equal NaN, as DuckDB does.
    parts.push(
      typeof v === 'string' ? `s${v}` : `${typeof v === 'number' ? 'n' : 'b'}${String(v)}`,
    );
  }
  return JSON.stringify(parts);
}

function compileCheck(rule: PreparedRowRule, schema: readonly ColumnSchema[]): Check {
  switch (rule.kind) {
    case 'unique':
      // Stateful: handled by UniqueState.
      return () => false;
    case 'expression': {
      const evaluate = expressionFunction(rule.check, schema);
      return (row) => evaluate(row) !== true;
    }
    default: {
      const name = rule.column.name;
      return (row) => failsValue(rule, row[name]);
    }
  }
}

function isTable(input: readonly Row[] | Table): input is Table {
  return !Array.isArray(input);
}

/**
 * Compiles a rule set for rows of `schema` (checks columns and types, resolves references).
 * @example const compiled = await compileRules(spec, schema); compiled.check(rows);
 */
export async function compileRules(
  ruleSet: ValidationSpec,
  schema: readonly ColumnSchema[],
  options: PrepareOptions = {},
): Promise<CompiledRules> {
  return new CompiledRules(await prepareRules(ruleSet, schema, options));
}

export interface ValidateRowsOptions extends PrepareOptions, CheckOptions {
  /** Column types of plain rows (inferred from the values when absent; a Table has its own). */
  readonly schema?: readonly ColumnSchema[];
  /**
   * Where failing rows go under policy `quarantine`. Without it they are only returned in
   * `failures`, and keeping them is the caller's job.
   */
  readonly quarantine?: QuarantineTarget;
}

export interface RowsValidation<T> {
  readonly report: ValidationReport;
  /** The rows that continue: passing rows (quarantine), or all rows (warn or all passing). */
  readonly output: T;
  readonly failures: readonly RowFailure[];
}

/**
 * Validates rows and applies the policy: `fail` throws FERRY_VALIDATION_FAILED (details.report)
 * when a rule fails; `quarantine` drops failing rows from the output and writes them to the
 * quarantine target when given; `warn` keeps every row.
 * @example const { output, report } = await validateRows(rows, spec, { quarantine: { offline, name: 'tx', source: 'http' } });
 */
export async function validateRows<T extends readonly Row[] | Table>(
  input: T,
  ruleSet: ValidationSpec,
  options: ValidateRowsOptions = {},
): Promise<RowsValidation<T>> {
  const schema = isTable(input)
    ? schemaOf(input)
    : (options.schema ?? inferSchema(input as readonly Row[]));
  const compiled = await compileRules(ruleSet, schema, {
    ...options,
    skipReferences: options.tableRules !== true,
  });
  const checked = compiled.check(input, options);
  let report = checked.report;
  if (report.outcome === 'failed') throw validationError(report);
  if (report.outcome !== 'quarantined')
    return { report, output: input, failures: checked.failures };
  if (options.quarantine) {
    await writeQuarantine(
      options.quarantine,
      checked.failures.map((f) => ({
        row: f.row,
        rule: f.rule,
        reason: f.reason,
        values: f.values,
      })),
      { runId: report.runId, at: report.checkedAt },
    );
    report = withQuarantine(
      report,
      quarantineTableName(options.quarantine.name),
      checked.failures.length,
    );
  }
  const output = (isTable(input)
    ? takeRows(input, checked.passing)
    : checked.passing.map((i) => (input as readonly Row[])[i] as Row)) as unknown as T;
  return { report, output, failures: checked.failures };
}

function inferSchema(rows: readonly Row[]): ColumnSchema[] {
  const names = new Set<string>();
  for (const row of rows) for (const name of Object.keys(row)) names.add(name);
  return [...names].map((name) => ({
    name,
    type: inferType(rows.map((r): Scalar => r[name] ?? null)),
  }));
}
