/**
 * Temporary folders for tests on the real filesystem: one folder under the OS temp folder per
 * test file (or describe), removed with all it holds once its tests are done, so that runs leave
 * nothing behind; each case takes fresh subfolders of it and never meets another case's files.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll } from 'vitest';

export interface TempDirs {
  /** The folder itself, for what the whole file shares (a conformance suite's database). */
  readonly root: string;
  /** A new empty folder inside `root`. */
  fresh(): string;
}

/**
 * Makes the folder now and registers its removal after the tests of the current file or
 * describe: call it at the top level of either, not inside a test.
 * @example
 * const tmp = tempDirs();
 * it('…', async () => { const store = await openParquetOfflineStore({ path: tmp.fresh() }); });
 */
export function tempDirs(): TempDirs {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-'));
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
  return { root, fresh: () => fs.mkdtempSync(path.join(root, 'case-')) };
}
