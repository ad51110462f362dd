/**
 * Hyperparameter search: which configurations of which algorithms to try (defaults, grid,
 * seeded random, successive halving on rows), and the scheduler that evaluates them on an
 * executor (this thread or worker threads) within a time budget, keeping a leaderboard.
 *
 * Every plan starts with each algorithm at its defaults, marked mandatory: those launch
 * whatever the budget says, so each algorithm ends with at least one trained candidate. Other
 * candidates launch while the time spent plus the expected time of the candidate (the mean of
 * its algorithm's finished ones) stays within the budget. The clock is injectable so tests can
 * check the budget by the candidates launched rather than by wall-clock time.
 *
 * Results do not depend on the number of workers: each evaluation is a pure function of its
 * configuration, successive halving waits for a whole rung before choosing survivors, and the
 * leaderboard is in plan order. Only the budget, which reads a clock, can change what runs.
 */
import type { Task } from '../core/model.js';
import { FerryError } from '../errors/index.js';
import type {
  CandidateDefinition,
  ParamDomain,
  ParamValue,
  Params,
  SearchSpace,
} from './candidates.js';
import type { Evaluation } from './evaluate.js';
import type { NativeModelDocument } from './native-model.js';
import { createRng } from './random.js';
import type { Executor } from './worker-pool.js';

export type SearchStrategy = 'defaults' | 'grid' | 'random' | 'halving';
export const SEARCH_STRATEGIES: readonly SearchStrategy[] = [
  'defaults',
  'grid',
  'random',
  'halving',
];

/** One configuration to evaluate. */
export interface CandidateConfig {
  /** Leaderboard name: the algorithm's name for its defaults, `<name>_<k>` for the k-th. */
  readonly name: string;
  readonly algorithm: string;
  readonly params: Params;
  /** Launched whatever the budget: each algorithm's defaults. */
  readonly mandatory: boolean;
}

/** A metric and whether higher is better. */
export type SelectionKey = readonly [metric: string, higherIsBetter: boolean];

/** Metrics a search can select on, with their direction and task. */
export const SELECTION_METRICS: Readonly<
  Record<string, { readonly higherIsBetter: boolean; readonly task: Task }>
> = {
  roc_auc: { higherIsBetter: true, task: 'classification' },
  log_loss: { higherIsBetter: false, task: 'classification' },
  accuracy: { higherIsBetter: true, task: 'classification' },
  f1_macro: { higherIsBetter: true, task: 'classification' },
  f1_weighted: { higherIsBetter: true, task: 'classification' },
  pr_auc: { higherIsBetter: true, task: 'classification' },
  precision_macro: { higherIsBetter: true, task: 'classification' },
  precision_weighted: { higherIsBetter: true, task: 'classification' },
  recall_macro: { higherIsBetter: true, task: 'classification' },
  recall_weighted: { higherIsBetter: true, task: 'classification' },
  rmse: { higherIsBetter: false, task: 'regression' },
  mae: { higherIsBetter: false, task: 'regression' },
  r2: { higherIsBetter: true, task: 'regression' },
  mape: { higherIsBetter: false, task: 'regression' },
};

/**
 * Selection keys for a task: the named metric (or the task's default) then tie-breakers.
 * Defaults: ROC AUC for binary, log loss for multiclass, RMSE for regression.
 * @example selectionKeys('regression', false, 'mae') // [['mae', false], ['rmse', false]]
 */
export function selectionKeys(task: Task, multiclass: boolean, metric?: string): SelectionKey[] {
  const defaults: SelectionKey[] =
    task === 'regression'
      ? [
          ['rmse', false],
          ['mae', false],
        ]
      : multiclass
        ? [
            ['log_loss', false],
            ['accuracy', true],
          ]
        : [
            ['roc_auc', true],
            ['log_loss', false],
          ];
  if (metric === undefined) return defaults;
  const known = SELECTION_METRICS[metric];
  if (known === undefined || known.task !== task) {
    const names = Object.entries(SELECTION_METRICS)
      .filter(([, m]) => m.task === task)
      .map(([name]) => name);
    throw new FerryError(
      'FERRY_ARGUMENT_INVALID',
      `metric '${metric}' does not apply to ${task}; choose one of ${names.join(', ')}`,
    );
  }
  return [[metric, known.higherIsBetter], ...defaults.filter(([m]) => m !== metric)];
}

