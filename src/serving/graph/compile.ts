/**
 * Compiles an endpoint spec into a graph ready to run: every model reference resolved to one
 * version and loaded, every step compiled in order against the fields the steps before it write,
 * the request fields and the response worked out. Whatever is wrong with the spec (an unknown
 * vector or model, an expression over a field nobody writes, models that do not answer alike, an
 * error policy without its defaults) fails here, before anything is served.
 */
import type { EndpointSpec, EndpointStepSpec } from '../../config/endpoint-schema.js';
import type { ProjectSpec } from '../../config/schema.js';
import type { Label, ModelInput, ModelSignature } from '../../core/model.js';
import type { ColumnType } from '../../core/table.js';
import { FerryError, toFerryError } from '../../errors/index.js';
import type { EventBus } from '../../events/event-bus.js';
import type { FeatureStore } from '../../feature-store/feature-store.js';
import type { ModelVersion } from '../../metadata/metadata-store.js';
import type {
  AnsweringModel,
  CompileEnv,
  CompiledStep,
  ModelProvider,
  ServingModel,
} from './step.js';
import { STEP_COMPILERS } from './steps/index.js';

export interface GraphDeps {
  readonly spec: ProjectSpec;
  /** The project folder. */
  readonly root: string;
  readonly models: ModelProvider;
  readonly features: FeatureStore;
  readonly events: EventBus;
}

export interface CompiledGraph {
  readonly endpoint: EndpointSpec;
  readonly steps: readonly CompiledStep[];
  /** What callers send, in the order steps first read it. */
  readonly inputs: readonly ModelInput[];
  /** Every field a record may hold (request fields and what steps write), with its type. */
  readonly fields: ReadonlyMap<string, ColumnType>;
  /** Fields of each result, with their types. */
  readonly response: readonly { readonly name: string; readonly type: ColumnType | 'meta' }[];
  /** Task and classes of the graph's answer (its last model-like step). */
  readonly task: ModelSignature['task'];
  readonly classes?: readonly Label[];
  /** The field holding the answer (the last model-like step's output). */
  readonly output: string;
  /** Each model reference of the spec and the version it resolved to. */
  readonly resolved: ReadonlyMap<string, number>;
  /** Every model version the graph predicts with. */
  readonly models: readonly AnsweringModel[];
}

/** Result fields that say which model version answered a record. */
export const MODEL_FIELD = 'model';
export const MODEL_VERSION_FIELD = 'model_version';

/** Every model reference a step names. */
export function modelRefsOf(step: EndpointStepSpec): string[] {
  switch (step.kind) {
    case 'model':
      return [step.model];
    case 'router':
      if (step.mode === 'split') return step.routes.map((r) => r.model);
      if (step.mode === 'canary') return [step.model, step.canary];
      return [step.model, ...step.shadow];
    case 'ensemble':
      return step.models.map((m) => (typeof m === 'string' ? m : m.model));
    default:
      return [];
  }
}

/** Each distinct model reference of an endpoint resolved now to a version record. */
export async function resolveRefs(
  endpoint: EndpointSpec,
  models: Pick<ModelProvider, 'resolve'>,
): Promise<Map<string, ModelVersion>> {
  const refs = [...new Set(endpoint.steps.flatMap(modelRefsOf))];
  const records = await Promise.all(
    refs.map(async (ref) => {
      try {
        return await models.resolve(ref);
      } catch (err) {
        const e = toFerryError(err);
        throw new FerryError(e.code, `endpoint '${endpoint.name}': ${e.message}`, { cause: err });
      }
    }),
  );
  return new Map(refs.map((ref, i) => [ref, records[i] as ModelVersion]));
}

/** `<kind>` for the first step of a kind, `<kind>_<n>` for the n-th (from 2). */
export function stepNames(endpoint: EndpointSpec): string[] {
  const seen = new Map<string, number>();
  const names = endpoint.steps.map((step) => {
    if (step.name !== undefined) return step.name;
    const n = (seen.get(step.kind) ?? 0) + 1;
    seen.set(step.kind, n);
    return n === 1 ? step.kind : `${step.kind}_${n}`;
  });
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup !== undefined) {
    throw new FerryError(
      'FERRY_CONFIG_INVALID',
      `endpoint '${endpoint.name}' has two steps named '${dup}'; give each step its own name`,
    );
  }
  return names;
}

/**
 * @example
 * const graph = await compileGraph(spec.endpoints[0], { spec, root, models, features, events });
 */
