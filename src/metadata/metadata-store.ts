/**
 * MetadataStore: the durable record of models, versions, aliases, runs and project documents
 * (feature sets, endpoints, deployments, datasets). Embedded default: SQLite (`sqlite.ts`).
 *
 * Contract (checked by `src/testing/metadata-store.conformance.ts` for every backend):
 * - times are UTC milliseconds since the epoch;
 * - version numbers start at 1 and are allocated atomically, so two concurrent registrations
 *   of the same model never get the same number; the number of a deleted version is never
 *   given out again;
 * - a model version is immutable once registered; aliases move;
 * - model and alias names match `^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$` (an alias is not all
 *   digits, which would read as a version); writes with another name are FERRY_ARGUMENT_INVALID;
 * - metrics are finite numbers (JSON has no NaN): anything else is FERRY_ARGUMENT_INVALID;
 * - a model exists while it has at least one version; an unknown model reads as empty
 *   (`[]`, `{}`, `undefined`), and `setAlias` or `deleteModelVersion` on it throw
 *   FERRY_MODEL_NOT_FOUND;
 * - a document `put` appends a new numbered version of that document; `getDocument` gives the newest;
 * - lists are sorted: models and documents by name, versions ascending, runs newest first
 *   (by `startedAt`, then by creation order);
 * - after `close()` (which may be called twice) every call throws FERRY_STORE_CLOSED.
 */
import type { JsonObject } from '../core/json.js';
import type { ModelSignature } from '../core/model.js';
import type { TableProfile } from '../core/profile.js';

export interface NewModelVersion {
  readonly model: string;
  /** Name of the ModelRuntime that loads the artifact (`native`, `onnx`). */
  readonly runtime: string;
  readonly artifactKey: string;
  /** SHA-256 of the artifact: 64 lowercase hex digits, as `ArtifactStore.put` returns it. */
  readonly sha256: string;
  readonly sizeBytes: number;
  readonly signature: ModelSignature;
  readonly metrics: Readonly<Record<string, number>>;
  readonly params: JsonObject;
  /** Where the version came from: run id, data file and its hash, feature vector, dataset. */
  readonly lineage: JsonObject;
  /** Profile of the training data: the drift reference for monitoring. */
  readonly profile: TableProfile;
  readonly description?: string;
}

export interface ModelVersion extends NewModelVersion {
  readonly version: number;
  readonly createdAt: number;
}

export interface ModelSummary {
  readonly name: string;
  readonly latestVersion: number;
  readonly versionCount: number;
  readonly aliases: Readonly<Record<string, number>>;
  readonly updatedAt: number;
}

export type RunStatus = 'running' | 'succeeded' | 'failed';

export interface NewRun {
  readonly kind: string;
  readonly name: string;
  readonly params: JsonObject;
}

export interface Run extends NewRun {
  readonly id: string;
  readonly status: RunStatus;
  readonly startedAt: number;
  readonly endedAt: number | null;
  readonly metrics: Readonly<Record<string, number>>;
  /** Free-form results: leaderboard, artifacts, lineage, error. */
  readonly outputs: JsonObject;
}

/**
 * Changes to a run. `metrics` and `outputs` merge into the stored ones key by key. A run that
 * leaves `running` without an `endedAt` gets the time of the update.
 */
export interface RunUpdate {
  readonly status?: RunStatus;
  readonly endedAt?: number;
  readonly metrics?: Readonly<Record<string, number>>;
  readonly outputs?: JsonObject;
}

export interface StoredDocument {
  readonly kind: string;
  readonly name: string;
  readonly version: number;
  readonly createdAt: number;
  readonly body: JsonObject;
}

export interface MetadataStore {
  readonly backend: string;

  /** Registers the next version of `model` (creating the model if new) and returns it. */
  registerModelVersion(input: NewModelVersion): Promise<ModelVersion>;
  getModelVersion(model: string, version: number): Promise<ModelVersion | undefined>;
  /** Versions of a model, ascending; empty when the model does not exist. */
  listModelVersions(model: string): Promise<ModelVersion[]>;
  listModels(): Promise<ModelSummary[]>;
  /**
   * Points `alias` at an existing version (moving it if set); throws FERRY_MODEL_VERSION_NOT_FOUND
   * when the model has no such version, FERRY_MODEL_NOT_FOUND when the model does not exist.
   */
  setAlias(model: string, alias: string, version: number): Promise<void>;
  /** Removes an alias; removing one that does not exist is a no-op. */
  removeAlias(model: string, alias: string): Promise<void>;
  getAliases(model: string): Promise<Record<string, number>>;
  /**
   * Deletes a version no alias points to; throws FERRY_ARGUMENT_INVALID naming the alias if one
   * does, and FERRY_MODEL_VERSION_NOT_FOUND (or FERRY_MODEL_NOT_FOUND) if there is no such version.
   */
  deleteModelVersion(model: string, version: number): Promise<void>;

  /** Starts a run: a new random id, status `running`, empty metrics and outputs. */
  createRun(input: NewRun): Promise<Run>;
  /** Throws FERRY_RUN_NOT_FOUND for an unknown id. */
  updateRun(id: string, update: RunUpdate): Promise<Run>;
  getRun(id: string): Promise<Run | undefined>;
  /** Newest first. */
  listRuns(options?: { limit?: number; kind?: string }): Promise<Run[]>;

  putDocument(kind: string, name: string, body: JsonObject): Promise<StoredDocument>;
  getDocument(kind: string, name: string, version?: number): Promise<StoredDocument | undefined>;
  /** Newest version of each document of a kind, by name. */
  listDocuments(kind: string): Promise<StoredDocument[]>;

  close(): Promise<void>;
}
