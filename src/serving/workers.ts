/**
 * Serving replicas on one host (`ferry serve --workers N`): a primary process forks N worker
 * processes with node:cluster; each worker opens the workspace and runs its own server on the same
 * host and port (the primary holds the listening socket and hands connections out round-robin).
 *
 * The primary opens nothing of the project. It announces the URL once every worker listens, forks
 * a replacement for a worker that dies, and gives up when workers keep dying (more than
 * `crashLimit` deaths within `crashWindowMs`: a crash loop would otherwise spin forever). On
 * SIGTERM or SIGINT it stops replacing and sends SIGTERM to every worker; a worker closes its
 * server, which lets in-flight requests finish and flushes the inference log, closes its workspace
 * and exits 0. Workers still running after `drainTimeoutMs` are killed, and the primary says so.
 *
 * Metrics: each worker counts into a registry of its own, but whichever worker answers `/metrics`
 * answers for all of them. It asks the primary (`ferry:metrics-request`), the primary asks every
 * ready worker for its registry as JSON (`ferry:metrics-collect`), sums them with prom-client's
 * `AggregatorRegistry.aggregate` (counters and histograms summed; of the process metrics, event
 * loop lag is averaged, its min and max kept, the version taken once, the start time left out and
 * the file descriptor limit its max; the primary's own process is not in them), adds
 * `ferry_workers` and sends the text back. A worker that does not answer within
 * {@link METRICS_COLLECT_TIMEOUT_MS} counts with the counters and histograms it last sent (its
 * gauges are left out) and the reply starts with a `# ferry: partial:` comment naming it; a
 * worker that died keeps counting with what it last sent, so a total never goes down (Prometheus
 * would read that as a counter reset and `rate()` would spike). What it counted after its last
 * collection is lost. If the primary itself does not answer within
 * {@link METRICS_REQUEST_TIMEOUT_MS}, the worker answers with its own registry under the same kind
 * of comment (Prometheus ignores comment lines; someone reading the scrape sees why).
 *
 * What each worker keeps to itself: its inference log buffer and, with the in-process event bus,
 * its stream consumers.
 * What they share, and why it is safe: SQLite stores (WAL, IMMEDIATE transactions, busy timeout),
 * Parquet appends (each a file of its own), inference-log spill files (each process names its own
 * and claims a file by renaming it before replaying it). The Parquet store merges small files
 * assuming one writing process per root, so one worker at a time, the compactor, merges them
 * (see {@link workerProject}); when it dies its replacement takes the role.
 *
 * Known limits: a worker killed outright loses the requests it was answering and the inference-log
 * rows it had not flushed yet (at most `monitoring.flush_interval` of its traffic); with `--port 0`
 * the workers share the port the first one got, but if every worker dies at once the replacements
 * get a new one.
 */
import cluster, { type Worker } from 'node:cluster';
import {
  AggregatorRegistry,
  Gauge,
  prometheusContentType,
  type Aggregator,
  type Registry,
} from 'prom-client';
import type { Project } from '../config/load.js';
import { FerryError, toFerryError, type ErrorCode } from '../errors/index.js';

/** A registry's metrics as `Registry.getMetricsAsJSON()` returns them (what workers send). */
type MetricsJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;

/** What `/metrics` answers: Prometheus text and its content type. */
export interface MetricsText {
  readonly text: string;
  readonly contentType: string;
}

/** What a worker tells the primary over the cluster's IPC channel. */
export type WorkerMessage =
  | { readonly type: 'ferry:ready'; readonly url: string; readonly served: readonly string[] }
  | { readonly type: 'ferry:failed'; readonly code: ErrorCode; readonly message: string }
  /** A scrape reached this worker: the primary is to answer with every worker's metrics. */
  | { readonly type: 'ferry:metrics-request'; readonly id: number }
  /** This worker's metrics for the primary's collection `id` (or why it has none). */
  | {
      readonly type: 'ferry:metrics-collected';
      readonly id: number;
      readonly metrics?: MetricsJson;
      readonly error?: string;
    };

/** What the primary tells a worker. */
export type PrimaryMessage =
  | { readonly type: 'ferry:metrics-collect'; readonly id: number }
  /** The answer to the worker's `ferry:metrics-request` `id`: the text, or why there is none. */
  | {
      readonly type: 'ferry:metrics-reply';
      readonly id: number;
      readonly text?: string;
      readonly contentType?: string;
      readonly error?: string;
    };

