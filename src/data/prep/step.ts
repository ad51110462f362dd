/**
 * What every kind of preparation step provides. A step is fitted once (learning constants from
 * the fit rows when it needs them), and its fitted form is then read three ways that must agree:
 * its output schema, its SQL (one relation to the next, streamed by DuckDB) and, for row-wise
 * steps, a function of one row for request time. Each kind lives in `steps/`.
 */
import type { StepSpec } from '../../config/data-schema.js';
import type { ColumnSchema, Row, Table } from '../../core/table.js';
import type { FittedStep, FittedStepOf } from './fitted.js';
import type { Relation } from './relation.js';

/** Why rows left the table at a step. */
export type RemovalReason =
  /** A filter's condition was false or null. */
  | 'filtered'
  /** A later or earlier duplicate was kept instead. */
  | 'deduplicated'
  /** A required value was missing (drop_missing; a time split's time). */
  | 'missing'
  /** An inner merge found no row in the other source. */
  | 'no_match';

/** What a step tells the report beyond its row counts. */
export interface StepMeasures {
  /** Per column, non-missing values that did not convert and became null. */
  readonly conversionFailures?: Readonly<Record<string, number>>;
  /** Rows per part after a split. */
  readonly splits?: Readonly<Record<string, number>>;
  /** Anything else worth saying, in words. */
  readonly notes?: readonly string[];
}

export interface FitContext {
  /** Names the recipe and step in messages, e.g. "recipe 'tx', step 3 (fill)". */
  readonly where: string;
  /** SQL condition selecting the fit rows of a relation: the train part after a split, else TRUE. */
  readonly fitWhere: string;
  /** Runs a query. */
  query(sql: string): Promise<Table>;
  /** A named source of the project, opened (for merges). */
  source(name: string): Promise<Relation>;
}

export interface SqlContext {
  /** The step's position, to name helper columns uniquely along a chain. */
  readonly index: number;
  /** The project's sources a merge may name, opened. */
  readonly sources: ReadonlyMap<string, Relation>;
}

export interface MeasureContext extends SqlContext {
  query(sql: string): Promise<Table>;
}

export interface StepKind<K extends FittedStep['step']> {
  /** Why the step does nothing to single rows at request time, or null for row-wise steps. */
  readonly batchOnly: string | null;
  /** The reason rows can leave the table here, or null when the step keeps every row. */
  readonly removes: RemovalReason | null;
  /** Whether the step learns constants from the fit rows. */
  learns(spec: Extract<StepSpec, { step: K }>): boolean;
  /** Checks the step against its input and learns its constants. */
  fit(
    spec: Extract<StepSpec, { step: K }>,
    input: Relation,
    ctx: FitContext,
  ): Promise<FittedStepOf<K>>;
  /** The output columns. */
  schema(fitted: FittedStepOf<K>, input: readonly ColumnSchema[]): ColumnSchema[];
  /** The output relation's SQL, reading `FROM (<input.sql>)`. */
  sql(fitted: FittedStepOf<K>, input: Relation, ctx: SqlContext): string;
  /**
   * The step on one row (which it may change in place), or null when the row leaves the table;
   * absent for batch-only steps, which pass rows through.
   */
  row?(fitted: FittedStepOf<K>, input: readonly ColumnSchema[]): (row: Row) => Row | null;
  /**
   * Extra report figures, from queries over the step's input and output. The runner may call it
   * after later steps that keep every row, with `output` read from a checkpoint: read the step's
   * own hidden columns there (they pass through), not columns a later step may change.
   */
  measure?(
    fitted: FittedStepOf<K>,
    input: Relation,
    output: Relation,
    ctx: MeasureContext,
  ): Promise<StepMeasures>;
}

/** `(<sql>)`, for FROM clauses. */
export function sub(relation: Relation): string {
  return `(${relation.sql})`;
}
