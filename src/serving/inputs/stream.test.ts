/** The stream input of endpoints: answers, dead letters and redeliveries, in memory and on NATS. */
import fs from 'node:fs';
import path from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { defineProject } from '../../config/load.js';
import type { ProjectInput } from '../../config/schema.js';
import type { JsonObject, JsonValue } from '../../core/json.js';
import { silentLogger } from '../../core/logger.js';
import { tableFromRows, type Row } from '../../core/table.js';
import { profileTable } from '../../data/profile.js';
import type { EventBus } from '../../events/event-bus.js';
import { openNatsEventBus } from '../../events/nats.js';
import type { FeatureStore } from '../../feature-store/feature-store.js';
import type { OnlineStore } from '../../feature-store/online/online-store.js';
import { openSqliteOnlineStore } from '../../feature-store/online/sqlite.js';
import { openWorkspace, type Workspace } from '../../project/workspace.js';
import { openFeatureFixture } from '../../testing/feature-fixture.js';
import { uniqueName, type Closable } from '../../testing/harness.js';
import { fitToyGbdt, TOY_SCHEMA, TOY_SIGNATURE } from '../../testing/model-fixture.js';
import { testService } from '../../testing/services.js';
import { tempDirs } from '../../testing/temp.js';
import { encodeNativeModel } from '../../training/native-model.js';
import { createRng } from '../../training/random.js';
import { ServedEndpoint } from '../graph/endpoint.js';
import { createModelProvider } from '../graph/models.js';
import type { GraphObserver } from '../graph/run.js';
import { startServer } from '../start.js';
import {
  endpointDeadLetterSubject,
  startEndpointConsumers,
  type EndpointConsumerOptions,
  type EndpointStreamOutcome,
} from './stream.js';

