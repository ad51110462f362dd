/**
 * Streaming ingestion from the event bus: one consumer per feature set reads `ferry.ingest.<set>`
 * (queue group `ferry-ingest-<set>`, so replicas split the work; durable on NATS JetStream) and
 * stores what it reads through {@link FeatureStore.ingestEvents}, the path batch ingestion shares.
 *
 * - A message's data is one event (a JSON object) or an array of events. A batch of messages is
 *   ingested with one `ingestEvents` call; a message is acknowledged only once both the online and
 *   the offline store hold its events.
 * - A message that is not an object or an array of objects, and every event ingestion rejects
 *   (also quarantined, with its rule and reason), is published to `ferry.dead.ingest.<set>` as
 *   `{ subject, data, error, deliveries, rule? }`; the rest of the batch is acknowledged.
 * - When a batch fails (a rule set with policy `fail` refuses it, or a store fails writing it), its
 *   messages are ingested one by one, so that only the failing ones fail: one message whose events
 *   the rule set refuses is dead-lettered (whole, with the report's reason), one whose events a
 *   store fails to write is delivered again, and the others are acknowledged once stored.
 * - A configuration error (an event column declared nowhere, a step that cannot stream) dead-letters
 *   every message with the reason: redelivering cannot fix it, and the messages stay replayable.
 * - A message failing server-side (a store down or closed) is delivered again; events stored by
 *   an earlier delivery are then skipped as duplicates. At its last (`maxDeliver`th) delivery it
 *   is dead-lettered to the same subject with its own code and message. When several messages in
 *   a row fail alone, the cause is taken to be shared (the store is down) and the rest come again
 *   untried, so an outage costs a batch a few calls, not one per message.
 */
import type { JsonObject, JsonValue } from '../core/json.js';
import { silentLogger, type Logger } from '../core/logger.js';
import { FerryError, toFerryError } from '../errors/index.js';
import type { BatchOutcome, EventBus, EventMessage, Subscription } from '../events/event-bus.js';
import { runOneByOne } from '../events/one-by-one.js';
import type { FeatureStore, IngestResult } from './feature-store.js';

/** The subject a feature set's events are published to. */
export function ingestSubject(featureSet: string): string {
  return `ferry.ingest.${featureSet}`;
}

/** Where malformed messages and rejected events of a feature set go. */
export function ingestDeadLetterSubject(featureSet: string): string {
  return `ferry.dead.ingest.${featureSet}`;
}

/** Where an ingested event went, for metrics. */
export type IngestOutcome =
  | 'written'
  | 'duplicate'
  | 'filtered'
  | 'quarantined'
  /** In a batch refused whole (policy `fail`, or a configuration error). */
  | 'refused'
  /** A message that is not an event or an array of events (counted once per message). */
  | 'malformed'
  /** In a message dead-lettered because it failed server-side (a store down) at its last delivery. */
  | 'failed';

/**
 * The outcomes of one ingestion, as counts (zero counts left out).
 * @example outcomesOf(result) // [['written', 98], ['quarantined', 2]]
 */
export function outcomesOf(result: IngestResult): [IngestOutcome, number][] {
  const quarantined = Object.values(result.quarantined).reduce((a, b) => a + b, 0);
  const all: [IngestOutcome, number][] = [
    ['written', result.written],
    ['duplicate', result.duplicates],
    ['filtered', result.filtered],
    ['quarantined', quarantined],
  ];
  return all.filter(([, n]) => n > 0);
}

export interface IngestionConsumerOptions {
  readonly features: Pick<FeatureStore, 'ingestEvents'>;
  readonly events: EventBus;
  /** Names of the feature sets to consume, one subscription each. */
  readonly featureSets: readonly string[];
  readonly logger?: Logger;
  readonly batch?: {
    /** Messages ingested together, at most (default: the bus's, 500). */
    readonly maxMessages?: number;
    /** Longest wait for a batch to fill once its first message is there, ms (default: the bus's, 20). */
    readonly maxWaitMs?: number;
    /** Deliveries of a failing batch before the bus dead-letters its messages (default: the bus's). */
    readonly maxDeliver?: number;
  };
  /** Called with the outcome counts of every batch (metrics). */
  readonly onOutcome?: (featureSet: string, outcome: IngestOutcome, count: number) => void;
}

export interface IngestionConsumers {
  /** Stops consuming; a batch in flight finishes (and is acknowledged) first. */
  stop(): Promise<void>;
}

/** The body of a dead letter on `ferry.dead.ingest.<set>`. */
export interface IngestDeadLetter {
  readonly [key: string]: JsonValue;
  /** The subject the message came on. */
  readonly subject: string;
  /** The message's data (malformed message, batch refused), or the one event rejected. */
  readonly data: JsonValue;
  readonly error: string;
  readonly deliveries: number;
}

/**
 * Subscribes to `ferry.ingest.<set>` for every feature set named; call `stop()` to end.
 * @example
 * const consumers = await startIngestionConsumers({ features: ws.features, events: ws.events, featureSets: ['transactions'] });
 * await ws.events.publish('ferry.ingest.transactions', { card_id: 'c1', ts: Date.now(), amount: 12.5 });
 * await consumers.stop();
 */
