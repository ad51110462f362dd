/**
 * The feature catalog: governance of feature sets and feature vectors, kept as documents of the
 * MetadataStore. It records
 * - versions: each feature set and vector has a version that changes when its definition
 *   changes, and only then (`sync`, called when a workspace opens);
 * - ingestions: counts and a profile of the rows written, after each ingestion
 *   (`recordIngestion`, the FeatureStore's `onIngested` hook);
 * - datasets: every training set built from a vector, with the vector's version, the label
 *   source and its SHA-256 (`registerDataset`, the FeatureStore's `onDataset` hook);
 * - lineage: what feeds what, sources → feature sets → vectors → datasets → models (`lineage`),
 *   from the records above and the `lineage` of model versions (`vector`, `vector_version`,
 *   `dataset`).
 *
 * Versions. A feature set's definition is everything that decides its values: the entity (with
 * its key columns), timestamp, source, steps, validation (a named rule set is taken as its rules,
 * so editing the rule set changes the version), event_schema, features, aggregations and ttl;
 * that is, every field but `name`, `owner`, `description`, `tags` and `online_history` (which
 * only decides how far back online lookups stay exact). A vector's definition is its features
 * (aliases included), its label, and the version of each feature set it uses, so a new set
 * version is a new version of every vector that uses it. Changing only owner, description or
 * tags keeps the version: it is recorded as a new revision of the same version, so a model
 * trained on "vector v3" always means the same computed values. Versions are never deleted:
 * `version(kind, name, n)` reads any of them.
 *
 * Documents (kind: name → body; each put appends a numbered revision):
 * - `feature_set` / `feature_vector`: name → {@link DefinitionBody};
 * - `feature_set_ingestion`: set name → {@link IngestionRecord}, one revision per ingestion;
 * - `dataset`: dataset id → {@link DatasetRecord}.
 *
 * Stream ingestion stores many small batches through the same path as files. Recording each
 * would flood the store, so stream batches are throttled: at most one document per feature set
 * per `throttleMs` (default one minute). The first batch after a quiet minute is recorded at
 * once; later ones are accumulated (counts summed, a uniform sample of the rows written kept
 * for the profile) and written when the minute is up, or when the catalog closes. A batch
 * ingestion (one file or table) is always recorded at once, after any pending stream record.
 *
 * Known limits: two processes syncing changed definitions at the same moment can both store
 * the same new version (the store has no compare-and-set); the throttle is per process; a
 * profile is computed on a uniform sample of at most `profileSampleRows` rows written.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import {
  parseFeatureRef,
  type FeatureSetSpec,
  type FeatureVectorSpec,
  type ProjectSpec,
} from '../config/schema.js';
import type { JsonObject, JsonValue } from '../core/json.js';
import type { TableProfile } from '../core/profile.js';
import type { ColumnSchema, ColumnType, Scalar, Table } from '../core/table.js';
import { profileTable } from '../data/profile.js';
import { FerryError } from '../errors/index.js';
import { windowMs } from '../config/load.js';
import type { MetadataStore, StoredDocument } from '../metadata/metadata-store.js';
import { EVENT_ID_COLUMN, type DatasetEvent, type IngestedEvent } from './feature-store.js';

export const FEATURE_SET_KIND = 'feature_set';
export const FEATURE_VECTOR_KIND = 'feature_vector';
export const INGESTION_KIND = 'feature_set_ingestion';
export const DATASET_KIND = 'dataset';

export type DefinitionKind = typeof FEATURE_SET_KIND | typeof FEATURE_VECTOR_KIND;
export type LineageKind = DefinitionKind | 'dataset' | 'model';

const DEFAULT_THROTTLE_MS = 60_000;
const DEFAULT_PROFILE_SAMPLE_ROWS = 100_000;
/** Origins named in one accumulated stream record, at most. */
const ORIGINS_KEPT = 10;

/** What a definition revision changed: the first one, the values' definition, or only owner/description/tags. */
export type DefinitionChange = 'created' | 'definition' | 'governance';

/** The body of a `feature_set` / `feature_vector` document, as stored. */
export interface DefinitionBody {
  readonly version: number;
  /** SHA-256 of the canonical JSON of `definition`. */
  readonly hash: string;
  readonly change: DefinitionChange;
  readonly definition: JsonObject;
  readonly owner: string | null;
  readonly description: string | null;
  readonly tags: readonly string[];
}

/** One revision of a definition: the stored body with its kind, name and revision. */
export interface DefinitionVersion extends DefinitionBody {
  readonly kind: DefinitionKind;
  readonly name: string;
  /** The document's own number: counts every revision, governance-only ones included. */
  readonly revision: number;
  readonly recorded_at: number;
}

