import { connect } from '@nats-io/transport-node';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JsonValue } from '../core/json.js';
import { describeEventBusConformance } from '../testing/event-bus.conformance.js';
import { expectCode, uniqueName } from '../testing/harness.js';
import { testService } from '../testing/services.js';
import type { EventMessage } from './event-bus.js';
import { groupConsumerName, openNatsEventBus, type NatsEventBus } from './nats.js';

const nats = await testService('nats');

// Every run has a stream and a subject prefix of its own, so runs sharing the server never meet,
// and the stream is deleted at the end.
const run = uniqueName('ferrytest');
const stream = run.toUpperCase();

function open(options: { maxPending?: number; ackWaitMs?: number } = {}): Promise<NatsEventBus> {
  return openNatsEventBus({
    servers: [nats.url],
    stream,
    maxPending: options.maxPending ?? 64,
    ackWaitMs: options.ackWaitMs ?? 5_000,
    subjectPrefix: run,
  });
}

describe.skipIf(!nats.available)('NatsEventBus', () => {
  let jsm: JetStreamManager;
  const cleanups: (() => Promise<unknown>)[] = [];
  beforeAll(async () => {
    const nc = await connect({ servers: [nats.url] });
    jsm = await jetstreamManager(nc);
    cleanups.push(() => nc.close());
  });
  afterAll(async () => {
    await jsm.streams.delete(stream).catch(() => undefined);
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  // No maxPending given: on JetStream the stream is the queue, and publish waits for the server's
  // acknowledgement rather than for a subscriber's room, so the case where publish waits for a full
  // subscriber does not apply. The bound on what a subscriber holds is checked below instead.
  describeEventBusConformance('nats', () => open());

  describe('across processes', () => {
    const opened: NatsEventBus[] = [];
    const connectBus = async (options?: {
      maxPending?: number;
      ackWaitMs?: number;
    }): Promise<NatsEventBus> => {
      const bus = await open(options);
      opened.push(bus);
      return bus;
    };
    afterAll(async () => {
      await Promise.all(opened.map((bus) => bus.close()));
    });

    it('splits a group between two connections: every message handled once, none lost', async () => {
      const [a, b] = [await connectBus(), await connectBus()];
      const p = uniqueName('t');
      const got: [number[], number[]] = [[], []];
      for (const [i, bus] of [a, b].entries()) {
        await bus.subscribe(
          `${p}.jobs`,
          async (m) => {
            await new Promise((resolve) => setTimeout(resolve, 1));
            got[i]?.push(m.data as number);
          },
          { group: 'workers' },
        );
      }
      const n = 200;
      const publishes: Promise<void>[] = [];
      for (let i = 0; i < n; i++) publishes.push((i % 2 === 0 ? a : b).publish(`${p}.jobs`, i));
      await Promise.all(publishes);
      await Promise.all([a.drain(), b.drain()]);
      const all = [...got[0], ...got[1]].sort((x, y) => x - y);
      expect(all).toEqual(Array.from({ length: n }, (_, i) => i));
      expect(got[0].length).toBeGreaterThan(0);
      expect(got[1].length).toBeGreaterThan(0);
    });

    it('resumes a group where it stopped: messages published while no member ran are delivered', async () => {
      const p = uniqueName('t');
      const first = await connectBus();
      const before: number[] = [];
      await first.subscribe(`${p}.r`, async (m) => void before.push(m.data as number), {
        group: 'scorers',
      });
      for (let i = 0; i < 5; i++) await first.publish(`${p}.r`, i);
      await first.drain();
      await first.close();
      expect(before).toEqual([0, 1, 2, 3, 4]);

      const producer = await connectBus();
      for (let i = 5; i < 15; i++) await producer.publish(`${p}.r`, i);

      const restarted = await connectBus();
      const after: number[] = [];
      await restarted.subscribe(`${p}.r`, async (m) => void after.push(m.data as number), {
        group: 'scorers',
      });
      await restarted.drain();
      expect(after).toEqual([5, 6, 7, 8, 9, 10, 11, 12, 13, 14]);
    });

    it('stores the dead letter of a failing message with its error, even when nobody reads it yet', async () => {
      const bus = await connectBus();
      const p = uniqueName('t');
      let attempts = 0;
      await bus.subscribe(
        `${p}.in`,
        async () => {
          attempts++;
          throw new Error('amount is not a number');
        },
        { maxDeliver: 2 },
      );
      await bus.publish(`${p}.in`, { id: 7, amount: 'x' });
      await bus.drain();
      expect(attempts).toBe(2);
      const stored = await jsm.streams.getMessage(stream, {
        last_by_subj: `${run}.ferry.dead.${p}.in`,
      });
      expect(stored?.json<JsonValue>()).toEqual({
        subject: `${p}.in`,
        data: { id: 7, amount: 'x' },
        deliveries: 2,
        error: 'amount is not a number',
      });
      // A reader that comes later (a group resumes from where it stood) is not needed: the stream
      // keeps it; one subscribed now sees only what comes next, as with any subject.
      const dead: EventMessage[] = [];
      await bus.subscribe(`ferry.dead.${p}.in`, async (m) => void dead.push(m));
      await bus.publish(`${p}.in`, { id: 8 });
      await bus.drain();
      expect(dead.map((m) => m.data)).toEqual([
        { subject: `${p}.in`, data: { id: 8 }, deliveries: 2, error: 'amount is not a number' },
      ]);
    });

    it('holds at most maxPending messages unacknowledged for a slow group; the rest wait in the stream', async () => {
      const bound = 4;
      const bus = await connectBus({ maxPending: bound });
      const p = uniqueName('t');
      const gate = deferred();
      const handled: number[] = [];
      await bus.subscribe(
        `${p}.slow`,
        async (m) => {
          await gate.promise;
          handled.push(m.data as number);
        },
        { group: 'slow' },
      );
      for (let i = 0; i < 20; i++) await bus.publish(`${p}.slow`, i);
      const consumer = groupConsumerName('slow', `${p}.slow`);
      let info = await jsm.consumers.info(stream, consumer);
      while (info.num_ack_pending < bound) {
        await new Promise((resolve) => setTimeout(resolve, 10));
        info = await jsm.consumers.info(stream, consumer);
      }
      expect(info.num_ack_pending).toBe(bound);
      expect(info.num_pending).toBe(20 - bound);
      gate.resolve();
      await bus.drain();
      expect(handled).toEqual(Array.from({ length: 20 }, (_, i) => i));
    });

    it('dead-letters a message whose last delivery went unanswered (its process died) instead of dropping it', async () => {
      const p = uniqueName('t');
      const subject = `${p}.orders`;
      const first = await connectBus({ ackWaitMs: 1000 });
      const sub = await first.subscribe(subject, async () => undefined, {
        group: 'g',
        maxDeliver: 1,
      });
      await sub.unsubscribe();
      await first.publish(subject, { id: 1 });
      // A member that takes the message and dies before answering: pulled, never acknowledged.
      const consumer = await jsm.jetstream().consumers.get(stream, groupConsumerName('g', subject));
      const taken = await consumer.next({ expires: 5_000 });
      expect(taken?.info.deliveryCount).toBe(1);

      const survivor = await connectBus({ ackWaitMs: 1000 });
      const handled: EventMessage[] = [];
      await survivor.subscribe(subject, async (m) => void handled.push(m), {
        group: 'g',
        maxDeliver: 1,
      });
      const dead: EventMessage[] = [];
      await survivor.subscribe(`ferry.dead.${subject}`, async (m) => void dead.push(m));
      // After ack_wait the server delivers it once more, and that delivery goes to dead letters.
      while (dead.length === 0) await survivor.drain();
      expect(handled).toEqual([]);
      expect(dead.map((m) => m.data)).toEqual([
        {
          subject,
          data: { id: 1 },
          deliveries: 2,
          error: expect.stringContaining('without an answer'),
        },
      ]);
    });

    it('keeps a message from redelivery while its handler outlives ack_wait', async () => {
      const bus = await connectBus({ ackWaitMs: 1000 });
      const p = uniqueName('t');
      const seen: [number, number][] = [];
      await bus.subscribe(`${p}.slow`, async (m) => {
        seen.push([m.data as number, m.deliveries]);
        if (m.data === 0) await new Promise((resolve) => setTimeout(resolve, 2_500));
      });
      for (let i = 0; i < 3; i++) await bus.publish(`${p}.slow`, i);
      await bus.drain();
      expect(seen).toEqual([
        [0, 1],
        [1, 1],
        [2, 1],
      ]);
    });

    it('hands batches over across connections of one group, every message once', async () => {
      const [a, b] = [await connectBus(), await connectBus()];
      const p = uniqueName('t');
      const got: number[] = [];
      for (const bus of [a, b]) {
        await bus.subscribeBatch(
          `${p}.rows`,
          async (messages) => void got.push(...messages.map((m) => m.data as number)),
          { group: 'loaders', maxMessages: 50, maxWaitMs: 5 },
        );
      }
      const publishes: Promise<void>[] = [];
      for (let i = 0; i < 500; i++) publishes.push(a.publish(`${p}.rows`, i));
      await Promise.all(publishes);
      await Promise.all([a.drain(), b.drain()]);
      expect(got.sort((x, y) => x - y)).toEqual(Array.from({ length: 500 }, (_, i) => i));
    });
  });

  describe('opening', () => {
    it('fails fast with the servers it tried, and no credentials, when NATS is unreachable', async () => {
      const err = await expectCode(
        openNatsEventBus({
          servers: ['nats://alice:s3cret@127.0.0.1:1'],
          stream,
          maxPending: 10,
          ackWaitMs: 1000,
        }),
        'FERRY_BACKEND_UNAVAILABLE',
      );
      expect(err.message).toContain('127.0.0.1:1');
      expect(err.message).not.toContain('s3cret');
      expect(err.message).not.toContain('alice');
    });

    it('adds its subjects to an existing stream, and says so clearly when another stream holds them', async () => {
      const other = uniqueName('ferrytest');
      const existing = other.toUpperCase();
      await jsm.streams.add({ name: existing, subjects: [`${other}_keep.>`] });
      try {
        const bus = await openNatsEventBus({
          servers: [nats.url],
          stream: existing,
          maxPending: 10,
          ackWaitMs: 1000,
          subjectPrefix: other,
        });
        await bus.close();
        const info = await jsm.streams.info(existing);
        expect(info.config.subjects).toEqual([`${other}_keep.>`, `${other}.>`]);

        const err = await expectCode(
          openNatsEventBus({
            servers: [nats.url],
            stream: `${existing}_B`,
            maxPending: 10,
            ackWaitMs: 1000,
            subjectPrefix: other,
          }),
          'FERRY_BACKEND_UNAVAILABLE',
        );
        expect(err.message).toContain(`${existing}_B`);
        expect(err.message).toContain(`${other}.>`);
      } finally {
        await jsm.streams.delete(existing).catch(() => undefined);
        await jsm.streams.delete(`${existing}_B`).catch(() => undefined);
      }
    });

    it('refuses bounds that are not positive integers', async () => {
      await expectCode(
        openNatsEventBus({ servers: [nats.url], stream, maxPending: 0, ackWaitMs: 1000 }),
        'FERRY_ARGUMENT_INVALID',
      );
      await expectCode(
        openNatsEventBus({ servers: [nats.url], stream: 'a.b', maxPending: 1, ackWaitMs: 1000 }),
        'FERRY_ARGUMENT_INVALID',
      );
    });
  });
});

describe('groupConsumerName', () => {
  it('is the same for the same group and subject, different otherwise, and a valid consumer name', () => {
    const a = groupConsumerName('scorers', 'orders.*');
    expect(groupConsumerName('scorers', 'orders.*')).toBe(a);
    expect(groupConsumerName('scorers', 'orders.>')).not.toBe(a);
    expect(groupConsumerName('scorers.eu', 'orders.*')).not.toBe(
      groupConsumerName('scorers_eu', 'orders.*'),
    );
    for (const name of [a, groupConsumerName('a b.c*>/\\ü'.repeat(10), 'x')]) {
      expect(name).toMatch(/^[A-Za-z0-9_-]{1,64}$/);
    }
  });
});

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve: () => void = () => undefined;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}
