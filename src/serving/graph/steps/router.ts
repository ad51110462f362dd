/**
 * `router`: sends each record to one of several models of one task and one set of classes.
 *
 * - `split`: each record takes one route with probability weight / total weight (A/B tests).
 * - `canary`: a `share` of records goes to `canary`, the rest to `model`.
 * - `shadow`: `model` answers every record; each `shadow` model predicts the same records off the
 *   response path and its answers go to the inference log through `context.shadow`.
 *
 * Assignment is sticky with `key`: a record's route is a pure function of the string form of its
 * key (FNV-1a 32-bit over its UTF-8 bytes, then murmur3's fmix32 finalizer, scaled to a point in
 * [0, 1)), so the same key takes the same route in every request, process and restart. Routes
 * own consecutive ranges of that point in the order listed (a canary owns [0, share)), so raising
 * a weight or a share only moves records into the route that grew. The hash is part of the
 * contract: changing it would move every sticky key. A record whose key is null or missing, and
 * every record without `key`, draws its route at random (Math.random), one draw per record.
 *
 * Each route's records are predicted in one call, routes in parallel.
 */
import type { EndpointStepSpec } from '../../../config/endpoint-schema.js';
import type { Prediction } from '../../../core/model.js';
import type { Row, Scalar, Table } from '../../../core/table.js';
import { toFerryError } from '../../../errors/index.js';
import type {
  AnsweringModel,
  CompileEnv,
  CompiledStep,
  GraphBatch,
  ServingModel,
  StepCompiler,
  StepContext,
} from '../step.js';
import {
  answering,
  checkAlike,
  inputTable,
  modelReads,
  predictionFields,
  writePrediction,
} from './predict.js';

type RouterStepSpec = Extract<EndpointStepSpec, { kind: 'router' }>;

/** Shadow predictions one router step keeps in flight at most; beyond, they are dropped. */
export const MAX_SHADOW_IN_FLIGHT = 64;

/** Least time between two warnings about dropped shadow predictions, in ms. */
const DROP_WARN_INTERVAL_MS = 1000;

/** A compiled router step; a shadow router also counts the shadow predictions it dropped. */
export interface RouterStep extends CompiledStep {
  /** Shadow predictions skipped because {@link MAX_SHADOW_IN_FLIGHT} were in flight. */
  shadowsDropped(): number;
}

interface Route {
  readonly model: ServingModel;
  readonly by: AnsweringModel;
  /** Upper end of the route's range of [0, 1). */
  readonly upTo: number;
}

/**
 * The point in [0, 1) a sticky key maps to: FNV-1a 32-bit over the UTF-8 bytes of its string
 * form, mixed by murmur3's fmix32 (FNV alone leaves the high bits of keys that differ in their
 * last character too alike), divided by 2^32.
 * @example stickyPoint('user-42') // the same number in every process, forever
 */
export function stickyPoint(key: Scalar): number {
  const bytes = new TextEncoder().encode(String(key));
  let h = 0x811c9dc5;
  for (const b of bytes) {
    h ^= b;
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) / 0x1_0000_0000;
}

export const compileRouterStep: StepCompiler<RouterStepSpec> = async (spec, env) => {
  const load = async (ref: string): Promise<ServingModel> =>
    env.models.load(await env.models.resolve(ref));
  // Weighted routes in the order their ranges are laid out.
  let weighted: { ref: string; weight: number }[];
  let shadowRefs: string[] = [];
  if (spec.mode === 'split') {
    weighted = spec.routes.map((r) => ({ ref: r.model, weight: r.weight }));
  } else if (spec.mode === 'canary') {
    weighted = [
      { ref: spec.canary, weight: spec.share },
      { ref: spec.model, weight: 1 - spec.share },
    ];
  } else {
    weighted = [{ ref: spec.model, weight: 1 }];
    shadowRefs = spec.shadow;
  }
  const routeModels = await Promise.all(weighted.map((w) => load(w.ref)));
  const shadows = await Promise.all(shadowRefs.map(load));
  const all = [...routeModels, ...shadows];
  checkAlike(all, env);

  // The primary: the first route of a split, the model of a canary or shadow router.
  const primary = (spec.mode === 'canary' ? routeModels[1] : routeModels[0]) as ServingModel;
  const signature = primary.signature;
  const total = weighted.reduce((sum, w) => sum + w.weight, 0);
  let cumulative = 0;
  const routes: Route[] = routeModels.map((model, i) => {
    cumulative += (weighted[i]?.weight ?? 0) / total;
    return { model, by: answering(model), upTo: cumulative };
  });

  // Every model's inputs, the shadows' too: the request must carry what any of them takes.
  const refs = [...weighted.map((w) => w.ref), ...shadowRefs];
  const reads = new Map<string, CompiledStep['reads'][number]>();
  all.forEach((m, i) => {
    for (const read of modelReads(m.signature, env, refs[i] as string))
      if (!reads.has(read.name)) reads.set(read.name, read);
  });
  const key = spec.mode === 'shadow' ? undefined : spec.key;
  if (key !== undefined && !env.fields.has(key) && !reads.has(key)) {
    // A record without its key is routed at random, so the key may be left out.
    reads.set(key, { name: key, type: env.inputType(key) ?? 'string', optional: true });
  }

  const usedModels = spec.mode === 'shadow' ? all : routeModels;
  const models = dedupe(usedModels.map(answering));
  const base = {
    kind: 'router' as const,
    name: env.name,
    reads: [...reads.values()],
    writes: predictionFields(signature, spec.output),
    predicts: true,
    ...(signature.classes ? { classes: signature.classes } : {}),
    task: signature.task,
    models,
  };

  if (spec.mode !== 'shadow') {
    const step: RouterStep = {
      ...base,
      shadowsDropped: () => 0,
      async run(batch, context) {
        const groups = assign(batch.rows, routes, key);
        const answers = await Promise.all(
          groups.map(async (rows, r) => {
            if (rows.length === 0) return undefined;
            const model = (routes[r] as Route).model;
            return model.predict(inputTable(model.signature, batch, rows));
          }),
        );
        if (context.cancelled()) return;
        // Each route fills its rows of a fresh prediction, never the previous step's.
        batch.prediction = batch.rows.length === 0 ? { predict: [] } : undefined;
        answers.forEach((prediction, r) => {
          const rows = groups[r] as number[];
          if (!prediction) return;
          const route = routes[r] as Route;
          writePrediction(batch, spec.output, signature.classes, prediction, route.by, rows);
        });
      },
    };
    return step;
  }

  const shadowing = new ShadowLauncher(env, shadows);
  const by = answering(primary);
  const step: RouterStep = {
    ...base,
    shadowsDropped: () => shadowing.dropped,
    async run(batch, context) {
      const prediction = await primary.predict(inputTable(signature, batch));
      if (context.cancelled()) return;
      writePrediction(batch, spec.output, signature.classes, prediction, by);
      shadowing.launch(batch, context);
    },
  };
  return step;
};

