/**
 * The embedded MetadataStore: one SQLite file (better-sqlite3) in WAL mode with
 * `synchronous=FULL`, so a write is durable when its Promise resolves. Several processes may open
 * the same file: version numbers are allocated inside IMMEDIATE transactions, which SQLite
 * serialises across connections (waiting up to `busyTimeoutMs` for the lock).
 *
 * better-sqlite3 is synchronous; the methods are async anyway because the interface is shared
 * with network backends, and so that every failure arrives as a rejected Promise.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Sqlite from 'better-sqlite3';
import type { JsonObject } from '../core/json.js';
import type { ModelSignature } from '../core/model.js';
import type { TableProfile } from '../core/profile.js';
import { FerryError } from '../errors/index.js';
import { applyMigrations } from './migrations.js';
import type {
  MetadataStore,
  ModelSummary,
  ModelVersion,
  NewModelVersion,
  NewRun,
  Run,
  RunStatus,
  RunUpdate,
  StoredDocument,
} from './metadata-store.js';

export interface SqliteMetadataStoreOptions {
  /** Database file (parent folders are created), or `':memory:'`. */
  readonly path: string;
  /** How long a write waits for another process's transaction to finish. Default 5000. */
  readonly busyTimeoutMs?: number;
}

const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const SHA256_PATTERN = /^[0-9a-f]{64}$/;
const RUN_STATUSES: readonly RunStatus[] = ['running', 'succeeded', 'failed'];

interface ModelVersionRow {
  model: string;
  version: number;
  runtime: string;
  artifact_key: string;
  sha256: string;
  size_bytes: number;
  signature: string;
  metrics: string;
  params: string;
  lineage: string;
  profile: string;
  description: string | null;
  created_at: number;
}

interface RunRow {
  id: string;
  kind: string;
  name: string;
  status: RunStatus;
  params: string;
  metrics: string;
  outputs: string;
  started_at: number;
  ended_at: number | null;
}

interface DocumentRow {
  kind: string;
  name: string;
  version: number;
  created_at: number;
  body: string;
}

interface ModelSummaryRow {
  name: string;
  latest: number;
  count: number;
  updated_at: number;
}

interface AliasRow {
  model: string;
  alias: string;
  version: number;
}

/**
 * Opens (creating and migrating if needed) the SQLite metadata database at `options.path`.
 *
 * @example
 * const store = await openSqliteMetadataStore({ path: '.ferry/metadata.db' });
 * const v = await store.registerModelVersion({ model: 'fraud', ... });
 * await store.setAlias('fraud', 'champion', v.version);
 */
export async function openSqliteMetadataStore(
  options: SqliteMetadataStoreOptions,
): Promise<SqliteMetadataStore> {
  const file = options.path;
  let db: Sqlite.Database | undefined;
  try {
    if (file !== ':memory:' && file !== '')
      mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    db = new Sqlite(file);
    // WAL lets readers run beside a writer; FULL fsyncs the WAL at each commit, so an
    // acknowledged write survives a power loss and not only a crash of the process.
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
    db.pragma(`busy_timeout = ${Math.max(0, Math.trunc(options.busyTimeoutMs ?? 5000))}`);
    applyMigrations(db);
    return new SqliteMetadataStore(db, file);
  } catch (err) {
    db?.close();
    if (err instanceof FerryError) throw err;
    throw new FerryError(
      'FERRY_BACKEND_UNAVAILABLE',
      `cannot open the SQLite metadata database '${file}': ${errorMessage(err)}; check that the path is a writable Ferry database`,
      { cause: err },
    );
  }
}

export class SqliteMetadataStore implements MetadataStore {
  readonly backend = 'sqlite';
  readonly #db: Sqlite.Database;
  readonly #file: string;
  #closed = false;
  readonly #sql: Statements;

  /** Use `openSqliteMetadataStore`, which creates, configures and migrates the database. */
  constructor(db: Sqlite.Database, file: string) {
    this.#db = db;
    this.#file = file;
    this.#sql = prepareStatements(db);
  }

