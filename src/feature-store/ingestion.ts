/**
 * The one code path that turns a batch of source rows into a feature set's events, shared by
 * batch ingestion (`FeatureStore.ingest`, a whole file as one batch) and streaming ingestion
 * (`POST /v1/feature-sets/{name}/events`, NATS), so that a feature set's steps and rules mean the
 * same thing on both. {@link compileIngestion} compiles a feature set for an input schema once;
 * {@link prepareEvents} then runs each batch, synchronously and without I/O, in this order:
 *
 * 1. read: each value against the input schema; a present value that does not convert (a stream's
 *    `"amount": "lots"` for a float column) is rejected by rule `type(<column>)`, never nulled;
 * 2. steps: the feature set's row-wise `steps:`, compiled as a fitted recipe that learned nothing
 *    (`src/data/prep/row.ts`); rows a filter or drop_missing removes are counted as filtered;
 * 3. validation: the feature set's rule set on the prepared rows, under its policy: `fail` throws
 *    FERRY_VALIDATION_FAILED (details.report) before the caller writes anything, `quarantine`
 *    rejects each failing row with its first failing rule, `warn` lets every row continue;
 * 4. entity key, timestamp and feature types: a row without a usable key (rule `entity_key`) or
 *    time (`timestamp`), or with a value not of its feature's type (`type(<feature>)`), is rejected;
 * 5. duplicates: an event already seen in the batch (same key, time and event_id) is skipped.
 *
 * A rejected row carries the row as it came in (what a user fixes and sends again), its 1-based
 * row number, the rule and the reason: the quarantine format of `src/data/validate/quarantine.ts`.
 * Every row is accounted for: read = filtered + rejected + duplicates + accepted.
 */
import type { ValidationSpec } from '../config/data-schema.js';
import { featureSetStepRefusal, type FeatureSetSpec, type ProjectSpec } from '../config/schema.js';
import type { ColumnSchema, ColumnType, Row, Scalar } from '../core/table.js';
import { coerceInput } from '../data/prep/convert.js';
import { FITTED_RECIPE_FORMAT, type FittedRecipe, type FittedStep } from '../data/prep/fitted.js';
import type { Relation } from '../data/prep/relation.js';
import { compileRecipe, type RowPipeline } from '../data/prep/row.js';
import type { FitContext, StepKind } from '../data/prep/step.js';
import { kindOf } from '../data/prep/steps/index.js';
import type { QuarantineRow } from '../data/validate/quarantine.js';
import { validationError, type ValidationReport } from '../data/validate/report.js';
import { compileRules, type CompiledRules, type SeenKeys } from '../data/validate/rows.js';
import type { ResolveReference } from '../data/validate/reference.js';
import { FerryError } from '../errors/index.js';
import { castKey, castTimestamp, castValue, INVALID, showValue } from './cast.js';

/** The optional source column that tells apart two events of one entity at the same time. */
export const EVENT_ID_COLUMN = 'event_id';

/** Rule names of the rejections ingestion makes itself, beside the rule set's. */
export const ENTITY_KEY_RULE = 'entity_key';
export const TIMESTAMP_RULE = 'timestamp';
export const typeRule = (column: string): string => `type(${column})`;

/** A feature set compiled for rows of one input schema. */
export interface IngestionPlan {
  readonly featureSet: FeatureSetSpec;
  readonly keyColumn: string;
  /** Columns of the rows given to {@link prepareEvents}, by which their values are read. */
  readonly input: readonly ColumnSchema[];
  /** Columns after the steps: what validation and the stores see. */
  readonly prepared: readonly ColumnSchema[];
  /** The steps as a fitted recipe (for request-time use), or null when there are none. */
  readonly fitted: FittedRecipe | null;
  readonly pipeline: RowPipeline | null;
  readonly rules: CompiledRules | null;
  /** Whether table-level rules (row_count, null_share, distribution) are checked on each batch. */
  readonly tableRules: boolean;
  readonly hasEventId: boolean;
}

export interface CompileIngestionOptions {
  /**
   * Check table-level rules on each batch (batch ingestion: the batch is the whole file). Streams
   * leave it off: a batch of a stream is not a table, and those rules are reported as skipped.
   */
  readonly tableRules?: boolean;
  /** Folder of relative `distribution` reference files. */
  readonly baseDir?: string;
  /** Resolves `model:` references of distribution rules. */
  readonly resolveReference?: ResolveReference;
  /** Names where the rows come from in error messages, e.g. the file. */
  readonly origin?: string;
}

