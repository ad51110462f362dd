/**
 * MemoryEventBus: the in-process EventBus, for one machine and for tests. It keeps NATS's
 * semantics so that code moves to JetStream unchanged: `*` and `>` subject wildcards, queue groups,
 * redelivery up to `maxDeliver`, dead letters, bounded queues, batches.
 *
 * Messages are JSON-encoded at publish and decoded for each delivery, as over a network: a handler
 * gets its own copy, and a value JSON cannot carry is refused at publish rather than delivered
 * differently by another backend. Nothing survives the process: a message published with no
 * matching subscription, or still queued when the process dies, is gone.
 */
import type { JsonValue } from '../core/json.js';
import { FerryError } from '../errors/index.js';
import type {
  BatchOutcome,
  BatchSubscribeOptions,
  EventBus,
  EventMessage,
  SubscribeOptions,
  Subscription,
} from './event-bus.js';
import {
  assertSubject,
  checkBatchOptions,
  checkSubscribeOptions,
  deadLetterBody,
  deadLetterSubjectOf,
  encodeMessage,
  errorText,
  matches,
  parsePattern,
  positiveInteger,
  retriesOf,
  type CheckedSubscribeOptions,
  type Delivery,
} from './wire.js';

export interface MemoryEventBusOptions {
  /**
   * Messages a subscription holds unacknowledged (in flight plus waiting) before `publish` waits.
   * A batch never holds more than this either. Default 10 000.
   */
  readonly maxPending?: number;
  /** Deliveries of a failing message before it is dead-lettered, when `subscribe` does not say. Default 5. */
  readonly defaultMaxDeliver?: number;
}

/** Messages handed to handlers back to back before the loop yields to timers and I/O. */
const YIELD_EVERY = 64;

/**
 * Creates an in-process event bus.
 * @example
 * const bus = createMemoryEventBus({ maxPending: 1000 });
 * await bus.subscribe('orders.*', async (m) => console.log(m.subject, m.data), { group: 'scorers' });
 * await bus.publish('orders.created', { id: 1 });
 * await bus.drain();
 */
export function createMemoryEventBus(options: MemoryEventBusOptions = {}): MemoryEventBus {
  return new MemoryEventBus(options);
}

interface Entry {
  readonly subject: string;
  readonly payload: string;
  /** Deliveries so far. */
  deliveries: number;
  /** A dead letter is never dead-lettered again (that could loop forever). */
  readonly deadLetter: boolean;
  /** When it entered its subscription's queue (performance.now()), for the batch wait. */
  queuedAt?: number;
  /** Set while the entry waits for room (beyond a subscriber's bound, or in a group's backlog). */
  admit?: () => void;
}

interface Group {
  readonly members: MemorySubscription[];
  next: number;
  /**
   * Messages waiting for a member with room, oldest first. A group message is given to a member
   * only when it has room, so one slow member never holds back the others.
   */
  readonly backlog: Entry[];
}

export class MemoryEventBus implements EventBus {
  readonly backend = 'memory';
  readonly maxPending: number;
  readonly defaultMaxDeliver: number;
  private readonly subscriptions = new Set<MemorySubscription>();
  /** Queue groups keyed by group name and subject pattern, as NATS keys them. */
  private readonly groups = new Map<string, Group>();
  private idleWaiters: (() => void)[] = [];
  private state: 'open' | 'closing' | 'closed' = 'open';
  private closing: Promise<void> | undefined;
  private unrouted = 0;

  /** Use {@link createMemoryEventBus}. */
  constructor(options: MemoryEventBusOptions = {}) {
    this.maxPending = positiveInteger('maxPending', options.maxPending ?? 10_000);
    this.defaultMaxDeliver = positiveInteger('defaultMaxDeliver', options.defaultMaxDeliver ?? 5);
  }

  /** Dead letters that matched no subscription, so had nowhere to go (each also raised a process warning). */
  get unroutedDeadLetters(): number {
    return this.unrouted;
  }

  async publish(subject: string, data: JsonValue): Promise<void> {
    this.assertOpen();
    assertSubject(subject);
    const payload = encodeMessage(subject, data);
    const waits = this.route(subject, payload, false);
    if (waits.length > 0) await Promise.all(waits);
  }

