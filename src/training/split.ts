/**
 * Seeded row splits for validation: one hold-out split, or k folds for cross-validation.
 * Both are stratified by class when labels are given, so every class is represented in each
 * part in proportion (as far as its row count allows).
 */
import { createRng, shuffleInPlace } from './random.js';

/** Rows to fit on and rows to measure on; both ascending. */
export interface Fold {
  readonly train: Uint32Array;
  readonly valid: Uint32Array;
}

function groupRows(n: number, labels: Int32Array | null, nClasses: number): number[][] {
  const groups: number[][] =
    labels === null ? [[]] : Array.from({ length: Math.max(1, nClasses) }, () => []);
  for (let i = 0; i < n; i++) {
    (groups[labels === null ? 0 : (labels[i] as number)] as number[]).push(i);
  }
  return groups;
}

/**
 * One hold-out split with about `fraction` of the rows (of each class) for validation.
 * Every class keeps at least one training row; at least one row is held out when n >= 2, and at
 * least two rows are kept for training when n >= 3.
 * @example const { train, valid } = holdoutSplit(1000, labels, 2, 0.2, 42);
 */
export function holdoutSplit(
  n: number,
  labels: Int32Array | null,
  nClasses: number,
  fraction: number,
  seed: number,
): Fold {
  const rand = createRng(seed);
  const groups = groupRows(n, labels, nClasses);
  const train: number[] = [];
  const valid: number[] = [];
  for (const group of groups) {
    shuffleInPlace(group, rand);
    const take = Math.min(Math.round(group.length * fraction), group.length - 1);
    for (let i = 0; i < group.length; i++) (i < take ? valid : train).push(group[i] as number);
  }
  if (valid.length === 0 && train.length > 1) {
    // Tiny data: hold out one row of the largest class so there is something to measure.
    const largest = groups.reduce((a, b) => (b.length > a.length ? b : a));
    const row = largest[largest.length - 1] as number;
    train.splice(train.indexOf(row), 1);
    valid.push(row);
  }
  while (train.length < 2 && valid.length > 1) {
    // A large fraction of tiny data (half of 3 rows): keep two rows to fit on, since what the
    // training part feeds (a test split's selection, a model) needs more than one.
    train.push(valid.pop() as number);
  }
  return { train: Uint32Array.from(train).sort(), valid: Uint32Array.from(valid).sort() };
}

/**
 * k folds: each row is validated in exactly one fold and trained on in the others.
 * @example const folds = kFolds(300, null, 0, 5, 42); // 5 folds of 60 validation rows
 */
export function kFolds(
  n: number,
  labels: Int32Array | null,
  nClasses: number,
  k: number,
  seed: number,
): Fold[] {
  const folds = Math.max(2, Math.min(k, n));
  const rand = createRng(seed);
  const assignment = new Int32Array(n);
  // Dealing each class's shuffled rows round-robin, continuing where the last class stopped,
  // keeps both the class mix and the fold sizes even.
  let next = 0;
  for (const group of groupRows(n, labels, nClasses)) {
    shuffleInPlace(group, rand);
    for (const row of group) {
      assignment[row] = next;
      next = (next + 1) % folds;
    }
  }
  return Array.from({ length: folds }, (_, f) => {
    const train: number[] = [];
    const valid: number[] = [];
    for (let i = 0; i < n; i++) (assignment[i] === f ? valid : train).push(i);
    return { train: Uint32Array.from(train), valid: Uint32Array.from(valid) };
  });
}
