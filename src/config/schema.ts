/**
 * The schema of `ferry.yaml`: one typed spec for the whole project. Keys are snake_case in YAML
 * and stay so in the parsed spec, so that an error path printed to the user is the path they
 * wrote. Each backend is one arm of a discriminated union on `type`; unknown keys are rejected
 * everywhere, so a typo is an error rather than a silently ignored setting.
 */
import { z } from 'zod';
import {
  recipeSchema,
  sourceSchema,
  stepSchema,
  validationSchema,
  type StepSpec as PrepStepSpec,
} from './data-schema.js';
import { duration } from './duration.js';
import { batchingSchema, endpointSchema } from './endpoint-schema.js';

export { duration, parseDuration } from './duration.js';

const name = z
  .string()
  .regex(
    /^[a-z][a-z0-9_]{0,62}$/,
    'a lower-case name of letters, digits and _ (starting with a letter)',
  );
const modelName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, 'a name of letters, digits, ".", "_" or "-"');

const metadataStore = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('sqlite'), path: z.string().default('metadata.db') }),
]);
const artifactStore = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('local'), path: z.string().default('artifacts') }),
]);
const offlineStore = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('parquet'),
    path: z.string().default('offline'),
    /** Small files of one tier in a folder before they are merged in the background. */
    compact_after_files: z.number().int().min(2).default(32),
  }),
]);
const redisUrl = z
  .string()
  .regex(/^rediss?:\/\//, 'a Redis URL such as redis://127.0.0.1:6379/0 (rediss:// for TLS)');
const onlineStore = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('sqlite'), path: z.string().default('online.db') }),
  z.strictObject({
    type: z.literal('redis'),
    /** One Redis server (standalone or behind a proxy). */
    url: redisUrl.default('redis://127.0.0.1:6379'),
    /** Seed nodes of a Redis Cluster; when given, `url` is ignored and keys are hash-tagged per entity. */
    cluster: z.array(redisUrl).min(1).optional(),
    /** Prefix of every key Ferry writes, so that several projects can share one Redis. */
    key_prefix: z
      .string()
      .regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'letters, digits, "_", ".", ":" or "-"')
      .default('ferry'),
  }),
]);
const eventBus = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('memory'),
    max_pending: z.number().int().positive().default(10_000),
  }),
  z.strictObject({
    type: z.literal('nats'),
    servers: z
      .array(z.string().regex(/^(nats|tls):\/\/|^[^:/]+:\d+$/, 'nats://host:port or host:port'))
      .min(1)
      .default(['nats://127.0.0.1:4222']),
    /** JetStream stream that holds Ferry's subjects (`ferry.>`); created when missing. */
    stream: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,64}$/, 'letters, digits, "_" or "-"')
      .default('FERRY'),
    /**
     * Carry every subject under `<prefix>.` (so `ferry.ingest.tx` travels as `<prefix>.ferry.ingest.tx`),
     * letting several projects share one NATS server. Without it, subjects travel as they are.
     */
    subject_prefix: z
      .string()
      .regex(
        /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/,
        'dot-separated tokens of letters, digits, "_" or "-"',
      )
      .optional(),
    /** Messages delivered to a subscriber and not yet acknowledged, at most. */
    max_pending: z.number().int().positive().default(10_000),
    /** How long a delivered message may stay unacknowledged before it is delivered again. */
    ack_wait: duration.prefault('30s'),
  }),
]);

const source = sourceSchema;

const featureType = z.enum(['float', 'int', 'bool', 'string']);
const aggregationOp = z.enum(['count', 'sum', 'mean', 'min', 'max']);

/**
 * Why a preparation step cannot run when a feature set is ingested, or null when it can. Ingestion
 * applies the same steps to a file and, one batch at a time, to a stream, so a step may look only
 * at the row in hand: steps that learn from the rows they see (their meaning would change from
 * batch to batch), need the whole table, or shape training data belong to recipes.
 * @example featureSetStepRefusal({ step: 'scale', columns: ['amount'], method: 'standard' })
 */
