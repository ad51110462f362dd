/**
 * Model training and selection: from a Table and a target column to the better of a linear
 * model and gradient-boosted trees, returned as a native model artifact. Deterministic for a seed.
 *
 * Validation: up to `CROSS_VALIDATION_MAX_ROWS` rows, candidates are compared by k-fold
 * cross-validation (k = 1 / validationFraction, so 5 folds by default) on out-of-fold
 * predictions, the boosting rounds are chosen on the mean validation curve of the folds, and the
 * winner is refitted on all rows. A single 20% hold-out is too noisy at that size to tell models
 * apart or to pick the rounds. Above it, one seeded hold-out split is used and the model trained
 * on the rest is the artifact (unless `refit`).
 *
 * Selection metric: ROC AUC for binary classification, log loss for multiclass (a proper score
 * that still separates models when accuracy ties), RMSE for regression. Ties fall back to log
 * loss (binary), accuracy (multiclass) or MAE (regression).
 */
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import type { Label, ModelInput, ModelSignature, Task } from '../core/model.js';
import { getColumn, takeRows, type Column, type Scalar, type Table } from '../core/table.js';
import { FerryError } from '../errors/index.js';
import { fitGbdt, truncateForest, type GbdtModel, type GbdtOptions } from './algorithms/gbdt.js';
import { fitLogistic, fitRidge } from './algorithms/linear.js';
import type { Objective } from './algorithms/objective.js';
import { classificationMetrics, regressionMetrics } from './metrics.js';
import {
  encodeNativeModel,
  NATIVE_FORMAT,
  NATIVE_FORMAT_VERSION,
  NativePredictor,
  type AlgorithmModel,
  type NativeModelDocument,
} from './native-model.js';
import { fit, toNumber, transform } from './preprocess.js';
import { holdoutSplit, kFolds, type Fold } from './split.js';

/** Boosting settings a caller may override. */
export type GbdtSettings = Partial<
  Pick<
    GbdtOptions,
    | 'learningRate'
    | 'maxRounds'
    | 'maxDepth'
    | 'maxLeaves'
    | 'minChildWeight'
    | 'lambda'
    | 'subsample'
    | 'earlyStoppingRounds'
  >
>;

export const GBDT_DEFAULTS: Required<GbdtSettings> = {
  learningRate: 0.1,
  maxDepth: 6,
  maxLeaves: 31,
  minChildWeight: 1,
  lambda: 1,
  subsample: 0.8,
  maxRounds: 300,
  earlyStoppingRounds: 20,
};

/** Tables up to this many rows (after dropping null targets) are cross-validated. */
export const CROSS_VALIDATION_MAX_ROWS = 5000;

export interface TrainOptions {
  readonly target: string;
  /** Inferred when absent: see `inferTask`. */
  readonly task?: Task;
  readonly seed?: number;
  /** Share of rows held out (default 0.2); cross-validation uses round(1 / fraction) folds. */
  readonly validationFraction?: number;
  /**
   * With a hold-out split, retrain the winner on all rows (train + validation) with the settings
   * validation chose. Default false: on data that large, the extra rows add little and the
   * artifact stays the very model the metrics describe. Cross-validation always refits.
   */
  readonly refit?: boolean;
  /** Overrides of `GBDT_DEFAULTS`. */
  readonly gbdt?: GbdtSettings;
  readonly onProgress?: (message: string) => void;
}

export interface TrainCandidate {
  readonly name: string;
  readonly params: Record<string, number | string>;
  /** Validation metrics (out-of-fold under cross-validation). */
  readonly metrics: Record<string, number>;
  readonly seconds: number;
}

export interface ValidationInfo {
  readonly method: 'holdout' | 'cross_validation';
  /** 1 for a hold-out split. */
  readonly folds: number;
  /** Rows the metrics are measured on. */
  readonly rows: number;
}

