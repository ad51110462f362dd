/**
 * An endpoint: a named serving graph from ferry.yaml. This first graph runs its steps in order:
 * `enrich` looks the request's entity up in the online store through a feature vector (request
 * fields override or add features), then `model` predicts with a registered model version.
 * Served like a model (`/v2/models/{endpoint}/infer`), so every OIP client works unchanged.
 */
import {
  parseFeatureRef,
  type FeatureVectorSpec,
  type ProjectSpec,
  type StepSpec,
} from '../config/schema.js';
import type { LoadedModel, ModelInput, ModelSignature } from '../core/model.js';
import { getColumn, type Column, type Scalar, type Table } from '../core/table.js';
import { FerryError } from '../errors/index.js';
import type { FeatureStore } from '../feature-store/feature-store.js';
import type { ModelVersion } from '../metadata/metadata-store.js';
import type { ModelRegistry } from '../registry/registry.js';
import type { InferContext, InferResult, ServedModel } from './served-model.js';

/** The optional request field giving the event time that history features are computed before. */
export const EVENT_TIME_INPUT = 'ts';

type EnrichStep = Extract<StepSpec, { kind: 'enrich' }>;
type ModelStep = Extract<StepSpec, { kind: 'model' }>;

export interface EndpointDeps {
  readonly spec: ProjectSpec;
  readonly registry: ModelRegistry;
  readonly features: FeatureStore;
}

/**
 * Compiles an endpoint spec into a ServedModel: resolves and loads its model version, and works
 * out the inputs callers must send (entity keys plus the model inputs the vector does not give).
 * @example const served = await compileEndpoint(spec.endpoints[0], { spec, registry, features });
 */
export async function compileEndpoint(
  endpoint: ProjectSpec['endpoints'][number],
  deps: EndpointDeps,
): Promise<ServedModel> {
  const enrich = endpoint.steps.find((s): s is EnrichStep => s.kind === 'enrich');
  const modelStep = endpoint.steps.find((s): s is ModelStep => s.kind === 'model');
  if (!modelStep)
    throw new FerryError('FERRY_CONFIG_INVALID', `endpoint '${endpoint.name}' has no model step`);
  const version = await deps.registry.resolve(modelStep.model);
  const model = await deps.registry.load(version);
  const vector = enrich
    ? deps.spec.feature_vectors.find((v) => v.name === enrich.vector)
    : undefined;
  if (enrich && !vector) {
    throw new FerryError(
      'FERRY_FEATURE_VECTOR_UNKNOWN',
      `endpoint '${endpoint.name}': feature vector '${enrich.vector}' is not defined`,
    );
  }
  return new EndpointModel(endpoint.name, version, model, vector, deps);
}

class EndpointModel implements ServedModel {
  readonly platform = 'ferry-endpoint';
  readonly signature: ModelSignature;
  readonly version: string;
  readonly versions: readonly string[];
  readonly monitoredModel: string;
  private readonly keyColumns: readonly string[];
  private readonly vectorFeatures: ReadonlySet<string>;

  constructor(
    readonly name: string,
    private readonly modelVersion: ModelVersion,
    private readonly model: LoadedModel,
    private readonly vector: FeatureVectorSpec | undefined,
    private readonly deps: EndpointDeps,
  ) {
    this.version = String(modelVersion.version);
    this.versions = [this.version];
    this.monitoredModel = modelVersion.model;
    this.keyColumns = vector ? entityKeys(deps.spec, vector) : [];
    this.vectorFeatures = new Set(vector ? vectorFeatureNames(deps.spec, vector) : []);
    const inputs: ModelInput[] = [
      ...this.keyColumns.map((name) => ({ name, type: 'string' as const })),
      ...model.signature.inputs.filter(
        (i) => !this.vectorFeatures.has(i.name) && !this.keyColumns.includes(i.name),
      ),
    ];
    if (vector && !inputs.some((i) => i.name === EVENT_TIME_INPUT)) {
      inputs.push({ name: EVENT_TIME_INPUT, type: 'timestamp', optional: true });
    }
    this.signature = { ...model.signature, inputs };
  }