type MetricsReply = Extract<PrimaryMessage, { type: 'ferry:metrics-reply' }>;

/** The server a worker runs: what `startServer` returns, reduced to what supervision needs. */
export interface WorkerServer {
  readonly url: string;
  readonly served: readonly string[];
  /** The server's own metrics, which the primary collects to answer any worker's scrape. */
  readonly registry: Registry;
  /** Stops accepting requests, lets in-flight ones finish, releases what the server holds. */
  close(): Promise<void>;
}

export interface PrimaryOptions {
  /** Worker processes to keep running (>= 1). */
  readonly workers: number;
  /** One line for the operator (the CLI writes it to stderr). */
  readonly log: (line: string) => void;
  /** How long workers get to drain after SIGTERM before they are killed. Default 30 s. */
  readonly drainTimeoutMs?: number;
  /** Deaths tolerated within `crashWindowMs` before the primary gives up. Default 5. */
  readonly crashLimit?: number;
  /** Default 30 s. */
  readonly crashWindowMs?: number;
}

export interface PrimaryResult {
  /** Workers killed because they had not exited within the drain timeout. */
  readonly killed: number;
  /** Workers that exited with an error while draining. */
  readonly failed: number;
}

const DEFAULT_DRAIN_TIMEOUT_MS = 30_000;
const DEFAULT_CRASH_LIMIT = 5;
const DEFAULT_CRASH_WINDOW_MS = 30_000;
/** Set by the primary in the environment of the one worker that merges offline-store files. */
const COMPACTOR_ENV = 'FERRY_SERVE_COMPACTOR';
/**
 * How long the primary waits for workers' metrics before answering without the late ones. Shorter
 * than {@link METRICS_REQUEST_TIMEOUT_MS}, so one slow worker costs a partial sum, not the sum.
 */
export const METRICS_COLLECT_TIMEOUT_MS = 1_500;
/** How long a worker answering `/metrics` waits for the primary before it answers alone. */
export const METRICS_REQUEST_TIMEOUT_MS = 2_500;
/**
 * Aggregation for metrics whose own `aggregator` (prom-client's default: sum) is wrong across
 * processes: the file descriptor limit is one per process, not a total.
 */
const AGGREGATOR_OVERRIDES: Readonly<Record<string, Aggregator>> = { process_max_fds: 'max' };

/**
 * The project as this worker opens it: the compactor worker as configured, every other worker
 * with automatic merging of offline-store files turned off (appends stay on), since merges of one
 * table by two processes at once could overlap. Outside a worker the project is unchanged.
 * @example const ws = await openWorkspace(workerProject(projectFrom(options)));
 */
export function workerProject(project: Project, env: NodeJS.ProcessEnv = process.env): Project {
  const offline = project.spec.offline_store;
  if (!cluster.isWorker || env[COMPACTOR_ENV] !== '0' || offline.type !== 'parquet') {
    return project;
  }
  return {
    ...project,
    spec: {
      ...project.spec,
      offline_store: { ...offline, compact_after_files: Number.POSITIVE_INFINITY },
    },
  };
}

function isWorkerMessage(message: unknown): message is WorkerMessage {
  const type = (message as { type?: unknown } | null)?.type;
  return (
    type === 'ferry:ready' ||
    type === 'ferry:failed' ||
    type === 'ferry:metrics-request' ||
    type === 'ferry:metrics-collected'
  );
}

function isPrimaryMessage(message: unknown): message is PrimaryMessage {
  const type = (message as { type?: unknown } | null)?.type;
  return type === 'ferry:metrics-collect' || type === 'ferry:metrics-reply';
}

/**
 * Every worker's metrics as one Prometheus text: `AggregatorRegistry.aggregate` (each metric by
 * its `aggregator`, see the module comment) plus `ferry_workers`, under a `# ferry: partial:`
 * line when `missing` (what was left out, and why) is not empty.
 * @example
 * const { text } = await aggregateWorkerMetrics([await a.getMetricsAsJSON(), await b.getMetricsAsJSON()], { ready: 2, starting: 0 }, []);
 */
