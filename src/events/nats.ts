/**
 * NatsEventBus: the EventBus on NATS JetStream, for when events must survive a process and be
 * shared by several. It keeps the contract of `event-bus.ts` (checked by the same conformance
 * suite as the in-process bus) with JetStream's parts:
 *
 * - One stream (`FERRY` by default) holds every subject the bus carries, `ferry.>`: file storage,
 *   limits retention, messages kept for 7 days. Limits, not interest or work-queue retention,
 *   because several consumers read the same subject independently (a group, a monitor, a
 *   dead-letter reader) and a group that is down for a while must find its messages on return;
 *   the age bounds the disk. An existing stream is used as it is (an operator may have tuned its
 *   limits or replicas); the bus only adds its subjects to it when they are missing.
 * - `publish` resolves once the server has stored the message (the JetStream ack; on one server
 *   the file store syncs to disk on the server's `sync_interval`, replicas guard against a lost
 *   disk): backpressure comes from the server, and the stream, not the subscriber, is the queue.
 * - A subscription is a pull consumer with explicit acks, `ack_wait`, `max_ack_pending` (at most
 *   that many messages delivered and unacknowledged) and deliver policy `new` (only messages
 *   published after it subscribed, as in the in-process bus). Subscribers sharing a `group` share
 *   one durable consumer named from the group and the subject, so the group splits messages across
 *   processes and resumes where it stopped after a restart. They share its settings too: the last
 *   member to subscribe sets `maxDeliver` for all, so members of a group should agree on it. A
 *   subscription without a group has a consumer of its own, deleted when it unsubscribes (or by
 *   the server after an hour idle, when its process died).
 * - A handler that throws gets the message again (`nak`); after `maxDeliver` deliveries it is
 *   published to the dead-letter subject with the error and terminated. A batch handler that names
 *   some messages to deliver again gets those back the same way; the others are acknowledged. The consumer allows one
 *   delivery more than `maxDeliver`: that last one only comes when the previous went unanswered
 *   (the process died), and it is dead-lettered at once rather than dropped by the server.
 * - Messages waiting in a subscriber's buffer or in its handler are kept from `ack_wait` by
 *   "working" signals, so a slow handler is not raced by a redelivery; only the messages of a
 *   process that stopped answering go to others after `ack_wait`.
 *
 * Subjects travel as they are, so other programs publish to and read Ferry's subjects directly;
 * the bus therefore carries only subjects under `ferry.` (others are refused with
 * FERRY_BACKEND_UNSUPPORTED). With `subjectPrefix`, every subject travels under that prefix
 * instead (`orders.created` as `<prefix>.orders.created`) and the stream covers `<prefix>.>`: any
 * subject can be carried, and projects (or test runs) sharing one server never meet.
 */
import { createHash, randomUUID } from 'node:crypto';
import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  jetstream,
  jetstreamManager,
  type ConsumerConfig,
  type ConsumerInfo,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  type StreamInfo,
} from '@nats-io/jetstream';
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import type { JsonValue } from '../core/json.js';
import { FerryError, toFerryError } from '../errors/index.js';
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

export interface NatsEventBusOptions {
  /** Seed servers, `nats://host:port` or `host:port`. */
  readonly servers: readonly string[];
  /** The JetStream stream holding the bus's subjects; created when missing. */
  readonly stream: string;
  /** Messages delivered to a subscription (to a group, for a group) and not yet acknowledged, at most. */
  readonly maxPending: number;
  /** How long a delivered message may go without word from its subscriber before it is delivered again. */
  readonly ackWaitMs: number;
  /** Deliveries of a failing message before it is dead-lettered, when `subscribe` does not say. Default 5. */
  readonly defaultMaxDeliver?: number;
  /**
   * Carries every subject under this prefix on the wire (see the module comment). Without it,
   * subjects travel as they are and must start with `ferry.`.
   */
  readonly subjectPrefix?: string;
}

/** How long a stream the bus creates keeps messages. */
const STREAM_MAX_AGE_MS = 7 * 24 * 3_600_000;
/** A consumer of its own whose process died is removed by the server after this long idle. */
const OWN_CONSUMER_IDLE_MS = 3_600_000;
/** Life of one pull request; a new one follows at once (the client needs at least 1 s). */
const FETCH_EXPIRES_MS = 10_000;
/** Messages a plain subscription holds in its buffer, ahead of its handler. */
const SINGLE_BUFFER = 64;
/** Header that marks a dead letter, which is never dead-lettered again (that could loop). */
const DEAD_LETTER_HEADER = 'Ferry-Dead-Letter';
const FERRY_ROOT = 'ferry';

