/**
 * Model quality of Ferry's training against XGBoost 1.7 at its default parameters, on public
 * tabular data sets (`quality-data.ts`: binary, multiclass and regression, numeric and string
 * columns, a few hundred rows to a million), on the same seeded splits. Issue 5's bar: the model
 * Ferry selects scores within 1% of XGBoost's, within a 60-second budget, and never fails where
 * XGBoost trains.
 *
 * Per data set and split seed: rows with a null target are dropped, the rest shuffled by the
 * seed (`createRng`) and cut 75/25; both trainers get the same training rows and are scored on
 * the same test rows by the same functions (`classificationMetrics`, `regressionMetrics`).
 * - Ferry: `trainModel(train, { target, seed, testFraction: 0 })`, i.e. what `ferry train` does
 *   with no flags (search 'defaults', in this thread), unless `FERRY_QUALITY_OPTIONS` (JSON merged
 *   into TrainOptions) says otherwise; test predictions through `nativeRuntime`. Fit time is the
 *   wall time of `trainModel`.
 * - XGBoost: `XGBClassifier()` / `XGBRegressor()` with default parameters but `n_jobs=2` and
 *   `random_state=0`, in a child process of /usr/bin/python3; classes as 0..k-1 (those present in
 *   the training part). The encoding is done here: numbers raw with missing values as NaN,
 *   strings one-hot over the categories of the training part (null or unseen: all zeros). Up to
 *   2e7 cells (all rows × encoded width) the matrix is dense float64; above, Python builds a scipy
 *   CSR matrix from the numeric columns and category codes, numeric entries stored explicitly
 *   (zeros and NaN included) and one-hot entries as stored 1.0. XGBoost treats absent sparse
 *   entries as missing, so there a one-hot 0 is "missing" rather than 0; trees split the same way
 *   either side of it, but the default direction is learned instead of the 0 branch. Fit time is
 *   `fit()` alone, measured in Python (building the matrix is left out). The child runs with
 *   `OMP_WAIT_POLICY=PASSIVE` unless set (see `runPython`): the same model, fairer times on a
 *   shared machine.
 *
 * Metrics (primary first): binary roc_auc, accuracy, log_loss; multiclass accuracy, log_loss;
 * regression rmse, mae, r2. The gap is signed so that negative means Ferry is better: for rmse
 * and log_loss ferry / xgboost − 1, for accuracy and roc_auc (xgboost − ferry) / xgboost. A data
 * set is "within 1%" when the gap of the mean primary metric over its seeds is at most 1%.
 *
 * Rows of the report: per data set, XGBoost's fit time is the baseline and Ferry's the row
 * compared with it (µs per training row; × base = Ferry time / XGBoost time).
 *
 * Environment:
 * - `FERRY_QUALITY_DATASETS`: comma list of data sets (default all; see `quality-data.ts`).
 * - `FERRY_QUALITY_SEEDS`: split seeds, e.g. `1-5`, `3,7` or `1-3,9` (default 1-5 for data sets
 *   under 20,000 rows, seed 1 for larger ones).
 * - `FERRY_QUALITY_OPTIONS`: JSON merged into TrainOptions, e.g.
 *   `{"timeBudgetMs":60000,"search":"halving","models":["linear","gbdt","rf"]}`.
 * - `FERRY_QUALITY_OUT`: write every per-seed result and the summary as JSON to this path.
 * - `FERRY_QUALITY_PROGRESS=1`: print Ferry's training progress lines.
 * - `FERRY_BENCH_SCALE`: multiplies the rows of the large data set (flights: 1M rows at 1).
 *
 * `npm run bench -- quality`, or `FERRY_QUALITY_DATASETS=cars,wine npx tsx bench/quality.bench.ts`.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Label } from '../src/core/model.js';
import { getColumn, takeRows, type Column, type Scalar, type Table } from '../src/core/table.js';
import { nativeRuntime } from '../src/serving/runtimes/native.js';
import { classificationMetrics, regressionMetrics } from '../src/training/metrics.js';
import { createRng, shuffleInPlace } from '../src/training/random.js';
import { trainModel, type TrainOptions } from '../src/training/train.js';
import { oneShot } from './measure.js';
import { DATASETS, type QualityDataset, type QualityTask } from './quality-data.js';
import { PYTHON, readFloat64, runJsonChild, writeTyped, xgboostPresent } from './child.js';
import { runBench, type Reporter } from './report.js';

const SCALE = Number(process.env.FERRY_BENCH_SCALE ?? '1');
/** Above this many cells (rows × encoded width) XGBoost gets a sparse matrix. */
const DENSE_MAX_CELLS = 2e7;
/** Data sets under this many rows get seeds 1-5 by default, larger ones seed 1. */
const SMALL_ROWS = 20_000;
const TRAIN_SHARE = 0.75;
/** Issue 5's bar for the gap of the mean primary metric. */
const WITHIN = 0.01;
/** Issue 5's time budget, flagged in the summary. */
const BUDGET_SECONDS = 60;

