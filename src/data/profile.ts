/**
 * Statistical profiles of tables (see `src/core/profile.ts`): computed for datasets and for a
 * model's training data, and used by monitoring as the reference distribution for drift.
 *
 * Numeric histograms use quantile edges taken from the data, so each bin holds about the same
 * share of rows and a drift statistic is sensitive where the data actually is. Columns with few
 * distinct values get one bin per value (edges at the midpoints between them).
 */
import type { CategoricalProfile, NumericProfile, TableProfile } from '../core/profile.js';
import { isNumericType, type Column, type Scalar, type Table } from '../core/table.js';

export interface ProfileOptions {
  /** Histogram bins of numeric columns (default 10). */
  readonly bins?: number;
}

const QUANTILES = [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99] as const;
const TOP_CATEGORIES = 20;

/** A numeric cell as a number, or null when missing (null, NaN, infinite or not a number). */
export function numericValue(v: Scalar | undefined): number | null {
  if (typeof v === 'number') return Number.isFinite(v) ? v : null;
  if (typeof v === 'boolean') return v ? 1 : 0;
  return null;
}

/** A categorical cell as a string, or null when missing. */
export function categoricalValue(v: Scalar | undefined): string | null {
  if (v === null || v === undefined) return null;
  if (typeof v === 'number' && Number.isNaN(v)) return null;
  return typeof v === 'string' ? v : String(v);
}

/** Linear interpolation between order statistics (the common "type 7" definition). */
function quantileOf(sorted: Float64Array, q: number): number {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, sorted.length - 1);
  const a = sorted[lo] as number;
  return a + ((sorted[hi] as number) - a) * (pos - lo);
}

/**
 * Index of the bin of `v` given histogram edges: interior edge e sends values >= e up, and the
 * first and last bins are open-ended.
 * @example binIndex([0, 1, 2, 3], -5) // 0
 */
export function binIndex(edges: readonly number[], v: number): number {
  // Binary search over the interior edges edges[1..length-2].
  let lo = 1;
  let hi = edges.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (v >= (edges[mid] as number)) lo = mid + 1;
    else hi = mid;
  }
  return lo - 1;
}

function profileNumeric(column: Column, bins: number): NumericProfile {
  const n = column.values.length;
  const present = new Float64Array(n);
  let m = 0;
  for (const raw of column.values) {
    const v = numericValue(raw);
    if (v !== null) present[m++] = v;
  }
  const sorted = present.subarray(0, m).sort();
  if (m === 0) {
    return {
      kind: 'numeric',
      count: n,
      nulls: n,
      distinct: 0,
      min: null,
      max: null,
      mean: null,
      std: null,
      quantiles: {},
      histogram: { edges: [], counts: [] },
    };
  }
  const distinctValues: number[] = [];
  let sum = 0;
  for (let i = 0; i < m; i++) {
    const v = sorted[i] as number;
    sum += v;
    if (i === 0 || v !== sorted[i - 1]) distinctValues.push(v);
  }
  const mean = sum / m;
  let ss = 0;
  for (let i = 0; i < m; i++) ss += ((sorted[i] as number) - mean) ** 2;
  const min = sorted[0] as number;
  const max = sorted[m - 1] as number;
  let interior: number[];
  if (distinctValues.length <= bins) {
    interior = [];
    for (let j = 0; j + 1 < distinctValues.length; j++) {
      interior.push(((distinctValues[j] as number) + (distinctValues[j + 1] as number)) / 2);
    }
  } else {
    interior = [];
    for (let b = 1; b < bins; b++) {
      const e = quantileOf(sorted, b / bins);
      // Equal quantiles (heavy ties) would make empty bins: keep edges strictly increasing.
      if (e > min && (interior.length === 0 || e > (interior[interior.length - 1] as number))) {
        interior.push(e);
      }
    }
  }
  const edges = [min, ...interior, max];
  const counts = new Array<number>(edges.length - 1).fill(0);
  for (let i = 0; i < m; i++) {
    const b = binIndex(edges, sorted[i] as number);
    counts[b] = (counts[b] as number) + 1;
  }
  const quantiles: Record<string, number> = {};
  for (const q of QUANTILES) quantiles[String(q)] = quantileOf(sorted, q);
  return {
    kind: 'numeric',
    count: n,
    nulls: n - m,
    distinct: distinctValues.length,
    min,
    max,
    mean,
    std: m > 1 ? Math.sqrt(ss / (m - 1)) : 0,
    quantiles,
    histogram: { edges, counts },
  };
}

function profileCategorical(column: Column): CategoricalProfile {
  const counts = new Map<string, number>();
  let nulls = 0;
  for (const raw of column.values) {
    const v = categoricalValue(raw);
    if (v === null) nulls++;
    else counts.set(v, (counts.get(v) ?? 0) + 1);
  }
  const sorted = [...counts.entries()].sort((a, b) =>
    b[1] !== a[1] ? b[1] - a[1] : a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0,
  );
  const top = sorted.slice(0, TOP_CATEGORIES).map(([value, count]) => ({ value, count }));
  const inTop = top.reduce((s, t) => s + t.count, 0);
  const n = column.values.length;
  return {
    kind: 'categorical',
    count: n,
    nulls,
    distinct: counts.size,
    top,
    otherCount: n - nulls - inTop,
  };
}

/**
 * Profiles every column: numeric for float, int, bool and timestamp; categorical for string.
 * @example const profile = profileTable(table, { bins: 10 }); profile.columns.amount;
 */
export function profileTable(table: Table, options: ProfileOptions = {}): TableProfile {
  const bins = Math.max(1, Math.floor(options.bins ?? 10));
  const columns: Record<string, NumericProfile | CategoricalProfile> = {};
  for (const column of table.columns) {
    columns[column.name] = isNumericType(column.type)
      ? profileNumeric(column, bins)
      : profileCategorical(column);
  }
  return { rowCount: table.rowCount, columns };
}