/**
 * Connects to NATS, makes sure the stream exists, and returns the bus.
 * @example
 * const bus = await openNatsEventBus({ servers: ['nats://127.0.0.1:4222'], stream: 'FERRY', maxPending: 10_000, ackWaitMs: 30_000 });
 * await bus.subscribeBatch('ferry.ingest.transactions', async (batch) => store(batch), { group: 'ingest' });
 * await bus.publish('ferry.ingest.transactions', { card_id: 'c1', amount: 12.5 });
 * await bus.close();
 */
export async function openNatsEventBus(options: NatsEventBusOptions): Promise<NatsEventBus> {
  const maxPending = positiveInteger('maxPending', options.maxPending);
  const ackWaitMs = positiveInteger('ackWaitMs', options.ackWaitMs);
  const defaultMaxDeliver = positiveInteger('defaultMaxDeliver', options.defaultMaxDeliver ?? 5);
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(options.stream)) {
    throw new FerryError(
      'FERRY_ARGUMENT_INVALID',
      `stream name '${options.stream}' is not valid: use 1 to 64 letters, digits, "_" or "-"`,
    );
  }
  const prefix = options.subjectPrefix;
  if (prefix !== undefined) assertSubject(prefix);
  if (options.servers.length === 0) {
    throw new FerryError('FERRY_ARGUMENT_INVALID', 'give at least one NATS server');
  }
  const where = options.servers.map(withoutCredentials).join(', ');
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers: [...options.servers],
      name: 'ferry',
      timeout: 5_000,
      // Once connected, ride out server restarts: publishes fail meanwhile, subscriptions resume.
      maxReconnectAttempts: -1,
    });
  } catch (error) {
    throw new FerryError(
      'FERRY_BACKEND_UNAVAILABLE',
      `cannot connect to NATS at ${where}: ${errorText(error)}. Start nats-server with JetStream (nats-server -js) or fix event_bus.servers in ferry.yaml`,
      { cause: error },
    );
  }
  try {
    let jsm: JetStreamManager;
    try {
      jsm = await jetstreamManager(nc);
    } catch (error) {
      throw new FerryError(
        'FERRY_BACKEND_UNAVAILABLE',
        `NATS at ${where} has no JetStream: ${errorText(error)}. Start the server with JetStream enabled (nats-server -js)`,
        { cause: error },
      );
    }
    const covers = `${prefix ?? FERRY_ROOT}.>`;
    await ensureStream(jsm, options.stream, covers, where);
    return new NatsEventBus(nc, jsm, jetstream(nc), {
      stream: options.stream,
      prefix,
      maxPending,
      ackWaitMs,
      defaultMaxDeliver,
    });
  } catch (error) {
    await nc.close().catch(() => undefined);
    throw error;
  }
}

interface BusSettings {
  readonly stream: string;
  readonly prefix: string | undefined;
  readonly maxPending: number;
  readonly ackWaitMs: number;
  readonly defaultMaxDeliver: number;
}

/** A {@link Delivery} that also bounds what is fetched from the stream ahead of the handler. */
interface BufferedDelivery extends Delivery {
  /** Messages held ahead of the handler (fetched, not yet handed over). */
  readonly buffer: number;
}

export class NatsEventBus implements EventBus {
  readonly backend = 'nats';
  readonly stream: string;
  readonly maxPending: number;
  readonly ackWaitMs: number;
  readonly defaultMaxDeliver: number;
  private readonly prefix: string | undefined;
  private readonly subscriptions = new Set<NatsSubscription>();
  private state: 'open' | 'closing' | 'closed' = 'open';
  private closing: Promise<void> | undefined;
  private readonly heartbeat: NodeJS.Timeout;
  private discarded = 0;
  /** Bumped by every local event drain must notice: a publish, a delivery, an acknowledgement. */
  private activity = 0;