export async function startIngestionConsumers(
  options: IngestionConsumerOptions,
): Promise<IngestionConsumers> {
  const logger = options.logger ?? silentLogger();
  const subscriptions: Subscription[] = [];
  try {
    for (const featureSet of options.featureSets) {
      const handler = batchHandler(featureSet, options, logger);
      const batch = options.batch ?? {};
      subscriptions.push(
        await options.events.subscribeBatch(ingestSubject(featureSet), handler, {
          group: `ferry-ingest-${featureSet}`,
          deadLetterSubject: ingestDeadLetterSubject(featureSet),
          ...(batch.maxMessages === undefined ? {} : { maxMessages: batch.maxMessages }),
          ...(batch.maxWaitMs === undefined ? {} : { maxWaitMs: batch.maxWaitMs }),
          ...(batch.maxDeliver === undefined ? {} : { maxDeliver: batch.maxDeliver }),
        }),
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

interface Received {
  readonly message: EventMessage;
  readonly events: JsonObject[];
}

function batchHandler(
  featureSet: string,
  options: IngestionConsumerOptions,
  logger: Logger,
): (messages: readonly EventMessage[]) => Promise<BatchOutcome> {
  const { features, events: bus } = options;
  const deadSubject = ingestDeadLetterSubject(featureSet);
  const maxDeliver = options.batch?.maxDeliver ?? bus.defaultMaxDeliver;
  const count = (outcome: IngestOutcome, n: number): void => {
    if (n > 0) options.onOutcome?.(featureSet, outcome, n);
  };
  const counted = (result: IngestResult): IngestResult => {
    for (const [outcome, n] of outcomesOf(result)) count(outcome, n);
    return result;
  };

  return async (messages) => {
    const dead: IngestDeadLetter[] = [];
    const received: Received[] = [];
    for (const message of messages) {
      const parsed = eventsOf(message.data);
      if (typeof parsed === 'string') {
        dead.push(letter(message, message.data, `malformed message: ${parsed}`));
        count('malformed', 1);
      } else if (parsed.length > 0) {
        received.push({ message, events: parsed });
      }
    }

    // A message's rejected events are dead-lettered only once its events are stored: if the
    // stores fail, it comes again, and its dead letters are published once, by the delivery
    // that stores it.
    const ingest = async (part: readonly Received[]): Promise<void> => {
      const flat = part.flatMap((r) => r.events);
      const owner = part.flatMap((r) => r.events.map(() => r.message));
      const result = counted(
        await features.ingestEvents(featureSet, flat, { origin: ingestSubject(featureSet) }),
      );
      for (const r of result.rejected) {
        const index = r.row - 1;
        dead.push({
          ...letter(owner[index] as EventMessage, flat[index] ?? null, `${r.rule}: ${r.reason}`),
          rule: r.rule,
        });
      }
    };
    const refuse = (part: readonly Received[], error: FerryError): void => {
      for (const r of part) {
        dead.push(letter(r.message, r.message.data, `${error.code}: ${error.message}`));
        count('refused', r.events.length);
      }
    };

    let retry: { message: EventMessage; error: unknown }[] = [];
    // Each message on its own (`one-by-one.ts`): one message's failure costs no other its events.
    const oneByOne = async (part: readonly Received[]): Promise<void> => {
      retry = await runOneByOne(part, maxDeliver, {
        run: (r) => ingest([r]),
        isRefusal,
        refused: (r, error) => refuse([r], error as FerryError),
        lastFailure: (r, error) => {
          const failure = toFerryError(error);
          dead.push(letter(r.message, r.message.data, `${failure.code}: ${failure.message}`));
          count('failed', r.events.length);
        },
      });
    };

    if (received.length === 1) {
      await oneByOne(received);
    } else if (received.length > 1) {
      try {
        await ingest(received);
      } catch (error) {
        if (isRefusal(error) && error.code !== 'FERRY_VALIDATION_FAILED') {
          // A configuration error: every message would be refused alike.
          refuse(received, error);
        } else {
          // One message's events (failing the rule set, or failing a store) must not sink the
          // others': find the failing ones. The batch's own error is one of theirs, seen alone.
          await oneByOne(received);
        }
      }
    }
    if (retry.length > 0) {
      logger.error(
        { err: retry[0]?.error, featureSet, messages: messages.length, again: retry.length },
        'ingestion of stream messages failed; they will be delivered again',
      );
    }

    if (dead.length > 0) {
      for (const d of dead) await bus.publish(deadSubject, d);
      logger.warn(
        { featureSet, deadLetters: dead.length, subject: deadSubject },
        'stream messages or events were dead-lettered',
      );
    }
    return { retry };
  };

  function letter(message: EventMessage, data: JsonValue, error: string): IngestDeadLetter {
    return { subject: message.subject, data, error, deliveries: message.deliveries };
  }
}

/** A failure that delivering the same batch again cannot change: refused data or configuration. */
function isRefusal(error: unknown): error is FerryError {
  return error instanceof FerryError && error.status >= 400 && error.status < 500;
}

/** The events a message carries, or why it carries none. */
function eventsOf(data: JsonValue): JsonObject[] | string {
  if (isObject(data)) return [data];
  if (!Array.isArray(data))
    return `its data is ${describe(data)}, not an event object or an array of event objects`;
  const bad = data.findIndex((item) => !isObject(item));
  if (bad >= 0)
    return `item ${bad + 1} of its array is ${describe(data[bad] as JsonValue)}, not an event object`;
  return data as JsonObject[];
}

function isObject(value: JsonValue): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: JsonValue): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  const text = JSON.stringify(value);
  return `${typeof value} ${text.length > 40 ? `${text.slice(0, 37)}...` : text}`;
}
