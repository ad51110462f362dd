/**
 * An endpoint being served: its compiled graph, answering records (`/v1/endpoints/{name}/predict`,
 * stream inputs) and tensors (it is also a ServedModel, so `/v2/models/{endpoint}/infer` works for
 * every Open Inference Protocol client).
 *
 * A request takes the current graph once and keeps it to the end. `refresh()` re-resolves the
 * spec's model references; where an alias moved it compiles a new graph (the new versions loaded
 * and warmed first) and swaps one reference, so no request fails or mixes versions, and moving
 * the alias back rolls back the same way.
 *
 * Every prediction is handed to the inference log, grouped by the model version that answered
 * (a router's records go to several), shadow answers too (served as `<endpoint>#shadow`).
 */
import type { EndpointSpec } from '../../config/endpoint-schema.js';
import type { JsonValue } from '../../core/json.js';
import type { Logger } from '../../core/logger.js';
import type { ModelSignature, Prediction } from '../../core/model.js';
import {
  tableToRows,
  type Column,
  type ColumnType,
  type Row,
  type Scalar,
  type Table,
} from '../../core/table.js';
import { coerceInput } from '../../data/prep/convert.js';
import { FerryError, toFerryError } from '../../errors/index.js';
import type { InferenceLog } from '../../monitoring/inference-log.js';
import type { InferContext, InferResult, ServedModel } from '../served-model.js';
import { compileGraph, resolveRefs, type CompiledGraph, type GraphDeps } from './compile.js';
import { runGraph, type GraphObserver, type GraphRun } from './run.js';
import type { AnsweringModel, ShadowPrediction } from './step.js';

export interface EndpointOptions {
  readonly endpoint: EndpointSpec;
  readonly deps: GraphDeps;
  /** The deployment version served (see `deployments.ts`); `1` by default. */
  readonly version?: string;
  readonly logger: Logger;
  readonly observer?: GraphObserver;
  readonly inferenceLog?: InferenceLog;
}

/** What one request to an endpoint answered. */
export interface EndpointAnswer {
  /** The response of each record, in order. */
  readonly results: Record<string, Scalar>[];
  /** The deployment version that answered. */
  readonly version: string;
  readonly run: GraphRun;
  readonly graph: CompiledGraph;
}

export interface EndpointRefresh {
  /** Model references whose version changed: the graph now predicts with `to`. */
  readonly swapped: readonly { readonly ref: string; readonly from: number; readonly to: number }[];
  /** Set when the new graph failed to compile or load; the old one keeps serving. */
  readonly error?: FerryError;
}

