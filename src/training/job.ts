/**
 * A training job: one run that trains the candidates on a table, registers the best as the next
 * version of a model with its metrics, signature, lineage and training-data profile, and records
 * everything in the run. The CLI, the quickstart and pipelines all train through here.
 *
 * A job on a preparation recipe (`runRecipeTrainingJob`) runs the recipe first and trains on its
 * prepared rows; the registered artifact embeds the fitted recipe, so the model takes the raw
 * columns and serving prepares them exactly as training did (`native-model.ts`). With a split,
 * the train and validation parts are trained on together: `trainModel` picks the candidate and
 * its boosting rounds by its own cross-validation (or hold-out) over the rows it is given, and
 * takes no separate validation set. The test part is kept out of all of it and scored once, by
 * the selected model, as `test_<metric>`.
 */
import type { ProjectSpec } from '../config/schema.js';
import type { JsonObject } from '../core/json.js';
import type { Label, ModelInput, ModelSignature, Task } from '../core/model.js';
import type { TableProfile } from '../core/profile.js';
import { getColumn, takeRows, type Table } from '../core/table.js';
import type { PrepReport } from '../data/prep/index.js';
import { profileTable } from '../data/profile.js';
import type { ResolveReference } from '../data/validate/index.js';
import { FerryError } from '../errors/index.js';
import type { OfflineStore } from '../feature-store/offline/offline-store.js';
import type { MetadataStore, Run } from '../metadata/metadata-store.js';
import type { ModelRegistry } from '../registry/registry.js';
import type { ModelVersion } from '../metadata/metadata-store.js';
import { codeVersion, FERRY_VERSION } from '../version.js';
import {
  classificationMetrics,
  confusionMatrix,
  predictedClasses,
  regressionMetrics,
} from './metrics.js';
import {
  decodeNativeModel,
  embedRecipe,
  encodeNativeModel,
  NativePredictor,
} from './native-model.js';
import { toNumber } from './preprocess.js';
import { prepareRecipeData, profileRawInputs, sha256File } from './recipe-data.js';
import { recipeInputs, trainingOnlySteps } from './recipe-model.js';
import { DEFAULT_REFIT, trainModel, type TrainOptions, type TrainResult } from './train.js';

/** How candidates are searched and validated; see `TrainOptions`. */
export type SearchSettings = Pick<
  TrainOptions,
  | 'models'
  | 'metric'
  | 'search'
  | 'trials'
  | 'timeBudgetMs'
  | 'cv'
  | 'testFraction'
  | 'workers'
  | 'refit'
  | 'onSearchProgress'
>;

/** The search settings as recorded in a run (what reproduces it), JSON only. */
function searchParams(s: SearchSettings | undefined): JsonObject {
  return {
    models: s?.models ? [...s.models] : null,
    metric: s?.metric ?? null,
    search: s?.search ?? 'defaults',
    trials: s?.trials ?? null,
    timeBudgetMs: s?.timeBudgetMs ?? null,
    cv: s?.cv ?? null,
    testFraction: s?.testFraction ?? 0,
    // Resolved, not null when unset: a later default must not change what reproduces this run.
    refit: s?.refit ?? DEFAULT_REFIT,
  };
}

export interface TrainingJobOptions {
  readonly table: Table;
  readonly target: string;
  /** The model name to register under. */
  readonly model: string;
  readonly task?: Task;
  readonly seed?: number;
  /** Columns that are not features (ids, timestamps). */
  readonly drop?: readonly string[];
  /** Where the data came from: file and hash, feature vector, dataset. */
  readonly lineage?: JsonObject;
  /** Candidates, search strategy, budget, validation and test split. */
  readonly search?: SearchSettings;
  readonly onProgress?: (message: string) => void;
}

export interface TrainingJobResult {
  readonly run: Run;
  readonly result: TrainResult;
  readonly version: ModelVersion;
  /** True when the new version became the model's champion. */
  readonly promoted: boolean;
}

/**
 * @example
 * const { version } = await runTrainingJob(ws.metadata, ws.registry, { table, target: 'is_fraud', model: 'fraud' });
 */