/** Metrics reported per task, primary first; `lower` when smaller is better. */
const METRICS: Readonly<Record<QualityTask, readonly string[]>> = {
  binary: ['roc_auc', 'accuracy', 'log_loss'],
  multiclass: ['accuracy', 'log_loss'],
  regression: ['rmse', 'mae', 'r2'],
};
const LOWER_IS_BETTER = new Set(['rmse', 'mae', 'log_loss']);

interface SideResult {
  readonly metrics: Record<string, number>;
  readonly fitSeconds: number;
  readonly predictSeconds: number;
  /** Ferry: the selected candidate; XGBoost: the tree method and version. */
  readonly model: string;
}

interface SeedResult {
  readonly dataset: string;
  readonly task: QualityTask;
  readonly seed: number;
  readonly trainRows: number;
  readonly testRows: number;
  /** Columns of XGBoost's one-hot matrix, and whether it was dense. */
  readonly encodedWidth: number;
  readonly layout: 'dense' | 'sparse';
  readonly ferry: SideResult | { readonly error: string };
  readonly xgboost: SideResult | { readonly error: string };
}

interface DatasetSummary {
  readonly dataset: string;
  readonly task: QualityTask;
  readonly rows: number;
  readonly seeds: number[];
  readonly metric: string;
  /** Means over the seeds both sides completed. */
  readonly ferry: number;
  readonly xgboost: number;
  /** Signed relative gap of the means; negative = Ferry better. */
  readonly gap: number;
  readonly within: boolean;
  readonly winners: Record<string, number>;
  readonly ferryFitSeconds: number[];
  readonly xgboostFitSeconds: number[];
  readonly failures: string[];
  /** Every metric of the task, averaged like the primary one. */
  readonly means: {
    readonly ferry: Record<string, number>;
    readonly xgboost: Record<string, number>;
  };
}

// --- settings from the environment ---------------------------------------------------------

function selectedDatasets(): QualityDataset[] {
  const asked = process.env.FERRY_QUALITY_DATASETS;
  if (asked === undefined || asked.trim() === '') return [...DATASETS];
  const names = asked
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const unknown = names.filter((n) => !DATASETS.some((d) => d.name === n));
  if (unknown.length > 0) {
    throw new Error(
      `FERRY_QUALITY_DATASETS: unknown ${unknown.join(', ')}; available: ${DATASETS.map((d) => d.name).join(', ')}`,
    );
  }
  return DATASETS.filter((d) => names.includes(d.name));
}

/**
 * `1-5`, `3,7`, `1-3,9` as a sorted list of seeds; null when unset (the default depends on size).
 * @example parseSeeds('1-3,9') // [1, 2, 3, 9]
 */
function parseSeeds(text: string | undefined): number[] | null {
  if (text === undefined || text.trim() === '') return null;
  const seeds = new Set<number>();
  for (const part of text.split(',').map((s) => s.trim())) {
    const range = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (range === null) throw new Error(`FERRY_QUALITY_SEEDS: '${part}' is not a seed or a range`);
    const from = Number(range[1]);
    const to = Number(range[2] ?? range[1]);
    if (to < from) throw new Error(`FERRY_QUALITY_SEEDS: empty range '${part}'`);
    for (let s = from; s <= to; s++) seeds.add(s);
  }
  return [...seeds].sort((a, b) => a - b);
}

