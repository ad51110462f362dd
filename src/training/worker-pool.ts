/**
 * Where candidates are evaluated: in this thread, or on worker threads (node:worker_threads)
 * that each receive the selection data once, as transferable typed arrays, and then evaluate one
 * candidate at a time. Evaluation is pure (`evaluate.ts`), so the results do not depend on which
 * executor or how many workers ran them.
 *
 * The worker entry is `search-worker` beside this file, started by `spawn-worker.ts`. A worker
 * that cannot start or crashes hands its task back; when no worker is left, the remaining tasks
 * run in this thread.
 */
import type { Worker } from 'node:worker_threads';
import type { ModelSignature } from '../core/model.js';
import type { ColumnType, Scalar, Table } from '../core/table.js';
import {
  evaluateCandidate,
  type FitProgress,
  type Evaluation,
  type EvaluationTask,
  type SelectionData,
} from './evaluate.js';
import { spawnWorker } from './spawn-worker.js';
import type { Fold } from './split.js';

export interface Executor {
  /** Candidates that may run at the same time. */
  readonly parallelism: number;
  /** 'in-process' or 'workers'; a pool whose workers all failed reports 'in-process'. */
  readonly kind: () => 'in-process' | 'workers';
  run(task: EvaluationTask): Promise<Evaluation>;
  close(): Promise<void>;
}

/**
 * Evaluates on the calling thread, one candidate at a time; `observe` hears every boosting round
 * (worker threads report only finished candidates).
 */
export function inProcessExecutor(
  data: SelectionData,
  observe?: (task: EvaluationTask, progress: FitProgress) => void,
): Executor {
  return {
    parallelism: 1,
    kind: () => 'in-process',
    run: (task) => {
      // Let timers and progress output run between candidates.
      return new Promise((resolve, reject) =>
        setImmediate(() => {
          try {
            resolve(
              evaluateCandidate(
                data,
                task,
                observe === undefined ? undefined : (progress) => observe(task, progress),
              ),
            );
          } catch (error) {
            reject(error instanceof Error ? error : new Error(String(error)));
          }
        }),
      );
    },
    close: () => Promise.resolve(),
  };
}

interface WireColumn {
  readonly name: string;
  readonly type: ColumnType;
  /** Numeric columns: the values, with NaN where `nulls` is 1. */
  readonly numbers?: Float64Array;
  readonly nulls?: Uint8Array;
  /** Other columns, as they are. */
  readonly values?: Scalar[];
}

/** The selection data as a worker receives it. */
export interface WireData {
  readonly columns: WireColumn[];
  readonly rowCount: number;
  readonly signature: ModelSignature;
  readonly task: SelectionData['problem']['task'];
  readonly objective: SelectionData['problem']['objective'];
  readonly nClasses: number;
  readonly y: Float64Array;
  readonly folds: { train: Uint32Array; valid: Uint32Array }[];
  readonly seed: number;
}

/** Fresh copies in typed arrays, with the list of buffers to transfer. */
export function encodeSelectionData(data: SelectionData): {
  wire: WireData;
  transfer: ArrayBuffer[];
} {
  const transfer: ArrayBuffer[] = [];
  const columns = data.table.columns.map((c): WireColumn => {
    const numeric = c.type === 'float' || c.type === 'int' || c.type === 'timestamp';
    if (!numeric || !c.values.every((v) => v === null || typeof v === 'number')) {
      return { name: c.name, type: c.type, values: c.values };
    }
    const numbers = new Float64Array(c.values.length);
    const nulls = new Uint8Array(c.values.length);
    c.values.forEach((v, i) => {
      if (v === null) {
        numbers[i] = NaN;
        nulls[i] = 1;
      } else numbers[i] = v as number;
    });
    transfer.push(numbers.buffer, nulls.buffer);
    return { name: c.name, type: c.type, numbers, nulls };
  });
  const y = Float64Array.from(data.problem.y);
  const folds = data.folds.map((f) => ({
    train: Uint32Array.from(f.train),
    valid: Uint32Array.from(f.valid),
  }));
  transfer.push(y.buffer, ...folds.flatMap((f) => [f.train.buffer, f.valid.buffer]));
  return {
    wire: {
      columns,
      rowCount: data.table.rowCount,
      signature: data.signature,
      task: data.problem.task,
      objective: data.problem.objective,
      nClasses: data.problem.nClasses,
      y,
      folds,
      seed: data.seed,
    },
    transfer,
  };
}

