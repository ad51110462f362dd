/**
 * What every conformance suite shares: closing the backends a case opened, cleaning up once at
 * the end, names no other case (or earlier run on the same engine) uses, and checking error codes.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, expect } from 'vitest';
import type { ErrorCode } from '../errors/index.js';

/** Anything a suite opens and must close: a store, a bus. */
export interface Closable {
  close(): Promise<void>;
}

/**
 * Registers, in the current `describe`, hooks that close after each case every backend the case
 * opened, and run `cleanup` once after all cases. Returns the `connect` that cases call instead
 * of `open`.
 * @example
 * describe(`OnlineStore conformance: ${name}`, () => {
 *   const connect = trackOpened(open, cleanup);
 *   it('…', async () => { const store = await connect(); … });
 * });
 */
export function trackOpened<T extends Closable>(
  open: () => Promise<T>,
  cleanup?: () => Promise<void>,
): () => Promise<T> {
  const opened: T[] = [];
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((backend) => backend.close()));
  });
  if (cleanup) afterAll(cleanup);
  return async () => {
    const backend = await open();
    opened.push(backend);
    return backend;
  };
}

/**
 * `<prefix>_` and 12 random hex digits: valid as a model name, a feature set, an offline table,
 * a subject token and an artifact key, so that cases sharing one engine never meet.
 * @example uniqueName('fs') // 'fs_3f9c0a71b2d4'
 */
export function uniqueName(prefix: string): string {
  return `${prefix}_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
}

/**
 * Awaits a rejection with the given Ferry error code and returns the error.
 * @example const err = await expectCode(store.get('nope'), 'FERRY_ARTIFACT_NOT_FOUND');
 */
export async function expectCode(promise: Promise<unknown>, code: ErrorCode): Promise<Error> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `expected a rejection with ${code}`).toBeInstanceOf(Error);
  expect(err).toMatchObject({ code });
  return err as Error;
}
