/**
 * The timing loops every benchmark uses: run a call for a warm-up period (JIT, caches, lazy
 * setup), then time each call with `process.hrtime.bigint()` for a fixed period and report
 * per-operation percentiles and throughput.
 *
 * Percentiles are of single calls, so p99 includes the GC pauses and event-loop turns a caller
 * really waits for. When one call does `opsPerCall` operations (a batch of keys or rows), every
 * figure is per operation: the call's time divided by the batch size.
 */

import { readFileSync } from 'node:fs';

export interface LatencyResult {
  readonly name: string;
  /** Timed calls. */
  readonly samples: number;
  /** Operations per call (batch size); figures below are per operation. */
  readonly opsPerCall: number;
  /** Requests in flight at once (1 for a plain loop). */
  readonly concurrency: number;
  readonly p50Us: number;
  readonly p99Us: number;
  readonly meanUs: number;
  /** Operations completed per second of wall time, over every worker. */
  readonly opsPerSec: number;
}

export interface MeasureOptions {
  /** Untimed calls first, for this long (default 500 ms). */
  readonly warmupMs?: number;
  /** Timed calls for this long (default 2000 ms)... */
  readonly durationMs?: number;
  /** ...or until this many calls have been timed (default 1,000,000). */
  readonly maxSamples?: number;
  /** Operations one call performs (default 1). */
  readonly opsPerCall?: number;
}

export interface ConcurrentOptions extends MeasureOptions {
  /** Callers looping at once, each waiting for its previous call (default 1). */
  readonly concurrency?: number;
}

/** `fn` receives the index of the call, to cycle through prepared inputs. */
export type BenchFn = (i: number) => unknown;

const NS_PER_MS = 1_000_000n;

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}

/**
 * The value at quantile `q` (0..1) of ascending `sorted`, by the nearest-rank method.
 * @example percentile(Float64Array.of(1, 2, 3, 4), 0.5) // 2
 */
export function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil(q * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] as number;
}

function summarise(
  name: string,
  durationsNs: Float64Array,
  elapsedNs: number,
  calls: number,
  opsPerCall: number,
  concurrency: number,
): LatencyResult {
  const sorted = durationsNs.slice().sort();
  let total = 0;
  for (const d of sorted) total += d;
  const perOpUs = (ns: number): number => ns / 1000 / opsPerCall;
  return {
    name,
    samples: sorted.length,
    opsPerCall,
    concurrency,
    p50Us: perOpUs(percentile(sorted, 0.5)),
    p99Us: perOpUs(percentile(sorted, 0.99)),
    meanUs: perOpUs(sorted.length === 0 ? NaN : total / sorted.length),
    opsPerSec: elapsedNs > 0 ? (calls * opsPerCall) / (elapsedNs / 1e9) : 0,
  };
}

/**
 * Times `fn` call after call. A synchronous `fn` is not awaited, so the floor of a synchronous
 * call is not inflated by a microtask turn; a promise-returning one is.
 * @example
 * const r = await measureLatency('point lookup', (i) => stmt.get(keys[i % keys.length]));
 * console.log(r.p50Us, r.p99Us);
 */
export async function measureLatency(
  name: string,
  fn: BenchFn,
  options: MeasureOptions = {},
): Promise<LatencyResult> {
  const warmupMs = options.warmupMs ?? 500;
  const durationMs = options.durationMs ?? 2000;
  const maxSamples = options.maxSamples ?? 1_000_000;
  const opsPerCall = options.opsPerCall ?? 1;

  let i = 0;
  const warmupEnd = process.hrtime.bigint() + BigInt(warmupMs) * NS_PER_MS;
  while (process.hrtime.bigint() < warmupEnd) {
    const out = fn(i++);
    if (isThenable(out)) await out;
  }

  const durations = new Float64Array(maxSamples);
  let n = 0;
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(durationMs) * NS_PER_MS;
  let end = start;
  while (n < maxSamples && end < deadline) {
    const t0 = process.hrtime.bigint();
    const out = fn(i++);
    if (isThenable(out)) await out;
    end = process.hrtime.bigint();
    durations[n++] = Number(end - t0);
  }
  return summarise(name, durations.subarray(0, n), Number(end - start), n, opsPerCall, 1);
}

/**
 * Runs `concurrency` callers of an async `fn` at once (a closed loop: each caller sends its next
 * call when the previous one answers) and times every call. Throughput is over wall time.
 * @example
 * const r = await measureConcurrent('POST /infer', (i) => post(bodies[i % bodies.length]), { concurrency: 16 });
 */