  async registerModelVersion(input: NewModelVersion): Promise<ModelVersion> {
    return this.#use(() => {
      validateName('model', input.model);
      validateNewVersion(input);
      const now = Date.now();
      const row = {
        model: input.model,
        runtime: input.runtime,
        artifact_key: input.artifactKey,
        sha256: input.sha256,
        size_bytes: input.sizeBytes,
        signature: JSON.stringify(input.signature),
        metrics: JSON.stringify(input.metrics),
        params: JSON.stringify(input.params),
        lineage: JSON.stringify(input.lineage),
        profile: JSON.stringify(input.profile),
        description: input.description ?? null,
        created_at: now,
      };
      const version = this.#db
        .transaction(() => {
          const allocated = this.#sql.allocateVersion.get(input.model, now, now);
          if (allocated === undefined) throw new Error('version allocation returned no row');
          this.#sql.insertVersion.run({ ...row, version: allocated.last_version });
          return allocated.last_version;
        })
        .immediate();
      return toModelVersion({ ...row, version });
    });
  }

  async getModelVersion(model: string, version: number): Promise<ModelVersion | undefined> {
    return this.#use(() => {
      const row = this.#sql.getVersion.get(model, version);
      return row === undefined ? undefined : toModelVersion(row);
    });
  }

  async listModelVersions(model: string): Promise<ModelVersion[]> {
    return this.#use(() => this.#sql.listVersions.all(model).map(toModelVersion));
  }

  async listModels(): Promise<ModelSummary[]> {
    return this.#use(() => {
      const aliases = new Map<string, Record<string, number>>();
      for (const a of this.#sql.allAliases.all()) {
        const forModel = aliases.get(a.model) ?? {};
        forModel[a.alias] = a.version;
        aliases.set(a.model, forModel);
      }
      return this.#sql.modelSummaries.all().map((r) => ({
        name: r.name,
        latestVersion: r.latest,
        versionCount: r.count,
        aliases: aliases.get(r.name) ?? {},
        updatedAt: r.updated_at,
      }));
    });
  }

  async setAlias(model: string, alias: string, version: number): Promise<void> {
    return this.#use(() => {
      validateName('model', model);
      validateAlias(alias);
      this.#db
        .transaction(() => {
          if (this.#sql.getVersionExists.get(model, version) === undefined) {
            throw this.#versionNotFound(model, version);
          }
          const now = Date.now();
          this.#sql.upsertAlias.run(model, alias, version, now);
          this.#sql.touchModel.run(now, model);
        })
        .immediate();
    });
  }

  async removeAlias(model: string, alias: string): Promise<void> {
    return this.#use(() => {
      validateName('model', model);
      validateAlias(alias);
      this.#db
        .transaction(() => {
          if (this.#sql.deleteAlias.run(model, alias).changes > 0) {
            this.#sql.touchModel.run(Date.now(), model);
          }
        })
        .immediate();
    });
  }

  async getAliases(model: string): Promise<Record<string, number>> {
    return this.#use(() => {
      const out: Record<string, number> = {};
      for (const a of this.#sql.aliasesOf.all(model)) out[a.alias] = a.version;
      return out;
    });
  }

  async deleteModelVersion(model: string, version: number): Promise<void> {
    return this.#use(() => {
      validateName('model', model);
      this.#db
        .transaction(() => {
          if (this.#sql.getVersionExists.get(model, version) === undefined) {
            throw this.#versionNotFound(model, version);
          }
          const holding = this.#sql.aliasesOfVersion.all(model, version).map((a) => a.alias);
          if (holding.length > 0) {
            const names = holding.map((a) => `'${a}'`).join(', ');
            throw new FerryError(
              'FERRY_ARGUMENT_INVALID',
              `cannot delete version ${version} of model '${model}': alias ${names} points to it; move or remove the alias first`,
            );
          }
          this.#sql.deleteVersion.run(model, version);
          this.#sql.touchModel.run(Date.now(), model);
        })
        .immediate();
    });
  }

  async createRun(input: NewRun): Promise<Run> {
    return this.#use(() => {
      validateText('run kind', input.kind);
      validateText('run name', input.name);
      const row: RunRow = {
        id: randomUUID(),
        kind: input.kind,
        name: input.name,
        status: 'running',
        params: JSON.stringify(input.params),
        metrics: '{}',
        outputs: '{}',
        started_at: Date.now(),
        ended_at: null,
      };
      this.#sql.insertRun.run(row);
      return toRun(row);
    });
  }

  async updateRun(id: string, update: RunUpdate): Promise<Run> {
    return this.#use(() => {
      if (update.status !== undefined && !RUN_STATUSES.includes(update.status)) {
        throw new FerryError(
          'FERRY_ARGUMENT_INVALID',
          `run status '${String(update.status)}' is not one of ${RUN_STATUSES.join(', ')}`,
        );
      }
      if (update.endedAt !== undefined) validateTime('run endedAt', update.endedAt);
      if (update.metrics !== undefined) validateMetrics('run', update.metrics);
      return this.#db
        .transaction((): Run => {
          const current = this.#sql.getRun.get(id);
          if (current === undefined) {
            throw new FerryError(
              'FERRY_RUN_NOT_FOUND',
              `no run has id '${id}'; list runs with \`ferry runs list\``,
            );
          }
          const status = update.status ?? current.status;
          // A run that finishes without saying when gets the time of this update.
          const endedAt =
            update.endedAt ?? current.ended_at ?? (status === 'running' ? null : Date.now());
          const next: RunRow = {
            ...current,
            status,
            ended_at: endedAt,
            metrics: mergeJson(current.metrics, update.metrics),
            outputs: mergeJson(current.outputs, update.outputs),
          };
          this.#sql.updateRun.run(next);
          return toRun(next);
        })
        .immediate();
    });
  }

  async getRun(id: string): Promise<Run | undefined> {
    return this.#use(() => {
      const row = this.#sql.getRun.get(id);
      return row === undefined ? undefined : toRun(row);
    });
  }

  async listRuns(options: { limit?: number; kind?: string } = {}): Promise<Run[]> {
    return this.#use(() => {
      const limit = options.limit ?? -1; // SQLite: a negative LIMIT means none
      if (options.limit !== undefined && !(Number.isSafeInteger(limit) && limit >= 0)) {
        throw new FerryError(
          'FERRY_ARGUMENT_INVALID',
          `runs limit must be a whole number >= 0; got ${options.limit}`,
        );
      }
      const rows =
        options.kind === undefined
          ? this.#sql.listRuns.all(limit)
          : this.#sql.listRunsOfKind.all(options.kind, limit);
      return rows.map(toRun);
    });
  }

  async putDocument(kind: string, name: string, body: JsonObject): Promise<StoredDocument> {
    return this.#use(() => {
      validateText('document kind', kind);
      validateText('document name', name);
      if (typeof body !== 'object' || body === null || Array.isArray(body)) {
        throw new FerryError(
          'FERRY_ARGUMENT_INVALID',
          `the body of document ${kind}/${name} must be a JSON object`,
        );
      }
      const text = JSON.stringify(body);
      const row = this.#db
        .transaction(() =>
          this.#sql.insertDocument.get({ kind, name, created_at: Date.now(), body: text }),
        )
        .immediate();
      if (row === undefined) throw new Error('document insert returned no row');
      return toDocument(row);
    });
  }

  async getDocument(
    kind: string,
    name: string,
    version?: number,
  ): Promise<StoredDocument | undefined> {
    return this.#use(() => {
      const row =
        version === undefined
          ? this.#sql.getLatestDocument.get(kind, name)
          : this.#sql.getDocumentVersion.get(kind, name, version);
      return row === undefined ? undefined : toDocument(row);
    });
  }

  async listDocuments(kind: string): Promise<StoredDocument[]> {
    return this.#use(() => this.#sql.listDocuments.all(kind, kind).map(toDocument));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#db.close();
  }

  /** Runs `fn` on an open store and turns driver failures into coded errors. */
  #use<T>(fn: () => T): T {
    if (this.#closed) {
      throw new FerryError(
        'FERRY_STORE_CLOSED',
        `the SQLite metadata store '${this.#file}' was used after close(); open it again`,
      );
    }
    try {
      return fn();
    } catch (err) {
      if (err instanceof FerryError) throw err;
      throw new FerryError(
        'FERRY_BACKEND_UNAVAILABLE',
        `SQLite metadata store '${this.#file}' failed: ${errorMessage(err)}`,
        { cause: err },
      );
    }
  }

  #versionNotFound(model: string, version: number): FerryError {
    if (this.#sql.versionCount.get(model)?.count === 0) {
      return new FerryError(
        'FERRY_MODEL_NOT_FOUND',
        `no model is registered as '${model}'; list models with \`ferry models list\``,
      );
    }
    return new FerryError(
      'FERRY_MODEL_VERSION_NOT_FOUND',
      `model '${model}' has no version ${version}; see its versions with \`ferry models show ${model}\``,
    );
  }
}