const tmp = tempDirs();
/** Card events a minute old: within the feature set's TTL (7 days) whenever the tests run. */
const T0 = Date.now() - 60_000;
const SUBJECT = 'ferry.requests.scorer';
const REPLY = 'ferry.answers.scorer';
const DEAD = endpointDeadLetterSubject('scorer');
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Label 'yes' when x > 0.5 or the color is red; 'no' otherwise (the toy model's rule). */
function toyRows(n: number, seed: number): Row[] {
  const rand = createRng(seed);
  const colors = ['red', 'green', 'blue'];
  return Array.from({ length: n }, () => {
    const x = rand();
    const color = colors[Math.floor(rand() * 3)] as string;
    return { x, color, label: x > 0.5 || color === 'red' ? 'yes' : 'no' };
  });
}
const TRAIN = tableFromRows(TOY_SCHEMA, toyRows(800, 1));
const MODEL = fitToyGbdt(TRAIN);

/** Card colors in the online store: the endpoint's enrich step adds them to each record. */
const CARDS = [
  { card_id: 'c1', ts: T0, color: 'red' },
  { card_id: 'c2', ts: T0, color: 'green' },
  { card_id: 'c3', ts: T0, color: 'blue' },
  { card_id: 'c4', ts: T0, color: 'green' },
];

/**
 * `scorer`: enrich the card's color, x = amount / 100, then the toy model. Its answer depends on
 * the looked-up color and the transformed amount, so a record answered without either is wrong.
 */
function projectInput(eventBus?: ProjectInput['event_bus']): ProjectInput {
  return {
    entities: [{ name: 'card', keys: ['card_id'] }],
    feature_sets: [
      {
        name: 'cards',
        entity: 'card',
        timestamp: 'ts',
        features: [{ name: 'color', type: 'string' }],
      },
    ],
    feature_vectors: [{ name: 'card_v', features: ['cards.color'] }],
    endpoints: [
      {
        name: 'scorer',
        inputs: { amount: 'float' },
        steps: [
          { kind: 'enrich', vector: 'card_v' },
          { kind: 'transform', set: { x: 'amount / 100' } },
          { kind: 'model', model: 'toy' },
        ],
        stream: { subject: SUBJECT, reply_subject: REPLY, max_deliver: 3 },
      },
    ],
    ...(eventBus ? { event_bus: eventBus } : {}),
  };
}

/**
 * `scorer` with a custom step before its model, calling a risk service (here, a function) that
 * cannot score an amount of 666: a server-side failure of one record's content, not the
 * client's error (FERRY_STEP_FAILED, 502), as a real dependency failing on one value gives.
 */
function riskyInput(eventBus?: ProjectInput['event_bus']): ProjectInput {
  const input = projectInput(eventBus);
  const endpoint = input.endpoints?.[0];
  if (!endpoint) throw new Error('no endpoint');
  const [enrich, ...rest] = endpoint.steps;
  if (!enrich) throw new Error('no steps');
  return {
    ...input,
    endpoints: [
      {
        ...endpoint,
        steps: [
          enrich,
          { kind: 'custom', module: 'steps/risk.mjs', outputs: { risk: 'float' } },
          ...rest,
        ],
      },
    ],
  };
}

const RISK_MODULE = [
  'export default function (records) {',
  '  for (const r of records) {',
  '    if (r.amount === 666) throw new Error(`risk service cannot score amount ${r.amount}`);',
  '    r.risk = r.amount / 1000;',
  '  }',
  '}',
  '',
].join('\n');

/** Record i: cards c1..c4 in turn, amounts spread over 0..99 (x on both sides of 0.5). */
function record(i: number): JsonObject {
  return { card_id: `c${(i % 4) + 1}`, amount: (i * 37) % 100 };
}

const toClose: Closable[] = [];
afterEach(async () => {
  for (const c of toClose.splice(0).reverse()) await c.close();
});

/** A workspace with the toy model registered and the cards' colors ingested. */
async function setup(input: ProjectInput = projectInput()): Promise<Workspace> {
  const ws = await openWorkspace(defineProject(tmp.fresh(), input));
  toClose.push(ws);
  await ws.registry.register({
    model: 'toy',
    runtime: 'native',
    artifact: encodeNativeModel(MODEL),
    signature: TOY_SIGNATURE,
    metrics: {},
    params: {},
    lineage: {},
    profile: profileTable(TRAIN),
  });
  await ws.features.ingestEvents('cards', CARDS);
  return ws;
}

/** A workspace whose `scorer` has the risk step of {@link riskyInput}, its module written. */
async function setupRisky(eventBus?: ProjectInput['event_bus']): Promise<Workspace> {
  const ws = await setup(riskyInput(eventBus));
  fs.mkdirSync(path.join(ws.project.dir, 'steps'), { recursive: true });
  fs.writeFileSync(path.join(ws.project.dir, 'steps', 'risk.mjs'), RISK_MODULE);
  return ws;
}

/**
 * One message whose records fail a step server-side, among good ones in the same batch: each good
 * message is answered exactly once (so acknowledged at its first delivery: a redelivered one would
 * be answered again), and only the bad one is dead-lettered, after max_deliver (3) deliveries,
 * with its own code and reason.
 */
async function poisonInBatchCase(
  ws: Workspace,
  batch: EndpointConsumerOptions['batch'],
): Promise<{
  runs: number;
}> {
  const seen = watch();
  const endpoint = await serve(ws, { observer: seen });
  const replies = await listen(ws.events, REPLY);
  const dead = await listen(ws.events, DEAD);
  const counts = await consume(endpoint, ws.events, batch);
  const bad = { id: 'bad', records: [record(3), { card_id: 'c2', amount: 666 }] };
  const good: { id: string; records: JsonObject[] }[] = [
    { id: 'good-1', records: [record(1), record(2)] },
    { id: 'good-2', records: [record(4)] },
    { id: 'good-3', records: [record(5), record(6), record(7)] },
  ];
  await Promise.all(
    [good[0], bad, good[1], good[2]].map((m) => ws.events.publish(SUBJECT, m as JsonValue)),
  );
  await ws.events.drain();
  // Taken before `direct` runs the graph for the expected answers.
  const runs = seen.runs;

  expect(replies.map((r) => r.id).sort()).toEqual(['good-1', 'good-2', 'good-3']);
  for (const g of good) {
    expect(replies.find((r) => r.id === g.id)).toEqual({
      id: g.id,
      endpoint: 'scorer',
      version: '1',
      results: await direct(endpoint, g.records),
    });
  }
  expect(dead).toEqual([
    {
      subject: SUBJECT,
      data: bad,
      error: {
        code: 'FERRY_STEP_FAILED',
        message: expect.stringContaining('risk service cannot score amount 666'),
      },
      deliveries: 3,
    },
  ]);
  expect(counts).toEqual({ answered: 6, dead: 2 });
  return { runs };
}

/** The `scorer` endpoint of the workspace, on its stores unless told otherwise. */
function serve(
  ws: Workspace,
  options: { events?: EventBus; features?: FeatureStore; observer?: GraphObserver } = {},
): Promise<ServedEndpoint> {
  const { spec } = ws.project;
  return ServedEndpoint.create({
    endpoint: spec.endpoints[0] as (typeof spec.endpoints)[number],
    deps: {
      spec,
      root: ws.project.dir,
      models: createModelProvider(ws.registry),
      features: options.features ?? ws.features,
      events: options.events ?? ws.events,
    },
    logger: silentLogger(),
    ...(options.observer ? { observer: options.observer } : {}),
  });
}

/** Counts graph runs (model step calls) and the codes of failed steps. */
function watch(): Required<Pick<GraphObserver, 'onStep'>> & { runs: number; errors: string[] } {
  const seen = {
    runs: 0,
    errors: [] as string[],
    onStep(event: Parameters<NonNullable<GraphObserver['onStep']>>[0]) {
      if (event.kind === 'model') seen.runs++;
      if (event.error) seen.errors.push(event.error.code);
    },
  };
  return seen;
}

async function listen(events: EventBus, subject: string): Promise<JsonObject[]> {
  const got: JsonObject[] = [];
  const sub = await events.subscribe(subject, async (m) => {
    got.push(m.data as JsonObject);
  });
  toClose.push({ close: () => sub.unsubscribe() });
  return got;
}

/** Starts the consumers of one `scorer` endpoint; returns its outcome counts, kept up to date. */
async function consume(
  endpoint: ServedEndpoint,
  events: EventBus,
  batch?: EndpointConsumerOptions['batch'],
): Promise<Record<EndpointStreamOutcome, number>> {
  const counts = { answered: 0, dead: 0 };
  const consumers = await startEndpointConsumers({
    endpoints: new Map([['scorer', endpoint]]),
    events,
    ...(batch ? { batch } : {}),
    onOutcome: (name, outcome, n) => {
      expect(name).toBe('scorer');
      counts[outcome] += n;
    },
  });
  toClose.push({ close: () => consumers.stop() });
  return counts;
}

/** What the endpoint answers for these records when asked directly. */
async function direct(endpoint: ServedEndpoint, records: JsonObject[]): Promise<JsonValue> {
  return (await endpoint.predictRecords(records, { requestId: 'direct' })).results;
}

/**
 * The store under the endpoint goes down (closed) and comes back (a second connection to the
 * same database): a message published meanwhile fails, is delivered again and is answered once.
 */
async function storeRestartCase(ws: Workspace): Promise<void> {
  const file = path.join(tmp.fresh(), 'online.db');
  const first = await openSqliteOnlineStore({ path: file });
  const second = await openSqliteOnlineStore({ path: file });
  toClose.push(second);
  let current: OnlineStore = first;
  const online = new Proxy(first, {
    get: (_target, prop) => {
      const value: unknown = Reflect.get(current, prop);
      return typeof value === 'function' ? (value as () => unknown).bind(current) : value;
    },
  });
  const h = await openFeatureFixture({
    dir: tmp.fresh(),
    spec: ws.project.spec,
    online: async () => online,
  });
  toClose.push(h.offline);
  await h.store.ingestEvents('cards', CARDS);
  const seen = watch();
  // The store is back as soon as the failure was seen, before the bus delivers again.
  const observer: GraphObserver = {
    onStep(event) {
      seen.onStep(event);
      if (event.error) current = second;
    },
  };
  const endpoint = await serve(ws, { features: h.store, observer });
  const replies = await listen(ws.events, REPLY);
  const dead = await listen(ws.events, DEAD);
  const counts = await consume(endpoint, ws.events);

  await ws.events.publish(SUBJECT, { id: 'before', records: [record(1), record(2)] });
  await ws.events.drain();
  await first.close();
  await ws.events.publish(SUBJECT, { id: 'during', records: [record(3), record(4), record(5)] });
  await ws.events.drain();

  expect(seen.errors).toEqual(['FERRY_STORE_CLOSED']);
  expect(dead).toEqual([]);
  expect(replies).toEqual([
    {
      id: 'before',
      endpoint: 'scorer',
      version: '1',
      results: await direct(endpoint, [record(1), record(2)]),
    },
    {
      id: 'during',
      endpoint: 'scorer',
      version: '1',
      results: await direct(endpoint, [record(3), record(4), record(5)]),
    },
  ]);
  expect(counts).toEqual({ answered: 5, dead: 0 });
}

describe('startEndpointConsumers', () => {
  it('answers every message on reply_subject with what predictRecords gives, in one graph run per batch', async () => {
    const ws = await setup();
    const seen = watch();
    const endpoint = await serve(ws, { observer: seen });
    const replies = await listen(ws.events, REPLY);
    const n = 12;
    // The batch is full once all n are queued, so all n go through one predictRecords call.
    const counts = await consume(endpoint, ws.events, { maxMessages: n, maxWaitMs: 60_000 });
    const sent: { id?: string; records: JsonObject[]; data: JsonValue }[] = [];
    for (let i = 0; i < n; i++) {
      if (i % 3 === 0) {
        const records = [record(i), record(i + 50)];
        sent.push({ id: `m${i}`, records, data: { id: `m${i}`, records } });
      } else if (i % 3 === 1) {
        const records = [record(i), record(i + 20), record(i + 40)];
        sent.push({ records, data: records });
      } else {
        sent.push({ records: [record(i)], data: record(i) });
      }
    }
    await Promise.all(sent.map((s) => ws.events.publish(SUBJECT, s.data)));
    await ws.events.drain();
    expect(seen.runs).toBe(1);

    expect(replies).toHaveLength(n);
    for (const [i, s] of sent.entries()) {
      expect(replies[i]).toEqual({
        id: s.id ?? expect.stringMatching(UUID),
        endpoint: 'scorer',
        version: '1',
        results: await direct(endpoint, s.records),
      });
    }
    const records = sent.reduce((k, s) => k + s.records.length, 0);
    expect(counts).toEqual({ answered: records, dead: 0 });
    // The answers use the looked-up color and the transformed amount: red cards say yes.
    const answers = replies.flatMap((r) => r.results as JsonObject[]).map((r) => r.prediction);
    expect(new Set(answers)).toEqual(new Set(['yes', 'no']));
    expect(await direct(endpoint, [{ card_id: 'c1', amount: 10 }])).toEqual([
      expect.objectContaining({ prediction: 'yes', model: 'toy', model_version: '1' }),
    ]);
    expect(await direct(endpoint, [{ card_id: 'c2', amount: 10 }])).toEqual([
      expect.objectContaining({ prediction: 'no' }),
    ]);
  });

  it('dead-letters poison messages with the reason and answers the good ones of the same batch', async () => {
    const ws = await setup();
    const endpoint = await serve(ws);
    const replies = await listen(ws.events, REPLY);
    const dead = await listen(ws.events, DEAD);
    const messages: JsonValue[] = [
      { id: 'good-1', records: [record(1), record(2)] },
      { id: 'bad-type', records: [record(3), { card_id: 'c2', amount: 'lots' }] },
      [record(4)],
      { id: 'no-key', records: [{ amount: 5 }] },
      'hello',
      [record(5), 7],
      { id: 42, records: [record(6)] },
      { id: 'good-2', records: [record(7), record(8), record(9)] },
    ];
    const counts = await consume(endpoint, ws.events, {
      maxMessages: messages.length,
      maxWaitMs: 60_000,
    });
    await Promise.all(messages.map((m) => ws.events.publish(SUBJECT, m)));
    await ws.events.drain();

    expect(replies).toEqual([
      {
        id: 'good-1',
        endpoint: 'scorer',
        version: '1',
        results: await direct(endpoint, [record(1), record(2)]),
      },
      {
        id: expect.stringMatching(UUID),
        endpoint: 'scorer',
        version: '1',
        results: await direct(endpoint, [record(4)]),
      },
      {
        id: 'good-2',
        endpoint: 'scorer',
        version: '1',
        results: await direct(endpoint, [record(7), record(8), record(9)]),
      },
    ]);
    const letter = (data: JsonValue, code: string, text: string): unknown => ({
      subject: SUBJECT,
      data,
      error: { code, message: expect.stringContaining(text) },
      deliveries: 1,
    });
    expect(dead).toHaveLength(5);
    expect(dead).toEqual(
      expect.arrayContaining([
        letter(messages[1] as JsonValue, 'FERRY_INPUT_DATATYPE', "field 'amount'"),
        letter(messages[3] as JsonValue, 'FERRY_ENTITY_KEY_MISSING', "no 'card_id'"),
        letter('hello', 'FERRY_REQUEST_MALFORMED', 'string "hello"'),
        letter(messages[5] as JsonValue, 'FERRY_REQUEST_MALFORMED', 'record 2 is number 7'),
        letter(messages[6] as JsonValue, 'FERRY_REQUEST_MALFORMED', 'its id is number 42'),
      ]),
    );
    // Nothing lost: 6 records answered; 2 + 1 records refused and 3 malformed messages (one each).
    expect(counts).toEqual({ answered: 6, dead: 6 });
  });

  it('delivers a batch again when the store fails under it, and answers it once the store is back', async () => {
    await storeRestartCase(await setup());
  });

  it('dead-letters a message after max_deliver failed deliveries, never answering or dropping it', async () => {
    const ws = await setup();
    const h = await openFeatureFixture({ dir: tmp.fresh(), spec: ws.project.spec });
    toClose.push(h.offline);
    await h.online.close();
    const seen = watch();
    const endpoint = await serve(ws, { features: h.store, observer: seen });
    const replies = await listen(ws.events, REPLY);
    const dead = await listen(ws.events, DEAD);
    const counts = await consume(endpoint, ws.events);
    await ws.events.publish(SUBJECT, { id: 'doomed', records: [record(1), record(2)] });
    await ws.events.drain();

    expect(seen.errors).toEqual(['FERRY_STORE_CLOSED', 'FERRY_STORE_CLOSED', 'FERRY_STORE_CLOSED']);
    expect(replies).toEqual([]);
    expect(dead).toEqual([
      {
        subject: SUBJECT,
        data: { id: 'doomed', records: [record(1), record(2)] },
        error: { code: 'FERRY_STEP_FAILED', message: expect.stringContaining('closed') },
        deliveries: 3,
      },
    ]);
    expect(counts).toEqual({ answered: 0, dead: 2 });
  });

  it('answers the good messages of a batch once and dead-letters only the one a step fails on', async () => {
    const { runs } = await poisonInBatchCase(await setupRisky(), { maxMessages: 4, maxWaitMs: 20 });
    // The batch's run fails at the risk step; then each good message runs its model once, alone.
    expect(runs).toBe(3);
  });

  it('takes a store down for the whole batch as shared: nothing dead-lettered before max_deliver, and a few calls per delivery', async () => {
    const ws = await setup();
    const h = await openFeatureFixture({ dir: tmp.fresh(), spec: ws.project.spec });
    toClose.push(h.offline);
    await h.online.close();
    const seen = watch();
    const endpoint = await serve(ws, { features: h.store, observer: seen });
    const replies = await listen(ws.events, REPLY);
    const dead = await listen(ws.events, DEAD);
    const n = 8;
    const counts = await consume(endpoint, ws.events, { maxMessages: n, maxWaitMs: 20 });
    const sent = Array.from({ length: n }, (_, i) => ({ id: `m${i}`, records: [record(i)] }));
    await Promise.all(sent.map((m) => ws.events.publish(SUBJECT, m)));
    await ws.events.drain();

    expect(replies).toEqual([]);
    expect(dead).toHaveLength(n);
    expect(dead).toEqual(
      expect.arrayContaining(
        sent.map((m) => ({
          subject: SUBJECT,
          data: m,
          error: { code: 'FERRY_STEP_FAILED', message: expect.stringContaining('closed') },
          deliveries: 3,
        })),
      ),
    );
    expect(counts).toEqual({ answered: 0, dead: n });
    // Deliveries 1 and 2: the batch's run, then 3 messages alone before the rest come again
    // untried (4 each, not 1 + 8). Delivery 3, the last: the batch's run, then each message alone,
    // so that none is dead-lettered for another's failure (9).
    expect(seen.errors).toHaveLength(4 + 4 + 9);
  });

  it('runs a graph with an output step message by message, so each output carries its request id', async () => {
    const input = projectInput();
    const endpoint = input.endpoints?.[0];
    if (!endpoint) throw new Error('no endpoint');
    const withOutput = {
      ...input,
      endpoints: [
        {
          ...endpoint,
          steps: [...endpoint.steps, { kind: 'output' as const, subject: 'ferry.scores.scorer' }],
        },
      ],
    };
    const ws = await setup(withOutput);
    const served = await serve(ws);
    const outputs = await listen(ws.events, 'ferry.scores.scorer');
    const replies = await listen(ws.events, REPLY);
    await consume(served, ws.events, { maxMessages: 2, maxWaitMs: 60_000 });
    await Promise.all([
      ws.events.publish(SUBJECT, { id: 'a', records: [record(1), record(2)] }),
      ws.events.publish(SUBJECT, { id: 'b', records: [record(3)] }),
    ]);
    await ws.events.drain();
    expect(outputs.map((o) => o.request_id)).toEqual(['a', 'a', 'b']);
    expect(replies.map((r) => r.id)).toEqual(['a', 'b']);
  });

  it('is started by startServer and counts records in /metrics', async () => {
    const ws = await setup();
    const replies = await listen(ws.events, REPLY);
    const server = await startServer(ws, { port: 0, host: '127.0.0.1', logLevel: 'silent' });
    toClose.push(server);
    await ws.events.publish(SUBJECT, { id: 'r1', records: [record(1), record(2)] });
    await ws.events.publish(SUBJECT, 'not a request');
    await ws.events.drain();
    const scorer = server.endpoints.get('scorer') as ServedEndpoint;
    expect(replies).toEqual([
      {
        id: 'r1',
        endpoint: 'scorer',
        version: '1',
        results: await direct(scorer, [record(1), record(2)]),
      },
    ]);
    const text = await (await fetch(`${server.url}/metrics`)).text();
    expect(text).toContain(
      'ferry_endpoint_stream_records_total{endpoint="scorer",outcome="answered"} 2',
    );
    expect(text).toContain(
      'ferry_endpoint_stream_records_total{endpoint="scorer",outcome="dead"} 1',
    );
  });
});

/* ------------------------------------------------------------------ on NATS JetStream */

const nats = await testService('nats');

describe.skipIf(!nats.available)('startEndpointConsumers on NATS JetStream', () => {
  // Each case has a stream and subject prefix of its own; every stream is deleted at the end.
  const streams: string[] = [];
  const natsBus = (): ProjectInput['event_bus'] & { stream: string; subject_prefix: string } => {
    const run = uniqueName('ferryendpoint');
    const stream = run.toUpperCase();
    streams.push(stream);
    return {
      type: 'nats',
      servers: [nats.url],
      stream,
      subject_prefix: run,
      max_pending: 256,
      ack_wait: '5s',
    };
  };
  afterAll(async () => {
    const nc = await connect({ servers: [nats.url] });
    const jsm = await jetstreamManager(nc);
    for (const stream of streams) await jsm.streams.delete(stream).catch(() => undefined);
    await nc.close();
  });

  it('splits a group between two processes: every message answered once, none lost', async () => {
    const config = natsBus();
    const ws = await setup(projectInput(config));
    // A second process: its own connection, its own compiled endpoint, the same group.
    const other = await openNatsEventBus({
      servers: [nats.url],
      stream: config.stream,
      maxPending: 256,
      ackWaitMs: 5_000,
      subjectPrefix: config.subject_prefix,
    });
    toClose.push(other);
    const seen = [watch(), watch()];
    const a = await serve(ws, { observer: seen[0] });
    const b = await serve(ws, { events: other, observer: seen[1] });
    const replies = await listen(ws.events, REPLY);
    const dead = await listen(ws.events, DEAD);
    const batch = { maxMessages: 4, maxWaitMs: 5 };
    const counts = [await consume(a, ws.events, batch), await consume(b, other, batch)];
    const n = 60;
    const publishes: Promise<void>[] = [];
    for (let i = 0; i < n; i++) {
      const bus = i % 2 === 0 ? ws.events : other;
      publishes.push(bus.publish(SUBJECT, { id: `m${i}`, records: [record(i), record(i + 1)] }));
    }
    await Promise.all(publishes);
    await Promise.all([ws.events.drain(), other.drain()]);
    await ws.events.drain();

    expect(dead).toEqual([]);
    expect(replies.map((r) => r.id).sort()).toEqual(
      Array.from({ length: n }, (_, i) => `m${i}`).sort(),
    );
    for (const reply of replies.slice(0, 6)) {
      const i = Number((reply.id as string).slice(1));
      expect(reply.results).toEqual(await direct(a, [record(i), record(i + 1)]));
    }
    expect(counts.map((c) => c.dead)).toEqual([0, 0]);
    expect((counts[0]?.answered ?? 0) + (counts[1]?.answered ?? 0)).toBe(2 * n);
  });

  it('keeps messages published while no replica runs and answers them on restart', async () => {
    const ws = await setup(projectInput(natsBus()));
    const endpoint = await serve(ws);
    const replies = await listen(ws.events, REPLY);
    const first = await startEndpointConsumers({
      endpoints: new Map([['scorer', endpoint]]),
      events: ws.events,
    });
    await ws.events.publish(SUBJECT, { id: 'one', records: [record(1)] });
    await ws.events.drain();
    await first.stop();
    await ws.events.publish(SUBJECT, { id: 'two', records: [record(2)] });
    const second = await startEndpointConsumers({
      endpoints: new Map([['scorer', endpoint]]),
      events: ws.events,
    });
    toClose.push({ close: () => second.stop() });
    await ws.events.drain();
    expect(replies.map((r) => r.id)).toEqual(['one', 'two']);
    expect(replies[1]?.results).toEqual(await direct(endpoint, [record(2)]));
  });

  it('delivers a batch again when the store fails under it, and answers it once the store is back', async () => {
    await storeRestartCase(await setup(projectInput(natsBus())));
  });

  it('answers the good messages of a batch once and dead-letters only the one a step fails on', async () => {
    await poisonInBatchCase(await setupRisky(natsBus()), { maxMessages: 4, maxWaitMs: 20 });
  });
});
