import { describe, expect, it } from 'vitest';
import type { ModelInput } from '../core/model.js';
import { tableFromRows, type ColumnSchema, type Row } from '../core/table.js';
import { createTransformer, fit, transform, type PreprocessSpec } from './preprocess.js';

const schema: ColumnSchema[] = [
  { name: 'amount', type: 'float' },
  { name: 'country', type: 'string' },
  { name: 'is_new', type: 'bool' },
];
const inputs: ModelInput[] = schema.map((s) => ({ name: s.name, type: s.type }));

const rows: Row[] = [
  { amount: 1, country: 'FR', is_new: true },
  { amount: 2, country: 'FR', is_new: false },
  { amount: null, country: 'DE', is_new: false },
  { amount: 10, country: 'FR', is_new: true },
  { amount: 3, country: 'DE', is_new: null },
  { amount: 4, country: 'IT', is_new: false },
];
const table = tableFromRows(schema, rows);

describe('linear preprocessing', () => {
  const spec = fit(table, inputs, { mode: 'linear', minCategoryCount: 2 });

  it('imputes the training median, then standardises with the imputed column', () => {
    const step = spec.transforms[0];
    expect(step?.kind).toBe('numeric');
    if (step?.kind !== 'numeric') return;
    expect(step.median).toBe(3);
    const imputed = [1, 2, 3, 10, 3, 4];
    const mean = imputed.reduce((s, v) => s + v, 0) / 6;
    const std = Math.sqrt(imputed.reduce((s, v) => s + (v - mean) ** 2, 0) / 6);
    expect(step.center).toBeCloseTo(mean, 12);
    expect(step.scale).toBeCloseTo(std, 12);
    const { data, cols } = transform(spec, table);
    expect(data[2 * cols]).toBeCloseTo((3 - mean) / std, 12);
  });

  it('one-hot encodes frequent categories and folds rare, unseen and null ones into "other"', () => {
    expect(spec.featureNames).toEqual([
      'amount',
      'country=DE',
      'country=FR',
      'country=(other)',
      'is_new',
    ]);
    const live = tableFromRows(schema, [
      { amount: 5, country: 'FR', is_new: true },
      { amount: 5, country: 'IT', is_new: true },
      { amount: 5, country: 'JP', is_new: true },
      { amount: 5, country: null, is_new: true },
    ]);
    const { data, cols } = transform(spec, live);
    const oneHot = (row: number): number[] =>
      Array.from(data.subarray(row * cols + 1, row * cols + 4));
    expect(oneHot(0)).toEqual([0, 1, 0]);
    expect(oneHot(1)).toEqual([0, 0, 1]);
    expect(oneHot(2)).toEqual([0, 0, 1]);
    expect(oneHot(3)).toEqual([0, 0, 1]);
  });

  it('treats booleans as 0/1 numbers and never throws on odd values', () => {
    const live = tableFromRows(schema, [
      { amount: '7.5', country: 42, is_new: 'yes' },
      { amount: Number.NaN, country: '', is_new: null },
    ]);
    const { data, rows: n, cols } = transform(spec, live);
    expect(n).toBe(2);
    expect(Array.from(data).every(Number.isFinite)).toBe(true);
    const step = spec.transforms[0];
    if (step?.kind !== 'numeric') throw new Error('expected a numeric step');
    expect(data[0]).toBeCloseTo((7.5 - step.center) / step.scale, 12);
    expect(data[cols]).toBeCloseTo((3 - step.center) / step.scale, 12);
  });
});

describe('tree preprocessing', () => {
  it('keeps raw numbers with NaN for missing and codes categories, NaN for unseen ones', () => {
    const spec = fit(table, inputs, { mode: 'tree', minCategoryCount: 1 });
    expect(spec.width).toBe(3);
    const live = tableFromRows(schema, [
      { amount: null, country: 'DE', is_new: true },
      { amount: 2.5, country: 'XX', is_new: false },
      { amount: 2.5, country: null, is_new: null },
    ]);
    const { data } = transform(spec, live);
    expect(data[0]).toBeNaN();
    expect(data[1]).toBe(0);
    expect(data[2]).toBe(1);
    expect(data[3]).toBe(2.5);
    expect(data[4]).toBeNaN();
    expect(data[7]).toBeNaN();
    expect(data[8]).toBeNaN();
  });

  it('gives rare and unseen categories one shared "other" code when training had rare ones', () => {
    const spec = fit(table, inputs, { mode: 'tree', minCategoryCount: 2 });
    const step = spec.transforms[1];
    expect(step?.kind).toBe('ordinal');
    if (step?.kind !== 'ordinal') return;
    expect(step.categories).toEqual(['DE', 'FR']);
    expect(step.otherCode).toBe(2);
    const live = tableFromRows(schema, [
      { amount: 1, country: 'IT', is_new: true },
      { amount: 1, country: 'JP', is_new: true },
    ]);
    const { data, cols } = transform(spec, live);
    expect(data[1]).toBe(2);
    expect(data[cols + 1]).toBe(2);
  });

  it('orders ordinal codes by mean target so one split can separate them', () => {
    const target = Float64Array.of(5, 5, 1, 5, 1, 9);
    const spec = fit(table, inputs, { mode: 'tree', minCategoryCount: 1, target });
    const step = spec.transforms[1];
    if (step?.kind !== 'ordinal') throw new Error('expected an ordinal step');
    expect(step.categories).toEqual(['DE', 'FR', 'IT']);
    const reversed = fit(table, inputs, {
      mode: 'tree',
      minCategoryCount: 1,
      target: target.map((v) => -v),
    });
    const back = reversed.transforms[1];
    if (back?.kind !== 'ordinal') throw new Error('expected an ordinal step');
    expect(back.categories).toEqual(['IT', 'FR', 'DE']);
  });
});

describe('specs', () => {
  it('are plain JSON that transform the same after a round trip', () => {
    const spec = fit(table, inputs, { mode: 'linear', minCategoryCount: 1 });
    const copy = JSON.parse(JSON.stringify(spec)) as PreprocessSpec;
    expect(transform(copy, table).data).toEqual(transform(spec, table).data);
  });

  it('find columns by name whatever their order, ignoring extra ones', () => {
    const spec = fit(table, inputs, { mode: 'tree' });
    const shuffled = tableFromRows(
      [{ name: 'extra', type: 'int' }, ...[...schema].reverse()],
      rows,
    );
    expect(createTransformer(spec).transform(shuffled).data).toEqual(transform(spec, table).data);
  });

  it('reject a table that lacks an input with FERRY_INPUT_MISSING', () => {
    const spec = fit(table, inputs, { mode: 'tree' });
    const partial = tableFromRows([{ name: 'amount', type: 'float' }], [{ amount: 1 }]);
    expect(() => transform(spec, partial)).toThrow(
      expect.objectContaining({ code: 'FERRY_INPUT_MISSING' }),
    );
  });
});