type Statements = ReturnType<typeof prepareStatements>;

/** Every statement the store runs, prepared once per connection. */
function prepareStatements(db: Sqlite.Database) {
  const versionColumns = `model, version, runtime, artifact_key, sha256, size_bytes, signature,
    metrics, params, lineage, profile, description, created_at`;
  const runColumns = 'id, kind, name, status, params, metrics, outputs, started_at, ended_at';
  return {
    // The model row keeps the counter, so numbers of deleted versions are not reused.
    allocateVersion: db.prepare<[string, number, number], { last_version: number }>(
      `INSERT INTO models (name, last_version, created_at, updated_at) VALUES (?, 1, ?, ?)
       ON CONFLICT (name) DO UPDATE SET last_version = last_version + 1, updated_at = excluded.updated_at
       RETURNING last_version`,
    ),
    insertVersion: db.prepare<[ModelVersionRow]>(
      `INSERT INTO model_versions (${versionColumns}) VALUES (@model, @version, @runtime,
       @artifact_key, @sha256, @size_bytes, @signature, @metrics, @params, @lineage, @profile,
       @description, @created_at)`,
    ),
    getVersion: db.prepare<[string, number], ModelVersionRow>(
      `SELECT ${versionColumns} FROM model_versions WHERE model = ? AND version = ?`,
    ),
    getVersionExists: db.prepare<[string, number], { one: number }>(
      'SELECT 1 AS one FROM model_versions WHERE model = ? AND version = ?',
    ),
    versionCount: db.prepare<[string], { count: number }>(
      'SELECT COUNT(*) AS count FROM model_versions WHERE model = ?',
    ),
    listVersions: db.prepare<[string], ModelVersionRow>(
      `SELECT ${versionColumns} FROM model_versions WHERE model = ? ORDER BY version`,
    ),
    deleteVersion: db.prepare<[string, number]>(
      'DELETE FROM model_versions WHERE model = ? AND version = ?',
    ),
    // A model whose versions were all deleted keeps its row (and counter) but is not listed.
    modelSummaries: db.prepare<[], ModelSummaryRow>(
      `SELECT m.name AS name, MAX(v.version) AS latest, COUNT(*) AS count, m.updated_at AS updated_at
       FROM models m JOIN model_versions v ON v.model = m.name
       GROUP BY m.name ORDER BY m.name`,
    ),
    touchModel: db.prepare<[number, string]>('UPDATE models SET updated_at = ? WHERE name = ?'),
    upsertAlias: db.prepare<[string, string, number, number]>(
      `INSERT INTO aliases (model, alias, version, updated_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (model, alias) DO UPDATE SET version = excluded.version, updated_at = excluded.updated_at`,
    ),
    deleteAlias: db.prepare<[string, string]>('DELETE FROM aliases WHERE model = ? AND alias = ?'),
    aliasesOf: db.prepare<[string], AliasRow>(
      'SELECT model, alias, version FROM aliases WHERE model = ? ORDER BY alias',
    ),
    aliasesOfVersion: db.prepare<[string, number], AliasRow>(
      'SELECT model, alias, version FROM aliases WHERE model = ? AND version = ? ORDER BY alias',
    ),
    allAliases: db.prepare<[], AliasRow>(
      'SELECT model, alias, version FROM aliases ORDER BY model, alias',
    ),
    insertRun: db.prepare<[RunRow]>(
      `INSERT INTO runs (${runColumns}) VALUES (@id, @kind, @name, @status, @params, @metrics,
       @outputs, @started_at, @ended_at)`,
    ),
    updateRun: db.prepare<[RunRow]>(
      `UPDATE runs SET status = @status, metrics = @metrics, outputs = @outputs,
       ended_at = @ended_at WHERE id = @id`,
    ),
    getRun: db.prepare<[string], RunRow>(`SELECT ${runColumns} FROM runs WHERE id = ?`),
    // rowid breaks ties between runs started in the same millisecond: newest insert first.
    listRuns: db.prepare<[number], RunRow>(
      `SELECT ${runColumns} FROM runs ORDER BY started_at DESC, rowid DESC LIMIT ?`,
    ),
    listRunsOfKind: db.prepare<[string, number], RunRow>(
      `SELECT ${runColumns} FROM runs WHERE kind = ? ORDER BY started_at DESC, rowid DESC LIMIT ?`,
    ),
    insertDocument: db.prepare<[Omit<DocumentRow, 'version'>], DocumentRow>(
      `INSERT INTO documents (kind, name, version, created_at, body)
       SELECT @kind, @name, COALESCE(MAX(version), 0) + 1, @created_at, @body
       FROM documents WHERE kind = @kind AND name = @name
       RETURNING kind, name, version, created_at, body`,
    ),
    getLatestDocument: db.prepare<[string, string], DocumentRow>(
      `SELECT kind, name, version, created_at, body FROM documents
       WHERE kind = ? AND name = ? ORDER BY version DESC LIMIT 1`,
    ),
    getDocumentVersion: db.prepare<[string, string, number], DocumentRow>(
      `SELECT kind, name, version, created_at, body FROM documents
       WHERE kind = ? AND name = ? AND version = ?`,
    ),
    listDocuments: db.prepare<[string, string], DocumentRow>(
      `SELECT d.kind, d.name, d.version, d.created_at, d.body FROM documents d
       JOIN (SELECT name, MAX(version) AS version FROM documents WHERE kind = ? GROUP BY name) newest
         ON newest.name = d.name AND newest.version = d.version
       WHERE d.kind = ? ORDER BY d.name`,
    ),
  };
}