export class ServedEndpoint implements ServedModel {
  readonly platform = 'ferry-endpoint';
  readonly name: string;
  readonly version: string;
  readonly versions: readonly string[];
  private current: CompiledGraph;
  private refreshing: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly options: EndpointOptions,
    graph: CompiledGraph,
  ) {
    this.name = options.endpoint.name;
    this.version = options.version ?? '1';
    this.versions = [this.version];
    this.current = graph;
  }

  /**
   * Compiles the endpoint (its models loaded and warmed), unless given the graph compiled from
   * it; throws on any problem of the spec.
   * @example const fraud = await ServedEndpoint.create({ endpoint, deps, logger });
   */
  static async create(options: EndpointOptions, compiled?: CompiledGraph): Promise<ServedEndpoint> {
    if (compiled && compiled.endpoint !== options.endpoint) {
      throw new FerryError(
        'FERRY_INTERNAL',
        `the graph given for endpoint '${options.endpoint.name}' was compiled from another spec`,
      );
    }
    return new ServedEndpoint(
      options,
      compiled ?? (await compileGraph(options.endpoint, options.deps)),
    );
  }

  /** The graph answering now. */
  graph(): CompiledGraph {
    return this.current;
  }

  get signature(): ModelSignature {
    const g = this.current;
    return {
      task: g.task,
      target: g.output,
      inputs: g.inputs,
      ...(g.classes ? { classes: g.classes } : {}),
    };
  }

  get monitoredModel(): string {
    return this.current.models[0]?.model ?? this.name;
  }

  /**
   * Answers JSON records: each is read against the graph's request fields (a value of the wrong
   * type is refused with FERRY_INPUT_DATATYPE; a missing one is null).
   * @example const { results } = await fraud.predictRecords([{ card_id: 'c1', amount: 12 }], { requestId });
   */
  async predictRecords(
    records: readonly Readonly<Record<string, JsonValue>>[],
    context: InferContext,
  ): Promise<EndpointAnswer> {
    const graph = this.current;
    const rows = records.map((record, i) => readRecord(graph, record, i));
    return this.answer(graph, rows, context);
  }

  async infer(input: Table, context: InferContext, version?: string): Promise<InferResult> {
    if (version !== undefined && version !== this.version) {
      throw new FerryError(
        'FERRY_MODEL_VERSION_NOT_FOUND',
        `endpoint '${this.name}' serves deployment ${this.version}; version ${version} is not served here`,
      );
    }
    const graph = this.current;
    const answer = await this.answer(graph, tableToRows(input), context);
    const prediction = answer.run.prediction;
    if (!prediction) {
      throw new FerryError(
        'FERRY_STEP_FAILED',
        `endpoint '${this.name}' has no answer for this request: its model-like step was skipped after an error (see the log for request ${context.requestId}); give it on_error: default, or ask /v1/endpoints/${this.name}/predict, which answers null`,
      );
    }
    return {
      prediction,
      modelVersion: this.version,
      // The endpoint logged what its models saw itself (per answering version); the request's
      // own table stands here, so the hot path builds no second copy.
      features: input,
      logged: true,
    };
  }

  /**
   * Re-resolves the model references; if any moved, compiles and warms the new graph, then swaps.
   * Concurrent calls run one after the other.
   */
  refresh(): Promise<EndpointRefresh> {
    const run = this.refreshing.then(() => this.refreshOnce());
    this.refreshing = run.catch(() => undefined);
    return run;
  }

  private async refreshOnce(): Promise<EndpointRefresh> {
    const before = this.current;
    try {
      const records = await resolveRefs(this.options.endpoint, this.options.deps.models);
      const swapped = [...records]
        .map(([ref, r]) => ({ ref, from: before.resolved.get(ref) ?? 0, to: r.version }))
        .filter((s) => s.from !== s.to);
      if (swapped.length === 0) return { swapped };
      const next = await compileGraph(this.options.endpoint, this.options.deps, records);
      this.current = next;
      this.options.logger.info({ endpoint: this.name, swapped }, 'endpoint models swapped');
      return { swapped };
    } catch (err) {
      const error = toFerryError(err);
      this.options.logger.error(
        { endpoint: this.name, err: error },
        'endpoint refresh failed; the current graph keeps serving',
      );
      return { swapped: [], error };
    }
  }

  private async answer(
    graph: CompiledGraph,
    rows: Row[],
    context: InferContext,
  ): Promise<EndpointAnswer> {
    const started = performance.now();
    const log = this.options.inferenceLog;
    const observer: GraphObserver | undefined = log
      ? {
          ...this.options.observer,
          onShadow: (endpoint, shadow, requestId) => {
            this.options.observer?.onShadow?.(endpoint, shadow, requestId);
            this.logShadow(graph, shadow, requestId);
          },
        }
      : this.options.observer;
    const run = await runGraph(graph, rows, {
      requestId: context.requestId,
      logger: this.options.logger,
      ...(observer ? { observer } : {}),
    });
    if (log && run.prediction)
      this.logAnswers(graph, run, context.requestId, performance.now() - started);
    return { results: run.results, version: this.version, run, graph };
  }

  private logAnswers(
    graph: CompiledGraph,
    run: GraphRun,
    requestId: string,
    latencyMs: number,
  ): void {
    const log = this.options.inferenceLog;
    const prediction = run.prediction;
    if (!log || !prediction) return;
    const groups = new Map<string, { by: AnsweringModel; rows: number[] }>();
    run.answeredBy.forEach((by, i) => {
      if (!by) return;
      const key = `${by.model}\u0000${by.version}`;
      const group = groups.get(key);
      if (group) group.rows.push(i);
      else groups.set(key, { by, rows: [i] });
    });
    const ts = Date.now();
    const all = groups.size === 1;
    for (const { by, rows } of groups.values()) {
      log.record({
        model: by.model,
        served: this.name,
        version: by.version,
        requestId,
        ts,
        latencyMs,
        features: featureTable(graph, run.rows, all ? undefined : rows),
        prediction: all
          ? prediction
          : slicePrediction(prediction, rows, graph.classes?.length ?? 0),
        ...(graph.classes ? { classes: graph.classes } : {}),
      });
    }
  }

  private logShadow(graph: CompiledGraph, shadow: ShadowPrediction, requestId: string): void {
    this.options.inferenceLog?.record({
      model: shadow.model.model,
      served: `${this.name}#shadow`,
      version: shadow.model.version,
      requestId,
      ts: Date.now(),
      latencyMs: 0,
      features: featureTable(graph, shadow.features, undefined),
      prediction: shadow.prediction,
      ...(shadow.classes ? { classes: shadow.classes } : {}),
    });
  }
}