  async subscribe(
    subject: string,
    handler: (message: EventMessage) => Promise<void>,
    options: SubscribeOptions = {},
  ): Promise<Subscription> {
    this.assertOpen();
    const tokens = parsePattern(subject);
    const checked = checkSubscribeOptions(options, this.defaultMaxDeliver);
    return this.add(subject, tokens, checked, {
      limit: 1,
      maxWaitMs: 0,
      handle: (messages) => handler(messages[0] as EventMessage),
    });
  }

  async subscribeBatch(
    subject: string,
    handler: (messages: readonly EventMessage[]) => Promise<void | BatchOutcome>,
    options: BatchSubscribeOptions = {},
  ): Promise<Subscription> {
    this.assertOpen();
    const tokens = parsePattern(subject);
    const checked = checkBatchOptions(options, this.defaultMaxDeliver);
    // A batch is part of the subscription's bounded queue, so it never exceeds the bound.
    return this.add(subject, tokens, checked, {
      limit: Math.min(checked.maxMessages, this.maxPending),
      maxWaitMs: checked.maxWaitMs,
      handle: handler,
    });
  }

  async drain(): Promise<void> {
    while (!this.isIdle()) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  /** Stops taking publishes once every queued message is handled (including ones handlers publish meanwhile). */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.state = 'closing';
      await this.drain();
      this.state = 'closed';
      for (const sub of this.subscriptions) sub.stop();
      this.subscriptions.clear();
      this.groups.clear();
    })();
    return this.closing;
  }

  private add(
    subject: string,
    tokens: readonly string[],
    options: CheckedSubscribeOptions,
    delivery: Delivery,
  ): Subscription {
    const groupKey = options.group === undefined ? undefined : `${options.group}\u0000${subject}`;
    const sub = new MemorySubscription(
      this,
      tokens,
      delivery,
      options.maxDeliver,
      options.deadLetterSubject,
      groupKey,
    );
    this.subscriptions.add(sub);
    if (groupKey !== undefined) {
      const group = this.groups.get(groupKey) ?? { members: [], next: 0, backlog: [] };
      group.members.push(sub);
      this.groups.set(groupKey, group);
    }
    return { unsubscribe: () => this.unsubscribe(sub) };
  }

  /** Enqueues a message for every matching subscription; returns the waits for room (backpressure). */
  private route(subject: string, payload: string, deadLetter: boolean): Promise<void>[] {
    const tokens = subject.split('.');
    const waits: Promise<void>[] = [];
    let matched = false;
    for (const sub of this.subscriptions) {
      if (sub.groupKey !== undefined || !matches(sub.tokens, tokens)) continue;
      matched = true;
      const wait = sub.enqueue({ subject, payload, deliveries: 0, deadLetter });
      if (wait) waits.push(wait);
    }
    for (const group of this.groups.values()) {
      const first = group.members[0];
      if (!first || !matches(first.tokens, tokens)) continue;
      matched = true;
      const entry: Entry = { subject, payload, deliveries: 0, deadLetter };
      const member = group.backlog.length === 0 ? memberWithRoom(group) : undefined;
      if (member) member.enqueue(entry);
      else
        waits.push(
          new Promise<void>((resolve) =>
            group.backlog.push(Object.assign(entry, { admit: resolve })),
          ),
        );
    }
    if (!matched && deadLetter) {
      this.unrouted++;
      process.emitWarning(
        `dead letter on '${subject}' matched no subscription and was discarded: ${payload.slice(0, 200)}`,
        {
          code: 'FERRY_DEAD_LETTER_UNROUTED',
        },
      );
    }
    return waits;
  }

  /**
   * @internal Called by a subscription whose handler failed `maxDeliver` times. Never waits for
   * room: the dead-letter queue may belong to the very subscription that is calling.
   */
  deadLetter(sub: MemorySubscription, entry: Entry, error: unknown): void {
    if (entry.deadLetter) {
      this.unrouted++;
      process.emitWarning(
        `dead letter on '${entry.subject}' failed ${entry.deliveries} deliveries and was discarded: ${errorText(error)}`,
        { code: 'FERRY_DEAD_LETTER_UNROUTED' },
      );
      return;
    }
    const target = deadLetterSubjectOf(entry.subject, sub.deadLetterSubject);
    void this.route(
      target,
      deadLetterBody(entry.subject, entry.payload, error, entry.deliveries),
      true,
    );
  }

  /** @internal Wakes `drain()` callers once nothing is queued or running. */
  checkIdle(): void {
    if (this.idleWaiters.length === 0 || !this.isIdle()) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const wake of waiters) wake();
  }

  /** @internal Called when a group member acknowledges: gives the group's backlog to members with room. */
  groupHasRoom(groupKey: string): void {
    const group = this.groups.get(groupKey);
    if (group) flushBacklog(group);
  }

  private isIdle(): boolean {
    for (const sub of this.subscriptions) if (!sub.idle) return false;
    for (const group of this.groups.values()) if (group.backlog.length > 0) return false;
    return true;
  }

  private async unsubscribe(sub: MemorySubscription): Promise<void> {
    if (!this.subscriptions.delete(sub)) return;
    const group = sub.groupKey === undefined ? undefined : this.groups.get(sub.groupKey);
    if (group && sub.groupKey !== undefined) {
      group.members.splice(group.members.indexOf(sub), 1);
      if (group.members.length === 0) this.groups.delete(sub.groupKey);
    }
    const left = await sub.stopAfterCurrent();
    // What a group member had not handled yet goes back to its group, ahead of newer messages; a
    // lone subscriber (or the last of a group) that leaves gives up its queue.
    if (group && group.members.length > 0) {
      group.backlog.unshift(...left);
      flushBacklog(group);
    } else {
      for (const entry of [...left, ...(group?.backlog.splice(0) ?? [])]) entry.admit?.();
    }
    this.checkIdle();
  }

  private assertOpen(): void {
    if (this.state === 'closed')
      throw new FerryError('FERRY_STORE_CLOSED', 'the in-process event bus is closed');
  }
}