  /** Use {@link openNatsEventBus}. */
  constructor(
    private readonly nc: NatsConnection,
    /** @internal */ readonly jsm: JetStreamManager,
    /** @internal */ readonly js: JetStreamClient,
    settings: BusSettings,
  ) {
    this.stream = settings.stream;
    this.prefix = settings.prefix;
    this.maxPending = settings.maxPending;
    this.ackWaitMs = settings.ackWaitMs;
    this.defaultMaxDeliver = settings.defaultMaxDeliver;
    this.heartbeat = setInterval(
      () => {
        for (const sub of this.subscriptions) sub.keepAlive();
      },
      Math.max(50, Math.floor(this.ackWaitMs / 3)),
    );
    this.heartbeat.unref();
  }

  /** Dead letters whose own handling failed `maxDeliver` times; they stay in the stream until it ages them out. */
  get discardedDeadLetters(): number {
    return this.discarded;
  }

  async publish(subject: string, data: JsonValue): Promise<void> {
    this.assertOpen();
    assertSubject(subject);
    const wire = this.toWire(subject);
    await this.send(subject, wire, encodeMessage(subject, data));
  }

  async subscribe(
    subject: string,
    handler: (message: EventMessage) => Promise<void>,
    options: SubscribeOptions = {},
  ): Promise<Subscription> {
    this.assertOpen();
    parsePattern(subject);
    const checked = checkSubscribeOptions(options, this.defaultMaxDeliver);
    return this.add(subject, checked, {
      limit: 1,
      maxWaitMs: 0,
      buffer: Math.min(this.maxPending, SINGLE_BUFFER),
      handle: (messages) => handler(messages[0] as EventMessage),
    });
  }

  async subscribeBatch(
    subject: string,
    handler: (messages: readonly EventMessage[]) => Promise<void | BatchOutcome>,
    options: BatchSubscribeOptions = {},
  ): Promise<Subscription> {
    this.assertOpen();
    parsePattern(subject);
    const checked = checkBatchOptions(options, this.defaultMaxDeliver);
    // Room for a second batch while the first is handled; never beyond what the server delivers.
    const buffer = Math.min(this.maxPending, 2 * checked.maxMessages);
    return this.add(subject, checked, {
      limit: Math.min(checked.maxMessages, buffer),
      maxWaitMs: checked.maxWaitMs,
      buffer,
      handle: handler,
    });
  }

  /**
   * Resolves once every message published so far to a subject of this bus's subscriptions has been
   * handled: nothing is buffered or running here, and the server has nothing pending or
   * unacknowledged for their consumers (polled, since the server does not announce it).
   */
  async drain(): Promise<void> {
    if (this.state === 'closed') return;
    let pause = 1;
    for (;;) {
      const before = this.activity;
      if (this.locallyIdle() && (await this.serverIdle()) && this.activity === before) {
        if (this.locallyIdle()) return;
      }
      await sleep(pause);
      pause = Math.min(pause * 2, 50);
    }
  }

  /**
   * Drains, stops every subscription (deleting the consumers of subscriptions without a group;
   * groups keep theirs), and closes the connection. Calls after it throw FERRY_STORE_CLOSED.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.state = 'closing';
      let failure: unknown;
      try {
        await this.drain();
      } catch (error) {
        failure = error;
      }
      this.state = 'closed';
      await Promise.allSettled([...this.subscriptions].map((sub) => this.unsubscribe(sub)));
      clearInterval(this.heartbeat);
      await this.nc.close().catch(() => undefined);
      if (failure !== undefined) throw toFerryError(failure, 'FERRY_BACKEND_UNAVAILABLE');
    })();
    return this.closing;
  }

  /** @internal Publishes a dead letter (marked, so that it is never dead-lettered again). */
  async publishDeadLetter(subject: string, body: string): Promise<void> {
    const marked = headers();
    marked.set(DEAD_LETTER_HEADER, '1');
    await this.send(subject, this.toWire(subject), body, marked);
  }

  /** @internal Called for a dead letter whose own handling failed `maxDeliver` times. */
  discardDeadLetter(subject: string, deliveries: number, error: unknown): void {
    this.discarded++;
    process.emitWarning(
      `dead letter on '${subject}' failed ${deliveries} deliveries and is no longer delivered (it stays in stream '${this.stream}' until it ages out): ${errorText(error)}`,
      { code: 'FERRY_DEAD_LETTER_UNROUTED' },
    );
  }

  /** @internal Notes an event `drain` must see. */
  touch(): void {
    this.activity++;
  }

