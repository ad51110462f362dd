/**
 * The candidate registry: every algorithm model selection may try, with its search space and a
 * fit function that takes parameters: `linear` (ridge or logistic, alias `logreg`), `gbdt`,
 * `tree` (one CART tree) and `rf` (random forest). A plain map from algorithm id to definition; `search.ts`
 * draws parameters from the spaces and `evaluate.ts` fits them on folds.
 *
 * A space lists each parameter's range (for random search and successive halving) and a few
 * grid values (for grid search). The defaults are the configuration every search tries first,
 * so a budget that runs out early still leaves each algorithm trained at its sensible settings.
 */
import type { Task } from '../core/model.js';
import { FerryError } from '../errors/index.js';
import { fitDecisionTree, fitForest, type MaxFeatures } from './algorithms/forest.js';
import { fitGbdt, type GbdtModel } from './algorithms/gbdt.js';
import { fitLogistic, fitRidge, type LinearModel } from './algorithms/linear.js';
import type { Objective } from './algorithms/objective.js';
import type { AlgorithmModel } from './native-model.js';
import type { Matrix, PreprocessMode } from './preprocess.js';

/** A parameter value as recorded in a leaderboard. */
export type ParamValue = number | string;
export type Params = Readonly<Record<string, ParamValue>>;

/** How a parameter is drawn: a numeric range (log-scaled or not), or one of listed values. */
export type ParamDomain =
  | {
      readonly kind: 'float' | 'int';
      readonly low: number;
      readonly high: number;
      readonly log?: boolean;
      /** Values grid search tries. */
      readonly grid: readonly number[];
    }
  | { readonly kind: 'choice'; readonly values: readonly ParamValue[] };

export type SearchSpace = Readonly<Record<string, ParamDomain>>;

/** What a fit needs to know of the problem. */
export interface FitProblem {
  readonly objective: Objective;
  readonly nClasses: number;
  readonly seed: number;
}

export interface FitOutput {
  readonly model: AlgorithmModel;
  /** Loss on the validation rows after each boosting round (boosting only, else empty). */
  readonly validationLoss: readonly number[];
  /** Parameters as fitted, with derived ones (rounds kept). */
  readonly params: Record<string, ParamValue>;
}

export interface FitInput {
  readonly x: Matrix;
  readonly y: Float64Array;
  /** Validation rows for early stopping; every round is kept so folds can agree on a count. */
  readonly validation: { readonly x: Matrix; readonly y: Float64Array } | null;
  /** Fixed boosting rounds (the refit of a winner), else early stopping decides. */
  readonly rounds: number | null;
  /** Boosting only: called after every round, for progress on long fits. */
  readonly onRound?: (round: number, validationLoss: number | null) => void;
  /** Boosting only: no round starts after this `Date.now()` time (a time budget). */
  readonly stopAt?: number;
}

export interface CandidateDefinition {
  readonly id: string;
  /** Leaderboard name of the candidate for a task (`logistic_regression`, `gbdt`). */
  name(task: Task): string;
  /** How preprocessing prepares columns for it: scaled one-hot, or ordinal codes for trees. */
  readonly mode: PreprocessMode;
  /** True when validation loss per round is returned and folds should agree on rounds. */
  readonly boosted: boolean;
  space(task: Task): SearchSpace;
  /** The configuration every search tries first, for `rows` training rows (per fold). */
  defaults(task: Task, rows: number): Params;
  fit(input: FitInput, problem: FitProblem, params: Params): FitOutput;
}

function num(params: Params, key: string): number {
  const v = params[key];
  if (typeof v !== 'number') {
    throw new FerryError('FERRY_ARGUMENT_INVALID', `parameter '${key}' must be a number`);
  }
  return v;
}

function optionalNum(params: Params, key: string): number | undefined {
  return params[key] === undefined ? undefined : num(params, key);
}