/** Negative when `a` is the better. NaN and missing scores lose. */
export function compareMetrics(
  a: Readonly<Record<string, number>>,
  b: Readonly<Record<string, number>>,
  keys: readonly SelectionKey[],
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

function sameParams(a: Params, b: Params): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => a[k] === b[k]);
}

/**
 * Every combination of the space's grid values, the defaults first (once).
 * @example gridConfigs({ a: { kind: 'choice', values: [1, 2] } }, { a: 1 }) // [{ a: 1 }, { a: 2 }]
 */
export function gridConfigs(space: SearchSpace, defaults: Params): Params[] {
  let combos: Record<string, ParamValue>[] = [{}];
  for (const [key, domain] of Object.entries(space)) {
    const values = domain.kind === 'choice' ? domain.values : domain.grid;
    combos = combos.flatMap((c) => values.map((v) => ({ ...c, [key]: v })));
  }
  const out: Params[] = [defaults];
  for (const c of combos) {
    const params = { ...defaults, ...c };
    if (!out.some((p) => sameParams(p, params))) out.push(params);
  }
  return out;
}

function draw(domain: ParamDomain, rand: () => number): ParamValue {
  if (domain.kind === 'choice') {
    return domain.values[Math.floor(rand() * domain.values.length)] as ParamValue;
  }
  const u = rand();
  let v = domain.log
    ? Math.exp(Math.log(domain.low) + u * (Math.log(domain.high) - Math.log(domain.low)))
    : domain.low + u * (domain.high - domain.low);
  if (domain.kind === 'int') v = Math.round(v);
  // Four significant digits: readable in a leaderboard, and the same on every machine.
  return Number(v.toPrecision(4));
}

/**
 * The defaults, then `trials - 1` seeded draws from the space.
 * @example randomConfigs(space, defaults, 10, createRng(7)).length // 10
 */
export function randomConfigs(
  space: SearchSpace,
  defaults: Params,
  trials: number,
  rand: () => number,
): Params[] {
  const out: Params[] = [defaults];
  const entries = Object.entries(space);
  // Spaces without freedom (or tiny ones) cannot give `trials` distinct draws: stop trying.
  for (let attempt = 0; out.length < trials && attempt < trials * 20; attempt++) {
    const params: Record<string, ParamValue> = { ...defaults };
    for (const [key, domain] of entries) params[key] = draw(domain, rand);
    if (!out.some((p) => sameParams(p, params))) out.push(params);
  }
  return out;
}

/** Configurations per algorithm for a strategy. */
export const DEFAULT_TRIALS = 10;

/**
 * The candidates a strategy tries, interleaved across algorithms (defaults of each first), so
 * a budget that runs out cuts every algorithm's search alike.
 * @example planCandidates([CANDIDATES.gbdt], 'regression', 'random', 5, 7, 800).length // 5
 */
export function planCandidates(
  definitions: readonly CandidateDefinition[],
  task: Task,
  strategy: SearchStrategy,
  trials: number,
  seed: number,
  rows: number,
): CandidateConfig[] {
  const perAlgorithm = definitions.map((d, a) => {
    const defaults = d.defaults(task, rows);
    const params =
      strategy === 'defaults'
        ? [defaults]
        : strategy === 'grid'
          ? gridConfigs(d.space(task), defaults)
          : randomConfigs(d.space(task), defaults, trials, createRng(seed * 1009 + a + 1));
    const name = d.name(task);
    return params.map((p, k): CandidateConfig => ({
      name: k === 0 ? name : `${name}_${k + 1}`,
      algorithm: d.id,
      params: p,
      mandatory: k === 0,
    }));
  });
  const out: CandidateConfig[] = [];
  const longest = Math.max(...perAlgorithm.map((p) => p.length));
  for (let k = 0; k < longest; k++) {
    for (const list of perAlgorithm) if (k < list.length) out.push(list[k] as CandidateConfig);
  }
  return out;
}