/** The body of a `feature_set_ingestion` document: one ingestion, or accumulated stream batches. */
export interface IngestionRecord {
  readonly feature_set: string;
  /** The set's version when it was ingested (null if it was never synced). */
  readonly feature_set_version: number | null;
  readonly mode: 'batch' | 'stream';
  /** The file or table; for accumulated stream batches, the distinct origins (at most 10). */
  readonly origins: readonly string[];
  /** When the first and the last batch of this record were stored (UTC ms). */
  readonly started_at: number;
  readonly ended_at: number;
  readonly batches: number;
  readonly read: number;
  readonly filtered: number;
  readonly quarantined: number;
  readonly quarantined_by_rule: Readonly<Record<string, number>>;
  readonly duplicates: number;
  readonly written: number;
  /** Event times of the rows written, or null when none were. */
  readonly event_time: { readonly min: number; readonly max: number } | null;
  /** Profile of the features of the rows written (of a uniform sample of `profiled_rows` of them). */
  readonly profile: TableProfile;
  readonly profiled_rows: number;
}

/** The body of a `dataset` document: a training set built from a feature vector. */
export interface DatasetRecord {
  readonly id: string;
  readonly vector: string;
  readonly vector_version: number | null;
  /** The feature sets the vector version uses, with their versions. */
  readonly feature_sets: readonly { readonly name: string; readonly version: number | null }[];
  /** The label rows: a file (with its SHA-256) or `the given label table` (no hash). */
  readonly labels: { readonly source: string; readonly sha256: string | null };
  readonly rows: number;
  readonly columns: readonly { readonly name: string; readonly type: ColumnType }[];
  readonly profile: TableProfile;
  readonly profiled_rows: number;
  /** Where the training set was written, if it was. */
  readonly out: string | null;
  readonly created_at: number;
}

/** A stored ingestion record with its revision. */
export interface IngestionEntry extends IngestionRecord {
  readonly revision: number;
  readonly recorded_at: number;
}

export interface LineageSource {
  /** `events` feed a feature set; `labels` feed a dataset (or a vector's label source). */
  readonly role: 'events' | 'labels';
  /** The feature set, dataset or vector the source feeds. */
  readonly of: string;
  readonly path: string;
  readonly sha256: string | null;
}

export interface LineageModel {
  readonly model: string;
  readonly version: number;
  readonly vector: string | null;
  readonly vector_version: number | null;
  readonly dataset: string | null;
}

/** What feeds a subject and what it feeds: sources → feature sets → vectors → datasets → models. */
export interface Lineage {
  readonly subject: { readonly kind: LineageKind; readonly name: string };
  readonly sources: readonly LineageSource[];
  readonly feature_sets: readonly { readonly name: string; readonly version: number | null }[];
  readonly feature_vectors: readonly { readonly name: string; readonly version: number | null }[];
  readonly datasets: readonly {
    readonly id: string;
    readonly vector: string;
    readonly vector_version: number | null;
    readonly rows: number;
    readonly created_at: number;
  }[];
  readonly models: readonly LineageModel[];
}

export interface SyncChange {
  readonly kind: DefinitionKind;
  readonly name: string;
  readonly change: DefinitionChange;
  readonly version: number;
  /** What the user must do after this change, e.g. rebuild the online store. */
  readonly notice?: string;
}

export interface FeatureCatalogOptions {
  /** Least time between two stream ingestion records of one feature set (default 60 s). */
  readonly throttleMs?: number;
  /** Rows profiled per ingestion or dataset at most (a uniform sample; default 100,000). */
  readonly profileSampleRows?: number;
  /** The clock, for tests. */
  readonly now?: () => number;
  /**
   * Where a failed background write is reported (a throttled stream record written by its timer
   * or when closing); default: a process warning on stderr. Its counts are kept for the next write.
   */
  readonly onError?: (error: unknown) => void;
}

/** Stream batches of one feature set waiting to be recorded. */
interface Pending {
  readonly featureSet: string;
  readonly setVersion: number | null;
  readonly mode: 'batch' | 'stream';
  origins: string[];
  startedAt: number;
  endedAt: number;
  batches: number;
  read: number;
  filtered: number;
  duplicates: number;
  written: number;
  byRule: Record<string, number>;
  minTs: number;
  maxTs: number;
  sample: Reservoir;
  timer: ReturnType<typeof setTimeout> | null;
}

/**
 * @example
 * const catalog = new FeatureCatalog(ws.metadata);
 * await catalog.sync(spec);
 * const store = new FeatureStore({ spec, projectDir, offline, online, ...catalog.hooks() });
 */
