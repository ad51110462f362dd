/**
 * Training speed and memory of Ferry's gradient boosting, against XGBoost (`tree_method=hist`)
 * on the same data in the same run when Debian's python3-xgboost is installed.
 *
 * Data: generated tables of 100k and 1M training rows (plus a fifth as many test rows) × 20
 * columns: 18 numeric (six with 5–30% missing values) and 2 string columns (8 and 60 categories),
 * with a binary target drawn from a non-linear score (a sine, interactions, a threshold, a
 * category effect, an effect of missingness itself). Ferry's tree-mode preprocessing
 * (`preprocess.ts`: NaN kept, strings as target-ordered codes) turns the table into the matrix
 * both libraries train on, so they see exactly the same numbers; its time is a note, not part of
 * the comparison.
 *
 * Both trainers run in a child process of their own that loads the matrix from a file, so each
 * peak RSS (Linux `VmHWM` for Node, `ru_maxrss` for Python) is that trainer's alone, data
 * included. Settings are equal: 100 rounds, learning rate 0.1, depth 6 (Ferry grows leaf-wise, so
 * it gets `maxLeaves` 64 = 2^6 to match a full depth-6 tree), L2 1, minimum child weight 1, 255
 * bins, no row subsampling, no early stopping. Time is the fit alone (XGBoost's includes its
 * quantile sketch, as Ferry's includes its binning; building the DMatrix from numpy is a note).
 * Test AUC of both is computed by the same function (`rocAuc`) on each one's test predictions.
 *
 * Rows, per size: XGBoost with all cores (the baseline, when present), XGBoost on 1 thread, Ferry
 * with its histogram helper threads (`histogram.ts`, all cores; started before the clock runs, as
 * in a process that has trained before), Ferry on 1 thread. Figures are µs per training row for
 * the whole fit; p50 is the fit time over the rows. Without XGBoost, Ferry's first row is the
 * baseline.
 *
 * `FERRY_BENCH_SCALE` (e.g. 0.1) multiplies the sizes. `npm run bench -- train`.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ModelInput } from '../src/core/model.js';
import type { Column, Scalar, Table } from '../src/core/table.js';
import {
  compileForest,
  fitGbdt,
  predictForestRaw,
  type GbdtOptions,
} from '../src/training/algorithms/gbdt.js';
import { startHistogramHelpers } from '../src/training/algorithms/histogram.js';
import { rocAuc } from '../src/training/metrics.js';
import { fit, transform, type Matrix } from '../src/training/preprocess.js';
import { createRng } from '../src/training/random.js';
import { highWaterRss, oneShot } from './measure.js';
import { PYTHON, readFloat64, runJsonChild, writeTyped, xgboostPresent } from './child.js';
import { runBench, type Reporter } from './report.js';

const SELF = fileURLToPath(import.meta.url);
const ROOT = path.dirname(path.dirname(SELF));
const SCALE = Number(process.env.FERRY_BENCH_SCALE ?? '1');
const SIZES = [100_000, 1_000_000].map((n) => Math.max(1000, Math.round(n * SCALE)));
const NUMERIC = 18;
const CATEGORIES = [8, 60] as const;
/** Numeric columns with missing values, and the share missing. */
const MISSING: Readonly<Record<number, number>> = {
  1: 0.05,
  3: 0.1,
  6: 0.3,
  9: 0.15,
  12: 0.2,
  15: 0.05,
};
const SEED = 7;

/** Equal settings for both trainers. */
const ROUNDS = 100;
const LEARNING_RATE = 0.1;
const DEPTH = 6;
const LAMBDA = 1;
const MIN_CHILD_WEIGHT = 1;
const BINS = 255;

const GBDT: GbdtOptions = {
  objective: 'binary',
  nClasses: 2,
  learningRate: LEARNING_RATE,
  maxRounds: ROUNDS,
  maxDepth: DEPTH,
  maxLeaves: 2 ** DEPTH,
  minChildWeight: MIN_CHILD_WEIGHT,
  lambda: LAMBDA,
  maxBins: BINS,
  subsample: 1,
  seed: SEED,
};