/** Events ready to store, column by column; `features` in the feature set's order. */
export interface EventBatch {
  readonly keys: string[];
  readonly times: number[];
  readonly eventIds: string[];
  readonly features: Scalar[][];
}

export interface PrepareReport {
  /** Rows given. */
  readonly read: number;
  /** Rows a filter or drop_missing step removed (counted, not quarantined). */
  readonly filtered: number;
  /** Events skipped as repeated within the batch. */
  readonly duplicates: number;
  /** Rejected rows by rule. */
  readonly rejectedByRule: Readonly<Record<string, number>>;
  /** The rule set's report (before anything was quarantined), or null without rules. */
  readonly validation: ValidationReport | null;
}

export interface PreparedEvents {
  readonly accepted: EventBatch;
  /** Rows to quarantine, in row order. */
  readonly rejected: QuarantineRow[];
  readonly report: PrepareReport;
}

export interface PrepareOptions {
  /** Row number of the batch's first row (default 1). */
  readonly firstRow?: number;
  /** Keys of `unique` rules seen in earlier batches of a stream. */
  readonly seen?: SeenKeys;
  /** Identifies the run in the validation report (default: a new UUID). */
  readonly runId?: string;
  /** UTC ms (default: now). */
  readonly now?: number;
}

/**
 * A feature set's rule set: the named one under `validations:`, or its inline one (named after the
 * feature set); null when it has none.
 * @example const rules = ruleSetOf(spec, spec.feature_sets[0]);
 */
export function ruleSetOf(spec: ProjectSpec, featureSet: FeatureSetSpec): ValidationSpec | null {
  const validation = featureSet.validation;
  if (validation === undefined) return null;
  if (typeof validation !== 'string') return { name: featureSet.name, ...validation };
  const named = spec.validations.find((v) => v.name === validation);
  if (!named) {
    throw new FerryError(
      'FERRY_CONFIG_INVALID',
      `feature set '${featureSet.name}': rule set '${validation}' is not defined under validations:; defined: ${spec.validations.map((v) => v.name).join(', ') || '(none)'}`,
    );
  }
  return named;
}

/**
 * Compiles a feature set's steps and rules for rows of `input`: checks every step against the
 * columns it receives, that the prepared rows have the entity key, timestamp and features, and
 * that the rules name existing columns. Errors name the feature set and the step.
 * @example const plan = await compileIngestion(fs, 'card_id', rules, schemaOf(table), { tableRules: true });
 */
export async function compileIngestion(
  featureSet: FeatureSetSpec,
  keyColumn: string,
  ruleSet: ValidationSpec | null,
  input: readonly ColumnSchema[],
  options: CompileIngestionOptions = {},
): Promise<IngestionPlan> {
  const origin = options.origin ?? 'the input';
  const { fitted, schema: prepared } = await fitSteps(featureSet, input);
  const required = [keyColumn, featureSet.timestamp, ...featureSet.features.map((f) => f.name)];
  const present = new Set(prepared.map((c) => c.name));
  const missing = [...new Set(required)].filter((name) => !present.has(name));
  if (missing.length > 0) {
    const listed = missing.map((m) => `'${m}'`).join(', ');
    const columns = prepared.map((c) => c.name).join(', ');
    throw new FerryError(
      'FERRY_COLUMN_UNKNOWN',
      fitted === null
        ? `feature set '${featureSet.name}' needs column(s) ${listed}, which ${origin} lacks; its columns: ${columns}`
        : `feature set '${featureSet.name}' needs column(s) ${listed}, which ${origin} lacks after its steps; columns after the steps: ${columns}`,
    );
  }
  const tableRules = options.tableRules === true;
  const rules =
    ruleSet === null
      ? null
      : await compileRules(ruleSet, prepared, {
          skipReferences: !tableRules,
          ...(options.baseDir !== undefined ? { baseDir: options.baseDir } : {}),
          ...(options.resolveReference ? { resolveReference: options.resolveReference } : {}),
        });
  return {
    featureSet,
    keyColumn,
    input: [...input],
    prepared,
    fitted,
    pipeline: fitted === null ? null : compileRecipe(fitted),
    rules,
    tableRules,
    hasEventId: present.has(EVENT_ID_COLUMN),
  };
}

