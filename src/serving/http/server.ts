/**
 * The HTTP inference server: the Open Inference Protocol v2 REST API (health, server and model
 * metadata, inference) over a ServedModelCatalog, plus Prometheus `/metrics`.
 *
 * - Every reply carries `x-request-id` (the caller's, when it is 1-128 printable ASCII characters,
 *   else a new UUID); logs and the inference log carry the same id. The inference reply's `id` is
 *   the body's `id` when given, else that request id.
 * - Errors answer `{ "error": message, "code": "FERRY_..." }` with the status of the code, decided
 *   in one error handler (`errors.ts`); a bad request is never a 500.
 * - The request path does no per-request compilation: the body's outer shape is checked by a JSON
 *   schema compiled once, and everything that depends only on the model is cached (`tensors.ts`).
 * - `/versions/{v}` routes use the catalog's pinned version (its own signature) when the catalog
 *   is a VersionedCatalog; `/versions/{v}/ready` then loads that version if needed. Over a plain
 *   catalog they check `v` against `versions` and pass it to `infer`.
 * - Closing the server does not close the inference log: its owner flushes and closes it.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import Fastify, {
  LogController,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import type { Logger } from '../../core/logger.js';
import { FerryError } from '../../errors/index.js';
import { FERRY_VERSION } from '../../version.js';
import type { InferenceLog } from '../../monitoring/inference-log.js';
import type { VersionedCatalog } from '../catalog.js';
import { createServerMetrics, type ServerMetrics } from '../metrics.js';
import type { ServedModel, ServedModelCatalog } from '../served-model.js';
import type { ServedEndpoint } from '../graph/endpoint.js';
import { registerEndpointRoutes } from './endpoints.js';
import { errorReply, type ErrorContext } from './errors.js';
import { registerFeatureRoutes, type FeatureRoutesStore } from './features.js';
import {
  decodeInputs,
  encodeOutputs,
  selectOutputs,
  viewOf,
  type InferRequestBody,
  type ResponseOutput,
} from './tensors.js';

export interface ServerLimits {
  /** Larger bodies are refused with 413 before they are parsed. */
  readonly bodyLimitBytes: number;
  /** Rows (N) one inference request may carry. */
  readonly maxRowsPerRequest: number;
  /**
   * Work requests (POSTs) being answered at once; beyond, 503 FERRY_OVERLOADED at once rather
   * than a growing queue. Unbounded when left out.
   */
  readonly maxInFlight?: number;
}

export interface ServerOptions {
  readonly catalog: ServedModelCatalog;
  readonly inferenceLog?: InferenceLog;
  readonly logger: Logger;
  readonly limits: ServerLimits;
  /** Server name in `GET /v2`; `ferry` by default. */
  readonly name?: string;
  /** Server version in `GET /v2`; Ferry's version by default. */
  readonly version?: string;
  /** Process metrics (CPU, memory, GC, event loop) at `/metrics`; on by default. */
  readonly defaultMetrics?: boolean;
  /** Serves the feature store's `/v1` routes (streamed events, online lookups; `features.ts`). */
  readonly features?: FeatureRoutesStore;
  /** Serves the endpoints' `/v1/endpoints` routes (`endpoints.ts`). */
  readonly endpoints?: () => ReadonlyMap<string, ServedEndpoint>;
  /** Metrics to use instead of new ones (a caller that counts into them too, e.g. stream consumers). */
  readonly metrics?: ServerMetrics;
  /**
   * What `GET /metrics` answers instead of this server's own registry: the workers of
   * `ferry serve --workers N` answer with every worker's metrics combined (`../workers.ts`).
   */
  readonly metricsText?: () => Promise<{ text: string; contentType: string }>;
}

export interface InferResponse {
  readonly model_name: string;
  readonly model_version: string;
  readonly id: string;
  readonly outputs: ResponseOutput[];
}

