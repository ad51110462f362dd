/**
 * Gradient histograms of the boosting learner (`gbdt.ts`), built on more than one core.
 *
 * A histogram sums each row's gradient and hessian into the bin of every feature: the hottest
 * loop of training. The rows of a large leaf are cut into chunks whose count depends only on the
 * number of rows; each chunk is summed into its own buffer and the buffers are added in chunk
 * order. The sums, and so the model, are therefore the same whether one thread or several did
 * the chunks: training stays deterministic for a seed on any machine.
 *
 * Helper threads (`histogram-worker.ts`) share the binned matrix, the gradients and the row
 * order through SharedArrayBuffers. The fitting thread publishes a job in a control array,
 * wakes the helpers, claims chunks itself from the same counter, and waits (`Atomics.wait`) for
 * the last chunk. Helpers start in the background on the first large fit; until one has taken
 * the fit's buffers, the fitting thread does every chunk alone. Only the main thread uses
 * helpers: worker threads of a search already keep the cores busy.
 */
import { availableParallelism } from 'node:os';
import { isMainThread, type Worker } from 'node:worker_threads';
import { FerryError } from '../../errors/index.js';
import { spawnWorker } from '../spawn-worker.js';

/**
 * Doubles per histogram slot: gradient and hessian sums. No row count: it would cost a third more
 * time in the hottest loop, and the hessian serves as the size of a child.
 */
export const SLOT = 2;

/** A leaf of fewer rows than twice this is summed in one piece. */
const CHUNK_ROWS = 8192;
const MAX_CHUNKS = 8;
/** Helpers start only for fits of at least this many rows (small fits would not gain). */
const THREADED_MIN_ROWS = 50_000;
const MAX_HELPERS = 3;
/** No chunk finished for this long while one was claimed: the helper that claimed it is gone. */
const HELPER_STALL_MS = 60_000;

/** Layout of the control array shared with the helpers. */
const CTRL = {
  /** Bumped for every job; helpers wait on it. */
  generation: 0,
  /** Fit the current job belongs to. */
  fit: 1,
  start: 2,
  end: 3,
  chunks: 4,
  /** Features the job sums: the first `active` of the feature order, or -1 for all. */
  active: 5,
  /** The job's generation (low 23 bits) × 256 + the next chunk to claim; see `claimChunk`. */
  next: 6,
  /** Chunks finished. */
  done: 7,
  /** Per helper: the last fit whose buffers it took. */
  ack: 8,
} as const;
const CTRL_SIZE = CTRL.ack + MAX_HELPERS;

/** The arrays a fit and its helpers share. */
export interface HistogramSpace {
  readonly rows: number;
  readonly features: number;
  /**
   * Row-major slots: feature f of row r at `r * features + f`, its value bin, or the feature's
   * bin count for a missing value (the slot after its last value bin).
   */
  readonly bins: Uint8Array;
  /**
   * Where each feature's slots start in a histogram (in doubles), and the histogram's size at
   * index `features`: a feature with few distinct values takes few slots, so that zeroing,
   * subtracting and scanning histograms cost what the data needs, not 256 slots per feature.
   */
  readonly offsets: Uint32Array;
  /** Gradient and hessian of row r at 2r and 2r + 1. */
  readonly gh: Float64Array;
  /** Row order: each leaf's rows are a contiguous range of it. */
  readonly idx: Uint32Array;
  /** Features of the current tree under column sampling, ascending, first `active` ones. */
  readonly featureOrder: Uint32Array;
  /** One histogram buffer per chunk. */
  readonly chunkHists: readonly Float64Array[];
}

/** What a helper receives once per fit. */
export interface HistogramFitMessage {
  readonly fit: number;
  readonly rows: number;
  readonly features: number;
  readonly bins: SharedArrayBuffer;
  readonly offsets: SharedArrayBuffer;
  readonly gh: SharedArrayBuffer;
  readonly idx: SharedArrayBuffer;
  readonly featureOrder: SharedArrayBuffer;
  readonly chunkHists: readonly SharedArrayBuffer[];
}

/**
 * Adds rows `idx[start..end)` into `hist`: all features, or the first `active` of `order`.
 * The one kernel of the fitting thread and of the helpers.
 */
