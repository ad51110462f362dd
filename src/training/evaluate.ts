/**
 * Scoring one candidate configuration: fit it on every fold (preprocessing fitted on the fold's
 * training rows only), predict the rows each fold holds out, and measure the out-of-fold
 * predictions. A pure function of its inputs, so a worker thread and the main thread give the
 * same numbers: that is what makes a search deterministic whatever the number of workers.
 */
import type { ModelSignature, Task } from '../core/model.js';
import { FerryError } from '../errors/index.js';
import { takeRows, type Table } from '../core/table.js';
import {
  averageForests,
  DEFAULT_EARLY_STOPPING_ROUNDS,
  improvesOn,
  truncateForest,
  type GbdtModel,
} from './algorithms/gbdt.js';
import type { Objective } from './algorithms/objective.js';
import {
  CANDIDATES,
  type CandidateDefinition,
  type FitInput,
  type ParamValue,
  type Params,
} from './candidates.js';
import { classificationMetrics, regressionMetrics } from './metrics.js';
import {
  NATIVE_FORMAT,
  NATIVE_FORMAT_VERSION,
  NativePredictor,
  type NativeModelDocument,
} from './native-model.js';
import { fit, transform, type PreprocessSpec } from './preprocess.js';
import { createRng, shuffleInPlace } from './random.js';
import type { Fold } from './split.js';

export interface Problem {
  readonly task: Task;
  readonly objective: Objective;
  readonly nClasses: number;
  /** Regression values or class indices, one per row of the table. */
  readonly y: Float64Array;
}

/** Everything a candidate is validated on; shipped once to each worker. */
export interface SelectionData {
  readonly table: Table;
  readonly signature: ModelSignature;
  readonly problem: Problem;
  readonly folds: readonly Fold[];
  readonly seed: number;
}

export interface EvaluationTask {
  readonly algorithm: string;
  readonly params: Params;
  /** Share of each fold's training rows fitted on (successive halving); 1 for all. */
  readonly rowFraction: number;
  /**
   * With a time budget: boosting starts no round after this `Date.now()` time (wall clock, so
   * that worker threads share it); the folds keep the rounds they reached.
   */
  readonly stopAt?: number;
}

export interface Evaluation {
  /** Validation metrics of the out-of-fold predictions. */
  readonly metrics: Record<string, number>;
  /** Parameters as fitted, with the boosting rounds the folds agreed on. */
  readonly params: Record<string, ParamValue>;
  /** Boosting rounds chosen on the mean validation curve (boosted algorithms only). */
  readonly rounds: number | null;
  /**
   * With a hold-out split and all training rows, the model validated (boosted: cut to `rounds`):
   * the artifact a 'folds' refit would fit again, byte for byte.
   */
  readonly model?: NativeModelDocument;
}

/** Where a long fit is: fit `fit` of `fits` (folds, or 1), its boosting round and validation loss. */
export interface FitProgress {
  readonly fit: number;
  readonly fits: number;
  readonly round: number;
  readonly loss: number | null;
}

/** Told of every boosting round of the fits of one evaluation (or fold bag). */
export type FitObserver = (progress: FitProgress) => void;

function roundsOf(
  observe: FitObserver | undefined,
  fit: number,
  fits: number,
): ((round: number, loss: number | null) => void) | undefined {
  return observe === undefined ? undefined : (round, loss) => observe({ fit, fits, round, loss });
}

export function candidateDefinition(algorithm: string): CandidateDefinition {
  const definition = CANDIDATES[algorithm];
  if (definition === undefined) throw new Error(`unknown algorithm '${algorithm}'`);
  return definition;
}

function subProblem(problem: Problem, rows: Uint32Array): Problem {
  return { ...problem, y: Float64Array.from(rows, (i) => problem.y[i] as number) };
}

function fitPreprocess(
  table: Table,
  signature: ModelSignature,
  problem: Problem,
  definition: CandidateDefinition,
): PreprocessSpec {
  // Ordering categories by their mean target helps trees; it is only defined for one output.
  return fit(table, signature.inputs, {
    mode: definition.mode,
    ...(definition.mode === 'tree' && problem.objective !== 'multiclass'
      ? { target: problem.y }
      : {}),
  });
}

