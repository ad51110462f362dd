/**
 * Micro-batching of model predictions: concurrent `predict` calls to one model are merged into
 * one call on a table of their rows, which costs a model little more than one request and so
 * raises throughput under load. A batch is sent when it holds `maxBatchRows` rows or when its
 * oldest request has waited `maxWaitUs` microseconds, whichever comes first.
 *
 * What a caller can rely on:
 * - a request's answer is exactly what the model gives that request alone: its rows are never
 *   split across batches, never swapped with another's, and its `proba` is its own buffer;
 * - a request is shape-checked against the signature before it joins a batch, so a malformed
 *   one is refused alone (FERRY_INPUT_SHAPE) and never reaches the batch of others;
 * - when a batch fails, each of its requests is predicted again alone, so a request that makes
 *   the model throw fails only itself;
 * - the rows waiting are bounded (`maxQueuedRows`); beyond, a request is refused at once with
 *   FERRY_OVERLOADED rather than queued without limit;
 * - each batch sent is reported to a {@link BatchObserver} (rows, requests, queue delay), which
 *   {@link batchObserver} turns into the server's `ferry_batch_*` histograms.
 *
 * One batch per model runs at a time by default (`maxConcurrentBatches`), as Triton's dynamic
 * batcher does with one model instance: while it runs, the next batch fills, so batches grow
 * with load by themselves, and the bound on waiting rows is what sheds load when the model
 * cannot keep up.
 */
import type { ModelInput, ModelSignature, Prediction } from '../core/model.js';
import type { Column, Scalar, Table } from '../core/table.js';
import { FerryError } from '../errors/index.js';
import type { ServerMetrics } from './metrics.js';

export interface BatchingOptions {
  /** Rows predicted in one call at most; 1 turns batching off (predict is called directly). */
  readonly maxBatchRows: number;
  /**
   * How long the first queued request waits for others, in microseconds (0: only requests queued
   * in the same event-loop turn). Waits under 1000 µs are timed by polling on `setImmediate`,
   * which keeps one core busy while a request waits (see {@link batchPredictions}).
   */
  readonly maxWaitUs: number;
  /** Rows waiting at most; beyond, predict rejects with FERRY_OVERLOADED (default 10 * maxBatchRows). */
  readonly maxQueuedRows?: number;
  /** Batches predicting at once (default 1); the next batch fills while they run. */
  readonly maxConcurrentBatches?: number;
  /** The model's name (and version) as errors should show it, e.g. `fraud:3`. */
  readonly name?: string;
}

export interface BatchObserver {
  observe(batch: { rows: number; requests: number; queueDelaySeconds: number }): void;
  /** How long one prediction call took (a batch, or a request alone), once it answered. */
  predicted?(call: { rows: number; seconds: number }): void;
}

export interface PredictingModel {
  readonly signature: ModelSignature;
  predict(input: Table): Prediction | Promise<Prediction>;
}

/** A model whose concurrent predict calls are merged into batches. */
export interface BatchedModel {
  readonly signature: ModelSignature;
  predict(input: Table): Promise<Prediction>;
}

/** A request waiting for its batch: its columns in signature order, and how to answer it. */
interface Pending {
  readonly columns: readonly Column[];
  readonly rows: number;
  readonly enqueuedAt: bigint;
  /** Set when the wait timer armed for this request fired (libuv's clock may run ahead of hrtime). */
  due: boolean;
  readonly resolve: (prediction: Prediction) => void;
  readonly reject: (error: unknown) => void;
}

// Below a millisecond Node's timers cannot wait; polling on setImmediate can.
const TIMER_RESOLUTION_US = 1000;

