import fs from 'node:fs';
import path from 'node:path';
import Sqlite from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { describeMetadataStoreConformance } from '../testing/metadata-store.conformance.js';
import { runScript } from '../testing/script.js';
import { tempDirs } from '../testing/temp.js';
import { LATEST_SCHEMA_VERSION, MIGRATIONS, applyMigrations } from './migrations.js';
import type { NewModelVersion } from './metadata-store.js';
import { openSqliteMetadataStore } from './sqlite.js';

const tmp = tempDirs();

const conformanceFile = path.join(tmp.root, 'conformance', 'metadata.db');
describeMetadataStoreConformance('sqlite', () =>
  openSqliteMetadataStore({ path: conformanceFile }),
);

function freshPath(name: string): string {
  return path.join(tmp.fresh(), name);
}

function version(model: string): NewModelVersion {
  return {
    model,
    runtime: 'native',
    artifactKey: `models/${model}.bin`,
    sha256: '0'.repeat(64),
    sizeBytes: 1,
    signature: { task: 'regression', target: 'y', inputs: [{ name: 'x', type: 'float' }] },
    metrics: { rmse: 1.5 },
    params: {},
    lineage: {},
    profile: { rowCount: 0, columns: {} },
  };
}

describe('SqliteMetadataStore', () => {
  it('creates missing parent folders and puts the file in WAL mode', async () => {
    const file = path.join(tmp.root, 'nested', 'a', 'b', 'metadata.db');
    const store = await openSqliteMetadataStore({ path: file });
    await store.registerModelVersion(version('fraud'));
    await store.close();
    const db = new Sqlite(file, { readonly: true });
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    db.close();
  });

  it('applies each migration once and records it', async () => {
    const file = freshPath('metadata.db');
    await (await openSqliteMetadataStore({ path: file })).close();
    const read = () => {
      const db = new Sqlite(file, { readonly: true });
      const rows = db
        .prepare('SELECT version, name, applied_at FROM schema_migrations ORDER BY version')
        .all();
      db.close();
      return rows;
    };
    const first = read();
    expect(first).toEqual(
      MIGRATIONS.map((m) => ({ version: m.version, name: m.name, applied_at: expect.any(Number) })),
    );

    const store = await openSqliteMetadataStore({ path: file });
    await store.registerModelVersion(version('fraud'));
    await store.close();
    const again = await openSqliteMetadataStore({ path: file });
    expect((await again.listModelVersions('fraud')).map((v) => v.version)).toEqual([1]);
    await again.close();
    expect(read()).toEqual(first);
  });

  it('numbers migrations 1, 2, 3... and applies only the missing ones', () => {
    expect(MIGRATIONS.map((m) => m.version)).toEqual(MIGRATIONS.map((_, i) => i + 1));
    expect(LATEST_SCHEMA_VERSION).toBe(MIGRATIONS.length);
    const db = new Sqlite(':memory:');
    expect(applyMigrations(db, MIGRATIONS.slice(0, 1))).toEqual([1]);
    const extra = {
      version: MIGRATIONS.length + 1,
      name: 'extra',
      sql: 'CREATE TABLE extra (x INTEGER)',
    };
    expect(applyMigrations(db, [...MIGRATIONS, extra])).toEqual(
      [...MIGRATIONS.slice(1), extra].map((m) => m.version),
    );
    expect(applyMigrations(db, [...MIGRATIONS, extra])).toEqual([]);
    db.close();
  });

  it('rolls back every migration of an open when one fails', () => {
    const db = new Sqlite(':memory:');
    const broken = {
      version: 2,
      name: 'broken',
      sql: 'CREATE TABLE half (x); SELECT nope FROM nowhere',
    };
    expect(() => applyMigrations(db, [MIGRATIONS[0]!, broken])).toThrow(/nowhere/);
    const tables = db
      .prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'table'")
      .all();
    expect(tables).toEqual([]);
    db.close();
  });

  it('refuses a database migrated by a newer Ferry, and leaves it untouched', async () => {
    const file = freshPath('metadata.db');
    const store = await openSqliteMetadataStore({ path: file });
    await store.registerModelVersion(version('fraud'));
    await store.close();
    const newer = LATEST_SCHEMA_VERSION + 5;
    const db = new Sqlite(file);
    db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(
      newer,
      'from the future',
      Date.now(),
    );
    db.close();

    await expect(openSqliteMetadataStore({ path: file })).rejects.toMatchObject({
      code: 'FERRY_BACKEND_UNSUPPORTED',
      message: `database schema version ${newer} is newer than this Ferry supports (${LATEST_SCHEMA_VERSION}); upgrade Ferry`,
    });
    const check = new Sqlite(file, { readonly: true });
    expect(check.prepare('SELECT COUNT(*) AS n FROM model_versions').get()).toEqual({ n: 1 });
    check.close();
  });

  it('reports a file that is not a database as an unavailable backend naming the file', async () => {
    const file = freshPath('not-a-db.db');
    fs.writeFileSync(file, 'this is a text file, not SQLite'.repeat(100));
    const err = await openSqliteMetadataStore({ path: file }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'FERRY_BACKEND_UNAVAILABLE' });
    expect(String((err as Error).message)).toContain(file);
  });

  it('works in memory', async () => {
    const store = await openSqliteMetadataStore({ path: ':memory:' });
    await store.registerModelVersion(version('fraud'));
    await store.setAlias('fraud', 'champion', 1);
    expect(await store.getAliases('fraud')).toEqual({ champion: 1 });
    await store.close();
  });

  it('gives distinct versions to registrations from several processes at once', async () => {
    const file = freshPath('shared.db');
    // Create and migrate first, so that the processes race on registrations only.
    await (await openSqliteMetadataStore({ path: file })).close();
    const script = `
      const { openSqliteMetadataStore } = await import(${JSON.stringify(new URL('./sqlite.ts', import.meta.url).href)});
      const [file, model, n, startAt] = process.argv.slice(1);
      const store = await openSqliteMetadataStore({ path: file, busyTimeoutMs: 30000 });
      // Start together, so that the registrations really contend for the write lock.
      await new Promise((resolve) => setTimeout(resolve, Number(startAt) - Date.now()));
      const base = ${JSON.stringify(version('placeholder'))};
      const versions = [];
      for (let i = 0; i < Number(n); i++) {
        versions.push((await store.registerModelVersion({ ...base, model, artifactKey: 'k' + process.pid + '-' + i })).version);
      }
      await store.close();
      console.log(JSON.stringify(versions));
    `;
    const processes = 4;
    const each = 25;
    const startAt = Date.now() + 3000;
    const outputs = await Promise.all(
      Array.from({ length: processes }, () =>
        runScript(script, [file, 'fraud', String(each), String(startAt)]),
      ),
    );
    const got = outputs.flatMap((o) => JSON.parse(o.stdout) as number[]).sort((a, b) => a - b);
    expect(got).toEqual(Array.from({ length: processes * each }, (_, i) => i + 1));

    const store = await openSqliteMetadataStore({ path: file });
    const listed = await store.listModelVersions('fraud');
    expect(listed.map((v) => v.version)).toEqual(got);
    expect(new Set(listed.map((v) => v.artifactKey)).size).toBe(processes * each);
    await store.close();
  });
});