export interface TrainResult {
  readonly signature: ModelSignature;
  readonly candidates: TrainCandidate[];
  /** Name of the selected candidate. */
  readonly best: string;
  /** Validation metrics of the selected candidate. */
  readonly metrics: Record<string, number>;
  readonly validation: ValidationInfo;
  /** The native model (JSON bytes, see `native-model.ts`). */
  readonly artifact: Uint8Array;
}

/** More labels than this are refused: such a target is almost surely a quantity. */
const MAX_CLASSES = 200;

function isMissing(v: Scalar | undefined): boolean {
  return v === null || v === undefined || (typeof v === 'number' && Number.isNaN(v));
}

/**
 * Classification for string and bool targets, and for numbers with at most 20 distinct integer
 * values (or at most 2 values of any kind); regression otherwise.
 * @example inferTask({ name: 'y', type: 'int', values: [0, 1, 1] }) // 'classification'
 */
export function inferTask(column: Column): Task {
  if (column.type === 'string' || column.type === 'bool') return 'classification';
  const distinct = new Set<Scalar>();
  let allIntegers = true;
  for (const v of column.values) {
    if (isMissing(v)) continue;
    distinct.add(v);
    if (typeof v !== 'number' || !Number.isInteger(v)) allIntegers = false;
    if (distinct.size > 20) return 'regression';
  }
  return allIntegers || distinct.size <= 2 ? 'classification' : 'regression';
}

const TYPE_ORDER: Record<string, number> = { boolean: 0, number: 1, string: 2 };

/** Ascending: false < true, numbers numerically, strings by code unit; mixed types by type. */
function compareLabels(a: Label, b: Label): number {
  if (typeof a !== typeof b) return (TYPE_ORDER[typeof a] ?? 3) - (TYPE_ORDER[typeof b] ?? 3);
  if (typeof a === 'number') return a - (b as number);
  return a < b ? -1 : a > b ? 1 : 0;
}

interface Problem {
  readonly task: Task;
  readonly objective: Objective;
  readonly nClasses: number;
  /** Regression values or class indices, one per row of the table being fitted. */
  readonly y: Float64Array;
}

function subProblem(problem: Problem, rows: Uint32Array): Problem {
  return { ...problem, y: Float64Array.from(rows, (i) => problem.y[i] as number) };
}

type CandidateKind = 'linear' | 'gbdt';

interface FitContext {
  readonly signature: ModelSignature;
  readonly seed: number;
  readonly gbdt: Required<GbdtSettings>;
}

interface Fitted {
  readonly doc: NativeModelDocument;
  readonly params: Record<string, number | string>;
  readonly validationLoss: readonly number[];
}

function candidateName(kind: CandidateKind, task: Task): string {
  if (kind === 'gbdt') return 'gbdt';
  return task === 'classification' ? 'logistic_regression' : 'ridge_regression';
}

function fitCandidate(
  kind: CandidateKind,
  context: FitContext,
  table: Table,
  problem: Problem,
  validation: { table: Table; y: Float64Array } | null,
  rounds: number | null,
): Fitted {
  const { signature, seed, gbdt } = context;
  const { objective, nClasses, y } = problem;
  const mode = kind === 'linear' ? 'linear' : 'tree';
  // Ordering categories by their mean target helps trees; it is only defined for one output.
  const preprocess = fit(table, signature.inputs, {
    mode,
    ...(mode === 'tree' && objective !== 'multiclass' ? { target: y } : {}),
  });
  const x = transform(preprocess, table);
  let model: AlgorithmModel;
  let params: Record<string, number | string>;
  let validationLoss: readonly number[] = [];
  if (kind === 'linear') {
    if (objective === 'regression') {
      model = fitRidge(x, y, { alpha: 1 });
      params = { alpha: 1 };
    } else {
      // C = 1 in scikit-learn's terms, whatever the number of rows.
      const l2 = 1 / x.rows;
      model = fitLogistic(x, Int32Array.from(y), nClasses, { l2 });
      params = { C: 1, solver: 'lbfgs' };
    }
  } else {
    const result = fitGbdt(x, y, {
      objective,
      nClasses,
      seed,
      ...gbdt,
      ...(rounds === null ? {} : { maxRounds: rounds }),
      ...(validation === null
        ? {}
        : {
            validation: { x: transform(preprocess, validation.table), y: validation.y },
            keepAllRounds: true,
          }),
    });
    model = result.model;
    validationLoss = result.validationLoss;
    params = {
      learning_rate: gbdt.learningRate,
      max_depth: gbdt.maxDepth,
      max_leaves: gbdt.maxLeaves,
      min_child_weight: gbdt.minChildWeight,
      lambda: gbdt.lambda,
      subsample: gbdt.subsample,
      rounds: result.model.rounds,
    };
  }
  const doc: NativeModelDocument = {
    format: NATIVE_FORMAT,
    version: NATIVE_FORMAT_VERSION,
    signature,
    preprocess,
    model,
  };
  return { doc, params, validationLoss };
}