  async infer(input: Table, _context: InferContext, version?: string): Promise<InferResult> {
    if (version !== undefined && version !== this.version) {
      throw new FerryError(
        'FERRY_MODEL_VERSION_NOT_FOUND',
        `endpoint '${this.name}' serves model version ${this.version}; version ${version} is not deployed here`,
      );
    }
    const enriched = this.vector
      ? await this.enrich(input, this.vector)
      : new Map<string, Scalar[]>();
    const columns: Column[] = this.model.signature.inputs.map((spec) => {
      const given = getColumn(input, spec.name);
      const values = given
        ? given.values
        : (enriched.get(spec.name) ?? new Array<Scalar>(input.rowCount).fill(null));
      return { name: spec.name, type: spec.type, values };
    });
    const features: Table = { columns, rowCount: input.rowCount };
    const prediction = await this.model.predict(features);
    return { prediction, modelVersion: this.version, features };
  }

  /** Feature values from the online store, per vector feature, one value per request row. */
  private async enrich(input: Table, vector: FeatureVectorSpec): Promise<Map<string, Scalar[]>> {
    const keyName = this.keyColumns[0] as string;
    const keyColumn = getColumn(input, keyName);
    if (!keyColumn) {
      throw new FerryError(
        'FERRY_ENTITY_KEY_MISSING',
        `endpoint '${this.name}' needs '${keyName}' in every request to look up its features`,
      );
    }
    const keys = keyColumn.values.map((v, row) => {
      if (v === null || v === '') {
        throw new FerryError(
          'FERRY_ENTITY_KEY_MISSING',
          `row ${row} has no '${keyName}'; endpoint '${this.name}' needs it to look up features`,
        );
      }
      return String(v);
    });
    // History features are computed strictly before the event: timestamps are integer
    // milliseconds, so "before T" is "as of T - 1 ms", exactly what training sets use.
    const times = getColumn(input, EVENT_TIME_INPUT)?.values;
    const now = Date.now();
    const asOf = keys.map((_, row) => {
      const t = times?.[row];
      return typeof t === 'number' ? t - 1 : now;
    });
    const out = new Map<string, Scalar[]>();
    for (const name of this.vectorFeatures)
      out.set(name, new Array<Scalar>(input.rowCount).fill(null));
    const rowsByTime = new Map<number, number[]>();
    asOf.forEach((t, row) => {
      const list = rowsByTime.get(t);
      if (list) list.push(row);
      else rowsByTime.set(t, [row]);
    });
    for (const [at, rows] of rowsByTime) {
      const vectors = await this.deps.features.getOnlineVector(
        vector.name,
        rows.map((r) => keys[r] as string),
        at,
      );
      rows.forEach((row, i) => {
        const values = vectors[i];
        if (!values) return;
        for (const [name, column] of out) column[row] = values[name] ?? null;
      });
    }
    return out;
  }
}

function entityKeys(spec: ProjectSpec, vector: FeatureVectorSpec): string[] {
  const sets = new Set(vector.features.map((f) => parseFeatureRef(f).set));
  const keys = new Set<string>();
  for (const setName of sets) {
    const fs = spec.feature_sets.find((f) => f.name === setName);
    const entity = spec.entities.find((e) => e.name === fs?.entity);
    for (const k of entity?.keys ?? []) keys.add(k);
  }
  if (keys.size !== 1) {
    throw new FerryError(
      'FERRY_CONFIG_INVALID',
      `feature vector '${vector.name}' spans entities with keys ${[...keys].join(', ')}; an enrich step needs one entity key for now`,
    );
  }
  return [...keys];
}

/** Bare output names of a vector's features (expanding `<set>.*`). */
export function vectorFeatureNames(spec: ProjectSpec, vector: FeatureVectorSpec): string[] {
  const names: string[] = [];
  for (const entry of vector.features) {
    const { set: setName, feature, alias } = parseFeatureRef(entry);
    if (feature !== '*') {
      names.push(alias ?? feature);
      continue;
    }
    const fs = spec.feature_sets.find((f) => f.name === setName);
    if (!fs) continue;
    names.push(...fs.features.map((f) => f.name));
    for (const agg of fs.aggregations) {
      for (const window of agg.windows)
        for (const op of agg.ops) names.push(`${agg.column}_${op}_${window}`);
    }
  }
  return names;
}