function toModelVersion(row: ModelVersionRow): ModelVersion {
  return {
    model: row.model,
    version: row.version,
    runtime: row.runtime,
    artifactKey: row.artifact_key,
    sha256: row.sha256,
    sizeBytes: row.size_bytes,
    signature: JSON.parse(row.signature) as ModelSignature,
    metrics: JSON.parse(row.metrics) as Record<string, number>,
    params: JSON.parse(row.params) as JsonObject,
    lineage: JSON.parse(row.lineage) as JsonObject,
    profile: JSON.parse(row.profile) as TableProfile,
    ...(row.description === null ? {} : { description: row.description }),
    createdAt: row.created_at,
  };
}

function toRun(row: RunRow): Run {
  return {
    id: row.id,
    kind: row.kind,
    name: row.name,
    params: JSON.parse(row.params) as JsonObject,
    status: row.status,
    startedAt: row.started_at,
    endedAt: row.ended_at,
    metrics: JSON.parse(row.metrics) as Record<string, number>,
    outputs: JSON.parse(row.outputs) as JsonObject,
  };
}

function toDocument(row: DocumentRow): StoredDocument {
  return {
    kind: row.kind,
    name: row.name,
    version: row.version,
    createdAt: row.created_at,
    body: JSON.parse(row.body) as JsonObject,
  };
}

