import { readEvents } from './online-store.js';
import fs from 'node:fs';
import path from 'node:path';
import Sqlite from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { describeOnlineStoreConformance } from '../../testing/online-store.conformance.js';
import { runScript } from '../../testing/script.js';
import { tempDirs } from '../../testing/temp.js';
import { openSqliteOnlineStore } from './sqlite.js';

const tmp = tempDirs();

const conformanceFile = path.join(tmp.root, 'conformance', 'online.db');
describeOnlineStoreConformance('sqlite', () => openSqliteOnlineStore({ path: conformanceFile }));

function freshPath(name: string): string {
  return path.join(tmp.fresh(), name);
}

describe('SqliteOnlineStore', () => {
  it('creates the folder of its file, in WAL mode', async () => {
    const file = path.join(freshPath('nested'), 'deeper', 'online.db');
    const store = await openSqliteOnlineStore({ path: file });
    await store.writeLatest('fs', [{ key: 'k', ts: 1, values: { v: 1 } }]);
    await store.close();
    const db = new Sqlite(file, { readonly: true });
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    db.close();
  });

  it('prunes events older than retainMs before the newest event of the key, and only those', async () => {
    const store = await openSqliteOnlineStore({ path: freshPath('online.db') });
    const events = [100, 200, 300, 399, 400, 500].map((ts) => ({ key: 'k', ts, values: { ts } }));
    await store.appendEvents('fs', events, Infinity);
    await store.appendEvents('fs', [{ key: 'other', ts: 10, values: {} }], Infinity);
    // Newest is 600 after this write: the cutoff is 600 - 200 = 400, and 400 itself stays.
    await store.appendEvents('fs', [{ key: 'k', ts: 600, values: { ts: 600 } }], 200);
    expect((await readEvents(store, 'fs', 'k', -Infinity, Infinity)).map((e) => e.ts)).toEqual([
      400, 500, 600,
    ]);
    expect(await readEvents(store, 'fs', 'other', -Infinity, Infinity)).toHaveLength(1);
    // A late event older than the cutoff is pruned as soon as it lands.
    await store.appendEvents('fs', [{ key: 'k', ts: 50, values: { ts: 50 } }], 200);
    expect((await readEvents(store, 'fs', 'k', -Infinity, Infinity)).map((e) => e.ts)).toEqual([
      400, 500, 600,
    ]);
    await store.close();
  });

  it('keeps the events of a streamed key within retainMs and a sixteenth of it, pruning as the cutoff moves', async () => {
    const store = await openSqliteOnlineStore({ path: freshPath('online.db') });
    const retainMs = 1600;
    let most = 0;
    for (let ts = 0; ts <= 20_000; ts += 10) {
      await store.appendEvents('fs', [{ key: 'k', ts, values: { ts } }], retainMs);
      const kept = await readEvents(store, 'fs', 'k', -Infinity, Infinity);
      // Every event within retainMs of the newest is there, none older than a sixteenth more.
      expect(kept.length).toBeGreaterThanOrEqual(Math.min(ts, retainMs) / 10 + 1);
      expect(kept[0]?.ts).toBeGreaterThanOrEqual(ts - retainMs - retainMs / 16);
      most = Math.max(most, kept.length);
    }
    expect(most).toBeLessThanOrEqual((retainMs + retainMs / 16) / 10 + 1);
    // A late event already older than the cutoff goes at once, as does a key this store never pruned.
    await store.appendEvents('fs', [{ key: 'k', ts: 100, values: {} }], retainMs);
    expect((await readEvents(store, 'fs', 'k', -Infinity, Infinity))[0]?.ts).toBeGreaterThanOrEqual(
      20_000 - retainMs,
    );
    await store.close();
  });

  it('lets two stores on the same file see each other’s writes', async () => {
    const file = freshPath('online.db');
    const writer = await openSqliteOnlineStore({ path: file });
    const reader = await openSqliteOnlineStore({ path: file });
    await writer.writeLatest('fs', [{ key: 'k', ts: 1, values: { v: 'shared' } }]);
    expect(await reader.readLatest('fs', ['k'])).toEqual([{ ts: 1, values: { v: 'shared' } }]);
    await Promise.all([writer.close(), reader.close()]);
  });

  it('keeps an acknowledged write when the process is killed right after it', async () => {
    const file = freshPath('online.db');
    const script = `
      const { openSqliteOnlineStore } = await import('./src/feature-store/online/sqlite.ts');
      const store = await openSqliteOnlineStore({ path: process.argv[1] });
      await store.writeLatest('fs', [{ key: 'k', ts: 7, values: { survived: true } }]);
      await store.appendEvents('fs', [{ key: 'k', ts: 7, eventId: 'e', values: { n: 1 } }], 1000);
      process.kill(process.pid, 'SIGKILL');
    `;
    await expect(runScript(script, [file])).rejects.toMatchObject({ signal: 'SIGKILL' });
    const store = await openSqliteOnlineStore({ path: file });
    expect(await store.readLatest('fs', ['k'])).toEqual([{ ts: 7, values: { survived: true } }]);
    expect(await readEvents(store, 'fs', 'k', 0, 7)).toEqual([{ ts: 7, values: { n: 1 } }]);
    await store.close();
  });

  it('refuses to open a path that is not a database, with a coded error', async () => {
    const file = freshPath('not-a-db');
    fs.writeFileSync(file, 'this is not SQLite '.repeat(100));
    await expect(openSqliteOnlineStore({ path: file })).rejects.toMatchObject({
      code: 'FERRY_BACKEND_UNAVAILABLE',
    });
  });
});
