/**
 * Generated data the benchmarks share, so that `infer` and `serve` measure the same model.
 */
import type { Column, ColumnType, Scalar, Table } from '../src/core/table.js';
import { createRng } from '../src/training/random.js';

/** Inputs of the benchmarks' gradient-boosting model: x0..x29. */
export const GBDT_INPUTS = 30;

/**
 * Rows of x0..x29 in [-2, 2) and, with `label`, a noisy binary target of an interaction-heavy
 * score (so the boosted trees are deep and varied, as a real model's are).
 * @example const train = gbdtData(20_000, 1, true);
 */
export function gbdtData(rows: number, seed: number, label: boolean): Table {
  const random = createRng(seed);
  const xs: Scalar[][] = Array.from({ length: GBDT_INPUTS }, () => []);
  const y: Scalar[] = [];
  const x = new Float64Array(GBDT_INPUTS);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < GBDT_INPUTS; j++) {
      x[j] = Math.round((random() * 4 - 2) * 1000) / 1000;
      (xs[j] as Scalar[]).push(x[j] as number);
    }
    const [a = 0, b = 0, c = 0, d = 0, e = 0, f = 0] = x;
    const score = 1.5 * Math.sin(2 * a) + b * c + (d > 0.5 ? 1.5 : -0.5) + 0.5 * e - 0.3 * f * f;
    y.push(random() < 1 / (1 + Math.exp(-score)) ? 1 : 0);
  }
  const columns: Column[] = xs.map((values, j) => ({ name: `x${j}`, type: 'float', values }));
  if (label) columns.push({ name: 'label', type: 'int', values: y });
  return { rowCount: rows, columns };
}

export const COUNTRIES = ['FR', 'DE', 'ES', 'IT', 'BE', 'NL', 'PT', 'PL'];
const CHANNELS = ['web', 'app', 'store'];

/** A plain feature of the benchmarks' card transactions, with how to draw a value of it. */
export interface CardFeature {
  readonly name: string;
  readonly type: Exclude<ColumnType, 'timestamp'>;
  readonly draw: (random: () => number) => Scalar;
}

/** The plain features of the card transactions the feature-store and serving benches use. */
export const CARD_FEATURES: readonly CardFeature[] = [
  { name: 'amount', type: 'float', draw: (r) => Math.round(Math.exp(r() * 7) * 100) / 100 },
  { name: 'items', type: 'int', draw: (r) => 1 + Math.floor(r() * 5) },
  { name: 'merchant_risk', type: 'float', draw: (r) => Math.round(r() * 1000) / 1000 },
  { name: 'country', type: 'string', draw: (r) => COUNTRIES[Math.floor(r() * 8)] ?? 'FR' },
  { name: 'channel', type: 'string', draw: (r) => CHANNELS[Math.floor(r() * 3)] ?? 'web' },
  { name: 'device_score', type: 'float', draw: (r) => Math.round(r() * 10_000) / 10_000 },
  { name: 'is_foreign', type: 'bool', draw: (r) => r() < 0.1 },
];

/**
 * The card features of these names, in this order (data drawn feature by feature follows it).
 * @example cardFeatures('amount', 'country')
 */
export function cardFeatures(...names: string[]): CardFeature[] {
  return names.map((name) => {
    const feature = CARD_FEATURES.find((f) => f.name === name);
    if (!feature) throw new Error(`no card feature '${name}'`);
    return feature;
  });
}

/** The window aggregations of the card set, by feature name. */
export const CARD_WINDOWS = ['amount_sum_1h', 'amount_count_10m', 'amount_mean_1d'];

/**
 * Entities, the card feature set (the given plain features, amount windows of 1h, 10m and 1d,
 * ttl 7d) and a vector of all its features, as ferry.yaml input.
 * @example defineProject(dir, { ...cardProject('tx', 'card_history', CARD_FEATURES) });
 */
export function cardProject(
  set: string,
  vector: string,
  features: readonly CardFeature[],
): Record<string, unknown> {
  return {
    entities: [{ name: 'card', keys: ['card_id'] }],
    feature_sets: [
      {
        name: set,
        entity: 'card',
        timestamp: 'ts',
        features: features.map((f) => ({ name: f.name, type: f.type })),
        aggregations: [
          { column: 'amount', ops: ['sum'], windows: ['1h'] },
          { column: 'amount', ops: ['count'], windows: ['10m'] },
          { column: 'amount', ops: ['mean'], windows: ['1d'] },
        ],
        ttl: '7d',
      },
    ],
    feature_vectors: [
      {
        name: vector,
        features: [...features.map((f) => f.name), ...CARD_WINDOWS].map((f) => `${set}.${f}`),
      },
    ],
  };
}

/** The key of the i-th card. */
export function cardKey(i: number): string {
  return `card_${String(i).padStart(6, '0')}`;
}