/** FERRY_QUALITY_OPTIONS as TrainOptions without the target, which the data set names. */
function trainOptionsFromEnv(): Partial<TrainOptions> {
  const text = process.env.FERRY_QUALITY_OPTIONS;
  if (text === undefined || text.trim() === '') return {};
  const parsed: unknown = JSON.parse(text);
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new Error(`FERRY_QUALITY_OPTIONS must be a JSON object, got ${text}`);
  }
  return parsed as Partial<TrainOptions>;
}

// --- data: target, split, encoding ----------------------------------------------------------

function isMissing(v: Scalar | undefined): boolean {
  return v === null || v === undefined || (typeof v === 'number' && Number.isNaN(v));
}

/** Ascending labels: numbers numerically, strings by code unit (the order does not matter here). */
function sortLabels(labels: Iterable<Label>): Label[] {
  return [...labels].sort((a, b) =>
    typeof a === 'number' && typeof b === 'number' ? a - b : String(a) < String(b) ? -1 : 1,
  );
}

/** The seeded 75/25 split of `n` rows: the same rows for both trainers. */
function splitRows(n: number, seed: number): { train: Uint32Array; test: Uint32Array } {
  const order = shuffleInPlace(
    Uint32Array.from({ length: n }, (_, i) => i),
    createRng(seed),
  );
  const cut = Math.round(n * TRAIN_SHARE);
  return { train: order.slice(0, cut), test: order.slice(cut) };
}

function withoutColumn(table: Table, name: string): Table {
  return { rowCount: table.rowCount, columns: table.columns.filter((c) => c.name !== name) };
}

function numberOf(v: Scalar | undefined): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'boolean') return v ? 1 : 0;
  return NaN;
}

/**
 * XGBoost's view of the features: numeric columns (bool as 0/1, null as NaN) and, per string
 * column, the categories of the training part in sorted order.
 */
interface Encoding {
  readonly numeric: readonly Column[];
  readonly strings: readonly Column[];
  readonly categories: readonly Map<string, number>[];
  readonly width: number;
}

function encodingOf(trainFeatures: Table): Encoding {
  const numeric = trainFeatures.columns.filter((c) => c.type !== 'string');
  const strings = trainFeatures.columns.filter((c) => c.type === 'string');
  const categories = strings.map((c) => {
    const seen = new Set<string>();
    for (const v of c.values) if (typeof v === 'string') seen.add(v);
    return new Map([...seen].sort().map((v, i) => [v, i]));
  });
  const width = numeric.length + categories.reduce((s, m) => s + m.size, 0);
  return { numeric, strings, categories, width };
}

/** Writes one part's features for Python: `x_<part>.f64` dense, or numbers + category codes. */
function writeFeatures(
  dir: string,
  part: 'train' | 'test',
  features: Table,
  encoding: Encoding,
  dense: boolean,
): void {
  const n = features.rowCount;
  const column = (name: string): Column => getColumn(features, name) as Column;
  const numeric = encoding.numeric.map((c) => column(c.name).values);
  const strings = encoding.strings.map((c) => column(c.name).values);
  const p = numeric.length;
  if (dense) {
    const x = new Float64Array(n * encoding.width);
    for (let i = 0; i < n; i++) {
      const row = i * encoding.width;
      for (let j = 0; j < p; j++) x[row + j] = numberOf((numeric[j] as Scalar[])[i]);
      let offset = p;
      strings.forEach((values, j) => {
        const categories = encoding.categories[j] as Map<string, number>;
        const code = categories.get(values[i] as string);
        if (code !== undefined) x[row + offset + code] = 1;
        offset += categories.size;
      });
    }
    writeTyped(path.join(dir, `x_${part}.f64`), x);
    return;
  }
  const num = new Float64Array(n * p);
  const codes = new Int32Array(n * strings.length);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < p; j++) num[i * p + j] = numberOf((numeric[j] as Scalar[])[i]);
    strings.forEach((values, j) => {
      const code = (encoding.categories[j] as Map<string, number>).get(values[i] as string);
      codes[i * strings.length + j] = code ?? -1;
    });
  }
  writeTyped(path.join(dir, `num_${part}.f64`), num);
  writeTyped(path.join(dir, `cat_${part}.i32`), codes);
}

// --- XGBoost --------------------------------------------------------------------------------

