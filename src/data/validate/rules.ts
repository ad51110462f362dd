/**
 * Validation rules prepared once for a table's schema, shared by the SQL path (`relation.ts`)
 * and the rows path (`rows.ts`) so that both check the same thing and word the same reasons.
 *
 * What every rule means (both paths):
 * - Row-level rules mark failing rows; a null passes every row-level rule except `not_null`
 *   (missing values are `not_null`'s business), and NaN is a value, not a null.
 * - `not_null`: the value is null.
 * - `unique`: the rows after the first (by row number) with the same key fail. A row with a null
 *   in any key column is not checked: nulls never collide, as in SQL's UNIQUE. NaN equals NaN and
 *   -0 equals 0 here.
 * - `range`: min and max are inclusive; NaN fails; timestamps compare as UTC milliseconds.
 * - `allowed`: equality with one of the values, in the column's type (for a text column the
 *   listed numbers and booleans are compared as their text, `1` as '1').
 * - `pattern`: the whole text matches (see `pattern.ts` for the portable subset).
 * - `type`: the value converts to the type (see `convert.ts`).
 * - `expression`: the check is false OR null (a check that cannot be decided, e.g. on a missing
 *   value, does not pass; write `coalesce(...)` to decide it).
 * - Table-level rules pass or fail the table: `row_count` (inclusive bounds), `null_share` (share
 *   of nulls <= max; 0 for an empty table), `distribution` (PSI against the reference <= max_psi,
 *   with the buckets of `src/monitoring/drift.ts`).
 */
import type { ValidationSpec, RuleSpec } from '../../config/data-schema.js';
import type { ColumnProfile } from '../../core/profile.js';
import type { ColumnSchema, ColumnType, Row, Scalar } from '../../core/table.js';
import { FerryError } from '../../errors/index.js';
import { convertsTo } from './convert.js';
import { compilePattern, type PortablePattern } from './pattern.js';
import {
  expectedCounts,
  fileReferences,
  psiFromCounts,
  type ResolveReference,
} from './reference.js';

export type Policy = ValidationSpec['policy'];
/** What a failing rule does: stop everything, set rows aside, or only report. */
export type Action = 'fail' | 'quarantine' | 'warn';

interface Base {
  /** Position in the rule set. */
  readonly index: number;
  /** Short unique label, e.g. `range(amount)`. */
  readonly name: string;
  /** What the rule requires, in words. */
  readonly description: string;
  readonly spec: RuleSpec;
}

export type PreparedRowRule = Base &
  (
    | { readonly kind: 'not_null'; readonly column: ColumnSchema }
    | { readonly kind: 'unique'; readonly columns: readonly ColumnSchema[] }
    | {
        readonly kind: 'range';
        readonly column: ColumnSchema;
        readonly min: number | undefined;
        readonly max: number | undefined;
      }
    | {
        readonly kind: 'allowed';
        readonly column: ColumnSchema;
        /** The values in the column's type: text, numbers or booleans. */
        readonly values: readonly (string | number | boolean)[];
      }
    | { readonly kind: 'pattern'; readonly column: ColumnSchema; readonly pattern: PortablePattern }
    | { readonly kind: 'type'; readonly column: ColumnSchema; readonly type: ColumnType }
    | { readonly kind: 'expression'; readonly check: string; readonly message: string | undefined }
  );

export type PreparedTableRule = Base &
  (
    | {
        readonly kind: 'row_count';
        readonly min: number | undefined;
        readonly max: number | undefined;
      }
    | { readonly kind: 'null_share'; readonly column: ColumnSchema; readonly max: number }
    | {
        readonly kind: 'distribution';
        readonly column: ColumnSchema;
        readonly reference: string;
        readonly profile: ColumnProfile;
        readonly maxPsi: number;
      }
  );

export type PreparedRule = PreparedRowRule | PreparedTableRule;

export interface PreparedRuleSet {
  readonly name: string;
  readonly policy: Policy;
  readonly schema: readonly ColumnSchema[];
  /** Every rule, in the rule set's order. */
  readonly rules: readonly PreparedRule[];
  readonly rowRules: readonly PreparedRowRule[];
  readonly tableRules: readonly PreparedTableRule[];
}

export interface PrepareOptions {
  /**
   * Resolves `distribution` references to the column's profile. By default profile files are
   * read relative to `baseDir` and `model:` references are refused.
   */
  readonly resolveReference?: ResolveReference;
  /** Folder of relative reference files (default: the working directory). */
  readonly baseDir?: string;
  /** Skip resolving `distribution` references (for paths that do not check table rules). */
  readonly skipReferences?: boolean;
}

const ROW_KINDS = new Set<RuleSpec['rule']>([
  'not_null',
  'unique',
  'range',
  'allowed',
  'pattern',
  'type',
  'expression',
]);