/** One evaluated (or failed) candidate. */
export interface LeaderboardEntry {
  readonly name: string;
  readonly algorithm: string;
  /** Parameters as fitted, boosting rounds included. */
  readonly params: Record<string, ParamValue>;
  /** Validation metrics; empty when it failed. */
  readonly metrics: Record<string, number>;
  /** Time to validate it (all folds), by the search's clock. */
  readonly seconds: number;
  /** Successive halving: the rung (0 first) and the share of training rows used. */
  readonly rung: number;
  readonly rowFraction: number;
  readonly error?: string;
}

export interface SearchProgress {
  /** Evaluations finished and planned (the plan shrinks when the budget stops launches). */
  readonly done: number;
  readonly total: number;
  readonly entry: LeaderboardEntry;
  /** The best finished candidate so far by the selection metric. */
  readonly best: LeaderboardEntry | null;
  /** Milliseconds of budget left, or null without a budget. */
  readonly timeLeftMs: number | null;
}

export interface SearchOptions {
  readonly strategy: SearchStrategy;
  readonly keys: readonly SelectionKey[];
  /** Stop launching (non-mandatory) candidates past this many milliseconds. */
  readonly timeBudgetMs?: number;
  /** Milliseconds; default `performance.now`. */
  readonly clock?: () => number;
  /** Successive halving: survivors are the best 1 / factor of a rung (default 3). */
  readonly halvingFactor?: number;
  /** Successive halving: the least training rows per fold a rung may use (default 40). */
  readonly minRows?: number;
  /** Training rows per fold at full size (for successive halving's first rung). */
  readonly trainRows: number;
  readonly onProgress?: (progress: SearchProgress) => void;
}

export interface SearchResult {
  /** Every evaluation, in plan order (rung by rung for successive halving). */
  readonly leaderboard: LeaderboardEntry[];
  /** The winner: the best at the largest row fraction evaluated. */
  readonly best: LeaderboardEntry;
  /** The winner's validated model, when its evaluation handed one back (`Evaluation.model`). */
  readonly bestModel: NativeModelDocument | null;
  /** Configurations in the plan. */
  readonly planned: number;
  /** Evaluations started (successive halving evaluates its survivors again, on more rows). */
  readonly launched: number;
  /** True when the budget kept some candidates from launching. */
  readonly budgetExhausted: boolean;
}

interface Scheduled {
  readonly config: CandidateConfig;
  readonly rung: number;
  readonly rowFraction: number;
}

/**
 * Runs the plan on the executor and returns the leaderboard and the winner.
 * @example const result = await runSearch(plan, executor, { strategy: 'random', keys, trainRows: 800 });
 */