/** The files one size is written to; shapes in `meta.json`. */
interface DataFiles {
  readonly dir: string;
  readonly trainRows: number;
  readonly testRows: number;
  readonly cols: number;
}

interface TrainerResult {
  readonly fitSeconds: number;
  readonly peakRssBytes: number | null;
  /** Seconds to get the data into the trainer's form before the fit (XGBoost's DMatrix). */
  readonly prepareSeconds?: number;
}

/** `rows` rows of the 20 input columns and, over them, a noisy non-linear binary target. */
function generate(rows: number, seed: number): { table: Table; y: Float64Array } {
  const random = createRng(seed);
  const numeric: Scalar[][] = Array.from({ length: NUMERIC }, () => new Array<Scalar>(rows));
  const strings: Scalar[][] = CATEGORIES.map(() => new Array<Scalar>(rows));
  // Category effects, fixed by the seed: the second column has many small, noisy categories.
  const effects = CATEGORIES.map((k, c) =>
    Array.from({ length: k }, () => (random() * 2 - 1) * (c === 0 ? 1.2 : 0.6)),
  );
  const y = new Float64Array(rows);
  const x = new Float64Array(NUMERIC);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < NUMERIC; j++) {
      const v = Math.round((random() * 4 - 2) * 1000) / 1000;
      const missing = MISSING[j] !== undefined && random() < (MISSING[j] as number);
      x[j] = missing ? NaN : v;
      (numeric[j] as Scalar[])[i] = missing ? null : v;
    }
    const codes = CATEGORIES.map((k) => Math.floor(random() ** 1.5 * k));
    codes.forEach((code, c) => ((strings[c] as Scalar[])[i] = `c${c}_${code}`));
    const [a = 0, b = 0, c = 0, d = 0, e = 0, f = 0, g = 0] = x;
    const score =
      1.5 * Math.sin(2 * a) +
      (Number.isNaN(b) ? 0.8 : b * c) +
      (Number.isNaN(d) ? 0 : d > 0.5 ? 1.5 : -0.5) +
      0.5 * e -
      0.3 * f * f +
      (Number.isNaN(g) ? 0.7 : -0.2 * g) +
      (effects[0]?.[codes[0] ?? 0] ?? 0) +
      (effects[1]?.[codes[1] ?? 0] ?? 0);
    y[i] = random() < 1 / (1 + Math.exp(-score)) ? 1 : 0;
  }
  const columns: Column[] = [
    ...numeric.map((values, j): Column => ({ name: `x${j}`, type: 'float', values })),
    ...strings.map((values, c): Column => ({ name: `s${c}`, type: 'string', values })),
  ];
  return { table: { rowCount: rows, columns }, y };
}

/** Generates one size, preprocesses it with Ferry, and writes the matrices for both trainers. */
function prepare(reporter: Reporter, rows: number, dir: string): DataFiles {
  const testRows = Math.round(rows / 5);
  let t0 = performance.now();
  const train = generate(rows, SEED);
  const test = generate(testRows, SEED + 1);
  const generateSeconds = (performance.now() - t0) / 1000;
  const inputs: ModelInput[] = train.table.columns.map((c) => ({ name: c.name, type: c.type }));
  t0 = performance.now();
  const spec = fit(train.table, inputs, { mode: 'tree', target: train.y });
  const xTrain = transform(spec, train.table);
  const xTest = transform(spec, test.table);
  const preprocessSeconds = (performance.now() - t0) / 1000;
  writeTyped(path.join(dir, 'x_train.f64'), xTrain.data);
  writeTyped(path.join(dir, 'y_train.f64'), train.y);
  writeTyped(path.join(dir, 'x_test.f64'), xTest.data);
  writeTyped(path.join(dir, 'y_test.f64'), test.y);
  const files: DataFiles = { dir, trainRows: rows, testRows, cols: xTrain.cols };
  writeFileSync(path.join(dir, 'meta.json'), JSON.stringify(files));
  const positives = train.y.reduce((s, v) => s + v, 0) / rows;
  reporter.note(
    `${rows.toLocaleString('en-US')} train + ${testRows.toLocaleString('en-US')} test rows × ${inputs.length} columns ` +
      `(${xTrain.cols} matrix columns, ${(positives * 100).toFixed(1)}% positive): generated in ${generateSeconds.toFixed(1)} s, ` +
      `Ferry tree preprocessing (fit + transform) ${preprocessSeconds.toFixed(1)} s`,
  );
  return files;
}

