import { describe, expect, it } from 'vitest';
import type { ColumnSchema } from '../core/table.js';
import { applyToRows } from '../data/prep/row.js';
import { FITTED_RECIPE_FORMAT, type FittedRecipe, type FittedStep } from '../data/prep/fitted.js';
import { kindOf } from '../data/prep/steps/index.js';
import { recipeInputs, recipeSha256, servingRecipe, trainingOnlySteps } from './recipe-model.js';

/** A fitted recipe from hand-written steps, its output schema as the steps define it. */
function fittedOf(source: ColumnSchema[], steps: FittedStep[]): FittedRecipe {
  let schema: ColumnSchema[] = source;
  for (const step of steps) schema = kindOf(step.step).schema(step as never, schema);
  return {
    format: FITTED_RECIPE_FORMAT,
    recipe: 'test',
    source: { name: 'transactions', type: 'csv', schema: source },
    fittedOn: 'train',
    fitRows: 100,
    steps,
    schema,
    createdAt: '2024-07-01T00:00:00.000Z',
  };
}

const SOURCE: ColumnSchema[] = [
  { name: 'tx_id', type: 'string' },
  { name: 'card_id', type: 'string' },
  { name: 'ts', type: 'string' },
  { name: 'amount', type: 'string' },
  { name: 'category', type: 'string' },
  { name: 'country', type: 'string' },
  { name: 'channel', type: 'string' },
  { name: 'is_fraud', type: 'int' },
];

/** The shape of examples/prep's recipe: conversions, row filters, a merge, encodings, drops. */
const FRAUD = fittedOf(SOURCE, [
  { step: 'dedupe', columns: null, keep: 'first', order_by: null },
  {
    step: 'cast',
    column: 'ts',
    from: 'string',
    to: 'timestamp',
    options: { format: '%d/%m/%Y %H:%M', timezone: 'Europe/Paris' },
  },
  {
    step: 'cast',
    column: 'amount',
    from: 'string',
    to: 'float',
    options: { decimal: ',', thousands: '.' },
  },
  { step: 'drop_missing', columns: ['card_id', 'ts'] },
  { step: 'filter', where: 'amount is null or amount >= 0' },
  {
    step: 'merge',
    source: 'card_scores',
    on: ['card_id'],
    how: 'left',
    as_of: { left: 'ts', right: 'updated_at' },
    columns: [
      { from: 'updated_at', to: 'updated_at', type: 'timestamp' },
      { from: 'risk_score', to: 'risk_score', type: 'float' },
    ],
  },
  { step: 'derive', column: 'hour', expr: 'hour(ts)', exprType: 'int', type: 'int' },
  {
    step: 'split',
    method: 'stratified',
    fractions: { train: 0.7, validation: 0.15, test: 0.15 },
    column: 'is_fraud',
    seed: 7,
  },
  {
    step: 'fill',
    with: 'median',
    values: [
      { column: 'amount', type: 'float', value: 40 },
      { column: 'risk_score', type: 'float', value: 0.3 },
    ],
  },
  {
    step: 'encode',
    method: 'one_hot',
    column: 'category',
    type: 'string',
    min_count: 1,
    categories: [
      { value: 'fuel', column: 'category_fuel' },
      { value: 'travel', column: 'category_travel' },
    ],
    other: 'category_other',
  },
  {
    step: 'encode',
    method: 'ordinal',
    column: 'channel',
    type: 'string',
    min_count: 1,
    categories: ['online', 'phone'],
  },
  { step: 'drop', columns: ['tx_id', 'updated_at'] },
]);

const names = (inputs: readonly { name: string }[]): string[] => inputs.map((i) => i.name);

