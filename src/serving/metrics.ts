/**
 * The serving metrics scraped at `GET /metrics`, in a Registry of their own per server (never
 * prom-client's global one), so several servers in one process (tests, workers) never share or
 * double-register series.
 */
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { InferenceLogStats } from '../monitoring/inference-log.js';

export interface ServerMetrics {
  readonly registry: Registry;
  /** Every request, by route pattern, served model ('' when none) and status code. */
  readonly requests: Counter<'route' | 'model' | 'status'>;
  /** Inference latency as the server saw it (parsing, validation, prediction), by model and version. */
  readonly duration: Histogram<'model' | 'version'>;
  /** Rows predicted. */
  readonly rows: Counter<'model'>;
  /** Streamed events ingested (HTTP and event bus), by feature set and outcome (`IngestOutcome`). */
  readonly ingestedEvents: Counter<'feature_set' | 'outcome'>;
  /** Online lookups over HTTP, seconds, by feature vector. */
  readonly onlineLookupDuration: Histogram<'vector'>;
  /** Rows per micro-batch sent to a model (see `serving/batching.ts`), by model and version. */
  readonly batchRows: Histogram<'model' | 'version'>;
  /** How long the oldest request of a micro-batch waited in the queue, seconds. */
  readonly batchQueueDelay: Histogram<'model' | 'version'>;
  /** One prediction call of a model version (a batch, or a request alone), seconds. */
  readonly predictDuration: Histogram<'model' | 'version'>;
}

export interface ServerMetricsOptions {
  /** Read at scrape time for the inference log's dropped and spilled counters. */
  readonly inferenceLog?: { stats(): InferenceLogStats };
  /** Process metrics (CPU, memory, event loop lag, GC); on by default. */
  readonly defaultMetrics?: boolean;
}

// Real-time inference lives between a fraction of a millisecond and a few hundred.
const LATENCY_BUCKETS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
];

/**
 * @example
 * const metrics = createServerMetrics({ inferenceLog });
 * metrics.requests.inc({ route: '/v2/health/live', model: '', status: '200' });
 * const text = await metrics.registry.metrics();
 */
export function createServerMetrics(options: ServerMetricsOptions = {}): ServerMetrics {
  const registry = new Registry();
  const requests = new Counter({
    name: 'ferry_requests_total',
    help: 'HTTP requests by route pattern, served model and status code.',
    labelNames: ['route', 'model', 'status'] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'ferry_request_duration_seconds',
    help: 'Inference request duration in seconds, by model and the version that answered.',
    labelNames: ['model', 'version'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  const rows = new Counter({
    name: 'ferry_inference_rows_total',
    help: 'Rows predicted, by model.',
    labelNames: ['model'] as const,
    registers: [registry],
  });
  const ingestedEvents = new Counter({
    name: 'ferry_ingested_events_total',
    help: 'Streamed events ingested (HTTP and event bus), by feature set and outcome: written, duplicate, filtered, quarantined, refused, malformed (messages), failed (dead-lettered after the last delivery failed).',
    labelNames: ['feature_set', 'outcome'] as const,
    registers: [registry],
  });
  const onlineLookupDuration = new Histogram({
    name: 'ferry_online_lookup_duration_seconds',
    help: 'Online feature lookups over HTTP (POST /v1/feature-vectors/{name}/online), seconds, by feature vector.',
    labelNames: ['vector'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  const batchRows = new Histogram({
    name: 'ferry_batch_rows',
    help: 'Rows per micro-batch sent to a model, by model and version.',
    labelNames: ['model', 'version'] as const,
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024],
    registers: [registry],
  });
  // Batching waits are configured in microseconds and rarely exceed a few milliseconds.
  const batchQueueDelay = new Histogram({
    name: 'ferry_batch_queue_delay_seconds',
    help: 'Seconds the oldest request of a micro-batch waited before the batch was sent, by model and version.',
    labelNames: ['model', 'version'] as const,
    buckets: [
      0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
      0.1,
    ],
    registers: [registry],
  });
  const predictDuration = new Histogram({
    name: 'ferry_model_predict_duration_seconds',
    help: 'Prediction calls of a model version (plain or inside an endpoint), seconds, by model and version.',
    labelNames: ['model', 'version'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  const log = options.inferenceLog;
  // The inference log keeps its own totals; these counters mirror them when scraped.
  new Counter({
    name: 'ferry_inference_log_dropped_total',
    help: 'Inference log rows lost because neither the offline store nor the spill files could take them.',
    registers: [registry],
    collect() {
      this.reset();
      if (log) this.inc(log.stats().droppedRows);
    },
  });
  new Counter({
    name: 'ferry_inference_log_spilled_rows_total',
    help: 'Inference log rows written to spill files (buffer full or offline store failing), to be replayed.',
    registers: [registry],
    collect() {
      this.reset();
      if (log) this.inc(log.stats().spilledRows);
    },
  });
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry });
  return {
    registry,
    requests,
    duration,
    rows,
    ingestedEvents,
    onlineLookupDuration,
    batchRows,
    batchQueueDelay,
    predictDuration,
  };
}
