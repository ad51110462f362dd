/**
 * Model training and selection: from a Table and a target column to the best of the candidate
 * algorithms (`candidates.ts`), tuned by a search (`search.ts`), returned as a native model
 * artifact. Deterministic for a seed (a time budget aside, which decides how many run).
 *
 * Order of work: the target is encoded and the task inferred; an untouched test split is carved
 * out first when `testFraction` > 0; candidates are validated on the remaining rows, by k-fold
 * cross-validation (stratified by class) up to `CROSS_VALIDATION_MAX_ROWS` rows or with `cv`,
 * else on one seeded hold-out split; the winner becomes the artifact (`refit`: under
 * cross-validation a boosted winner is the average of its fold models, other winners are refitted
 * on all selection rows; with a hold-out, the model of the hold-out's training part, the very
 * model validated) and is scored once on the test split. Test metrics are reported apart from
 * validation metrics and never take part in a choice.
 *
 * Why cross-validation on small data: a single 20% hold-out is too noisy at that size to tell
 * models apart or to pick the boosting rounds, which are chosen on the mean validation curve of
 * the folds.
 *
 * Selection metric: ROC AUC for binary classification, log loss for multiclass (a proper score
 * that still separates models when accuracy ties), RMSE for regression, or the `metric` named.
 * Ties fall back to log loss (binary), accuracy (multiclass) or MAE (regression).
 */
import { availableParallelism } from 'node:os';
import type { Label, ModelInput, ModelSignature, Task } from '../core/model.js';
import { getColumn, takeRows, type Column, type Scalar, type Table } from '../core/table.js';
import { FerryError } from '../errors/index.js';
import type { GbdtOptions } from './algorithms/gbdt.js';
import type { Objective } from './algorithms/objective.js';
import { DEFAULT_MODELS, resolveCandidates, type ParamValue, type Params } from './candidates.js';
import {
  candidateDefinition,
  fitDocument,
  fitFoldBag,
  type FitObserver,
  type Problem,
  type SelectionData,
} from './evaluate.js';
import {
  classificationMetrics,
  confusionMatrix,
  predictedClasses,
  regressionMetrics,
} from './metrics.js';
import { encodeNativeModel, NativePredictor, type NativeModelDocument } from './native-model.js';
import { toNumber } from './preprocess.js';
import {
  DEFAULT_TRIALS,
  planCandidates,
  runSearch,
  SEARCH_STRATEGIES,
  selectionKeys,
  type CandidateConfig,
  type LeaderboardEntry,
  type SearchProgress,
  type SearchStrategy,
} from './search.js';
import { holdoutSplit, kFolds, type Fold } from './split.js';
import { inProcessExecutor, workerExecutor, type Executor } from './worker-pool.js';

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

/**
 * Boosting defaults, as the default search trains them on small data; from 50,000 training rows
 * the trees are larger (`gbdtTreeSize` in candidates.ts).
 */
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

const GBDT_PARAM_NAMES: Readonly<Record<keyof GbdtSettings, string>> = {
  learningRate: 'learning_rate',
  maxDepth: 'max_depth',
  maxLeaves: 'max_leaves',
  minChildWeight: 'min_child_weight',
  lambda: 'lambda',
  subsample: 'subsample',
  maxRounds: 'max_rounds',
  earlyStoppingRounds: 'early_stopping_rounds',
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
   * Folds of cross-validation, whatever the size of the data (2 or more); 1 for one hold-out
   * split. Default: round(1 / validationFraction) folds up to `CROSS_VALIDATION_MAX_ROWS` rows,
   * a hold-out above.
   */
  readonly cv?: number;
  /**
   * Share of rows carved out first as an untouched test split, scored once by the winner
   * (default 0: no test split; a recipe's or the caller's own test part plays that role).
   */
  readonly testFraction?: number;
  /**
   * How the winner becomes the artifact (default 'folds').
   * - 'folds': the models fitted on the validation folds' training rows. Under cross-validation a
   *   boosted winner is the average of its k fold models, each early-stopped on the rows its fold
   *   holds out (`fitFoldBag`), as one boosted model; other algorithms are refitted on all rows.
   *   With a hold-out split, the model trained on the training part, the very model validated (on
   *   data that large the extra rows add little).
   * - 'full': one refit on all selection rows (train + validation) with the settings and boosting
   *   rounds validation chose.
   */
  readonly refit?: RefitMode;
  /** Algorithms to try, by id or alias (`linear`, `logreg`, `gbdt`); default linear and gbdt. */
  readonly models?: readonly string[];
  /** How to choose configurations; default 'defaults' (each algorithm once, at its defaults). */
  readonly search?: SearchStrategy;
  /** Configurations per algorithm for random search and successive halving (default 10). */
  readonly trials?: number;
  /** Selection metric (`rmse`, `roc_auc`, ...); default by task, see the header. */
  readonly metric?: string;
  /** Stop launching candidates past this many milliseconds (each algorithm still trains once). */
  readonly timeBudgetMs?: number;
  /**
   * Worker threads for candidates; 0 evaluates in this thread. Default: 0 for the 'defaults'
   * search, else the number of cores (at most 4).
   */
  readonly workers?: number;
  /** Milliseconds, for the time budget and fit times; default `performance.now`. */
  readonly clock?: () => number;
  /** Overrides of `GBDT_DEFAULTS` applied to every boosting candidate. */
  readonly gbdt?: GbdtSettings;
  readonly onProgress?: (message: string) => void;
  /** Called after every candidate: n of N, best so far, time left. */
  readonly onSearchProgress?: (progress: SearchProgress) => void;
}

