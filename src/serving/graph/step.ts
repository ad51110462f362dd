/**
 * What the steps of a serving graph share: the batch of records a request carries through the
 * graph, the context a step runs in, and the compiled step the engine runs.
 *
 * A request's records travel as one `GraphBatch`: one row per record, which steps read and add
 * fields to (never add or remove rows). Model-like steps (model, router, ensemble) also set the
 * batch's `prediction`, the answer the Open Inference Protocol returns, and say per row which
 * model version answered. Steps are compiled once per graph snapshot and are immutable; all state
 * of a request lives in its batch.
 */
import type { EndpointStepSpec } from '../../config/endpoint-schema.js';
import type { ProjectSpec } from '../../config/schema.js';
import type { Logger } from '../../core/logger.js';
import type { Label, LoadedModel, ModelSignature, Prediction } from '../../core/model.js';
import type { ColumnType, Row, Table } from '../../core/table.js';
import type { EventBus } from '../../events/event-bus.js';
import type { FeatureStore } from '../../feature-store/feature-store.js';
import type { ModelVersion } from '../../metadata/metadata-store.js';

/** A registered model version a step predicts with. */
export interface AnsweringModel {
  readonly model: string;
  readonly version: string;
}

/** The records of one request on their way through the graph. */
export interface GraphBatch {
  /** One row per record; steps add fields in place. */
  readonly rows: Row[];
  /** The answer of the last model-like step, one entry per row. */
  prediction: Prediction | undefined;
  /** Which model version gave each row's prediction (set by model-like steps). */
  answeredBy: (AnsweringModel | undefined)[];
}

/** A prediction made off the response path (shadow traffic), to be logged. */
export interface ShadowPrediction {
  readonly model: AnsweringModel;
  readonly features: readonly Row[];
  readonly prediction: Prediction;
  readonly classes?: readonly Label[];
}

export interface StepContext {
  readonly endpoint: string;
  readonly requestId: string;
  readonly logger: Logger;
  /**
   * True once the step has timed out (or the request was given up): a step that awaited must
   * check it before writing into the batch, which has moved on without it.
   */
  readonly cancelled: () => boolean;
  /** Hands a shadow model's answers to the inference log; never blocks the response. */
  readonly shadow: (prediction: ShadowPrediction) => void;
}

/** A model version loaded and warmed for serving (possibly behind a micro-batcher). */
export interface ServingModel {
  readonly record: ModelVersion;
  readonly signature: ModelSignature;
  predict(input: Table): Promise<Prediction>;
}

/** Resolves `<model>[@alias|:version]` and loads the version (cached; versions are immutable). */
export interface ModelProvider {
  resolve(ref: string): Promise<ModelVersion>;
  load(record: ModelVersion): Promise<ServingModel>;
}

/** What a step's compiler is given. */
export interface CompileEnv {
  readonly endpoint: string;
  /** The step's position (0-based) and display name. */
  readonly index: number;
  readonly name: string;
  readonly spec: ProjectSpec;
  /** Project folder (custom step modules resolve against it). */
  readonly root: string;
  /** Fields available to this step so far, with their types (request inputs included). */
  readonly fields: ReadonlyMap<string, ColumnType>;
  /**
   * The type of a request field the step reads that no earlier step writes: declared under the
   * endpoint's `inputs:`, or a model input of that name. Undefined when neither says.
   */
  inputType(field: string): ColumnType | undefined;
  readonly models: ModelProvider;
  readonly features: FeatureStore;
  readonly events: EventBus;
}

/** A step ready to run. */
export interface CompiledStep {
  readonly kind: EndpointStepSpec['kind'];
  readonly name: string;
  /** Request fields this step needs that no earlier step writes, with their types. */
  readonly reads: readonly {
    readonly name: string;
    readonly type: ColumnType;
    readonly optional?: boolean;
  }[];
  /** Fields this step writes, with their types. */
  readonly writes: readonly { readonly name: string; readonly type: ColumnType }[];
  /** True for model, router and ensemble: they set the batch's prediction. */
  readonly predicts: boolean;
  /** Classes of its predictions (classifiers), when it predicts. */
  readonly classes?: readonly Label[];
  readonly task?: ModelSignature['task'];
  /** Model versions it predicts with (for deployments, metrics and swaps). */
  readonly models: readonly AnsweringModel[];
  run(batch: GraphBatch, context: StepContext): void | Promise<void>;
}

export type StepCompiler<S extends EndpointStepSpec = EndpointStepSpec> = (
  spec: S,
  env: CompileEnv,
) => Promise<CompiledStep>;

export type { LoadedModel };