export function featureSetStepRefusal(step: PrepStepSpec): string | null {
  const recipe =
    'it belongs in a training recipe (recipes:), which saves what it learned with the model';
  switch (step.step) {
    case 'fill':
      return step.with === 'constant'
        ? null
        : `fill with ${step.with} learns its value from the rows it sees, so at ingestion it would change meaning from batch to batch; ` +
            `fill with a constant here (with: constant, value: ...), or fill with ${step.with} in a training recipe`;
    case 'encode':
      return `encode learns its categories from training rows; ${recipe}`;
    case 'scale':
      return `scale learns its parameters from training rows; ${recipe}`;
    case 'clip':
      return `clip learns its bounds (quantiles) from training rows; ${recipe}`;
    case 'dedupe':
      return 'dedupe needs the whole table, which streaming ingestion never has; ingestion already stores each event (entity key, timestamp, event_id) once';
    case 'merge':
      return 'merge joins a whole other source, which streaming ingestion cannot do row by row; make that source a feature set and join both in a feature vector, or merge in a recipe';
    case 'split':
      return 'split divides rows into train, validation and test, a training concern; split in a recipe';
    default:
      return null;
  }
}

const featureSet = z.strictObject({
  name,
  entity: name,
  timestamp: z.string().min(1),
  source: source.optional(),
  /**
   * Row-wise preparation applied to each source row before validation, in batch and streaming
   * ingestion alike: select, drop, rename, cast, fill (constant), drop_missing, filter, derive
   * (see {@link featureSetStepRefusal}). Features and aggregations may name the columns they make.
   */
  steps: z.array(stepSchema).default([]),
  /**
   * Rules checked on the prepared rows: the name of a rule set under `validations:`, or one given
   * here (`{ policy, rules }`). Rows it sets aside go to `quarantine/<feature set>`.
   */
  validation: z.union([z.string().min(1), validationSchema.omit({ name: true })]).optional(),
  description: z.string().optional(),
  owner: z.string().optional(),
  tags: z.array(z.string().min(1)).default([]),
  features: z.array(z.strictObject({ name, type: featureType })).min(1),
  aggregations: z
    .array(
      z.strictObject({
        column: name,
        ops: z.array(aggregationOp).min(1),
        windows: z
          .array(z.string().regex(/^\d+(s|m|h|d)$/, 'a window such as 10m, 1h or 1d'))
          .min(1),
      }),
    )
    .default([]),
  /**
   * Types of the JSON fields of streamed events (`POST /v1/feature-sets/<name>/events`,
   * `ferry.ingest.<name>`), column → float, int, bool, string or timestamp. A stream row is read
   * as: the entity key (string), the timestamp (ISO 8601 text or UTC milliseconds), `event_id`
   * (string), each feature by its type, then the source's `schema:`, then this map (later wins).
   * Declare here the raw fields that steps or rules read and that are not features; other fields
   * of an event are ignored.
   */
  event_schema: z
    .record(z.string().min(1), z.enum(['float', 'int', 'bool', 'string', 'timestamp']))
    .optional(),
  ttl: duration.prefault('7d'),
  /**
   * Events kept online beyond the largest window. 0 serves live traffic exactly; replays and
   * backtests that look up past times need more.
   */
  online_history: duration.prefault('0s'),
});

const featureRef = z
  .string()
  .regex(/^[a-z][a-z0-9_]*\.([a-z][a-z0-9_]*|\*)$/, '<feature_set>.<feature> or <feature_set>.*');

const featureVector = z.strictObject({
  name,
  description: z.string().optional(),
  owner: z.string().optional(),
  tags: z.array(z.string().min(1)).default([]),
  /**
   * `<feature_set>.<feature>`, `<feature_set>.*`, or `{ feature: <feature_set>.<feature>, alias: <name> }`
   * to output a feature under another name (needed when two sets have features of one name).
   */
  features: z
    .array(
      z.union([
        featureRef,
        z.strictObject({
          feature: featureRef.refine((r) => !r.endsWith('.*'), 'one feature, not <set>.*'),
          alias: name,
        }),
      ]),
    )
    .min(1),
  label: z
    .strictObject({ source, column: z.string().min(1), timestamp: z.string().min(1) })
    .optional(),
});

