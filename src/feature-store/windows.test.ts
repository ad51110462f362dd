import { describe, expect, it } from 'vitest';
import { parseProjectSpec } from '../config/load.js';
import { aggregate, aggregationsOf, computeAggregations, type WindowEvent } from './windows.js';

const HOUR = 3_600_000;
const ev = (ts: number, a: number | boolean | null): WindowEvent => ({ ts, values: { a } });

describe('aggregate', () => {
  // Window 1h as of T = 10h covers 9h < ts <= 10h.
  const T = 10 * HOUR;
  const events = [
    ev(8 * HOUR, 100),
    ev(9 * HOUR, 50),
    ev(9 * HOUR + 1, 2),
    ev(9.5 * HOUR, null),
    ev(10 * HOUR, 3),
    ev(10 * HOUR + 1, 1000),
  ];

  it('covers T - window < ts <= T: out at exactly T - window, in at exactly T, out after T', () => {
    expect(aggregate(events, 'a', 'count', HOUR, T)).toBe(2);
    expect(aggregate(events, 'a', 'sum', HOUR, T)).toBe(5);
    expect(aggregate(events, 'a', 'max', HOUR, T)).toBe(3);
    expect(aggregate(events, 'a', 'min', HOUR, T)).toBe(2);
    expect(aggregate(events, 'a', 'mean', HOUR, T)).toBe(2.5);
    // At T + 1 the event one millisecond after T joins, and the one at T - window + 1 is exactly at the edge: out.
    expect(aggregate(events, 'a', 'sum', HOUR, T + 1)).toBe(1003);
  });

  it('ignores nulls; count and sum of nothing are 0, mean/min/max of nothing are null', () => {
    const empty = [ev(T, null), ev(T - 1, null)];
    expect(aggregate(empty, 'a', 'count', HOUR, T)).toBe(0);
    expect(aggregate(empty, 'a', 'sum', HOUR, T)).toBe(0);
    expect(aggregate(empty, 'a', 'mean', HOUR, T)).toBeNull();
    expect(aggregate(empty, 'a', 'min', HOUR, T)).toBeNull();
    expect(aggregate(empty, 'a', 'max', HOUR, T)).toBeNull();
    expect(aggregate([], 'a', 'count', HOUR, T)).toBe(0);
  });

  it('counts booleans as 1/0 for sum and mean, and keeps them booleans for min/max', () => {
    const flags = [ev(T - 3, true), ev(T - 2, false), ev(T - 1, true)];
    expect(aggregate(flags, 'a', 'sum', HOUR, T)).toBe(2);
    expect(aggregate(flags, 'a', 'mean', HOUR, T)).toBeCloseTo(2 / 3, 12);
    expect(aggregate(flags, 'a', 'max', HOUR, T)).toBe(true);
    expect(aggregate(flags, 'a', 'min', HOUR, T)).toBe(false);
  });

  it('counts non-null text values', () => {
    const text: WindowEvent[] = [
      { ts: T - 2, values: { a: 'FR' } },
      { ts: T - 1, values: { a: null } },
      { ts: T, values: { a: 'DE' } },
    ];
    expect(aggregate(text, 'a', 'count', HOUR, T)).toBe(2);
  });
});

describe('aggregationsOf', () => {
  it('names aggregations <column>_<op>_<window> in the order ferry.yaml implies, with their types', () => {
    const spec = parseProjectSpec(
      {
        entities: [{ name: 'card', keys: ['card_id'] }],
        feature_sets: [
          {
            name: 'tx',
            entity: 'card',
            timestamp: 'ts',
            features: [
              { name: 'amount', type: 'float' },
              { name: 'items', type: 'int' },
            ],
            aggregations: [
              { column: 'amount', ops: ['sum', 'count'], windows: ['10m', '1h'] },
              { column: 'items', ops: ['sum', 'max', 'mean'], windows: ['1d'] },
            ],
          },
        ],
      },
      'test',
    );
    const aggs = aggregationsOf(spec.feature_sets[0] as (typeof spec.feature_sets)[number]);
    expect(aggs.map((a) => `${a.name}:${a.type}:${a.windowMs}`)).toEqual([
      'amount_sum_10m:float:600000',
      'amount_count_10m:int:600000',
      'amount_sum_1h:float:3600000',
      'amount_count_1h:int:3600000',
      'items_sum_1d:int:86400000',
      'items_max_1d:int:86400000',
      'items_mean_1d:float:86400000',
    ]);
    const events: WindowEvent[] = [
      { ts: 0, values: { amount: 5, items: 2 } },
      { ts: HOUR - 1, values: { amount: 7, items: 3 } },
    ];
    expect(computeAggregations(events, aggs, HOUR - 1)).toEqual({
      amount_sum_10m: 7,
      amount_count_10m: 1,
      amount_sum_1h: 12,
      amount_count_1h: 2,
      items_sum_1d: 5,
      items_max_1d: 3,
      items_mean_1d: 2.5,
    });
  });
});