  /** @internal The bus subject of a wire subject. */
  fromWire(wire: string): string {
    return this.prefix === undefined ? wire : wire.slice(this.prefix.length + 1);
  }

  /** @internal Creates a consumer, or gives a group's existing one this subscription's settings. */
  async ensureConsumer(config: Partial<ConsumerConfig>, name: string): Promise<ConsumerInfo> {
    try {
      return await this.jsm.consumers.add(this.stream, config);
    } catch (error) {
      // Servers from 2.10 refuse to create over an existing consumer whose settings differ: the
      // group's consumer exists, so take on this subscription's settings.
      const existing = await this.jsm.consumers.info(this.stream, name).catch(() => undefined);
      if (existing === undefined) throw this.unavailable(`create consumer '${name}'`, error);
      if (existing.config.filter_subject !== config.filter_subject) {
        throw new FerryError(
          'FERRY_BACKEND_UNAVAILABLE',
          `consumer '${name}' of stream '${this.stream}' filters '${existing.config.filter_subject ?? ''}', not '${config.filter_subject ?? ''}': delete it (nats consumer rm ${this.stream} ${name}) and subscribe again`,
          { cause: error },
        );
      }
      try {
        return await this.jsm.consumers.update(this.stream, name, {
          max_deliver: config.max_deliver,
          ack_wait: config.ack_wait,
          max_ack_pending: config.max_ack_pending,
        });
      } catch (updateError) {
        throw this.unavailable(`update consumer '${name}'`, updateError);
      }
    }
  }

  /** @internal */
  unavailable(what: string, error: unknown): FerryError {
    if (error instanceof FerryError) return error;
    return new FerryError(
      'FERRY_BACKEND_UNAVAILABLE',
      `NATS could not ${what} on stream '${this.stream}': ${errorText(error)}`,
      { cause: error },
    );
  }

  private async add(
    subject: string,
    options: CheckedSubscribeOptions,
    delivery: BufferedDelivery,
  ): Promise<Subscription> {
    const filter = this.toWire(subject);
    // Refused now, rather than when the first message fails.
    if (options.deadLetterSubject !== undefined) this.toWire(options.deadLetterSubject);
    const name =
      options.group === undefined
        ? `ferry_${randomUUID().replaceAll('-', '')}`
        : groupConsumerName(options.group, subject);
    const config: Partial<ConsumerConfig> = {
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.New,
      filter_subject: filter,
      // One delivery beyond maxDeliver, to dead-letter a message whose last delivery went unanswered.
      max_deliver: options.maxDeliver + 1,
      ack_wait: this.ackWaitMs * 1_000_000,
      max_ack_pending: this.maxPending,
      ...(options.group === undefined
        ? { name, inactive_threshold: OWN_CONSUMER_IDLE_MS * 1_000_000 }
        : { durable_name: name }),
    };
    const info = await this.ensureConsumer(config, name);
    const sub = new NatsSubscription(this, info, config, options, delivery);
    this.subscriptions.add(sub);
    this.touch();
    sub.start();
    return { unsubscribe: () => this.unsubscribe(sub) };
  }

  private async unsubscribe(sub: NatsSubscription): Promise<void> {
    if (!this.subscriptions.delete(sub)) return;
    await sub.stop();
    this.touch();
  }

  private async send(
    subject: string,
    wire: string,
    payload: string,
    marks?: ReturnType<typeof headers>,
  ): Promise<void> {
    const bytes = Buffer.byteLength(payload);
    const limit = this.nc.info?.max_payload;
    if (limit !== undefined && bytes > limit) {
      throw new FerryError(
        'FERRY_ARGUMENT_INVALID',
        `message for '${subject}' is ${bytes} bytes; the NATS server takes at most ${limit}: send smaller messages`,
      );
    }
    try {
      await this.js.publish(wire, payload, marks === undefined ? undefined : { headers: marks });
    } catch (error) {
      throw new FerryError(
        'FERRY_BACKEND_UNAVAILABLE',
        `NATS did not store the message on '${subject}' in stream '${this.stream}': ${errorText(error)}. Check that the server is up and the stream exists`,
        { cause: error },
      );
    }
    this.touch();
  }