/** The rows (indices) each route takes, in route order. */
function assign(
  rows: readonly Row[],
  routes: readonly Route[],
  key: string | undefined,
): number[][] {
  const groups = routes.map((): number[] => []);
  rows.forEach((row, i) => {
    const value = key === undefined ? undefined : row[key];
    const point = value === undefined || value === null ? Math.random() : stickyPoint(value);
    let r = routes.findIndex((route) => point < route.upTo);
    // Rounding can leave the last range's end a hair below 1: the point then belongs to the last
    // route that has any weight.
    if (r < 0) r = lastWithWeight(routes);
    (groups[r] as number[]).push(i);
  });
  return groups;
}

function lastWithWeight(routes: readonly Route[]): number {
  for (let r = routes.length - 1; r > 0; r--) {
    if ((routes[r] as Route).upTo > (routes[r - 1] as Route).upTo) return r;
  }
  return 0;
}

/**
 * Starts shadow predictions after the primary answered, never awaited by the request: a failure
 * or a slow shadow model only shows in the log. At most {@link MAX_SHADOW_IN_FLIGHT} predictions
 * run at once per step; beyond that a prediction is dropped and counted, and a warning with the
 * running count is logged at most once a second (the inference log is never dropped silently).
 */
class ShadowLauncher {
  inFlight = 0;
  dropped = 0;
  private lastWarned = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly env: CompileEnv,
    private readonly shadows: readonly ServingModel[],
  ) {}

  launch(batch: GraphBatch, context: StepContext): void {
    if (batch.rows.length === 0) return;
    for (const model of this.shadows) {
      if (this.inFlight >= MAX_SHADOW_IN_FLIGHT) {
        this.dropped++;
        this.warnDropped(context);
        continue;
      }
      // The inputs are copied now: later steps go on adding fields to the records.
      const input = inputTable(model.signature, batch);
      this.inFlight++;
      // A native model predicts synchronously inside predict(): starting it on the next turn of
      // the event loop keeps that work out of this request's remaining steps.
      setImmediate(() => {
        void this.predict(model, input, context).finally(() => {
          this.inFlight--;
        });
      });
    }
  }

  private async predict(model: ServingModel, input: Table, context: StepContext): Promise<void> {
    const by = answering(model);
    try {
      const prediction: Prediction = await model.predict(input);
      context.shadow({
        model: by,
        features: rowsOf(input),
        prediction,
        ...(model.signature.classes ? { classes: model.signature.classes } : {}),
      });
    } catch (err) {
      const e = toFerryError(err);
      context.logger.warn(
        {
          endpoint: context.endpoint,
          step: this.env.name,
          model: by.model,
          version: by.version,
          requestId: context.requestId,
          code: e.code,
        },
        `shadow prediction failed (the response is unaffected): ${e.message}`,
      );
    }
  }

  private warnDropped(context: StepContext): void {
    const now = Date.now();
    if (now - this.lastWarned < DROP_WARN_INTERVAL_MS) return;
    this.lastWarned = now;
    context.logger.warn(
      {
        endpoint: context.endpoint,
        step: this.env.name,
        requestId: context.requestId,
        shadowsDropped: this.dropped,
        inFlight: this.inFlight,
      },
      `shadow predictions dropped: ${MAX_SHADOW_IN_FLIGHT} already in flight (${this.dropped} dropped so far); the shadow models are slower than the traffic`,
    );
  }
}

function rowsOf(table: Table): Row[] {
  const rows: Row[] = [];
  for (let i = 0; i < table.rowCount; i++) {
    const row: Row = {};
    for (const column of table.columns) row[column.name] = column.values[i] ?? null;
    rows.push(row);
  }
  return rows;
}

function dedupe(models: readonly AnsweringModel[]): AnsweringModel[] {
  const seen = new Map<string, AnsweringModel>();
  for (const m of models)
    if (!seen.has(`${m.model}:${m.version}`)) seen.set(`${m.model}:${m.version}`, m);
  return [...seen.values()];
}