/**
 * Wraps a model so that concurrent `predict` calls share model calls.
 *
 * Timing: with `maxWaitUs` 0 a batch is sent on the next `setImmediate`, so requests parsed in
 * the same I/O turn share it and none waits longer. Waits of 1000 µs and more use `setTimeout`
 * (millisecond resolution). Waits in between poll `process.hrtime` on `setImmediate`: exact to a
 * few microseconds, but the event loop then never sleeps while a request waits, so expect one
 * core near 100% under steady traffic; prefer 0 or >= 1000 unless the gain is measured.
 *
 * A request larger than `maxBatchRows` is predicted alone at once (it is a batch by itself);
 * a request of no rows too. With `maxBatchRows` 1 requests are only shape-checked and passed
 * through: no queue, no timers.
 *
 * @example
 * const batched = batchPredictions(loaded, { maxBatchRows: 64, maxWaitUs: 500, name: 'fraud:3' },
 *   batchObserver(metrics, 'fraud', '3'));
 * const { predict, proba } = await batched.predict(table);
 */
export function batchPredictions(
  model: PredictingModel,
  options: BatchingOptions,
  observer?: BatchObserver,
): BatchedModel {
  const settings = checkOptions(options);
  const signature = model.signature;
  const label = options.name === undefined ? 'this model' : `model '${options.name}'`;
  const classCount = signature.classes?.length;
  const uniqueNames = namesUnique(signature);

  function report(rows: number, requests: number, queueDelaySeconds: number): void {
    try {
      observer?.observe({ rows, requests, queueDelaySeconds });
    } catch {
      // Metrics never fail a prediction, nor leave a batch's requests unanswered.
    }
  }

  function timed(rows: number, started: number): void {
    try {
      observer?.predicted?.({ rows, seconds: (performance.now() - started) / 1000 });
    } catch {
      // As above: metrics never fail a prediction.
    }
  }

  /** Predicts one request at once, as a batch of its own. */
  async function alone(columns: readonly Column[], rows: number): Promise<Prediction> {
    report(rows, 1, 0);
    const started = performance.now();
    // `await`: an async function returning a promise as is takes extra microtask turns to
    // adopt it; awaiting it here takes one (this is every request's path when batching is off).
    const prediction = await model.predict({ columns, rowCount: rows });
    timed(rows, started);
    return prediction;
  }

  if (settings.maxBatchRows === 1) {
    return {
      signature,
      // Not `async`: `alone` already answers a promise, and wrapping it in another costs turns.
      // shapeChecked's errors still reach the caller as a rejection, as `predict` promises.
      predict: (input) => {
        try {
          return alone(shapeChecked(signature, input, label, uniqueNames), input.rowCount);
        } catch (err) {
          return Promise.reject(err as Error);
        }
      },
    };
  }

  const waiting: Pending[] = [];
  let waitingRows = 0;
  let running = 0;
  let timer: { cancel(): void } | undefined;
  const maxWaitNs = BigInt(Math.round(settings.maxWaitUs * 1000));

  /** Takes the oldest requests that fit in one batch (first come, first served: none skipped). */
  function take(): Pending[] {
    const batch: Pending[] = [];
    let rows = 0;
    while (waiting.length > 0) {
      const next = waiting[0] as Pending;
      if (batch.length > 0 && rows + next.rows > settings.maxBatchRows) break;
      batch.push(next);
      rows += next.rows;
      waiting.shift();
    }
    waitingRows -= rows;
    return batch;
  }

  /**
   * Sends every batch that is ready, as long as fewer than `maxConcurrentBatches` run: full
   * ones always, the oldest waiting one too when `onlyFull` is false and its wait is over.
   */
  function pump(onlyFull: boolean): void {
    while (waiting.length > 0 && running < settings.maxConcurrentBatches) {
      const oldest = waiting[0] as Pending;
      const full = waitingRows >= settings.maxBatchRows;
      const due =
        !onlyFull && (oldest.due || process.hrtime.bigint() - oldest.enqueuedAt >= maxWaitNs);
      if (!full && !due) break;
      if (timer) {
        // Armed for the request now leaving; the next oldest gets its own wait.
        timer.cancel();
        timer = undefined;
      }
      send(take());
    }
    arm();
  }

  /** Makes sure a wait is running for the oldest request while a batch could be sent. */
  function arm(): void {
    if (timer || waiting.length === 0 || running >= settings.maxConcurrentBatches) return;
    const oldest = waiting[0] as Pending;
    if (settings.maxWaitUs >= TIMER_RESOLUTION_US) {
      const leftNs = maxWaitNs - (process.hrtime.bigint() - oldest.enqueuedAt);
      const handle = setTimeout(
        () => {
          timer = undefined;
          oldest.due = true;
          pump(false);
        },
        Math.max(0, Math.round(Number(leftNs) / 1e6)),
      );
      timer = { cancel: () => clearTimeout(handle) };
    } else {
      // A zero wait lasts one check phase, so what the I/O phase parsed goes in one batch. A
      // wait under a millisecond: pump checks the clock on each turn and re-arms until it is over.
      const handle = setImmediate(() => {
        timer = undefined;
        pump(false);
      });
      timer = { cancel: () => clearImmediate(handle) };
    }
  }

  /**
   * Predicts a batch and answers its requests. A synchronous model (the native runtime) answers
   * before `send` returns, so it never holds a batch slot past the call and the pump that sent
   * the batch goes on; an asynchronous one (ONNX) frees its slot later and pumps then.
   */
  function send(batch: Pending[]): void {
    const first = batch[0];
    if (!first) return;
    running++;
    let returned = false;
    const finish = (): void => {
      running--;
      if (returned) pump(false);
    };
    const rows = batch.reduce((total, p) => total + p.rows, 0);
    report(rows, batch.length, Number(process.hrtime.bigint() - first.enqueuedAt) / 1e9);
    const started = performance.now();
    if (batch.length === 1) {
      call(
        () => model.predict({ columns: first.columns, rowCount: first.rows }),
        (outcome) => {
          timed(rows, started);
          answer(first, outcome);
          finish();
        },
      );
    } else {
      call(
        () => model.predict(merge(signature, batch, rows)),
        (outcome) => {
          timed(rows, started);
          const parts = outcome.ok ? split(outcome.value, batch, rows, classCount) : undefined;
          if (parts) {
            batch.forEach((p, i) => p.resolve(parts[i] as Prediction));
            finish();
          } else {
            // The batch failed (or answered with the wrong number of rows): predict each
            // request alone, one after the other as the batch would have run, so a bad request
            // fails only itself.
            retry(batch, 0, finish);
          }
        },
      );
    }
    returned = true;
  }

  function retry(batch: readonly Pending[], index: number, finish: () => void): void {
    const p = batch[index];
    if (!p) {
      finish();
      return;
    }
    call(
      () => model.predict({ columns: p.columns, rowCount: p.rows }),
      (outcome) => {
        answer(p, outcome);
        retry(batch, index + 1, finish);
      },
    );
  }

  return {
    signature,
    async predict(input) {
      const columns = shapeChecked(signature, input, label, uniqueNames);
      const rows = input.rowCount;
      if (rows === 0 || rows > settings.maxBatchRows) return alone(columns, rows);
      if (waitingRows + rows > settings.maxQueuedRows) {
        throw new FerryError(
          'FERRY_OVERLOADED',
          `the batch queue of ${label} is full (${waitingRows} rows waiting, limit ${settings.maxQueuedRows}); retry with backoff, or raise the model's max queued rows (or add workers)`,
          {
            details: {
              ...(options.name === undefined ? {} : { model: options.name }),
              waitingRows,
              maxQueuedRows: settings.maxQueuedRows,
            },
          },
        );
      }
      return new Promise<Prediction>((resolve, reject) => {
        waiting.push({
          columns,
          rows,
          enqueuedAt: process.hrtime.bigint(),
          due: false,
          resolve,
          reject,
        });
        waitingRows += rows;
        // A full batch goes now; a partial one waits for the timer (never sent from here, so
        // that a zero wait still gathers the whole I/O turn).
        pump(true);
      });
    },
  };
}