  private toWire(subject: string): string {
    if (this.prefix !== undefined) return `${this.prefix}.${subject}`;
    if (!subject.startsWith(`${FERRY_ROOT}.`)) {
      throw new FerryError(
        'FERRY_BACKEND_UNSUPPORTED',
        `the nats event bus carries subjects under '${FERRY_ROOT}.' only (its stream '${this.stream}' holds '${FERRY_ROOT}.>'), not '${subject}': name it ${FERRY_ROOT}.${subject}, or give the bus a subject prefix`,
      );
    }
    return subject;
  }

  private locallyIdle(): boolean {
    for (const sub of this.subscriptions) if (!sub.idle) return false;
    return true;
  }

  /** Whether no consumer of this bus has messages pending or unacknowledged on the server. */
  private async serverIdle(): Promise<boolean> {
    const names = new Set([...this.subscriptions].map((sub) => sub.consumer));
    const infos = await Promise.all(
      [...names].map((name) =>
        this.jsm.consumers.info(this.stream, name).catch((error: unknown) => {
          // A consumer deleted meanwhile (its subscription left) has nothing left to wait for.
          if (isNotFound(error)) return undefined;
          throw this.unavailable(`read consumer '${name}'`, error);
        }),
      ),
    );
    return infos.every((info) => !info || (info.num_pending === 0 && info.num_ack_pending === 0));
  }

  private assertOpen(): void {
    if (this.state === 'closed')
      throw new FerryError('FERRY_STORE_CLOSED', `the nats event bus (${this.stream}) is closed`);
  }
}

/**
 * One subscription: a pump that pulls messages from its consumer into a bounded buffer, and a loop
 * that hands them to the handler one call at a time (one message, or one batch).
 */
class NatsSubscription {
  readonly consumer: string;
  /** Received, not yet handed to the handler; `at` is when it arrived (performance.now()). */
  private readonly buffer: Held[] = [];
  /** Handed to the handler and not yet settled. */
  private inFlight: readonly Held[] = [];
  private handling = false;
  private stopping = false;
  private fetching: ConsumerMessages | undefined;
  private pumping: Promise<void> | undefined;
  private running: Promise<void> | undefined;
  /** Wakes the loop (a message arrived, or stop) and the pump (room freed, or stop). */
  private readonly arrived = new Signal();
  private readonly room = new Signal();
  /** The stream sequence after the last message received, to recreate a vanished consumer from. */
  private nextSeq: number;

  constructor(
    private readonly bus: NatsEventBus,
    private info: ConsumerInfo,
    private readonly config: Partial<ConsumerConfig>,
    private readonly options: CheckedSubscribeOptions,
    private readonly delivery: BufferedDelivery,
  ) {
    this.consumer = info.name;
    this.nextSeq = info.delivered.stream_seq + 1;
  }

  get idle(): boolean {
    return this.buffer.length === 0 && !this.handling;
  }

  start(): void {
    this.pumping = this.pump();
    this.running = this.run();
  }

  /** Stops pulling, lets the handler in flight finish, and gives back what was not handled. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.arrived.notify();
    this.room.notify();
    this.fetching?.stop();
    await this.running;
    await this.pumping;
    const left = this.buffer.splice(0);
    if (this.options.group === undefined) {
      await this.bus.jsm.consumers.delete(this.bus.stream, this.consumer).catch(() => undefined);
    } else {
      // Back to the group at once, rather than after ack_wait (which is what happens if this fails).
      settleQuietly(left, (msg) => msg.nak());
    }
  }

  /** Tells the server that held messages are still being worked on, so ack_wait does not pass. */
  keepAlive(): void {
    settleQuietly(this.buffer, (msg) => msg.working());
    settleQuietly(this.inFlight, (msg) => msg.working());
  }

  private async pump(): Promise<void> {
    const { buffer } = this.delivery;
    const refill = Math.ceil(buffer / 4);
    let failures = 0;
    while (!this.stopping) {
      while (!this.stopping && buffer - this.buffer.length < refill && this.buffer.length > 0)
        await this.room.wait();
      if (this.stopping) break;
      try {
        const consumer = this.bus.js.consumers.getConsumerFromInfo(this.info);
        const messages = await consumer.fetch({
          max_messages: buffer - this.buffer.length,
          expires: FETCH_EXPIRES_MS,
        });
        this.fetching = messages;
        if (this.stopping) messages.stop();
        for await (const msg of messages) {
          this.buffer.push({ msg, at: performance.now() });
          this.nextSeq = Math.max(this.nextSeq, msg.seq + 1);
          this.bus.touch();
          this.arrived.notify();
        }
        failures = 0;
      } catch (error) {
        if (this.stopping) break;
        failures++;
        if (failures === 1) {
          process.emitWarning(
            `pulling from consumer '${this.consumer}' of stream '${this.bus.stream}' failed, retrying: ${errorText(error)}`,
            { code: 'FERRY_EVENT_BUS_RETRY' },
          );
        }
        await this.room.wait(Math.min(250 * failures, 5_000));
        await this.recover();
      } finally {
        this.fetching = undefined;
      }
    }
  }

