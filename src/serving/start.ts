/**
 * Starts serving a workspace: every registered model and every endpoint of ferry.yaml over the
 * Open Inference Protocol v2, with `/metrics` and the inference log, plus the feature store: its
 * `/v1` routes and one stream consumer per feature set on the workspace's event bus
 * (`ferry.ingest.<set>`). Shared by `ferry serve` and the quickstart; `close()` stops the consumers
 * (a batch in flight is stored and acknowledged first), stops accepting requests, lets in-flight
 * ones finish, flushes the inference log and leaves the workspace open for its owner to close.
 */
import type { FastifyInstance } from 'fastify';
import { createLogger } from '../core/logger.js';
import { FerryError } from '../errors/index.js';
import { startIngestionConsumers } from '../feature-store/stream.js';
import { InferenceLog } from '../monitoring/inference-log.js';
import type { Workspace } from '../project/workspace.js';
import { createRegistryCatalog } from './catalog.js';
import { compileEndpoint } from './endpoint.js';
import { createServer } from './http/server.js';
import { createServerMetrics } from './metrics.js';

export interface RunningServer {
  readonly url: string;
  readonly app: FastifyInstance;
  readonly inferenceLog: InferenceLog;
  /** Names served, models and endpoints. */
  readonly served: readonly string[];
  close(): Promise<void>;
}

export interface StartOptions {
  readonly host?: string;
  readonly port?: number;
  /** Overrides the configured log level (the quickstart keeps request logs quiet). */
  readonly logLevel?: string;
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
  const catalog = await createRegistryCatalog(ws.registry, { logger });
  for (const endpoint of spec.endpoints) {
    catalog.add(
      await compileEndpoint(endpoint, { spec, registry: ws.registry, features: ws.features }),
    );
  }
  const metrics = createServerMetrics({ inferenceLog });
  const app = createServer({
    catalog,
    inferenceLog,
    features: ws.features,
    metrics,
    logger,
    limits: {
      bodyLimitBytes: spec.server.body_limit_bytes,
      maxRowsPerRequest: spec.server.max_rows_per_request,
    },
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
  return {
    url: address,
    app,
    inferenceLog,
    served: catalog.list().map((m) => m.name),
    close: async () => {
      await consumers.stop();
      await app.close();
      await inferenceLog.close();
    },
  };
}