export async function runSearch(
  plan: readonly CandidateConfig[],
  executor: Executor,
  options: SearchOptions,
): Promise<SearchResult> {
  const clock = options.clock ?? ((): number => performance.now());
  const started = clock();
  const budget = options.timeBudgetMs;
  const durations = new Map<string, number[]>();
  const leaderboard: LeaderboardEntry[] = [];
  let best: LeaderboardEntry | null = null;
  let bestModel: NativeModelDocument | null = null;
  let launched = 0;
  let budgetExhausted = false;
  let total = 0;
  // Boosting inside a candidate stops at the budget too, on the wall clock worker threads share;
  // a model's defaults, which launch whatever the budget, get at least an equal share of it.
  const budgetEnd = budget === undefined ? undefined : Date.now() + budget;
  const models = new Set(plan.map((c) => c.algorithm)).size;
  const stopAt = (mandatory: boolean): number | undefined =>
    budgetEnd === undefined || budget === undefined
      ? undefined
      : mandatory
        ? Math.max(budgetEnd, Date.now() + budget / models)
        : budgetEnd;

  const fits = (algorithm: string): boolean => {
    if (budget === undefined) return true;
    const spent = clock() - started;
    const past = durations.get(algorithm) ?? [];
    const expected = past.length === 0 ? 0 : past.reduce((s, d) => s + d, 0) / past.length;
    return spent + expected <= budget;
  };

  /** Evaluates a rung in parallel; entries come back in the rung's order. */
  const runRung = async (rung: readonly Scheduled[]): Promise<LeaderboardEntry[]> => {
    total += rung.length;
    const results: (LeaderboardEntry | undefined)[] = new Array(rung.length);
    let next = 0;
    const lane = async (): Promise<void> => {
      while (next < rung.length) {
        const index = next++;
        const item = rung[index] as Scheduled;
        if (!item.config.mandatory && !fits(item.config.algorithm)) {
          budgetExhausted = true;
          total--;
          continue;
        }
        launched++;
        const t0 = clock();
        let entry: LeaderboardEntry;
        let model: NativeModelDocument | null = null;
        const base = {
          name: item.config.name,
          algorithm: item.config.algorithm,
          rung: item.rung,
          rowFraction: item.rowFraction,
        };
        try {
          const until = stopAt(item.config.mandatory);
          const evaluation: Evaluation = await executor.run({
            algorithm: item.config.algorithm,
            params: item.config.params,
            rowFraction: item.rowFraction,
            ...(until === undefined ? {} : { stopAt: until }),
          });
          const ms = clock() - t0;
          model = evaluation.model ?? null;
          entry = {
            ...base,
            params: evaluation.params,
            metrics: evaluation.metrics,
            seconds: ms / 1000,
          };
          const list = durations.get(item.config.algorithm) ?? [];
          list.push(ms);
          durations.set(item.config.algorithm, list);
        } catch (error) {
          entry = {
            ...base,
            params: { ...item.config.params },
            metrics: {},
            seconds: (clock() - t0) / 1000,
            error: error instanceof Error ? error.message : String(error),
          };
        }
        results[index] = entry;
        if (entry.error === undefined && (best === null || better(entry, best))) {
          best = entry;
          bestModel = model;
        }
        options.onProgress?.({
          done: leaderboard.length + results.filter((r) => r !== undefined).length,
          total,
          entry,
          best,
          timeLeftMs: budget === undefined ? null : Math.max(0, budget - (clock() - started)),
        });
      }
    };
    await Promise.all(Array.from({ length: Math.min(executor.parallelism, rung.length) }, lane));
    const done = results.filter((r): r is LeaderboardEntry => r !== undefined);
    leaderboard.push(...done);
    return done;
  };

  // A larger row fraction beats a smaller one: only full-size scores compare fairly.
  const better = (a: LeaderboardEntry, b: LeaderboardEntry): boolean =>
    a.rowFraction !== b.rowFraction
      ? a.rowFraction > b.rowFraction
      : compareMetrics(a.metrics, b.metrics, options.keys) < 0;

  if (options.strategy !== 'halving') {
    await runRung(plan.map((config) => ({ config, rung: 0, rowFraction: 1 })));
  } else {
    const factor = options.halvingFactor ?? 3;
    const minRows = options.minRows ?? 40;
    let rungs = Math.floor(Math.log(plan.length) / Math.log(factor) + 1e-9) + 1;
    while (rungs > 1 && options.trainRows * factor ** -(rungs - 1) < minRows) rungs--;
    let survivors = [...plan];
    for (let r = 0; r < rungs && survivors.length > 0; r++) {
      const rowFraction = r === rungs - 1 ? 1 : factor ** -(rungs - 1 - r);
      const entries = await runRung(
        survivors.map((config, i) => ({
          // Past the first rung nothing is mandatory: every algorithm has been trained.
          config: r === 0 ? config : { ...config, mandatory: i === 0 },
          rung: r,
          rowFraction,
        })),
      );
      const ranked = entries
        .filter((e) => e.error === undefined)
        .sort((a, b) => compareMetrics(a.metrics, b.metrics, options.keys));
      const keep = Math.max(1, Math.ceil(ranked.length / factor));
      const names = new Set(ranked.slice(0, keep).map((e) => e.name));
      survivors = survivors.filter((c) => names.has(c.name));
      // Keep the order of the ranking so the best goes first (it is the one kept on a budget).
      survivors.sort(
        (a, b) =>
          ranked.findIndex((e) => e.name === a.name) - ranked.findIndex((e) => e.name === b.name),
      );
    }
  }
  const winner = best as LeaderboardEntry | null;
  if (winner === null) {
    const reasons = leaderboard.map((e) => `${e.name}: ${e.error ?? 'no score'}`);
    throw new FerryError('FERRY_TRAINING_FAILED', `every candidate failed: ${reasons.join('; ')}`);
  }
  return {
    leaderboard,
    best: winner,
    bestModel,
    planned: plan.length,
    launched,
    budgetExhausted,
  };
}