/** Reads the files of `writeFeatures`, fits with default parameters, writes test predictions. */
const XGBOOST_SCRIPT = `
import json, sys, time
import numpy as np
import xgboost as xgb
d = sys.argv[1]
meta = json.load(open(d + '/meta.json'))
def matrix(part, n):
    if meta['layout'] == 'dense':
        return np.fromfile('%s/x_%s.f64' % (d, part)).reshape(n, meta['width'])
    import scipy.sparse as sp
    p, cards = meta['numeric'], meta['cardinalities']
    q = len(cards)
    num = np.fromfile('%s/num_%s.f64' % (d, part)).reshape(n, p)
    codes = np.fromfile('%s/cat_%s.i32' % (d, part), dtype=np.int32).reshape(n, q).astype(np.int64)
    offsets = p + np.concatenate(([0], np.cumsum(cards)[:-1])).astype(np.int64)
    # Row-major entries: every numeric value (zeros and NaN stored), then one 1.0 per known category.
    cols = np.concatenate([np.broadcast_to(np.arange(p, dtype=np.int64), (n, p)), codes + offsets[:q]], axis=1)
    vals = np.concatenate([num, np.ones((n, q))], axis=1)
    keep = np.concatenate([np.ones((n, p), dtype=bool), codes >= 0], axis=1)
    indptr = np.concatenate(([0], np.cumsum(keep.sum(axis=1)))).astype(np.int64)
    return sp.csr_matrix((vals[keep], cols[keep], indptr), shape=(n, meta['width']))
t0 = time.perf_counter()
x_train = matrix('train', meta['trainRows'])
x_test = matrix('test', meta['testRows'])
prepare = time.perf_counter() - t0
y = np.fromfile(d + '/y_train.f64')
if meta['task'] == 'regression':
    model = xgb.XGBRegressor(n_jobs=2, random_state=0)
else:
    model = xgb.XGBClassifier(n_jobs=2, random_state=0)
    y = y.astype(np.int64)
t0 = time.perf_counter()
model.fit(x_train, y)
fit = time.perf_counter() - t0
t0 = time.perf_counter()
p = model.predict(x_test) if meta['task'] == 'regression' else model.predict_proba(x_test)
predict = time.perf_counter() - t0
np.ascontiguousarray(p, dtype=np.float64).tofile(d + '/p_test.f64')
config = json.loads(model.get_booster().save_config())
method = config['learner']['gradient_booster']['gbtree_train_param']['tree_method']
print(json.dumps({'fitSeconds': fit, 'predictSeconds': predict, 'prepareSeconds': prepare,
                  'model': 'xgboost %s %s' % (xgb.__version__, method)}))
`;

interface XgboostOutput {
  readonly fitSeconds: number;
  readonly predictSeconds: number;
  readonly prepareSeconds: number;
  readonly model: string;
}

function runPython(dir: string): Promise<XgboostOutput> {
  // GNU OpenMP's threads spin while they wait: on two shared cores, with another process on
  // one, that made small fits up to 10 times slower. Passive waiting gives the quiet-machine
  // time; an OMP_WAIT_POLICY already set is kept.
  const env = { ...process.env, OMP_WAIT_POLICY: process.env.OMP_WAIT_POLICY ?? 'PASSIVE' };
  return runJsonChild<XgboostOutput>(PYTHON, ['-c', XGBOOST_SCRIPT, dir], { env });
}

// --- one split ------------------------------------------------------------------------------

/** One side's test predictions: values (regression), or probabilities over the classes it knows. */
type Predictions =
  | { readonly values: ArrayLike<number> }
  | { readonly proba: Float64Array; readonly classes: readonly Label[] };

/** Scores one side's test predictions with the task's metrics against the split's test targets. */
type Scorer = (predictions: Predictions) => Record<string, number>;

/**
 * `classes` (classification) are every class of the data set, not only the training part's: a
 * side's probabilities are spread over them, 0 for a class it never saw.
 */
function scorerFor(target: Column, test: Uint32Array, classes: readonly Label[] | null): Scorer {
  if (classes === null) {
    const actual = Float64Array.from(test, (i) => numberOf(target.values[i]));
    return (p) => {
      if (!('values' in p)) throw new Error('a regression scored with probabilities');
      return regressionMetrics(actual, p.values);
    };
  }
  const index = new Map(classes.map((c, i) => [c, i]));
  const labels = Int32Array.from(test, (i) => index.get(target.values[i] as Label) as number);
  return (p) => {
    if (!('proba' in p)) throw new Error('a classification scored without probabilities');
    return classificationMetrics(labels, widenProba(p.proba, p.classes, classes), classes.length);
  };
}

