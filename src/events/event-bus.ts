/**
 * EventBus: subjects carrying JSON messages between ingestion, serving and monitoring.
 * Embedded default: in-process (`memory.ts`); NATS JetStream when one machine is not enough.
 *
 * Contract (checked by `src/testing/event-bus.conformance.ts`):
 * - subjects are dot-separated tokens; a subscription may use `*` (one token) and `>` (the rest);
 * - a message is acknowledged when its handler resolves; a handler that throws gets the message
 *   again, up to `maxDeliver` times, after which it is published to `deadLetterSubject` (default
 *   `ferry.dead.<subject>`) with the error, never dropped silently;
 * - subscribers sharing a `group` split the messages: each goes to exactly one of them;
 * - queues are bounded: `publish` waits while a subscriber's queue is full (backpressure);
 * - per subscription, messages are handled one at a time in publish order (redeliveries aside);
 * - `subscribeBatch` hands over up to `maxMessages` messages at once (waiting at most `maxWaitMs`
 *   for a batch to fill once its first message is there): the batch is acknowledged when the
 *   handler resolves, and if it throws every message of it is delivered again (and dead-lettered
 *   after `maxDeliver` deliveries, each with the error). A handler that finds one poison message
 *   publishes it to a dead-letter subject itself and resolves, so the rest are acknowledged; one
 *   that could handle only part of the batch resolves with a {@link BatchOutcome} naming the
 *   messages to deliver again, each with its own error: only those come again (and are
 *   dead-lettered with that error after `maxDeliver` deliveries), the rest are acknowledged.
 */
import type { JsonValue } from '../core/json.js';

export interface EventMessage {
  readonly subject: string;
  readonly data: JsonValue;
  /** 1 on first delivery, then 2, 3... */
  readonly deliveries: number;
}

export interface SubscribeOptions {
  readonly group?: string;
  readonly maxDeliver?: number;
  readonly deadLetterSubject?: string;
}

export interface BatchSubscribeOptions extends SubscribeOptions {
  /** Most messages handed to the handler at once (default 500). */
  readonly maxMessages?: number;
  /** Longest wait for a batch to fill once its first message has arrived, in ms (default 20). */
  readonly maxWaitMs?: number;
}

/**
 * What a batch handler may resolve with when it handled only part of its batch: the messages (of
 * that batch, as handed over) to deliver again, each with why it failed. Every other message of
 * the batch is acknowledged. Naming a message that is not of the batch fails the whole batch.
 */
export interface BatchOutcome {
  readonly retry: readonly { readonly message: EventMessage; readonly error: unknown }[];
}

export interface Subscription {
  unsubscribe(): Promise<void>;
}

export interface EventBus {
  readonly backend: string;
  /** Deliveries of a failing message before it is dead-lettered, when a subscription does not say. */
  readonly defaultMaxDeliver: number;
  publish(subject: string, data: JsonValue): Promise<void>;
  subscribe(
    subject: string,
    handler: (message: EventMessage) => Promise<void>,
    options?: SubscribeOptions,
  ): Promise<Subscription>;
  /** Like `subscribe`, handing over messages in batches; see the contract above. */
  subscribeBatch(
    subject: string,
    handler: (messages: readonly EventMessage[]) => Promise<void | BatchOutcome>,
    options?: BatchSubscribeOptions,
  ): Promise<Subscription>;
  /** Resolves once every message published so far has been handled (or dead-lettered). */
  drain(): Promise<void>;
  close(): Promise<void>;
}