/**
 * One subscription: its queue, and the loop that hands messages to its handler one call at a time
 * (one message, or one batch).
 */
class MemorySubscription {
  /** Acknowledged entries before `head` are cleared and compacted away now and then. */
  private readonly queue: (Entry | undefined)[] = [];
  private head = 0;
  private scheduled = false;
  private running: Promise<void> | undefined;
  private stopped = false;
  /** Set while the loop waits for a batch to fill; called when it is full or the wait must end. */
  private batchReady: (() => void) | undefined;

  constructor(
    private readonly bus: MemoryEventBus,
    readonly tokens: readonly string[],
    private readonly delivery: Delivery,
    private readonly maxDeliver: number,
    readonly deadLetterSubject: string | undefined,
    readonly groupKey: string | undefined,
  ) {}

  /** Unacknowledged messages: those in flight plus those waiting. */
  get size(): number {
    return this.queue.length - this.head;
  }

  get hasRoom(): boolean {
    return this.size < this.bus.maxPending;
  }

  get idle(): boolean {
    return this.size === 0 && this.running === undefined;
  }

  /** Queues a message; returns a promise when it lies beyond the bound, resolved once it is within. */
  enqueue(entry: Entry): Promise<void> | undefined {
    entry.queuedAt = performance.now();
    this.queue.push(entry);
    let wait: Promise<void> | undefined;
    if (this.size > this.bus.maxPending)
      wait = new Promise<void>((resolve) => (entry.admit = resolve));
    if (this.batchReady && this.size >= this.delivery.limit) this.wakeBatch();
    this.schedule();
    return wait;
  }

  stop(): void {
    this.stopped = true;
    this.wakeBatch();
  }

  /** Stops delivery, waits for the handler in flight, and returns what was still queued. */
  async stopAfterCurrent(): Promise<Entry[]> {
    this.stop();
    await this.running;
    const left = this.queue.slice(this.head).filter((e): e is Entry => e !== undefined);
    this.queue.length = 0;
    this.head = 0;
    return left;
  }