/** The Ferry side, in a child process: `train.bench.ts --ferry <dir> <threads>`. */
async function ferryWorker(dir: string, threads: number): Promise<void> {
  if (threads > 1) await startHistogramHelpers();
  const meta = JSON.parse(readFileSync(path.join(dir, 'meta.json'), 'utf8')) as DataFiles;
  const x: Matrix = {
    data: readFloat64(path.join(dir, 'x_train.f64')),
    rows: meta.trainRows,
    cols: meta.cols,
  };
  const y = readFloat64(path.join(dir, 'y_train.f64'));
  const t0 = performance.now();
  const { model } = fitGbdt(x, y, { ...GBDT, ...(threads > 1 ? {} : { threads: 1 }) });
  const fitSeconds = (performance.now() - t0) / 1000;
  const xTest: Matrix = {
    data: readFloat64(path.join(dir, 'x_test.f64')),
    rows: meta.testRows,
    cols: meta.cols,
  };
  writeTyped(
    path.join(dir, `p_ferry${threads}.f64`),
    predictForestRaw(compileForest(model), xTest),
  );
  const result: TrainerResult = { fitSeconds, peakRssBytes: highWaterRss() };
  process.stdout.write(JSON.stringify(result) + '\n');
}

/** The XGBoost side: reads the same files, trains, writes raw test margins. argv: dir, threads. */
const XGBOOST_SCRIPT = `
import json, resource, sys, time
import numpy as np
import xgboost as xgb
d, threads = sys.argv[1], int(sys.argv[2])
meta = json.load(open(d + '/meta.json'))
n, m, cols = meta['trainRows'], meta['testRows'], meta['cols']
t0 = time.perf_counter()
dtrain = xgb.DMatrix(np.fromfile(d + '/x_train.f64').reshape(n, cols),
                     label=np.fromfile(d + '/y_train.f64'), missing=np.nan, nthread=threads)
prepare = time.perf_counter() - t0
params = {'objective': 'binary:logistic', 'tree_method': 'hist', 'eta': ${LEARNING_RATE},
          'max_depth': ${DEPTH}, 'lambda': ${LAMBDA}, 'min_child_weight': ${MIN_CHILD_WEIGHT},
          'max_bin': ${BINS}, 'subsample': 1, 'nthread': threads, 'seed': ${SEED}}
t0 = time.perf_counter()
booster = xgb.train(params, dtrain, num_boost_round=${ROUNDS})
fit = time.perf_counter() - t0
dtest = xgb.DMatrix(np.fromfile(d + '/x_test.f64').reshape(m, cols), missing=np.nan)
booster.predict(dtest, output_margin=True).astype(np.float64).tofile(d + '/p_xgboost%d.f64' % threads)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({'fitSeconds': fit, 'prepareSeconds': prepare, 'peakRssBytes': peak}))
`;

function runChild(command: string, args: readonly string[]): Promise<TrainerResult> {
  return runJsonChild<TrainerResult>(command, args, { cwd: ROOT });
}

function testAuc(files: DataFiles, predictions: string): number {
  return rocAuc(
    readFloat64(path.join(files.dir, 'y_test.f64')),
    readFloat64(path.join(files.dir, predictions)),
  );
}

function mib(bytes: number | null): string {
  return bytes === null ? 'n/a' : `${Math.round(bytes / 2 ** 20).toLocaleString('en-US')} MiB`;
}