/** The steps as a fitted recipe: each is checked against its input columns and learns nothing. */
async function fitSteps(
  featureSet: FeatureSetSpec,
  input: readonly ColumnSchema[],
): Promise<{ fitted: FittedRecipe | null; schema: ColumnSchema[] }> {
  if (featureSet.steps.length === 0) return { fitted: null, schema: [...input] };
  let relation: Relation = { sql: '', schema: [...input] };
  const steps: FittedStep[] = [];
  for (const [i, spec] of featureSet.steps.entries()) {
    const where = `feature set '${featureSet.name}', step ${i + 1} (${spec.step})`;
    const refusal = featureSetStepRefusal(spec);
    if (refusal !== null) {
      throw new FerryError(
        'FERRY_CONFIG_INVALID',
        `${where} cannot run on a feature set: ${refusal}`,
      );
    }
    const kind = kindOf(spec.step) as StepKind<FittedStep['step']>;
    const fitted = await kind.fit(spec as never, relation, noDataContext(where));
    steps.push(fitted);
    relation = { sql: '', schema: kind.schema(fitted as never, relation.schema) };
  }
  return {
    fitted: {
      format: FITTED_RECIPE_FORMAT,
      recipe: `feature_set:${featureSet.name}`,
      source: {
        name: featureSet.name,
        type: featureSet.source?.type ?? 'rows',
        schema: [...input],
      },
      fittedOn: 'all',
      fitRows: 0,
      steps,
      schema: [...relation.schema],
      createdAt: new Date().toISOString(),
    },
    schema: [...relation.schema],
  };
}

/** A fit context without data: the steps a feature set allows never query it. */
function noDataContext(where: string): FitContext {
  const refuse = (): never => {
    throw new FerryError('FERRY_INTERNAL', `${where}: a feature-set step asked for data to fit on`);
  };
  return { where, fitWhere: 'TRUE', query: async () => refuse(), source: async () => refuse() };
}

const BLANK = /^[ \t\n\r]*$/;

/**
 * Runs one batch of source rows through a compiled feature set (see the module comment): what to
 * store, what to quarantine and why, and the counts. Writes nothing; under policy `fail` it throws
 * FERRY_VALIDATION_FAILED with the report in `details.report`.
 * @example const { accepted, rejected, report } = prepareEvents(plan, rows);
 */