export function accumulateRows(
  hist: Float64Array,
  space: Pick<HistogramSpace, 'bins' | 'offsets' | 'gh' | 'idx' | 'featureOrder' | 'features'>,
  start: number,
  end: number,
  active: number,
): void {
  const { bins, offsets, gh, idx, featureOrder, features: nf } = space;
  if (active >= 0) {
    for (let p = start; p < end; p++) {
      const r = idx[p] as number;
      const gr = gh[2 * r] as number;
      const hr = gh[2 * r + 1] as number;
      const base = r * nf;
      for (let a = 0; a < active; a++) {
        const f = featureOrder[a] as number;
        const j = (offsets[f] as number) + (bins[base + f] as number) * SLOT;
        hist[j] = (hist[j] as number) + gr;
        hist[j + 1] = (hist[j + 1] as number) + hr;
      }
    }
    return;
  }
  for (let p = start; p < end; p++) {
    const r = idx[p] as number;
    const gr = gh[2 * r] as number;
    const hr = gh[2 * r + 1] as number;
    const base = r * nf;
    for (let f = 0; f < nf; f++) {
      const j = (offsets[f] as number) + (bins[base + f] as number) * SLOT;
      hist[j] = (hist[j] as number) + gr;
      hist[j + 1] = (hist[j + 1] as number) + hr;
    }
  }
}

/** Chunks for a leaf of `rows` rows: a function of the row count alone. */
export function chunkCount(rows: number): number {
  return Math.min(MAX_CHUNKS, Math.floor(rows / CHUNK_ROWS));
}

/** Row range of chunk c of `chunks` over [start, end). */
export function chunkRange(
  start: number,
  end: number,
  chunks: number,
  c: number,
): [number, number] {
  const size = end - start;
  return [start + Math.floor((size * c) / chunks), start + Math.floor((size * (c + 1)) / chunks)];
}

const GENERATION_MASK = 0x7fffff;

/**
 * Claims the next chunk of the job of `generation`, or returns -1 when none is left. The claim
 * is a compare-and-swap on a word that carries the generation, so a thread still looping on an
 * earlier job can never take a chunk of the next one.
 */
function claimChunk(ctrl: Int32Array, generation: number, chunks: number): number {
  for (;;) {
    const v = Atomics.load(ctrl, CTRL.next);
    if (v >>> 8 !== (generation & GENERATION_MASK)) return -1;
    const c = v & 0xff;
    if (c >= chunks) return -1;
    if (Atomics.compareExchange(ctrl, CTRL.next, v, v + 1) === v) return c;
  }
}

interface Pool {
  readonly ctrl: Int32Array;
  readonly helpers: Worker[];
  /** Settles once every helper has started or failed. */
  readonly ready: Promise<void>;
}

let pool: Pool | null = null;
let fits = 0;

function helperCount(): number {
  return isMainThread ? Math.min(MAX_HELPERS, availableParallelism() - 1) : 0;
}

function startPool(): Pool | null {
  if (pool !== null) return pool;
  const count = helperCount();
  if (count <= 0) return null;
  const ctrl = new Int32Array(new SharedArrayBuffer(CTRL_SIZE * 4));
  const helpers: Worker[] = [];
  const started: Promise<void>[] = [];
  for (let h = 0; h < count; h++) {
    try {
      const worker = spawnWorker(import.meta.url, 'histogram-worker', {
        workerData: { ctrl: ctrl.buffer, slot: CTRL.ack + h },
      });
      // Helpers never keep the process alive, and a helper that fails only leaves its chunks
      // to the fitting thread.
      worker.unref();
      worker.on('error', () => {});
      helpers.push(worker);
      started.push(
        new Promise<void>((resolve) => {
          worker.once('message', () => resolve());
          worker.once('error', () => resolve());
          worker.once('exit', () => resolve());
        }),
      );
    } catch {
      break;
    }
  }
  pool = { ctrl, helpers, ready: Promise.all(started).then(() => {}) };
  return pool;
}

/**
 * Starts the helper threads and resolves once each has started (or failed to), so that the
 * next large fit uses them from its first tree. Optional: a fit starts them anyway.
 * @example await startHistogramHelpers(); fitGbdt(x, y, options);
 */