export async function runTrainingJob(
  metadata: MetadataStore,
  registry: ModelRegistry,
  options: TrainingJobOptions,
): Promise<TrainingJobResult> {
  const drop = new Set(options.drop ?? []);
  const table = withoutColumns(options.table, drop);
  const params: JsonObject = {
    target: options.target,
    task: options.task ?? null,
    seed: options.seed ?? 42,
    drop: [...drop],
    rows: table.rowCount,
    ...searchParams(options.search),
    dataSha256: typeof options.lineage?.dataSha256 === 'string' ? options.lineage.dataSha256 : null,
    ferryVersion: FERRY_VERSION,
    codeVersion: codeVersion().commit,
  };
  const run = await metadata.createRun({ kind: 'training', name: options.model, params });
  try {
    const result = await trainModel(table, {
      target: options.target,
      ...(options.task ? { task: options.task } : {}),
      seed: options.seed ?? 42,
      ...options.search,
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    });
    const testMetrics = Object.fromEntries(
      Object.entries(result.test?.metrics ?? {})
        .filter(([, v]) => Number.isFinite(v))
        .map(([k, v]) => [`test_${k}`, v]),
    );
    return await registerAndFinish(metadata, registry, run, result, {
      model: options.model,
      artifact: result.artifact,
      signature: result.signature,
      metrics: { ...result.metrics, ...testMetrics },
      lineage: options.lineage ?? {},
      profile: profileTable(table),
      outputs: {
        test:
          result.test === null ? null : { rows: result.test.rows, metrics: result.test.metrics },
        // Where recipe runs keep theirs, so `ferry runs show` reads both alike.
        ...(result.test?.confusionMatrix ? { confusion_matrix: result.test.confusionMatrix } : {}),
      },
    });
  } catch (error) {
    await failRun(metadata, run, error);
    throw error;
  }
}

/** The table without the named columns; FERRY_COLUMN_UNKNOWN names one it does not have. */
function withoutColumns(table: Table, drop: ReadonlySet<string>): Table {
  for (const name of drop) {
    if (!getColumn(table, name)) {
      throw new FerryError(
        'FERRY_COLUMN_UNKNOWN',
        `cannot drop column '${name}': it is not in the table; columns: ${table.columns.map((c) => c.name).join(', ')}`,
      );
    }
  }
  return { columns: table.columns.filter((c) => !drop.has(c.name)), rowCount: table.rowCount };
}

interface Registration {
  readonly model: string;
  readonly artifact: Uint8Array;
  readonly signature: ModelSignature;
  readonly metrics: Record<string, number>;
  readonly lineage: JsonObject;
  readonly profile: TableProfile;
  /** Run outputs beyond the model, version and leaderboard. */
  readonly outputs: JsonObject;
}

async function registerAndFinish(
  metadata: MetadataStore,
  registry: ModelRegistry,
  run: Run,
  result: TrainResult,
  r: Registration,
): Promise<TrainingJobResult> {
  const best = result.candidates.find((c) => c.name === result.best);
  const { version, promoted } = await registry.register({
    model: r.model,
    runtime: 'native',
    artifact: r.artifact,
    signature: r.signature,
    metrics: r.metrics,
    params: { algorithm: result.best, ...(best?.params ?? {}) },
    lineage: { run: run.id, ...r.lineage },
    profile: r.profile,
  });
  const finished = await metadata.updateRun(run.id, {
    status: 'succeeded',
    endedAt: Date.now(),
    metrics: r.metrics,
    outputs: {
      model: r.model,
      version: version.version,
      best: result.best,
      validation: { ...result.validation },
      search: { ...result.search, models: [...result.search.models] },
      refit: { ...result.refit, rounds: [...result.refit.rounds] },
      leaderboard: result.candidates.map((c) => ({
        name: c.name,
        algorithm: c.algorithm,
        params: c.params,
        metrics: finiteMetrics(c.metrics),
        seconds: c.seconds,
        rung: c.rung,
        rowFraction: c.rowFraction,
        ...(c.error === undefined ? {} : { error: c.error }),
      })),
      ...r.outputs,
    },
  });
  return { run: finished, result, version, promoted };
}

/** JSON has no NaN: a metric undefined for the data (AUC of one class) is recorded as null. */
function finiteMetrics(metrics: Record<string, number>): JsonObject {
  return Object.fromEntries(
    Object.entries(metrics).map(([k, v]) => [k, Number.isFinite(v) ? v : null]),
  );
}

async function failRun(metadata: MetadataStore, run: Run, error: unknown): Promise<void> {
  await metadata.updateRun(run.id, {
    status: 'failed',
    endedAt: Date.now(),
    outputs: { error: error instanceof Error ? error.message : String(error) },
  });
}

export interface RecipeTrainingJobOptions {
  readonly spec: ProjectSpec;
  readonly projectDir: string;
  /** A recipe under `recipes:` in ferry.yaml. */
  readonly recipe: string;
  /** A file that replaces the recipe source's file. */
  readonly data?: string;
  /** A column of the prepared rows. */
  readonly target: string;
  readonly model: string;
  readonly task?: Task;
  readonly seed?: number;
  /** Prepared columns that are not features (ids, timestamps). */
  readonly drop?: readonly string[];
  /** Where rows set aside by the recipe's `quarantine` rule set go. */
  readonly quarantine?: OfflineStore;
  readonly resolveReference?: ResolveReference;
  /** Candidates, search strategy and budget (the recipe's own split is the test part). */
  readonly search?: Omit<SearchSettings, 'testFraction'>;
  readonly onProgress?: (message: string) => void;
}

