/**
 * The stream input of endpoints: an endpoint whose spec has `stream:` also answers requests read
 * from a subject of the event bus (on NATS JetStream, through a durable consumer shared by its
 * queue group, so replicas across processes split the messages and resume after a restart).
 *
 * - A message's data is one record (a JSON object), an array of records, or
 *   `{ "records": [...], "id"?: "..." }`. The request id is that `id`, else a new UUID.
 * - The valid messages of a batch run through one `predictRecords` call (their records
 *   concatenated) and the results are split back per message. If that call fails, for whatever
 *   reason, the messages run one by one, so that only the failing ones fail: one message whose
 *   records a step cannot handle costs no other message its answer. A graph with an `output` step
 *   always runs message by message, so each published record carries its own message's request id.
 * - With `reply_subject`, one reply per message, `{ id, endpoint, version, results }`, is
 *   published; a message is acknowledged only once its reply (and any dead letter) is stored.
 * - A poison message (malformed data, or a client error of its own records) is published to
 *   `ferry.dead.endpoint.<name>` as `{ subject, data, error: { code, message }, deliveries }` and
 *   then acknowledged: delivering it again could not change the answer.
 * - A message failing alone for any other reason (a store down or closed, a step failing or timing
 *   out) is delivered again, while the others of its batch are acknowledged. At its last
 *   (`max_deliver`th) delivery it is dead-lettered to the same subject with its own code and
 *   message. When several messages in a row fail alone server-side, the cause is taken to be
 *   shared (the store is down) and the rest come again untried, so an outage costs a batch a few
 *   calls, not one per message. Delivery is at least once: a batch whose publishing failed
 *   half-way is delivered again whole, and may be answered twice.
 */
import { randomUUID } from 'node:crypto';
import { Counter, type Registry } from 'prom-client';
import type { JsonObject, JsonValue } from '../../core/json.js';
import { silentLogger, type Logger } from '../../core/logger.js';
import type { Scalar } from '../../core/table.js';
import { FerryError, toFerryError, type ErrorCode } from '../../errors/index.js';
import type { BatchOutcome, EventBus, EventMessage, Subscription } from '../../events/event-bus.js';
import { runOneByOne } from '../../events/one-by-one.js';
import type { ServedEndpoint } from '../graph/endpoint.js';

/** Where the poison messages of an endpoint's stream go. */
export function endpointDeadLetterSubject(endpoint: string): string {
  return `ferry.dead.endpoint.${endpoint}`;
}

/** The queue group an endpoint's replicas share when its `stream:` names none. */
export function endpointGroup(endpoint: string): string {
  return `ferry-endpoint-${endpoint}`;
}

/**
 * What became of the records of a streamed message: answered, or dead-lettered (a malformed
 * message counts as one record).
 */
export type EndpointStreamOutcome = 'answered' | 'dead';

export interface EndpointConsumerOptions {
  /** The endpoints served; those whose spec has `stream:` get a consumer each. */
  readonly endpoints: ReadonlyMap<string, ServedEndpoint>;
  readonly events: EventBus;
  readonly logger?: Logger;
  readonly batch?: {
    /** Messages answered together, at most (default: the bus's, 500). */
    readonly maxMessages?: number;
    /** Longest wait for a batch to fill once its first message is there, ms (default: the bus's, 20). */
    readonly maxWaitMs?: number;
  };
  /** Called with the record counts of every batch, once its replies and dead letters are stored. */
  readonly onOutcome?: (endpoint: string, outcome: EndpointStreamOutcome, records: number) => void;
}

export interface EndpointConsumers {
  /** Stops consuming; a batch in flight finishes (and is acknowledged) first. */
  stop(): Promise<void>;
}

/** A reply on an endpoint's `reply_subject`: the answer to one message. */
export interface EndpointReply {
  readonly [key: string]: JsonValue;
  /** The message's `id`, or the UUID given to it. */
  readonly id: string;
  readonly endpoint: string;
  /** The deployment version that answered. */
  readonly version: string;
  /** One result per record of the message, in order. */
  readonly results: Record<string, Scalar>[];
}

/** The body of a dead letter on `ferry.dead.endpoint.<name>` published by the consumer. */
export interface EndpointDeadLetter {
  readonly [key: string]: JsonValue;
  /** The subject the message came on. */
  readonly subject: string;
  /** The message's data, as it came. */
  readonly data: JsonValue;
  readonly error: { readonly code: ErrorCode; readonly message: string };
  readonly deliveries: number;
}

/**
 * A Prometheus counter `ferry_endpoint_stream_records_total{endpoint,outcome}` in `registry`, as
 * the `onOutcome` of {@link startEndpointConsumers}.
 * @example
 * const consumers = await startEndpointConsumers({ endpoints, events, onOutcome: endpointStreamMetrics(metrics.registry) });
 */
