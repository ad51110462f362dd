/**
 * The feature store: batch ingestion of feature sets into the offline store (history) and the
 * online store (latest values and recent events), online lookups of feature vectors, and
 * point-in-time-correct training sets.
 *
 * Semantics (DESIGN.md, "Semantics that must hold"), the same online and offline:
 * - a plain feature as of T is the value of the entity's latest event with ts <= T and
 *   T - ts < ttl, else null; among events of one entity at the same ts the one with the greatest
 *   `event_id` is the latest (a content rule, so the answer never depends on ingestion order);
 * - a window aggregation as of T covers the events with T - window < ts <= T (`windows.ts`).
 * An event is identified by (entity key, timestamp, `event_id` column if the source has one):
 * ingesting the same event twice stores it once.
 *
 * Ingestion: read → the feature set's steps → its rule set → key, timestamp and type checks →
 * offline and online writes, through `prepareEvents` (`ingestion.ts`), the one path every way of
 * ingesting shares. Rows a step filters out are counted; rows set aside go to
 * `quarantine/<feature_set>` with the rule and reason (`ferry data quarantine show`).
 *
 * Throughput of streamed batches (`ingestEvents`), without giving up any of the above:
 * - group commit: ingestions of one set run one at a time; the batches that arrive meanwhile wait
 *   as one group, stored when their turn comes by one duplicate check, one online write and one
 *   offline append, exactly as if stored one after another in the order asked (each caller gets
 *   its own result, and is answered once both writes of the group are done);
 * - duplicates are found in memory for recent events: the identities of a set's stored events
 *   from some time on are kept (`KnownEvents`: read once from the offline store, then those stored
 *   here added) for as long as the offline store's `versionOfOthers` says nobody else wrote there
 *   (another process's appends or compactions, a drop). A batch with older events, or after such
 *   a change, reads the offline store, which stays the truth.
 *
 * Offline layout: `features/<feature_set>` holds every event, partitioned by the UTC date of its
 * timestamp, with columns <entity key> (string), <timestamp>, `event_id` (string, '' when the
 * source has none) and the features.
 *
 * Known limits:
 * - the online store keeps only the newest record per entity and the events of the last
 *   (largest window + the feature set's `online_history`), so a lookup as of a time before an entity's newest
 *   event answers null for its plain features and for windows reaching past what is kept;
 *   at or after the newest event (live traffic) it always equals the training set;
 * - ingestions of one feature set are serialised within this process only: two processes
 *   ingesting the same set at once could both store an event they each saw as new;
 * - what is kept of a set's stored events counts every append through this FeatureStore's
 *   offline store object as its own: a second FeatureStore appending to the same set through the
 *   same object (a workspace has one) would go unseen;
 * - the quarantined rows of a group's batches are appended batch by batch (each keeps its source
 *   and run), so a stream where most batches have rejected rows gains less from group commit;
 * - a batch file is prepared in memory as one batch (row objects), so its size is bounded by
 *   memory; rule sets see the whole file, as their table-level rules need.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import path from 'node:path';
import type { ValidationSpec } from '../config/data-schema.js';
import {
  parseFeatureRef,
  type FeatureSetSpec,
  type FeatureVectorSpec,
  type ProjectSpec,
} from '../config/schema.js';
import {
  getColumn,
  schemaOf,
  tableToRows,
  type Column,
  type ColumnSchema,
  type ColumnType,
  type Row,
  type Scalar,
  type Table,
} from '../core/table.js';
import type { JsonObject } from '../core/json.js';
import { readSource, readTable } from '../data/read.js';
import { quarantineTableName, writeQuarantine } from '../data/validate/quarantine.js';
import type { ResolveReference } from '../data/validate/reference.js';
import { withQuarantine, type ValidationReport } from '../data/validate/report.js';
import { writeTable } from '../data/write.js';
import { FerryError } from '../errors/index.js';
import { castKey, castTimestamp, INVALID, showValue } from './cast.js';
import { eventInputSchema } from './event-schema.js';
import {
  compileIngestion,
  EVENT_ID_COLUMN,
  eventIdentity,
  prepareEvents,
  ruleSetOf,
  type IngestionPlan,
  type PreparedEvents,
} from './ingestion.js';
import type { OfflineStore } from './offline/offline-store.js';
import type { OnlineEvent, OnlineRecord, OnlineStore, OnlineWrite } from './online/online-store.js';
import { aggregationsOf, computeAggregations, type WindowAggregation } from './windows.js';

export { EVENT_ID_COLUMN };
/**
 * Kept beside the feature values of an online latest record, so that a later ingestion can
 * apply the same tie rule as the offline store. Feature names start with a letter, so it
 * cannot clash with one.
 */
const LATEST_EVENT_ID = '_event_id';
/** Rows appended to the online store per call, so progress can be reported on large files. */
const ONLINE_BATCH = 10_000;
/**
 * Events of streamed batches stored together at most (group commit): batches waiting for the
 * set's running ingestion join one group until it holds this many.
 */
const GROUP_MAX_EVENTS = 100_000;
/**
 * Identities of a feature set's stored events kept in memory at most (about 100 bytes each), so
 * that streamed batches need no offline read to find their duplicates (`unseen`).
 */
const KNOWN_MAX_EVENTS = 250_000;
/** Batches a set waits at most before trying again to keep its stored events, when they were too many. */
const KNOWN_MAX_BACKOFF = 256;
/** Events further back than this from the newest one kept are forgotten. */
const KNOWN_HORIZON_MS = 6 * 3_600_000;
/** Width of the time slices that known identities are forgotten by, oldest first. */
const KNOWN_SLICE_MS = 1_000;
/** Events `materialize` reads from the offline store at most per read (one day, or a slice of it). */
const MATERIALIZE_CHUNK = 200_000;
const DAY_MS = 86_400_000;

export interface FeatureStoreOptions {
  readonly spec: ProjectSpec;
  /** Folder that relative `source` paths of ferry.yaml start from. */
  readonly projectDir: string;
  readonly offline: OfflineStore;
  readonly online: OnlineStore;
  /**
   * History kept online beyond a feature set's largest window (ms, default 0). Online lookups
   * as of a past time T are exact only while T - window reaches no further back than the
   * entity's newest event minus (largest window + this); replays and backtests can raise it.
   */
  readonly onlineHistoryMs?: number;
  /** Resolves `model:` references of distribution rules in feature sets' rule sets. */
  readonly resolveReference?: ResolveReference;
  /**
   * Called after every stored batch (both writes done, or nothing new): governance records it
   * (`catalog.ts`). A failure is reported through the ingestion's progress and does not undo it.
   */
  readonly onIngested?: (event: IngestedEvent) => Promise<void> | void;
  /** Registers a built training set and returns its dataset id (`catalog.ts`). */
  readonly onDataset?: (event: DatasetEvent) => Promise<string>;
}

/** One stored ingestion batch, as {@link FeatureStoreOptions.onIngested} sees it. */
export interface IngestedEvent {
  readonly featureSet: string;
  /** The file, `the given table`, or what a stream calls its batches. */
  readonly origin: string;
  /** `batch`: one file or table (`ingest`); `stream`: one of many small batches of a stream. */
  readonly mode: 'batch' | 'stream';
  readonly result: IngestResult;
  /** The new events written, in the offline layout (key, timestamp, `event_id`, features). */
  readonly rows: Table;
  readonly keyColumn: string;
  readonly timestampColumn: string;
}

/** A training set just built, as {@link FeatureStoreOptions.onDataset} sees it. */
export interface DatasetEvent {
  readonly vector: string;
  /** Where the label rows came from: a file path, or `the given label table`. */
  readonly labels: { readonly origin: string; readonly file: string | null };
  readonly table: Table;
  /** Absolute path the training set was written to, if any. */
  readonly out: string | null;
}