export class FeatureCatalog {
  private readonly metadata: MetadataStore;
  private readonly throttleMs: number;
  private readonly sampleRows: number;
  private readonly now: () => number;
  private readonly onError: (error: unknown) => void;
  /** Newest version of each definition seen by this catalog, by `kind/name`. */
  private readonly versions = new Map<string, number>();
  private readonly pending = new Map<string, Pending>();
  /** When the last ingestion record of each feature set was written by this process. */
  private readonly lastRecorded = new Map<string, number>();
  private readonly writing = new Set<Promise<unknown>>();

  constructor(metadata: MetadataStore, options: FeatureCatalogOptions = {}) {
    this.metadata = metadata;
    this.throttleMs = Math.max(0, options.throttleMs ?? DEFAULT_THROTTLE_MS);
    this.sampleRows = Math.max(1, options.profileSampleRows ?? DEFAULT_PROFILE_SAMPLE_ROWS);
    this.now = options.now ?? Date.now;
    this.onError =
      options.onError ??
      ((error) =>
        process.emitWarning(
          `feature catalog: an ingestion record was not written: ${error instanceof Error ? error.message : String(error)}`,
        ));
  }

  /** The FeatureStore options that connect its ingestions and training sets to this catalog. */
  hooks(): {
    onIngested: (event: IngestedEvent) => Promise<void>;
    onDataset: (event: DatasetEvent) => Promise<string>;
  } {
    return {
      onIngested: (event) => this.recordIngestion(event),
      onDataset: async (event) => (await this.registerDataset(event)).id,
    };
  }

  /* ------------------------------------------------------------------ versions */

  /**
   * Stores a new revision of every feature set and vector of `spec` whose definition (new
   * version) or owner, description or tags (same version) differ from the newest stored.
   * Two reads when nothing changed. Returns what changed.
   * @example const changes = await catalog.sync(project.spec);
   */
  async sync(spec: ProjectSpec): Promise<SyncChange[]> {
    const [sets, vectors] = await Promise.all([
      this.newest(FEATURE_SET_KIND),
      this.newest(FEATURE_VECTOR_KIND),
    ]);
    const changes: SyncChange[] = [];
    const setVersions = new Map<string, number>();
    for (const [name, entry] of sets) setVersions.set(name, entry.version);
    for (const fs of spec.feature_sets) {
      const stored = sets.get(fs.name);
      const entry = await this.store(
        FEATURE_SET_KIND,
        fs.name,
        setDefinition(spec, fs),
        fs,
        stored,
        changes,
      );
      setVersions.set(fs.name, entry.version);
      const grown = stored ? windowGrowth(stored.definition, fs) : null;
      const change = changes.find((c) => c.kind === FEATURE_SET_KIND && c.name === fs.name);
      if (grown && change) {
        changes[changes.indexOf(change)] = {
          ...change,
          notice:
            `feature set '${fs.name}': its largest window grew from ${grown.from} to ${grown.to}, but the online store ` +
            `pruned events older than the old window; run 'ferry materialize ${fs.name}' before serving, or windows reaching back further read short`,
        };
      }
    }
    for (const vector of spec.feature_vectors) {
      await this.store(
        FEATURE_VECTOR_KIND,
        vector.name,
        vectorDefinition(vector, setVersions),
        vector,
        vectors.get(vector.name),
        changes,
      );
    }
    for (const [name, entry] of vectors)
      this.versions.set(key(FEATURE_VECTOR_KIND, name), entry.version);
    for (const [name, version] of setVersions)
      this.versions.set(key(FEATURE_SET_KIND, name), version);
    for (const c of changes) this.versions.set(key(c.kind, c.name), c.version);
    return changes;
  }

  /** The newest revision of each definition of a kind, by name. */
  async list(kind: DefinitionKind): Promise<DefinitionVersion[]> {
    return [...(await this.newest(kind)).values()];
  }

  /**
   * A definition as of `version` (its newest revision within that version), or the newest;
   * undefined when there is none.
   */
  async version(
    kind: DefinitionKind,
    name: string,
    version?: number,
  ): Promise<DefinitionVersion | undefined> {
    const newest = await this.metadata.getDocument(kind, name);
    if (!newest) return undefined;
    const latest = toDefinition(kind, newest);
    if (version === undefined || latest.version === version) return latest;
    for (let revision = newest.version - 1; revision >= 1; revision--) {
      const doc = await this.metadata.getDocument(kind, name, revision);
      if (!doc) continue;
      const entry = toDefinition(kind, doc);
      if (entry.version === version) return entry;
      if (entry.version < version) return undefined;
    }
    return undefined;
  }

