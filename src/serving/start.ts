/**
 * Starts serving a workspace: every registered model and every endpoint of ferry.yaml over the
 * Open Inference Protocol v2 (endpoints also over `/v1/endpoints`), with `/metrics` and the
 * inference log, plus the feature store: its `/v1` routes and one stream consumer per feature set
 * on the workspace's event bus (`ferry.ingest.<set>`). An endpoint with `stream:` also answers
 * messages of its subject (`inputs/stream.ts`). Shared by `ferry serve` and the quickstart.
 *
 * Every `server.refresh_interval` the server re-reads aliases: a model or endpoint whose alias
 * moved loads and warms the new version, then swaps to it (`catalog.ts`, `graph/endpoint.ts`).
 * `close()` stops refreshing and the consumers (a batch in flight is stored and acknowledged
 * first), stops accepting requests, lets in-flight ones finish, flushes the inference log and
 * leaves the workspace open for its owner to close.
 */
import type { FastifyInstance } from 'fastify';
import { createLogger } from '../core/logger.js';
import { FerryError } from '../errors/index.js';
import { startIngestionConsumers } from '../feature-store/stream.js';
import { InferenceLog } from '../monitoring/inference-log.js';
import type { Workspace } from '../project/workspace.js';
import type { LoadedModel } from '../core/model.js';
import type { ModelVersion } from '../metadata/metadata-store.js';
import { batchObserver, batchPredictions, type BatchingOptions } from './batching.js';
import { createRegistryCatalog } from './catalog.js';
import { ensureDeployment } from './deployments.js';
import { compileGraph } from './graph/compile.js';
import { createModelProvider } from './graph/models.js';
import { ServedEndpoint } from './graph/endpoint.js';
import { graphMetrics } from './graph/metrics.js';
import { createServer } from './http/server.js';
import { endpointStreamMetrics, startEndpointConsumers } from './inputs/stream.js';
import { createServerMetrics, type ServerMetrics } from './metrics.js';

export interface RunningServer {
  readonly url: string;
  readonly app: FastifyInstance;
  readonly inferenceLog: InferenceLog;
  /** Names served, models and endpoints. */
  readonly served: readonly string[];
  /** The endpoints served, by name. */
  readonly endpoints: ReadonlyMap<string, ServedEndpoint>;
  /** This server's own metrics (what `/metrics` answers unless `StartOptions.metricsText`). */
  readonly metrics: ServerMetrics;
  /** Re-reads aliases now and swaps what moved (the server also does it every refresh_interval). */
  refresh(): Promise<void>;
  close(): Promise<void>;
}

export interface StartOptions {
  readonly host?: string;
  readonly port?: number;
  /** Overrides the configured log level (the quickstart keeps request logs quiet). */
  readonly logLevel?: string;
  /** What `/metrics` answers instead of `metrics` (workers: every worker's, see `workers.ts`). */
  readonly metricsText?: () => Promise<{ text: string; contentType: string }>;
}

/**
 * @example
 * const server = await startServer(ws, { port: 0 });
 * console.log(server.url); await server.close();
 */
