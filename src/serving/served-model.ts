/**
 * What the inference inputs (HTTP, streams) serve: a named thing with a signature that turns a
 * table of inputs into predictions. A registered model version is one; an endpoint graph
 * (enrich from the online store, then a model) is another. Inputs know nothing else of either.
 */
import type { ModelSignature, Prediction } from '../core/model.js';
import type { Table } from '../core/table.js';

export interface InferContext {
  /** Carried through logs and the inference log. */
  readonly requestId: string;
}

export interface InferResult {
  readonly prediction: Prediction;
  /** The model version that answered (one version per request, never mixed). */
  readonly modelVersion: string;
  /**
   * The feature values the model actually saw (after enrichment), for the inference log and
   * monitoring; the request's own inputs when nothing was added.
   */
  readonly features: Table;
  /** True when the served thing handed its predictions to the inference log itself (endpoints). */
  readonly logged?: boolean;
}

export interface ServedModel {
  readonly name: string;
  /** The version served when the request names none. */
  readonly version: string;
  /** Every version reachable under this name (for `/versions/{v}` routes). */
  readonly versions: readonly string[];
  /** `ferry-native`, `ferry-endpoint`, `onnx`... shown as `platform` in OIP metadata. */
  readonly platform: string;
  /** What callers send (for an endpoint: the entity key and the request fields). */
  readonly signature: ModelSignature;
  /** Name of the registered model whose training profile monitoring compares against. */
  readonly monitoredModel: string;
  infer(input: Table, context: InferContext, version?: string): Promise<InferResult>;
}

/** The set of served things, looked up by name. */
export interface ServedModelCatalog {
  list(): readonly ServedModel[];
  get(name: string): ServedModel | undefined;
  /** True once every model has loaded. */
  ready(): boolean;
}
