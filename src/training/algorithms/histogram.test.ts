import { describe, expect, it } from 'vitest';
import { createRng } from '../random.js';
import { fitGbdt } from './gbdt.js';
import {
  accumulateRows,
  chunkCount,
  HistogramBuilder,
  startHistogramHelpers,
} from './histogram.js';

/** A builder over random bins (40 per feature, slot 40 for missing), rows in a shuffled order. */
function filledBuilder(rows: number, features: number, threads?: number): HistogramBuilder {
  const builder = new HistogramBuilder(rows, new Array<number>(features).fill(40), threads);
  const { bins, gh, idx } = builder.space;
  const rand = createRng(11);
  for (let i = 0; i < bins.length; i++) bins[i] = rand() < 0.05 ? 40 : Math.floor(rand() * 40);
  for (let r = 0; r < rows; r++) {
    gh[2 * r] = rand() * 2 - 1;
    gh[2 * r + 1] = rand() * 0.25;
    idx[r] = r;
  }
  for (let r = rows - 1; r > 0; r--) {
    const j = Math.floor(rand() * (r + 1));
    const t = idx[r] as number;
    idx[r] = idx[j] as number;
    idx[j] = t;
  }
  return builder;
}

describe('gradient histograms', () => {
  it('sums a large leaf in chunks to the same histogram as one pass', () => {
    const builder = filledBuilder(60_000, 6, 1);
    const chunked = new Float64Array(builder.histSize);
    builder.build(chunked, 1000, 59_000, -1);
    const direct = new Float64Array(builder.histSize);
    accumulateRows(direct, builder.space, 1000, 59_000, -1);
    expect(chunkCount(58_000)).toBeGreaterThan(1);
    for (let j = 0; j < direct.length; j++) {
      expect(chunked[j]).toBeCloseTo(direct[j] as number, 9);
    }
    // Bin 7 of feature 3 holds about 58,000 / 40 rows with hessians of mean 0.125.
    expect(builder.histSize).toBe(6 * 41 * 2);
    expect(chunked[(builder.space.offsets[3] as number) + 7 * 2 + 1]).toBeGreaterThan(120);
    builder.close();
  });

  it('gives bit-identical sums whether helper threads summed chunks or not', async () => {
    const started = await startHistogramHelpers();
    const alone = filledBuilder(80_000, 5, 1);
    const shared = filledBuilder(80_000, 5);
    const a = new Float64Array(alone.histSize);
    const b = new Float64Array(shared.histSize);
    // Until a helper has taken this fit's buffers the fitting thread works alone: retry.
    for (let attempt = 0; attempt < 200; attempt++) {
      a.fill(0);
      b.fill(0);
      alone.build(a, 0, 80_000, -1);
      shared.build(b, 0, 80_000, -1);
      expect(Buffer.from(b.buffer).equals(Buffer.from(a.buffer))).toBe(true);
      if (started === 0 || shared.stats.byHelpers > 0) break;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    if (started > 0) expect(shared.stats.byHelpers).toBeGreaterThan(0);
    expect(alone.stats.byHelpers).toBe(0);
    alone.close();
    shared.close();
  });

  it('trains the same boosted model with helper threads as on one thread', async () => {
    await startHistogramHelpers();
    const rows = 60_000;
    const cols = 4;
    const rand = createRng(5);
    const data = Float64Array.from({ length: rows * cols }, () =>
      rand() < 0.03 ? NaN : rand() * 2 - 1,
    );
    const y = Float64Array.from({ length: rows }, (_, i) =>
      Math.sin(3 * (data[i * cols] as number)) + (data[i * cols + 1] as number) > rand() - 0.5
        ? 1
        : 0,
    );
    const x = { data, rows, cols };
    const options = { objective: 'binary' as const, maxRounds: 8, subsample: 0.8, seed: 3 };
    const one = fitGbdt(x, y, { ...options, threads: 1 });
    const many = fitGbdt(x, y, options);
    expect(many.model).toEqual(one.model);
    expect(one.model.rounds).toBe(8);
  });
});