interface ModelParams {
  name: string;
  version?: string;
}

/**
 * What an inference request resolved to, for the metrics written once it is answered. Kept on
 * the request (declared with `decorateRequest`, so every request has the same shape) rather
 * than in a WeakMap keyed by request: WeakMap entries of short-lived keys cost the GC extra
 * work on every collection.
 */
interface AnsweredRequest {
  ferryAnswered: { model: string; version: string } | null;
}

const REQUEST_ID = /^[\x21-\x7e]{1,128}$/;

function requestIdOf(req: IncomingMessage): string {
  const header = req.headers['x-request-id'];
  return typeof header === 'string' && REQUEST_ID.test(header) ? header : randomUUID();
}

// The body's outer shape; tensor contents are checked against the model in `tensors.ts`.
const INFER_BODY_SCHEMA = {
  type: 'object',
  required: ['inputs'],
  properties: {
    id: { type: 'string' },
    parameters: { type: 'object' },
    inputs: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        required: ['name', 'shape', 'datatype', 'data'],
        properties: {
          name: { type: 'string', minLength: 1 },
          shape: { type: 'array', minItems: 1, items: { type: 'integer', minimum: 0 } },
          datatype: { type: 'string' },
          parameters: { type: 'object' },
          data: { type: 'array' },
        },
      },
    },
    outputs: {
      type: 'array',
      items: {
        type: 'object',
        required: ['name'],
        properties: { name: { type: 'string' }, parameters: { type: 'object' } },
      },
    },
  },
} as const;

function isVersioned(catalog: ServedModelCatalog): catalog is VersionedCatalog {
  const c = catalog as Partial<VersionedCatalog>;
  return typeof c.getVersion === 'function' && typeof c.isModelReady === 'function';
}

/**
 * Builds the server (not yet listening).
 * @example
 * const app = createServer({ catalog, inferenceLog, logger, limits: { bodyLimitBytes: 4_194_304, maxRowsPerRequest: 10_000 } });
 * await app.listen({ host: '127.0.0.1', port: 8080 });
 */