/** A training set and the id it was registered under (null without a registering hook). */
export interface BuiltDataset {
  readonly table: Table;
  readonly dataset: string | null;
  /** The entity key column(s) and the label time column of `table` (not features for a model). */
  readonly keyColumns: readonly string[];
  readonly timestampColumn: string;
  /** The vector's label column, if it has a label. */
  readonly labelColumn: string | null;
}

export interface MaterializeOptions {
  /** Only events with ts >= since (UTC ms), added to what is online; without it, all history after clearing the set online. */
  readonly since?: number;
  /** Events read from the offline store per read, at most, when a day has more (default 200,000). */
  readonly chunkRows?: number;
  readonly onProgress?: (message: string) => void;
}

/** What a materialization read from the offline store and replayed online. */
export interface MaterializeResult {
  readonly featureSet: string;
  /** Whether the set was cleared online first (no `since`). */
  readonly cleared: boolean;
  readonly since: number | null;
  /** Offline events replayed. */
  readonly events: number;
  /** Distinct entities among them. */
  readonly entities: number;
  /** Time ranges read one at a time. */
  readonly chunks: number;
}

export interface IngestOptions {
  /** A file to read instead of the feature set's `source` (relative to the working directory). */
  readonly source?: string;
  /** Rows to ingest directly, instead of any file. */
  readonly table?: Table;
  readonly onProgress?: (message: string) => void;
}

export interface IngestEventsOptions {
  /** Names where the events came from, in the quarantine and in messages (default: `events of '<set>'`). */
  readonly origin?: string;
  /** Row number of the first event, so rejected rows of a stream's batches can be told apart (default 1). */
  readonly firstRow?: number;
  readonly onProgress?: (message: string) => void;
}

export interface RejectedRow {
  /** 1-based position of the row among the source's data rows (the header is not counted). */
  readonly row: number;
  /** The rule it failed: one of the rule set's, or `entity_key`, `timestamp`, `type(<column>)`. */
  readonly rule: string;
  readonly reason: string;
}

/** Where every row read went: read = filtered + rejected + duplicates + written. */
export interface IngestResult {
  /** Rows read from the source. */
  readonly read: number;
  /** Rows a filter or drop_missing step removed (counted, not quarantined). */
  readonly filtered: number;
  /** Rows written to `quarantine/<feature_set>`, by rule. */
  readonly quarantined: Readonly<Record<string, number>>;
  /** Events skipped because they were already stored (or repeated within the source). */
  readonly duplicates: number;
  /** New events stored offline and online. */
  readonly written: number;
  /** The quarantined rows, in row order, each with its rule and reason. */
  readonly rejected: RejectedRow[];
  /** The feature set's rule set report (warnings included), or null when it has none. */
  readonly validation: ValidationReport | null;
}

export interface TrainingSetOptions {
  /** Label rows from this file (relative to the working directory) instead of the vector's label source. */
  readonly labels?: string;
  /** Label rows given directly. */
  readonly table?: Table;
  /** Also write the training set here (.parquet, .csv or .jsonl; relative to the working directory). */
  readonly out?: string;
}

/** A prepared batch waiting to be stored, with where it came from and whom to tell. */
interface StoreBatch {
  readonly prepared: PreparedEvents;
  readonly origin: string;
  readonly say: (message: string) => void;
}

/** Streamed batches of one feature set stored by one write of each store (group commit). */
interface BatchGroup {
  readonly batches: StoreBatch[];
  /** Accepted events of its batches. */
  events: number;
  /** Each batch's result, in order, once the group is stored. */
  stored: Promise<IngestResult[]>;
}

/** What one feature set contributes to a feature vector. */
interface SetSelection {
  readonly plan: SetPlan;
  /** Plain features: `name` in the feature set, `output` in the vector (its alias or the name). */
  readonly plain: { readonly name: string; readonly output: string; readonly type: ColumnType }[];
  readonly aggregations: (WindowAggregation & { readonly output: string })[];
}

interface VectorPlan {
  readonly spec: FeatureVectorSpec;
  readonly sets: SetSelection[];
  /** Output features in the vector's order, by bare name. */
  readonly features: { readonly name: string; readonly type: ColumnType }[];
  readonly keyColumns: string[];
}

interface SetPlan {
  readonly spec: FeatureSetSpec;
  readonly keyColumn: string;
  readonly offlineTable: string;
  readonly aggregations: WindowAggregation[];
  /** Feature columns that aggregations read, the only values online events need. */
  readonly aggregatedColumns: string[];
  readonly retainMs: number;
  readonly ruleSet: ValidationSpec | null;
}

export class FeatureStore {
  private readonly spec: ProjectSpec;
  private readonly projectDir: string;
  private readonly offline: OfflineStore;
  private readonly online: OnlineStore;
  private readonly onlineHistoryMs: number;
  private readonly resolveReference: ResolveReference | undefined;
  private readonly onIngested: FeatureStoreOptions['onIngested'];
  private readonly onDataset: FeatureStoreOptions['onDataset'];
  private readonly plans = new Map<string, SetPlan>();
  private readonly ingestionPlans = new Map<string, IngestionPlan>();
  /** Per feature set, its steps and rules compiled for streamed events (`event-schema.ts`). */
  private readonly eventPlans = new Map<string, IngestionPlan>();
  private readonly vectors = new Map<string, VectorPlan>();
  /** Per feature set, the tail of its ingestions: one at a time, so two never both see an event as new. */
  private readonly ingesting = new Map<string, Promise<unknown>>();
  /** Per feature set, the identities of its recent stored events, when the offline store can vouch for them. */
  private readonly known = new Map<string, KnownEvents>();
  /** Per feature set whose stored events were too many to keep: batches to wait before trying again. */
  private readonly keepBackoff = new Map<string, { wait: number; skip: number }>();
  /** Per feature set, the group of streamed batches waiting for its turn, which new batches join. */
  private readonly groups = new Map<string, BatchGroup>();

  constructor(options: FeatureStoreOptions) {
    this.spec = options.spec;
    this.projectDir = options.projectDir;
    this.offline = options.offline;
    this.online = options.online;
    this.onlineHistoryMs = Math.max(0, options.onlineHistoryMs ?? 0);
    this.resolveReference = options.resolveReference;
    this.onIngested = options.onIngested;
    this.onDataset = options.onDataset;
  }

  /**
   * Reads a feature set's source, applies its steps and rules, stores its new events offline and
   * online, quarantines the rows it sets aside, and reports where every row went. Under a rule
   * set with policy `fail`, a failing rule throws FERRY_VALIDATION_FAILED and nothing is written.
   * @example const { written, quarantined } = await store.ingest('transactions');
   */
  async ingest(featureSetName: string, options: IngestOptions = {}): Promise<IngestResult> {
    const plan = this.setPlan(featureSetName);
    return this.inTurn(plan.spec.name, () => this.ingestNow(plan, options));
  }