/** Probabilities over `from` classes (row-major) spread into columns of `to`; others 0. */
function widenProba(
  proba: Float64Array,
  from: readonly Label[],
  to: readonly Label[],
): Float64Array {
  const k = to.length;
  const n = proba.length / from.length;
  const column = from.map((c) => to.indexOf(c));
  if (column.some((c) => c < 0))
    throw new Error(`unknown class among ${from.map(String).join(', ')}`);
  const out = new Float64Array(n * k);
  for (let i = 0; i < n; i++)
    for (let c = 0; c < from.length; c++)
      out[i * k + (column[c] as number)] = proba[i * from.length + c] as number;
  return out;
}

function errorText(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === 'string' ? `${code}: ${error.message}` : error.message;
  }
  return String(error);
}

async function runFerry(
  dataset: QualityDataset,
  train: Table,
  testFeatures: Table,
  seed: number,
  scorer: Scorer,
  options: Partial<TrainOptions>,
): Promise<SideResult> {
  const progress =
    process.env.FERRY_QUALITY_PROGRESS === '1'
      ? { onProgress: (m: string) => console.log(`      ferry: ${m}`) }
      : {};
  const t0 = performance.now();
  const result = await trainModel(train, {
    seed,
    testFraction: 0,
    ...progress,
    ...options,
    target: dataset.target,
  });
  const fitSeconds = (performance.now() - t0) / 1000;
  const expected = dataset.task === 'regression' ? 'regression' : 'classification';
  if (result.signature.task !== expected) {
    throw new Error(`Ferry inferred a ${result.signature.task} task, expected ${expected}`);
  }
  const t1 = performance.now();
  const model = await nativeRuntime.load(result.artifact);
  const prediction = await model.predict(testFeatures);
  const predictSeconds = (performance.now() - t1) / 1000;
  const metrics =
    dataset.task === 'regression'
      ? scorer({ values: prediction.predict as number[] })
      : scorer({
          proba: prediction.proba as Float64Array,
          classes: result.signature.classes ?? [],
        });
  return { metrics, fitSeconds, predictSeconds, model: result.best };
}