  /** Every revision of a definition, oldest first. */
  async history(kind: DefinitionKind, name: string): Promise<DefinitionVersion[]> {
    const newest = await this.metadata.getDocument(kind, name);
    if (!newest) return [];
    const docs = await Promise.all(
      Array.from({ length: newest.version }, (_, i) =>
        this.metadata.getDocument(kind, name, i + 1),
      ),
    );
    return docs
      .filter((d): d is StoredDocument => d !== undefined)
      .map((d) => toDefinition(kind, d));
  }

  private async newest(kind: DefinitionKind): Promise<Map<string, DefinitionVersion>> {
    const docs = await this.metadata.listDocuments(kind);
    return new Map(docs.map((d) => [d.name, toDefinition(kind, d)]));
  }

  private async store(
    kind: DefinitionKind,
    name: string,
    definition: JsonObject,
    governed: { owner?: string | undefined; description?: string | undefined; tags: string[] },
    stored: DefinitionVersion | undefined,
    changes: SyncChange[],
  ): Promise<{ version: number }> {
    const hash = sha256Text(canonicalJson(definition));
    const owner = governed.owner ?? null;
    const description = governed.description ?? null;
    const tags = [...governed.tags];
    let version: number;
    let change: DefinitionChange;
    if (stored && stored.hash === hash) {
      const same =
        stored.owner === owner &&
        stored.description === description &&
        canonicalJson([...stored.tags]) === canonicalJson(tags);
      if (same) return stored;
      version = stored.version;
      change = 'governance';
    } else {
      version = (stored?.version ?? 0) + 1;
      change = stored ? 'definition' : 'created';
    }
    const body: DefinitionBody = { version, hash, change, definition, owner, description, tags };
    await this.metadata.putDocument(kind, name, body as unknown as JsonObject);
    changes.push({ kind, name, change, version });
    return { version };
  }

  private async currentVersion(kind: DefinitionKind, name: string): Promise<number | null> {
    const cached = this.versions.get(key(kind, name));
    if (cached !== undefined) return cached;
    const entry = await this.version(kind, name);
    if (entry) this.versions.set(key(kind, name), entry.version);
    return entry?.version ?? null;
  }

  /* ------------------------------------------------------------------ ingestions */

  /**
   * Records an ingestion: at once for a batch (after any pending stream record of the set), and
   * throttled for stream batches (see the module header).
   */
  async recordIngestion(event: IngestedEvent): Promise<void> {
    const name = event.featureSet;
    let pending = this.pending.get(name);
    if (event.mode === 'batch') {
      if (pending) await this.flushSet(name);
      pending = await this.newPending(event);
      accumulate(pending, event, this.now());
      await this.write(pending);
      return;
    }
    if (!pending) {
      pending = await this.newPending(event);
      this.pending.set(name, pending);
    }
    const now = this.now();
    accumulate(pending, event, now);
    const last = this.lastRecorded.get(name);
    if (last === undefined || now - last >= this.throttleMs) {
      await this.flushSet(name);
    } else if (pending.timer === null) {
      pending.timer = setTimeout(
        () => {
          this.track(this.flushSet(name)).catch((error: unknown) => this.onError(error));
        },
        Math.max(0, last + this.throttleMs - now),
      );
      pending.timer.unref?.();
    }
  }

  /** Writes every pending stream record now. */
  async flush(): Promise<void> {
    await Promise.all([...this.pending.keys()].map((name) => this.flushSet(name)));
    await Promise.all([...this.writing]);
  }

  /**
   * Flushes pending records and stops their timers; the metadata store stays open. A failure is
   * reported through `onError`, not thrown: the ingestions themselves were stored.
   */
  async close(): Promise<void> {
    try {
      await this.flush();
    } catch (error) {
      this.onError(error);
    }
    for (const p of this.pending.values()) if (p.timer !== null) clearTimeout(p.timer);
  }

  /** The newest ingestion records of a feature set, newest first (at most `limit`). */
  async ingestions(featureSet: string, limit = 10): Promise<IngestionEntry[]> {
    const newest = await this.metadata.getDocument(INGESTION_KIND, featureSet);
    if (!newest) return [];
    const out: IngestionEntry[] = [toIngestion(newest)];
    for (let r = newest.version - 1; r >= 1 && out.length < limit; r--) {
      const doc = await this.metadata.getDocument(INGESTION_KIND, featureSet, r);
      if (doc) out.push(toIngestion(doc));
    }
    return out;
  }