  /**
   * Ingests streamed events (JSON objects: `POST /v1/feature-sets/<name>/events`,
   * `ferry.ingest.<name>`) exactly as {@link ingest} ingests a file: the same steps, rules, type
   * checks, quarantine, duplicate detection and both writes, serialised with the set's other
   * ingestions. Events are read by the set's declared event schema (`event-schema.ts`); fields it
   * does not name are ignored. The batch is not a table, so table-level rules (row_count,
   * null_share, distribution) are not checked and `unique` looks within the batch only. Under
   * policy `fail` a failing batch throws FERRY_VALIDATION_FAILED and nothing is written.
   * @example const r = await store.ingestEvents('transactions', [{ card_id: 'c1', ts: '2026-10-01T12:00:00Z', amount: 12.5 }]);
   */
  async ingestEvents(
    featureSetName: string,
    events: readonly JsonObject[],
    options: IngestEventsOptions = {},
  ): Promise<IngestResult> {
    const plan = this.setPlan(featureSetName);
    const origin = options.origin ?? `events of '${plan.spec.name}'`;
    // Taken without awaiting once compiled, so that a batch joins the queue in the order asked.
    const ingestion = this.eventPlans.get(plan.spec.name) ?? (await this.eventPlan(plan, origin));
    // Prepared before queueing: it needs no store, and a batch failing under `fail` waits for nothing.
    const prepared = prepareEvents(ingestion, textColumnsAsText(ingestion, events), {
      firstRow: options.firstRow ?? 1,
    });
    const batch: StoreBatch = { prepared, origin, say: options.onProgress ?? (() => undefined) };
    // Group commit: batches that arrive while the set's previous ingestion runs wait in one
    // group, stored by one write of each store when their turn comes; each gets its own result.
    const name = plan.spec.name;
    const size = prepared.accepted.keys.length;
    let group = this.groups.get(name);
    if (group === undefined || group.events + size > GROUP_MAX_EVENTS) {
      const created: BatchGroup = { batches: [], events: 0, stored: Promise.resolve([]) };
      created.stored = this.inTurn(name, () => {
        // From here on, batches that arrive form the next group.
        if (this.groups.get(name) === created) this.groups.delete(name);
        return this.storeEvents(plan, created.batches, 'stream');
      });
      this.groups.set(name, created);
      group = created;
    }
    const index = group.batches.push(batch) - 1;
    group.events += size;
    return (await group.stored)[index] as IngestResult;
  }

  /**
   * Runs `task` once every earlier ingestion (or materialization) of the set has settled, so
   * that two never both see an event as new. A waiting group of streamed batches is closed
   * first: batches that come later are stored after `task`, in the order they were asked.
   */
  private async inTurn<T>(name: string, task: () => Promise<T>): Promise<T> {
    this.groups.delete(name);
    const previous = this.ingesting.get(name) ?? Promise.resolve();
    const run = previous.catch(() => undefined).then(task);
    this.ingesting.set(name, run);
    try {
      return await run;
    } finally {
      if (this.ingesting.get(name) === run) this.ingesting.delete(name);
    }
  }

  /** The feature set compiled for streamed events (cached: their schema is declared, never guessed). */
  private async eventPlan(plan: SetPlan, origin: string): Promise<IngestionPlan> {
    const cached = this.eventPlans.get(plan.spec.name);
    if (cached) return cached;
    const input = eventInputSchema(plan.spec, plan.keyColumn, plan.ruleSet);
    const compiled = await compileIngestion(plan.spec, plan.keyColumn, plan.ruleSet, input, {
      tableRules: false,
      baseDir: this.projectDir,
      origin,
      ...(this.resolveReference ? { resolveReference: this.resolveReference } : {}),
    });
    this.eventPlans.set(plan.spec.name, compiled);
    return compiled;
  }

  private async ingestNow(plan: SetPlan, options: IngestOptions): Promise<IngestResult> {
    const say = options.onProgress ?? (() => undefined);
    const { table, origin } = await this.sourceTable(plan.spec, options, say);
    say(`read ${table.rowCount} rows from ${origin}`);
    const ingestion = await this.ingestionPlan(plan, schemaOf(table), origin);
    // The whole file is one batch, so table-level rules judge the file and `fail` stops it whole.
    const prepared = prepareEvents(ingestion, tableToRows(table));
    const [result] = await this.storeEvents(plan, [{ prepared, origin, say }], 'batch');
    return result as IngestResult;
  }

  /**
   * Writes prepared batches of one feature set as one: the rejected rows of each to
   * `quarantine/<feature set>`, then the events no earlier batch or ingestion stored, online and
   * then offline, one write of each store for all of them. Every ingestion path ends here, after
   * {@link prepareEvents}; a group of streamed batches (group commit) is stored as if they were
   * stored one after another in order: an event of two batches is written for the first and a
   * duplicate of the second. Resolves with each batch's result, in order, once both writes are
   * done; a failed write rejects for every batch of the group.
   */
  private async storeEvents(
    plan: SetPlan,
    batches: readonly StoreBatch[],
    mode: IngestedEvent['mode'],
  ): Promise<IngestResult[]> {
    const fs = plan.spec;
    const sayAll = (message: string): void => batches.forEach((b) => b.say(message));
    const validations: (ValidationReport | null)[] = [];
    for (const { prepared, origin, say } of batches) {
      const { rejected, report } = prepared;
      let validation = report.validation;
      if (rejected.length > 0) {
        await writeQuarantine({ offline: this.offline, name: fs.name, source: origin }, rejected, {
          runId: validation?.runId ?? randomUUID(),
          at: validation?.checkedAt ?? Date.now(),
        });
        say(`quarantined ${rejected.length} rows (ferry data quarantine show ${fs.name})`);
        if (validation !== null && validation.rows.quarantined > 0)
          validation = withQuarantine(
            validation,
            quarantineTableName(fs.name),
            validation.rows.quarantined,
          );
      }
      if (report.filtered > 0) say(`${report.filtered} rows removed by the feature set's steps`);
      validations.push(validation);
    }
    const { events, owners, identities } = mergeBatches(batches);

    // Events already stored offline are skipped; only the batch's time range needs looking at.
    // A file's events may reach far back: only a stream's are worth starting to keep.
    const fresh = await this.unseen(plan, events.times, identities, mode === 'stream');
    const written = new Array<number>(batches.length).fill(0);
    for (const i of fresh) {
      const owner = owners[i] as number;
      written[owner] = (written[owner] as number) + 1;
    }
    const results = batches.map(({ prepared }, b): IngestResult => {
      const { rejected, report } = prepared;
      const mine = written[b] as number;
      return {
        read: report.read,
        filtered: report.filtered,
        quarantined: report.rejectedByRule,
        duplicates: report.duplicates + prepared.accepted.keys.length - mine,
        written: mine,
        rejected: rejected.map((r) => ({ row: r.row, rule: r.rule, reason: r.reason })),
        validation: validations[b] ?? null,
      };
    });
    if (fresh.length === 0) {
      sayAll('no new events');
      await this.ingested(plan, batches, mode, results, null, []);
      return results;
    }
    const pick = <T>(values: readonly T[]): T[] => fresh.map((i) => values[i] as T);
    const batch = {
      keys: pick(events.keys),
      times: pick(events.times),
      eventIds: pick(events.eventIds),
      features: events.features.map((values) => pick(values)),
    };

    const offlineTable: Table = {
      columns: [
        { name: plan.keyColumn, type: 'string', values: batch.keys },
        { name: fs.timestamp, type: 'timestamp', values: batch.times },
        { name: EVENT_ID_COLUMN, type: 'string', values: batch.eventIds },
        ...fs.features.map((f, i) => ({
          name: f.name,
          type: f.type,
          values: batch.features[i] as Scalar[],
        })),
      ],
      rowCount: fresh.length,
    };
    // Online first: if the offline append then fails, a retry finds the events missing offline
    // and writes both again (online writes are idempotent); the reverse order could leave
    // events offline that a retry would skip and never put online.
    try {
      await this.writeOnline(plan, batch, sayAll);
      await this.offline.append(plan.offlineTable, offlineTable, { timeColumn: fs.timestamp });
    } catch (error) {
      // The append may have published some of its files: what is known of the set is no longer sure.
      this.known.delete(fs.name);
      throw error;
    }
    const known = this.known.get(fs.name);
    if (known !== undefined && !known.remember(batch.times, pick(identities)))
      this.known.delete(fs.name);
    sayAll(`stored ${fresh.length} new events offline (${plan.offlineTable})`);
    await this.ingested(
      plan,
      batches,
      mode,
      results,
      offlineTable,
      fresh.map((i) => owners[i] as number),
    );
    return results;
  }

