import type { FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../core/logger.js';
import { readQuarantine } from '../../data/validate/quarantine.js';
import {
  CARD_TX,
  closeFeatureHarness,
  openFeatureFixture,
  type FeatureHarness,
} from '../../testing/feature-fixture.js';
import { tempDirs } from '../../testing/temp.js';
import type { ServedModelCatalog } from '../served-model.js';
import { createServer } from './server.js';

const MIN = 60_000;
const T0 = Date.UTC(2026, 9, 1, 12);
const iso = (ms: number): string => new Date(ms).toISOString();
const LIMITS = { bodyLimitBytes: 16 * 1024, maxRowsPerRequest: 20 };
const NO_MODELS: ServedModelCatalog = { list: () => [], get: () => undefined, ready: () => true };

const SPEC = `
${CARD_TX}
    features:
      - { name: amount, type: float }
      - { name: country, type: string }
    aggregations:
      - { column: amount, ops: [count, sum, max], windows: [10m, 1h] }
    ttl: 1d
    validation: { policy: quarantine, rules: [{ rule: range, column: amount, min: 0 }] }
  - name: strict
    entity: card
    timestamp: ts
    features:
      - { name: amount, type: float }
    validation: { policy: fail, rules: [{ rule: range, column: amount, min: 0 }] }
feature_vectors:
  - name: card_v
    features: [tx.amount, tx.country, tx.amount_count_10m, tx.amount_sum_1h, tx.amount_max_1h]
`;

const tmp = tempDirs();
let h: FeatureHarness;
let app: FastifyInstance;

beforeEach(async () => {
  h = await openFeatureFixture({ dir: tmp.fresh(), spec: SPEC });
  app = createServer({
    catalog: NO_MODELS,
    logger: createLogger({ level: 'silent' }),
    limits: LIMITS,
    features: h.store,
    defaultMetrics: false,
  });
});
afterEach(async () => {
  await app.close();
  await closeFeatureHarness(h);
});

async function post(url: string, body: unknown): Promise<{ status: number; json: unknown }> {
  const reply = await app.inject({
    method: 'POST',
    url,
    headers: { 'content-type': 'application/json' },
    payload: JSON.stringify(body),
  });
  return { status: reply.statusCode, json: reply.json() };
}

const sendEvents = (set: string, body: unknown) => post(`/v1/feature-sets/${set}/events`, body);
const lookup = (vector: string, body: unknown) =>
  post(`/v1/feature-vectors/${vector}/online`, body);

describe('POST /v1/feature-sets/{name}/events', () => {
  it('ingests a JSON array of events and accounts for every one, quarantined ones included', async () => {
    const reply = await sendEvents('tx', [
      { card_id: 'c1', ts: iso(T0), amount: 10, country: 'FR' },
      { card_id: 'c1', ts: T0 + MIN, amount: 'lots', country: 'FR' },
      { card_id: 'c2', ts: iso(T0), amount: -1, country: 'DE' },
      { card_id: 'c1', ts: iso(T0), amount: 10, country: 'FR' },
    ]);
    expect(reply).toEqual({
      status: 200,
      json: {
        read: 4,
        written: 1,
        duplicates: 1,
        filtered: 0,
        quarantined: { 'type(amount)': 1, 'range(amount)': 1 },
        rejected: [
          { row: 2, rule: 'type(amount)', reason: expect.stringContaining("'lots'") },
          { row: 3, rule: 'range(amount)', reason: expect.any(String) },
        ],
      },
    });
    const quarantined = await readQuarantine(h.offline, 'tx');
    expect(quarantined.map((q) => q.source)).toEqual([
      expect.stringContaining('POST /v1/feature-sets/tx/events'),
      expect.stringContaining('POST /v1/feature-sets/tx/events'),
    ]);
  });

  it('accepts {"events": [...]} and adds nothing when the same events come again', async () => {
    const events = [{ card_id: 'c1', ts: T0, amount: 3, country: 'FR' }];
    expect((await sendEvents('tx', { events })).json).toMatchObject({ read: 1, written: 1 });
    expect((await sendEvents('tx', events)).json).toMatchObject({ written: 0, duplicates: 1 });
  });

  it('answers 404 for an unknown feature set', async () => {
    const reply = await sendEvents('nope', [{ card_id: 'c1', ts: T0, amount: 1 }]);
    expect(reply.status).toBe(404);
    expect(reply.json).toEqual({
      code: 'FERRY_FEATURE_SET_UNKNOWN',
      error: expect.stringContaining("feature set 'nope' is not defined; defined: tx, strict"),
    });
  });

  it.each([
    ['an object without events', { card_id: 'c1' }, "without 'events'"],
    ['a string', 'hello', 'not an array'],
    ['events that are not an array', { events: 5 }, 'not an array'],
    ['an item that is not an object', [{ card_id: 'c1', ts: T0 }, 7], 'event 2 is number 7'],
    ['an item that is an array', [[1]], 'event 1 is an array'],
  ])('answers 400 for %s', async (_what, body, message) => {
    const reply = await sendEvents('tx', body);
    expect(reply.status).toBe(400);
    expect(reply.json).toEqual({
      code: 'FERRY_REQUEST_MALFORMED',
      error: expect.stringContaining(message),
    });
  });

  it('answers 413 for more events than max_rows_per_request, or a body over the limit', async () => {
    const many = Array.from({ length: 21 }, (_, i) => ({ card_id: `c${i}`, ts: T0, amount: 1 }));
    const tooMany = await sendEvents('tx', many);
    expect(tooMany.status).toBe(413);
    expect(tooMany.json).toEqual({
      code: 'FERRY_REQUEST_TOO_LARGE',
      error: expect.stringContaining('21 events are more than server.max_rows_per_request (20)'),
    });
    const big = [{ card_id: 'c1', ts: T0, amount: 1, note: 'x'.repeat(20_000) }];
    const tooBig = await sendEvents('tx', big);
    expect(tooBig.status).toBe(413);
    expect(await h.offline.hasTable('features/tx')).toBe(false);
  });

  it('answers 422 and writes nothing when a batch fails a rule set with policy fail', async () => {
    const reply = await sendEvents('strict', [
      { card_id: 'c1', ts: T0, amount: 1 },
      { card_id: 'c2', ts: T0, amount: -1 },
    ]);
    expect(reply.status).toBe(422);
    expect(reply.json).toEqual({
      code: 'FERRY_VALIDATION_FAILED',
      error: expect.stringContaining('range'),
    });
    expect(await h.offline.hasTable('features/strict')).toBe(false);
    expect(await h.online.readLatest('strict', ['c1'])).toEqual([null]);
  });
});

describe('POST /v1/feature-vectors/{name}/online', () => {
  beforeEach(async () => {
    const reply = await sendEvents('tx', [
      { card_id: 'c1', ts: iso(T0), amount: 10, country: 'FR' },
      { card_id: 'c1', ts: iso(T0 + 5 * MIN), amount: 30, country: 'FR' },
      { card_id: 'c1', ts: T0 + 30 * MIN, amount: 5, country: 'DE' },
      { card_id: '42', ts: T0 + 30 * MIN, amount: 7, country: 'US' },
    ]);
    expect(reply.json).toMatchObject({ written: 4 });
  });

  it('answers the features of each entity in request order, windows as of at', async () => {
    // At 13:02 the 10-minute window is empty and the hour holds c1's 12:05 and 12:30 events.
    const reply = await lookup('card_v', {
      entities: [{ card_id: '42' }, { card_id: 'c1' }, { card_id: 'unknown' }, { card_id: 42 }],
      at: iso(T0 + 62 * MIN),
    });
    const card42 = {
      card_id: '42',
      amount: 7,
      country: 'US',
      amount_count_10m: 0,
      amount_sum_1h: 7,
      amount_max_1h: 7,
    };
    expect(reply).toEqual({
      status: 200,
      json: {
        results: [
          card42,
          {
            card_id: 'c1',
            amount: 5,
            country: 'DE',
            amount_count_10m: 0,
            amount_sum_1h: 35,
            amount_max_1h: 30,
          },
          // Never seen: no plain values; counts and sums of its empty windows are 0, as in training sets.
          {
            card_id: 'unknown',
            amount: null,
            country: null,
            amount_count_10m: 0,
            amount_sum_1h: 0,
            amount_max_1h: null,
          },
          card42,
        ],
      },
    });
    // At 12:35 the 10-minute window holds only the 12:30 event; the hour holds all three.
    const later = await lookup('card_v', { entities: [{ card_id: 'c1' }], at: '2026-10-01 12:35' });
    expect(later.json).toEqual({
      results: [
        {
          card_id: 'c1',
          amount: 5,
          country: 'DE',
          amount_count_10m: 1,
          amount_sum_1h: 45,
          amount_max_1h: 30,
        },
      ],
    });
  });

  it('reflects events posted over HTTP, and defaults at to now', async () => {
    const now = Date.now();
    await sendEvents('tx', [{ card_id: 'c9', ts: now - MIN, amount: 12.5, country: 'FR' }]);
    const reply = await lookup('card_v', { entities: [{ card_id: 'c9' }] });
    expect(reply.json).toEqual({
      results: [
        {
          card_id: 'c9',
          amount: 12.5,
          country: 'FR',
          amount_count_10m: 1,
          amount_sum_1h: 12.5,
          amount_max_1h: 12.5,
        },
      ],
    });
  });

  it('answers 404 for an unknown feature vector', async () => {
    const reply = await lookup('nope', { entities: [{ card_id: 'c1' }] });
    expect(reply.status).toBe(404);
    expect(reply.json).toMatchObject({ code: 'FERRY_FEATURE_VECTOR_UNKNOWN' });
  });

  it.each([
    ['a body that is not an object', [1], 'FERRY_REQUEST_MALFORMED', 'not an object'],
    ['no entities', {}, 'FERRY_REQUEST_MALFORMED', "'entities' must be a non-empty array"],
    ['empty entities', { entities: [] }, 'FERRY_REQUEST_MALFORMED', 'got an empty array'],
    ['an entity not an object', { entities: ['c1'] }, 'FERRY_REQUEST_MALFORMED', 'entity 1'],
    [
      'an entity without the key',
      { entities: [{ card_id: 'c1' }, { id: 'c1' }] },
      'FERRY_ENTITY_KEY_MISSING',
      "entity 2 lacks the key 'card_id'",
    ],
    [
      'a key that is neither text nor a number',
      { entities: [{ card_id: true }] },
      'FERRY_REQUEST_MALFORMED',
      'a key is a string or a number',
    ],
    [
      'an at that is not a time',
      { entities: [{ card_id: 'c1' }], at: 'yesterday' },
      'FERRY_REQUEST_MALFORMED',
      'an ISO 8601 time such as "2026-10-01T12:00:00Z"',
    ],
    [
      'an at on a day that does not exist',
      { entities: [{ card_id: 'c1' }], at: '2026-02-30T00:00:00Z' },
      'FERRY_REQUEST_MALFORMED',
      "'at' is string",
    ],
  ])('answers 400 for %s', async (_what, body, code, message) => {
    const reply = await lookup('card_v', body);
    expect(reply.status).toBe(400);
    expect(reply.json).toEqual({ code, error: expect.stringContaining(message) });
  });

  it('answers 413 for more entities than max_rows_per_request', async () => {
    const entities = Array.from({ length: 21 }, (_, i) => ({ card_id: `c${i}` }));
    const reply = await lookup('card_v', { entities });
    expect(reply.status).toBe(413);
    expect(reply.json).toMatchObject({ code: 'FERRY_REQUEST_TOO_LARGE' });
  });

  it('counts ingested events by outcome and times lookups by vector at /metrics', async () => {
    await sendEvents('tx', [{ card_id: 'c1', ts: T0 + 40 * MIN, amount: -2 }]);
    await lookup('card_v', { entities: [{ card_id: 'c1' }] });
    const text = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(text).toContain('ferry_ingested_events_total{feature_set="tx",outcome="written"} 4');
    expect(text).toContain('ferry_ingested_events_total{feature_set="tx",outcome="quarantined"} 1');
    expect(text).toContain('ferry_online_lookup_duration_seconds_count{vector="card_v"} 1');
  });
});
