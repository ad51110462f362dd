/**
 * What every EventBus backend does the same way at its edge, so that a call one backend refuses is
 * refused by all with the same error: the syntax of subjects and subscription patterns, JSON
 * payloads, the bounds of subscription options, and the body of a dead letter.
 */
import type { JsonValue } from '../core/json.js';
import { FerryError } from '../errors/index.js';
import type {
  BatchOutcome,
  BatchSubscribeOptions,
  EventMessage,
  SubscribeOptions,
} from './event-bus.js';

/** Where a subscription's failed messages go unless it names a subject: `ferry.dead.<subject>`. */
export const DEAD_LETTER_PREFIX = 'ferry.dead.';

/** `maxMessages` and `maxWaitMs` of a batch subscription when it does not say. */
export const DEFAULT_BATCH = { maxMessages: 500, maxWaitMs: 20 } as const;

/** A subscription's options, checked and with defaults applied. */
export interface CheckedSubscribeOptions {
  readonly group: string | undefined;
  readonly maxDeliver: number;
  readonly deadLetterSubject: string | undefined;
}

export interface CheckedBatchOptions extends CheckedSubscribeOptions {
  readonly maxMessages: number;
  readonly maxWaitMs: number;
}

/** How a subscription hands its messages over: one at a time, or in batches. */
export interface Delivery {
  /** Most messages per call of the handler. */
  readonly limit: number;
  /** Longest wait for a batch to fill once its first message is there, in ms. */
  readonly maxWaitMs: number;
  readonly handle: (messages: EventMessage[]) => Promise<void | BatchOutcome>;
}

/**
 * The errors of the messages a handler asks to deliver again, by their index in `messages`
 * (empty when it asks for none). Throws when it names a message not of the batch: the caller
 * then treats the whole batch as failed, rather than acknowledging a message by mistake.
 */
export function retriesOf(
  messages: readonly EventMessage[],
  outcome: void | BatchOutcome,
): Map<number, unknown> {
  const retries = new Map<number, unknown>();
  if (!outcome || outcome.retry.length === 0) return retries;
  const indexOf = new Map(messages.map((m, i) => [m, i]));
  for (const { message, error } of outcome.retry) {
    const index = indexOf.get(message);
    if (index === undefined) {
      throw new FerryError(
        'FERRY_ARGUMENT_INVALID',
        `a batch handler asked to deliver again a message that is not of its batch (subject '${message.subject}'): return the message objects it was handed`,
      );
    }
    retries.set(index, error);
  }
  return retries;
}

/** Encodes a message as JSON, refusing what JSON cannot carry (BigInt, undefined, cycles). */
export function encodeMessage(subject: string, data: JsonValue): string {
  let payload: string | undefined;
  try {
    payload = JSON.stringify(data);
  } catch (error) {
    throw new FerryError(
      'FERRY_ARGUMENT_INVALID',
      `message for '${subject}' is not JSON: ${String(error)}`,
      { cause: error },
    );
  }
  if (payload === undefined) {
    throw new FerryError(
      'FERRY_ARGUMENT_INVALID',
      `message for '${subject}' is not JSON (got ${typeof data})`,
    );
  }
  return payload;
}

/** Checks a subject to publish to: dot-separated non-empty tokens, no wildcards. */
export function assertSubject(subject: string): void {
  const tokens = typeof subject === 'string' ? subject.split('.') : [];
  if (tokens.length === 0 || tokens.some((t) => t === '' || /[\s*>]/.test(t))) {
    throw new FerryError(
      'FERRY_ARGUMENT_INVALID',
      `subject '${subject}' is not valid: use dot-separated non-empty tokens without spaces or wildcards (orders.created)`,
    );
  }
}

/** Checks a subscription pattern and returns its tokens: `*` is one token, a final `>` the rest. */
export function parsePattern(pattern: string): string[] {
  const tokens = typeof pattern === 'string' ? pattern.split('.') : [''];
  const bad = tokens.some(
    (t, i) =>
      t === '' ||
      /\s/.test(t) ||
      (/[*>]/.test(t) && t !== '*' && t !== '>') ||
      (t === '>' && i !== tokens.length - 1),
  );
  if (bad) {
    throw new FerryError(
      'FERRY_ARGUMENT_INVALID',
      `subscription subject '${pattern}' is not valid: dot-separated tokens, where '*' stands for one token and a final '>' for the rest`,
    );
  }
  return tokens;
}

/** Whether a subject (or a narrower pattern) falls under a pattern, both as tokens. */
export function matches(pattern: readonly string[], subject: readonly string[]): boolean {
  for (let i = 0; i < pattern.length; i++) {
    const token = pattern[i];
    if (token === '>') return subject.length > i;
    if (i >= subject.length) return false;
    if (token !== '*' && token !== subject[i]) return false;
  }
  return pattern.length === subject.length;
}

export function positiveInteger(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) {
    throw new FerryError(
      'FERRY_ARGUMENT_INVALID',
      `${name} must be a positive integer, got ${String(value)}`,
    );
  }
  return value;
}

/** Checks the options of `subscribe` and applies the bus's default `maxDeliver`. */
export function checkSubscribeOptions(
  options: SubscribeOptions,
  defaultMaxDeliver: number,
): CheckedSubscribeOptions {
  const maxDeliver = positiveInteger('maxDeliver', options.maxDeliver ?? defaultMaxDeliver);
  if (options.deadLetterSubject !== undefined) assertSubject(options.deadLetterSubject);
  if (options.group === '') {
    throw new FerryError('FERRY_ARGUMENT_INVALID', 'queue group name must not be empty');
  }
  return { group: options.group, maxDeliver, deadLetterSubject: options.deadLetterSubject };
}

/** Checks the options of `subscribeBatch` and applies the defaults (500 messages, 20 ms). */
export function checkBatchOptions(
  options: BatchSubscribeOptions,
  defaultMaxDeliver: number,
): CheckedBatchOptions {
  const maxMessages = positiveInteger(
    'maxMessages',
    options.maxMessages ?? DEFAULT_BATCH.maxMessages,
  );
  const maxWaitMs = options.maxWaitMs ?? DEFAULT_BATCH.maxWaitMs;
  if (typeof maxWaitMs !== 'number' || !Number.isFinite(maxWaitMs) || maxWaitMs < 0) {
    throw new FerryError(
      'FERRY_ARGUMENT_INVALID',
      `maxWaitMs must be a number of milliseconds >= 0, got ${String(maxWaitMs)}`,
    );
  }
  return { ...checkSubscribeOptions(options, defaultMaxDeliver), maxMessages, maxWaitMs };
}

/** The subject a failed message of `subject` is dead-lettered to. */
export function deadLetterSubjectOf(subject: string, named: string | undefined): string {
  return named ?? `${DEAD_LETTER_PREFIX}${subject}`;
}

/**
 * The JSON of a dead letter, `{ subject, data, error, deliveries }`, built around the message's
 * payload as it travelled (so it is not decoded and encoded again).
 */
export function deadLetterBody(
  subject: string,
  payload: string,
  error: unknown,
  deliveries: number,
): string {
  return `{"subject":${JSON.stringify(subject)},"data":${payload},"error":${JSON.stringify(errorText(error))},"deliveries":${deliveries}}`;
}

export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