const linear: CandidateDefinition = {
  id: 'linear',
  name: (task) => (task === 'classification' ? 'logistic_regression' : 'ridge_regression'),
  mode: 'linear',
  boosted: false,
  space: (task): SearchSpace =>
    task === 'classification'
      ? { C: { kind: 'float', low: 0.01, high: 100, log: true, grid: [0.01, 0.1, 1, 10, 100] } }
      : {
          alpha: { kind: 'float', low: 0.001, high: 100, log: true, grid: [0.01, 0.1, 1, 10, 100] },
        },
  defaults: (task): Params => (task === 'classification' ? { C: 1 } : { alpha: 1 }),
  fit({ x, y }, problem, params) {
    let model: LinearModel;
    if (problem.objective === 'regression') {
      model = fitRidge(x, y, { alpha: num(params, 'alpha') });
    } else {
      // C in scikit-learn's terms: the penalty on the mean loss is 1 / (C n).
      model = fitLogistic(x, Int32Array.from(y), problem.nClasses, {
        l2: 1 / (num(params, 'C') * x.rows),
      });
    }
    return { model, validationLoss: [], params: { ...params } };
  },
};

/**
 * Default tree size of boosting for a number of training rows. Small data keeps LightGBM's 31
 * leaves at depth 6; more rows carry deeper interactions without overfitting, and past 50,000
 * rows the time of a round goes to per-row work more than to leaves. Measured on flights
 * (`bench/quality`, binary, hold-out AUC at 300 rounds): at 80,000 training rows 0.772 (31
 * leaves), 0.784 (63), 0.793 (127); at 600,000 rows 0.747, 0.761 (63), 0.799 (127), for about
 * 10–30% more time.
 */
export function gbdtTreeSize(rows: number): { max_leaves: number; max_depth: number } {
  if (rows >= 500_000) return { max_leaves: 127, max_depth: 10 };
  if (rows >= 50_000) return { max_leaves: 63, max_depth: 8 };
  return { max_leaves: 31, max_depth: 6 };
}

/** Round cap for a learning rate: slow learners get room, early stopping ends the rest. */
function maxRoundsFor(learningRate: number): number {
  return Math.min(1000, Math.max(300, Math.ceil(30 / learningRate)));
}

const gbdt: CandidateDefinition = {
  id: 'gbdt',
  name: () => 'gbdt',
  mode: 'tree',
  boosted: true,
  space: () => ({
    learning_rate: { kind: 'float', low: 0.02, high: 0.3, log: true, grid: [0.03, 0.1, 0.3] },
    max_leaves: { kind: 'int', low: 4, high: 63, log: true, grid: [8, 31] },
    max_depth: { kind: 'choice', values: [3, 4, 6, 8] },
    min_child_weight: { kind: 'float', low: 0.5, high: 20, log: true, grid: [1, 5] },
    lambda: { kind: 'float', low: 0.1, high: 10, log: true, grid: [1] },
    subsample: { kind: 'float', low: 0.5, high: 1, grid: [0.8] },
    colsample_bytree: { kind: 'float', low: 0.5, high: 1, grid: [1] },
  }),
  defaults: (_task, rows) => ({
    learning_rate: 0.1,
    ...gbdtTreeSize(rows),
    min_child_weight: 1,
    lambda: 1,
    subsample: 0.8,
    colsample_bytree: 1,
  }),
  fit({ x, y, validation, rounds, onRound, stopAt }, problem, params) {
    const learningRate = num(params, 'learning_rate');
    const result = fitGbdt(x, y, {
      objective: problem.objective,
      nClasses: problem.nClasses,
      seed: problem.seed,
      learningRate,
      maxLeaves: num(params, 'max_leaves'),
      maxDepth: num(params, 'max_depth'),
      minChildWeight: num(params, 'min_child_weight'),
      lambda: num(params, 'lambda'),
      subsample: num(params, 'subsample'),
      colsampleByTree: optionalNum(params, 'colsample_bytree') ?? 1,
      earlyStoppingRounds: optionalNum(params, 'early_stopping_rounds') ?? 20,
      maxRounds: rounds ?? optionalNum(params, 'max_rounds') ?? maxRoundsFor(learningRate),
      ...(validation === null ? {} : { validation, keepAllRounds: true }),
      ...(onRound === undefined ? {} : { onRound }),
      ...(stopAt === undefined ? {} : { stopAt }),
    });
    const model: GbdtModel = result.model;
    return {
      model,
      validationLoss: result.validationLoss,
      params: { ...params, rounds: model.rounds },
    };
  },
};

/** 0 stands for no depth limit (a choice value must be a number or a string). */
function depthLimit(params: Params): number | undefined {
  const depth = optionalNum(params, 'max_depth');
  return depth === undefined || depth <= 0 ? undefined : depth;
}