export async function startServer(
  ws: Workspace,
  options: StartOptions = {},
): Promise<RunningServer> {
  const { spec, stateDir } = ws.project;
  const logger = createLogger({ level: options.logLevel ?? spec.log_level, name: 'ferry' });
  const inferenceLog = new InferenceLog({
    offline: ws.offline,
    stateDir,
    flushIntervalMs: spec.monitoring.flush_interval,
    maxBufferedRows: spec.monitoring.max_buffered_rows,
    logger,
  });
  await inferenceLog.recoverSpill();
  const metrics = createServerMetrics({ inferenceLog });
  const batching = (record: ModelVersion): BatchingOptions => {
    const b = spec.server.batching.models[record.model] ?? spec.server.batching;
    return {
      maxBatchRows: b.max_batch_rows,
      maxWaitUs: b.max_wait_us,
      name: `${record.model}:${record.version}`,
    };
  };
  const batched = (model: LoadedModel, record: ModelVersion) =>
    batchPredictions(
      model,
      batching(record),
      batchObserver(metrics, record.model, String(record.version)),
    );
  const catalog = await createRegistryCatalog(ws.registry, { logger, wrap: batched });
  const observer = graphMetrics(metrics.registry);
  const models = createModelProvider(ws.registry, {
    wrap: (model, record) => ({ record, ...batched(model, record) }),
  });
  const endpoints = new Map<string, ServedEndpoint>();
  for (const endpoint of spec.endpoints) {
    const deps = { spec, root: ws.project.dir, models, features: ws.features, events: ws.events };
    // Recorded only once the spec compiled (an invalid one records nothing); the version is what
    // OIP model_version and /v1/endpoints report.
    const graph = await compileGraph(endpoint, deps);
    const { deployment } = await ensureDeployment(ws, endpoint.name, graph, { logger });
    const served = await ServedEndpoint.create(
      { endpoint, deps, version: String(deployment.version), logger, observer, inferenceLog },
      graph,
    );
    catalog.add(served);
    endpoints.set(endpoint.name, served);
  }
  const app = createServer({
    catalog,
    inferenceLog,
    features: ws.features,
    metrics,
    logger,
    limits: {
      bodyLimitBytes: spec.server.body_limit_bytes,
      maxRowsPerRequest: spec.server.max_rows_per_request,
      maxInFlight: spec.server.max_in_flight,
    },
    endpoints: () => endpoints,
    ...(options.metricsText ? { metricsText: options.metricsText } : {}),
  });
  const host = options.host ?? spec.server.host;
  const port = options.port ?? spec.server.port;
  let address: string;
  try {
    address = await app.listen({ host, port });
  } catch (error) {
    await app.close();
    await inferenceLog.close();
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') {
      throw new FerryError(
        'FERRY_ARGUMENT_INVALID',
        `cannot listen on ${host}:${port} (${code}); pass another --port (or --host), or stop what holds it`,
        { cause: error },
      );
    }
    throw error;
  }
  // Listening first lets /v2/health/live answer during a long load; returning only once the
  // models are loaded means whoever started the server (the CLI prints "Serving ...") hands out
  // a URL that is ready. A model that fails to load keeps the server up and not ready.
  await catalog.whenLoaded();
  const consumers = await startIngestionConsumers({
    features: ws.features,
    events: ws.events,
    featureSets: spec.feature_sets.map((f) => f.name),
    logger,
    onOutcome: (featureSet, outcome, count) =>
      metrics.ingestedEvents.inc({ feature_set: featureSet, outcome }, count),
  }).catch(async (error: unknown) => {
    await app.close();
    await inferenceLog.close();
    throw error;
  });
  // Endpoints with `stream:` read their subject too (src/serving/inputs/stream.ts).
  const endpointConsumers = await startEndpointConsumers({
    endpoints,
    events: ws.events,
    logger,
    onOutcome: endpointStreamMetrics(metrics.registry),
  }).catch(async (error: unknown) => {
    await consumers.stop();
    await app.close();
    await inferenceLog.close();
    throw error;
  });
  const refresh = async (): Promise<void> => {
    await catalog.refresh();
    await Promise.all([...endpoints.values()].map((e) => e.refresh()));
  };
  let refreshing = false;
  const refresher = setInterval(() => {
    if (refreshing) return;
    refreshing = true;
    refresh()
      .catch((err: unknown) => logger.error({ err }, 'refreshing model versions failed'))
      .finally(() => {
        refreshing = false;
      });
  }, spec.server.refresh_interval);
  refresher.unref();
  return {
    url: address,
    app,
    inferenceLog,
    served: catalog.list().map((m) => m.name),
    endpoints,
    metrics,
    refresh,
    close: async () => {
      clearInterval(refresher);
      await endpointConsumers.stop();
      await consumers.stop();
      await app.close();
      await inferenceLog.close();
    },
  };
}