  private schedule(): void {
    if (this.scheduled || this.running || this.stopped) return;
    this.scheduled = true;
    // setImmediate, not a microtask: a handler never runs inside publish's call stack, and a long
    // queue does not starve timers and I/O.
    setImmediate(() => {
      this.scheduled = false;
      if (this.running || this.stopped) return;
      // Assigned before the first handler starts, so an unsubscribe from inside it waits for it.
      this.running = Promise.resolve()
        .then(() => this.run())
        .finally(() => {
          this.running = undefined;
          this.schedule();
          this.bus.checkIdle();
        });
    });
  }

  private async run(): Promise<void> {
    const { limit, maxWaitMs } = this.delivery;
    let handled = 0;
    while (!this.stopped && this.size > 0) {
      if (this.size < limit && maxWaitMs > 0) {
        const waited = performance.now() - ((this.queue[this.head] as Entry).queuedAt ?? 0);
        if (waited < maxWaitMs) await this.waitForBatch(maxWaitMs - waited);
        if (this.stopped) return;
      }
      const batch = this.queue.slice(this.head, this.head + Math.min(this.size, limit)) as Entry[];
      const messages = batch.map((entry) => {
        entry.deliveries++;
        return {
          subject: entry.subject,
          data: JSON.parse(entry.payload) as JsonValue,
          deliveries: entry.deliveries,
        };
      });
      // Each message's error, for those to deliver again: all of them when the handler throws.
      let failed: Map<number, unknown>;
      try {
        failed = retriesOf(messages, await this.delivery.handle(messages));
      } catch (error) {
        failed = new Map(batch.map((_, i) => [i, error]));
      }
      if (failed.size === 0) {
        this.settle(batch.length, []);
      } else {
        const again: Entry[] = [];
        batch.forEach((entry, i) => {
          if (!failed.has(i)) return;
          if (entry.deliveries < this.maxDeliver) again.push(entry);
          else this.bus.deadLetter(this, entry, failed.get(i));
        });
        this.settle(batch.length, again);
        if (again.length > 0) {
          // Redeliver after a turn of the event loop, so a failing handler does not spin.
          await new Promise((resolve) => setImmediate(resolve));
          continue;
        }
      }
      handled += batch.length;
      if (handled >= YIELD_EVERY) {
        handled = 0;
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
  }

  /** Waits until the queue holds a full batch, `ms` pass, or the subscription stops. */
  private waitForBatch(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => this.wakeBatch(), ms);
      this.batchReady = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  private wakeBatch(): void {
    const ready = this.batchReady;
    this.batchReady = undefined;
    ready?.();
  }

  /**
   * Removes the `count` entries at the head, keeping `again` (those to deliver once more) at the
   * head in their order, and lets as many messages beyond the bound in as left.
   */
  private settle(count: number, again: readonly Entry[]): void {
    const removed = count - again.length;
    for (let i = 0; i < removed; i++) this.queue[this.head + i] = undefined;
    again.forEach((entry, i) => (this.queue[this.head + removed + i] = entry));
    this.head += removed;
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
    for (let i = this.bus.maxPending - removed; i < this.bus.maxPending; i++) {
      const admitted = this.queue[this.head + i];
      if (admitted?.admit) {
        const admit = admitted.admit;
        admitted.admit = undefined;
        admit();
      }
    }
    if (removed === 0) return;
    if (this.groupKey !== undefined) this.bus.groupHasRoom(this.groupKey);
    if (this.size === 0) this.bus.checkIdle();
  }
}

/** The next member in turn that has room, if any; round-robin while all have room. */
function memberWithRoom(group: Group): MemorySubscription | undefined {
  const count = group.members.length;
  for (let i = 0; i < count; i++) {
    const index = (group.next + i) % count;
    const member = group.members[index] as MemorySubscription;
    if (member.hasRoom) {
      group.next = (index + 1) % count;
      return member;
    }
  }
  return undefined;
}

function flushBacklog(group: Group): void {
  while (group.backlog.length > 0) {
    const member = memberWithRoom(group);
    if (!member) return;
    const entry = group.backlog.shift() as Entry;
    const admit = entry.admit;
    entry.admit = undefined;
    member.enqueue(entry);
    admit?.();
  }
}