describe('recipeInputs', () => {
  it('asks for the raw columns that reach a feature, and the columns a merge adds', () => {
    const features = FRAUD.schema
      .map((c) => c.name)
      .filter((n) => !['is_fraud', 'card_id', 'ts'].includes(n));
    const { inputs, readsTarget } = recipeInputs(FRAUD, features, 'is_fraud');
    // ts reaches the model through hour; card_id only through drop_missing and the merge key;
    // tx_id only through dedupe before it is dropped; the target is never an input.
    expect(inputs).toEqual([
      { name: 'ts', type: 'string' },
      { name: 'amount', type: 'string' },
      { name: 'category', type: 'string' },
      { name: 'country', type: 'string' },
      { name: 'channel', type: 'string' },
      { name: 'risk_score', type: 'float' },
    ]);
    expect(readsTarget).toBe(false);
  });

  it('keeps a column the model reads as it is, and drops what only unused features need', () => {
    const inputs = recipeInputs(FRAUD, ['card_id', 'amount'], 'is_fraud').inputs;
    expect(names(inputs)).toEqual(['card_id', 'amount']);
    // No one-hot column used: the category is not an input; one used: it is.
    expect(names(recipeInputs(FRAUD, ['category_other'], 'is_fraud').inputs)).toEqual(['category']);
  });

  it('follows renames (swaps included) and derivations back to their sources', () => {
    const source: ColumnSchema[] = [
      { name: 'a', type: 'float' },
      { name: 'b', type: 'float' },
      { name: 'c', type: 'float' },
      { name: 'y', type: 'float' },
    ];
    const fitted = fittedOf(source, [
      { step: 'rename', columns: { a: 'b', b: 'a' } },
      // Replaces `a` (the former b) with a value that reads itself and c.
      { step: 'derive', column: 'a', expr: 'a * 2 + c', exprType: 'float', type: 'float' },
      { step: 'derive', column: 'unused', expr: 'y + 1', exprType: 'float', type: 'float' },
    ]);
    expect(names(recipeInputs(fitted, ['b'], 'y').inputs)).toEqual(['a']);
    expect(names(recipeInputs(fitted, ['a'], 'y').inputs)).toEqual(['b', 'c']);
    const leak = recipeInputs(fitted, ['unused'], 'y');
    expect(leak).toEqual({ inputs: [], readsTarget: true });
  });
});

describe('servingRecipe', () => {
  it('keeps every request row: filter and drop_missing run in training only', () => {
    const rows = [
      { card_id: 'c1', ts: '30/06/2024 10:00', amount: '1.234,50', category: 'fuel' },
      // A refund the filter removes, and a row drop_missing removes.
      { card_id: 'c1', ts: '30/06/2024 10:00', amount: '-12,00', category: 'travel' },
      { card_id: null, ts: null, amount: '5,00', category: 'crypto' },
    ];
    expect(applyToRows(FRAUD, rows).removed).toBe(2);
    const served = applyToRows(servingRecipe(FRAUD), rows);
    expect(served.removed).toBe(0);
    expect(served.rows.map((r) => r.amount)).toEqual([1234.5, -12, 5]);
    expect(served.rows[2]).toMatchObject({ category_other: 1, category_fuel: 0, hour: null });
    // The rows both keep are prepared the same.
    expect(served.rows[0]).toEqual(applyToRows(FRAUD, rows).rows[0]);
    expect(trainingOnlySteps(FRAUD)).toEqual([
      'drop rows missing card_id, ts',
      'filter amount is null or amount >= 0',
    ]);
  });
});

describe('recipeSha256', () => {
  it('depends on the constants, not on the order of keys', () => {
    const reverseKeys = (v: unknown): unknown =>
      Array.isArray(v)
        ? v.map(reverseKeys)
        : typeof v === 'object' && v !== null
          ? Object.fromEntries(
              Object.entries(v)
                .reverse()
                .map(([k, x]) => [k, reverseKeys(x)]),
            )
          : v;
    const reordered = reverseKeys(FRAUD) as FittedRecipe;
    expect(JSON.stringify(reordered)).not.toBe(JSON.stringify(FRAUD));
    expect(recipeSha256(reordered)).toBe(recipeSha256(FRAUD));
    expect(recipeSha256(FRAUD)).toMatch(/^[0-9a-f]{64}$/);
    const refitted: FittedRecipe = {
      ...FRAUD,
      steps: FRAUD.steps.map((s) =>
        s.step === 'fill'
          ? { ...s, values: s.values.map((v) => ({ ...v, value: Number(v.value) + 1 })) }
          : s,
      ),
    };
    expect(recipeSha256(refitted)).not.toBe(recipeSha256(FRAUD));
  });
});