/**
 * Linear models learn from at most this many rows, a seeded sample of larger tables. Their
 * matrix is dense (one column per one-hot category) and every L-BFGS step reads all of it, while
 * a few dozen to a few hundred weights are as well determined by 100,000 rows as by millions.
 */
export const LINEAR_MAX_ROWS = 100_000;

/**
 * Fits `algorithm` with `params` on `table` and returns the native model document (for a
 * linear model, on a sample of `LINEAR_MAX_ROWS` rows of a larger table).
 * @example const doc = fitDocument(data.table, data.signature, data.problem, 7, 'gbdt', params, null, 120);
 */
export function fitDocument(
  table: Table,
  signature: ModelSignature,
  problem: Problem,
  seed: number,
  algorithm: string,
  params: Params,
  validation: { table: Table; y: Float64Array } | null,
  rounds: number | null,
  during: Pick<FitInput, 'onRound' | 'stopAt'> = {},
): {
  doc: NativeModelDocument;
  validationLoss: readonly number[];
  params: Record<string, ParamValue>;
} {
  const definition = candidateDefinition(algorithm);
  if (definition.mode === 'linear' && table.rowCount > LINEAR_MAX_ROWS) {
    const all = Uint32Array.from({ length: table.rowCount }, (_, i) => i);
    const rows = subsampleRows(all, LINEAR_MAX_ROWS / table.rowCount, seed + 15485863);
    table = takeRows(table, rows);
    problem = subProblem(problem, rows);
  }
  const { objective, nClasses, y } = problem;
  const preprocess = fitPreprocess(table, signature, problem, definition);
  const output = definition.fit(
    {
      x: transform(preprocess, table),
      y,
      validation:
        validation === null || !definition.boosted
          ? null
          : { x: transform(preprocess, validation.table), y: validation.y },
      rounds,
      ...during,
    },
    { objective, nClasses, seed },
    params,
  );
  const doc: NativeModelDocument = {
    format: NATIVE_FORMAT,
    version: NATIVE_FORMAT_VERSION,
    signature,
    preprocess,
    model: output.model,
  };
  return { doc, validationLoss: output.validationLoss, params: output.params };
}

/**
 * Early stopping on the mean of the folds' validation curves (weighted by held-out rows), over
 * the rounds every curve has: `rounds` is the best round count so far, `stopped` whether
 * `patience` rounds without a better mean came before the shortest curve ended (when false,
 * longer curves could still move the choice). With one curve and an infinite patience, the
 * round count with that curve's lowest loss.
 * @example meanCurveStop([[0.5, 0.4, 0.45], [0.6, 0.5, 0.55]], [10, 10], 1) // { rounds: 2, stopped: true }
 */
export function meanCurveStop(
  curves: readonly (readonly number[])[],
  weights: readonly number[],
  patience: number,
): { rounds: number; stopped: boolean } {
  const length = Math.min(...curves.map((c) => c.length));
  const total = weights.reduce((s, w) => s + w, 0);
  let best = -1;
  let bestLoss = Infinity;
  for (let r = 0; r < length; r++) {
    let loss = 0;
    curves.forEach((c, f) => (loss += (c[r] as number) * (weights[f] as number)));
    loss /= total;
    if (best < 0 || improvesOn(loss, bestLoss)) {
      bestLoss = loss;
      best = r;
    } else if (r - best >= patience) return { rounds: best + 1, stopped: true };
  }
  return { rounds: Math.max(1, best + 1), stopped: false };
}

/** Index of the best round of one curve, by the rule early stopping uses. */
function bestIndex(curve: readonly number[]): number {
  return meanCurveStop([curve], [1], Infinity).rounds - 1;
}

/**
 * Early stopping on the mean curve of boosted fold fits (see `evaluateCandidate`): refits the
 * folds that stopped short, in place in `fitted`, until the mean curve stops or cannot grow,
 * and returns the chosen round count. A fold could grow when it ended by early stopping rather
 * than at its round cap; a refit with patience `target - 1 - best` runs to at least `target`
 * rounds, as the best round of the longer run is no earlier than the short run's.
 */