/** How the winner becomes the artifact; see `TrainOptions.refit`. */
export type RefitMode = 'full' | 'folds';

export const REFIT_MODES: readonly RefitMode[] = ['full', 'folds'];

/** See `TrainOptions.refit` and docs/models.md for the measurement that chose it. */
export const DEFAULT_REFIT: RefitMode = 'folds';

/** What the artifact is, as built. */
export interface RefitInfo {
  /** What was done: 'folds' for a fold bag or the hold-out's own model, 'full' for a refit. */
  readonly mode: RefitMode;
  /** Models averaged into the artifact: the fold count for a fold bag, else 1. */
  readonly models: number;
  /** Boosting rounds of each model averaged, or of the one model; empty when not boosted. */
  readonly rounds: readonly number[];
}

/** A leaderboard row: one evaluated configuration. */
export type TrainCandidate = LeaderboardEntry;

export interface ValidationInfo {
  readonly method: 'holdout' | 'cross_validation';
  /** 1 for a hold-out split. */
  readonly folds: number;
  /** Rows the metrics are measured on. */
  readonly rows: number;
}

export interface SearchInfo {
  readonly strategy: SearchStrategy;
  readonly metric: string;
  readonly models: readonly string[];
  /** Configurations planned, and evaluations launched (halving re-evaluates survivors). */
  readonly planned: number;
  readonly launched: number;
  readonly budgetExhausted: boolean;
  readonly timeBudgetMs: number | null;
  /** Where candidates ran: worker threads, or this thread. */
  readonly executor: 'workers' | 'in-process';
  readonly workers: number;
}

export interface TestScore {
  /** Rows of the test split. */
  readonly rows: number;
  readonly metrics: Record<string, number>;
  /** Row numbers of the test split in the table trained on (after null targets are dropped). */
  readonly indices: readonly number[];
  /** Classifiers: `counts[actual][predicted]` over the test rows, classes in signature order. */
  readonly confusionMatrix?: { readonly classes: Label[]; readonly counts: number[][] };
}

export interface TrainResult {
  readonly signature: ModelSignature;
  /** The leaderboard: every candidate evaluated, in plan order. */
  readonly candidates: TrainCandidate[];
  /** Name of the selected candidate. */
  readonly best: string;
  /** Validation metrics of the selected candidate. */
  readonly metrics: Record<string, number>;
  readonly validation: ValidationInfo;
  readonly search: SearchInfo;
  /** The winner scored once on the test split; null without one. */
  readonly test: TestScore | null;
  readonly refit: RefitInfo;
  /** The native model (JSON bytes, see `native-model.ts`). */
  readonly artifact: Uint8Array;
}

/** Milliseconds between progress lines of a long fit (boosting rounds). */
const HEARTBEAT_MS = 5000;

/** More labels than this are refused: such a target is almost surely a quantity. */
const MAX_CLASSES = 200;

