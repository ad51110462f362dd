/**
 * Feature drift: how far live values moved from the training profile, as a population stability
 * index (PSI) over the reference's own buckets (histogram bins or top categories + other, plus
 * one bucket for nulls). PSI compares proportions, so unlike a p-value it does not flag every
 * tiny shift once samples are large.
 */
import type { ColumnProfile, TableProfile } from '../core/profile.js';
import { getColumn, type Scalar, type Table } from '../core/table.js';
import { binIndex, categoricalValue, numericValue } from '../data/profile.js';

/** Proportion given to an empty bucket, so one empty side does not make PSI infinite. */
const EPSILON = 1e-4;
export const PSI_WARN = 0.1;
export const PSI_DRIFT = 0.25;

export type DriftStatus = 'ok' | 'warn' | 'drift';

export interface ColumnDrift {
  readonly column: string;
  readonly psi: number;
  readonly status: DriftStatus;
  /** Live values compared (nulls included). */
  readonly liveCount: number;
}

function psiOf(expected: readonly number[], actual: readonly number[]): number {
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

/**
 * Population stability index of live values against a reference column profile. Zero when the
 * reference or the live sample is empty (there is nothing to compare).
 * @example psi(profile.columns.amount, liveAmounts) > 0.25 // drifted
 */
export function psi(reference: ColumnProfile, live: readonly Scalar[]): number {
  if (reference.kind === 'numeric') {
    const edges = reference.histogram.edges;
    const bins = reference.histogram.counts.length;
    // Buckets: the histogram bins, then nulls.
    const actual = new Array<number>(bins + 1).fill(0);
    for (const raw of live) {
      const v = numericValue(raw);
      const b = v === null || bins === 0 ? bins : binIndex(edges, v);
      actual[b] = (actual[b] as number) + 1;
    }
    return psiOf([...reference.histogram.counts, reference.nulls], actual);
  }
  const index = new Map(reference.top.map((t, i) => [t.value, i] as const));
  const other = reference.top.length;
  // Buckets: the top categories, other, then nulls.
  const actual = new Array<number>(other + 2).fill(0);
  for (const raw of live) {
    const v = categoricalValue(raw);
    const b = v === null ? other + 1 : (index.get(v) ?? other);
    actual[b] = (actual[b] as number) + 1;
  }
  const expected = [...reference.top.map((t) => t.count), reference.otherCount, reference.nulls];
  return psiOf(expected, actual);
}

/** @example driftStatus(0.3) // 'drift' */
export function driftStatus(value: number): DriftStatus {
  return value >= PSI_DRIFT ? 'drift' : value >= PSI_WARN ? 'warn' : 'ok';
}

/**
 * PSI of every reference column that the live table also has, in the reference's order.
 * Thresholds: below 0.1 ok, below 0.25 warn, else drift.
 * @example driftReport(trainingProfile, liveTable).filter((d) => d.status === 'drift')
 */
export function driftReport(reference: TableProfile, live: Table): ColumnDrift[] {
  const report: ColumnDrift[] = [];
  for (const [name, profile] of Object.entries(reference.columns)) {
    const column = getColumn(live, name);
    if (column === undefined) continue;
    const value = psi(profile, column.values);
    report.push({
      column: name,
      psi: value,
      status: driftStatus(value),
      liveCount: column.values.length,
    });
  }
  return report;
}
