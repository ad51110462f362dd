import { describe, expect, it } from 'vitest';
import type { JsonValue } from '../core/json.js';
import { describeEventBusConformance } from '../testing/event-bus.conformance.js';
import type { EventMessage } from './event-bus.js';
import { createMemoryEventBus } from './memory.js';

describeEventBusConformance(
  'memory',
  async () => createMemoryEventBus({ maxPending: 4 }),
  undefined,
  {
    maxPending: 4,
  },
);

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve: () => void = () => undefined;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe('MemoryEventBus', () => {
  it('splits a group round-robin', async () => {
    const bus = createMemoryEventBus();
    const got: number[][] = [[], [], []];
    for (const list of got) {
      await bus.subscribe('jobs', async (m) => void list.push(m.data as number), { group: 'g' });
    }
    for (let i = 0; i < 9; i++) await bus.publish('jobs', i);
    await bus.drain();
    expect(got).toEqual([
      [0, 3, 6],
      [1, 4, 7],
      [2, 5, 8],
    ]);
    await bus.close();
  });

  it('keeps groups of the same name on different subjects apart', async () => {
    const bus = createMemoryEventBus();
    const [a, b] = [[] as string[], [] as string[]];
    await bus.subscribe('a.*', async (m) => void a.push(m.subject), { group: 'g' });
    await bus.subscribe('b.*', async (m) => void b.push(m.subject), { group: 'g' });
    await bus.publish('a.1', null);
    await bus.publish('b.1', null);
    await bus.drain();
    expect([a, b]).toEqual([['a.1'], ['b.1']]);
    await bus.close();
  });

  it('passes over a group member whose queue is full while another has room', async () => {
    const bus = createMemoryEventBus({ maxPending: 2 });
    const gate = deferred();
    const [stuck, free] = [[] as number[], [] as number[]];
    await bus.subscribe(
      'work',
      async (m) => {
        await gate.promise;
        stuck.push(m.data as number);
      },
      { group: 'g' },
    );
    await bus.subscribe('work', async (m) => void free.push(m.data as number), { group: 'g' });
    // Without skipping the full member, the publishes of 2 and 4 would wait on it forever.
    for (let i = 0; i < 8; i++) await bus.publish('work', i);
    gate.resolve();
    await bus.drain();
    expect([...stuck, ...free].sort((x, y) => x - y)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(stuck.length).toBeLessThanOrEqual(2);
    await bus.close();
  });

  it('retries a failing message 5 times by default, or as configured', async () => {
    for (const [options, expected] of [
      [{}, 5],
      [{ defaultMaxDeliver: 2 }, 2],
    ] as const) {
      const bus = createMemoryEventBus(options);
      let attempts = 0;
      await bus.subscribe('x', async () => {
        attempts++;
        throw new Error('no');
      });
      const dead: EventMessage[] = [];
      await bus.subscribe('ferry.dead.x', async (m) => void dead.push(m));
      await bus.publish('x', 1);
      await bus.drain();
      expect(attempts).toBe(expected);
      expect(dead).toHaveLength(1);
      await bus.close();
    }
  });

  it('counts a dead letter that nobody receives, and never dead-letters a dead letter', async () => {
    const bus = createMemoryEventBus();
    const warnings: string[] = [];
    const onWarning = (w: Error): void => void warnings.push(w.message);
    process.on('warning', onWarning);
    try {
      await bus.subscribe(
        'orders.in',
        async () => {
          throw new Error('bad order');
        },
        { maxDeliver: 1 },
      );
      await bus.publish('orders.in', 1);
      await bus.drain();
      expect(bus.unroutedDeadLetters).toBe(1);

      // A dead-letter handler that fails too: its message would otherwise loop for ever.
      let deadAttempts = 0;
      await bus.subscribe(
        'ferry.dead.>',
        async () => {
          deadAttempts++;
          throw new Error('dead-letter sink down');
        },
        { maxDeliver: 2 },
      );
      await bus.publish('orders.in', 2);
      await bus.drain();
      expect(deadAttempts).toBe(2);
      expect(bus.unroutedDeadLetters).toBe(2);
      await new Promise((resolve) => setImmediate(resolve));
      expect(warnings).toHaveLength(2);
      expect(warnings[1]).toContain('dead-letter sink down');
    } finally {
      process.off('warning', onWarning);
      await bus.close();
    }
  });

  it('hands the queue of a group member that leaves to the rest of the group', async () => {
    const bus = createMemoryEventBus();
    const gate = deferred();
    const started = deferred();
    const [leaving, staying] = [[] as number[], [] as number[]];
    const sub = await bus.subscribe(
      'q',
      async (m) => {
        started.resolve();
        await gate.promise;
        leaving.push(m.data as number);
      },
      { group: 'g' },
    );
    await bus.subscribe(
      'q',
      async (m) => {
        await gate.promise;
        staying.push(m.data as number);
      },
      { group: 'g' },
    );
    for (let i = 0; i < 10; i++) await bus.publish('q', i);
    await started.promise;
    const left = sub.unsubscribe();
    gate.resolve();
    await left;
    await bus.drain();
    expect([...leaving, ...staying].sort((x, y) => x - y)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    // Only the message in flight when it left was handled by the leaving member.
    expect(leaving).toEqual([0]);
    await bus.close();
  });

  it('gives each subscriber its own copy of the data', async () => {
    const bus = createMemoryEventBus();
    const seen: JsonValue[] = [];
    const mutate = async (m: EventMessage): Promise<void> => {
      (m.data as { n: number }).n++;
      seen.push(m.data);
    };
    await bus.subscribe('copy', mutate);
    await bus.subscribe('copy', mutate);
    const original = { n: 1 };
    await bus.publish('copy', original);
    await bus.drain();
    expect(seen).toEqual([{ n: 2 }, { n: 2 }]);
    expect(original).toEqual({ n: 1 });
    await bus.close();
  });

  it('lets handlers publish while the bus closes, and handles what they publish', async () => {
    const bus = createMemoryEventBus();
    const out: JsonValue[] = [];
    await bus.subscribe('in', async (m) => bus.publish('out', m.data));
    await bus.subscribe('out', async (m) => void out.push(m.data));
    await bus.publish('in', 'a');
    await bus.publish('in', 'b');
    await bus.close();
    expect(out).toEqual(['a', 'b']);
  });

  it('refuses bounds that are not positive integers', () => {
    expect(() => createMemoryEventBus({ maxPending: 0 })).toThrow(
      expect.objectContaining({ code: 'FERRY_ARGUMENT_INVALID' }),
    );
    expect(() => createMemoryEventBus({ defaultMaxDeliver: 1.5 })).toThrow(
      expect.objectContaining({ code: 'FERRY_ARGUMENT_INVALID' }),
    );
  });
});

describe('MemoryEventBus batches', () => {
  it('never hands over a batch larger than maxPending, its bound on held messages', async () => {
    const bus = createMemoryEventBus({ maxPending: 3 });
    const sizes: number[] = [];
    await bus.subscribeBatch('rows', async (batch) => void sizes.push(batch.length), {
      maxMessages: 100,
      maxWaitMs: 1,
    });
    const publishes: Promise<void>[] = [];
    for (let i = 0; i < 10; i++) publishes.push(bus.publish('rows', i));
    await Promise.all(publishes);
    await bus.drain();
    expect(sizes).toEqual([3, 3, 3, 1]);
    await bus.close();
  });

  it('gives the queue of a batch member that leaves to the rest of its group', async () => {
    const bus = createMemoryEventBus({ maxPending: 4 });
    const gate = deferred();
    const started = deferred();
    const [leaving, staying] = [[] as number[], [] as number[]];
    const sub = await bus.subscribeBatch(
      'q',
      async (batch) => {
        started.resolve();
        await gate.promise;
        leaving.push(...batch.map((m) => m.data as number));
      },
      { group: 'g', maxMessages: 2, maxWaitMs: 0 },
    );
    await bus.subscribeBatch(
      'q',
      async (batch) => {
        await gate.promise;
        staying.push(...batch.map((m) => m.data as number));
      },
      { group: 'g', maxMessages: 2, maxWaitMs: 0 },
    );
    for (let i = 0; i < 8; i++) await bus.publish('q', i);
    await started.promise;
    const left = sub.unsubscribe();
    gate.resolve();
    await left;
    await bus.drain();
    expect([...leaving, ...staying].sort((x, y) => x - y)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    // Only the batch in flight when it left was handled by the leaving member.
    expect(leaving.length).toBeLessThanOrEqual(2);
    await bus.close();
  });
});