export async function measureConcurrent(
  name: string,
  fn: (i: number) => Promise<unknown>,
  options: ConcurrentOptions = {},
): Promise<LatencyResult> {
  const concurrency = options.concurrency ?? 1;
  const warmupMs = options.warmupMs ?? 1000;
  const durationMs = options.durationMs ?? 5000;
  const maxSamples = options.maxSamples ?? 1_000_000;
  const opsPerCall = options.opsPerCall ?? 1;

  let i = 0;
  const loop = async (until: bigint, record: ((ns: number) => void) | null): Promise<void> => {
    while (process.hrtime.bigint() < until) {
      const t0 = process.hrtime.bigint();
      await fn(i++);
      record?.(Number(process.hrtime.bigint() - t0));
    }
  };
  const callers = (until: bigint, record: ((ns: number) => void) | null): Promise<void[]> =>
    Promise.all(Array.from({ length: concurrency }, () => loop(until, record)));

  await callers(process.hrtime.bigint() + BigInt(warmupMs) * NS_PER_MS, null);

  const durations = new Float64Array(maxSamples);
  let n = 0;
  let calls = 0;
  const start = process.hrtime.bigint();
  await callers(start + BigInt(durationMs) * NS_PER_MS, (ns) => {
    calls++;
    if (n < maxSamples) durations[n++] = ns;
  });
  const elapsed = Number(process.hrtime.bigint() - start);
  return summarise(name, durations.subarray(0, n), elapsed, calls, opsPerCall, concurrency);
}

export interface EachOptions {
  /** Inputs used untimed first, from the start of the list (default 0). */
  readonly warmup?: number;
  /** Stop timing after this long even if inputs remain (default: time them all). */
  readonly durationMs?: number;
  /** Operations one call performs (default 1). */
  readonly opsPerCall?: number;
}

/**
 * Times `fn` once per input, in order, each input used once: for calls that consume what they
 * are given (events ingested twice would be skipped as duplicates, and measure another path).
 * The first `warmup` inputs run untimed. Per-operation figures as {@link measureLatency}'s.
 * @example
 * const r = await measureEach('ingest, 1000 per batch', batches, (b) => store.ingestEvents('tx', b), { warmup: 3, opsPerCall: 1000 });
 */
export async function measureEach<T>(
  name: string,
  inputs: readonly T[],
  fn: (input: T) => unknown,
  options: EachOptions = {},
): Promise<LatencyResult> {
  const warmup = Math.min(options.warmup ?? 0, inputs.length);
  const opsPerCall = options.opsPerCall ?? 1;
  for (let i = 0; i < warmup; i++) {
    const out = fn(inputs[i] as T);
    if (isThenable(out)) await out;
  }
  const durations = new Float64Array(inputs.length - warmup);
  let n = 0;
  const start = process.hrtime.bigint();
  const deadline =
    options.durationMs === undefined ? null : start + BigInt(options.durationMs) * NS_PER_MS;
  let end = start;
  for (let i = warmup; i < inputs.length && (deadline === null || end < deadline); i++) {
    const t0 = process.hrtime.bigint();
    const out = fn(inputs[i] as T);
    if (isThenable(out)) await out;
    end = process.hrtime.bigint();
    durations[n++] = Number(end - t0);
  }
  return summarise(name, durations.subarray(0, n), Number(end - start), n, opsPerCall, 1);
}

/**
 * A one-shot run (a build, a load) as a row: `ops` operations in `seconds` of wall time, so that
 * p50 and mean are the µs per operation and ops/s the throughput. With several runs, p50 is of
 * the median run and p99 of the slowest.
 * @example report.add(oneShot('buildTrainingSet (per label row)', 1_000_000, [12.5]));
 */
export function oneShot(name: string, ops: number, seconds: readonly number[]): LatencyResult {
  const sorted = [...seconds].sort((a, b) => a - b);
  const median = sorted[Math.floor((sorted.length - 1) / 2)] ?? NaN;
  const slowest = sorted[sorted.length - 1] ?? NaN;
  const mean = sorted.reduce((a, b) => a + b, 0) / sorted.length;
  const perOpUs = (s: number): number => (s * 1e6) / ops;
  return {
    name,
    samples: sorted.length,
    opsPerCall: ops,
    concurrency: 1,
    p50Us: perOpUs(median),
    p99Us: perOpUs(slowest),
    meanUs: perOpUs(mean),
    opsPerSec: ops / median,
  };
}

/**
 * Samples this process's RSS every `intervalMs` until the returned function is called, which
 * gives the highest value seen (one last sample included). `onSample` sees each value, to
 * attribute memory to phases of the work.
 * @example const stop = sampleRss(50); await work(); const peak = stop();
 */
export function sampleRss(intervalMs: number, onSample?: (rss: number) => void): () => number {
  let peak = 0;
  const sample = (): void => {
    const rss = process.memoryUsage.rss();
    if (rss > peak) peak = rss;
    onSample?.(rss);
  };
  sample();
  const timer = setInterval(sample, intervalMs);
  return () => {
    clearInterval(timer);
    sample();
    return peak;
  };
}

/**
 * The kernel's RSS high-water mark of this process (Linux `VmHWM`), or null elsewhere. It sees
 * peaks an interval sampler misses while JavaScript keeps the event loop busy.
 */
export function highWaterRss(): number | null {
  try {
    const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    return match ? Number(match[1]) * 1024 : null;
  } catch {
    return null;
  }
}
