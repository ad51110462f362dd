import { describe, expect, it } from 'vitest';
import type { CategoricalProfile, NumericProfile } from '../core/profile.js';
import type { Table } from '../core/table.js';
import { binIndex, profileTable } from './profile.js';

function numeric(table: Table, name: string): NumericProfile {
  const p = profileTable(table).columns[name];
  if (p?.kind !== 'numeric') throw new Error(`${name} is not numeric`);
  return p;
}

describe('profileTable', () => {
  const values = [...Array.from({ length: 100 }, (_, i) => i + 1), null, null];
  const table: Table = {
    columns: [
      { name: 'amount', type: 'float', values },
      { name: 'flag', type: 'bool', values: values.map((v) => (v === null ? null : v % 4 === 0)) },
    ],
    rowCount: values.length,
  };

  it('summarises a numeric column with counts, moments and quantiles', () => {
    const p = numeric(table, 'amount');
    expect(p).toMatchObject({
      kind: 'numeric',
      count: 102,
      nulls: 2,
      distinct: 100,
      min: 1,
      max: 100,
      mean: 50.5,
    });
    expect(p.std).toBeCloseTo(Math.sqrt((100 * 101) / 12), 10);
    expect(p.quantiles['0.5']).toBe(50.5);
    expect(p.quantiles['0.25']).toBeCloseTo(25.75, 12);
    expect(p.quantiles['0.99']).toBeCloseTo(99.01, 12);
  });

  it('builds a histogram on quantile edges whose counts cover every non-null value', () => {
    const p = numeric(table, 'amount');
    const { edges, counts } = p.histogram;
    expect(edges).toHaveLength(11);
    expect(edges[0]).toBe(1);
    expect(edges[10]).toBe(100);
    expect(counts.reduce((s, c) => s + c, 0)).toBe(100);
    for (const c of counts) expect(c).toBe(10);
  });

  it('gives columns with few distinct values one bin per value', () => {
    const p = numeric(table, 'flag');
    expect(p.histogram.edges).toEqual([0, 0.5, 1]);
    expect(p.histogram.counts).toEqual([75, 25]);
  });

  it('profiles strings as categories, most frequent first, with the rest counted as other', () => {
    const words = Array.from({ length: 30 }, (_, i) => `w${String(i).padStart(2, '0')}`);
    const vals = [...words.flatMap((w, i) => Array.from({ length: 30 - i }, () => w)), null];
    const profile = profileTable({
      columns: [{ name: 'word', type: 'string', values: vals }],
      rowCount: vals.length,
    }).columns.word as CategoricalProfile;
    expect(profile.kind).toBe('categorical');
    expect(profile.top).toHaveLength(20);
    expect(profile.top[0]).toEqual({ value: 'w00', count: 30 });
    expect(profile.top[19]).toEqual({ value: 'w19', count: 11 });
    expect(profile.otherCount).toBe(10 + 9 + 8 + 7 + 6 + 5 + 4 + 3 + 2 + 1);
    expect(profile.nulls).toBe(1);
    expect(profile.distinct).toBe(30);
  });

  it('handles an all-null column and a constant column', () => {
    const t: Table = {
      columns: [
        { name: 'empty', type: 'float', values: [null, null] },
        { name: 'same', type: 'int', values: [7, 7] },
      ],
      rowCount: 2,
    };
    expect(numeric(t, 'empty')).toMatchObject({
      nulls: 2,
      min: null,
      histogram: { edges: [], counts: [] },
    });
    expect(numeric(t, 'same').histogram).toEqual({ edges: [7, 7], counts: [2] });
  });

  it('survives a JSON round trip unchanged', () => {
    const p = profileTable(table);
    expect(JSON.parse(JSON.stringify(p))).toEqual(p);
  });
});

describe('binIndex', () => {
  it('puts values outside the edges in the open-ended first and last bins', () => {
    const edges = [0, 10, 20, 30];
    expect(binIndex(edges, -100)).toBe(0);
    expect(binIndex(edges, 9.99)).toBe(0);
    expect(binIndex(edges, 10)).toBe(1);
    expect(binIndex(edges, 20)).toBe(2);
    expect(binIndex(edges, 1e9)).toBe(2);
  });
});