  /**
   * Tells {@link FeatureStoreOptions.onIngested} about each stored batch, with the rows written for
   * it (`owners`: the batch of each row of `written`); its failure is reported, not thrown.
   */
  private async ingested(
    plan: SetPlan,
    batches: readonly StoreBatch[],
    mode: IngestedEvent['mode'],
    results: readonly IngestResult[],
    written: Table | null,
    owners: readonly number[],
  ): Promise<void> {
    if (!this.onIngested) return;
    const fs = plan.spec;
    const empty: Table = {
      columns: [
        { name: plan.keyColumn, type: 'string', values: [] },
        { name: fs.timestamp, type: 'timestamp', values: [] },
        { name: EVENT_ID_COLUMN, type: 'string', values: [] },
        ...fs.features.map((f) => ({ name: f.name, type: f.type, values: [] })),
      ],
      rowCount: 0,
    };
    // The rows of `written` of each batch.
    const rowsOf = batches.map((): number[] => []);
    owners.forEach((owner, i) => rowsOf[owner]?.push(i));
    for (const [b, { origin, say }] of batches.entries()) {
      let rows = empty;
      if (written !== null && batches.length === 1) rows = written;
      else if (written !== null) {
        const mine = rowsOf[b] as number[];
        rows = {
          columns: written.columns.map((c) => ({
            ...c,
            values: mine.map((i) => c.values[i] ?? null),
          })),
          rowCount: mine.length,
        };
      }
      try {
        await this.onIngested({
          featureSet: fs.name,
          origin,
          mode,
          result: results[b] as IngestResult,
          rows,
          keyColumn: plan.keyColumn,
          timestampColumn: fs.timestamp,
        });
      } catch (error) {
        say(
          `warning: the ingestion was stored but its record was not: ${error instanceof Error ? error.message : String(error)}`,
        );
      }
    }
  }

  /** The feature set compiled for rows of `input` (cached: one compile per set and schema). */
  private async ingestionPlan(
    plan: SetPlan,
    input: readonly ColumnSchema[],
    origin: string,
  ): Promise<IngestionPlan> {
    const id = `${plan.spec.name}\u0000${JSON.stringify(input)}`;
    const cached = this.ingestionPlans.get(id);
    if (cached) return cached;
    const compiled = await compileIngestion(plan.spec, plan.keyColumn, plan.ruleSet, input, {
      tableRules: true,
      baseDir: this.projectDir,
      origin,
      ...(this.resolveReference ? { resolveReference: this.resolveReference } : {}),
    });
    this.ingestionPlans.set(id, compiled);
    return compiled;
  }

  /**
   * The entity key column that online lookups of a vector take (its sets share one entity).
   * @example store.onlineKeyColumn('card_history') // 'card_id'
   */
  onlineKeyColumn(vectorName: string): string {
    const vector = this.vectorPlan(vectorName);
    if (vector.keyColumns.length !== 1) {
      throw new FerryError(
        'FERRY_ARGUMENT_INVALID',
        `feature vector '${vectorName}' spans entities with keys ${vector.keyColumns.join(', ')}; online lookups take one entity's keys`,
      );
    }
    return vector.keyColumns[0] as string;
  }

  /**
   * The features a vector gives, by output name and type, in the vector's order.
   * @example store.vectorFeatures('card_history') // [{ name: 'amount_sum_1h', type: 'float' }, ...]
   */
  vectorFeatures(
    vectorName: string,
  ): readonly { readonly name: string; readonly type: ColumnType }[] {
    return this.vectorPlan(vectorName).features;
  }

  /**
   * The feature vector of each key as of `at` (default now), from the online store: plain
   * features from the latest event (null when older than the ttl, or newer than `at`),
   * aggregations computed exactly from the stored events. An aggregation the online store can
   * no longer compute exactly at a past `at` (its events were pruned) is null, never a guess.
   * @example const [row] = await store.getOnlineVector('card_history', ['c0042']);
   */
  async getOnlineVector(
    vectorName: string,
    keys: readonly string[],
    at: number = Date.now(),
  ): Promise<Row[]> {
    const vector = this.vectorPlan(vectorName);
    if (vector.keyColumns.length !== 1) {
      throw new FerryError(
        'FERRY_ARGUMENT_INVALID',
        `feature vector '${vectorName}' spans entities with keys ${vector.keyColumns.join(', ')}; online lookups take one entity's keys`,
      );
    }
    const keyColumn = vector.keyColumns[0] as string;
    const rows: Row[] = keys.map((key) => ({ [keyColumn]: key }));
    await Promise.all(
      vector.sets.map(async (selection) => {
        const { plan } = selection;
        const ttl = plan.spec.ttl;
        const longest = Math.max(0, ...selection.aggregations.map((a) => a.windowMs));
        // Both reads are issued together, so a networked store answers them in one round trip.
        const [latest, events] = await Promise.all([
          this.online.readLatest(plan.spec.name, keys),
          selection.aggregations.length > 0
            ? this.online.readEventsMany(plan.spec.name, keys, at - longest, at)
            : null,
        ]);
        keys.forEach((_, i) => {
          const row = rows[i] as Row;
          const record = latest[i] ?? null;
          const fresh = record !== null && record.ts <= at && at - record.ts < ttl;
          for (const f of selection.plain)
            row[f.output] = fresh ? ((record as OnlineRecord).values[f.name] ?? null) : null;
          if (events === null) return;
          // The store may have pruned events with ts < newest - retainMs; a window needs those with
          // ts > at - window, all still there when (timestamps being integer ms) the bound below holds.
          const exact = (a: WindowAggregation): boolean =>
            record === null || at - a.windowMs + 1 >= record.ts - plan.retainMs;
          const computable = selection.aggregations.filter(exact);
          const values = computeAggregations(events[i] ?? [], computable, at);
          for (const a of selection.aggregations) row[a.output] = values[a.name] ?? null;
        });
      }),
    );
    return rows.map((row) => orderRow(row, keyColumn, vector));
  }

  /**
   * Joins label rows (entity key, label time, label) to the vector's features as of each label's
   * time, in the offline store: plain features from the latest event with ts <= T and
   * T - ts < ttl, aggregations over T - window < ts <= T. Never a value from the future.
   * Other columns of the label rows (values known at request time) are kept.
   * Columns: entity key(s), timestamp, other label columns, the features (bare names), the label.
   * @example const train = await store.buildTrainingSet('card_history', { out: 'train.parquet' });
   */
  async buildTrainingSet(vectorName: string, options: TrainingSetOptions = {}): Promise<Table> {
    return (await this.buildDataset(vectorName, options)).table;
  }

