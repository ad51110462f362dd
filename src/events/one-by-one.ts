/**
 * What a batch consumer does when its batch failed: it runs the messages one by one, so that
 * one message's failure costs no other message its processing. Endpoint stream inputs and
 * stream ingestion share it.
 *
 * Refused messages (their own content is wrong) go to the caller's `refused`; a message failing
 * server-side comes again (it is in the returned list, for the handler's `BatchOutcome`), unless
 * it is at its last delivery, where the caller's `lastFailure` dead-letters it with its own code.
 * After `TRANSIENT_AFTER` server-side failures in a row the cause is taken to be shared (a store
 * down), and the rest come again untried, except those at their last delivery, which always get
 * their own try: an outage costs a batch a few calls, not one per message.
 */
import type { EventMessage } from './event-bus.js';

/** Server-side failures in a row after which the rest of a batch comes again untried. */
export const TRANSIENT_AFTER = 3;

export interface OneByOneHandlers<T> {
  /** Processes one message's part of the batch alone. */
  run(item: T): Promise<void>;
  /** True when the error is the message's own fault: delivering it again cannot help. */
  isRefusal(error: unknown): boolean;
  refused(item: T, error: unknown): void;
  /** The message failed server-side at its last delivery. */
  lastFailure(item: T, error: unknown): void;
}

/**
 * Runs each item alone and returns those to deliver again, each with its error.
 * @example const retry = await runOneByOne(requests, 5, { run, isRefusal, refused, lastFailure });
 */
export async function runOneByOne<T extends { readonly message: EventMessage }>(
  items: readonly T[],
  maxDeliver: number,
  handlers: OneByOneHandlers<T>,
): Promise<{ message: EventMessage; error: unknown }[]> {
  const retry: { message: EventMessage; error: unknown }[] = [];
  let streak = 0;
  let shared: unknown;
  for (const item of items) {
    const last = item.message.deliveries >= maxDeliver;
    if (streak >= TRANSIENT_AFTER && !last) {
      retry.push({ message: item.message, error: shared });
      continue;
    }
    try {
      await handlers.run(item);
      streak = 0;
    } catch (error) {
      if (handlers.isRefusal(error)) {
        handlers.refused(item, error);
        streak = 0;
        continue;
      }
      if (last) handlers.lastFailure(item, error);
      else retry.push({ message: item.message, error });
      streak++;
      shared = error;
    }
  }
  return retry;
}