/**
 * Feeds a server's `ferry_batch_rows` and `ferry_batch_queue_delay_seconds` histograms.
 * @example batchPredictions(loaded, { maxBatchRows: 32, maxWaitUs: 0 }, batchObserver(metrics, 'fraud', '3'));
 */
export function batchObserver(
  metrics: Pick<ServerMetrics, 'batchRows' | 'batchQueueDelay' | 'predictDuration'>,
  model: string,
  version: string,
): BatchObserver {
  const labels = { model, version };
  return {
    observe(batch) {
      metrics.batchRows.observe(labels, batch.rows);
      metrics.batchQueueDelay.observe(labels, batch.queueDelaySeconds);
    },
    predicted(call) {
      metrics.predictDuration.observe(labels, call.seconds);
    },
  };
}

interface Settings {
  readonly maxBatchRows: number;
  readonly maxWaitUs: number;
  readonly maxQueuedRows: number;
  readonly maxConcurrentBatches: number;
}

function checkOptions(options: BatchingOptions): Settings {
  const { maxBatchRows, maxWaitUs } = options;
  const maxQueuedRows = options.maxQueuedRows ?? 10 * maxBatchRows;
  const maxConcurrentBatches = options.maxConcurrentBatches ?? 1;
  const fail = (what: string): never => {
    throw new FerryError(
      'FERRY_ARGUMENT_INVALID',
      `batching${options.name === undefined ? '' : ` of model '${options.name}'`}: ${what}`,
    );
  };
  if (!Number.isInteger(maxBatchRows) || maxBatchRows < 1)
    fail(`max batch rows must be an integer >= 1 (1 turns batching off), got ${maxBatchRows}`);
  if (!Number.isFinite(maxWaitUs) || maxWaitUs < 0)
    fail(`max wait must be a number of microseconds >= 0, got ${maxWaitUs}`);
  if (!Number.isInteger(maxQueuedRows) || maxQueuedRows < maxBatchRows)
    fail(
      `max queued rows must be an integer >= max batch rows (${maxBatchRows}), got ${maxQueuedRows}`,
    );
  if (!Number.isInteger(maxConcurrentBatches) || maxConcurrentBatches < 1)
    fail(`max concurrent batches must be an integer >= 1, got ${maxConcurrentBatches}`);
  return { maxBatchRows, maxWaitUs, maxQueuedRows, maxConcurrentBatches };
}