  /** Recreates the consumer if it vanished (deleted by an operator, or idle too long). */
  private async recover(): Promise<void> {
    if (this.stopping) return;
    try {
      this.info = await this.bus.jsm.consumers.info(this.bus.stream, this.consumer);
    } catch (error) {
      if (!isNotFound(error)) return;
      const config = {
        ...this.config,
        deliver_policy: DeliverPolicy.StartSequence,
        opt_start_seq: this.nextSeq,
      };
      this.info = await this.bus.ensureConsumer(config, this.consumer).catch(() => this.info);
    }
  }

  private async run(): Promise<void> {
    const { limit, maxWaitMs } = this.delivery;
    while (!this.stopping) {
      const first = this.buffer[0];
      if (first === undefined) {
        await this.arrived.wait();
        continue;
      }
      if (this.buffer.length < limit && maxWaitMs > 0) {
        const left = maxWaitMs - (performance.now() - first.at);
        if (left > 0) {
          await this.arrived.wait(left);
          // Woken by a message: wait on until the batch is full or its time is up.
          if (
            !this.stopping &&
            this.buffer.length < limit &&
            performance.now() - first.at < maxWaitMs
          )
            continue;
        }
        if (this.stopping) break;
      }
      this.inFlight = this.buffer.splice(0, limit);
      const batch = this.inFlight.map(({ msg }) => msg);
      this.handling = true;
      this.room.notify();
      try {
        await this.deliver(batch);
      } catch (error) {
        // Settling failed (the connection is gone): the server delivers the batch again.
        process.emitWarning(
          `could not settle ${batch.length} message(s) of consumer '${this.consumer}': ${errorText(error)}`,
          { code: 'FERRY_EVENT_BUS_RETRY' },
        );
      } finally {
        this.inFlight = [];
        this.handling = false;
        this.bus.touch();
      }
    }
  }

  /** Hands a batch to the handler and settles every message of it. */
  private async deliver(batch: readonly JsMsg[]): Promise<void> {
    const { maxDeliver } = this.options;
    const messages: EventMessage[] = [];
    const handed: JsMsg[] = [];
    for (const msg of batch) {
      const subject = this.bus.fromWire(msg.subject);
      const deliveries = msg.info.deliveryCount;
      const text = msg.string();
      let data: JsonValue;
      try {
        data = JSON.parse(text) as JsonValue;
      } catch (error) {
        // Published by something other than Ferry: no handler can take it.
        await this.deadLetter(msg, subject, JSON.stringify(text), `not JSON: ${errorText(error)}`);
        continue;
      }
      if (deliveries > maxDeliver) {
        await this.deadLetter(
          msg,
          subject,
          text,
          `delivered ${deliveries} times without an answer (its subscriber stopped, or failed to dead-letter it)`,
        );
        continue;
      }
      messages.push({ subject, data, deliveries });
      handed.push(msg);
    }
    if (messages.length === 0) return;
    // Each message's error, for those to deliver again: all of them when the handler throws.
    let failed: Map<number, unknown>;
    try {
      failed = retriesOf(messages, await this.delivery.handle(messages));
    } catch (error) {
      failed = new Map(handed.map((_, i) => [i, error]));
    }
    await Promise.all(
      handed.map((msg, i) => {
        if (!failed.has(i)) {
          msg.ack();
          return undefined;
        }
        const message = messages[i] as EventMessage;
        if (message.deliveries >= maxDeliver)
          return this.deadLetter(msg, message.subject, msg.string(), failed.get(i));
        msg.nak();
        return undefined;
      }),
    );
  }