export async function aggregateWorkerMetrics(
  lists: readonly MetricsJson[],
  workers: { readonly ready: number; readonly starting: number },
  missing: readonly string[],
): Promise<MetricsText> {
  const adjusted = lists.map((list) =>
    list.map((metric) => {
      const aggregator = AGGREGATOR_OVERRIDES[metric.name];
      return aggregator ? { ...metric, aggregator } : metric;
    }),
  );
  const registry = AggregatorRegistry.aggregate(adjusted);
  const gauge = new Gauge({
    name: 'ferry_workers',
    help: 'Worker processes of ferry serve --workers, by state: ready (serving) or starting.',
    labelNames: ['state'] as const,
    registers: [registry],
  });
  gauge.set({ state: 'ready' }, workers.ready);
  gauge.set({ state: 'starting' }, workers.starting);
  const text = await registry.metrics();
  const note = missing.length > 0 ? `# ferry: partial: left out ${missing.join(', ')}\n` : '';
  return { text: note + text, contentType: registry.contentType };
}

/**
 * The counters and histograms of `lists` summed into one list; gauges are dropped. What a worker
 * that died (or did not answer) last sent stays in the sums this way, so a total Prometheus has
 * seen does not go down, which it would read as a counter reset and turn into a spike of `rate()`.
 */
function sumCumulative(lists: readonly MetricsJson[]): MetricsJson {
  const byName = new Map<string, { metric: MetricsJson[number]; series: Map<string, Value> }>();
  for (const list of lists) {
    for (const metric of list) {
      const type = String(metric.type);
      if ((type !== 'counter' && type !== 'histogram') || metric.aggregator !== 'sum') continue;
      let into = byName.get(metric.name);
      if (!into) {
        into = { metric: { ...metric, values: [] }, series: new Map() };
        byName.set(metric.name, into);
      }
      for (const value of metric.values as Value[]) {
        const key = JSON.stringify([value.metricName ?? '', Object.entries(value.labels).sort()]);
        const same = into.series.get(key);
        if (same) same.value += value.value;
        else {
          const copy = { ...value };
          into.series.set(key, copy);
          into.metric.values.push(copy);
        }
      }
    }
  }
  return [...byName.values()].map(({ metric }) => metric);
}

/** One series of a metric as JSON; histograms name theirs (`_bucket`, `_sum`, `_count`). */
type Value = MetricsJson[number]['values'][number] & { metricName?: string };

/** A scrape the primary is answering: whom to answer, and the workers' metrics so far. */
interface Scrape {
  readonly requester: Worker;
  /** The requester's own id for its request. */
  readonly requestId: number;
  /** Workers asked that have not answered yet, by worker id. */
  readonly waiting: Map<number, Worker>;
  readonly lists: MetricsJson[];
  /** Workers that did not answer, each with why. */
  readonly missing: { readonly worker: Worker; readonly why: string }[];
  readonly timer: NodeJS.Timeout;
}

function describeExit(code: number | null, signal: string | null): string {
  return signal ? `signal ${signal}` : `exit code ${code ?? '?'}`;
}

/**
 * Runs the primary of `ferry serve --workers N` in this process: forks the workers (which run
 * this program again with the same arguments, where `cluster.isWorker` is true), supervises them
 * and returns once they all exited after SIGTERM or SIGINT. Rejects with the workers' own error
 * when one fails to start, or with FERRY_INTERNAL when they keep crashing.
 * @example
 * if (cluster.isPrimary) await runPrimary({ workers: 4, log: (l) => process.stderr.write(l + '\n') });
 * else await runWorker(() => startServer(ws, { port: 8080 }));
 */
