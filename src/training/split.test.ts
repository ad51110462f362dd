import { describe, expect, it } from 'vitest';
import { holdoutSplit, kFolds } from './split.js';

const labels = Int32Array.from({ length: 100 }, (_, i) => (i < 90 ? 0 : 1));

describe('holdoutSplit', () => {
  it('holds out the fraction of every class and partitions the rows', () => {
    const { train, valid } = holdoutSplit(100, labels, 2, 0.2, 1);
    expect(valid.length).toBe(20);
    expect(Array.from(valid).filter((i) => i >= 90)).toHaveLength(2);
    expect([...train, ...valid].sort((a, b) => a - b)).toEqual(
      Array.from({ length: 100 }, (_, i) => i),
    );
  });

  it('is the same for a seed and different for another', () => {
    expect(holdoutSplit(100, null, 0, 0.2, 1)).toEqual(holdoutSplit(100, null, 0, 0.2, 1));
    expect(holdoutSplit(100, null, 0, 0.2, 1).valid).not.toEqual(
      holdoutSplit(100, null, 0, 0.2, 2).valid,
    );
  });

  it('keeps a training row for a class with a single row and holds out something on tiny data', () => {
    const { train, valid } = holdoutSplit(3, Int32Array.of(0, 0, 1), 2, 0.2, 1);
    expect(train).toContain(2);
    expect(valid.length).toBe(1);
  });
});

describe('kFolds', () => {
  it('validates every row exactly once with the class mix in each fold', () => {
    const folds = kFolds(100, labels, 2, 5, 3);
    expect(folds).toHaveLength(5);
    const seen = folds.flatMap((f) => Array.from(f.valid)).sort((a, b) => a - b);
    expect(seen).toEqual(Array.from({ length: 100 }, (_, i) => i));
    for (const fold of folds) {
      expect(fold.valid.length).toBe(20);
      expect(Array.from(fold.valid).filter((i) => i >= 90)).toHaveLength(2);
      expect(fold.train.length + fold.valid.length).toBe(100);
    }
  });
});