export async function startHistogramHelpers(): Promise<number> {
  const started = startPool();
  if (started === null) return 0;
  await started.ready;
  return started.helpers.length;
}

function shared(bytes: number): SharedArrayBuffer {
  return new SharedArrayBuffer(Math.max(8, bytes));
}

/**
 * Builds the histograms of one fit. `threads`: 1 keeps the work on the fitting thread (the
 * sums are the same either way); absent, helpers are used for large fits on the main thread.
 */
export class HistogramBuilder {
  readonly space: HistogramSpace;
  readonly histSize: number;
  /** Chunks summed so far, and how many of them by helper threads. */
  readonly stats = { chunks: 0, byHelpers: 0 };
  private readonly pool: Pool | null;
  private readonly fit: number;

  /** `binCounts`: value bins per feature (each feature also gets a slot for missing values). */
  constructor(rows: number, binCounts: readonly number[], threads?: number) {
    const features = binCounts.length;
    const offsets = new Uint32Array(new SharedArrayBuffer(4 * (features + 1)));
    for (let f = 0; f < features; f++) {
      offsets[f + 1] = (offsets[f] as number) + ((binCounts[f] as number) + 1) * SLOT;
    }
    this.histSize = offsets[features] as number;
    const useHelpers = (threads === undefined || threads > 1) && rows >= THREADED_MIN_ROWS;
    this.pool = useHelpers ? startPool() : null;
    this.fit = ++fits;
    const chunks = chunkCount(rows);
    const buffers = {
      bins: shared(rows * features),
      offsets: offsets.buffer as SharedArrayBuffer,
      gh: shared(rows * 16),
      idx: shared(rows * 4),
      featureOrder: shared(features * 4),
      chunkHists: Array.from({ length: chunks }, () => shared(this.histSize * 8)),
    };
    this.space = {
      rows,
      features,
      bins: new Uint8Array(buffers.bins, 0, rows * features),
      offsets,
      gh: new Float64Array(buffers.gh, 0, rows * 2),
      idx: new Uint32Array(buffers.idx, 0, rows),
      featureOrder: new Uint32Array(buffers.featureOrder, 0, features),
      chunkHists: buffers.chunkHists.map((b) => new Float64Array(b, 0, this.histSize)),
    };
    if (this.pool !== null) {
      const message: HistogramFitMessage = { fit: this.fit, rows, features, ...buffers };
      for (const helper of this.pool.helpers) helper.postMessage(message);
    }
  }

  /**
   * Sums rows `idx[start..end)` into `out` (zeroed by the caller): all features, or the first
   * `active` of the feature order.
   */
  build(out: Float64Array, start: number, end: number, active: number): void {
    const chunks = chunkCount(end - start);
    if (chunks < 2) {
      accumulateRows(out, this.space, start, end, active);
      return;
    }
    const hists = this.space.chunkHists;
    for (let c = 0; c < chunks; c++) (hists[c] as Float64Array).fill(0);
    const ctrl = this.pool?.ctrl;
    let helping = false;
    if (ctrl !== undefined) {
      for (let h = 0; h < (this.pool as Pool).helpers.length; h++) {
        if (Atomics.load(ctrl, CTRL.ack + h) === this.fit) helping = true;
      }
    }
    if (ctrl !== undefined && helping) {
      Atomics.store(ctrl, CTRL.fit, this.fit);
      Atomics.store(ctrl, CTRL.start, start);
      Atomics.store(ctrl, CTRL.end, end);
      Atomics.store(ctrl, CTRL.chunks, chunks);
      Atomics.store(ctrl, CTRL.active, active);
      const generation = (Atomics.load(ctrl, CTRL.generation) + 1) & GENERATION_MASK;
      Atomics.store(ctrl, CTRL.done, 0);
      Atomics.store(ctrl, CTRL.next, generation << 8);
      Atomics.store(ctrl, CTRL.generation, generation);
      Atomics.notify(ctrl, CTRL.generation);
      let mine = 0;
      for (;;) {
        const c = claimChunk(ctrl, generation, chunks);
        if (c < 0) break;
        const [from, to] = chunkRange(start, end, chunks, c);
        accumulateRows(hists[c] as Float64Array, this.space, from, to, active);
        Atomics.add(ctrl, CTRL.done, 1);
        mine++;
      }
      this.stats.byHelpers += chunks - mine;
      // A chunk takes milliseconds. A helper that claimed one and then made no progress for a
      // minute is gone (this thread cannot hear its exit while it waits): fail, never hang.
      let seen = -1;
      let since = Date.now();
      for (;;) {
        const done = Atomics.load(ctrl, CTRL.done);
        if (done >= chunks) break;
        if (done !== seen) {
          seen = done;
          since = Date.now();
        } else if (Date.now() - since > HELPER_STALL_MS) {
          throw new FerryError(
            'FERRY_TRAINING_FAILED',
            `a histogram helper thread stopped answering (${chunks - done} of ${chunks} chunks unfinished for ${HELPER_STALL_MS / 1000} s); train again`,
          );
        }
        Atomics.wait(ctrl, CTRL.done, done, 1000);
      }
    } else {
      for (let c = 0; c < chunks; c++) {
        const [from, to] = chunkRange(start, end, chunks, c);
        accumulateRows(hists[c] as Float64Array, this.space, from, to, active);
      }
    }
    this.stats.chunks += chunks;
    // Chunk order, whoever summed them: the same floating-point result every time.
    const size = this.histSize;
    for (let c = 0; c < chunks; c++) {
      const h = hists[c] as Float64Array;
      for (let j = 0; j < size; j++) out[j] = (out[j] as number) + (h[j] as number);
    }
  }

