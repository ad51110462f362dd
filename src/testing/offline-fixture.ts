/**
 * A real Parquet offline store per test case, in a folder of its own that is removed after the
 * file's tests (through `tempDirs`). For tests of code that writes to the offline store.
 */
import path from 'node:path';
import { afterEach, beforeEach } from 'vitest';
import {
  openParquetOfflineStore,
  type ParquetOfflineStore,
} from '../feature-store/offline/parquet.js';
import { tempDirs } from './temp.js';

export interface OfflineFixture {
  /** The case's folder (for reference files and the like); the store lives in `offline/` inside. */
  readonly dir: string;
  readonly offline: ParquetOfflineStore;
}

/**
 * Call at the top level of a test file; read the fields inside tests.
 * @example const fx = offlineFixture(); it('…', async () => { await fx.offline.append(...) });
 */
export function offlineFixture(): OfflineFixture {
  const tmp = tempDirs();
  let current: { dir: string; offline: ParquetOfflineStore } | undefined;
  beforeEach(async () => {
    const dir = tmp.fresh();
    current = { dir, offline: await openParquetOfflineStore({ path: path.join(dir, 'offline') }) };
  });
  afterEach(async () => {
    await current?.offline.close();
    current = undefined;
  });
  const get = (): { dir: string; offline: ParquetOfflineStore } => {
    if (!current) throw new Error('offlineFixture() is read outside a test');
    return current;
  };
  return {
    get dir() {
      return get().dir;
    },
    get offline() {
      return get().offline;
    },
  };
}
