/**
 * Schema migrations of the SQLite metadata store, oldest first. A migration is never edited once
 * released: change the schema by appending the next number. `applyMigrations` runs the missing
 * ones in one transaction when a store opens and records each in `schema_migrations`, so a
 * database is always at a version this list names (or refused when it is newer).
 */
import type { Database } from 'better-sqlite3';
import { FerryError } from '../errors/index.js';

export interface Migration {
  /** 1, 2, 3... without gaps. */
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'models, versions, aliases, runs, documents',
    sql: `
      -- last_version survives deletions so that a version number is never given out twice.
      CREATE TABLE models (
        name TEXT PRIMARY KEY,
        last_version INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      );
      CREATE TABLE model_versions (
        model TEXT NOT NULL REFERENCES models (name),
        version INTEGER NOT NULL,
        runtime TEXT NOT NULL,
        artifact_key TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        size_bytes INTEGER NOT NULL,
        signature TEXT NOT NULL,
        metrics TEXT NOT NULL,
        params TEXT NOT NULL,
        lineage TEXT NOT NULL,
        profile TEXT NOT NULL,
        description TEXT,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (model, version)
      );
      CREATE TABLE aliases (
        model TEXT NOT NULL,
        alias TEXT NOT NULL,
        version INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (model, alias),
        FOREIGN KEY (model, version) REFERENCES model_versions (model, version)
      );
      CREATE INDEX aliases_by_version ON aliases (model, version);
      CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
        params TEXT NOT NULL,
        metrics TEXT NOT NULL,
        outputs TEXT NOT NULL,
        started_at INTEGER NOT NULL,
        ended_at INTEGER
      );
      CREATE INDEX runs_by_start ON runs (started_at);
      CREATE INDEX runs_by_kind_start ON runs (kind, started_at);
      CREATE TABLE documents (
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        version INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (kind, name, version)
      );
    `,
  },
];

/** The schema version this Ferry writes: the last migration's number. */
export const LATEST_SCHEMA_VERSION = MIGRATIONS.at(-1)?.version ?? 0;

/**
 * Brings `db` to the newest schema in `migrations`; returns the versions it applied. Either all of
 * them apply or none (one IMMEDIATE transaction, which also keeps two processes opening the same
 * new database from both migrating it).
 *
 * @example
 * const applied = applyMigrations(db); // [1] on a new database, [] afterwards
 */
export function applyMigrations(
  db: Database,
  migrations: readonly Migration[] = MIGRATIONS,
): number[] {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) {
      throw new FerryError(
        'FERRY_INTERNAL',
        `metadata migrations must be numbered 1, 2, 3... without gaps; found ${m.version} at position ${i + 1}`,
      );
    }
  });
  const latest = migrations.length;
  const run = db.transaction((): number[] => {
    db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version INTEGER PRIMARY KEY,
      name TEXT NOT NULL,
      applied_at INTEGER NOT NULL
    )`);
    const row = db
      .prepare<[], { v: number | null }>('SELECT MAX(version) AS v FROM schema_migrations')
      .get();
    const current = row?.v ?? 0;
    if (current > latest) {
      throw new FerryError(
        'FERRY_BACKEND_UNSUPPORTED',
        `database schema version ${current} is newer than this Ferry supports (${latest}); upgrade Ferry`,
      );
    }
    const record = db.prepare<[number, string, number]>(
      'INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)',
    );
    const applied: number[] = [];
    for (const m of migrations.slice(current)) {
      db.exec(m.sql);
      record.run(m.version, m.name, Date.now());
      applied.push(m.version);
    }
    return applied;
  });
  return run.immediate();
}