/** The round count with the lowest validation loss averaged over folds (weighted by rows). */
function chooseRounds(curves: readonly (readonly number[])[], weights: readonly number[]): number {
  const length = Math.min(...curves.map((c) => c.length));
  let best = 0;
  let bestLoss = Infinity;
  for (let r = 0; r < length; r++) {
    let loss = 0;
    curves.forEach((c, f) => (loss += (c[r] as number) * (weights[f] as number)));
    if (loss < bestLoss) {
      bestLoss = loss;
      best = r;
    }
  }
  return best + 1;
}

interface Evaluation {
  readonly metrics: Record<string, number>;
  readonly params: Record<string, number | string>;
  /** Boosting rounds validation chose (gbdt only). */
  readonly rounds: number | null;
  /** The model of each fold, cut to `rounds`. */
  readonly docs: NativeModelDocument[];
}

/** Fits a candidate on every fold and measures it on the rows each fold held out. */
function validateCandidate(
  kind: CandidateKind,
  context: FitContext,
  data: Table,
  problem: Problem,
  folds: readonly Fold[],
): Evaluation {
  const parts = folds.map((fold) => {
    const valid = takeRows(data, fold.valid);
    const validProblem = subProblem(problem, fold.valid);
    const fitted = fitCandidate(
      kind,
      context,
      takeRows(data, fold.train),
      subProblem(problem, fold.train),
      { table: valid, y: validProblem.y },
      null,
    );
    return { fitted, valid, validProblem };
  });
  let rounds: number | null = null;
  let docs = parts.map((p) => p.fitted.doc);
  if (kind === 'gbdt') {
    rounds = chooseRounds(
      parts.map((p) => p.fitted.validationLoss),
      folds.map((f) => f.valid.length),
    );
    const r = rounds;
    docs = docs.map((d) => ({ ...d, model: truncateForest(d.model as GbdtModel, r) }));
  }
  // Out-of-fold predictions, in fold order, against the matching labels.
  const rows = folds.reduce((s, f) => s + f.valid.length, 0);
  const actual = new Float64Array(rows);
  const k = problem.nClasses;
  const values = new Float64Array(problem.task === 'regression' ? rows : rows * k);
  let offset = 0;
  parts.forEach((part, f) => {
    const prediction = new NativePredictor(docs[f] as NativeModelDocument).predict(part.valid);
    actual.set(part.validProblem.y, offset);
    if (problem.task === 'regression') values.set(prediction.predict as number[], offset);
    else values.set(prediction.proba as Float64Array, offset * k);
    offset += part.valid.rowCount;
  });
  const metrics =
    problem.task === 'regression'
      ? regressionMetrics(actual, values)
      : classificationMetrics(actual, values, k);
  const params = { ...(parts[0] as (typeof parts)[number]).fitted.params };
  if (rounds !== null) params.rounds = rounds;
  return { metrics, params, rounds, docs };
}