async function benchSize(reporter: Reporter, rows: number, xgboost: boolean): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ferry-bench-train-'));
  try {
    const files = prepare(reporter, rows, dir);
    const label = `${rows.toLocaleString('en-US')} rows`;
    let xgbAll: TrainerResult | undefined;
    let xgbOne: TrainerResult | undefined;
    if (xgboost) {
      const threads = os.availableParallelism();
      xgbAll = await runChild(PYTHON, ['-c', XGBOOST_SCRIPT, dir, String(threads)]);
      reporter.baseline(
        oneShot(`xgboost hist, ${threads} threads, ${label}`, rows, [xgbAll.fitSeconds]),
      );
      xgbOne = await runChild(PYTHON, ['-c', XGBOOST_SCRIPT, dir, '1']);
      reporter.add(oneShot(`xgboost hist, 1 thread, ${label}`, rows, [xgbOne.fitSeconds]));
    }
    const threads = os.availableParallelism();
    const ferryChild = (n: number): Promise<TrainerResult> =>
      runChild(process.execPath, ['--import', 'tsx', SELF, '--ferry', dir, String(n)]);
    const ferry = await ferryChild(threads);
    const ferryRow = oneShot(`ferry fitGbdt, ${threads} threads, ${label}`, rows, [
      ferry.fitSeconds,
    ]);
    if (xgboost) reporter.add(ferryRow);
    else reporter.baseline(ferryRow);
    const ferryOne = await ferryChild(1);
    reporter.add(oneShot(`ferry fitGbdt, 1 thread, ${label}`, rows, [ferryOne.fitSeconds]));
    const ferryAuc = testAuc(files, `p_ferry${threads}.f64`);
    const ferryOneAuc = testAuc(files, 'p_ferry1.f64');
    reporter.note(
      `${label}: ferry ${ferry.fitSeconds.toFixed(2)} s on ${threads} threads ` +
        `(${ferryOne.fitSeconds.toFixed(2)} s on 1), peak RSS ${mib(ferry.peakRssBytes)}, ` +
        `test AUC ${ferryAuc.toFixed(4)} (1 thread ${ferryOneAuc.toFixed(4)})`,
    );
    if (xgbAll && xgbOne) {
      const allAuc = testAuc(files, `p_xgboost${threads}.f64`);
      const oneAuc = testAuc(files, 'p_xgboost1.f64');
      reporter.note(
        `${label}: xgboost ${xgbAll.fitSeconds.toFixed(2)} s on ${threads} threads ` +
          `(${xgbOne.fitSeconds.toFixed(2)} s on 1; DMatrix ${(xgbAll.prepareSeconds ?? 0).toFixed(2)} s), ` +
          `peak RSS ${mib(xgbAll.peakRssBytes)}, test AUC ${allAuc.toFixed(4)} (1 thread ${oneAuc.toFixed(4)})`,
      );
      reporter.note(
        `${label}: ferry / xgboost time ${(ferry.fitSeconds / xgbAll.fitSeconds).toFixed(2)}× ` +
          `(${(ferryOne.fitSeconds / xgbOne.fitSeconds).toFixed(2)}× on 1 thread each), ` +
          `AUC ${ferryAuc.toFixed(4)} vs ${allAuc.toFixed(4)} (${(ferryAuc - allAuc >= 0 ? '+' : '') + (ferryAuc - allAuc).toFixed(4)})`,
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const at = process.argv.indexOf('--ferry');
if (at >= 0) {
  await ferryWorker(process.argv[at + 1] ?? '.', Number(process.argv[at + 2] ?? '1'));
} else {
  await runBench(
    'train',
    'gradient boosting training time and memory, against XGBoost',
    async (reporter) => {
      const xgboost = xgboostPresent();
      reporter.note(
        xgboost
          ? `XGBoost: ${PYTHON} with xgboost (tree_method=hist), same matrix, same settings`
          : `XGBoost: not found (${PYTHON} -c 'import xgboost' failed; apt-get install -y python3-xgboost); Ferry alone`,
      );
      reporter.note(
        `settings: ${ROUNDS} rounds, learning rate ${LEARNING_RATE}, depth ${DEPTH} (Ferry maxLeaves ${2 ** DEPTH}), ` +
          `L2 ${LAMBDA}, min child weight ${MIN_CHILD_WEIGHT}, ${BINS} bins, no subsampling; µs per training row`,
      );
      // Both trainers share the machine with whatever else runs: the load says how far to trust it.
      const load = os.loadavg().map((l) => l.toFixed(1));
      reporter.note(`load average ${load.join(' ')} on ${os.availableParallelism()} CPUs at start`);
      for (const rows of SIZES) await benchSize(reporter, rows, xgboost);
    },
  );
}