export function isRowRule(rule: PreparedRule): rule is PreparedRowRule {
  return ROW_KINDS.has(rule.kind);
}

/**
 * What a failing rule does under a policy. Under `quarantine`, only row-level rules can set rows
 * aside; a table-level failure has no culprit rows, so:
 * - `row_count` fails the run: too few rows means a truncated or empty input and too many a
 *   duplicated one; writing such a table "with a warning" is how data silently goes missing;
 * - `null_share` and `distribution` warn: they describe the whole batch, which may still be the
 *   best data there is, and a user who wants them to stop the run says `policy: fail`.
 * @example actionOf('quarantine', 'row_count') // 'fail'
 */
export function actionOf(policy: Policy, kind: RuleSpec['rule']): Action {
  if (policy !== 'quarantine' || ROW_KINDS.has(kind)) return policy;
  return kind === 'row_count' ? 'fail' : 'warn';
}

/**
 * Checks a rule set against a schema (columns exist, rules fit their column's type, patterns are
 * portable) and resolves distribution references.
 * @example const prepared = await prepareRules(spec.validations[0], schemaOf(table));
 */
export async function prepareRules(
  ruleSet: ValidationSpec,
  schema: readonly ColumnSchema[],
  options: PrepareOptions = {},
): Promise<PreparedRuleSet> {
  const byName = new Map(schema.map((c) => [c.name, c] as const));
  const columnOf = (name: string, rule: string): ColumnSchema => {
    const c = byName.get(name);
    if (c === undefined) {
      throw new FerryError(
        'FERRY_COLUMN_UNKNOWN',
        `rule set '${ruleSet.name}': ${rule} names column '${name}', which the data does not have; columns: ${schema.map((s) => s.name).join(', ')}`,
      );
    }
    return c;
  };
  const invalid = (message: string): FerryError =>
    new FerryError('FERRY_CONFIG_INVALID', `rule set '${ruleSet.name}': ${message}`);
  const resolve = options.resolveReference ?? fileReferences(options.baseDir ?? process.cwd());
  const names = new Map<string, number>();
  const uniqueName = (label: string): string => {
    const n = (names.get(label) ?? 0) + 1;
    names.set(label, n);
    return n === 1 ? label : `${label}#${n}`;
  };

  const rules: PreparedRule[] = [];
  for (const [index, spec] of ruleSet.rules.entries()) {
    const base = (label: string, description: string): Base => ({
      index,
      name: uniqueName(label),
      description,
      spec,
    });
    switch (spec.rule) {
      case 'not_null': {
        const column = columnOf(spec.column, 'not_null');
        rules.push({
          ...base(`not_null(${spec.column})`, `${spec.column} is present`),
          kind: 'not_null',
          column,
        });
        break;
      }
      case 'unique': {
        const columns = spec.columns.map((c) => columnOf(c, 'unique'));
        const key = spec.columns.join(', ');
        rules.push({
          ...base(
            `unique(${key})`,
            spec.columns.length === 1 ? `${key} is unique` : `(${key}) is unique`,
          ),
          kind: 'unique',
          columns,
        });
        break;
      }
      case 'range': {
        const column = columnOf(spec.column, 'range');
        if (!isNumberColumn(column.type)) {
          throw invalid(
            `range on '${spec.column}' needs a numeric or timestamp column, but it is ${column.type}; add a type rule or a cast step`,
          );
        }
        if (spec.min === undefined && spec.max === undefined) {
          throw invalid(`range on '${spec.column}' needs min, max or both`);
        }
        if (spec.min !== undefined && spec.max !== undefined && spec.min > spec.max) {
          throw invalid(`range on '${spec.column}' has min ${spec.min} above max ${spec.max}`);
        }
        const lo = spec.min === undefined ? '' : `${spec.min} <= `;
        const hi = spec.max === undefined ? '' : ` <= ${spec.max}`;
        rules.push({
          ...base(`range(${spec.column})`, `${lo}${spec.column}${hi}`),
          kind: 'range',
          column,
          min: spec.min,
          max: spec.max,
        });
        break;
      }
      case 'allowed': {
        const column = columnOf(spec.column, 'allowed');
        const values = spec.values.map((v) => {
          const typed = allowedValue(v, column.type);
          if (typed === null) {
            throw invalid(
              `allowed value ${JSON.stringify(v)} cannot equal a value of '${spec.column}', a ${column.type} column; write ${column.type === 'bool' ? 'true or false' : 'a number'} without quotes`,
            );
          }
          return typed;
        });
        rules.push({
          ...base(
            `allowed(${spec.column})`,
            `${spec.column} in {${truncateList(values.map((v) => String(v)))}}`,
          ),
          kind: 'allowed',
          column,
          values,
        });
        break;
      }
      case 'pattern': {
        const column = columnOf(spec.column, 'pattern');
        if (column.type !== 'string') {
          throw invalid(
            `pattern on '${spec.column}' needs a text column, but it is ${column.type}; use range or allowed for numbers`,
          );
        }
        rules.push({
          ...base(`pattern(${spec.column})`, `${spec.column} matches /${spec.regex}/`),
          kind: 'pattern',
          column,
          pattern: compilePattern(spec.regex),
        });
        break;
      }
      case 'type': {
        const column = columnOf(spec.column, 'type');
        rules.push({
          ...base(`type(${spec.column})`, `${spec.column} converts to ${spec.type}`),
          kind: 'type',
          column,
          type: spec.type,
        });
        break;
      }
      case 'expression':
        rules.push({
          ...base(`expression(${truncate(spec.check, 40)})`, spec.message ?? `${spec.check} holds`),
          kind: 'expression',
          check: spec.check,
          message: spec.message,
        });
        break;
      case 'row_count': {
        if (spec.min !== undefined && spec.max !== undefined && spec.min > spec.max) {
          throw invalid(`row_count has min ${spec.min} above max ${spec.max}`);
        }
        const description =
          spec.min !== undefined && spec.max !== undefined
            ? `between ${spec.min} and ${spec.max} rows`
            : spec.min !== undefined
              ? `at least ${rowsText(spec.min)}`
              : spec.max !== undefined
                ? `at most ${rowsText(spec.max)}`
                : 'any number of rows';
        rules.push({
          ...base('row_count', description),
          kind: 'row_count',
          min: spec.min,
          max: spec.max,
        });
        break;
      }
      case 'null_share': {
        const column = columnOf(spec.column, 'null_share');
        rules.push({
          ...base(
            `null_share(${spec.column})`,
            `at most ${percent(spec.max)} of ${spec.column} is null`,
          ),
          kind: 'null_share',
          column,
          max: spec.max,
        });
        break;
      }
      case 'distribution': {
        const column = columnOf(spec.column, 'distribution');
        const profile: ColumnProfile = options.skipReferences
          ? EMPTY_PROFILE
          : await resolve(spec.reference, spec.column);
        rules.push({
          ...base(
            `distribution(${spec.column})`,
            `PSI of ${spec.column} against ${spec.reference} <= ${spec.max_psi}`,
          ),
          kind: 'distribution',
          column,
          reference: spec.reference,
          profile,
          maxPsi: spec.max_psi,
        });
        break;
      }
    }
  }
  return {
    name: ruleSet.name,
    policy: ruleSet.policy,
    schema,
    rules,
    rowRules: rules.filter(isRowRule),
    tableRules: rules.filter((r): r is PreparedTableRule => !isRowRule(r)),
  };
}