export function prepareEvents(
  plan: IngestionPlan,
  rows: readonly Readonly<Record<string, unknown>>[],
  options: PrepareOptions = {},
): PreparedEvents {
  const firstRow = options.firstRow ?? 1;
  const rejected: QuarantineRow[] = [];
  const byRule: Record<string, number> = {};
  const reject = (source: number, rule: string, reason: string): void => {
    rejected.push({
      row: firstRow + source,
      rule,
      reason,
      values: recordOf(rows[source] as Readonly<Record<string, unknown>>),
    });
    byRule[rule] = (byRule[rule] ?? 0) + 1;
  };

  // 1-2. Read against the input schema, then the steps.
  const prepared: Row[] = [];
  const sourceOf: number[] = [];
  let filtered = 0;
  read: for (let r = 0; r < rows.length; r++) {
    const raw = rows[r] as Readonly<Record<string, unknown>>;
    const row: Row = {};
    for (const c of plan.input) {
      const value = raw[c.name];
      const coerced = coerceInput(value, c.type);
      if (coerced === null && isPresent(value)) {
        reject(r, typeRule(c.name), `'${c.name}' is ${showInput(value)}, not a valid ${c.type}`);
        continue read;
      }
      row[c.name] = coerced;
    }
    const out = plan.pipeline === null ? row : plan.pipeline(row);
    if (out === null) {
      filtered++;
      continue;
    }
    prepared.push(out);
    sourceOf.push(r);
  }

  // 3. The rule set, under its policy.
  let validation: ValidationReport | null = null;
  let setAside: ReadonlySet<number> = new Set();
  if (plan.rules !== null) {
    const checked = plan.rules.check(prepared, {
      rowNumbers: sourceOf.map((r) => firstRow + r),
      tableRules: plan.tableRules,
      ...(options.seen ? { seen: options.seen } : {}),
      ...(options.runId !== undefined ? { runId: options.runId } : {}),
      ...(options.now !== undefined ? { now: options.now } : {}),
    });
    validation = checked.report;
    if (validation.outcome === 'failed') throw validationError(validation);
    if (validation.outcome === 'quarantined') {
      setAside = new Set(checked.failures.map((f) => f.index));
      for (const f of checked.failures) reject(sourceOf[f.index] as number, f.rule, f.reason);
    }
  }

  // 4-5. Key, time and feature types; repeats within the batch.
  const fs = plan.featureSet;
  const keys: string[] = [];
  const times: number[] = [];
  const eventIds: string[] = [];
  const features: Scalar[][] = fs.features.map(() => []);
  const seen = new Set<string>();
  let duplicates = 0;
  const cast: Scalar[] = new Array<Scalar>(fs.features.length);
  events: for (let i = 0; i < prepared.length; i++) {
    if (setAside.has(i)) continue;
    const row = prepared[i] as Row;
    const source = sourceOf[i] as number;
    const rawKey = row[plan.keyColumn];
    const key = castKey(rawKey);
    if (key === null || key === INVALID) {
      reject(
        source,
        ENTITY_KEY_RULE,
        key === null
          ? `entity key '${plan.keyColumn}' is missing`
          : `entity key '${plan.keyColumn}' is ${showValue(rawKey)}, not a text or number key`,
      );
      continue;
    }
    const rawTs = row[fs.timestamp];
    const ts = castTimestamp(rawTs);
    if (ts === null || ts === INVALID) {
      reject(
        source,
        TIMESTAMP_RULE,
        ts === null
          ? `timestamp '${fs.timestamp}' is missing`
          : `timestamp '${fs.timestamp}' is ${showValue(rawTs)}, not a time (use ISO 8601 or UTC milliseconds)`,
      );
      continue;
    }
    for (let f = 0; f < fs.features.length; f++) {
      const feature = fs.features[f] as { name: string; type: ColumnType };
      const value = castValue(row[feature.name], feature.type);
      if (value === INVALID) {
        reject(
          source,
          typeRule(feature.name),
          `'${feature.name}' is ${showValue(row[feature.name])}, not a valid ${feature.type}`,
        );
        continue events;
      }
      cast[f] = value;
    }
    const rawId = plan.hasEventId ? (row[EVENT_ID_COLUMN] ?? null) : null;
    const eventId = rawId === null ? '' : String(rawId);
    const identity = eventIdentity(key, ts, eventId);
    if (seen.has(identity)) {
      duplicates++;
      continue;
    }
    seen.add(identity);
    keys.push(key);
    times.push(ts);
    eventIds.push(eventId);
    for (let f = 0; f < cast.length; f++) (features[f] as Scalar[]).push(cast[f] ?? null);
  }

  rejected.sort((a, b) => a.row - b.row);
  return {
    accepted: { keys, times, eventIds, features },
    rejected,
    report: { read: rows.length, filtered, duplicates, rejectedByRule: byRule, validation },
  };
}

/** The identity of an event: ingesting it twice stores it once. */
export function eventIdentity(key: string, ts: number, eventId: string): string {
  return `${key}\u0000${ts}\u0000${eventId}`;
}

/** Whether an input value is a value rather than missing (blank text and non-finite numbers are missing). */
function isPresent(value: unknown): boolean {
  if (value === null || value === undefined) return false;
  if (typeof value === 'string') return !BLANK.test(value);
  if (typeof value === 'number') return Number.isFinite(value);
  return true;
}

function showInput(value: unknown): string {
  if (value === null || typeof value !== 'object') return showValue(value as Scalar);
  return showValue(JSON.stringify(value));
}

/** A source row as the quarantine keeps it: scalars as they are, anything else as JSON text. */
function recordOf(input: Readonly<Record<string, unknown>>): Row {
  const record: Row = {};
  for (const [name, value] of Object.entries(input)) {
    if (value === undefined) continue;
    record[name] =
      value === null ||
      typeof value === 'string' ||
      typeof value === 'number' ||
      typeof value === 'boolean'
        ? value
        : (JSON.stringify(value) ?? String(value));
  }
  return record;
}