export function endpointStreamMetrics(
  registry: Registry,
): NonNullable<EndpointConsumerOptions['onOutcome']> {
  const records = new Counter({
    name: 'ferry_endpoint_stream_records_total',
    help: 'Records of streamed endpoint requests, by endpoint and outcome: answered, dead (dead-lettered; a malformed message counts as one).',
    labelNames: ['endpoint', 'outcome'] as const,
    registers: [registry],
  });
  return (endpoint, outcome, n) => records.inc({ endpoint, outcome }, n);
}

/**
 * Subscribes to the `stream.subject` of every endpoint that has one; call `stop()` to end.
 * @example
 * const consumers = await startEndpointConsumers({ endpoints: server.endpoints, events: ws.events });
 * await ws.events.publish('ferry.requests.fraud', { id: 'r1', records: [{ card_id: 'c1', amount: 12 }] });
 * // ... { id: 'r1', endpoint: 'fraud', version: '1', results: [...] } arrives on its reply_subject
 * await consumers.stop();
 */
export async function startEndpointConsumers(
  options: EndpointConsumerOptions,
): Promise<EndpointConsumers> {
  const logger = options.logger ?? silentLogger();
  const batch = options.batch ?? {};
  const subscriptions: Subscription[] = [];
  try {
    for (const [name, endpoint] of options.endpoints) {
      const stream = endpoint.graph().endpoint.stream;
      if (!stream) continue;
      subscriptions.push(
        await options.events.subscribeBatch(
          stream.subject,
          batchHandler(name, endpoint, options, logger),
          {
            group: stream.group ?? endpointGroup(name),
            maxDeliver: stream.max_deliver,
            deadLetterSubject: endpointDeadLetterSubject(name),
            ...(batch.maxMessages === undefined ? {} : { maxMessages: batch.maxMessages }),
            ...(batch.maxWaitMs === undefined ? {} : { maxWaitMs: batch.maxWaitMs }),
          },
        ),
      );
      logger.info(
        { endpoint: name, subject: stream.subject, reply: stream.reply_subject },
        'endpoint reads its stream',
      );
    }
  } catch (error) {
    await Promise.allSettled(subscriptions.map((s) => s.unsubscribe()));
    throw error;
  }
  let stopping: Promise<void> | undefined;
  return {
    stop: () => {
      stopping ??= Promise.all(subscriptions.map((s) => s.unsubscribe())).then(() => undefined);
      return stopping;
    },
  };
}

/** A message that parsed into a request. */
interface Request {
  readonly message: EventMessage;
  readonly id: string;
  readonly records: JsonObject[];
}

interface Answer {
  readonly request: Request;
  readonly version: string;
  readonly results: Record<string, Scalar>[];
}