const EMPTY_PROFILE: ColumnProfile = {
  kind: 'categorical',
  count: 0,
  nulls: 0,
  distinct: 0,
  top: [],
  otherCount: 0,
};

function isNumberColumn(type: ColumnType): boolean {
  return type === 'int' || type === 'float' || type === 'timestamp';
}

/** An `allowed` value in the column's type, or null when it can never equal one. */
function allowedValue(
  v: string | number | boolean,
  type: ColumnType,
): string | number | boolean | null {
  if (type === 'string') return String(v);
  if (type === 'bool') return typeof v === 'boolean' ? v : null;
  return typeof v === 'number' ? v : null;
}

/* ------------------------------------------------------------------ the rows path's checks */

/**
 * Whether a value fails a single-column row-level rule (not `unique`, not `expression`).
 * @example failsValue(rangeRule, -1) // true when min is 0
 */
export function failsValue(rule: PreparedRowRule, value: Scalar | undefined): boolean {
  if (rule.kind === 'not_null') return value === null || value === undefined;
  if (value === null || value === undefined) return false;
  switch (rule.kind) {
    case 'range':
      if (typeof value !== 'number' || Number.isNaN(value)) return true;
      return (
        (rule.min !== undefined && value < rule.min) || (rule.max !== undefined && value > rule.max)
      );
    case 'allowed': {
      const v = rule.column.type === 'string' && typeof value !== 'string' ? String(value) : value;
      return !rule.values.includes(v);
    }
    case 'pattern':
      return !rule.pattern.regex.test(typeof value === 'string' ? value : String(value));
    case 'type':
      return !convertsTo(value, rule.type);
    default:
      return false;
  }
}

/* ------------------------------------------------------------------ table-level rules */

/** A table-level rule's outcome. */
export interface TableRuleOutcome {
  readonly pass: boolean;
  /** Rows (row_count), share of nulls (null_share) or PSI (distribution). */
  readonly observed: number;
  /** The failure in words (also set when passing, for logs). */
  readonly reason: string;
}

