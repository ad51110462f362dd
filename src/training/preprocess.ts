/**
 * The fitted preprocessing that turns a Table into the dense numeric matrix the algorithms
 * learn from. The spec is plain JSON stored inside the model artifact, so training and serving
 * apply exactly the same imputation, encoding and scaling.
 *
 * Two modes:
 * - `linear`: missing numbers take the training median, numbers are standardised, strings are
 *   one-hot encoded over their frequent categories plus one "other" column (rare, unseen, null).
 * - `tree`: numbers stay raw and missing stays NaN (gradient boosting learns a default direction
 *   for it); strings become ordinal codes, NaN when null or never seen in training (or a reserved
 *   "other" code when training had rare categories folded into one).
 *
 * In both modes a missing number is null, NaN or ±Infinity, and a missing string null or ''.
 *
 * Nothing here throws on odd values at predict time: unseen categories, nulls, NaN, numbers in
 * string columns and numeric strings in number columns all map to something defined.
 */
import type { ModelInput } from '../core/model.js';
import { FerryError } from '../errors/index.js';
import type { Column, Scalar, Table } from '../core/table.js';

export type PreprocessMode = 'linear' | 'tree';

export type FeatureTransform =
  | {
      readonly kind: 'numeric';
      readonly column: string;
      /** Imputed for missing values (linear mode only; tree mode keeps NaN). */
      readonly median: number;
      readonly center: number;
      /** Divisor after centring; 1 in tree mode or for a constant column. */
      readonly scale: number;
    }
  | {
      readonly kind: 'onehot';
      readonly column: string;
      /** One output column per category, then one "other" column. */
      readonly categories: readonly string[];
    }
  | {
      readonly kind: 'ordinal';
      readonly column: string;
      /** Code i is categories[i]. */
      readonly categories: readonly string[];
      /** Code for rare categories seen in training, also used for unseen ones; null: use NaN. */
      readonly otherCode: number | null;
    };

export interface PreprocessSpec {
  readonly mode: PreprocessMode;
  readonly transforms: readonly FeatureTransform[];
  /** Number of matrix columns the transforms produce. */
  readonly width: number;
  /** Human-readable name of each matrix column (`Island=Biscoe`), for explanations and export. */
  readonly featureNames: readonly string[];
}

export interface FitOptions {
  readonly mode: PreprocessMode;
  /**
   * A category needs this many training rows to get its own column or code (default 5; when no
   * category has that many, the most frequent ones seen twice or more keep theirs).
   */
  readonly minCategoryCount?: number;
  /** At most this many categories per column, most frequent first (100 linear, 250 tree). */
  readonly maxCategories?: number;
  /**
   * Numeric target per row (regression value or 0/1). In tree mode, ordinal codes then follow
   * the mean target of each category, so that one split separates low from high categories.
   */
  readonly target?: Float64Array;
}

/**
 * Standardised values (linear mode) are clamped to ±this many deviations. No training value lies
 * beyond √n deviations, so training never reaches it; a request value of 1e300 would otherwise
 * give a linear model infinite scores, and softmax turns infinities into NaN probabilities.
 */
export const STANDARD_LIMIT = 1e6;

/** A dense row-major matrix. */
export interface Matrix {
  readonly data: Float64Array;
  readonly rows: number;
  readonly cols: number;
}

/** Reads a cell of a numeric column as a number; NaN for missing or unusable values. */
export function toNumber(value: Scalar | undefined): number {
  if (typeof value === 'number') return Number.isFinite(value) ? value : NaN;
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (typeof value === 'string' && value.trim() !== '') {
    const n = Number(value);
    return Number.isFinite(n) ? n : NaN;
  }
  return NaN;
}

/**
 * Reads a cell of a categorical column as a string; null for missing. The empty string is
 * missing too: CSV writes a missing cell as nothing, and the ONNX export's string inputs have no
 * other way to say missing, so treating it as a category would make the two runtimes disagree.
 */
export function toCategory(value: Scalar | undefined): string | null {
  if (value === null || value === undefined || value === '') return null;
  if (typeof value === 'number' && Number.isNaN(value)) return null;
  return typeof value === 'string' ? value : String(value);
}