const tree: CandidateDefinition = {
  id: 'tree',
  name: () => 'decision_tree',
  mode: 'tree',
  boosted: false,
  space: () => ({
    max_depth: { kind: 'choice', values: [3, 5, 8, 12, 0] },
    min_samples_leaf: { kind: 'int', low: 1, high: 50, log: true, grid: [1, 5, 20] },
  }),
  defaults: () => ({ max_depth: 8, min_samples_leaf: 5 }),
  fit({ x, y }, problem, params) {
    const maxDepth = depthLimit(params);
    const model = fitDecisionTree(x, y, {
      objective: problem.objective,
      nClasses: problem.nClasses,
      seed: problem.seed,
      minSamplesLeaf: num(params, 'min_samples_leaf'),
      ...(maxDepth === undefined ? {} : { maxDepth }),
    });
    return { model, validationLoss: [], params: { ...params } };
  },
};

function maxFeatures(params: Params): MaxFeatures {
  const v = params.max_features;
  if (v === 'sqrt' || v === 'third' || v === 'all') return v;
  if (typeof v === 'number' && v > 0 && v <= 1) return v;
  throw new FerryError(
    'FERRY_ARGUMENT_INVALID',
    `parameter 'max_features' must be sqrt, third, all or a fraction in (0, 1]; got ${String(v)}`,
  );
}

const rf: CandidateDefinition = {
  id: 'rf',
  name: () => 'random_forest',
  mode: 'tree',
  boosted: false,
  space: (task) => ({
    n_estimators: { kind: 'choice', values: [100, 200] },
    max_features: {
      kind: 'choice',
      values: task === 'classification' ? ['sqrt', 0.5, 'all'] : ['third', 0.5, 'all'],
    },
    min_samples_leaf: { kind: 'int', low: 1, high: 20, log: true, grid: [1, 5] },
    max_depth: { kind: 'choice', values: [0, 8, 16] },
  }),
  defaults: (task): Params => ({
    n_estimators: 100,
    max_features: task === 'classification' ? 'sqrt' : 'third',
    min_samples_leaf: 1,
    max_depth: 0,
  }),
  fit({ x, y }, problem, params) {
    const maxDepth = depthLimit(params);
    const model = fitForest(x, y, {
      objective: problem.objective,
      nClasses: problem.nClasses,
      seed: problem.seed,
      nEstimators: num(params, 'n_estimators'),
      maxFeatures: maxFeatures(params),
      minSamplesLeaf: num(params, 'min_samples_leaf'),
      ...(maxDepth === undefined ? {} : { maxDepth }),
    });
    return { model, validationLoss: [], params: { ...params } };
  },
};

/** Every algorithm, by id. Aliases map other spellings to an id. */
export const CANDIDATES: Readonly<Record<string, CandidateDefinition>> = { linear, gbdt, tree, rf };

const ALIASES: Readonly<Record<string, string>> = {
  logreg: 'linear',
  logistic: 'linear',
  ridge: 'linear',
  decision_tree: 'tree',
  random_forest: 'rf',
  forest: 'rf',
};

/** The algorithms trained when none are named, in leaderboard order. */
export const DEFAULT_MODELS: readonly string[] = ['linear', 'gbdt'];

/**
 * Definitions of the named algorithms (ids or aliases), without repeats, in the order given.
 * @example resolveCandidates(['logreg', 'gbdt']).map((c) => c.id) // ['linear', 'gbdt']
 */
export function resolveCandidates(names: readonly string[]): CandidateDefinition[] {
  const out: CandidateDefinition[] = [];
  for (const raw of names) {
    const key = raw.trim().toLowerCase();
    const definition = CANDIDATES[ALIASES[key] ?? key];
    if (definition === undefined) {
      const known = [...Object.keys(CANDIDATES), ...Object.keys(ALIASES)].sort();
      throw new FerryError(
        'FERRY_ARGUMENT_INVALID',
        `unknown model '${raw}'; known models: ${known.join(', ')}`,
      );
    }
    if (!out.includes(definition)) out.push(definition);
  }
  if (out.length === 0) {
    throw new FerryError('FERRY_ARGUMENT_INVALID', 'name at least one model to train');
  }
  return out;
}
