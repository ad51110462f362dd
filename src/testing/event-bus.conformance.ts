/**
 * The EventBus contract as Vitest cases, run against every backend (in-process, NATS JetStream)
 * so that they all behave the same. See `src/events/event-bus.ts`.
 *
 * Buses opened by the suite may share one engine with each other and with earlier runs: every case
 * publishes under a subject prefix of its own, and never subscribes to a bare `>`.
 */
import { describe, expect, it } from 'vitest';
import type { JsonValue } from '../core/json.js';
import type { EventBus, EventMessage } from '../events/event-bus.js';
import { expectCode, trackOpened, uniqueName } from './harness.js';

export interface EventBusConformanceOptions {
  /**
   * The bound on unacknowledged messages per subscription of the buses `open` gives (keep it
   * small: 4; the batch cases need at least 3). Without it the cases where `publish` waits for a
   * full subscriber are skipped: leave it out for a bus whose stream is the queue, so that
   * `publish` waits for its server instead (NATS JetStream).
   */
  readonly maxPending?: number;
}

/**
 * Declares the conformance cases for one backend.
 *
 * @param open opens a bus; cases close what they open.
 * @param cleanup runs once after all cases.
 * @param options what the suite must know of the buses `open` gives.
 * @example
 * describeEventBusConformance('memory', async () => createMemoryEventBus({ maxPending: 4 }), undefined, { maxPending: 4 });
 */