/** Shallow merge: keys in `update` replace the stored ones, the others stay. */
function mergeJson(stored: string, update: object | undefined): string {
  if (update === undefined) return stored;
  return JSON.stringify({ ...(JSON.parse(stored) as object), ...update });
}

function validateName(what: string, name: string): void {
  if (typeof name !== 'string' || !NAME_PATTERN.test(name)) {
    throw new FerryError(
      'FERRY_ARGUMENT_INVALID',
      `${what} name '${String(name)}' is invalid; use 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit`,
    );
  }
}

function validateAlias(alias: string): void {
  validateName('alias', alias);
  // `fraud@3` would be ambiguous between version 3 and an alias called '3'.
  if (/^[0-9]+$/.test(alias)) {
    throw new FerryError(
      'FERRY_ARGUMENT_INVALID',
      `alias name '${alias}' is invalid: an alias cannot be a number, which reads as a version; use a word such as 'champion'`,
    );
  }
}

function validateText(what: string, value: string): void {
  if (typeof value !== 'string' || value.length === 0) {
    throw new FerryError('FERRY_ARGUMENT_INVALID', `${what} must be a non-empty string`);
  }
}

function validateTime(what: string, value: number): void {
  if (!Number.isSafeInteger(value)) {
    throw new FerryError(
      'FERRY_ARGUMENT_INVALID',
      `${what} must be UTC milliseconds as a whole number; got ${value}`,
    );
  }
}

function validateMetrics(owner: string, metrics: Readonly<Record<string, number>>): void {
  for (const [name, value] of Object.entries(metrics)) {
    // JSON has no NaN or Infinity: storing one would silently read back as null.
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      throw new FerryError(
        'FERRY_ARGUMENT_INVALID',
        `${owner} metric '${name}' is ${String(value)}; metrics must be finite numbers (leave out a metric that could not be computed)`,
      );
    }
  }
}

function validateNewVersion(input: NewModelVersion): void {
  validateText('model runtime', input.runtime);
  validateText('model artifactKey', input.artifactKey);
  if (typeof input.sha256 !== 'string' || !SHA256_PATTERN.test(input.sha256)) {
    throw new FerryError(
      'FERRY_ARGUMENT_INVALID',
      `sha256 '${String(input.sha256)}' of model '${input.model}' must be 64 lowercase hex digits, as the artifact store returns it`,
    );
  }
  if (!Number.isSafeInteger(input.sizeBytes) || input.sizeBytes < 0) {
    throw new FerryError(
      'FERRY_ARGUMENT_INVALID',
      `sizeBytes of model '${input.model}' must be a whole number >= 0; got ${input.sizeBytes}`,
    );
  }
  validateMetrics(`model '${input.model}'`, input.metrics);
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