  /** The newest ingestion record of every feature set that has one, by name. */
  async lastIngestions(): Promise<Map<string, IngestionEntry>> {
    const docs = await this.metadata.listDocuments(INGESTION_KIND);
    return new Map(docs.map((d) => [d.name, toIngestion(d)]));
  }

  private async newPending(event: IngestedEvent): Promise<Pending> {
    const skip = new Set([event.keyColumn, event.timestampColumn, EVENT_ID_COLUMN]);
    const columns = event.rows.columns
      .filter((c) => !skip.has(c.name))
      .map((c) => ({ name: c.name, type: c.type }));
    return {
      featureSet: event.featureSet,
      setVersion: await this.currentVersion(FEATURE_SET_KIND, event.featureSet),
      mode: event.mode,
      origins: [],
      startedAt: this.now(),
      endedAt: this.now(),
      batches: 0,
      read: 0,
      filtered: 0,
      duplicates: 0,
      written: 0,
      byRule: {},
      minTs: Infinity,
      maxTs: -Infinity,
      sample: new Reservoir(columns, this.sampleRows),
      timer: null,
    };
  }

  private async flushSet(name: string): Promise<void> {
    const pending = this.pending.get(name);
    if (!pending) return;
    this.pending.delete(name);
    if (pending.timer !== null) clearTimeout(pending.timer);
    pending.timer = null;
    try {
      await this.track(this.write(pending));
    } catch (error) {
      // Keep the counts for the next attempt rather than lose them.
      const newer = this.pending.get(name);
      if (newer) mergePending(pending, newer);
      this.pending.set(name, pending);
      throw error;
    }
  }

  private async write(p: Pending): Promise<void> {
    const quarantined = Object.values(p.byRule).reduce((a, b) => a + b, 0);
    const sample = p.sample.table();
    const record: IngestionRecord = {
      feature_set: p.featureSet,
      feature_set_version: p.setVersion,
      mode: p.mode,
      origins: p.origins,
      started_at: p.startedAt,
      ended_at: p.endedAt,
      batches: p.batches,
      read: p.read,
      filtered: p.filtered,
      quarantined,
      quarantined_by_rule: p.byRule,
      duplicates: p.duplicates,
      written: p.written,
      event_time: p.written > 0 ? { min: p.minTs, max: p.maxTs } : null,
      profile: profileTable(sample),
      profiled_rows: sample.rowCount,
    };
    await this.metadata.putDocument(INGESTION_KIND, p.featureSet, record as unknown as JsonObject);
    this.lastRecorded.set(p.featureSet, this.now());
  }

  private track<T>(promise: Promise<T>): Promise<T> {
    this.writing.add(promise);
    const done = (): void => void this.writing.delete(promise);
    promise.then(done, done);
    return promise;
  }

  /* ------------------------------------------------------------------ datasets */

  /**
   * Registers a training set as a dataset: its vector and version, the sets that version uses,
   * the label source with its SHA-256 when it is a file, rows, columns and profile.
   * @example const { id } = await catalog.registerDataset({ vector: 'fraud_v1', labels, table, out: null });
   */
  async registerDataset(event: DatasetEvent): Promise<DatasetRecord> {
    const createdAt = this.now();
    const vectorVersion = await this.currentVersion(FEATURE_VECTOR_KIND, event.vector);
    const definition =
      vectorVersion === null
        ? undefined
        : await this.version(FEATURE_VECTOR_KIND, event.vector, vectorVersion);
    const sets = (definition?.definition.feature_sets ?? {}) as Record<string, number | null>;
    const sample = new Reservoir(
      event.table.columns.map((c) => ({ name: c.name, type: c.type })),
      this.sampleRows,
    );
    sample.add(event.table);
    const profiled = sample.table();
    const id = `${event.vector}-${compactTime(createdAt)}-${randomBytes(3).toString('hex')}`;
    const record: DatasetRecord = {
      id,
      vector: event.vector,
      vector_version: vectorVersion,
      feature_sets: Object.entries(sets).map(([name, version]) => ({ name, version })),
      labels: {
        source: event.labels.file ?? event.labels.origin,
        sha256: event.labels.file === null ? null : await sha256File(event.labels.file),
      },
      rows: event.table.rowCount,
      columns: event.table.columns.map((c) => ({ name: c.name, type: c.type })),
      profile: profileTable(profiled),
      profiled_rows: profiled.rowCount,
      out: event.out,
      created_at: createdAt,
    };
    await this.metadata.putDocument(DATASET_KIND, id, record as unknown as JsonObject);
    return record;
  }

  async dataset(id: string): Promise<DatasetRecord | undefined> {
    const doc = await this.metadata.getDocument(DATASET_KIND, id);
    return doc ? (doc.body as unknown as DatasetRecord) : undefined;
  }