export function createServer(options: ServerOptions): FastifyInstance {
  const { catalog, inferenceLog, limits } = options;
  const versioned = isVersioned(catalog) ? catalog : undefined;
  const metrics =
    options.metrics ??
    createServerMetrics({
      ...(inferenceLog === undefined ? {} : { inferenceLog }),
      ...(options.defaultMetrics === undefined ? {} : { defaultMetrics: options.defaultMetrics }),
    });
  const serverMetadata = {
    name: options.name ?? 'ferry',
    version: options.version ?? FERRY_VERSION,
    extensions: [],
  };

  const app = Fastify({
    loggerInstance: options.logger,
    logController: new LogController({
      disableRequestLogging: true,
      requestIdLogLabel: 'requestId',
    }),
    genReqId: requestIdOf,
    bodyLimit: limits.bodyLimitBytes,
    routerOptions: { maxParamLength: 256 },
    // Coercion would let "shape": "3" pass as [3]; the protocol is typed JSON, so check as sent.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
  });

  // Only JSON is spoken. Our own parser keeps JSON.parse's message, which says where the body broke.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    const text = body as string;
    if (text.length === 0) {
      done(
        new FerryError(
          'FERRY_REQUEST_MALFORMED',
          'the request body is empty; send a JSON object such as {"inputs": [...]}',
        ),
        undefined,
      );
      return;
    }
    try {
      done(null, JSON.parse(text));
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      done(
        new FerryError(
          'FERRY_REQUEST_MALFORMED',
          `the request body is not valid JSON (${reason}); send a JSON object such as {"inputs": [...]}`,
        ),
        undefined,
      );
    }
  });

  app.decorateRequest('ferryAnswered', null);

  let inFlight = 0;
  const maxInFlight = limits.maxInFlight ?? Number.POSITIVE_INFINITY;
  // Without a limit the count is never read, so requests skip the listener that keeps it.
  const countInFlight = Number.isFinite(maxInFlight);
  app.addHook('onRequest', (request, reply, done) => {
    void reply.header('x-request-id', request.id);
    if (!countInFlight || request.method !== 'POST') {
      done();
      return;
    }
    if (inFlight >= maxInFlight) {
      done(
        new FerryError(
          'FERRY_OVERLOADED',
          `the server is answering ${inFlight} requests, its limit (server.max_in_flight); retry with backoff, or add workers (ferry serve --workers N)`,
        ),
      );
      return;
    }
    inFlight++;
    // 'close' fires once whatever happens (answered, failed, client gone), so the count never leaks.
    reply.raw.once('close', () => {
      inFlight--;
    });
    done();
  });

  app.addHook('onResponse', (request, reply, done) => {
    const status = reply.statusCode;
    const info = (request as unknown as AnsweredRequest).ferryAnswered;
    // A getter that builds an object of every route option on each read: read it once.
    const route = request.routeOptions.url;
    let model = info?.model ?? '';
    if (!info && route?.startsWith('/v2/')) {
      // Only names actually served become label values: a scan of made-up names must not
      // create a series each.
      const name = (request.params as Partial<ModelParams> | undefined)?.name;
      if (name !== undefined && catalog.get(name)) model = name;
    }
    metrics.requests.inc({
      route: route ?? 'unmatched',
      model,
      status: String(status),
    });
    if (info) metrics.duration.observe(info, reply.elapsedTime / 1000);
    request.log.debug(
      { method: request.method, url: request.url, status, ms: reply.elapsedTime },
      'request completed',
    );
    done();
  });

  const contextOf = (request: FastifyRequest): ErrorContext => ({
    requestId: request.id,
    bodyLimitBytes: limits.bodyLimitBytes,
    contentType: request.headers['content-type'],
  });

  app.setErrorHandler((err, request, reply) => {
    const out = errorReply(err, contextOf(request));
    if (out.internal) request.log.error({ err }, 'request failed');
    else request.log.info({ code: out.body.code, status: out.status }, out.body.error);
    void reply.code(out.status).type('application/json; charset=utf-8').send(out.body);
  });

  app.setNotFoundHandler((request, reply) => {
    const err = new FerryError(
      'FERRY_NOT_FOUND',
      `no route for ${request.method} ${request.url.split('?')[0]}; the API lives under /v2 (Open Inference Protocol v2), /v1 (endpoints, feature store) and /metrics`,
    );
    const out = errorReply(err, contextOf(request));
    void reply.code(out.status).send(out.body);
  });

  function notServed(name: string): FerryError {
    const names = catalog.list().map((m) => m.name);
    return new FerryError(
      'FERRY_MODEL_NOT_FOUND',
      `model '${name}' is not served here; served models: ${names.join(', ') || '(none)'}`,
    );
  }

  /** The served model a route addresses (pinned to `version` when the catalog can do that). */
  async function resolve(
    params: ModelParams,
  ): Promise<{ served: ServedModel; passVersion: string | undefined }> {
    const served = catalog.get(params.name);
    if (!served) throw notServed(params.name);
    const version = params.version;
    if (version === undefined || version === served.version)
      return { served, passVersion: undefined };
    if (versioned)
      return { served: await versioned.getVersion(params.name, version), passVersion: undefined };
    if (!served.versions.includes(version)) {
      throw new FerryError(
        'FERRY_MODEL_VERSION_NOT_FOUND',
        `model '${served.name}' has no version '${version}'; versions: ${served.versions.join(', ')}`,
      );
    }
    return { served, passVersion: version };
  }

  app.get('/v2/health/live', async () => ({ live: true }));

  app.get('/v2/health/ready', async (_request, reply) => {
    const ready = catalog.ready();
    return reply.code(ready ? 200 : 503).send({ ready });
  });

  app.get('/v2', async () => serverMetadata);

  async function modelReady(
    request: FastifyRequest<{ Params: ModelParams }>,
    reply: FastifyReply,
  ): Promise<FastifyReply> {
    const { name, version } = request.params;
    const served = catalog.get(name);
    if (!served) throw notServed(name);
    let ready: boolean;
    if (version === undefined || version === served.version) {
      ready = versioned ? versioned.isModelReady(name) : catalog.ready();
    } else {
      try {
        await resolve(request.params);
        ready = versioned ? true : catalog.ready();
      } catch (err) {
        if (err instanceof FerryError && err.status === 404) throw err;
        request.log.warn({ err, model: name, version }, 'model version failed to load');
        ready = false;
      }
    }
    return reply.code(ready ? 200 : 503).send({ name, ready });
  }
  app.get('/v2/models/:name/ready', modelReady);
  app.get('/v2/models/:name/versions/:version/ready', modelReady);

  async function modelMetadata(request: FastifyRequest<{ Params: ModelParams }>) {
    const { served } = await resolve(request.params);
    return viewOf(served).metadata;
  }
  app.get('/v2/models/:name', modelMetadata);
  app.get('/v2/models/:name/versions/:version', modelMetadata);

  async function infer(
    request: FastifyRequest<{ Params: ModelParams; Body: InferRequestBody }>,
    reply: FastifyReply,
  ): Promise<InferResponse> {
    const { served, passVersion } = await resolve(request.params);
    const view = viewOf(served);
    const body = request.body;
    const selected = selectOutputs(view, body.outputs);
    const input = decodeInputs(view, body.inputs, limits.maxRowsPerRequest);
    const result = await served.infer(input, { requestId: request.id }, passVersion);
    if (result.prediction.predict.length !== input.rowCount) {
      throw new FerryError(
        'FERRY_INTERNAL',
        `model '${served.name}' version ${result.modelVersion} returned ${result.prediction.predict.length} predictions for ${input.rowCount} rows`,
      );
    }
    (request as unknown as AnsweredRequest).ferryAnswered = {
      model: served.name,
      version: result.modelVersion,
    };
    metrics.rows.inc({ model: served.name }, input.rowCount);
    if (!result.logged)
      inferenceLog?.record({
        model: served.monitoredModel,
        served: served.name,
        version: result.modelVersion,
        requestId: request.id,
        ts: Date.now(),
        latencyMs: reply.elapsedTime,
        features: result.features,
        prediction: result.prediction,
        ...(served.signature.classes === undefined ? {} : { classes: served.signature.classes }),
      });
    return {
      model_name: served.name,
      model_version: result.modelVersion,
      id: body.id ?? request.id,
      outputs: encodeOutputs(view, result.prediction, selected),
    };
  }
  const inferSchema = { schema: { body: INFER_BODY_SCHEMA } };
  app.post('/v2/models/:name/infer', inferSchema, infer);
  app.post('/v2/models/:name/versions/:version/infer', inferSchema, infer);

  if (options.features) {
    // Typed with the base logger, as callers see the server (see the return below).
    registerFeatureRoutes(app as unknown as FastifyInstance, {
      features: options.features,
      maxRowsPerRequest: limits.maxRowsPerRequest,
      metrics,
    });
  }

  if (options.endpoints) {
    registerEndpointRoutes(app as unknown as FastifyInstance, {
      endpoints: options.endpoints,
      maxRowsPerRequest: limits.maxRowsPerRequest,
    });
  }

  app.get('/metrics', async (_request, reply) => {
    if (options.metricsText) {
      const { text, contentType } = await options.metricsText();
      return reply.type(contentType).send(text);
    }
    const text = await metrics.registry.metrics();
    return reply.type(metrics.registry.contentType).send(text);
  });

  // Typed with the pino logger inside; callers only need the base logger type.
  return app as unknown as FastifyInstance;
}
