/**
 * The ferry.yaml schema of endpoints: serving graphs whose steps run in order over the records of
 * a request. Steps are a discriminated union on `kind`, unknown keys rejected. What a step may
 * read depends on the steps before it, so that is checked when the graph is compiled
 * (`src/serving/graph/compile.ts`), before anything is served.
 */
import { z } from 'zod';
import { duration } from './duration.js';

const name = z
  .string()
  .regex(
    /^[a-z][a-z0-9_]{0,62}$/,
    'a lower-case name of letters, digits and _ (starting with a letter)',
  );
const endpointName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, 'a name of letters, digits, ".", "_" or "-"');
/** A field of the records flowing through the graph (a request field, a feature, an output). */
const field = z.string().min(1).max(128);
const scalar = z.union([z.string(), z.number(), z.boolean(), z.null()]);
const columnType = z.enum(['float', 'int', 'bool', 'string', 'timestamp']);

/** `<model>`, `<model>@<alias>` or `<model>:<version>`. */
export const modelRef = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._-]*(@[A-Za-z0-9._-]+|:\d+)?$/,
    '<model>, <model>@<alias> or <model>:<version>',
  );

/** A subject on the event bus. */
const subject = z
  .string()
  .regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/, 'dot-separated tokens such as ferry.scores.fraud');

/** Micro-batching of concurrent predictions of one model version. */
export const batchingSchema = z.strictObject({
  /** Rows predicted in one call at most; 1 turns batching off. */
  max_batch_rows: z.number().int().min(1).max(100_000),
  /** How long the first queued request waits for others, in microseconds. */
  max_wait_us: z.number().int().min(0).max(1_000_000),
});

/** Keys every step shares: its name in metrics and logs, its time limit, what a failure does. */
const common = {
  /** Shown in metrics, logs and errors; `<kind>` or `<kind>_<n>` by default. */
  name: name.optional(),
  /** The step's time limit; a step that takes longer fails with FERRY_STEP_TIMEOUT. */
  timeout: duration.optional(),
  /**
   * `fail` (default): the request fails. `skip`: the step's fields are left null and the graph
   * goes on. `default`: the step's fields take the values of `default`.
   */
  on_error: z.enum(['fail', 'skip', 'default']).default('fail'),
  /** Values of the step's fields when it fails under `on_error: default`. */
  default: z.record(field, scalar).optional(),
};

/** How a model-like step names what it writes: `<output>` (the label or value), `<output>_score`. */
const output = field.default('prediction');

const modelStep = z.strictObject({
  kind: z.literal('model'),
  ...common,
  model: modelRef,
  output,
});

const weightedModel = z.strictObject({ model: modelRef, weight: z.number().positive() });

const routerStep = z.discriminatedUnion('mode', [
  z.strictObject({
    kind: z.literal('router'),
    mode: z.literal('split'),
    ...common,
    /** Each record goes to one route, with probability weight / total weight. */
    routes: z.array(weightedModel).min(2),
    /** Sticky assignment: records with the same value of this field always take the same route. */
    key: field.optional(),
    output,
  }),
  z.strictObject({
    kind: z.literal('router'),
    mode: z.literal('canary'),
    ...common,
    model: modelRef,
    canary: modelRef,
    /** Share of records that go to the canary, 0 to 1. */
    share: z.number().min(0).max(1),
    key: field.optional(),
    output,
  }),
  z.strictObject({
    kind: z.literal('router'),
    mode: z.literal('shadow'),
    ...common,
    model: modelRef,
    /** Each also gets a copy of every request; its answers are logged, never returned. */
    shadow: z.array(modelRef).min(1),
    output,
  }),
]);

const ensembleStep = z.strictObject({
  kind: z.literal('ensemble'),
  ...common,
  /** mean of values or class probabilities, the weighted mean, or the majority label. */
  method: z.enum(['mean', 'weighted', 'vote']),
  models: z.array(z.union([modelRef, weightedModel])).min(2),
  output,
});

export const endpointStepSchema = z.union([
  z.strictObject({
    kind: z.literal('enrich'),
    ...common,
    vector: name,
  }),
  z.strictObject({
    kind: z.literal('transform'),
    ...common,
    /** New or replaced fields, each an expression of the data-preparation language. */
    set: z.record(field, z.string().min(1)),
  }),
  modelStep,
  routerStep,
  ensembleStep,
  z.strictObject({
    kind: z.literal('custom'),
    ...common,
    /** A module (.js, .mjs or .ts), relative to the project, exporting a step function. */
    module: z.string().min(1),
    /** The export to call; `default` by default. */
    export: z.string().min(1).default('default'),
    /** Fields the function adds to each record, with their types. */
    outputs: z.record(field, columnType).default({}),
  }),
  z.strictObject({
    kind: z.literal('output'),
    ...common,
    /** Each result record is published here (awaited: a stream input acknowledges only after). */
    subject,
    /** Fields published; the endpoint's response fields by default. */
    fields: z.array(field).min(1).optional(),
  }),
]);

export const endpointSchema = z.strictObject({
  name: endpointName,
  description: z.string().optional(),
  owner: z.string().optional(),
  /**
   * Types of request fields that steps read and no model takes as an input (a model's inputs are
   * typed by its signature): a transform over a field only the request sends needs it here.
   */
  inputs: z.record(field, columnType).default({}),
  steps: z.array(endpointStepSchema).min(1),
  /**
   * Fields each result holds. By default: the fields written by the last model-like step
   * (model, router, ensemble) and by every step after it, plus `model` and `model_version`.
   */
  response: z.array(field).min(1).optional(),
  /** Read requests from a subject of the event bus too (durable consumer on NATS). */
  stream: z
    .strictObject({
      subject,
      /** Results are published here, each message's after its records ran; acknowledged after. */
      reply_subject: subject.optional(),
      /** Queue group: replicas split the messages. `ferry-endpoint-<name>` by default. */
      group: z.string().min(1).optional(),
      /** Deliveries of a message that keeps failing before it is dead-lettered. */
      max_deliver: z.number().int().min(1).default(5),
    })
    .optional(),
  /** The time limit of the whole graph for one request. */
  timeout: duration.prefault('1s'),
});

export type EndpointSpec = z.output<typeof endpointSchema>;
export type EndpointStepSpec = z.output<typeof endpointStepSchema>;
export type StepKind = EndpointStepSpec['kind'];
export type BatchingSpec = z.output<typeof batchingSchema>;