function batchHandler(
  name: string,
  endpoint: ServedEndpoint,
  options: EndpointConsumerOptions,
  logger: Logger,
): (messages: readonly EventMessage[]) => Promise<BatchOutcome> {
  const bus = options.events;
  const deadSubject = endpointDeadLetterSubject(name);
  const count = (outcome: EndpointStreamOutcome, n: number): void => {
    if (n > 0) options.onOutcome?.(name, outcome, n);
  };

  /** Answers requests with one call; each gets its slice of the results. */
  const answer = async (part: readonly Request[]): Promise<Answer[]> => {
    const records = part.flatMap((r) => r.records);
    if (records.length === 0) {
      return part.map((request) => ({ request, version: endpoint.version, results: [] }));
    }
    // One request keeps its own id through logs and the inference log; a batch gets one of its own.
    const requestId = part.length === 1 ? (part[0] as Request).id : randomUUID();
    const { results, version } = await endpoint.predictRecords(records, { requestId });
    let at = 0;
    return part.map((request) => {
      const mine = results.slice(at, at + request.records.length);
      at += request.records.length;
      return { request, version, results: mine };
    });
  };

  return async (messages) => {
    const stream = endpoint.graph().endpoint.stream;
    const maxDeliver = stream?.max_deliver ?? bus.defaultMaxDeliver;
    const dead: { letter: EndpointDeadLetter; records: number }[] = [];
    const requests: Request[] = [];
    for (const message of messages) {
      const parsed = requestOf(message.data);
      if (typeof parsed === 'string') {
        dead.push({
          letter: letter(message, 'FERRY_REQUEST_MALFORMED', `malformed message: ${parsed}`),
          records: 1,
        });
      } else {
        requests.push({ message, ...parsed });
      }
    }

    const answers: Answer[] = [];
    let retry: { message: EventMessage; error: unknown }[] = [];
    // Each message on its own (`one-by-one.ts`): one message's failure costs no other its answer.
    const deadLetter = (request: Request, error: unknown): void => {
      const failure = toFerryError(error);
      dead.push({
        letter: letter(request.message, failure.code, failure.message),
        records: request.records.length,
      });
    };
    const oneByOne = async (part: readonly Request[]): Promise<void> => {
      retry = await runOneByOne(part, maxDeliver, {
        run: async (request) => {
          answers.push(...(await answer([request])));
        },
        isRefusal,
        refused: deadLetter,
        lastFailure: deadLetter,
      });
    };
    try {
      // An output step publishes each record with the request id: one call per message keeps it.
      const perMessage = endpoint.graph().steps.some((s) => s.kind === 'output');
      if (perMessage || requests.length <= 1) {
        await oneByOne(requests);
      } else {
        try {
          answers.push(...(await answer(requests)));
        } catch {
          // One message's records (refused, or failing a step) must not sink the others': find
          // the failing ones. The batch's own error is one of theirs, seen again alone.
          await oneByOne(requests);
        }
      }
      // Acknowledged (by returning) only once every reply and dead letter is stored.
      const reply = stream?.reply_subject;
      if (reply !== undefined) {
        await Promise.all(
          answers.map((a) =>
            bus.publish(reply, {
              id: a.request.id,
              endpoint: name,
              version: a.version,
              results: a.results,
            } satisfies EndpointReply),
          ),
        );
      }
      if (dead.length > 0) {
        await Promise.all(dead.map((d) => bus.publish(deadSubject, d.letter)));
        logger.warn(
          {
            endpoint: name,
            deadLetters: dead.length,
            subject: deadSubject,
            codes: [...new Set(dead.map((d) => d.letter.error.code))],
          },
          'stream messages were dead-lettered',
        );
      }
    } catch (error) {
      // Publishing failed (the bus is down): every message comes again, and the bus dead-letters
      // those at their last delivery.
      const last = messages.filter((m) => m.deliveries >= maxDeliver);
      logger.error(
        { err: error, endpoint: name, messages: messages.length, lastDelivery: last.length },
        'publishing the replies of a stream batch failed; it will be delivered again (messages at their last delivery are dead-lettered by the bus)',
      );
      // Counted, so that answered + dead adds up to what came.
      count(
        'dead',
        last.reduce((n, m) => n + recordCount(m.data), 0),
      );
      throw error;
    }
    if (retry.length > 0) {
      logger.error(
        {
          err: retry[0]?.error,
          endpoint: name,
          messages: messages.length,
          again: retry.length,
          answered: answers.length,
        },
        'stream messages failed server-side; they will be delivered again',
      );
    }
    count(
      'answered',
      answers.reduce((n, a) => n + a.results.length, 0),
    );
    count(
      'dead',
      dead.reduce((n, d) => n + d.records, 0),
    );
    return { retry };
  };
}

function letter(message: EventMessage, code: ErrorCode, text: string): EndpointDeadLetter {
  return {
    subject: message.subject,
    data: message.data,
    error: { code, message: text },
    deliveries: message.deliveries,
  };
}

/** A failure that delivering the same message again cannot change: its own records are refused. */
function isRefusal(error: unknown): error is FerryError {
  return error instanceof FerryError && error.status < 500;
}

/** The request a message carries, or why it carries none. */
function requestOf(data: JsonValue): { id: string; records: JsonObject[] } | string {
  let id: string | undefined;
  let records: JsonValue = data;
  if (isObject(data) && Array.isArray(data.records)) {
    const given = data.id;
    if (given !== undefined && (typeof given !== 'string' || given === '')) {
      return `its id is ${describe(given)}, not a non-empty string`;
    }
    id = given;
    records = data.records;
  }
  if (isObject(records)) return { id: id ?? randomUUID(), records: [records] };
  if (!Array.isArray(records)) {
    return `its data is ${describe(records)}, not a record object, an array of records or {"records": [...]}`;
  }
  const bad = records.findIndex((item) => !isObject(item));
  if (bad >= 0) {
    return `record ${bad + 1} is ${describe(records[bad] as JsonValue)}, not a JSON object`;
  }
  return { id: id ?? randomUUID(), records: records as JsonObject[] };
}

/** Records a message holds, for counting; a message that holds none readable counts as one. */
function recordCount(data: JsonValue): number {
  const parsed = requestOf(data);
  return typeof parsed === 'string' ? 1 : parsed.records.length;
}

function isObject(value: JsonValue | undefined): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: JsonValue): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  const text = JSON.stringify(value);
  return `${typeof value} ${text.length > 40 ? `${text.slice(0, 37)}...` : text}`;
}