export function describeEventBusConformance(
  name: string,
  open: () => Promise<EventBus>,
  cleanup?: () => Promise<void>,
  options: EventBusConformanceOptions = {},
): void {
  describe(`EventBus conformance: ${name}`, () => {
    const connect = trackOpened(open, cleanup);

    describe('delivery', () => {
      it('delivers a message to a subscriber of its subject, as the JSON it was', async () => {
        const bus = await connect();
        const p = uniqueName('t');
        const got = collector();
        await bus.subscribe(`${p}.orders.created`, got.handler);
        const data: JsonValue = {
          id: 17,
          amount: -0.1,
          tags: ['naïve', '日本語', '🚀', ''],
          nested: { ok: true, none: null, list: [[], {}] },
        };
        await bus.publish(`${p}.orders.created`, data);
        await bus.publish(`${p}.orders.created`, 'plain text');
        await bus.publish(`${p}.orders.other`, { not: 'for this subscriber' });
        await bus.drain();
        expect(got.messages).toEqual([
          { subject: `${p}.orders.created`, data, deliveries: 1 },
          { subject: `${p}.orders.created`, data: 'plain text', deliveries: 1 },
        ]);
      });

      it('matches * to exactly one token and a final > to one or more tokens', async () => {
        const bus = await connect();
        const p = uniqueName('t');
        const patterns = ['a', 'a.*', 'a.>', 'a.*.c', '*.b', '>'];
        const got = new Map(patterns.map((pattern) => [pattern, collector()]));
        for (const [pattern, c] of got) await bus.subscribe(`${p}.${pattern}`, c.handler);
        for (const subject of ['a', 'a.b', 'a.b.c', 'x.b', 'a.x.c', 'b'])
          await bus.publish(`${p}.${subject}`, subject);
        await bus.drain();
        const seen = (pattern: string): string[] =>
          (got.get(pattern)?.messages ?? []).map((m) => String(m.data)).sort();
        expect(seen('a')).toEqual(['a']);
        expect(seen('a.*')).toEqual(['a.b']);
        expect(seen('a.>')).toEqual(['a.b', 'a.b.c', 'a.x.c']);
        expect(seen('a.*.c')).toEqual(['a.b.c', 'a.x.c']);
        expect(seen('*.b')).toEqual(['a.b', 'x.b']);
        expect(seen('>')).toEqual(['a', 'a.b', 'a.b.c', 'a.x.c', 'b', 'x.b']);
      });

      it('gives every message to every subscriber outside a group', async () => {
        const bus = await connect();
        const p = uniqueName('t');
        const [one, two] = [collector(), collector()];
        await bus.subscribe(`${p}.x`, one.handler);
        await bus.subscribe(`${p}.*`, two.handler);
        for (let i = 0; i < 10; i++) await bus.publish(`${p}.x`, i);
        await bus.drain();
        expect(one.values()).toEqual(range(10));
        expect(two.values()).toEqual(range(10));
      });

      it('splits a group: each message goes to exactly one member, while a plain subscriber gets all', async () => {
        const bus = await connect();
        const p = uniqueName('t');
        const members = [collector(), collector(), collector()];
        for (const m of members) await bus.subscribe(`${p}.jobs`, m.handler, { group: 'workers' });
        const watcher = collector();
        await bus.subscribe(`${p}.jobs`, watcher.handler);
        const n = 60;
        for (let i = 0; i < n; i++) await bus.publish(`${p}.jobs`, i);
        await bus.drain();
        const handled = members.flatMap((m) => m.values());
        expect(handled.sort((a, b) => a - b)).toEqual(range(n));
        for (const m of members) expect(m.messages.length).toBeGreaterThan(0);
        expect(watcher.values()).toEqual(range(n));
      });

      it('hands messages to one subscription one at a time, in publish order', async () => {
        const bus = await connect();
        const p = uniqueName('t');
        const order: number[] = [];
        let inFlight = 0;
        let overlap = false;
        await bus.subscribe(`${p}.seq`, async (m) => {
          inFlight++;
          if (inFlight > 1) overlap = true;
          // Yield so that a second delivery would overlap if the bus allowed it.
          await new Promise((resolve) => setTimeout(resolve, (m.data as number) % 3));
          order.push(m.data as number);
          inFlight--;
        });
        const publishes: Promise<void>[] = [];
        for (let i = 0; i < 50; i++) publishes.push(bus.publish(`${p}.seq`, i));
        await Promise.all(publishes);
        await bus.drain();
        expect(order).toEqual(range(50));
        expect(overlap).toBe(false);
      });

      it('never runs a handler inside the call to publish', async () => {
        const bus = await connect();
        const p = uniqueName('t');
        let publishing = false;
        const seenWhilePublishing: boolean[] = [];
        await bus.subscribe(`${p}.async`, async () => {
          seenWhilePublishing.push(publishing);
        });
        publishing = true;
        const sent = bus.publish(`${p}.async`, 1);
        publishing = false;
        await sent;
        await bus.drain();
        expect(seenWhilePublishing).toEqual([false]);
      });

      it('stops delivering to a subscription once it is unsubscribed, and a group carries on without it', async () => {
        const bus = await connect();
        const p = uniqueName('t');
        const [gone, staying, plain] = [collector(), collector(), collector()];
        const goneSub = await bus.subscribe(`${p}.t`, gone.handler, { group: 'g' });
        await bus.subscribe(`${p}.t`, staying.handler, { group: 'g' });
        const plainSub = await bus.subscribe(`${p}.t`, plain.handler);
        await bus.publish(`${p}.t`, 0);
        await bus.drain();
        await goneSub.unsubscribe();
        await plainSub.unsubscribe();
        const before = gone.messages.length;
        for (let i = 1; i <= 10; i++) await bus.publish(`${p}.t`, i);
        await bus.drain();
        expect(gone.messages.length).toBe(before);
        expect(plain.values()).toEqual([0]);
        expect([...gone.values(), ...staying.values()].sort((a, b) => a - b)).toEqual(range(11));
      });
    });

    describe('failures', () => {
      it('redelivers a message whose handler throws, counting deliveries, until it succeeds', async () => {
        const bus = await connect();
        const p = uniqueName('t');
        const deliveries: [number, number][] = [];
        await bus.subscribe(
          `${p}.flaky`,
          async (m) => {
            deliveries.push([m.data as number, m.deliveries]);
            if (m.data === 1 && m.deliveries < 3) throw new Error('not yet');
          },
          { maxDeliver: 5 },
        );
        const dead = collector();
        await bus.subscribe(`ferry.dead.${p}.flaky`, dead.handler);
        await bus.publish(`${p}.flaky`, 1);
        await bus.publish(`${p}.flaky`, 2);
        await bus.drain();
        expect(deliveries.filter(([v]) => v === 1)).toEqual([
          [1, 1],
          [1, 2],
          [1, 3],
        ]);
        expect(deliveries.filter(([v]) => v === 2)).toEqual([[2, 1]]);
        expect(dead.messages).toEqual([]);
      });

      it('dead-letters a message after maxDeliver failures, with the error, and goes on with the next', async () => {
        const bus = await connect();
        const p = uniqueName('t');
        const attempts: number[] = [];
        const handled: JsonValue[] = [];
        await bus.subscribe(
          `${p}.poison`,
          async (m) => {
            if (m.data === 'poison') {
              attempts.push(m.deliveries);
              throw new Error('cannot parse amount');
            }
            handled.push(m.data);
          },
          { maxDeliver: 3 },
        );
        const dead = collector();
        await bus.subscribe(`ferry.dead.${p}.poison`, dead.handler);
        await bus.publish(`${p}.poison`, 'poison');
        await bus.publish(`${p}.poison`, 'fine');
        await bus.drain();
        expect(attempts).toEqual([1, 2, 3]);
        expect(handled).toEqual(['fine']);
        expect(dead.messages).toHaveLength(1);
        expect(dead.messages[0]).toMatchObject({
          subject: `ferry.dead.${p}.poison`,
          data: {
            subject: `${p}.poison`,
            data: 'poison',
            deliveries: 3,
            error: expect.stringContaining('cannot parse amount'),
          },
        });
      });

      it('dead-letters to the subject a subscription names', async () => {
        const bus = await connect();
        const p = uniqueName('t');
        await bus.subscribe(
          `${p}.in`,
          async () => {
            throw new Error('always');
          },
          { maxDeliver: 1, deadLetterSubject: `${p}.quarantine` },
        );
        const dead = collector();
        await bus.subscribe(`${p}.quarantine`, dead.handler);
        await bus.publish(`${p}.in`, { id: 9 });
        await bus.drain();
        expect(dead.messages.map((m) => m.data)).toEqual([
          {
            subject: `${p}.in`,
            data: { id: 9 },
            deliveries: 1,
            error: expect.stringContaining('always'),
          },
        ]);
      });
    });

    describe('batches', () => {
      it('hands over batches of at most maxMessages, one at a time, every message once in publish order', async () => {
        const bus = await connect();
        const p = uniqueName('t');
        const batches: EventMessage[][] = [];
        let inFlight = 0;
        let overlap = false;
        await bus.subscribeBatch(
          `${p}.rows`,
          async (messages) => {
            inFlight++;
            if (inFlight > 1) overlap = true;
            await new Promise((resolve) => setTimeout(resolve, 1));
            batches.push([...messages]);
            inFlight--;
          },
          // A generous wait: every message is published long before it would end a batch.
          { maxMessages: 3, maxWaitMs: 1000 },
        );
        const publishes: Promise<void>[] = [];
        for (let i = 0; i < 21; i++) publishes.push(bus.publish(`${p}.rows`, i));
        await Promise.all(publishes);
        await bus.drain();
        expect(batches.flat().map((m) => m.data)).toEqual(range(21));
        for (const m of batches.flat())
          expect(m).toMatchObject({ subject: `${p}.rows`, deliveries: 1 });
        for (const batch of batches) expect(batch.length).toBeGreaterThan(0);
        for (const batch of batches) expect(batch.length).toBeLessThanOrEqual(3);
        // Batching happened: fewer handler calls than messages.
        expect(batches.length).toBeLessThan(21);
        expect(overlap).toBe(false);
      });

      it('hands over a partial batch once maxWaitMs has passed', async () => {
        const bus = await connect();
        const p = uniqueName('t');
        const got: number[] = [];
        await bus.subscribeBatch(
          `${p}.few`,
          async (messages) => void got.push(...messages.map((m) => m.data as number)),
          { maxMessages: 100, maxWaitMs: 30 },
        );
        await bus.publish(`${p}.few`, 0);
        await bus.publish(`${p}.few`, 1);
        // Would never resolve if the bus waited for 100 messages.
        await bus.drain();
        expect(got).toEqual([0, 1]);
      });

      it('delivers every message of a batch again when its handler throws, until one resolves', async () => {
        const bus = await connect();
        const p = uniqueName('t');
        const seen = new Map<number, number[]>();
        const acknowledged: number[] = [];
        await bus.subscribeBatch(
          `${p}.retry`,
          async (messages) => {
            for (const m of messages) {
              const deliveries = seen.get(m.data as number) ?? [];
              deliveries.push(m.deliveries);
              seen.set(m.data as number, deliveries);
            }
            // Fails any batch holding a first delivery, so every message is delivered twice or more.
            if (messages.some((m) => m.deliveries === 1)) throw new Error('store down');
            acknowledged.push(...messages.map((m) => m.data as number));
          },
          { maxMessages: 4, maxWaitMs: 20, maxDeliver: 10 },
        );
        const dead = collector();
        await bus.subscribe(`ferry.dead.${p}.retry`, dead.handler);
        for (let i = 0; i < 6; i++) await bus.publish(`${p}.retry`, i);
        await bus.drain();
        expect(acknowledged.sort((a, b) => a - b)).toEqual(range(6));
        for (const i of range(6)) {
          const deliveries = seen.get(i) ?? [];
          expect(deliveries.length).toBeGreaterThanOrEqual(2);
          expect(deliveries).toEqual(range(deliveries.length).map((d) => d + 1));
        }
        expect(dead.messages).toEqual([]);
      });

      it('dead-letters each message of a batch that keeps failing, with the error', async () => {
        const bus = await connect();
        const p = uniqueName('t');
        const seen: [number, number][] = [];
        await bus.subscribeBatch(
          `${p}.bad`,
          async (messages) => {
            for (const m of messages) seen.push([m.data as number, m.deliveries]);
            throw new Error('schema mismatch');
          },
          { maxMessages: 2, maxWaitMs: 20, maxDeliver: 2, deadLetterSubject: `${p}.quarantine` },
        );
        const dead = collector();
        await bus.subscribe(`${p}.quarantine`, dead.handler);
        for (let i = 0; i < 3; i++) await bus.publish(`${p}.bad`, i);
        await bus.drain();
        expect(seen.sort(([a, x], [b, y]) => a - b || x - y)).toEqual([
          [0, 1],
          [0, 2],
          [1, 1],
          [1, 2],
          [2, 1],
          [2, 2],
        ]);
        expect(
          dead.messages.map((m) => m.data as { data: number }).sort((a, b) => a.data - b.data),
        ).toEqual(
          range(3).map((i) => ({
            subject: `${p}.bad`,
            data: i,
            deliveries: 2,
            error: expect.stringContaining('schema mismatch'),
          })),
        );
      });

      it('delivers again only the messages a batch handler names, dead-lettering each with its own error', async () => {
        const bus = await connect();
        const p = uniqueName('t');
        const seen: [number, number][] = [];
        const acknowledged: number[] = [];
        await bus.subscribeBatch(
          `${p}.part`,
          async (messages) => {
            for (const m of messages) seen.push([m.data as number, m.deliveries]);
            // 1 never goes through; 3 goes through on its second delivery; the rest at once.
            const retry = messages
              .filter((m) => m.data === 1 || (m.data === 3 && m.deliveries === 1))
              .map((m) => ({ message: m, error: new Error(`cannot take ${String(m.data)}`) }));
            for (const m of messages)
              if (!retry.some((r) => r.message === m)) acknowledged.push(m.data as number);
            return { retry };
          },
          { maxMessages: 5, maxWaitMs: 50, maxDeliver: 3, deadLetterSubject: `${p}.quarantine` },
        );
        const dead = collector();
        await bus.subscribe(`${p}.quarantine`, dead.handler);
        await Promise.all(range(5).map((i) => bus.publish(`${p}.part`, i)));
        await bus.drain();
        expect(acknowledged.sort((a, b) => a - b)).toEqual([0, 2, 3, 4]);
        // Acknowledged messages never came again.
        for (const i of [0, 2, 4]) expect(seen.filter(([v]) => v === i)).toEqual([[i, 1]]);
        expect(seen.filter(([v]) => v === 3)).toEqual([
          [3, 1],
          [3, 2],
        ]);
        expect(seen.filter(([v]) => v === 1)).toEqual([
          [1, 1],
          [1, 2],
          [1, 3],
        ]);
        expect(dead.messages.map((m) => m.data)).toEqual([
          { subject: `${p}.part`, data: 1, deliveries: 3, error: 'cannot take 1' },
        ]);
      });

      it('delivers a whole batch again when its handler names a message not of the batch', async () => {
        const bus = await connect();
        const p = uniqueName('t');
        const seen: [number, number][] = [];
        await bus.subscribeBatch(
          `${p}.foreign`,
          async (messages) => {
            for (const m of messages) seen.push([m.data as number, m.deliveries]);
            if (messages.some((m) => m.deliveries > 1)) return;
            // A copy is not the message handed over: acknowledging the rest could lose it.
            const first = messages[0] as EventMessage;
            return { retry: [{ message: { ...first }, error: new Error('again') }] };
          },
          { maxMessages: 2, maxWaitMs: 50, maxDeliver: 3 },
        );
        await Promise.all(range(2).map((i) => bus.publish(`${p}.foreign`, i)));
        await bus.drain();
        expect(seen.sort(([a, x], [b, y]) => a - b || x - y)).toEqual([
          [0, 1],
          [0, 2],
          [1, 1],
          [1, 2],
        ]);
      });

      it('splits a group of batch subscribers: each message goes to exactly one member', async () => {
        const bus = await connect();
        const p = uniqueName('t');
        const members = [[] as number[], [] as number[]];
        for (const got of members) {
          await bus.subscribeBatch(
            `${p}.work`,
            async (messages) => {
              // Slow enough that the other member's turn comes while this one works.
              await new Promise((resolve) => setTimeout(resolve, 2));
              got.push(...messages.map((m) => m.data as number));
            },
            { group: 'loaders', maxMessages: 3, maxWaitMs: 20 },
          );
        }
        const n = 60;
        for (let i = 0; i < n; i++) await bus.publish(`${p}.work`, i);
        await bus.drain();
        expect(members.flat().sort((a, b) => a - b)).toEqual(range(n));
        for (const got of members) expect(got.length).toBeGreaterThan(0);
      });

      it('stops handing over batches once unsubscribed', async () => {
        const bus = await connect();
        const p = uniqueName('t');
        const got: number[] = [];
        const sub = await bus.subscribeBatch(
          `${p}.stop`,
          async (messages) => void got.push(...messages.map((m) => m.data as number)),
          { maxMessages: 10, maxWaitMs: 5 },
        );
        await bus.publish(`${p}.stop`, 0);
        await bus.drain();
        await sub.unsubscribe();
        await bus.publish(`${p}.stop`, 1);
        await bus.drain();
        expect(got).toEqual([0]);
      });
    });

    describe('flow', () => {
      it('resolves drain once every message published so far has been handled', async () => {
        const bus = await connect();
        const p = uniqueName('t');
        await bus.drain();
        let handled = 0;
        await bus.subscribe(`${p}.slow`, async () => {
          await new Promise((resolve) => setTimeout(resolve, 2));
          handled++;
        });
        for (let i = 0; i < 20; i++) await bus.publish(`${p}.slow`, i);
        await bus.drain();
        expect(handled).toBe(20);
      });

      const { maxPending } = options;
      const backpressure = maxPending === undefined ? it.skip : it;
      // One case per kind of subscription: `take` gets the data of each message (or batch) handed over.
      const fullQueues: {
        readonly who: string;
        readonly subscribe: (
          bus: EventBus,
          subject: string,
          bound: number,
          take: (data: number[]) => Promise<void>,
        ) => Promise<unknown>;
      }[] = [
        {
          who: 'a subscriber',
          subscribe: (bus, subject, _bound, take) =>
            bus.subscribe(subject, (m) => take([m.data as number])),
        },
        {
          who: 'a batch subscriber',
          subscribe: (bus, subject, bound, take) =>
            bus.subscribeBatch(
              subject,
              (messages) => take(messages.map((m) => m.data as number)),
              // Batches larger than the bound: the bound still holds.
              { maxMessages: bound * 2, maxWaitMs: 1 },
            ),
        },
      ];
      for (const { who, subscribe } of fullQueues) {
        backpressure(
          `makes publish wait while ${who}'s queue is full${maxPending === undefined ? ' (skipped: no maxPending given to the suite)' : ''}`,
          async () => {
            const bound = maxPending ?? 0;
            const bus = await connect();
            const p = uniqueName('t');
            const gate = deferred();
            const handled: number[] = [];
            await subscribe(bus, `${p}.full`, bound, async (data) => {
              await gate.promise;
              handled.push(...data);
            });
            for (let i = 0; i < bound; i++) await bus.publish(`${p}.full`, i);
            let overflowSent = false;
            const overflow = bus.publish(`${p}.full`, bound).then(() => {
              overflowSent = true;
            });
            // Give the bus every chance to (wrongly) accept the extra message.
            await new Promise((resolve) => setTimeout(resolve, 50));
            expect(overflowSent).toBe(false);
            gate.resolve();
            await overflow;
            await bus.drain();
            expect(handled).toEqual(range(bound + 1));
          },
        );
      }

      it('finishes queued messages when closed, then refuses to publish', async () => {
        const bus = await open();
        const p = uniqueName('t');
        let handled = 0;
        await bus.subscribe(`${p}.closing`, async () => {
          await new Promise((resolve) => setTimeout(resolve, 1));
          handled++;
        });
        for (let i = 0; i < 10; i++) await bus.publish(`${p}.closing`, i);
        await bus.close();
        expect(handled).toBe(10);
        await expectCode(bus.publish(`${p}.closing`, 11), 'FERRY_STORE_CLOSED');
        await expectCode(
          bus.subscribe(`${p}.closing`, async () => undefined),
          'FERRY_STORE_CLOSED',
        );
        await expectCode(
          bus.subscribeBatch(`${p}.closing`, async () => undefined),
          'FERRY_STORE_CLOSED',
        );
        await bus.close();
      });
    });

    describe('errors', () => {
      it('refuses malformed subjects and data that is not JSON', async () => {
        const bus = await connect();
        const p = uniqueName('t');
        for (const subject of ['', `${p}..x`, `${p}.*`, `${p}.>`, `${p}.a b`, `.${p}`]) {
          await expectCode(bus.publish(subject, 1), 'FERRY_ARGUMENT_INVALID');
        }
        for (const pattern of ['', `${p}.>.x`, `${p}.a*`, `${p}..x`]) {
          await expectCode(
            bus.subscribe(pattern, async () => undefined),
            'FERRY_ARGUMENT_INVALID',
          );
        }
        for (const options of [
          { maxMessages: 0 },
          { maxMessages: 2.5 },
          { maxWaitMs: -1 },
          { maxWaitMs: Number.NaN },
          { maxDeliver: 0 },
          { group: '' },
        ]) {
          await expectCode(
            bus.subscribeBatch(`${p}.x`, async () => undefined, options),
            'FERRY_ARGUMENT_INVALID',
          );
        }
        await expectCode(
          bus.subscribeBatch(`${p}.>.x`, async () => undefined),
          'FERRY_ARGUMENT_INVALID',
        );
        await expectCode(
          bus.publish(`${p}.x`, 10n as unknown as JsonValue),
          'FERRY_ARGUMENT_INVALID',
        );
        await expectCode(
          bus.publish(`${p}.x`, undefined as unknown as JsonValue),
          'FERRY_ARGUMENT_INVALID',
        );
      });
    });
  });
}

interface Collector {
  readonly messages: EventMessage[];
  readonly handler: (message: EventMessage) => Promise<void>;
  /** The data of the messages, as numbers. */
  values(): number[];
}

function collector(): Collector {
  const messages: EventMessage[] = [];
  return {
    messages,
    handler: async (message) => {
      messages.push(message);
    },
    values: () => messages.map((m) => m.data as number),
  };
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve: () => void = () => undefined;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}
