/**
 * What a model takes and gives, independent of how it is stored or run.
 */
import type { ColumnType, Scalar, Table } from './table.js';

export type Task = 'classification' | 'regression';

/** A class label or a regression value. */
export type Label = string | number | boolean;

export interface ModelInput {
  readonly name: string;
  /** The column type seen in training; string columns are categorical. */
  readonly type: ColumnType;
  /** A caller may leave it out (for example an endpoint's event time); models' own inputs never are. */
  readonly optional?: boolean;
}

export interface ModelSignature {
  readonly task: Task;
  readonly target: string;
  /** Feature columns in the order a `[N, F]` tensor must follow. */
  readonly inputs: readonly ModelInput[];
  /** Class labels in ascending order (classifiers only); `predict_proba` columns follow it. */
  readonly classes?: readonly Label[];
}

export interface Prediction {
  /** One entry per row: the class label (classification) or the value (regression). */
  readonly predict: Label[];
  /** Row-major N x K probabilities in the order of `signature.classes` (classifiers only). */
  readonly proba?: Float64Array;
}

/** A model ready to predict. Preprocessing (imputation, encoding, scaling) is part of it. */
export interface LoadedModel {
  readonly signature: ModelSignature;
  /** `input` has one column per signature input (extra columns are ignored). */
  predict(input: Table): Prediction | Promise<Prediction>;
}

/**
 * Turns a stored artifact into a LoadedModel. One implementation per execution engine
 * (native TypeScript here; ONNX later), chosen by the `runtime` recorded with the version.
 */
export interface ModelRuntime {
  readonly name: string;
  load(artifact: Uint8Array): Promise<LoadedModel>;
}

export type { Scalar };
