/**
 * The feature store over HTTP, beside the inference API on `ferry serve`:
 *
 * - `POST /v1/feature-sets/{name}/events`: a JSON array of events (or `{"events": [...]}`),
 *   ingested through `FeatureStore.ingestEvents`, the path batch ingestion and the event bus share.
 *   200 with where every event went (`read`, `written`, `duplicates`, `filtered`, `quarantined`
 *   by rule, `rejected` rows with rule and reason): quarantined events are accounted for, not an
 *   error. 404 unknown feature set, 400 not an array of objects, 413 more events than
 *   `server.max_rows_per_request`, 422 FERRY_VALIDATION_FAILED under policy `fail` (nothing written).
 * - `POST /v1/feature-vectors/{name}/online`: `{"entities": [{"<key>": "42"}], "at": "<ISO time>"}`
 *   answers `{"results": [{"<key>": "42", ...features}]}` in request order, from the online store
 *   as of `at` (default now): window aggregates cover at - window < ts <= at.
 *
 * Errors are thrown as FerryErrors and answered by the server's one error handler (`errors.ts`).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { JsonObject, JsonValue } from '../../core/json.js';
import type { Row } from '../../core/table.js';
import { coerceInput } from '../../data/prep/convert.js';
import { FerryError } from '../../errors/index.js';
import type { FeatureStore, IngestResult, RejectedRow } from '../../feature-store/feature-store.js';
import { outcomesOf } from '../../feature-store/stream.js';
import type { ServerMetrics } from '../metrics.js';

/** What the routes need of the feature store. */
export type FeatureRoutesStore = Pick<
  FeatureStore,
  'ingestEvents' | 'getOnlineVector' | 'onlineKeyColumn'
>;

export interface FeatureRoutesOptions {
  readonly features: FeatureRoutesStore;
  /** Events per ingestion request and entities per lookup, at most. */
  readonly maxRowsPerRequest: number;
  readonly metrics: Pick<ServerMetrics, 'ingestedEvents' | 'onlineLookupDuration'>;
}

/** The reply of `POST /v1/feature-sets/{name}/events`. */
export interface IngestEventsResponse {
  readonly read: number;
  readonly written: number;
  readonly duplicates: number;
  readonly filtered: number;
  readonly quarantined: Readonly<Record<string, number>>;
  readonly rejected: readonly RejectedRow[];
}

/** The reply of `POST /v1/feature-vectors/{name}/online`. */
export interface OnlineLookupResponse {
  readonly results: Row[];
}

interface NameParams {
  name: string;
}

const EVENTS_SHAPE =
  'send a JSON array of event objects, e.g. [{"card_id": "c42", "ts": "2026-10-01T12:00:00Z", "amount": 12.5}], or {"events": [...]}';
const LOOKUP_SHAPE =
  'send {"entities": [{"<key column>": "<key>"}], "at": "<optional ISO 8601 time>"}';
const AT_FORMAT =
  'an ISO 8601 time such as "2026-10-01T12:00:00Z" (without an offset it is UTC), or UTC milliseconds as a number';

/**
 * Registers both routes on `app`.
 * @example registerFeatureRoutes(app, { features: ws.features, maxRowsPerRequest: 10_000, metrics });
 */
export function registerFeatureRoutes(app: FastifyInstance, options: FeatureRoutesOptions): void {
  const { features, maxRowsPerRequest: maxRows, metrics } = options;

  app.post(
    '/v1/feature-sets/:name/events',
    async (request: FastifyRequest<{ Params: NameParams }>): Promise<IngestEventsResponse> => {
      const { name } = request.params;
      const events = eventsOf(request.body as JsonValue | undefined, maxRows);
      let result: IngestResult;
      try {
        result = await features.ingestEvents(name, events, {
          origin: `POST /v1/feature-sets/${name}/events (request ${request.id})`,
        });
      } catch (error) {
        if (error instanceof FerryError && error.code === 'FERRY_VALIDATION_FAILED')
          metrics.ingestedEvents.inc({ feature_set: name, outcome: 'refused' }, events.length);
        throw error;
      }
      for (const [outcome, n] of outcomesOf(result))
        metrics.ingestedEvents.inc({ feature_set: name, outcome }, n);
      return {
        read: result.read,
        written: result.written,
        duplicates: result.duplicates,
        filtered: result.filtered,
        quarantined: result.quarantined,
        rejected: result.rejected,
      };
    },
  );

  app.post(
    '/v1/feature-vectors/:name/online',
    async (request: FastifyRequest<{ Params: NameParams }>): Promise<OnlineLookupResponse> => {
      const { name } = request.params;
      const keyColumn = features.onlineKeyColumn(name);
      const { keys, at } = lookupOf(request.body as JsonValue | undefined, keyColumn, maxRows);
      const started = process.hrtime.bigint();
      const results = await features.getOnlineVector(name, keys, at);
      metrics.onlineLookupDuration.observe(
        { vector: name },
        Number(process.hrtime.bigint() - started) / 1e9,
      );
      return { results };
    },
  );
}