  /** Every registered dataset, oldest first. */
  async datasets(): Promise<DatasetRecord[]> {
    const docs = await this.metadata.listDocuments(DATASET_KIND);
    return docs
      .map((d) => d.body as unknown as DatasetRecord)
      .sort((a, b) => a.created_at - b.created_at);
  }

  /* ------------------------------------------------------------------ lineage */

  /**
   * What feeds `name` and what it feeds. For a feature set: its source, the vectors that use it,
   * the datasets built on it and the models trained on those; for a vector: its sets and their
   * sources, label sources, datasets and models; for a dataset: its vector, sets, sources and
   * models; for a model (all its versions): the datasets, vectors, sets and sources behind it.
   * @example const { models } = await catalog.lineage('feature_set', 'transactions');
   */
  async lineage(kind: LineageKind, name: string): Promise<Lineage> {
    const [sets, vectors, datasets, models] = await Promise.all([
      this.newest(FEATURE_SET_KIND),
      this.newest(FEATURE_VECTOR_KIND),
      this.datasets(),
      this.modelLineage(),
    ]);
    const setsOf = (vector: string): string[] =>
      Object.keys(vectors.get(vector)?.definition.feature_sets ?? {});
    const pickedSets = new Set<string>();
    const pickedVectors = new Set<string>();
    const pickedDatasets = new Set<string>();
    const pickedModels: LineageModel[] = [];
    const byId = new Map(datasets.map((d) => [d.id, d]));

    switch (kind) {
      case FEATURE_SET_KIND: {
        if (!sets.has(name)) throw unknownSubject(kind, name, [...sets.keys()]);
        pickedSets.add(name);
        for (const v of vectors.keys()) if (setsOf(v).includes(name)) pickedVectors.add(v);
        for (const d of datasets) {
          if (d.feature_sets.some((s) => s.name === name)) {
            pickedDatasets.add(d.id);
            pickedVectors.add(d.vector);
          }
        }
        for (const m of models) {
          if (
            (m.dataset !== null && pickedDatasets.has(m.dataset)) ||
            (m.dataset === null && m.vector !== null && pickedVectors.has(m.vector))
          )
            pickedModels.push(m);
        }
        break;
      }
      case FEATURE_VECTOR_KIND: {
        if (!vectors.has(name)) throw unknownSubject(kind, name, [...vectors.keys()]);
        pickedVectors.add(name);
        for (const s of setsOf(name)) pickedSets.add(s);
        for (const d of datasets) {
          if (d.vector !== name) continue;
          pickedDatasets.add(d.id);
          for (const s of d.feature_sets) pickedSets.add(s.name);
        }
        for (const m of models) {
          if (m.vector === name || (m.dataset !== null && pickedDatasets.has(m.dataset)))
            pickedModels.push(m);
        }
        break;
      }
      case DATASET_KIND: {
        const d = byId.get(name);
        if (!d) throw unknownSubject(kind, name, [...byId.keys()]);
        pickedDatasets.add(name);
        pickedVectors.add(d.vector);
        for (const s of d.feature_sets) pickedSets.add(s.name);
        for (const m of models) if (m.dataset === name) pickedModels.push(m);
        break;
      }
      case 'model': {
        const mine = models.filter((m) => m.model === name);
        if (mine.length === 0) {
          throw new FerryError(
            'FERRY_MODEL_NOT_FOUND',
            `no version of model '${name}' was trained from a feature vector; see its lineage with ferry models show ${name}`,
          );
        }
        pickedModels.push(...mine);
        for (const m of mine) {
          const d = m.dataset === null ? undefined : byId.get(m.dataset);
          if (d) {
            pickedDatasets.add(d.id);
            pickedVectors.add(d.vector);
            for (const s of d.feature_sets) pickedSets.add(s.name);
          }
          if (m.vector !== null) {
            pickedVectors.add(m.vector);
            if (!d) for (const s of setsOf(m.vector)) pickedSets.add(s);
          }
        }
        break;
      }
    }

    const sources: LineageSource[] = [];
    const seen = new Set<string>();
    const addSource = (s: LineageSource): void => {
      const id = `${s.role}\u0000${s.of}\u0000${s.path}\u0000${s.sha256 ?? ''}`;
      if (seen.has(id)) return;
      seen.add(id);
      sources.push(s);
    };
    for (const s of pickedSets) {
      const source = sets.get(s)?.definition.source as { path?: string } | undefined;
      if (source?.path !== undefined)
        addSource({ role: 'events', of: s, path: source.path, sha256: null });
    }
    const pickedDatasetList = datasets.filter((d) => pickedDatasets.has(d.id));
    // Labels feed datasets, downstream of a feature set: its sources are its events only.
    if (kind !== FEATURE_SET_KIND) {
      for (const d of pickedDatasetList) {
        if (d.labels.sha256 === null) continue; // a table given in memory: nothing to trace
        addSource({ role: 'labels', of: d.id, path: d.labels.source, sha256: d.labels.sha256 });
      }
    }
    if (kind === FEATURE_VECTOR_KIND && pickedDatasetList.length === 0) {
      const label = vectors.get(name)?.definition.label as
        { source?: { path?: string } } | null | undefined;
      if (label?.source?.path !== undefined)
        addSource({ role: 'labels', of: name, path: label.source.path, sha256: null });
    }

    return {
      subject: { kind, name },
      sources,
      feature_sets: [...pickedSets].sort().map((s) => ({
        name: s,
        version: sets.get(s)?.version ?? null,
      })),
      feature_vectors: [...pickedVectors].sort().map((v) => ({
        name: v,
        version: vectors.get(v)?.version ?? null,
      })),
      datasets: pickedDatasetList.map((d) => ({
        id: d.id,
        vector: d.vector,
        vector_version: d.vector_version,
        rows: d.rows,
        created_at: d.created_at,
      })),
      models: pickedModels.sort((a, b) =>
        a.model === b.model ? a.version - b.version : a.model < b.model ? -1 : 1,
      ),
    };
  }

