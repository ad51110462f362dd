/**
 * Scoring one candidate configuration: fit it on every fold (preprocessing fitted on the fold's
 * training rows only), predict the rows each fold holds out, and measure the out-of-fold
 * predictions. A pure function of its inputs, so a worker thread and the main thread give the
 * same numbers: that is what makes a search deterministic whatever the number of workers.
 */
import type { ModelSignature, Task } from '../core/model.js';
import { FerryError } from '../errors/index.js';
import { takeRows, type Table } from '../core/table.js';
import { averageForests, truncateForest, type GbdtModel } from './algorithms/gbdt.js';
import type { Objective } from './algorithms/objective.js';
import {
  CANDIDATES,
  type CandidateDefinition,
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
}

export interface Evaluation {
  /** Validation metrics of the out-of-fold predictions. */
  readonly metrics: Record<string, number>;
  /** Parameters as fitted, with the boosting rounds the folds agreed on. */
  readonly params: Record<string, ParamValue>;
  /** Boosting rounds chosen on the mean validation curve (boosted algorithms only). */
  readonly rounds: number | null;
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
 * Fits `algorithm` with `params` on `table` and returns the native model document.
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
): {
  doc: NativeModelDocument;
  validationLoss: readonly number[];
  params: Record<string, ParamValue>;
} {
  const definition = candidateDefinition(algorithm);
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

/** A seeded share of a fold's training rows, ascending; all of them for a fraction of 1. */
function subsampleRows(rows: Uint32Array, fraction: number, seed: number): Uint32Array {
  if (fraction >= 1) return rows;
  const keep = Math.min(rows.length, Math.max(2, Math.ceil(rows.length * fraction)));
  const shuffled = shuffleInPlace(Uint32Array.from(rows), createRng(seed));
  return shuffled.slice(0, keep).sort();
}

/**
 * Fits the candidate on every fold and measures it on the rows each fold held out.
 * @example const { metrics } = evaluateCandidate(data, { algorithm: 'gbdt', params, rowFraction: 1 });
 */
export function evaluateCandidate(data: SelectionData, task: EvaluationTask): Evaluation {
  const { table, signature, problem, folds, seed } = data;
  const definition = candidateDefinition(task.algorithm);
  const parts = folds.map((fold, f) => {
    const trainRows = subsampleRows(fold.train, task.rowFraction, seed + 7919 * (f + 1));
    const valid = takeRows(table, fold.valid);
    const validProblem = subProblem(problem, fold.valid);
    const fitted = fitDocument(
      takeRows(table, trainRows),
      signature,
      subProblem(problem, trainRows),
      seed,
      task.algorithm,
      task.params,
      { table: valid, y: validProblem.y },
      null,
    );
    return { fitted, valid, validProblem };
  });
  let rounds: number | null = null;
  let docs = parts.map((p) => p.fitted.doc);
  if (definition.boosted) {
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
  return { metrics, params, rounds };
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
export function fitFoldBag(data: SelectionData, algorithm: string, params: Params): FoldBag {
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
  const models = folds.map((fold) => {
    const output = definition.fit(
      {
        x: transform(preprocess, takeRows(table, fold.train)),
        y: subProblem(problem, fold.train).y,
        validation: {
          x: transform(preprocess, takeRows(table, fold.valid)),
          y: subProblem(problem, fold.valid).y,
        },
        rounds: null,
      },
      { objective, nClasses, seed },
      params,
    );
    const model = output.model as GbdtModel;
    const curve = output.validationLoss;
    return curve.length === 0 ? model : truncateForest(model, chooseRounds([curve], [1]));
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