function findColumn(table: Table, name: string, position: number): Column | undefined {
  // Serving tables usually carry the inputs in signature order: try the position first.
  const at = table.columns[position];
  if (at !== undefined && at.name === name) return at;
  return table.columns.find((c) => c.name === name);
}

function requireColumn(table: Table, name: string, position: number): Column {
  const column = findColumn(table, name, position);
  if (column === undefined) {
    throw new FerryError(
      'FERRY_INPUT_MISSING',
      `input column '${name}' is missing; columns given: ${table.columns.map((c) => c.name).join(', ') || '(none)'}`,
      { details: { column: name } },
    );
  }
  return column;
}

function median(values: Float64Array): number {
  if (values.length === 0) return 0;
  const sorted = Float64Array.from(values).sort();
  const mid = sorted.length >> 1;
  if (sorted.length % 2 === 1) return sorted[mid] as number;
  // Halves first: the sum of two values near the largest double would overflow.
  return (sorted[mid - 1] as number) / 2 + (sorted[mid] as number) / 2;
}

function fitNumeric(column: Column, mode: PreprocessMode): FeatureTransform {
  const n = column.values.length;
  const finite = new Float64Array(n);
  let k = 0;
  for (let i = 0; i < n; i++) {
    const v = toNumber(column.values[i]);
    if (!Number.isNaN(v)) finite[k++] = v;
  }
  const present = finite.subarray(0, k);
  const med = median(present);
  if (mode === 'tree')
    return { kind: 'numeric', column: column.name, median: med, center: 0, scale: 1 };
  // Mean and deviation of the imputed column, since that is what the model will see. Values
  // beyond 1e150 would overflow their squares (1e300 is legitimate data), and values below
  // 1e-150 underflow them: such columns are measured in units of their largest magnitude.
  let largest = 0;
  for (let i = 0; i < k; i++) largest = Math.max(largest, Math.abs(present[i] as number));
  const unit = largest > 1e150 || (largest > 0 && largest < 1e-150) ? largest : 1;
  let sum = 0;
  for (let i = 0; i < k; i++) sum += (present[i] as number) / unit;
  sum += (med / unit) * (n - k);
  const mean = n === 0 ? 0 : sum / n;
  let ss = 0;
  for (let i = 0; i < k; i++) ss += ((present[i] as number) / unit - mean) ** 2;
  if (k < n) ss += (med / unit - mean) ** 2 * (n - k);
  const std = n === 0 ? 0 : Math.sqrt(ss / n);
  return {
    kind: 'numeric',
    column: column.name,
    median: med,
    center: mean * unit,
    // A constant column keeps a scale of 1: its deviation is rounding noise, judged against the
    // column's own magnitude (not against 1, which would call a column of 1e-20s constant).
    scale: std > 1e-12 * (largest / unit) ? std * unit : 1,
  };
}

function fitCategorical(column: Column, options: FitOptions): FeatureTransform {
  const minCount = options.minCategoryCount ?? 5;
  const maxCategories = options.maxCategories ?? (options.mode === 'linear' ? 100 : 250);
  const counts = new Map<string, number>();
  const targetSums = new Map<string, number>();
  const target = options.target;
  column.values.forEach((raw, i) => {
    const v = toCategory(raw);
    if (v === null) return;
    counts.set(v, (counts.get(v) ?? 0) + 1);
    if (target !== undefined) targetSums.set(v, (targetSums.get(v) ?? 0) + (target[i] ?? 0));
  });
  const byFrequency = [...counts.entries()].sort((a, b) =>
    b[1] !== a[1] ? b[1] - a[1] : a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0,
  );
  // A column whose categories are all rare still deserves its most frequent ones, unless each
  // was seen once (an id): a code per row, ordered by the mean target, would let trees separate
  // the training rows perfectly on it and learn nothing that holds on new rows.
  const effectiveMin = Math.min(minCount, Math.max(2, byFrequency[0]?.[1] ?? 1));
  const kept = byFrequency.filter(([, c]) => c >= effectiveMin).slice(0, maxCategories);
  const hasRare = kept.length < byFrequency.length;
  let categories = kept.map(([v]) => v).sort();
  if (options.mode === 'linear') return { kind: 'onehot', column: column.name, categories };
  if (target !== undefined) {
    const meanOf = (v: string): number => (targetSums.get(v) ?? 0) / (counts.get(v) ?? 1);
    categories = [...categories].sort((a, b) => meanOf(a) - meanOf(b) || (a < b ? -1 : 1));
  }
  return {
    kind: 'ordinal',
    column: column.name,
    categories,
    otherCode: hasRare ? categories.length : null,
  };
}