  /** Publishes a message to its dead-letter subject, then terminates it; never drops it silently. */
  private async deadLetter(
    msg: JsMsg,
    subject: string,
    payload: string,
    error: unknown,
  ): Promise<void> {
    const deliveries = msg.info.deliveryCount;
    if (msg.headers?.get(DEAD_LETTER_HEADER)) {
      this.bus.discardDeadLetter(subject, deliveries, error);
      msg.term();
      return;
    }
    const target = deadLetterSubjectOf(subject, this.options.deadLetterSubject);
    try {
      await this.bus.publishDeadLetter(target, deadLetterBody(subject, payload, error, deliveries));
    } catch (publishError) {
      // Not stored: leave the message to come back, and to be dead-lettered on its next delivery.
      process.emitWarning(
        `could not dead-letter a message of '${subject}' to '${target}', it will be delivered again: ${errorText(publishError)}`,
        { code: 'FERRY_EVENT_BUS_RETRY' },
      );
      msg.nak();
      return;
    }
    msg.term();
  }
}

interface Held {
  readonly msg: JsMsg;
  readonly at: number;
}

/** A wake-up call for one waiter at a time, with an optional time limit. */
class Signal {
  private wake: (() => void) | undefined;

  wait(ms?: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = ms === undefined ? undefined : setTimeout(() => this.notify(), ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}

/**
 * Makes sure `stream` exists and holds `covers`: creates it when missing, adds the subject to an
 * existing stream that lacks it, and fails clearly when another stream already holds it.
 */
async function ensureStream(
  jsm: JetStreamManager,
  stream: string,
  covers: string,
  where: string,
): Promise<void> {
  const wanted = covers.split('.');
  let info: StreamInfo | undefined = await jsm.streams.info(stream).catch((error: unknown) => {
    if (isNotFound(error)) return undefined;
    throw new FerryError(
      'FERRY_BACKEND_UNAVAILABLE',
      `cannot read NATS stream '${stream}' at ${where}: ${errorText(error)}`,
      { cause: error },
    );
  });
  if (info === undefined) {
    try {
      await jsm.streams.add({
        name: stream,
        subjects: [covers],
        storage: StorageType.File,
        retention: RetentionPolicy.Limits,
        discard: DiscardPolicy.Old,
        max_age: STREAM_MAX_AGE_MS * 1_000_000,
      });
      return;
    } catch (error) {
      // Created by another process meanwhile? Then check it as any existing stream.
      info = await jsm.streams.info(stream).catch(() => undefined);
      if (info === undefined) throw streamConflict(stream, covers, where, error);
    }
  }
  const subjects = info.config.subjects ?? [];
  if (subjects.some((s) => matches(s.split('.'), wanted))) return;
  try {
    await jsm.streams.update(stream, { subjects: [...subjects, covers] });
  } catch (error) {
    throw streamConflict(stream, covers, where, error);
  }
}

function streamConflict(stream: string, covers: string, where: string, error: unknown): FerryError {
  return new FerryError(
    'FERRY_BACKEND_UNAVAILABLE',
    `NATS stream '${stream}' at ${where} cannot hold subjects '${covers}': ${errorText(error)}. If another stream holds them, set event_bus.stream to that stream's name, or remove the subjects from it`,
    { cause: error },
  );
}

/**
 * The durable consumer of a group on a subject: the group name cut to the characters consumer
 * names allow, plus a hash of group and subject, so that the same pair always meets the same
 * consumer and different pairs never do.
 */
export function groupConsumerName(group: string, subject: string): string {
  const readable = group.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 32);
  const hash = createHash('sha256').update(`${group}\u0000${subject}`).digest('hex').slice(0, 16);
  return `ferry_g_${readable}_${hash}`;
}

/**
 * Sends an acknowledgement-type signal for each message, ignoring a closed connection: the server
 * then redelivers after ack_wait, which is the intended fallback.
 */
function settleQuietly(held: readonly Held[], send: (msg: JsMsg) => void): void {
  for (const { msg } of held) {
    try {
      send(msg);
    } catch {
      return;
    }
  }
}

function isNotFound(error: unknown): boolean {
  return (
    error instanceof JetStreamApiError &&
    (error.code === 10014 || error.code === 10059 || error.status === 404)
  );
}

/** A server address fit for a message: any user and password in it removed. */
function withoutCredentials(server: string): string {
  return server.replace(/^([a-z]+:\/\/)?[^@/]*@/i, '$1');
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