  /**
   * {@link buildTrainingSet}, and the id the training set was registered under as a dataset
   * (through {@link FeatureStoreOptions.onDataset}; null without it).
   * @example const { table, dataset } = await store.buildDataset('card_history');
   */
  async buildDataset(vectorName: string, options: TrainingSetOptions = {}): Promise<BuiltDataset> {
    const vector = this.vectorPlan(vectorName);
    const label = vector.spec.label;
    let labels: Table;
    let origin: string;
    let labelFile: string | null = null;
    if (options.table) {
      labels = options.table;
      origin = 'the given label table';
    } else {
      const file = options.labels
        ? path.resolve(options.labels)
        : label
          ? path.resolve(this.projectDir, label.source.path)
          : null;
      if (!file) {
        throw new FerryError(
          'FERRY_ARGUMENT_INVALID',
          `feature vector '${vectorName}' has no label source; add 'label:' to it in ferry.yaml or pass a labels file`,
        );
      }
      labels = await readTable(file, { allowEmpty: true });
      origin = file;
      labelFile = file;
    }
    const tsColumn = label?.timestamp ?? (vector.sets[0] as SetSelection).plan.spec.timestamp;
    const labelColumn = label?.column;
    const required = [...vector.keyColumns, tsColumn, ...(labelColumn ? [labelColumn] : [])];
    const missing = required.filter((name) => !getColumn(labels, name));
    if (missing.length > 0) {
      throw new FerryError(
        'FERRY_COLUMN_UNKNOWN',
        `label rows of '${vectorName}' need column(s) ${missing.map((m) => `'${m}'`).join(', ')}, which ${origin} lacks; ` +
          `its columns: ${labels.columns.map((c) => c.name).join(', ')}`,
      );
    }
    const featureNames = new Set(vector.features.map((f) => f.name));
    const clash = labels.columns.find((c) => featureNames.has(c.name));
    if (clash) {
      throw new FerryError(
        'FERRY_ARGUMENT_INVALID',
        `label column '${clash.name}' of ${origin} has the name of a feature of '${vectorName}'; rename or drop it`,
      );
    }

    // Every label row needs its keys and time: a row without them cannot be joined as of a time.
    const times: number[] = new Array<number>(labels.rowCount);
    const keyValues = vector.keyColumns.map(() => new Array<string>(labels.rowCount));
    const tsIn = getColumn(labels, tsColumn) as Column;
    const bad: string[] = [];
    for (let r = 0; r < labels.rowCount; r++) {
      const ts = castTimestamp(tsIn.values[r]);
      if (ts === null || ts === INVALID)
        bad.push(`row ${r + 1}: timestamp '${tsColumn}' is ${showValue(tsIn.values[r])}`);
      else times[r] = ts;
      vector.keyColumns.forEach((k, j) => {
        const raw = (getColumn(labels, k) as Column).values[r];
        const key = castKey(raw);
        if (key === null || key === INVALID)
          bad.push(`row ${r + 1}: key '${k}' is ${showValue(raw)}`);
        else (keyValues[j] as string[])[r] = key;
      });
    }
    if (bad.length > 0) {
      throw new FerryError(
        'FERRY_DATA_UNREADABLE',
        `${bad.length} label row(s) of ${origin} lack a usable key or time: ${bad.slice(0, 5).join('; ')}${bad.length > 5 ? '; ...' : ''}; fix or remove them`,
      );
    }

    const featureColumns = new Map<string, Scalar[]>();
    for (const f of vector.features)
      featureColumns.set(f.name, new Array<Scalar>(labels.rowCount).fill(null));
    if (labels.rowCount > 0) await this.joinOffline(vector, keyValues, times, featureColumns);

    const keySet = new Set(vector.keyColumns);
    const columns: Column[] = [
      ...vector.keyColumns.map((k) => getColumn(labels, k) as Column),
      { name: tsColumn, type: 'timestamp', values: times },
      ...labels.columns.filter(
        (c) => !keySet.has(c.name) && c.name !== tsColumn && c.name !== labelColumn,
      ),
      ...vector.features.map((f) => ({
        name: f.name,
        type: f.type,
        values: featureColumns.get(f.name) as Scalar[],
      })),
      ...(labelColumn ? [getColumn(labels, labelColumn) as Column] : []),
    ];
    const result: Table = { columns, rowCount: labels.rowCount };
    const out = options.out ? path.resolve(options.out) : null;
    if (out) await writeTable(result, out);
    const dataset = this.onDataset
      ? await this.onDataset({
          vector: vectorName,
          labels: { origin, file: labelFile },
          table: result,
          out,
        })
      : null;
    return {
      table: result,
      dataset,
      keyColumns: vector.keyColumns,
      timestampColumn: tsColumn,
      labelColumn: labelColumn ?? null,
    };
  }

  /**
   * Rebuilds a feature set's online state from its offline history: without `since`, clears the
   * set online and replays every event; with it, replays the events with ts >= since on top of
   * what is online. Events go through the same online write as ingestion (same tie rule, same
   * retention), so a full rebuild ends in the state ingestion left. Reads one UTC day at a time
   * (a day of more than `chunkRows` events in equal time slices), so memory is bounded by a
   * chunk, not the history (a slice can exceed it only when events bunch within one day). Runs in turn with the set's ingestions; lookups made
   * while a full rebuild runs see the set partly rebuilt.
   * @example const { events } = await store.materialize('transactions', { since: Date.now() - 2 * 86_400_000 });
   */
  async materialize(
    featureSetName: string,
    options: MaterializeOptions = {},
  ): Promise<MaterializeResult> {
    const plan = this.setPlan(featureSetName);
    const since = options.since ?? null;
    if (since !== null && !Number.isFinite(since)) {
      throw new FerryError(
        'FERRY_ARGUMENT_INVALID',
        `since must be a time in UTC milliseconds, got ${since}`,
      );
    }
    return this.inTurn(plan.spec.name, () =>
      this.materializeNow(
        plan,
        since,
        Math.max(1, options.chunkRows ?? MATERIALIZE_CHUNK),
        options.onProgress ?? (() => undefined),
      ),
    );
  }

  private async materializeNow(
    plan: SetPlan,
    since: number | null,
    chunkRows: number,
    say: (message: string) => void,
  ): Promise<MaterializeResult> {
    const fs = plan.spec;
    if (since === null) {
      await this.online.deleteFeatureSet(fs.name);
      say(`cleared '${fs.name}' online`);
    }
    const result = { featureSet: fs.name, cleared: since === null, since };
    if (!(await this.offline.hasTable(plan.offlineTable))) {
      say(`'${fs.name}' has no offline history yet: nothing to materialize`);
      return { ...result, events: 0, entities: 0, chunks: 0 };
    }
    const ts = `epoch_ms(${ident(fs.timestamp)})`;
    const where = since === null ? '' : `WHERE ${ts} >= ${Math.floor(since)}`;
    const table = `{{${plan.offlineTable}}}`;
    const [days, distinct] = await Promise.all([
      this.offline.query(
        `SELECT CAST(floor(${ts} / ${DAY_MS}) AS BIGINT) AS day, count(*) AS n FROM ${table} ${where} GROUP BY 1 ORDER BY 1`,
      ),
      this.offline.query(
        `SELECT count(DISTINCT ${ident(plan.keyColumn)}) AS n FROM ${table} ${where}`,
      ),
    ]);
    const entities = Number((getColumn(distinct, 'n') as Column).values[0] ?? 0);
    const dayValues = (getColumn(days, 'day') as Column).values;
    const counts = (getColumn(days, 'n') as Column).values;
    const ranges: [number, number][] = [];
    let total = 0;
    for (let d = 0; d < days.rowCount; d++) {
      const n = Number(counts[d]);
      total += n;
      const dayStart = Number(dayValues[d]) * DAY_MS;
      const start = since === null ? dayStart : Math.max(dayStart, Math.floor(since));
      const end = dayStart + DAY_MS;
      const step = Math.ceil((end - start) / Math.max(1, Math.ceil(n / chunkRows)));
      for (let s = start; s < end; s += step) ranges.push([s, Math.min(end, s + step)]);
    }
    say(`replaying ${total} events of ${entities} entities in ${ranges.length} chunk(s)`);
    let done = 0;
    for (const [start, end] of ranges) {
      const chunk = await this.offline.read(plan.offlineTable, {
        timeColumn: fs.timestamp,
        start,
        end,
      });
      if (chunk.rowCount === 0) continue;
      const values = (name: string): Scalar[] =>
        getColumn(chunk, name)?.values ?? new Array<Scalar>(chunk.rowCount).fill(null);
      await this.writeOnline(
        plan,
        {
          keys: values(plan.keyColumn).map((k) => String(k)),
          times: values(fs.timestamp) as number[],
          eventIds: values(EVENT_ID_COLUMN).map((e) => (e === null ? '' : String(e))),
          features: fs.features.map((f) => values(f.name)),
        },
        () => undefined,
      );
      done += chunk.rowCount;
      say(`materialized ${done} of ${total} events (${Math.floor((done / total) * 100)}%)`);
    }
    return { ...result, events: done, entities, chunks: ranges.length };
  }

  /* ------------------------------------------------------------------ ingestion helpers */