  /** Model versions whose lineage names a feature vector or a dataset. */
  private async modelLineage(): Promise<LineageModel[]> {
    const out: LineageModel[] = [];
    for (const summary of await this.metadata.listModels()) {
      for (const v of await this.metadata.listModelVersions(summary.name)) {
        const l = v.lineage;
        // `featureVector` is what models trained before the catalog recorded.
        const vector = text(l.vector) ?? text(l.featureVector);
        const dataset = text(l.dataset);
        if (vector === null && dataset === null) continue;
        out.push({
          model: v.model,
          version: v.version,
          vector,
          vector_version: typeof l.vector_version === 'number' ? l.vector_version : null,
          dataset,
        });
      }
    }
    return out;
  }
}

/* -------------------------------------------------------------------- definitions */

/**
 * What decides a feature set's values: every field but name, owner, description, tags and
 * online_history, with the entity's key columns and a named rule set's rules spelt out.
 */
export function setDefinition(spec: ProjectSpec, fs: FeatureSetSpec): JsonObject {
  const { name: _name, owner: _o, description: _d, tags: _t, online_history: _h, ...rest } = fs;
  const entity = spec.entities.find((e) => e.name === fs.entity);
  const validation =
    typeof fs.validation === 'string'
      ? (spec.validations.find((v) => v.name === fs.validation) ?? {
          undefined_rule_set: fs.validation,
        })
      : fs.validation;
  return toJson({
    ...rest,
    entity: { name: fs.entity, keys: entity?.keys ?? null },
    ...(validation === undefined ? {} : { validation }),
  });
}

/** The largest window before and after a definition change, when it grew; null otherwise. */
function windowGrowth(stored: JsonObject, fs: FeatureSetSpec): { from: string; to: string } | null {
  const largest = (aggregations: readonly { windows?: readonly string[] }[]): string | null => {
    let best: string | null = null;
    for (const a of aggregations)
      for (const w of a.windows ?? []) if (best === null || windowMs(w) > windowMs(best)) best = w;
    return best;
  };
  const before = largest(
    Array.isArray(stored.aggregations) ? (stored.aggregations as { windows?: string[] }[]) : [],
  );
  const after = largest(fs.aggregations);
  if (before === null || after === null || windowMs(after) <= windowMs(before)) return null;
  return { from: before, to: after };
}

/** What decides a vector's values: its features, label, and the versions of the sets it uses. */
export function vectorDefinition(
  vector: FeatureVectorSpec,
  setVersions: ReadonlyMap<string, number>,
): JsonObject {
  const { name: _name, owner: _o, description: _d, tags: _t, ...rest } = vector;
  const used = [...new Set(vector.features.map((f) => parseFeatureRef(f).set))];
  return toJson({
    ...rest,
    feature_sets: Object.fromEntries(used.map((s) => [s, setVersions.get(s) ?? null])),
  });
}

/* -------------------------------------------------------------------- helpers */

/** A uniform random sample of at most `capacity` rows (reservoir sampling): exact below it. */
class Reservoir {
  private readonly columns: readonly ColumnSchema[];
  private readonly values: Scalar[][];
  private readonly capacity: number;
  private seen = 0;
  private size = 0;