export async function compileGraph(
  endpoint: EndpointSpec,
  deps: GraphDeps,
  resolved?: ReadonlyMap<string, ModelVersion>,
): Promise<CompiledGraph> {
  const records = resolved ?? (await resolveRefs(endpoint, deps.models));
  // Steps resolve through the records above, so one graph never mixes what an alias pointed to
  // before and after a move.
  const pinned: ModelProvider = {
    resolve: async (ref) => {
      const record = records.get(ref);
      if (!record)
        throw new FerryError('FERRY_INTERNAL', `model reference '${ref}' was not resolved`);
      return record;
    },
    load: (record) => deps.models.load(record),
  };
  const loaded: ServingModel[] = await Promise.all(
    [...records.values()].map((r) => deps.models.load(r)),
  );
  const modelInputTypes = new Map<string, ColumnType>();
  for (const m of loaded)
    for (const i of m.signature.inputs)
      if (!modelInputTypes.has(i.name)) modelInputTypes.set(i.name, i.type);

  const names = stepNames(endpoint);
  const fields = new Map<string, ColumnType>();
  const inputs: ModelInput[] = [];
  const steps: CompiledStep[] = [];
  let lastPredicting = -1;
  for (const [index, stepSpec] of endpoint.steps.entries()) {
    const name = names[index] as string;
    const env: CompileEnv = {
      endpoint: endpoint.name,
      index,
      name,
      spec: deps.spec,
      root: deps.root,
      fields,
      inputType: (field) => endpoint.inputs[field] ?? modelInputTypes.get(field),
      models: pinned,
      features: deps.features,
      events: deps.events,
    };
    const compiler = STEP_COMPILERS[stepSpec.kind] as (
      s: EndpointStepSpec,
      e: CompileEnv,
    ) => Promise<CompiledStep>;
    let step: CompiledStep;
    try {
      step = await compiler(stepSpec, env);
    } catch (err) {
      const e = toFerryError(err);
      if (e.message.includes(`endpoint '${endpoint.name}'`)) throw e;
      throw new FerryError(e.code, `endpoint '${endpoint.name}', step '${name}': ${e.message}`, {
        cause: err,
      });
    }
    checkPolicy(endpoint, stepSpec, step);
    for (const read of step.reads) {
      if (fields.has(read.name)) continue;
      fields.set(read.name, read.type);
      inputs.push({
        name: read.name,
        type: read.type,
        ...(read.optional ? { optional: true } : {}),
      });
    }
    for (const write of step.writes) fields.set(write.name, write.type);
    if (step.predicts) lastPredicting = index;
    steps.push(step);
  }
  const answer = steps[lastPredicting];
  if (!answer) {
    throw new FerryError(
      'FERRY_CONFIG_INVALID',
      `endpoint '${endpoint.name}' has no model, router or ensemble step; add one to give it an answer`,
    );
  }
  const response = responseFields(endpoint, steps, lastPredicting, fields);
  return {
    endpoint,
    steps,
    inputs,
    fields,
    response,
    task: answer.task ?? 'regression',
    ...(answer.classes ? { classes: answer.classes } : {}),
    output: answer.writes[0]?.name ?? 'prediction',
    resolved: new Map([...records].map(([ref, r]) => [ref, r.version])),
    models: dedupe(steps.flatMap((s) => s.models)),
  };
}

function responseFields(
  endpoint: EndpointSpec,
  steps: readonly CompiledStep[],
  lastPredicting: number,
  fields: ReadonlyMap<string, ColumnType>,
): CompiledGraph['response'] {
  if (endpoint.response) {
    return endpoint.response.map((name) => {
      if (name === MODEL_FIELD || name === MODEL_VERSION_FIELD)
        return { name, type: 'meta' as const };
      const type = fields.get(name);
      if (type === undefined) {
        throw new FerryError(
          'FERRY_CONFIG_INVALID',
          `endpoint '${endpoint.name}': response field '${name}' is neither sent nor written by a step; fields: ${[...fields.keys(), MODEL_FIELD, MODEL_VERSION_FIELD].join(', ')}`,
        );
      }
      return { name, type };
    });
  }
  const out = new Map<string, ColumnType | 'meta'>();
  for (const step of steps.slice(lastPredicting))
    for (const w of step.writes) out.set(w.name, w.type);
  out.set(MODEL_FIELD, 'meta');
  out.set(MODEL_VERSION_FIELD, 'meta');
  return [...out].map(([name, type]) => ({ name, type }));
}

function checkPolicy(endpoint: EndpointSpec, spec: EndpointStepSpec, step: CompiledStep): void {
  const where = `endpoint '${endpoint.name}', step '${step.name}'`;
  if (spec.on_error === 'default') {
    if (!spec.default) {
      throw new FerryError(
        'FERRY_CONFIG_INVALID',
        `${where}: on_error: default needs \`default:\` values for the step's fields (${step.writes.map((w) => w.name).join(', ') || 'none'})`,
      );
    }
    const writes = new Set(step.writes.map((w) => w.name));
    const stray = Object.keys(spec.default).find((k) => !writes.has(k));
    if (stray !== undefined) {
      throw new FerryError(
        'FERRY_CONFIG_INVALID',
        `${where}: default value for '${stray}', which the step does not write; it writes ${[...writes].join(', ') || 'nothing'}`,
      );
    }
  } else if (spec.default) {
    throw new FerryError(
      'FERRY_CONFIG_INVALID',
      `${where}: \`default:\` values are used only with on_error: default (this step has on_error: ${spec.on_error})`,
    );
  }
}

function dedupe(models: readonly AnsweringModel[]): AnsweringModel[] {
  const seen = new Map<string, AnsweringModel>();
  for (const m of models) seen.set(`${m.model}:${m.version}`, m);
  return [...seen.values()];
}