/** Negative when `a` is the better candidate. NaN scores lose. */
function compareMetrics(
  a: Record<string, number>,
  b: Record<string, number>,
  keys: readonly (readonly [string, boolean])[],
): number {
  for (const [key, higherIsBetter] of keys) {
    const x = a[key] ?? NaN;
    const y = b[key] ?? NaN;
    if (Number.isNaN(x) && Number.isNaN(y)) continue;
    if (Number.isNaN(x)) return 1;
    if (Number.isNaN(y)) return -1;
    if (x !== y) return (higherIsBetter ? y > x : x > y) ? 1 : -1;
  }
  return 0;
}

/**
 * Trains a logistic/ridge model and gradient-boosted trees, selects the better one by
 * validation, and returns it as a native artifact with its signature and metrics.
 * @example
 * const result = await trainModel(table, { target: 'is_fraud', seed: 7, onProgress: console.log });
 * const model = await nativeRuntime.load(result.artifact);
 */
export async function trainModel(table: Table, options: TrainOptions): Promise<TrainResult> {
  const progress = options.onProgress ?? ((): void => {});
  const seed = options.seed ?? 0;
  const fraction = options.validationFraction ?? 0.2;
  if (!(fraction > 0 && fraction < 1)) {
    throw new FerryError(
      'FERRY_ARGUMENT_INVALID',
      `validationFraction must be between 0 and 1 (exclusive), got ${fraction}`,
    );
  }
  const targetColumn = getColumn(table, options.target);
  if (targetColumn === undefined) {
    const columns = table.columns.map((c) => c.name);
    throw new FerryError(
      'FERRY_COLUMN_UNKNOWN',
      `target column '${options.target}' is not in the table; columns: ${columns.join(', ')}`,
      { details: { column: options.target, columns } },
    );
  }

  const keep: number[] = [];
  for (let i = 0; i < table.rowCount; i++) if (!isMissing(targetColumn.values[i])) keep.push(i);
  const dropped = table.rowCount - keep.length;
  if (dropped > 0) {
    progress(`dropped ${dropped} of ${table.rowCount} rows with a null target '${options.target}'`);
  }
  const data = dropped > 0 ? takeRows(table, keep) : table;
  const target = getColumn(data, options.target) as Column;
  const inputs: ModelInput[] = data.columns
    .filter((c) => c.name !== options.target)
    .map((c) => ({ name: c.name, type: c.type }));
  if (inputs.length === 0) {
    throw new FerryError(
      'FERRY_DATA_EMPTY',
      `the table has no feature columns besides the target '${options.target}'`,
    );
  }
  const n = data.rowCount;
  if (n < 2) {
    throw new FerryError(
      'FERRY_DATA_EMPTY',
      `training needs at least 2 rows with a target, got ${n}`,
    );
  }

  const task = options.task ?? inferTask(target);
  const y = new Float64Array(n);
  let classes: Label[] | undefined;
  let labels: Int32Array | null = null;
  if (task === 'classification') {
    const codes = new Map<Label, number>();
    for (const v of target.values) codes.set(v as Label, 0);
    classes = [...codes.keys()].sort(compareLabels);
    if (classes.length < 2) {
      throw new FerryError(
        'FERRY_TARGET_INVALID',
        `target '${options.target}' has a single class (${String(classes[0])}); classification needs 2 or more`,
      );
    }
    if (classes.length > MAX_CLASSES) {
      throw new FerryError(
        'FERRY_TARGET_INVALID',
        `target '${options.target}' has ${classes.length} classes (at most ${MAX_CLASSES}); train it as a regression if it is a quantity`,
      );
    }
    classes.forEach((c, i) => codes.set(c, i));
    labels = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const code = codes.get(target.values[i] as Label) as number;
      labels[i] = code;
      y[i] = code;
    }
  } else {
    for (let i = 0; i < n; i++) {
      const v = target.type === 'string' ? NaN : toNumber(target.values[i]);
      if (Number.isNaN(v)) {
        throw new FerryError(
          'FERRY_TARGET_INVALID',
          `target '${options.target}' has a non-numeric value (${JSON.stringify(target.values[i])}); regression needs numbers, or set the task to classification`,
        );
      }
      y[i] = v;
    }
  }
  const nClasses = classes?.length ?? 0;
  const objective: Objective =
    task === 'regression' ? 'regression' : nClasses === 2 ? 'binary' : 'multiclass';
  const signature: ModelSignature = {
    task,
    target: options.target,
    inputs,
    ...(classes === undefined ? {} : { classes }),
  };
  progress(
    task === 'classification'
      ? `task: classification of '${options.target}' into ${nClasses} classes (${classes?.map(String).join(', ')})`
      : `task: regression of '${options.target}'`,
  );

  const crossValidate = n <= CROSS_VALIDATION_MAX_ROWS;
  const folds = crossValidate
    ? kFolds(n, labels, nClasses, Math.round(1 / fraction), seed)
    : [holdoutSplit(n, labels, nClasses, fraction, seed)];
  const validation: ValidationInfo = {
    method: crossValidate ? 'cross_validation' : 'holdout',
    folds: folds.length,
    rows: folds.reduce((s, f) => s + f.valid.length, 0),
  };
  progress(
    crossValidate
      ? `validation: ${folds.length}-fold cross-validation over ${n} rows (seed ${seed})`
      : `validation: ${(folds[0] as Fold).train.length} training rows, ${validation.rows} held out (seed ${seed})`,
  );

  const selection: (readonly [string, boolean])[] =
    task === 'regression'
      ? [
          ['rmse', false],
          ['mae', false],
        ]
      : objective === 'binary'
        ? [
            ['roc_auc', true],
            ['log_loss', false],
          ]
        : [
            ['log_loss', false],
            ['accuracy', true],
          ];

  const context: FitContext = { signature, seed, gbdt: { ...GBDT_DEFAULTS, ...options.gbdt } };
  const problem: Problem = { task, objective, nClasses, y };
  const candidates: TrainCandidate[] = [];
  const evaluations = new Map<string, Evaluation>();
  const failures: string[] = [];
  for (const kind of ['linear', 'gbdt'] as const) {
    const name = candidateName(kind, task);
    await yieldToEventLoop();
    const started = performance.now();
    try {
      const evaluation = validateCandidate(kind, context, data, problem, folds);
      const seconds = (performance.now() - started) / 1000;
      candidates.push({ name, params: evaluation.params, metrics: evaluation.metrics, seconds });
      evaluations.set(name, evaluation);
      const shown = Object.entries(evaluation.metrics)
        .map(([key, v]) => `${key}=${v.toFixed(4)}`)
        .join(' ');
      progress(`${name}: ${shown} (${seconds.toFixed(2)} s)`);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      failures.push(`${name}: ${reason}`);
      progress(`${name} failed: ${reason}`);
    }
  }
  if (candidates.length === 0) {
    throw new FerryError('FERRY_TRAINING_FAILED', `every candidate failed: ${failures.join('; ')}`);
  }
  const best = [...candidates].sort((a, b) =>
    compareMetrics(a.metrics, b.metrics, selection),
  )[0] as TrainCandidate;
  progress(`selected ${best.name} by ${selection[0]?.[0]}`);

  const evaluation = evaluations.get(best.name) as Evaluation;
  let doc = evaluation.docs[0] as NativeModelDocument;
  if (crossValidate || options.refit === true) {
    progress(`refitting ${best.name} on all ${n} rows`);
    await yieldToEventLoop();
    const kind: CandidateKind = best.name === 'gbdt' ? 'gbdt' : 'linear';
    doc = fitCandidate(kind, context, data, problem, null, evaluation.rounds).doc;
  }
  return {
    signature,
    candidates,
    best: best.name,
    metrics: best.metrics,
    validation,
    artifact: encodeNativeModel(doc),
  };
}