  constructor(columns: readonly ColumnSchema[], capacity: number) {
    this.columns = columns;
    this.values = columns.map(() => []);
    this.capacity = capacity;
  }

  add(table: Table): void {
    const sources = this.columns.map(
      (c) => table.columns.find((t) => t.name === c.name)?.values ?? [],
    );
    for (let i = 0; i < table.rowCount; i++) {
      this.seen++;
      let slot: number;
      if (this.size < this.capacity) slot = this.size++;
      else {
        slot = Math.floor(Math.random() * this.seen);
        if (slot >= this.capacity) continue;
      }
      sources.forEach((values, c) => ((this.values[c] as Scalar[])[slot] = values[i] ?? null));
    }
  }

  /** Merges another sample in (approximately uniform: its rows enter as if seen now). */
  merge(other: Reservoir): void {
    this.add(other.table());
  }

  table(): Table {
    return {
      columns: this.columns.map((c, i) => ({
        name: c.name,
        type: c.type,
        values: (this.values[i] as Scalar[]).slice(0, this.size),
      })),
      rowCount: this.size,
    };
  }
}

function accumulate(p: Pending, event: IngestedEvent, now: number): void {
  const r = event.result;
  if (p.batches === 0) p.startedAt = now;
  p.endedAt = now;
  p.batches++;
  if (!p.origins.includes(event.origin) && p.origins.length < ORIGINS_KEPT)
    p.origins.push(event.origin);
  p.read += r.read;
  p.filtered += r.filtered;
  p.duplicates += r.duplicates;
  p.written += r.written;
  for (const [rule, n] of Object.entries(r.quarantined)) p.byRule[rule] = (p.byRule[rule] ?? 0) + n;
  const times = event.rows.columns.find((c) => c.name === event.timestampColumn)?.values ?? [];
  for (const t of times) {
    if (typeof t !== 'number') continue;
    if (t < p.minTs) p.minTs = t;
    if (t > p.maxTs) p.maxTs = t;
  }
  p.sample.add(event.rows);
}

/** Adds `newer`'s batches into `into` (a failed write's counts kept for the next). */
function mergePending(into: Pending, newer: Pending): void {
  into.endedAt = newer.endedAt;
  into.batches += newer.batches;
  for (const o of newer.origins)
    if (!into.origins.includes(o) && into.origins.length < ORIGINS_KEPT) into.origins.push(o);
  into.read += newer.read;
  into.filtered += newer.filtered;
  into.duplicates += newer.duplicates;
  into.written += newer.written;
  for (const [rule, n] of Object.entries(newer.byRule))
    into.byRule[rule] = (into.byRule[rule] ?? 0) + n;
  into.minTs = Math.min(into.minTs, newer.minTs);
  into.maxTs = Math.max(into.maxTs, newer.maxTs);
  into.sample.merge(newer.sample);
  if (newer.timer !== null) clearTimeout(newer.timer);
}

function toDefinition(kind: DefinitionKind, doc: StoredDocument): DefinitionVersion {
  const body = doc.body as unknown as DefinitionBody;
  return {
    ...body,
    kind,
    name: doc.name,
    revision: doc.version,
    recorded_at: doc.createdAt,
  };
}

function toIngestion(doc: StoredDocument): IngestionEntry {
  return {
    ...(doc.body as unknown as IngestionRecord),
    revision: doc.version,
    recorded_at: doc.createdAt,
  };
}

function unknownSubject(kind: LineageKind, name: string, known: string[]): FerryError {
  const code =
    kind === FEATURE_SET_KIND
      ? 'FERRY_FEATURE_SET_UNKNOWN'
      : kind === FEATURE_VECTOR_KIND
        ? 'FERRY_FEATURE_VECTOR_UNKNOWN'
        : 'FERRY_ARGUMENT_INVALID';
  const what = kind.replace('_', ' ');
  return new FerryError(
    code,
    `${what} '${name}' is not in the catalog; known: ${known.slice(0, 20).join(', ') || '(none)'}`,
  );
}

function key(kind: DefinitionKind, name: string): string {
  return `${kind}/${name}`;
}

function text(value: JsonValue | undefined): string | null {
  return typeof value === 'string' && value.length > 0 ? value : null;
}

/** Plain JSON of a parsed spec object (undefined fields dropped). */
function toJson(value: unknown): JsonObject {
  return JSON.parse(JSON.stringify(value)) as JsonObject;
}

/** JSON with object keys sorted, so equal values hash equally. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

function sha256Text(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** `20261005T120000` (UTC), for readable dataset ids. */
function compactTime(ms: number): string {
  return new Date(ms)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, '');
}