export const projectSchema = z.strictObject({
  project: modelName.default('ferry'),
  /** Folder for embedded state, relative to the project root. */
  state_dir: z.string().default('.ferry'),
  metadata: metadataStore.default({ type: 'sqlite', path: 'metadata.db' }),
  artifacts: artifactStore.default({ type: 'local', path: 'artifacts' }),
  offline_store: offlineStore.prefault({ type: 'parquet' }),
  online_store: onlineStore.prefault({ type: 'sqlite' }),
  event_bus: eventBus.prefault({ type: 'memory' }),
  server: z
    .strictObject({
      host: z.string().default('127.0.0.1'),
      port: z.number().int().min(0).max(65535).default(8080),
      body_limit_bytes: z
        .number()
        .int()
        .positive()
        .default(4 * 1024 * 1024),
      max_rows_per_request: z.number().int().positive().default(10_000),
      /** Requests being answered at once per process; more answer 503 FERRY_OVERLOADED. */
      max_in_flight: z.number().int().positive().default(1024),
      /** How often a server re-reads aliases and swaps to the versions they point to. */
      refresh_interval: duration.prefault('2s'),
      /** Micro-batching of concurrent predictions, for every model unless `models` says otherwise. */
      batching: batchingSchema
        .extend({
          /** Per registered model name. */
          models: z.record(z.string(), batchingSchema).default({}),
        })
        .prefault({ max_batch_rows: 1, max_wait_us: 0 }),
    })
    .prefault({}),
  monitoring: z
    .strictObject({
      /** How often the inference log buffer is written to the offline store. */
      flush_interval: duration.prefault('1s'),
      /** Rows held in memory before further rows spill to disk. */
      max_buffered_rows: z.number().int().positive().default(100_000),
    })
    .default({ flush_interval: 1000, max_buffered_rows: 100_000 }),
  log_level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Named data sources, for recipes and merges. */
  sources: z
    .array(
      sourceSchema.refine(
        (s) => s.name !== undefined && /^[a-z][a-z0-9_]*$/.test(s.name),
        'a source here needs a lower-case `name`',
      ),
    )
    .default([]),
  validations: z.array(validationSchema).default([]),
  recipes: z.array(recipeSchema).default([]),
  entities: z
    .array(
      z.strictObject({
        name,
        keys: z.array(z.string().min(1)).min(1).max(1, 'one key column per entity for now'),
      }),
    )
    .default([]),
  feature_sets: z.array(featureSet).default([]),
  feature_vectors: z.array(featureVector).default([]),
  endpoints: z.array(endpointSchema).default([]),
});

export type ProjectInput = z.input<typeof projectSchema>;
export type ProjectSpec = z.output<typeof projectSchema>;
export type FeatureSetSpec = ProjectSpec['feature_sets'][number];
export type FeatureVectorSpec = ProjectSpec['feature_vectors'][number];
export type { EndpointSpec, EndpointStepSpec, BatchingSpec } from './endpoint-schema.js';
export type SourceSpec = z.output<typeof source>;
export type AggregationOp = z.output<typeof aggregationOp>;
export type FeatureRefSpec = FeatureVectorSpec['features'][number];

/** A feature vector's entry, taken apart: the set, the feature (or `*`), and the output name if renamed. */
export interface FeatureRef {
  readonly set: string;
  readonly feature: string;
  readonly alias: string | null;
}

/**
 * @example parseFeatureRef('tx.amount') // { set: 'tx', feature: 'amount', alias: null }
 * @example parseFeatureRef({ feature: 'tx.amount', alias: 'tx_amount' })
 */
export function parseFeatureRef(ref: FeatureRefSpec): FeatureRef {
  const text = typeof ref === 'string' ? ref : ref.feature;
  const dot = text.indexOf('.');
  return {
    set: text.slice(0, dot),
    feature: text.slice(dot + 1),
    alias: typeof ref === 'string' ? null : ref.alias,
  };
}
export type OnlineStoreSpec = ProjectSpec['online_store'];
export type EventBusSpec = ProjectSpec['event_bus'];