/** What both paths measure for a table-level rule. */
export interface TableMeasure {
  readonly rows: number;
  /** null_share: nulls in the column. */
  readonly nulls?: number;
  /** distribution: live bucket counts in the reference's bucket order (see `actualCounts`). */
  readonly counts?: readonly number[];
}

/**
 * Judges a table-level rule from what was measured, identically for both paths.
 * @example tableOutcome(rowCountRule, { rows: 0 }).pass // false when min is 1
 */
export function tableOutcome(rule: PreparedTableRule, m: TableMeasure): TableRuleOutcome {
  switch (rule.kind) {
    case 'row_count': {
      const low = rule.min !== undefined && m.rows < rule.min;
      const high = rule.max !== undefined && m.rows > rule.max;
      return {
        pass: !low && !high,
        observed: m.rows,
        reason: low
          ? `${rowsText(m.rows)}, fewer than the minimum ${rule.min}`
          : high
            ? `${rowsText(m.rows)}, more than the maximum ${rule.max}`
            : rowsText(m.rows),
      };
    }
    case 'null_share': {
      const nulls = m.nulls ?? 0;
      const share = m.rows === 0 ? 0 : nulls / m.rows;
      return {
        pass: share <= rule.max,
        observed: share,
        reason: `${percent(share)} of ${rule.column.name} is null (${nulls} of ${m.rows} rows)${share > rule.max ? `, above ${percent(rule.max)}` : ''}`,
      };
    }
    case 'distribution': {
      const psi = psiFromCounts(expectedCounts(rule.profile), m.counts ?? []);
      return {
        pass: psi <= rule.maxPsi,
        observed: psi,
        reason: `PSI ${psi.toFixed(3)} against ${rule.reference}${psi > rule.maxPsi ? `, above ${rule.maxPsi}` : ''}`,
      };
    }
  }
}

/* ------------------------------------------------------------------ reasons */

/** Where the first row of a repeated key was: its row number, or an earlier batch. */
export type FirstSeen = number | 'earlier';

/**
 * Why a row fails a row-level rule, in words that name the value; the same text on both paths.
 * @example reasonOf(rule, { amount: -5 }) // "amount is -5, below the minimum 0"
 */
export function reasonOf(rule: PreparedRowRule, row: Row, firstSeen?: FirstSeen): string {
  switch (rule.kind) {
    case 'not_null':
      return `${rule.column.name} is missing`;
    case 'unique': {
      const key = rule.columns.map((c) => `${c.name}=${show(row[c.name], c.type)}`).join(', ');
      return firstSeen === 'earlier'
        ? `duplicate key ${key}, already seen in an earlier batch`
        : `duplicate key ${key}, first seen at row ${firstSeen ?? '?'}`;
    }
    case 'range': {
      const value = row[rule.column.name];
      const shown = `${rule.column.name} is ${show(value, rule.column.type)}`;
      if (typeof value !== 'number') return `${shown}, not a number`;
      if (Number.isNaN(value)) return `${shown}, not a number in range`;
      if (rule.min !== undefined && value < rule.min) {
        return `${shown}, below the minimum ${show(rule.min, rule.column.type)}`;
      }
      return `${shown}, above the maximum ${show(rule.max ?? null, rule.column.type)}`;
    }
    case 'allowed':
      return `${rule.column.name} is ${show(row[rule.column.name], rule.column.type)}, not one of ${truncateList(rule.values.map((v) => show(v, rule.column.type)))}`;
    case 'pattern':
      return `${rule.column.name} is ${show(row[rule.column.name], rule.column.type)}, which does not match /${rule.pattern.source}/`;
    case 'type':
      return `${rule.column.name} is ${show(row[rule.column.name], rule.column.type)}, not a valid ${rule.type}`;
    case 'expression':
      return rule.message ?? `check ${rule.check} is not true (false or null)`;
  }
}

/** A value for a message: text quoted and shortened, timestamps as ISO 8601. */
export function show(value: Scalar | undefined, type: ColumnType): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'string') return `'${truncate(value, 60)}'`;
  if (type === 'timestamp' && typeof value === 'number' && Number.isFinite(value)) {
    const date = new Date(value);
    if (!Number.isNaN(date.getTime())) return date.toISOString();
  }
  return String(value);
}

function truncate(text: string, length: number): string {
  return text.length > length ? `${text.slice(0, length - 3)}...` : text;
}

function truncateList(items: readonly string[]): string {
  const shown = items.slice(0, 10).join(', ');
  return items.length > 10 ? `${shown}, ... (${items.length} values)` : shown;
}

function rowsText(n: number): string {
  return n === 1 ? '1 row' : `${n} rows`;
}

export function percent(share: number): string {
  return `${Number((share * 100).toPrecision(4))}%`;
}