function extendToMeanStop(
  params: Params,
  fitted: ReturnType<typeof fitDocument>[],
  fitFold: (f: number, params: Params) => ReturnType<typeof fitDocument>,
  weights: readonly number[],
): number {
  const given = params.early_stopping_rounds;
  const patience = typeof given === 'number' ? given : DEFAULT_EARLY_STOPPING_ROUNDS;
  const curveOf = (f: number): readonly number[] =>
    (fitted[f] as (typeof fitted)[number]).validationLoss;
  const stoppedEarly = (curve: readonly number[], foldPatience: number): boolean =>
    curve.length > 0 && curve.length - 1 - bestIndex(curve) >= foldPatience;
  const canGrow = fitted.map((p) => stoppedEarly(p.validationLoss, patience));
  let extended = false;
  for (;;) {
    const curves = fitted.map((p) => p.validationLoss);
    const choice = meanCurveStop(curves, weights, patience);
    const lengths = curves.map((c) => c.length);
    const shortest = Math.min(...lengths);
    if (choice.stopped || lengths.some((l, f) => l === shortest && !canGrow[f])) {
      return choice.rounds;
    }
    // As far as the longest fold went, and far enough for the mean to stop if its best holds;
    // after a first extension, half as far again as the shortest fold, so that a mean that keeps
    // improving costs few refits (each starts from scratch).
    const target = Math.max(
      Math.max(...lengths),
      choice.rounds + patience,
      extended ? Math.ceil(1.5 * shortest) : 0,
    );
    extended = true;
    fitted.forEach((_, f) => {
      const before = curveOf(f);
      if (before.length >= target || !canGrow[f]) return;
      const foldPatience = target - 1 - bestIndex(before);
      fitted[f] = fitFold(f, { ...params, early_stopping_rounds: foldPatience });
      const after = curveOf(f);
      canGrow[f] = after.length > before.length && stoppedEarly(after, foldPatience);
    });
  }
}

/** A seeded share of a fold's training rows, ascending; all of them for a fraction of 1. */
function subsampleRows(rows: Uint32Array, fraction: number, seed: number): Uint32Array {
  if (fraction >= 1) return rows;
  const keep = Math.min(rows.length, Math.max(2, Math.ceil(rows.length * fraction)));
  const shuffled = shuffleInPlace(Uint32Array.from(rows), createRng(seed));
  return shuffled.slice(0, keep).sort();
}

/**
 * Fits the candidate on every fold and measures it on the rows each fold held out.
 *
 * A boosted candidate's round count is chosen by early stopping on the folds' mean validation
 * curve, as `xgboost.cv` and `lightgbm.cv` do, not on each fold's own curve: the folds first
 * boost with their own early stopping, and while the mean has not stopped within the rounds
 * every fold reached, the folds that stopped short are fitted again with a longer patience, so
 * that no fold stopping early caps the count for all. The rounds a fit produces do not depend
 * on how long it is allowed to run (same seed, same draws per round), so the result is the one
 * boosting all folds in lockstep would give; the price is refitting the short folds.
 * @example const { metrics } = evaluateCandidate(data, { algorithm: 'gbdt', params, rowFraction: 1 });
 */