async function runXgboost(
  dataset: QualityDataset,
  train: Table,
  test: Table,
  scorer: Scorer,
  dense: boolean,
  encoding: Encoding,
): Promise<SideResult> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ferry-bench-quality-'));
  try {
    const target = getColumn(train, dataset.target) as Column;
    // Classes as 0..k-1 over those present in the training part, as XGBClassifier requires.
    const trainClasses =
      dataset.task === 'regression' ? null : sortLabels(new Set(target.values as Label[]));
    const code = new Map((trainClasses ?? []).map((c, i) => [c, i]));
    const y = Float64Array.from(target.values, (v) =>
      trainClasses === null ? numberOf(v) : (code.get(v as Label) as number),
    );
    writeTyped(path.join(dir, 'y_train.f64'), y);
    writeFeatures(dir, 'train', withoutColumn(train, dataset.target), encoding, dense);
    writeFeatures(dir, 'test', test, encoding, dense);
    const meta = {
      task: dataset.task,
      layout: dense ? 'dense' : 'sparse',
      trainRows: train.rowCount,
      testRows: test.rowCount,
      width: encoding.width,
      numeric: encoding.numeric.length,
      cardinalities: encoding.categories.map((m) => m.size),
    };
    writeFileSync(path.join(dir, 'meta.json'), JSON.stringify(meta));
    const out = await runPython(dir);
    const predictions = readFloat64(path.join(dir, 'p_test.f64'));
    const metrics = scorer(
      trainClasses === null
        ? { values: predictions }
        : { proba: predictions, classes: trainClasses },
    );
    return {
      metrics,
      fitSeconds: out.fitSeconds,
      predictSeconds: out.predictSeconds,
      model: out.model,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function runSplit(
  dataset: QualityDataset,
  data: Table,
  classes: Label[] | null,
  seed: number,
  options: Partial<TrainOptions>,
): Promise<SeedResult> {
  const { train: trainRows, test: testRows } = splitRows(data.rowCount, seed);
  const train = takeRows(data, trainRows);
  const testFeatures = withoutColumn(takeRows(data, testRows), dataset.target);
  const scorer = scorerFor(getColumn(data, dataset.target) as Column, testRows, classes);
  const encoding = encodingOf(withoutColumn(train, dataset.target));
  const dense = data.rowCount * encoding.width <= DENSE_MAX_CELLS;
  const attempt = async (run: () => Promise<SideResult>) => {
    try {
      return await run();
    } catch (error) {
      return { error: errorText(error) };
    }
  };
  const xgboost = await attempt(() =>
    runXgboost(dataset, train, testFeatures, scorer, dense, encoding),
  );
  const ferry = await attempt(() => runFerry(dataset, train, testFeatures, seed, scorer, options));
  return {
    dataset: dataset.name,
    task: dataset.task,
    seed,
    trainRows: train.rowCount,
    testRows: testFeatures.rowCount,
    encodedWidth: encoding.width,
    layout: dense ? 'dense' : 'sparse',
    ferry,
    xgboost,
  };
}

// --- reporting ------------------------------------------------------------------------------

function isSide(side: SideResult | { error: string }): side is SideResult {
  return !('error' in side);
}

const SHORT: Readonly<Record<string, string>> = {
  roc_auc: 'auc',
  accuracy: 'acc',
  log_loss: 'logloss',
  rmse: 'rmse',
  mae: 'mae',
  r2: 'r2',
};

function metricsText(task: QualityTask, metrics: Record<string, number>): string {
  return METRICS[task].map((m) => `${SHORT[m] ?? m} ${(metrics[m] ?? NaN).toFixed(4)}`).join(' ');
}

/** Signed relative gap, negative when Ferry is better. */
function gapOf(metric: string, ferry: number, xgboost: number): number {
  return LOWER_IS_BETTER.has(metric) ? ferry / xgboost - 1 : (xgboost - ferry) / xgboost;
}

function percent(gap: number): string {
  return `${gap >= 0 ? '+' : ''}${(gap * 100).toFixed(2)}%`;
}

function seedLine(r: SeedResult): string {
  const head = `${r.dataset} seed ${r.seed} (${r.trainRows.toLocaleString('en-US')} train / ${r.testRows.toLocaleString('en-US')} test, ${r.encodedWidth} ${r.layout} cols):`;
  const ferry = isSide(r.ferry)
    ? `ferry ${r.ferry.model} ${metricsText(r.task, r.ferry.metrics)}, fit ${r.ferry.fitSeconds.toFixed(1)} s`
    : `ferry FAILED: ${r.ferry.error}`;
  const xgb = isSide(r.xgboost)
    ? `${r.xgboost.model} ${metricsText(r.task, r.xgboost.metrics)}, fit ${r.xgboost.fitSeconds.toFixed(1)} s`
    : `xgboost FAILED: ${r.xgboost.error}`;
  const metric = METRICS[r.task][0] as string;
  const gap =
    isSide(r.ferry) && isSide(r.xgboost)
      ? `; gap ${percent(gapOf(metric, r.ferry.metrics[metric] ?? NaN, r.xgboost.metrics[metric] ?? NaN))}`
      : '';
  return `${head} ${ferry} | ${xgb}${gap}`;
}

function mean(values: readonly number[]): number {
  return values.length === 0 ? NaN : values.reduce((s, v) => s + v, 0) / values.length;
}

function summarise(dataset: QualityDataset, rows: number, results: SeedResult[]): DatasetSummary {
  const metric = METRICS[dataset.task][0] as string;
  const both = results.filter((r) => isSide(r.ferry) && isSide(r.xgboost));
  const ferry = mean(both.map((r) => (r.ferry as SideResult).metrics[metric] ?? NaN));
  const xgboost = mean(both.map((r) => (r.xgboost as SideResult).metrics[metric] ?? NaN));
  const gap = gapOf(metric, ferry, xgboost);
  const meansOf = (side: 'ferry' | 'xgboost'): Record<string, number> =>
    Object.fromEntries(
      METRICS[dataset.task].map((m) => [
        m,
        mean(both.map((r) => (r[side] as SideResult).metrics[m] ?? NaN)),
      ]),
    );
  const winners: Record<string, number> = {};
  for (const r of results)
    if (isSide(r.ferry)) winners[r.ferry.model] = (winners[r.ferry.model] ?? 0) + 1;
  const failures = results.flatMap((r) => [
    ...(isSide(r.ferry) ? [] : [`ferry seed ${r.seed}: ${r.ferry.error}`]),
    ...(isSide(r.xgboost) ? [] : [`xgboost seed ${r.seed}: ${r.xgboost.error}`]),
  ]);
  return {
    dataset: dataset.name,
    task: dataset.task,
    rows,
    seeds: results.map((r) => r.seed),
    metric,
    ferry,
    xgboost,
    gap,
    within: Number.isFinite(gap) && gap <= WITHIN && failures.length === 0,
    winners,
    ferryFitSeconds: results.flatMap((r) => (isSide(r.ferry) ? [r.ferry.fitSeconds] : [])),
    xgboostFitSeconds: results.flatMap((r) => (isSide(r.xgboost) ? [r.xgboost.fitSeconds] : [])),
    failures,
    means: { ferry: meansOf('ferry'), xgboost: meansOf('xgboost') },
  };
}

function winnersText(winners: Record<string, number>): string {
  return Object.entries(winners)
    .sort((a, b) => b[1] - a[1])
    .map(([name, n]) => `${name}×${n}`)
    .join(' ');
}

function summaryTable(summaries: readonly DatasetSummary[]): string[] {
  const header = [
    'dataset'.padEnd(16),
    'task'.padEnd(11),
    'rows'.padStart(9),
    'seeds'.padStart(6),
    'metric'.padStart(9),
    'ferry'.padStart(9),
    'xgboost'.padStart(9),
    'gap'.padStart(9),
    '≤1%'.padStart(5),
    'ferry s'.padStart(9),
    'xgb s'.padStart(7),
    '  ferry winners',
  ].join('');
  const lines = [header, '-'.repeat(header.length)];
  for (const s of summaries) {
    const ferryMax = Math.max(...s.ferryFitSeconds);
    lines.push(
      [
        s.dataset.padEnd(16),
        s.task.padEnd(11),
        s.rows.toLocaleString('en-US').padStart(9),
        String(s.seeds.length).padStart(6),
        (SHORT[s.metric] ?? s.metric).padStart(9),
        s.ferry.toFixed(4).padStart(9),
        s.xgboost.toFixed(4).padStart(9),
        (Number.isFinite(s.gap) ? percent(s.gap) : '-').padStart(9),
        (s.failures.length > 0 ? 'FAIL' : s.within ? 'yes' : 'no').padStart(5),
        // The mean fit, and a mark when a fit went past issue 5's budget.
        `${mean(s.ferryFitSeconds).toFixed(1)}${ferryMax > BUDGET_SECONDS ? '!' : ' '}`.padStart(9),
        mean(s.xgboostFitSeconds).toFixed(1).padStart(7),
        `  ${winnersText(s.winners)}`,
      ].join(''),
    );
  }
  return lines;
}

// --- main -----------------------------------------------------------------------------------

async function benchDataset(
  reporter: Reporter,
  dataset: QualityDataset,
  seedsAsked: number[] | null,
  options: Partial<TrainOptions>,
  results: SeedResult[],
): Promise<DatasetSummary> {
  const t0 = performance.now();
  const table = await dataset.load(SCALE);
  const target = getColumn(table, dataset.target);
  if (target === undefined) throw new Error(`${dataset.name}: no target column ${dataset.target}`);
  const keep: number[] = [];
  for (let i = 0; i < table.rowCount; i++) if (!isMissing(target.values[i])) keep.push(i);
  const data = keep.length === table.rowCount ? table : takeRows(table, keep);
  const labels = (getColumn(data, dataset.target) as Column).values as Label[];
  const classes = dataset.task === 'regression' ? null : sortLabels(new Set(labels));
  const seeds = seedsAsked ?? (data.rowCount < SMALL_ROWS ? [1, 2, 3, 4, 5] : [1]);
  const strings = data.columns.filter((c) => c.type === 'string' && c.name !== dataset.target);
  reporter.note(
    `${dataset.name}: ${dataset.about}. ${data.rowCount.toLocaleString('en-US')} rows` +
      `${keep.length === table.rowCount ? '' : ` (${table.rowCount - keep.length} with a null target dropped)`}` +
      ` × ${data.columns.length - 1} features (${strings.length} strings)` +
      `${classes === null ? '' : `, ${classes.length} classes`}; loaded in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
  const own: SeedResult[] = [];
  for (const seed of seeds) {
    const result = await runSplit(dataset, data, classes, seed, options);
    own.push(result);
    results.push(result);
    reporter.note(seedLine(result));
  }
  const summary = summarise(dataset, data.rowCount, own);
  const trainRows = own[0]?.trainRows ?? 0;
  if (summary.xgboostFitSeconds.length > 0 && summary.ferryFitSeconds.length > 0) {
    reporter.baseline(
      oneShot(`${dataset.name}: xgboost fit`, trainRows, summary.xgboostFitSeconds),
    );
    reporter.add(
      oneShot(
        `${dataset.name}: ferry fit (${winnersText(summary.winners)})`,
        trainRows,
        summary.ferryFitSeconds,
      ),
    );
  }
  reporter.note(
    `${dataset.name}: mean ${summary.metric} over seeds ${summary.seeds.join(',')}: ferry ${summary.ferry.toFixed(4)}, ` +
      `xgboost ${summary.xgboost.toFixed(4)}, gap ${percent(summary.gap)} (negative = Ferry better): ` +
      `${summary.failures.length > 0 ? `FAILED (${summary.failures.join('; ')})` : summary.within ? 'within 1%' : 'NOT within 1%'}`,
  );
  reporter.note(
    `${dataset.name}: all means: ferry ${metricsText(dataset.task, summary.means.ferry)} | ` +
      `xgboost ${metricsText(dataset.task, summary.means.xgboost)}`,
  );
  return summary;
}

await runBench(
  'quality',
  "model quality of Ferry's selected model against XGBoost with default parameters",
  async (reporter) => {
    // Without XGBoost there is nothing to compare with: say how to get it rather than fail on
    // every split.
    if (!xgboostPresent()) {
      throw new Error(
        `XGBoost not found (${PYTHON} -c 'import xgboost' failed): apt-get install -y python3-xgboost`,
      );
    }
    const datasets = selectedDatasets();
    const seeds = parseSeeds(process.env.FERRY_QUALITY_SEEDS);
    const options = trainOptionsFromEnv();
    const out = process.env.FERRY_QUALITY_OUT;
    reporter.note(
      `Ferry options: ${Object.keys(options).length === 0 ? "Ferry's defaults (ferry train with no flags)" : JSON.stringify(options)}; ` +
        `XGBoost: default parameters, n_jobs=2, random_state=0; 75/25 split per seed; scale ${SCALE}`,
    );
    const load = os.loadavg().map((l) => l.toFixed(1));
    reporter.note(`load average ${load.join(' ')} on ${os.availableParallelism()} CPUs at start`);
    const results: SeedResult[] = [];
    const summaries: DatasetSummary[] = [];
    const startedAt = new Date().toISOString();
    for (const dataset of datasets) {
      summaries.push(await benchDataset(reporter, dataset, seeds, options, results));
      // Written after every data set, so a long run that is stopped keeps what it measured.
      if (out !== undefined) {
        const report = { startedAt, scale: SCALE, options, results, summaries };
        writeFileSync(out, JSON.stringify(report, null, 2) + '\n');
      }
    }
    console.log(
      `\nquality summary: mean primary metric over seeds; gap negative = Ferry better; ` +
        `fit seconds are means ('!' = a Ferry fit over ${BUDGET_SECONDS} s)`,
    );
    for (const line of summaryTable(summaries)) reporter.note(line);
    const failed = summaries.filter((s) => s.failures.length > 0).map((s) => s.dataset);
    const outside = summaries
      .filter((s) => !s.within && s.failures.length === 0)
      .map((s) => s.dataset);
    reporter.note(
      `within 1%: ${summaries.length - failed.length - outside.length} of ${summaries.length}` +
        `${outside.length > 0 ? `; outside: ${outside.join(', ')}` : ''}${failed.length > 0 ? `; failures: ${failed.join(', ')}` : ''}`,
    );
  },
);