/**
 * Fits the preprocessing of `inputs` on a training table.
 * @example
 * const spec = fit(table, [{ name: 'amount', type: 'float' }, { name: 'country', type: 'string' }], { mode: 'linear' });
 * const { data, cols } = transform(spec, table);
 */
export function fit(
  table: Table,
  inputs: readonly ModelInput[],
  options: FitOptions,
): PreprocessSpec {
  const transforms: FeatureTransform[] = [];
  const featureNames: string[] = [];
  inputs.forEach((input, position) => {
    const column = requireColumn(table, input.name, position);
    if (input.type === 'string') {
      const t = fitCategorical(column, options);
      transforms.push(t);
      if (t.kind === 'onehot') {
        for (const c of t.categories) featureNames.push(`${input.name}=${c}`);
        featureNames.push(`${input.name}=(other)`);
      } else featureNames.push(input.name);
    } else {
      transforms.push(fitNumeric(column, options.mode));
      featureNames.push(input.name);
    }
  });
  return { mode: options.mode, transforms, width: featureNames.length, featureNames };
}

/** Number of matrix columns a transform produces. */
function widthOf(t: FeatureTransform): number {
  return t.kind === 'onehot' ? t.categories.length + 1 : 1;
}

/** A spec compiled for repeated use: category lookups become Maps, built once. */
export interface Transformer {
  readonly spec: PreprocessSpec;
  /** Writes `table` into `out` (row-major, `spec.width` per row), allocating when not given. */
  transform(table: Table, out?: Float64Array): Matrix;
}

/**
 * Compiles a spec; serving keeps the result and calls `transform` per request.
 * @example const t = createTransformer(spec); const m = t.transform(requestTable);
 */
export function createTransformer(spec: PreprocessSpec): Transformer {
  const codes = spec.transforms.map((t) =>
    t.kind === 'numeric' ? null : new Map(t.categories.map((c, i) => [c, i] as const)),
  );
  const offsets: number[] = [];
  let width = 0;
  for (const t of spec.transforms) {
    offsets.push(width);
    width += widthOf(t);
  }
  const linear = spec.mode === 'linear';
  return {
    spec,
    transform(table: Table, out?: Float64Array): Matrix {
      const rows = table.rowCount;
      const data =
        out !== undefined && out.length >= rows * width ? out : new Float64Array(rows * width);
      if (linear) data.fill(0, 0, rows * width);
      for (let j = 0; j < spec.transforms.length; j++) {
        const t = spec.transforms[j] as FeatureTransform;
        const values = requireColumn(table, t.column, j).values;
        const offset = offsets[j] as number;
        if (t.kind === 'numeric') {
          for (let i = 0, p = offset; i < rows; i++, p += width) {
            const v = toNumber(values[i]);
            if (!linear) {
              data[p] = v;
              continue;
            }
            const z = ((Number.isNaN(v) ? t.median : v) - t.center) / t.scale;
            data[p] =
              z > STANDARD_LIMIT ? STANDARD_LIMIT : z < -STANDARD_LIMIT ? -STANDARD_LIMIT : z;
          }
        } else {
          const map = codes[j] as Map<string, number>;
          for (let i = 0, p = offset; i < rows; i++, p += width) {
            const v = toCategory(values[i]);
            const code = v === null ? undefined : map.get(v);
            if (t.kind === 'onehot') data[p + (code ?? t.categories.length)] = 1;
            else data[p] = code ?? (v === null || t.otherCode === null ? NaN : t.otherCode);
          }
        }
      }
      return { data, rows, cols: width };
    },
  };
}

/**
 * Applies a fitted spec to a table.
 * @example const { data, rows, cols } = transform(spec, table);
 */
export function transform(spec: PreprocessSpec, table: Table): Matrix {
  return createTransformer(spec).transform(table);
}