  /**
   * The rows to ingest: a given table, a file given on the command line, or the feature set's
   * configured source read with its options and `schema:` overrides. Lines that could not be
   * parsed are not rows, so they are counted and named here rather than silently missing.
   */
  private async sourceTable(
    fs: FeatureSetSpec,
    options: IngestOptions,
    say: (message: string) => void,
  ): Promise<{ table: Table; origin: string }> {
    if (options.table) return { table: options.table, origin: 'the given table' };
    if (options.source) {
      const file = path.resolve(options.source);
      return { table: await readTable(file), origin: file };
    }
    if (!fs.source) {
      throw new FerryError(
        'FERRY_ARGUMENT_INVALID',
        `feature set '${fs.name}' has no source; add 'source:' to it in ferry.yaml or pass a file to ingest`,
      );
    }
    const origin = path.resolve(this.projectDir, fs.source.path);
    const read = await readSource(fs.source, this.projectDir);
    if (read.malformed.count > 0) {
      const lines = read.malformed.examples
        .slice(0, 3)
        .map((m) => `line ${m.line}: ${m.message}`)
        .join('; ');
      say(`${read.malformed.count} malformed line(s) in ${origin} were not read (${lines})`);
    }
    return { table: read.table, origin };
  }

  /**
   * Indices of the batch's events that the offline store does not hold yet. The offline store is
   * the truth; reading it for every batch would cost a query each, so the identities of a set's
   * recent events are kept in memory ({@link KnownEvents}) when the store can say whether anyone
   * else changed them (`versionOfOthers`): a batch whose events are all at or after the start of
   * what is kept, while that version holds, is checked in memory. Any other batch reads the
   * store: a late batch its own time range, a first or stale one (with `keep`) everything from
   * its start on, which is then kept (unless there is too much of it).
   */
  private async unseen(
    plan: SetPlan,
    times: readonly number[],
    identities: readonly string[],
    keep: boolean,
  ): Promise<number[]> {
    const all = identities.map((_, i) => i);
    if (identities.length === 0) return all;
    const name = plan.spec.name;
    const table = plan.offlineTable;
    let start = Infinity;
    let end = -Infinity;
    for (const t of times) {
      if (t < start) start = t;
      if (t > end) end = t;
    }
    const isNew = (stored: { has(identity: string): boolean }) => (i: number) =>
      !stored.has(identities[i] as string);
    const versionOf = this.offline.versionOfOthers?.bind(this.offline);
    const known = this.known.get(name);
    if (versionOf !== undefined && known !== undefined) {
      if ((await versionOf(table, known.versionSince)) !== known.version) {
        this.known.delete(name);
      } else if (start >= known.from) {
        return all.filter(isNew(known.identities));
      } else {
        // Older than what is kept: read the batch's range, and keep what is kept.
        return all.filter(isNew(await this.storedIdentities(plan, start, end + 1)));
      }
    }
    const backoff = this.keepBackoff.get(name);
    const waiting = backoff !== undefined && backoff.skip > 0;
    if (waiting) backoff.skip--;
    if (versionOf === undefined || waiting || !keep) {
      return all.filter(isNew(await this.storedIdentities(plan, start, end + 1)));
    }
    // Taken before the read: a file another process adds meanwhile moves the version, so the
    // next batch reads again rather than missing it.
    const version = await versionOf(table, start);
    const stored = await this.storedIdentities(plan, start, Infinity, KNOWN_MAX_EVENTS + 1);
    if (stored.size > KNOWN_MAX_EVENTS) {
      // Too many to keep (a batch of the past, far behind the newest stored events): try again
      // after 1, 2, 4... batches, each read meanwhile for its own range only, as this one is.
      const wait = Math.min(KNOWN_MAX_BACKOFF, 2 * (backoff?.wait ?? 0.5));
      this.keepBackoff.set(name, { wait, skip: wait });
      return all.filter(isNew(await this.storedIdentities(plan, start, end + 1)));
    }
    this.keepBackoff.delete(name);
    this.known.set(name, new KnownEvents(start, version, stored));
    return all.filter(isNew(stored));
  }

  /**
   * The identities (by {@link eventIdentity}, each with its time) of the set's stored events with
   * start <= ts < end, at most `limit` of them (more means the read stopped there).
   */
  private async storedIdentities(
    plan: SetPlan,
    start: number,
    end: number,
    limit?: number,
  ): Promise<Map<string, number>> {
    const identities = new Map<string, number>();
    if (!(await this.offline.hasTable(plan.offlineTable))) return identities;
    const ts = ident(plan.spec.timestamp);
    const stored = await this.offline.query(
      `SELECT ${ident(plan.keyColumn)} AS k, ${ts} AS t, ${ident(EVENT_ID_COLUMN)} AS e ` +
        `FROM {{${plan.offlineTable}}} WHERE ${ts} >= $1${end < Infinity ? ` AND ${ts} < $2` : ''}` +
        (limit !== undefined ? ` LIMIT ${limit}` : ''),
      end < Infinity ? [start, end] : [start],
    );
    const [k, t, e] = stored.columns as [Column, Column, Column];
    for (let i = 0; i < stored.rowCount; i++) {
      const time = t.values[i] as number;
      identities.set(eventIdentity(String(k.values[i]), time, String(e.values[i] ?? '')), time);
    }
    return identities;
  }

  private async writeOnline(
    plan: SetPlan,
    batch: { keys: string[]; times: number[]; eventIds: string[]; features: Scalar[][] },
    say: (message: string) => void,
  ): Promise<void> {
    const fs = plan.spec;
    const n = batch.keys.length;
    // The newest event of each key in the batch, by (ts, event_id).
    const newest = new Map<string, number>();
    for (let i = 0; i < n; i++) {
      const key = batch.keys[i] as string;
      const j = newest.get(key);
      if (
        j === undefined ||
        isAfter(
          batch.times[i] as number,
          batch.eventIds[i] as string,
          batch.times[j] as number,
          batch.eventIds[j] as string,
        )
      ) {
        newest.set(key, i);
      }
    }
    const candidates = [...newest.entries()];
    const current = await this.online.readLatest(
      fs.name,
      candidates.map(([key]) => key),
    );
    const writes: OnlineWrite[] = [];
    candidates.forEach(([key, i], c) => {
      const ts = batch.times[i] as number;
      const eventId = batch.eventIds[i] as string;
      const existing = current[c] ?? null;
      if (
        existing &&
        !isAfter(ts, eventId, existing.ts, String(existing.values[LATEST_EVENT_ID] ?? ''))
      ) {
        if (!(existing.ts === ts && String(existing.values[LATEST_EVENT_ID] ?? '') === eventId))
          return;
      }
      const values: Row = { [LATEST_EVENT_ID]: eventId };
      fs.features.forEach(
        (f, col) => (values[f.name] = (batch.features[col] as Scalar[])[i] ?? null),
      );
      writes.push({ key, ts, values });
    });
    for (let offset = 0; offset < writes.length; offset += ONLINE_BATCH) {
      await this.online.writeLatest(fs.name, writes.slice(offset, offset + ONLINE_BATCH));
    }
    say(`updated the latest values of ${writes.length} entities online`);

    if (plan.aggregations.length === 0) return;
    const columns = plan.aggregatedColumns.map((name) => ({
      name,
      values: batch.features[fs.features.findIndex((f) => f.name === name)] as Scalar[],
    }));
    for (let offset = 0; offset < n; offset += ONLINE_BATCH) {
      const events: OnlineEvent[] = [];
      for (let i = offset; i < Math.min(n, offset + ONLINE_BATCH); i++) {
        const values: Row = {};
        for (const c of columns) values[c.name] = c.values[i] ?? null;
        events.push({
          key: batch.keys[i] as string,
          ts: batch.times[i] as number,
          eventId: batch.eventIds[i] as string,
          values,
        });
      }
      await this.online.appendEvents(fs.name, events, plan.retainMs);
    }
    say(`appended ${n} events online for window aggregations`);
  }

  /* ------------------------------------------------------------------ point-in-time join */

