/**
 * Runs a compiled graph over the records of one request: each step in order, each under its
 * time limit and error policy, the whole under the endpoint's time limit.
 *
 * - `fail` (default): the request fails with the step's error. A client error (a missing entity
 *   key, a bad value) keeps its own code; anything else becomes FERRY_STEP_FAILED naming the step.
 * - `skip`: the step's fields that are still unset become null, and the graph goes on.
 * - `default`: the step's fields take the configured values. For a model-like step that was the
 *   graph's answer, the answer becomes the default value.
 * A step that times out is abandoned: it is told (`context.cancelled()`) and never writes into
 * the batch afterwards.
 */
import type { Label, Prediction } from '../../core/model.js';
import type { Logger } from '../../core/logger.js';
import type { Row, Scalar } from '../../core/table.js';
import { FerryError, toFerryError } from '../../errors/index.js';
import type { CompiledGraph } from './compile.js';
import { MODEL_FIELD, MODEL_VERSION_FIELD } from './compile.js';
import type {
  AnsweringModel,
  CompiledStep,
  GraphBatch,
  ShadowPrediction,
  StepContext,
} from './step.js';

/** Lifecycle hooks of a graph run, for metrics and logs; each is optional and must not throw. */
export interface GraphObserver {
  /** After each step: its duration and, if it failed, the error and what the policy did. */
  onStep?(event: {
    readonly endpoint: string;
    readonly step: string;
    readonly kind: CompiledStep['kind'];
    readonly seconds: number;
    readonly error?: FerryError;
    readonly policy?: 'fail' | 'skip' | 'default';
  }): void;
  /** A shadow model's answers, made off the response path. */
  onShadow?(endpoint: string, shadow: ShadowPrediction, requestId: string): void;
}

export interface RunContext {
  readonly requestId: string;
  readonly logger: Logger;
  readonly observer?: GraphObserver;
}

export interface GraphRun {
  /** Every record with every field the steps wrote. */
  readonly rows: readonly Row[];
  /** The response of each record: the graph's response fields. */
  readonly results: Record<string, Scalar>[];
  /** The graph's answer, one entry per record (undefined when its step was skipped). */
  readonly prediction: Prediction | undefined;
  readonly answeredBy: readonly (AnsweringModel | undefined)[];
}

/**
 * @example const run = await runGraph(graph, [{ card_id: 'c1', amount: 12.5 }], { requestId, logger });
 */
export async function runGraph(
  graph: CompiledGraph,
  rows: Row[],
  context: RunContext,
): Promise<GraphRun> {
  const endpoint = graph.endpoint;
  const batch: GraphBatch = {
    rows,
    prediction: undefined,
    answeredBy: new Array<AnsweringModel | undefined>(rows.length),
  };
  let expired = false;
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      expired = true;
      reject(
        new FerryError(
          'FERRY_STEP_TIMEOUT',
          `endpoint '${endpoint.name}' took longer than its timeout of ${endpoint.timeout} ms`,
        ),
      );
    }, endpoint.timeout);
  });
  deadline.catch(() => undefined);
  try {
    for (const [index, step] of graph.steps.entries()) {
      await Promise.race([runStep(graph, index, step, batch, context, () => expired), deadline]);
    }
  } finally {
    clearTimeout(timer);
  }
  const results = rows.map((row, i) => {
    const out: Record<string, Scalar> = {};
    const by = batch.answeredBy[i];
    for (const field of graph.response) {
      if (field.name === MODEL_FIELD) out[field.name] = by?.model ?? null;
      else if (field.name === MODEL_VERSION_FIELD) out[field.name] = by?.version ?? null;
      else out[field.name] = row[field.name] ?? null;
    }
    return out;
  });
  return { rows, results, prediction: batch.prediction, answeredBy: batch.answeredBy };
}

async function runStep(
  graph: CompiledGraph,
  index: number,
  step: CompiledStep,
  batch: GraphBatch,
  run: RunContext,
  graphExpired: () => boolean,
): Promise<void> {
  const spec = graph.endpoint.steps[index];
  if (!spec) return;
  const started = performance.now();
  let stepExpired = false;
  const context: StepContext = {
    endpoint: graph.endpoint.name,
    requestId: run.requestId,
    logger: run.logger,
    cancelled: () => stepExpired || graphExpired(),
    shadow: (shadow) => run.observer?.onShadow?.(graph.endpoint.name, shadow, run.requestId),
  };
  let error: FerryError | undefined;
  try {
    const pending = step.run(batch, context);
    if (pending) {
      if (spec.timeout === undefined) {
        await pending;
      } else {
        let timer: NodeJS.Timeout | undefined;
        const limit = spec.timeout;
        await Promise.race([
          pending,
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => {
              stepExpired = true;
              reject(
                new FerryError(
                  'FERRY_STEP_TIMEOUT',
                  `endpoint '${graph.endpoint.name}', step '${step.name}' took longer than its timeout of ${limit} ms`,
                ),
              );
            }, limit);
          }),
        ]).finally(() => clearTimeout(timer));
      }
    }
  } catch (err) {
    error = toFerryError(err);
    stepExpired = true;
  }
  const seconds = (performance.now() - started) / 1000;
  if (!error) {
    run.observer?.onStep?.({
      endpoint: graph.endpoint.name,
      step: step.name,
      kind: step.kind,
      seconds,
    });
    return;
  }
  const policy = spec.on_error;
  run.observer?.onStep?.({
    endpoint: graph.endpoint.name,
    step: step.name,
    kind: step.kind,
    seconds,
    error,
    policy,
  });
  if (graphExpired()) return;
  if (policy === 'fail') {
    if (
      error.status < 500 ||
      error.code === 'FERRY_STEP_TIMEOUT' ||
      error.code === 'FERRY_OVERLOADED'
    )
      throw error;
    throw new FerryError(
      'FERRY_STEP_FAILED',
      `endpoint '${graph.endpoint.name}', step '${step.name}' failed: ${error.message}`,
      { cause: error },
    );
  }
  run.logger.warn(
    {
      endpoint: graph.endpoint.name,
      step: step.name,
      code: error.code,
      policy,
      requestId: run.requestId,
    },
    `step failed; ${policy === 'skip' ? 'skipped' : 'default values used'}: ${error.message}`,
  );
  const defaults = policy === 'default' ? (spec.default ?? {}) : {};
  for (const row of batch.rows) {
    for (const w of step.writes) {
      if (policy === 'default') row[w.name] = defaults[w.name] ?? null;
      else if (row[w.name] === undefined) row[w.name] = null;
    }
  }
  if (step.predicts && policy === 'default') {
    const output = step.writes[0]?.name;
    const value = output === undefined ? null : (defaults[output] ?? null);
    batch.prediction =
      value === null ? undefined : { predict: batch.rows.map(() => value as Label) };
    batch.answeredBy.fill(undefined);
  }
}