export function runPrimary(options: PrimaryOptions): Promise<PrimaryResult> {
  const wanted = options.workers;
  const drainTimeoutMs = options.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS;
  const crashLimit = options.crashLimit ?? DEFAULT_CRASH_LIMIT;
  const crashWindowMs = options.crashWindowMs ?? DEFAULT_CRASH_WINDOW_MS;
  const { log } = options;

  return new Promise<PrimaryResult>((resolve, reject) => {
    const live = new Map<number, Worker>();
    const ready = new Map<number, { url: string; served: readonly string[] }>();
    const deaths: number[] = [];
    let compactor: number | undefined;
    let phase: 'starting' | 'running' | 'stopping' = 'starting';
    let failure: FerryError | undefined;
    let killTimer: NodeJS.Timeout | undefined;
    let killed = 0;
    let failed = 0;
    /** Scrapes being answered, by the primary's collection id. */
    const scrapes = new Map<number, Scrape>();
    let nextScrape = 0;
    /** Each live worker's metrics as it last sent them, by worker id. */
    const lastSeen = new Map<number, MetricsJson>();
    /** The counters and histograms dead workers last sent, summed (see `sumCumulative`). */
    let retired: MetricsJson = [];

    const fork = (): Worker => {
      const compacts = compactor === undefined;
      const worker = cluster.fork({ [COMPACTOR_ENV]: compacts ? '1' : '0' });
      if (compacts) compactor = worker.id;
      live.set(worker.id, worker);
      worker.on('message', (message: unknown) => onMessage(worker, message));
      return worker;
    };

    const pidOf = (worker: Worker): number => worker.process.pid ?? -1;

    const onMessage = (worker: Worker, message: unknown): void => {
      if (!isWorkerMessage(message) || !live.has(worker.id)) return;
      if (message.type === 'ferry:metrics-request') {
        collectMetrics(worker, message.id);
        return;
      }
      if (message.type === 'ferry:metrics-collected') {
        // Even a late answer is the freshest there is of this worker.
        if (message.metrics) lastSeen.set(worker.id, message.metrics);
        const scrape = scrapes.get(message.id);
        if (!scrape?.waiting.delete(worker.id)) return; // too late: already answered
        if (message.metrics) scrape.lists.push(message.metrics);
        else scrape.missing.push({ worker, why: message.error ?? 'no metrics' });
        if (scrape.waiting.size === 0) void answerScrape(message.id);
        return;
      }
      if (message.type === 'ferry:failed') {
        if (phase === 'starting') {
          // The same cause would stop every worker (bad config, port taken): report it once.
          failure = new FerryError(message.code, message.message);
          stop();
        } else if (phase === 'running') {
          log(`worker ${pidOf(worker)} failed to start: ${message.code}: ${message.message}`);
        }
        return;
      }
      ready.set(worker.id, { url: message.url, served: message.served });
      if (phase === 'starting' && ready.size === wanted) {
        phase = 'running';
        const pids = [...live.values()].map(pidOf).join(', ');
        log(
          `Serving ${message.served.join(', ') || '(no models yet)'} at ${message.url} with ${wanted} workers (pids ${pids})`,
        );
      } else if (phase === 'running') {
        log(`worker ${pidOf(worker)} ready`);
      }
    };

    /**
     * Asks every ready worker for its metrics, for `requester`'s scrape `requestId`. Workers still
     * starting are not asked: they have served nothing that matters yet, and asking them would
     * only make the scrape wait.
     */
    const collectMetrics = (requester: Worker, requestId: number): void => {
      const id = nextScrape++;
      const targets = [...live.values()].filter((w) => ready.has(w.id) && w.isConnected());
      const scrape: Scrape = {
        requester,
        requestId,
        waiting: new Map(targets.map((w) => [w.id, w])),
        lists: [],
        missing: [],
        timer: setTimeout(() => {
          for (const w of scrape.waiting.values()) {
            scrape.missing.push({
              worker: w,
              why: `no answer within ${METRICS_COLLECT_TIMEOUT_MS / 1000} s`,
            });
          }
          scrape.waiting.clear();
          void answerScrape(id);
        }, METRICS_COLLECT_TIMEOUT_MS),
      };
      scrapes.set(id, scrape);
      if (targets.length === 0) {
        void answerScrape(id);
        return;
      }
      const collect: PrimaryMessage = { type: 'ferry:metrics-collect', id };
      for (const target of targets) {
        target.send(collect, undefined, (error: Error | null) => {
          if (!error || !scrape.waiting.delete(target.id)) return;
          scrape.missing.push({ worker: target, why: error.message });
          if (scrape.waiting.size === 0) void answerScrape(id);
        });
      }
    };

    const answerScrape = async (id: number): Promise<void> => {
      const scrape = scrapes.get(id);
      if (!scrape) return;
      scrapes.delete(id);
      clearTimeout(scrape.timer);
      let reply: PrimaryMessage;
      try {
        const starting = [...live.keys()].filter((w) => !ready.has(w)).length;
        // A worker that did not answer counts with its counters and histograms as it last sent
        // them, and dead workers with theirs: totals a scrape showed never go down.
        const stale = scrape.missing.flatMap(({ worker }) => {
          const last = lastSeen.get(worker.id);
          return last ? [sumCumulative([last])] : [];
        });
        const notes = scrape.missing.map(({ worker, why }) => {
          const counted = lastSeen.has(worker.id) ? '; its counters as it last sent them' : '';
          return `worker ${pidOf(worker)} (${why}${counted})`;
        });
        const { text, contentType } = await aggregateWorkerMetrics(
          [...scrape.lists, ...stale, retired],
          { ready: ready.size, starting },
          notes,
        );
        reply = { type: 'ferry:metrics-reply', id: scrape.requestId, text, contentType };
      } catch (error) {
        const reason = toFerryError(error).message;
        reply = { type: 'ferry:metrics-reply', id: scrape.requestId, error: reason };
      }
      // The requester may have died meanwhile; nobody is waiting then.
      if (scrape.requester.isConnected()) scrape.requester.send(reply, undefined, () => {});
    };

    const onExit = (worker: Worker, code: number | null, signal: string | null): void => {
      if (!live.delete(worker.id)) return;
      ready.delete(worker.id);
      const last = lastSeen.get(worker.id);
      if (last) retired = sumCumulative([retired, last]);
      lastSeen.delete(worker.id);
      for (const [id, scrape] of scrapes) {
        if (!scrape.waiting.delete(worker.id)) continue;
        scrape.missing.push({ worker, why: 'exited' });
        if (scrape.waiting.size === 0) void answerScrape(id);
      }
      if (compactor === worker.id) compactor = undefined; // its replacement takes the role
      if (phase === 'stopping') {
        if (code !== 0 && !signal) failed++;
        if (live.size === 0) finish();
        return;
      }
      const now = Date.now();
      deaths.push(now);
      while (deaths.length > 0 && (deaths[0] as number) <= now - crashWindowMs) deaths.shift();
      if (deaths.length > crashLimit) {
        log(`worker ${pidOf(worker)} died (${describeExit(code, signal)})`);
        failure = new FerryError(
          'FERRY_INTERNAL',
          `serve workers keep crashing (${deaths.length} deaths within ${crashWindowMs / 1000} s); ` +
            'gave up replacing them. Run `ferry serve --workers 1` to see the error in one process',
        );
        stop();
        return;
      }
      const replacement = fork();
      log(
        `worker ${pidOf(worker)} died (${describeExit(code, signal)}); started worker ${pidOf(replacement)}`,
      );
    };

    const stop = (): void => {
      if (phase === 'stopping') return;
      phase = 'stopping';
      if (live.size === 0) {
        finish();
        return;
      }
      for (const worker of live.values()) worker.process.kill('SIGTERM');
      killTimer = setTimeout(() => {
        const pids = [...live.values()].map(pidOf);
        log(
          `${pids.length} worker(s) still running after ${drainTimeoutMs / 1000} s (pids ${pids.join(', ')}); killing them`,
        );
        killAll();
      }, drainTimeoutMs);
    };

    const killAll = (): void => {
      for (const worker of live.values()) {
        killed++;
        worker.process.kill('SIGKILL');
      }
    };

    let signals = 0;
    const onSignal = (signal: NodeJS.Signals): void => {
      signals++;
      if (signals === 1) {
        log(`${signal}: draining in-flight requests in ${live.size} worker(s)...`);
        stop();
      } else if (signals === 2) {
        log(`${signal} again: killing the workers now`);
        killAll();
      }
    };

    const finish = (): void => {
      if (killTimer) clearTimeout(killTimer);
      for (const scrape of scrapes.values()) clearTimeout(scrape.timer);
      scrapes.clear();
      cluster.off('exit', onExit);
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      if (failure) reject(failure);
      else resolve({ killed, failed });
    };

    cluster.on('exit', onExit);
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    for (let i = 0; i < wanted; i++) fork();
  });
}