  /** Fills `out` (feature name → values by label row) from the offline store, one query per feature set. */
  private async joinOffline(
    vector: VectorPlan,
    keyValues: string[][],
    times: number[],
    out: Map<string, Scalar[]>,
  ): Promise<void> {
    const scratch = `scratch/pit_${randomBytes(8).toString('hex')}`;
    const n = times.length;
    const spine: Table = {
      columns: [
        { name: '_row', type: 'int', values: times.map((_, i) => i) },
        { name: '_t', type: 'timestamp', values: times },
        ...keyValues.map((values, j) => ({ name: `_k${j}`, type: 'string' as const, values })),
      ],
      rowCount: n,
    };
    await this.offline.append(scratch, spine);
    try {
      for (const selection of vector.sets) {
        const { plan } = selection;
        if (!(await this.offline.hasTable(plan.offlineTable))) {
          // Nothing ingested yet: plain features stay null, counts and sums are 0.
          for (const a of selection.aggregations) {
            if (a.op === 'count' || a.op === 'sum') (out.get(a.output) as Scalar[]).fill(0);
          }
          continue;
        }
        const keyIndex = vector.keyColumns.indexOf(plan.keyColumn);
        const spineSql = `SELECT _row, _k${keyIndex} AS _k, epoch_ms(_t) AS _t FROM {{${scratch}}}`;
        const results: Table[] = [];
        if (selection.plain.length > 0)
          results.push(await this.offline.query(plainSql(plan, selection, spineSql)));
        if (selection.aggregations.length > 0)
          results.push(await this.offline.query(aggregationSql(plan, selection, spineSql)));
        for (const result of results) {
          const rowIds = (getColumn(result, '_row') as Column).values;
          for (const column of result.columns) {
            const target = out.get(column.name);
            if (!target) continue;
            for (let i = 0; i < result.rowCount; i++)
              target[rowIds[i] as number] = column.values[i] ?? null;
          }
        }
      }
    } finally {
      await this.offline.dropTable(scratch);
    }
  }

  /* ------------------------------------------------------------------ plans */

  private setPlan(name: string): SetPlan {
    const cached = this.plans.get(name);
    if (cached) return cached;
    const fs = this.spec.feature_sets.find((f) => f.name === name);
    if (!fs) {
      throw new FerryError(
        'FERRY_FEATURE_SET_UNKNOWN',
        `feature set '${name}' is not defined; defined: ${this.spec.feature_sets.map((f) => f.name).join(', ') || '(none)'}`,
      );
    }
    const entity = this.spec.entities.find((e) => e.name === fs.entity);
    const keyColumn = entity?.keys[0];
    if (!keyColumn) {
      throw new FerryError(
        'FERRY_CONFIG_INVALID',
        `feature set '${name}': entity '${fs.entity}' is not defined in ferry.yaml`,
      );
    }
    const reserved = new Set([keyColumn, fs.timestamp, EVENT_ID_COLUMN]);
    const clash = fs.features.find((f) => reserved.has(f.name));
    if (clash) {
      throw new FerryError(
        'FERRY_CONFIG_INVALID',
        `feature set '${name}': feature '${clash.name}' has the name of its entity key, timestamp or '${EVENT_ID_COLUMN}' column; those are stored with every event already, so remove it from features`,
      );
    }
    const aggregations = aggregationsOf(fs);
    const plan: SetPlan = {
      spec: fs,
      keyColumn,
      offlineTable: `features/${fs.name}`,
      aggregations,
      aggregatedColumns: [...new Set(aggregations.map((a) => a.column))],
      retainMs:
        Math.max(0, ...aggregations.map((a) => a.windowMs)) +
        Math.max(fs.online_history, this.onlineHistoryMs),
      ruleSet: ruleSetOf(this.spec, fs),
    };
    this.plans.set(name, plan);
    return plan;
  }

  private vectorPlan(name: string): VectorPlan {
    const cached = this.vectors.get(name);
    if (cached) return cached;
    const spec = this.spec.feature_vectors.find((v) => v.name === name);
    if (!spec) {
      throw new FerryError(
        'FERRY_FEATURE_VECTOR_UNKNOWN',
        `feature vector '${name}' is not defined; defined: ${this.spec.feature_vectors.map((v) => v.name).join(', ') || '(none)'}`,
      );
    }
    const sets = new Map<string, SetSelection>();
    const features: VectorPlan['features'] = [];
    const outputs = new Map<string, string>();
    for (const entry of spec.features) {
      const ref = parseFeatureRef(entry);
      const plan = this.setPlan(ref.set);
      let selection = sets.get(ref.set);
      if (!selection) {
        selection = { plan, plain: [], aggregations: [] };
        sets.set(ref.set, selection);
      }
      const names =
        ref.feature === '*'
          ? [...plan.spec.features.map((f) => f.name), ...plan.aggregations.map((a) => a.name)]
          : [ref.feature];
      for (const n of names) {
        const output = ref.alias ?? n;
        const source = `${ref.set}.${n}`;
        const taken = outputs.get(output);
        if (taken === source) continue;
        if (taken !== undefined) {
          throw new FerryError(
            'FERRY_CONFIG_INVALID',
            `feature vector '${name}': output name '${output}' is taken by both '${taken}' and '${source}'; give one an alias ({ feature: ${source}, alias: <name> })`,
          );
        }
        const plain = plan.spec.features.find((f) => f.name === n);
        const aggregation = plan.aggregations.find((a) => a.name === n);
        if (plain) {
          selection.plain.push({ name: n, output, type: plain.type });
          features.push({ name: output, type: plain.type });
        } else if (aggregation) {
          selection.aggregations.push({ ...aggregation, output });
          features.push({ name: output, type: aggregation.type });
        } else {
          const defined = [
            ...plan.spec.features.map((f) => f.name),
            ...plan.aggregations.map((a) => a.name),
          ];
          throw new FerryError(
            'FERRY_FEATURE_UNKNOWN',
            `feature '${source}' is not defined; '${ref.set}' defines: ${defined.join(', ')}`,
          );
        }
        outputs.set(output, source);
      }
    }
    const selections = [...sets.values()];
    const keyColumns = [...new Set(selections.map((s) => s.plan.keyColumn))];
    const plan: VectorPlan = { spec, sets: selections, features, keyColumns };
    this.vectors.set(name, plan);
    return plan;
  }
}

/**
 * What a FeatureStore knows of a feature set's stored events: the identity of every event with
 * ts >= `from` that the offline store held when `version` (of what others wrote there from
 * `versionSince` on) was taken, and of every event the FeatureStore stored itself since. While
 * the store's version is unchanged, that is exactly what the store holds from `from` on. The
 * oldest are forgotten (`from` moves up, a time slice at a time) beyond {@link KNOWN_MAX_EVENTS}
 * or {@link KNOWN_HORIZON_MS} before the newest.
 */
class KnownEvents {
  /** The start of what is known: every stored event at or after it, none before. */
  from: number;
  readonly identities = new Set<string>();
  /** Identities by slice of time (ts / KNOWN_SLICE_MS, rounded down), to forget the oldest first. */
  private readonly slices = new Map<number, string[]>();
  private newest = -Infinity;
  /** The oldest slice held (Infinity when none). */
  private oldest = Infinity;

  constructor(
    readonly versionSince: number,
    readonly version: string,
    stored: ReadonlyMap<string, number>,
  ) {
    this.from = versionSince;
    for (const [identity, ts] of stored) this.add(identity, ts);
    this.forget();
  }

  /**
   * Adds events just stored, then forgets the oldest beyond the limits. False once `from` has
   * moved to a later UTC date than `versionSince`: the version then covers dates nothing known
   * needs any more, and is better taken again.
   */
  remember(times: readonly number[], identities: readonly string[]): boolean {
    identities.forEach((identity, i) => this.add(identity, times[i] as number));
    this.forget();
    return Math.floor(this.from / DAY_MS) <= Math.floor(this.versionSince / DAY_MS);
  }

