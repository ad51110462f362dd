/**
 * MemoryEventBus: the in-process EventBus, for one machine and for tests. It keeps NATS's
 * semantics so that code moves to JetStream unchanged: `*` and `>` subject wildcards, queue groups,
 * redelivery up to `maxDeliver`, dead letters, bounded queues.
 *
 * Messages are JSON-encoded at publish and decoded for each delivery, as over a network: a handler
 * gets its own copy, and a value JSON cannot carry is refused at publish rather than delivered
 * differently by another backend. Nothing survives the process: a message published with no
 * matching subscription, or still queued when the process dies, is gone.
 */
import type { JsonValue } from '../core/json.js';
import { FerryError } from '../errors/index.js';
import type { EventBus, EventMessage, SubscribeOptions, Subscription } from './event-bus.js';

export interface MemoryEventBusOptions {
  /**
   * Messages a subscription holds unacknowledged (in flight plus waiting) before `publish` waits.
   * Default 10 000.
   */
  readonly maxPending?: number;
  /** Deliveries of a failing message before it is dead-lettered, when `subscribe` does not say. Default 5. */
  readonly defaultMaxDeliver?: number;
}

const DEAD_LETTER_PREFIX = 'ferry.dead.';
/** Handlers run back to back this many times before the loop yields to timers and I/O. */
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
    let payload: string | undefined;
    try {
      payload = JSON.stringify(data);
    } catch (error) {
      throw new FerryError(
        'FERRY_ARGUMENT_INVALID',
        `message for '${subject}' is not JSON: ${String(error)}`,
        {
          cause: error,
        },
      );
    }
    if (payload === undefined) {
      throw new FerryError(
        'FERRY_ARGUMENT_INVALID',
        `message for '${subject}' is not JSON (got ${typeof data})`,
      );
    }
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
    const maxDeliver = positiveInteger('maxDeliver', options.maxDeliver ?? this.defaultMaxDeliver);
    if (options.deadLetterSubject !== undefined) assertSubject(options.deadLetterSubject);
    if (options.group === '') {
      throw new FerryError('FERRY_ARGUMENT_INVALID', 'queue group name must not be empty');
    }
    const groupKey = options.group === undefined ? undefined : `${options.group}\u0000${subject}`;
    const sub = new MemorySubscription(
      this,
      tokens,
      handler,
      maxDeliver,
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

  // TEMPORARY: replaced by a real implementation in this change.
  subscribeBatch(): Promise<Subscription> {
    return Promise.reject(new Error('subscribeBatch is not implemented yet'));
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
    const reason = error instanceof Error ? error.message : String(error);
    if (entry.deadLetter) {
      this.unrouted++;
      process.emitWarning(
        `dead letter on '${entry.subject}' failed ${entry.deliveries} deliveries and was discarded: ${reason}`,
        { code: 'FERRY_DEAD_LETTER_UNROUTED' },
      );
      return;
    }
    const target = sub.deadLetterSubject ?? `${DEAD_LETTER_PREFIX}${entry.subject}`;
    const body = `{"subject":${JSON.stringify(entry.subject)},"data":${entry.payload},"error":${JSON.stringify(reason)},"deliveries":${entry.deliveries}}`;
    void this.route(target, body, true);
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

/** One subscription: its queue, and the loop that hands messages to its handler one at a time. */
class MemorySubscription {
  /** Acknowledged entries before `head` are cleared and compacted away now and then. */
  private readonly queue: (Entry | undefined)[] = [];
  private head = 0;
  private scheduled = false;
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly bus: MemoryEventBus,
    readonly tokens: readonly string[],
    private readonly handler: (message: EventMessage) => Promise<void>,
    private readonly maxDeliver: number,
    readonly deadLetterSubject: string | undefined,
    readonly groupKey: string | undefined,
  ) {}

  /** Unacknowledged messages: the one in flight plus those waiting. */
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
    this.queue.push(entry);
    let wait: Promise<void> | undefined;
    if (this.size > this.bus.maxPending)
      wait = new Promise<void>((resolve) => (entry.admit = resolve));
    this.schedule();
    return wait;
  }

  stop(): void {
    this.stopped = true;
  }

  /** Stops delivery, waits for the handler in flight, and returns what was still queued. */
  async stopAfterCurrent(): Promise<Entry[]> {
    this.stopped = true;
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
    let handled = 0;
    while (!this.stopped && this.size > 0) {
      const entry = this.queue[this.head] as Entry;
      entry.deliveries++;
      let failed = false;
      let error: unknown;
      try {
        await this.handler({
          subject: entry.subject,
          data: JSON.parse(entry.payload) as JsonValue,
          deliveries: entry.deliveries,
        });
      } catch (e) {
        failed = true;
        error = e;
      }
      if (!failed) {
        this.acknowledge();
      } else if (entry.deliveries >= this.maxDeliver) {
        this.bus.deadLetter(this, entry, error);
        this.acknowledge();
      } else {
        // Redeliver after a turn of the event loop, so a failing handler does not spin.
        await new Promise((resolve) => setImmediate(resolve));
        continue;
      }
      if (++handled % YIELD_EVERY === 0) await new Promise((resolve) => setImmediate(resolve));
    }
  }

  /** Removes the head and lets the first message beyond the bound in. */
  private acknowledge(): void {
    this.queue[this.head] = undefined;
    this.head++;
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
    const admitted = this.queue[this.head + this.bus.maxPending - 1];
    if (admitted?.admit) {
      const admit = admitted.admit;
      admitted.admit = undefined;
      admit();
    }
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

function matches(pattern: readonly string[], subject: readonly string[]): boolean {
  for (let i = 0; i < pattern.length; i++) {
    const token = pattern[i];
    if (token === '>') return subject.length > i;
    if (i >= subject.length) return false;
    if (token !== '*' && token !== subject[i]) return false;
  }
  return pattern.length === subject.length;
}

function assertSubject(subject: string): void {
  const tokens = typeof subject === 'string' ? subject.split('.') : [];
  if (tokens.length === 0 || tokens.some((t) => t === '' || /[\s*>]/.test(t))) {
    throw new FerryError(
      'FERRY_ARGUMENT_INVALID',
      `subject '${subject}' is not valid: use dot-separated non-empty tokens without spaces or wildcards (orders.created)`,
    );
  }
}

function parsePattern(pattern: string): string[] {
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

function positiveInteger(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) {
    throw new FerryError(
      'FERRY_ARGUMENT_INVALID',
      `${name} must be a positive integer, got ${String(value)}`,
    );
  }
  return value;
}