export function evaluateCandidate(
  data: SelectionData,
  task: EvaluationTask,
  observe?: FitObserver,
): Evaluation {
  const { table, signature, problem, folds, seed } = data;
  const definition = candidateDefinition(task.algorithm);
  const inputs = folds.map((fold, f) => {
    const trainRows = subsampleRows(fold.train, task.rowFraction, seed + 7919 * (f + 1));
    const valid = takeRows(table, fold.valid);
    const validProblem = subProblem(problem, fold.valid);
    return { trainRows, valid, validProblem };
  });
  // Training rows are taken again for a refit rather than kept: a hold-out's are most of the data.
  const fitFold = (f: number, params: Params): ReturnType<typeof fitDocument> => {
    const input = inputs[f] as (typeof inputs)[number];
    return fitDocument(
      takeRows(table, input.trainRows),
      signature,
      subProblem(problem, input.trainRows),
      seed,
      task.algorithm,
      params,
      { table: input.valid, y: input.validProblem.y },
      null,
      {
        ...(observe === undefined ? {} : { onRound: roundsOf(observe, f + 1, folds.length) }),
        ...(task.stopAt === undefined ? {} : { stopAt: task.stopAt }),
      },
    );
  };
  const fitted = folds.map((_, f) => fitFold(f, task.params));
  const fittedParams = { ...(fitted[0] as (typeof fitted)[number]).params };
  let rounds: number | null = null;
  let docs = fitted.map((p) => p.doc);
  if (definition.boosted) {
    rounds = extendToMeanStop(
      task.params,
      fitted,
      fitFold,
      folds.map((f) => f.valid.length),
    );
    const r = rounds;
    docs = fitted.map((p) => ({ ...p.doc, model: truncateForest(p.doc.model as GbdtModel, r) }));
  }
  // Out-of-fold predictions, in fold order, against the matching labels.
  const rows = folds.reduce((s, f) => s + f.valid.length, 0);
  const actual = new Float64Array(rows);
  const k = problem.nClasses;
  const values = new Float64Array(problem.task === 'regression' ? rows : rows * k);
  let offset = 0;
  inputs.forEach((part, f) => {
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
  const params = fittedParams;
  if (rounds !== null) params.rounds = rounds;
  const holdout = folds.length === 1 && task.rowFraction >= 1;
  return { metrics, params, rounds, ...(holdout ? { model: docs[0] as NativeModelDocument } : {}) };
}

/** A fold bag: the average of a boosted candidate's fold models, and the members themselves. */
export interface FoldBag {
  /** One native boosted model whose raw scores are the mean of the members' (`averageForests`). */
  readonly doc: NativeModelDocument;
  /** Each fold's model, fitted on the fold's training rows and early-stopped on its held-out rows. */
  readonly members: readonly NativeModelDocument[];
  /** Boosting rounds each member kept, in fold order. */
  readonly rounds: readonly number[];
}

/**
 * Fold bagging of a boosted candidate: one model per fold, fitted on the fold's training rows
 * with its own early stopping on the rows the fold holds out, averaged into one boosted model.
 * Used instead of one refit on all rows with the round count cross-validation chose; on small
 * data the average of k models varies less than one model, and no round count is carried over
 * from models of fewer rows.
 *
 * The members share one preprocessing, fitted on all rows (as a full refit's is), because a
 * forest's thresholds are only comparable over the same codes; the members of the bag are
 * therefore not byte for byte the models that validation scored (theirs were preprocessed per
 * fold), and a category order learnt from all rows has seen each fold's held-out targets, a
 * small leak into early stopping only. Deterministic for its inputs.
 * @example const { doc, rounds } = fitFoldBag(data, 'gbdt', params);
 */
export function fitFoldBag(
  data: SelectionData,
  algorithm: string,
  params: Params,
  observe?: FitObserver,
): FoldBag {
  const { table, signature, problem, folds, seed } = data;
  const definition = candidateDefinition(algorithm);
  if (!definition.boosted) {
    throw new FerryError(
      'FERRY_INTERNAL',
      `fold bagging averages boosted models; '${algorithm}' is not one`,
    );
  }
  const preprocess = fitPreprocess(table, signature, problem, definition);
  const { objective, nClasses } = problem;
  const models = folds.map((fold, f) => {
    const onRound = roundsOf(observe, f + 1, folds.length);
    const output = definition.fit(
      {
        x: transform(preprocess, takeRows(table, fold.train)),
        y: subProblem(problem, fold.train).y,
        validation: {
          x: transform(preprocess, takeRows(table, fold.valid)),
          y: subProblem(problem, fold.valid).y,
        },
        rounds: null,
        ...(onRound === undefined ? {} : { onRound }),
      },
      { objective, nClasses, seed },
      params,
    );
    const model = output.model as GbdtModel;
    const curve = output.validationLoss;
    return curve.length === 0 ? model : truncateForest(model, bestIndex(curve) + 1);
  });
  const document = (model: GbdtModel): NativeModelDocument => ({
    format: NATIVE_FORMAT,
    version: NATIVE_FORMAT_VERSION,
    signature,
    preprocess,
    model,
  });
  return {
    doc: document(averageForests(models)),
    members: models.map(document),
    rounds: models.map((m) => m.rounds),
  };
}
