/**
 * Exact sliding-window aggregations, the one definition the online path computes with; the
 * offline path (training sets) states the same rules in SQL, and the parity test holds the two
 * equal.
 *
 * As of time T, the window `w` of an entity covers its events with T - w < ts <= T. Missing
 * values (null) are ignored by every op:
 * - `count`: the number of non-null values (0 when there are none);
 * - `sum`: their sum, 0 when there are none, because "spent nothing in the last hour" is a
 *   fact a model should see, not a missing value;
 * - `mean`, `min`, `max`: null when there are no values.
 * Booleans count as 1 and 0 for `sum` and `mean`; `min`/`max` of booleans are booleans.
 * The feature of column `amount`, op `sum`, window `1h` is named `amount_sum_1h`.
 */
import { windowMs } from '../config/load.js';
import type { AggregationOp, FeatureSetSpec } from '../config/schema.js';
import type { ColumnType, Row, Scalar } from '../core/table.js';

export interface WindowAggregation {
  /** `<column>_<op>_<window>`, for example `amount_sum_1h`. */
  readonly name: string;
  readonly column: string;
  readonly op: AggregationOp;
  /** The window as written in ferry.yaml (`1h`). */
  readonly window: string;
  readonly windowMs: number;
  /** Type of the aggregated value. */
  readonly type: ColumnType;
}

/** An event of one entity: its time (UTC ms) and its values. */
export interface WindowEvent {
  readonly ts: number;
  readonly values: Row;
}

export function aggregationName(column: string, op: AggregationOp, window: string): string {
  return `${column}_${op}_${window}`;
}

/** The type an op yields over a column of the given type. */
export function aggregationType(op: AggregationOp, columnType: ColumnType): ColumnType {
  switch (op) {
    case 'count':
      return 'int';
    case 'sum':
      return columnType === 'float' ? 'float' : 'int';
    case 'mean':
      return 'float';
    case 'min':
    case 'max':
      return columnType;
  }
}

/**
 * The aggregations a feature set defines, in the order ferry.yaml implies (per aggregation
 * entry, per window, per op) — the same order `<set>.*` expands to.
 * @example aggregationsOf(spec.feature_sets[0]).map((a) => a.name) // ['amount_sum_1h', ...]
 */
export function aggregationsOf(featureSet: FeatureSetSpec): WindowAggregation[] {
  const out: WindowAggregation[] = [];
  for (const agg of featureSet.aggregations) {
    const columnType = featureSet.features.find((f) => f.name === agg.column)?.type ?? 'float';
    for (const window of agg.windows) {
      for (const op of agg.ops) {
        out.push({
          name: aggregationName(agg.column, op, window),
          column: agg.column,
          op,
          window,
          windowMs: windowMs(window),
          type: aggregationType(op, columnType),
        });
      }
    }
  }
  return out;
}

/**
 * One aggregation over `events` (ascending by ts, then event id) as of `at`.
 * @example aggregate([{ ts: 1, values: { a: 2 } }, { ts: 5, values: { a: 3 } }], 'a', 'sum', 10, 5) // 5
 */
export function aggregate(
  events: readonly WindowEvent[],
  column: string,
  op: AggregationOp,
  windowLength: number,
  at: number,
): Scalar {
  const since = at - windowLength;
  let count = 0;
  let sum = 0;
  let best: number | null = null;
  let isBool = false;
  // Events are ascending, so the window is a suffix ending at the last event with ts <= at.
  let end = events.length;
  while (end > 0 && (events[end - 1] as WindowEvent).ts > at) end--;
  let start = end;
  while (start > 0 && (events[start - 1] as WindowEvent).ts > since) start--;
  // Summed oldest first, the order the offline query sums in (ORDER BY ts, event_id), so that
  // float sums and means are equal to the last bit online and offline.
  for (let i = start; i < end; i++) {
    const event = events[i] as WindowEvent;
    const raw = event.values[column];
    if (raw === null || raw === undefined) continue;
    count++;
    if (op === 'count') continue;
    let v: number;
    if (typeof raw === 'boolean') {
      isBool = true;
      v = raw ? 1 : 0;
    } else if (typeof raw === 'number') v = raw;
    else continue;
    if (op === 'min') best = best === null || v < best ? v : best;
    else if (op === 'max') best = best === null || v > best ? v : best;
    else sum += v;
  }
  switch (op) {
    case 'count':
      return count;
    case 'sum':
      return sum;
    case 'mean':
      return count === 0 ? null : sum / count;
    case 'min':
    case 'max':
      return best === null ? null : isBool ? best === 1 : best;
  }
}

/**
 * Every aggregation of `aggregations` over one entity's events as of `at`.
 * @example computeAggregations(events, aggregationsOf(featureSet), Date.now())
 */
export function computeAggregations(
  events: readonly WindowEvent[],
  aggregations: readonly WindowAggregation[],
  at: number,
): Row {
  const row: Row = {};
  for (const a of aggregations) row[a.name] = aggregate(events, a.column, a.op, a.windowMs, at);
  return row;
}
