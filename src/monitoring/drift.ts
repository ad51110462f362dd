/**
 * Feature drift: how far live values moved from the training profile, as a population stability
 * index (PSI) over the reference's own buckets (histogram bins or top categories + other, plus
 * one bucket for nulls). PSI compares proportions, so unlike a p-value it does not flag every
 * tiny shift once samples are large. The PSI itself lives in `src/data/psi.ts`, shared with the
 * `distribution` validation rule.
 */
import type { TableProfile } from '../core/profile.js';
import { getColumn, type Table } from '../core/table.js';
import { psi } from '../data/psi.js';

export { psi };

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