export function decodeSelectionData(wire: WireData): SelectionData {
  const table: Table = {
    rowCount: wire.rowCount,
    columns: wire.columns.map((c) => {
      if (c.values !== undefined) return { name: c.name, type: c.type, values: c.values };
      const numbers = c.numbers as Float64Array;
      const nulls = c.nulls as Uint8Array;
      const values: Scalar[] = new Array<Scalar>(numbers.length);
      for (let i = 0; i < numbers.length; i++) values[i] = nulls[i] ? null : (numbers[i] as number);
      return { name: c.name, type: c.type, values };
    }),
  };
  const folds: Fold[] = wire.folds.map((f) => ({ train: f.train, valid: f.valid }));
  return {
    table,
    signature: wire.signature,
    problem: { task: wire.task, objective: wire.objective, nClasses: wire.nClasses, y: wire.y },
    folds,
    seed: wire.seed,
  };
}

/** Messages between the pool and a worker. */
export interface WorkerRequest {
  readonly id: number;
  readonly task: EvaluationTask;
}
export type WorkerReply =
  | { readonly id: number; readonly ok: true; readonly evaluation: Evaluation }
  | { readonly id: number; readonly ok: false; readonly message: string };

function startWorker(data: SelectionData): Worker {
  const { wire, transfer } = encodeSelectionData(data);
  return spawnWorker(import.meta.url, 'search-worker', {
    workerData: wire,
    transferList: transfer,
  });
}

interface Pending {
  readonly id: number;
  readonly task: EvaluationTask;
  readonly resolve: (evaluation: Evaluation) => void;
  readonly reject: (error: Error) => void;
}

/**
 * Up to `workers` worker threads, started lazily on the first task.
 * @example const pool = workerExecutor(data, 2); const e = await pool.run(task); await pool.close();
 */
export function workerExecutor(data: SelectionData, workers: number): Executor {
  const fallback = inProcessExecutor(data);
  const idle: Worker[] = [];
  const busy = new Map<Worker, Pending>();
  const queue: Pending[] = [];
  let started = false;
  let alive = 0;
  let nextId = 0;
  let closed = false;

  const runInProcess = (p: Pending): void => {
    fallback.run(p.task).then(p.resolve, p.reject);
  };

  const dispatch = (): void => {
    while (queue.length > 0) {
      if (alive === 0) {
        runInProcess(queue.shift() as Pending);
        continue;
      }
      const worker = idle.pop();
      if (worker === undefined) return;
      const pending = queue.shift() as Pending;
      busy.set(worker, pending);
      worker.postMessage({ id: pending.id, task: pending.task } satisfies WorkerRequest);
    }
  };

  const retire = (worker: Worker): void => {
    const pending = busy.get(worker);
    busy.delete(worker);
    const at = idle.indexOf(worker);
    if (at >= 0) idle.splice(at, 1);
    alive--;
    // The task goes back to the front: another worker, or this thread, runs it.
    if (pending !== undefined) queue.unshift(pending);
    void worker.terminate();
    dispatch();
  };

  const start = (): void => {
    started = true;
    for (let w = 0; w < workers; w++) {
      let worker: Worker;
      try {
        worker = startWorker(data);
      } catch {
        continue;
      }
      alive++;
      idle.push(worker);
      worker.on('message', (reply: WorkerReply) => {
        const pending = busy.get(worker);
        if (pending === undefined || pending.id !== reply.id) return;
        busy.delete(worker);
        idle.push(worker);
        if (reply.ok) pending.resolve(reply.evaluation);
        else pending.reject(new Error(reply.message));
        dispatch();
      });
      worker.on('error', () => retire(worker));
      worker.on('exit', () => {
        if (!closed && (busy.has(worker) || idle.includes(worker))) retire(worker);
      });
    }
  };

  return {
    parallelism: Math.max(1, workers),
    kind: () => (alive > 0 ? 'workers' : 'in-process'),
    run: (task) =>
      new Promise<Evaluation>((resolve, reject) => {
        if (!started) start();
        queue.push({ id: nextId++, task, resolve, reject });
        dispatch();
      }),
    close: async () => {
      closed = true;
      const all = [...idle, ...busy.keys()];
      idle.length = 0;
      busy.clear();
      await Promise.all(all.map((w) => w.terminate()));
    },
  };
}
