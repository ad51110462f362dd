/**
 * The statistical profile of a table: stored with datasets and model versions and used by
 * monitoring as the drift reference. Plain JSON so every store keeps it as it is.
 */

export interface NumericProfile {
  readonly kind: 'numeric';
  readonly count: number;
  readonly nulls: number;
  readonly distinct: number;
  readonly min: number | null;
  readonly max: number | null;
  readonly mean: number | null;
  readonly std: number | null;
  /** Quantiles at 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99. */
  readonly quantiles: Readonly<Record<string, number>>;
  /**
   * Histogram over `edges` (length bins + 1; the first and last bins are open-ended so that
   * live values outside the training range still count). `counts` sums to count - nulls.
   */
  readonly histogram: { readonly edges: readonly number[]; readonly counts: readonly number[] };
}

export interface CategoricalProfile {
  readonly kind: 'categorical';
  readonly count: number;
  readonly nulls: number;
  readonly distinct: number;
  /** Most frequent values with their counts, most frequent first (at most 20). */
  readonly top: readonly { readonly value: string; readonly count: number }[];
  /** Count of all values outside `top`. */
  readonly otherCount: number;
}

export type ColumnProfile = NumericProfile | CategoricalProfile;

export interface TableProfile {
  readonly rowCount: number;
  readonly columns: Readonly<Record<string, ColumnProfile>>;
}