  /** Lets the helpers drop this fit's buffers. */
  close(): void {
    if (this.pool === null) return;
    for (const helper of this.pool.helpers) helper.postMessage({ fit: -this.fit });
  }
}

/** The loop of a helper thread (`histogram-worker.ts`): takes fits, sums claimed chunks. */
export function helperLoop(
  ctrl: Int32Array,
  slot: number,
  post: (ready: true) => void,
  onFit: (listener: (message: HistogramFitMessage | { fit: number }) => void) => void,
): void {
  let space: (HistogramSpace & { fit: number }) | null = null;
  onFit((message) => {
    if (message.fit < 0) {
      if (space !== null && space.fit === -message.fit) space = null;
      return;
    }
    const m = message as HistogramFitMessage;
    space = {
      fit: m.fit,
      rows: m.rows,
      features: m.features,
      bins: new Uint8Array(m.bins, 0, m.rows * m.features),
      offsets: new Uint32Array(m.offsets, 0, m.features + 1),
      gh: new Float64Array(m.gh, 0, m.rows * 2),
      idx: new Uint32Array(m.idx, 0, m.rows),
      featureOrder: new Uint32Array(m.featureOrder, 0, m.features),
      chunkHists: m.chunkHists.map((b) => new Float64Array(b)),
    };
    Atomics.store(ctrl, slot, m.fit);
  });
  let seen = Atomics.load(ctrl, CTRL.generation);
  const work = (generation: number): void => {
    const current = space;
    if (current === null) return;
    for (;;) {
      // Parameters are stable while the generation has chunks left; the claim checks that.
      if (Atomics.load(ctrl, CTRL.fit) !== current.fit) return;
      const start = Atomics.load(ctrl, CTRL.start);
      const end = Atomics.load(ctrl, CTRL.end);
      const chunks = Atomics.load(ctrl, CTRL.chunks);
      const active = Atomics.load(ctrl, CTRL.active);
      const c = claimChunk(ctrl, generation, chunks);
      if (c < 0) return;
      const [from, to] = chunkRange(start, end, chunks, c);
      accumulateRows(current.chunkHists[c] as Float64Array, current, from, to, active);
      Atomics.add(ctrl, CTRL.done, 1);
      Atomics.notify(ctrl, CTRL.done);
    }
  };
  // Waiting asynchronously keeps the helper's event loop free for the next fit's buffers.
  const wait = (): void => {
    const result = Atomics.waitAsync(ctrl, CTRL.generation, seen);
    const resume = (): void => {
      seen = Atomics.load(ctrl, CTRL.generation);
      work(seen);
      wait();
    };
    if (result.async) void result.value.then(resume);
    else resume();
  };
  post(true);
  wait();
}