/** The model's score on the recipe's test part. */
export interface TestScore {
  /** Rows scored. */
  readonly rows: number;
  /** Rows left out: a missing target, or a class the model never saw. */
  readonly unscored: number;
  readonly metrics: Record<string, number>;
  /** Classification only: `counts[actual][predicted]`, classes in the signature's order. */
  readonly confusionMatrix?: { readonly classes: Label[]; readonly counts: number[][] };
}

export interface RecipeTrainingJobResult extends TrainingJobResult {
  readonly prep: PrepReport;
  readonly recipe: {
    readonly name: string;
    /** SHA-256 of the fitted recipe, as in the model's lineage. */
    readonly sha256: string;
    /** The raw columns the model takes. */
    readonly inputs: readonly ModelInput[];
    /** The prepared columns its preprocessing reads. */
    readonly features: readonly ModelInput[];
    /** Row-removing steps, which ran in training only. */
    readonly trainingOnly: readonly string[];
  };
  /** Prepared rows per part (all in `train` without a split); trained on train + validation. */
  readonly rows: { readonly train: number; readonly validation: number; readonly test: number };
  /** Null without a test part (no split, or an empty one). */
  readonly test: TestScore | null;
}

/**
 * Runs a preparation recipe, trains on its prepared rows (train + validation parts), scores the
 * test part once, and registers a model that embeds the fitted recipe and takes raw columns.
 * @example
 * const { version, test } = await runRecipeTrainingJob(ws.metadata, ws.registry, {
 *   spec: ws.project.spec, projectDir: ws.project.dir, recipe: 'fraud_training',
 *   target: 'is_fraud', model: 'fraud', drop: ['card_id', 'ts'], quarantine: ws.offline,
 * });
 */
export async function runRecipeTrainingJob(
  metadata: MetadataStore,
  registry: ModelRegistry,
  options: RecipeTrainingJobOptions,
): Promise<RecipeTrainingJobResult> {
  const say = options.onProgress ?? ((): void => {});
  const drop = new Set(options.drop ?? []);
  const seed = options.seed ?? 42;
  const run = await metadata.createRun({
    kind: 'training',
    name: options.model,
    params: {
      target: options.target,
      task: options.task ?? null,
      seed,
      drop: [...drop],
      recipe: options.recipe,
      data: options.data ?? null,
      ...searchParams(options.search),
      ferryVersion: FERRY_VERSION,
      codeVersion: codeVersion().commit,
    },
  });
  try {
    const data = await prepareRecipeData(options.spec, options.projectDir, options.recipe, {
      ...(options.data === undefined ? {} : { data: options.data }),
      onProgress: say,
      ...(options.quarantine ? { quarantine: options.quarantine } : {}),
      ...(options.resolveReference ? { resolveReference: options.resolveReference } : {}),
    });
    const rows = {
      train: data.train.rowCount,
      validation: data.validation?.rowCount ?? 0,
      test: data.test?.rowCount ?? 0,
    };
    say(
      data.splits
        ? `training on ${rows.train + rows.validation} prepared rows: the train part (${rows.train}) and the validation part (${rows.validation}), ` +
            `which model selection validates on by its own folds; the test part (${rows.test}) is scored once at the end`
        : `training on all ${rows.train} prepared rows: recipe '${options.recipe}' has no split step, so there is no test score`,
    );
    const table = withoutColumns(concatTables(data.train, data.validation), drop);
    const result = await trainModel(table, {
      target: options.target,
      ...(options.task ? { task: options.task } : {}),
      seed,
      ...options.search,
      onProgress: say,
    });
    const prepared = decodeNativeModel(result.artifact);
    const doc = embedRecipe(prepared, data.fitted);
    const recipe = doc.recipe as NonNullable<typeof doc.recipe>;
    const trainingOnly = trainingOnlySteps(data.fitted);
    const features = recipe.features.map((f) => f.name);
    if (recipeInputs(data.fitted, features, options.target).readsTarget) {
      say(
        `warning: a feature is computed from the target '${options.target}', which callers do not send; it reads null when serving`,
      );
    }
    say(`model inputs (raw columns): ${doc.signature.inputs.map((i) => i.name).join(', ')}`);
    if (trainingOnly.length > 0) {
      say(
        `applied in training only (every request row gets a prediction): ${trainingOnly.join('; ')}`,
      );
    }

    let test: TestScore | null = null;
    if (data.test !== null && data.test.rowCount > 0) {
      test = scoreTest(new NativePredictor(prepared), data.test, result.signature);
      say(
        `test: ${Object.entries(test.metrics)
          .map(([k, v]) => `${k}=${v.toFixed(4)}`)
          .join(' ')} on ${test.rows} rows` +
          (test.unscored > 0 ? ` (${test.unscored} unscored)` : ''),
      );
    }
    const testMetrics = Object.fromEntries(
      Object.entries(test?.metrics ?? {}).map(([k, v]) => [`test_${k}`, v]),
    );
    const profile = await profileRawInputs(
      data.spec,
      options.projectDir,
      data.fitted,
      doc.signature.inputs,
    );
    const report = data.report;
    const finished = await registerAndFinish(metadata, registry, run, result, {
      model: options.model,
      artifact: encodeNativeModel(doc),
      signature: doc.signature,
      metrics: { ...result.metrics, ...testMetrics },
      lineage: {
        recipe: options.recipe,
        recipeSha256: recipe.sha256,
        data: report.source.path,
        dataSha256: await sha256File(report.source.path),
      },
      profile,
      outputs: {
        prep: rowAccounting(report, rows, trainingOnly),
        test:
          test === null
            ? null
            : { rows: test.rows, unscored: test.unscored, metrics: test.metrics },
        ...(test?.confusionMatrix ? { confusion_matrix: test.confusionMatrix } : {}),
      },
    });
    return {
      ...finished,
      prep: report,
      recipe: {
        name: options.recipe,
        sha256: recipe.sha256,
        inputs: doc.signature.inputs,
        features: recipe.features,
        trainingOnly,
      },
      rows,
      test,
    };
  } catch (error) {
    await failRun(metadata, run, error);
    throw error;
  }
}