/** A target cell that is no value: null, NaN, or an empty string (missing in features too). */
function isMissing(v: Scalar | undefined): boolean {
  return v === null || v === undefined || v === '' || (typeof v === 'number' && Number.isNaN(v));
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

/**
 * Trains the candidate algorithms (logistic/ridge and gradient-boosted trees by default), tunes
 * them with the chosen search, selects the best by validation, and returns it as a native
 * artifact with its signature, validation metrics, leaderboard and (with a test split) test score.
 * @example
 * const result = await trainModel(table, { target: 'is_fraud', seed: 7, search: 'random', timeBudgetMs: 60_000 });
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
  checkSearchOptions(options);
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
      const raw = target.values[i];
      const v = target.type === 'string' ? NaN : toNumber(raw);
      if (Number.isNaN(v)) {
        // JSON.stringify would print Infinity as null.
        const shown = typeof raw === 'number' ? String(raw) : JSON.stringify(raw);
        throw new FerryError(
          'FERRY_TARGET_INVALID',
          `target '${options.target}' has a ${typeof raw === 'number' ? 'non-finite' : 'non-numeric'} value (${shown}) in row ${(keep[i] ?? i) + 1} (counting from 1); regression needs finite numbers: drop or fix those rows, or set the task to classification`,
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

  const keys = selectionKeys(task, objective === 'multiclass', options.metric);
  const definitions = resolveCandidates(options.models ?? DEFAULT_MODELS);

  // The test split comes out first: nothing below ever sees its rows.
  const testFraction = options.testFraction ?? 0;
  let selectRows: Uint32Array | null = null;
  let testRows: Uint32Array | null = null;
  if (testFraction > 0) {
    const carved = holdoutSplit(n, labels, nClasses, testFraction, seed + 104729);
    selectRows = carved.train;
    testRows = carved.valid;
    progress(`test split: ${testRows.length} rows set aside, scored once by the winner`);
  }
  const selection = selectRows === null ? data : takeRows(data, selectRows);
  const selectionY = selectRows === null ? y : Float64Array.from(selectRows, (i) => y[i] as number);
  const selectionLabels =
    labels === null || selectRows === null
      ? labels
      : Int32Array.from(selectRows, (i) => labels[i] as number);
  const m = selection.rowCount;
  if (m < 2) {
    throw new FerryError(
      'FERRY_DATA_EMPTY',
      `the test split (testFraction ${testFraction}) leaves ${m} row(s) of ${n} to train on; training needs at least 2: lower testFraction or give more rows`,
    );
  }

  const crossValidate = options.cv === undefined ? m <= CROSS_VALIDATION_MAX_ROWS : options.cv >= 2;
  const k = options.cv !== undefined && options.cv >= 2 ? options.cv : Math.round(1 / fraction);
  const folds = crossValidate
    ? kFolds(m, selectionLabels, nClasses, k, seed)
    : [holdoutSplit(m, selectionLabels, nClasses, fraction, seed)];
  const validation: ValidationInfo = {
    method: crossValidate ? 'cross_validation' : 'holdout',
    folds: folds.length,
    rows: folds.reduce((s, f) => s + f.valid.length, 0),
  };
  progress(
    crossValidate
      ? `validation: ${folds.length}-fold cross-validation over ${m} rows (seed ${seed})`
      : `validation: ${(folds[0] as Fold).train.length} training rows, ${validation.rows} held out (seed ${seed})`,
  );

  const problem: Problem = { task, objective, nClasses, y: selectionY };
  const selectionData: SelectionData = { table: selection, signature, problem, folds, seed };
  const strategy = options.search ?? 'defaults';
  const trials = options.trials ?? DEFAULT_TRIALS;
  const meanTrainRows = folds.reduce((s, f) => s + f.train.length, 0) / folds.length;
  let plan = planCandidates(definitions, task, strategy, trials, seed, meanTrainRows);
  const overrides = gbdtOverrides(options.gbdt);
  if (Object.keys(overrides).length > 0) {
    plan = plan.map((c): CandidateConfig =>
      c.algorithm === 'gbdt' ? { ...c, params: { ...c.params, ...overrides } } : c,
    );
  }
  const workers =
    options.workers ?? (strategy === 'defaults' ? 0 : Math.min(4, availableParallelism()));
  // Long fits in this thread say where they are every HEARTBEAT_MS (boosting rounds).
  const clock = options.clock ?? ((): number => performance.now());
  const started = clock();
  let lastShown = started;
  const names = new Map(plan.map((c) => [c.params, c.name] as const));
  const heartbeat =
    (name: string): FitObserver =>
    (p) => {
      const now = clock();
      if (now - lastShown < HEARTBEAT_MS) return;
      lastShown = now;
      const fit = p.fits > 1 ? `fit ${p.fit}/${p.fits}, ` : '';
      const loss = p.loss === null ? '' : `, validation loss ${p.loss.toFixed(4)}`;
      progress(`  ${name}: ${fit}round ${p.round}${loss} (${formatSeconds(now - started)})`);
    };
  const executor: Executor =
    workers > 0
      ? workerExecutor(selectionData, workers)
      : inProcessExecutor(selectionData, (task, p) =>
          heartbeat(names.get(task.params) ?? task.algorithm)(p),
        );
  const metric = keys[0]?.[0] ?? '';
  progress(
    `search: ${strategy} over ${definitions.map((d) => d.id).join(', ')}, ${plan.length} configurations` +
      `${options.timeBudgetMs === undefined ? '' : `, budget ${formatSeconds(options.timeBudgetMs)}`}` +
      `, selecting on ${metric}${workers > 0 ? ` (${workers} workers)` : ''}`,
  );
  let outcome;
  let ranOn: 'workers' | 'in-process';
  try {
    outcome = await runSearch(plan, executor, {
      strategy,
      keys,
      trainRows: meanTrainRows,
      ...(options.timeBudgetMs === undefined ? {} : { timeBudgetMs: options.timeBudgetMs }),
      ...(options.clock === undefined ? {} : { clock: options.clock }),
      onProgress: (p) => {
        const e = p.entry;
        const shown =
          e.error === undefined
            ? Object.entries(e.metrics)
                .map(([key, v]) => `${key}=${v.toFixed(4)}`)
                .join(' ')
            : `failed: ${e.error}`;
        const rows = e.rowFraction < 1 ? `, ${Math.round(e.rowFraction * 100)}% of rows` : '';
        const bestShown =
          p.best === null
            ? ''
            : `; best ${p.best.name} ${metric}=${(p.best.metrics[metric] ?? NaN).toFixed(4)}`;
        const left = p.timeLeftMs === null ? '' : `; ${formatSeconds(p.timeLeftMs)} left`;
        progress(
          `candidate ${p.done}/${p.total} ${e.name}: ${shown} (${e.seconds.toFixed(2)} s${rows})${bestShown}${left}`,
        );
        lastShown = clock();
        options.onSearchProgress?.(p);
      },
    });
    ranOn = executor.kind();
  } finally {
    await executor.close();
  }
  if (outcome.budgetExhausted) {
    progress(
      `time budget reached: ${outcome.launched} of ${outcome.planned} configurations launched`,
    );
  }
  const best = outcome.best;
  progress(`selected ${best.name} by ${metric}`);

  const rounds = typeof best.params.rounds === 'number' ? best.params.rounds : null;
  const fitParams: Record<string, ParamValue> = { ...best.params };
  delete fitParams.rounds;
  const refitMode = options.refit ?? DEFAULT_REFIT;
  const bag = crossValidate && refitMode === 'folds' && candidateDefinition(best.algorithm).boosted;
  let final: NativeModelDocument;
  let refit: RefitInfo;
  if (bag) {
    // Fold bagging: each fold's model early-stops on its own held-out rows; no round count
    // chosen on smaller models is carried over to a model of all rows.
    progress(`averaging the ${folds.length} fold models of ${best.name}`);
    const bagged = fitFoldBag(
      selectionData,
      best.algorithm,
      fitParams as Params,
      heartbeat(`${best.name} (fold bag)`),
    );
    final = bagged.doc;
    refit = { mode: 'folds', models: folds.length, rounds: bagged.rounds };
    progress(`fold models of ${best.name}: rounds ${bagged.rounds.join(', ')}`);
  } else {
    // Refit the winner: the rounds validation chose are fixed, nothing is early-stopped again.
    const all = crossValidate || refitMode === 'full';
    const fitRows = all ? null : (folds[0] as Fold).train;
    if (all) progress(`refitting ${best.name} on all ${m} selection rows`);
    // The hold-out's own model is the one validation fitted: reuse it rather than fit it again.
    final =
      !all && outcome.bestModel !== null
        ? outcome.bestModel
        : fitDocument(
            fitRows === null ? selection : takeRows(selection, fitRows),
            signature,
            fitRows === null
              ? problem
              : { ...problem, y: Float64Array.from(fitRows, (i) => selectionY[i] as number) },
            seed,
            best.algorithm,
            fitParams as Params,
            null,
            rounds,
            {
              onRound: (round) =>
                heartbeat(`${best.name} (refit)`)({ fit: 1, fits: 1, round, loss: null }),
            },
          ).doc;
    refit = { mode: all ? 'full' : 'folds', models: 1, rounds: rounds === null ? [] : [rounds] };
  }

  let test: TestScore | null = null;
  if (testRows !== null && testRows.length > 0) {
    const prediction = new NativePredictor(final).predict(takeRows(data, testRows));
    const actual = Float64Array.from(testRows, (i) => y[i] as number);
    const metrics =
      task === 'regression'
        ? regressionMetrics(actual, prediction.predict as number[])
        : classificationMetrics(actual, prediction.proba as Float64Array, nClasses);
    const confusion =
      task === 'regression'
        ? undefined
        : {
            classes: [...(signature.classes ?? [])],
            counts: confusionMatrix(
              actual,
              predictedClasses(prediction.proba as Float64Array, nClasses),
              nClasses,
            ),
          };
    test = {
      rows: testRows.length,
      metrics,
      indices: [...testRows],
      ...(confusion ? { confusionMatrix: confusion } : {}),
    };
    progress(
      `test (once, ${testRows.length} rows): ${Object.entries(metrics)
        .map(([key, v]) => `${key}=${v.toFixed(4)}`)
        .join(' ')}`,
    );
  }
  return {
    signature,
    candidates: outcome.leaderboard,
    best: best.name,
    metrics: best.metrics,
    validation,
    search: {
      strategy,
      metric,
      models: definitions.map((d) => d.id),
      planned: outcome.planned,
      launched: outcome.launched,
      budgetExhausted: outcome.budgetExhausted,
      timeBudgetMs: options.timeBudgetMs ?? null,
      executor: ranOn,
      workers,
    },
    test,
    refit,
    artifact: encodeNativeModel(final),
  };
}

function checkSearchOptions(options: TrainOptions): void {
  const bad = (message: string): never => {
    throw new FerryError('FERRY_ARGUMENT_INVALID', message);
  };
  const t = options.testFraction;
  if (t !== undefined && !(t >= 0 && t < 1)) bad(`testFraction must be in [0, 1), got ${t}`);
  const cv = options.cv;
  if (cv !== undefined && !(Number.isInteger(cv) && cv >= 1)) {
    bad(`cv must be a whole number of folds (2 or more), or 1 for a hold-out split; got ${cv}`);
  }
  const trials = options.trials;
  if (trials !== undefined && !(Number.isInteger(trials) && trials >= 1)) {
    bad(`trials must be a positive whole number, got ${trials}`);
  }
  const budget = options.timeBudgetMs;
  if (budget !== undefined && !(budget > 0))
    bad(`the time budget must be positive, got ${budget} ms`);
  if (options.refit !== undefined && !REFIT_MODES.includes(options.refit)) {
    bad(`refit must be one of ${REFIT_MODES.join(', ')}, got '${String(options.refit)}'`);
  }
  const workers = options.workers;
  if (workers !== undefined && !(Number.isInteger(workers) && workers >= 0)) {
    bad(`workers must be a whole number (0 runs candidates in this thread), got ${workers}`);
  }
  if (options.search !== undefined && !SEARCH_STRATEGIES.includes(options.search)) {
    bad(`search must be one of ${SEARCH_STRATEGIES.join(', ')}, got '${options.search}'`);
  }
}

function gbdtOverrides(settings: GbdtSettings | undefined): Record<string, ParamValue> {
  const out: Record<string, ParamValue> = {};
  for (const [key, value] of Object.entries(settings ?? {})) {
    const name = GBDT_PARAM_NAMES[key as keyof GbdtSettings];
    if (name !== undefined && typeof value === 'number') out[name] = value;
  }
  return out;
}

function formatSeconds(ms: number): string {
  return `${Math.round(ms / 1000)} s`;
}