  private add(identity: string, ts: number): void {
    if (ts < this.from || this.identities.has(identity)) return;
    this.identities.add(identity);
    if (ts > this.newest) this.newest = ts;
    const slice = Math.floor(ts / KNOWN_SLICE_MS);
    if (slice < this.oldest) this.oldest = slice;
    const list = this.slices.get(slice);
    if (list === undefined) this.slices.set(slice, [identity]);
    else list.push(identity);
  }

  private forget(): void {
    const horizon = Math.floor((this.newest - KNOWN_HORIZON_MS) / KNOWN_SLICE_MS);
    if (this.identities.size <= KNOWN_MAX_EVENTS && this.oldest >= horizon) return;
    // Down to three quarters of the limit, so that the slices are not sorted again at every batch.
    const target = this.identities.size > KNOWN_MAX_EVENTS ? (KNOWN_MAX_EVENTS * 3) / 4 : Infinity;
    const slices = [...this.slices.keys()].sort((a, b) => a - b);
    this.oldest = Infinity;
    for (const slice of slices) {
      if (this.identities.size <= target && slice >= horizon) {
        this.oldest = slice;
        break;
      }
      for (const identity of this.slices.get(slice) ?? []) this.identities.delete(identity);
      this.slices.delete(slice);
      this.from = Math.max(this.from, (slice + 1) * KNOWN_SLICE_MS);
    }
  }
}

/* -------------------------------------------------------------------- SQL */

function ident(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

const SQL_TYPES: Record<ColumnType, string> = {
  float: 'DOUBLE',
  int: 'BIGINT',
  bool: 'BOOLEAN',
  string: 'VARCHAR',
  timestamp: 'TIMESTAMP',
};

/**
 * Plain features as of each label time: the latest event with ts <= T (ASOF join; among events
 * at the same ts, the greatest event_id), kept only when T - ts < ttl.
 */
function plainSql(plan: SetPlan, selection: SetSelection, spineSql: string): string {
  const fs = plan.spec;
  const cols = selection.plain.map((f) => ident(f.name));
  const events = `
    SELECT ${ident(plan.keyColumn)} AS _k, epoch_ms(${ident(fs.timestamp)}) AS _ts, ${cols.join(', ')}
    FROM {{${plan.offlineTable}}}
    QUALIFY row_number() OVER (PARTITION BY ${ident(plan.keyColumn)}, ${ident(fs.timestamp)} ORDER BY ${ident(EVENT_ID_COLUMN)} DESC) = 1`;
  const picks = selection.plain.map(
    (f) =>
      `CAST(CASE WHEN l._t - e._ts < ${fs.ttl} THEN e.${ident(f.name)} END AS ${SQL_TYPES[f.type]}) AS ${ident(f.output)}`,
  );
  return `WITH l AS (${spineSql}), e AS (${events})
    SELECT l._row, ${picks.join(', ')}
    FROM l ASOF LEFT JOIN e ON l._k = e._k AND l._t >= e._ts`;
}

/** Window aggregations as of each label time: a range join on the longest window, then one filter per window. */
function aggregationSql(plan: SetPlan, selection: SetSelection, spineSql: string): string {
  const fs = plan.spec;
  const columns = [...new Set(selection.aggregations.map((a) => a.column))];
  const longest = Math.max(...selection.aggregations.map((a) => a.windowMs));
  const typeOf = (column: string): ColumnType =>
    fs.features.find((f) => f.name === column)?.type ?? 'float';
  const picks = selection.aggregations.map((a) => {
    const filter = `FILTER (WHERE e._ts > l._t - ${a.windowMs})`;
    const raw = `e.${ident(a.column)}`;
    const type = typeOf(a.column);
    const numeric = type === 'bool' ? `CAST(${raw} AS INTEGER)` : raw;
    // Float sums depend on the order of the additions: add oldest first, as online lookups do
    // (windows.ts), so that both give the same bits. Integer sums are exact in any order.
    const sum =
      type === 'float'
        ? `sum(${numeric} ORDER BY e._ts, e._eid) ${filter}`
        : `sum(${numeric}) ${filter}`;
    let expr: string;
    switch (a.op) {
      case 'count':
        expr = `count(${raw}) ${filter}`;
        break;
      case 'sum':
        expr = `coalesce(${sum}, 0)`;
        break;
      case 'mean':
        expr = `CAST(${sum} AS DOUBLE) / nullif(count(${raw}) ${filter}, 0)`;
        break;
      case 'min':
      case 'max':
        expr = `${a.op}(${raw}) ${filter}`;
        break;
    }
    return `CAST(${expr} AS ${SQL_TYPES[a.type]}) AS ${ident(a.output)}`;
  });
  const events = `SELECT ${ident(plan.keyColumn)} AS _k, epoch_ms(${ident(fs.timestamp)}) AS _ts, ${ident(EVENT_ID_COLUMN)} AS _eid, ${columns.map(ident).join(', ')} FROM {{${plan.offlineTable}}}`;
  return `WITH l AS (${spineSql}), e AS (${events})
    SELECT l._row, ${picks.join(', ')}
    FROM l LEFT JOIN e ON e._k = l._k AND e._ts <= l._t AND e._ts > l._t - ${longest}
    GROUP BY l._row`;
}

/* -------------------------------------------------------------------- helpers */

/**
 * The accepted events of `batches` as one batch, in order, each identity once (the first batch
 * that has it keeps it), with the batch each event came from and its identity.
 */
function mergeBatches(batches: readonly StoreBatch[]): {
  events: PreparedEvents['accepted'];
  owners: number[];
  identities: string[];
} {
  if (batches.length === 1) {
    const { accepted } = (batches[0] as StoreBatch).prepared;
    return {
      events: accepted,
      owners: new Array<number>(accepted.keys.length).fill(0),
      identities: accepted.keys.map((key, i) =>
        eventIdentity(key, accepted.times[i] as number, accepted.eventIds[i] as string),
      ),
    };
  }
  const first = (batches[0] as StoreBatch).prepared.accepted;
  const events = {
    keys: [] as string[],
    times: [] as number[],
    eventIds: [] as string[],
    features: first.features.map(() => [] as Scalar[]),
  };
  const owners: number[] = [];
  const identities: string[] = [];
  const seen = new Set<string>();
  batches.forEach(({ prepared: { accepted } }, b) => {
    for (let i = 0; i < accepted.keys.length; i++) {
      const key = accepted.keys[i] as string;
      const ts = accepted.times[i] as number;
      const eventId = accepted.eventIds[i] as string;
      const identity = eventIdentity(key, ts, eventId);
      if (seen.has(identity)) continue;
      seen.add(identity);
      identities.push(identity);
      events.keys.push(key);
      events.times.push(ts);
      events.eventIds.push(eventId);
      accepted.features.forEach((values, f) =>
        (events.features[f] as Scalar[]).push(values[i] ?? null),
      );
      owners.push(b);
    }
  });
  return { events, owners, identities };
}

/** Whether event (ts, eventId) comes after (otherTs, otherId) under the tie rule. */
function isAfter(ts: number, eventId: string, otherTs: number, otherId: string): boolean {
  return ts > otherTs || (ts === otherTs && eventId > otherId);
}

function orderRow(row: Row, keyColumn: string, vector: VectorPlan): Row {
  const out: Row = { [keyColumn]: row[keyColumn] ?? null };
  for (const f of vector.features) out[f.name] = row[f.name] ?? null;
  return out;
}

/**
 * Events with JSON numbers and booleans in text columns (an entity key sent as 42) turned into
 * their text, as a file's numeric key column is read; copies only the events that need it.
 */
function textColumnsAsText(
  plan: IngestionPlan,
  events: readonly JsonObject[],
): readonly JsonObject[] {
  const text = plan.input.filter((c) => c.type === 'string').map((c) => c.name);
  return events.map((event) => {
    let copy: JsonObject | undefined;
    for (const name of text) {
      const value = event[name];
      if (typeof value === 'number' || typeof value === 'boolean') {
        copy ??= { ...event };
        copy[name] = String(value);
      }
    }
    return copy ?? event;
  });
}