/** A JSON record as a row of the graph's request fields, each of its declared type. */
function readRecord(
  graph: CompiledGraph,
  record: Readonly<Record<string, JsonValue>>,
  index: number,
): Row {
  if (record === null || typeof record !== 'object' || Array.isArray(record)) {
    throw new FerryError(
      'FERRY_REQUEST_MALFORMED',
      `record ${index} is not a JSON object; send {"records": [{"field": value, ...}]}`,
    );
  }
  const row: Row = {};
  for (const input of graph.inputs) {
    const raw = record[input.name];
    const value = coerceInput(raw, input.type);
    if (value === null && raw !== null && raw !== undefined) {
      throw new FerryError(
        'FERRY_INPUT_DATATYPE',
        `record ${index}, field '${input.name}': ${JSON.stringify(raw).slice(0, 60)} is not a ${input.type}; endpoint '${graph.endpoint.name}' reads it as ${input.type}`,
      );
    }
    row[input.name] = value;
  }
  // A record may also carry fields that steps write (a feature it already knows): the enrich
  // step keeps them, later steps compute theirs over them.
  for (const key of Object.keys(record)) {
    if (key in row) continue;
    const type = graph.fields.get(key);
    if (type === undefined) continue;
    const raw = record[key];
    const value = coerceInput(raw, type);
    if (value === null && raw !== null && raw !== undefined) {
      throw new FerryError(
        'FERRY_INPUT_DATATYPE',
        `record ${index}, field '${key}': ${JSON.stringify(raw).slice(0, 60)} is not a ${type}; endpoint '${graph.endpoint.name}' reads it as ${type}`,
      );
    }
    row[key] = value;
  }
  return row;
}

/** The values the models saw: every field except what the answering step wrote. */
function featureTable(
  graph: CompiledGraph,
  rows: readonly Row[],
  subset: readonly number[] | undefined,
): Table {
  const answer = new Set(graph.response.map((r) => r.name));
  const fields = new Map<string, ColumnType>();
  for (const input of graph.inputs) fields.set(input.name, input.type);
  for (const step of graph.steps) {
    if (step.predicts) break;
    for (const w of step.writes) if (!answer.has(w.name)) fields.set(w.name, w.type);
  }
  const picked = subset ?? rows.map((_, i) => i);
  const columns: Column[] = [...fields].map(([name, type]) => ({
    name,
    type,
    values: picked.map((i) => rows[i]?.[name] ?? null),
  }));
  return { columns, rowCount: picked.length };
}

function slicePrediction(prediction: Prediction, rows: readonly number[], k: number): Prediction {
  const predict = rows.map((i) => prediction.predict[i] as Prediction['predict'][number]);
  if (!prediction.proba || k === 0) return { predict };
  const proba = new Float64Array(rows.length * k);
  rows.forEach((r, j) => proba.set(prediction.proba!.subarray(r * k, r * k + k), j * k));
  return { predict, proba };
}
