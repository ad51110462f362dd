/**
 * Generated data the benchmarks share, so that `infer` and `serve` measure the same model.
 */
import type { Column, Scalar, Table } from '../src/core/table.js';
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