/** Rows of `b` after rows of `a` (same columns: two parts of one recipe output). */
function concatTables(a: Table, b: Table | null): Table {
  if (b === null || b.rowCount === 0) return a;
  return {
    rowCount: a.rowCount + b.rowCount,
    columns: a.columns.map((c) => ({
      ...c,
      values: [
        ...c.values,
        ...(getColumn(b, c.name)?.values ?? new Array<null>(b.rowCount).fill(null)),
      ],
    })),
  };
}

/** Where every row went, for the run record: JSON of the prep report's counts. */
function rowAccounting(
  report: PrepReport,
  parts: { train: number; validation: number; test: number },
  trainingOnly: readonly string[],
): JsonObject {
  return {
    recipe: report.recipe,
    source: {
      name: report.source.name,
      path: report.source.path,
      malformed: report.source.malformed.count,
    },
    stages: report.stages.map((s) => ({
      stage: s.stage,
      index: s.index,
      description: s.description,
      rowsIn: s.rowsIn,
      rowsOut: s.rowsOut,
      removed: { ...s.removed } as JsonObject,
      ...(s.splits ? { splits: { ...s.splits } } : {}),
    })),
    validation: report.validation
      ? {
          ruleSet: report.validation.ruleSet,
          outcome: report.validation.outcome,
          quarantined: report.validation.rows.quarantined,
        }
      : null,
    fittedOn: report.fittedOn,
    fitRows: report.fitRows,
    parts,
    trainedOn: parts.train + parts.validation,
    trainingOnly: [...trainingOnly],
  };
}

/** The selected model (on prepared rows) scored on the test part, with training's metrics. */
function scoreTest(model: NativePredictor, test: Table, signature: ModelSignature): TestScore {
  const target = getColumn(test, signature.target);
  const values = target?.values ?? [];
  const keep: number[] = [];
  const actual: number[] = [];
  const classes = new Map<Label, number>((signature.classes ?? []).map((c, i) => [c, i]));
  for (let i = 0; i < test.rowCount; i++) {
    const v = values[i] ?? null;
    const y =
      signature.task === 'classification' ? (v === null ? undefined : classes.get(v)) : toNumber(v);
    if (y === undefined || Number.isNaN(y)) continue;
    keep.push(i);
    actual.push(y);
  }
  const unscored = test.rowCount - keep.length;
  if (keep.length === 0) return { rows: 0, unscored, metrics: {} };
  const prediction = model.predict(keep.length === test.rowCount ? test : takeRows(test, keep));
  if (signature.task === 'regression') {
    const metrics = regressionMetrics(actual, prediction.predict as number[]);
    return { rows: keep.length, unscored, metrics };
  }
  const proba = prediction.proba as Float64Array;
  const metrics = classificationMetrics(actual, proba, classes.size);
  const counts = confusionMatrix(actual, predictedClasses(proba, classes.size), classes.size);
  const confusion = { classes: [...classes.keys()], counts };
  return { rows: keep.length, unscored, metrics, confusionMatrix: confusion };
}
