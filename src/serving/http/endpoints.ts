/**
 * Endpoints over HTTP in Ferry's own JSON, beside the Open Inference Protocol (where each endpoint
 * is also a model of the same name):
 *
 * - `POST /v1/endpoints/{name}/predict`: `{"records": [{...}], "id": "<optional>"}` answers
 *   `{"endpoint", "version", "id", "results": [{...}]}`, one result per record in order, each
 *   holding the endpoint's response fields (by default the answer, its score, `model` and
 *   `model_version`). 400 when `records` is not a non-empty array of objects or a value has the
 *   wrong type, 413 beyond `server.max_rows_per_request`, 404 unknown endpoint.
 * - `GET /v1/endpoints`: every endpoint served, with its deployment version, request fields,
 *   response fields and the model versions it predicts with now. `GET /v1/endpoints/{name}`: one.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { JsonValue } from '../../core/json.js';
import type { Scalar } from '../../core/table.js';
import { FerryError } from '../../errors/index.js';
import type { ServedEndpoint } from '../graph/endpoint.js';

export interface EndpointRoutesOptions {
  /** The endpoints served, by name (read per request: the set may change). */
  readonly endpoints: () => ReadonlyMap<string, ServedEndpoint>;
  readonly maxRowsPerRequest: number;
}

/** The reply of `POST /v1/endpoints/{name}/predict`. */
export interface PredictResponse {
  readonly endpoint: string;
  readonly version: string;
  readonly id: string;
  readonly results: Record<string, Scalar>[];
}

/** One endpoint as `GET /v1/endpoints` shows it. */
export interface EndpointView {
  readonly name: string;
  readonly version: string;
  readonly description: string | null;
  readonly inputs: readonly { name: string; type: string; optional: boolean }[];
  readonly response: readonly string[];
  readonly steps: readonly { name: string; kind: string }[];
  readonly models: readonly { model: string; version: string }[];
}

interface NameParams {
  name: string;
}

const PREDICT_SHAPE =
  'send {"records": [{"<field>": <value>, ...}]}, one object per record (GET /v1/endpoints/<name> lists the fields)';

/** Registers the routes on `app`. */
export function registerEndpointRoutes(app: FastifyInstance, options: EndpointRoutesOptions): void {
  const lookup = (name: string): ServedEndpoint => {
    const endpoints = options.endpoints();
    const endpoint = endpoints.get(name);
    if (!endpoint) {
      throw new FerryError(
        'FERRY_ENDPOINT_NOT_FOUND',
        `endpoint '${name}' is not served here; served endpoints: ${[...endpoints.keys()].join(', ') || '(none)'}`,
      );
    }
    return endpoint;
  };

  app.get('/v1/endpoints', async () => ({
    endpoints: [...options.endpoints().values()].map(viewOf),
  }));

  app.get('/v1/endpoints/:name', async (request: FastifyRequest<{ Params: NameParams }>) =>
    viewOf(lookup(request.params.name)),
  );

  app.post(
    '/v1/endpoints/:name/predict',
    async (request: FastifyRequest<{ Params: NameParams }>): Promise<PredictResponse> => {
      const endpoint = lookup(request.params.name);
      const body = request.body as JsonValue | undefined;
      if (!body || typeof body !== 'object' || Array.isArray(body)) {
        throw new FerryError(
          'FERRY_REQUEST_MALFORMED',
          `the body is not a JSON object; ${PREDICT_SHAPE}`,
        );
      }
      const records = body.records;
      if (!Array.isArray(records) || records.length === 0) {
        throw new FerryError(
          'FERRY_REQUEST_MALFORMED',
          `"records" must be a non-empty array; ${PREDICT_SHAPE}`,
        );
      }
      if (records.length > options.maxRowsPerRequest) {
        throw new FerryError(
          'FERRY_REQUEST_TOO_LARGE',
          `${records.length} records in one request; at most ${options.maxRowsPerRequest} (server.max_rows_per_request): split the request`,
        );
      }
      const id = typeof body.id === 'string' ? body.id : request.id;
      const answer = await endpoint.predictRecords(
        records as Readonly<Record<string, JsonValue>>[],
        { requestId: request.id },
      );
      return { endpoint: endpoint.name, version: answer.version, id, results: answer.results };
    },
  );
}

function viewOf(endpoint: ServedEndpoint): EndpointView {
  const graph = endpoint.graph();
  return {
    name: endpoint.name,
    version: endpoint.version,
    description: graph.endpoint.description ?? null,
    inputs: graph.inputs.map((i) => ({
      name: i.name,
      type: i.type,
      optional: i.optional === true,
    })),
    response: graph.response.map((r) => r.name),
    steps: graph.steps.map((s) => ({ name: s.name, kind: s.kind })),
    models: graph.models.map((m) => ({ model: m.model, version: m.version })),
  };
}