/** The events of an ingestion body, checked: an array of objects, within the row bound. */
function eventsOf(body: JsonValue | undefined, maxRows: number): JsonObject[] {
  let events: JsonValue | undefined = body;
  if (isObject(body)) {
    if (!('events' in body)) {
      throw new FerryError(
        'FERRY_REQUEST_MALFORMED',
        `the body is an object without 'events'; ${EVENTS_SHAPE}`,
      );
    }
    events = body.events;
  }
  if (!Array.isArray(events)) {
    throw new FerryError(
      'FERRY_REQUEST_MALFORMED',
      `the events are ${describe(events)}, not an array; ${EVENTS_SHAPE}`,
    );
  }
  if (events.length > maxRows) {
    throw new FerryError(
      'FERRY_REQUEST_TOO_LARGE',
      `${events.length} events are more than server.max_rows_per_request (${maxRows}); send at most ${maxRows} per request, or raise the limit`,
    );
  }
  const bad = events.findIndex((e) => !isObject(e));
  if (bad >= 0) {
    throw new FerryError(
      'FERRY_REQUEST_MALFORMED',
      `event ${bad + 1} is ${describe(events[bad])}, not an object; ${EVENTS_SHAPE}`,
    );
  }
  return events as JsonObject[];
}

/** The keys and time of a lookup body, checked. */
function lookupOf(
  body: JsonValue | undefined,
  keyColumn: string,
  maxRows: number,
): { keys: string[]; at: number } {
  if (!isObject(body)) {
    throw new FerryError(
      'FERRY_REQUEST_MALFORMED',
      `the body is ${describe(body)}, not an object; ${LOOKUP_SHAPE.replace('<key column>', keyColumn)}`,
    );
  }
  const entities = body.entities;
  if (!Array.isArray(entities) || entities.length === 0) {
    throw new FerryError(
      'FERRY_REQUEST_MALFORMED',
      `'entities' must be a non-empty array of objects, got ${describe(entities)}; ${LOOKUP_SHAPE.replace('<key column>', keyColumn)}`,
    );
  }
  if (entities.length > maxRows) {
    throw new FerryError(
      'FERRY_REQUEST_TOO_LARGE',
      `${entities.length} entities are more than server.max_rows_per_request (${maxRows}); look up at most ${maxRows} per request, or raise the limit`,
    );
  }
  const keys = entities.map((entity, i) => {
    if (!isObject(entity)) {
      throw new FerryError(
        'FERRY_REQUEST_MALFORMED',
        `entity ${i + 1} is ${describe(entity)}, not an object such as {"${keyColumn}": "42"}`,
      );
    }
    const key = entity[keyColumn];
    if (key === undefined || key === null || key === '') {
      throw new FerryError(
        'FERRY_ENTITY_KEY_MISSING',
        `entity ${i + 1} lacks the key '${keyColumn}'; send it as {"${keyColumn}": "42"}`,
      );
    }
    if (typeof key === 'string') return key;
    if (typeof key === 'number' && Number.isFinite(key)) return String(key);
    throw new FerryError(
      'FERRY_REQUEST_MALFORMED',
      `entity ${i + 1} has '${keyColumn}' ${describe(key)}; a key is a string or a number`,
    );
  });
  return { keys, at: timeOf(body.at) };
}

function timeOf(value: JsonValue | undefined): number {
  if (value === undefined || value === null) return Date.now();
  if (typeof value === 'number' && Number.isFinite(value)) return Math.trunc(value);
  // Ferry's one timestamp grammar (the one events are read by): ISO 8601 with real days and times.
  const ms = typeof value === 'string' ? coerceInput(value, 'timestamp') : null;
  if (typeof ms !== 'number') {
    throw new FerryError(
      'FERRY_REQUEST_MALFORMED',
      `'at' is ${describe(value)}; send ${AT_FORMAT}`,
    );
  }
  return ms;
}

function isObject(value: JsonValue | undefined): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: JsonValue | undefined): string {
  if (value === undefined) return 'missing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return value.length === 0 ? 'an empty array' : 'an array';
  const text = JSON.stringify(value);
  return `${typeof value === 'object' ? 'an object' : typeof value} ${text.length > 40 ? `${text.slice(0, 37)}...` : text}`;
}