/**
 * Runs one worker: starts its server, tells the primary it is ready (or why it failed), and on
 * SIGTERM, SIGINT or the loss of the primary closes it, letting in-flight requests finish.
 * Later signals are ignored: the primary kills a worker that takes too long. Resolves once the
 * server is closed and the channel to the primary released, so the process can exit.
 *
 * `start` gets `metricsText`, what the server's `/metrics` is to answer: every worker's metrics,
 * through the primary (see the module comment); the server hands back its own `registry`, which
 * this worker sends when the primary collects.
 * @example
 * await runWorker(async (metricsText) => {
 *   const server = await startServer(ws, { port, metricsText });
 *   return { ...server, registry: server.metrics.registry, close: async () => { await server.close(); await ws.close(); } };
 * });
 */
export async function runWorker(
  start: (metricsText: () => Promise<MetricsText>) => Promise<WorkerServer>,
): Promise<void> {
  if (!cluster.isWorker || !process.send) {
    throw new FerryError('FERRY_INTERNAL', 'runWorker must run in a cluster worker process');
  }
  // Known once the server has started; a scrape while it starts (it listens before its models
  // are loaded) gets the other workers' metrics, or only a comment if the primary is silent.
  let registry: Registry | undefined;
  const requests = new Map<number, (reply: MetricsReply) => void>();
  let nextRequest = 0;
  const onPrimaryMessage = (message: unknown): void => {
    if (!isPrimaryMessage(message)) return;
    if (message.type === 'ferry:metrics-reply') {
      requests.get(message.id)?.(message);
      return;
    }
    const { id } = message;
    void (registry ? registry.getMetricsAsJSON() : Promise.resolve<MetricsJson>([])).then(
      (metrics) => send({ type: 'ferry:metrics-collected', id, metrics }),
      (error: unknown) =>
        send({ type: 'ferry:metrics-collected', id, error: toFerryError(error).message }),
    );
  };
  process.on('message', onPrimaryMessage);

  const alone = async (reason: string): Promise<MetricsText> => {
    const note = `# ferry: partial: ${reason}; only worker ${process.pid}'s own metrics follow\n`;
    if (!registry) return { text: note, contentType: prometheusContentType };
    return { text: note + (await registry.metrics()), contentType: registry.contentType };
  };
  const metricsText = async (): Promise<MetricsText> => {
    const id = nextRequest++;
    const reply = await new Promise<MetricsReply | string>((resolve) => {
      const timer = setTimeout(() => {
        requests.delete(id);
        resolve(`the primary did not answer within ${METRICS_REQUEST_TIMEOUT_MS / 1000} s`);
      }, METRICS_REQUEST_TIMEOUT_MS);
      const done = (result: MetricsReply | string): void => {
        clearTimeout(timer);
        requests.delete(id);
        resolve(result);
      };
      requests.set(id, done);
      if (!process.connected || !process.send) {
        done('no channel to the primary');
        return;
      }
      const request: WorkerMessage = { type: 'ferry:metrics-request', id };
      process.send(request, undefined, {}, (error: Error | null) => {
        if (error) done(`asking the primary failed: ${error.message}`);
      });
    });
    if (typeof reply === 'string') return alone(reply);
    if (reply.text === undefined || reply.contentType === undefined) {
      return alone(`the primary could not combine the workers' metrics: ${reply.error ?? '?'}`);
    }
    return { text: reply.text, contentType: reply.contentType };
  };

  let stopRequested = false;
  let wake: (() => void) | undefined;
  const stopped = new Promise<void>((resolve) => (wake = resolve));
  const onStop = (): void => {
    stopRequested = true;
    wake?.();
  };
  process.on('SIGTERM', onStop);
  process.on('SIGINT', onStop);
  // Without its primary nobody hands this worker connections any more.
  process.on('disconnect', onStop);

  let server: WorkerServer;
  try {
    server = await start(metricsText);
    registry = server.registry;
  } catch (error) {
    const ferry = toFerryError(error);
    await send({ type: 'ferry:failed', code: ferry.code, message: ferry.message });
    process.exitCode = 1;
    process.off('message', onPrimaryMessage);
    release();
    return;
  }
  if (!stopRequested) {
    await send({ type: 'ferry:ready', url: server.url, served: [...server.served] });
    await stopped;
  }
  try {
    await server.close();
  } catch (error) {
    const ferry = toFerryError(error);
    process.stderr.write(`worker ${process.pid}: ${ferry.code}: ${ferry.message}\n`);
    process.exitCode = 1;
  }
  process.off('message', onPrimaryMessage);
  release();
}

/** Sends a message to the primary; resolves once it is written (or the channel is gone). */
function send(message: WorkerMessage): Promise<void> {
  return new Promise((resolve) => {
    if (!process.connected || !process.send) {
      resolve();
      return;
    }
    process.send(message, undefined, {}, () => resolve());
  });
}

/** Lets the process exit: the IPC channel to the primary would keep it alive. */
function release(): void {
  if (process.connected) process.disconnect();
}