/**
 * The request's columns in signature order, or FERRY_INPUT_SHAPE naming the first column that
 * does not match. Extra columns are ignored, as `LoadedModel.predict` ignores them; an optional
 * input left out becomes a column of nulls.
 */
function shapeChecked(
  signature: ModelSignature,
  input: Table,
  label: string,
  uniqueNames: boolean,
): Column[] {
  const rows = input.rowCount;
  if (!Number.isInteger(rows) || rows < 0) {
    throw new FerryError(
      'FERRY_INPUT_SHAPE',
      `input to ${label} has a row count of ${rows}; expected a whole number of rows`,
    );
  }
  // The HTTP server hands over exactly the signature's columns in its order: checking that in one
  // pass spares a scan of every column per input (F^2 name comparisons and F arrays per request).
  if (uniqueNames && inSignatureOrder(signature, input)) return input.columns.slice();
  return signature.inputs.map((expected) => {
    const want = `one ${expected.type} column '${expected.name}' of ${rows} values (one per row)`;
    const found = input.columns.filter((c) => c.name === expected.name);
    const column = found[0];
    if (!column) {
      if (expected.optional) {
        return {
          name: expected.name,
          type: expected.type,
          values: new Array<Scalar>(rows).fill(null),
        };
      }
      throw shapeError(label, expected.name, `is missing; expected ${want}`);
    }
    if (found.length > 1) {
      throw shapeError(label, expected.name, `appears ${found.length} times; expected ${want}`);
    }
    if (column.type !== expected.type || column.values.length !== rows) {
      throw shapeError(
        label,
        expected.name,
        `is a ${column.type} column of ${column.values.length} values; expected ${want}`,
      );
    }
    return column;
  });
}

