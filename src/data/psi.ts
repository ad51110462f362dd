/**
 * Population stability index over a reference profile's own buckets (histogram bins or top
 * categories + other, plus one bucket for nulls). Shared by monitoring's drift report and the
 * `distribution` validation rule, so the two can never disagree.
 */
import type { ColumnProfile } from '../core/profile.js';
import type { Scalar } from '../core/table.js';
import { binIndex, categoricalValue, numericValue } from './profile.js';

/** Proportion given to an empty bucket, so one empty side does not make PSI infinite. */
const EPSILON = 1e-4;

/**
 * The population stability index of bucket counts: what monitoring's drift and the
 * `distribution` validation rule both compute, the SQL path from counts DuckDB makes.
 * @example psiFromCounts([50, 50], [90, 10]) // ≈ 0.88
 */
export function psiFromCounts(expected: readonly number[], actual: readonly number[]): number {
  const e = expected.reduce((s, x) => s + x, 0);
  const a = actual.reduce((s, x) => s + x, 0);
  if (e === 0 || a === 0) return 0;
  let psi = 0;
  for (let i = 0; i < expected.length; i++) {
    const p = Math.max((expected[i] as number) / e, EPSILON);
    const q = Math.max((actual[i] as number) / a, EPSILON);
    psi += (q - p) * Math.log(q / p);
  }
  return psi;
}

/** The reference's bucket counts, in the order `psi` uses: bins or top categories + other, then nulls. */
export function expectedCounts(reference: ColumnProfile): number[] {
  return reference.kind === 'numeric'
    ? [...reference.histogram.counts, reference.nulls]
    : [...reference.top.map((t) => t.count), reference.otherCount, reference.nulls];
}

/**
 * Bucket counts of live values over a reference's buckets (numbers through `numericValue`,
 * categories through `categoricalValue`; missing values in the last bucket).
 * @example psiFromCounts(expectedCounts(ref), actualCounts(ref, values))
 */
export function actualCounts(reference: ColumnProfile, live: readonly Scalar[]): number[] {
  if (reference.kind === 'numeric') {
    const edges = reference.histogram.edges;
    const bins = reference.histogram.counts.length;
    const counts = new Array<number>(bins + 1).fill(0);
    for (const raw of live) {
      const v = numericValue(raw);
      const b = v === null || bins === 0 ? bins : binIndex(edges, v);
      counts[b] = (counts[b] as number) + 1;
    }
    return counts;
  }
  const index = new Map(reference.top.map((t, i) => [t.value, i] as const));
  const other = reference.top.length;
  const counts = new Array<number>(other + 2).fill(0);
  for (const raw of live) {
    const v = categoricalValue(raw);
    const b = v === null ? other + 1 : (index.get(v) ?? other);
    counts[b] = (counts[b] as number) + 1;
  }
  return counts;
}

/**
 * Population stability index of live values against a reference column profile. Zero when the
 * reference or the live sample is empty (there is nothing to compare).
 * @example psi(profile.columns.amount, liveAmounts) > 0.25 // drifted
 */
export function psi(reference: ColumnProfile, live: readonly Scalar[]): number {
  return psiFromCounts(expectedCounts(reference), actualCounts(reference, live));
}