/**
 * Whether the table's columns are the signature's inputs, one each, in order, of the right type
 * and length: what the slow path of `shapeChecked` would return as is, provided no two inputs
 * share a name (names are compared pairwise, which cannot tell a column given twice from two
 * inputs of one name; the caller checks that once per signature).
 */
function inSignatureOrder(signature: ModelSignature, input: Table): boolean {
  const expected = signature.inputs;
  const columns = input.columns;
  if (columns.length !== expected.length) return false;
  for (let i = 0; i < expected.length; i++) {
    const spec = expected[i] as ModelInput;
    const column = columns[i] as Column;
    if (
      column.name !== spec.name ||
      column.type !== spec.type ||
      column.values.length !== input.rowCount
    )
      return false;
  }
  return true;
}

/** Whether no two inputs of the signature share a name (what `inSignatureOrder` needs). */
function namesUnique(signature: ModelSignature): boolean {
  return new Set(signature.inputs.map((i) => i.name)).size === signature.inputs.length;
}

function shapeError(label: string, column: string, what: string): FerryError {
  return new FerryError('FERRY_INPUT_SHAPE', `input '${column}' to ${label} ${what}`, {
    details: { input: column },
  });
}

/** The batch's table: each signature input's values of every request, in queue order. */
function merge(signature: ModelSignature, batch: readonly Pending[], rows: number): Table {
  const columns = signature.inputs.map((input, j) => {
    const values = new Array<Scalar>(rows);
    let offset = 0;
    for (const p of batch) {
      const source = (p.columns[j] as Column).values;
      for (let i = 0; i < p.rows; i++) values[offset + i] = source[i] ?? null;
      offset += p.rows;
    }
    return { name: input.name, type: input.type, values };
  });
  return { columns, rowCount: rows };
}

/**
 * Each request's share of the batch's prediction, by row range, with copies of `proba` (no
 * request holds a view of a buffer another can see). Undefined when the model answered with
 * the wrong number of rows, which the caller treats as a failed batch.
 */
function split(
  result: Prediction,
  batch: readonly Pending[],
  rows: number,
  classCount: number | undefined,
): Prediction[] | undefined {
  if (result.predict.length !== rows) return undefined;
  const proba = result.proba;
  const k = proba ? (classCount ?? proba.length / rows) : 0;
  if (proba && (!Number.isInteger(k) || proba.length !== rows * k)) return undefined;
  let offset = 0;
  return batch.map((p) => {
    const start = offset;
    offset += p.rows;
    const predict = result.predict.slice(start, offset);
    return proba ? { predict, proba: proba.slice(start * k, offset * k) } : { predict };
  });
}

type Outcome =
  | { readonly ok: true; readonly value: Prediction }
  | { readonly ok: false; readonly error: unknown };

/**
 * Runs a model call and hands its outcome to `then`: synchronously when the model answered
 * synchronously (no microtask between batches of a native model), else when its promise settles.
 */
function call(run: () => Prediction | Promise<Prediction>, then: (outcome: Outcome) => void): void {
  let value: Prediction | Promise<Prediction>;
  try {
    value = run();
  } catch (error) {
    then({ ok: false, error });
    return;
  }
  if (isPromiseLike(value)) {
    value.then(
      (prediction) => then({ ok: true, value: prediction }),
      (error: unknown) => then({ ok: false, error }),
    );
  } else {
    then({ ok: true, value });
  }
}

function isPromiseLike(
  value: Prediction | PromiseLike<Prediction>,
): value is PromiseLike<Prediction> {
  return typeof (value as { then?: unknown }).then === 'function';
}

function answer(p: Pending, outcome: Outcome): void {
  if (outcome.ok) p.resolve(outcome.value);
  else p.reject(outcome.error);
}
