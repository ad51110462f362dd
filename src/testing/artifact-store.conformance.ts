/**
 * The ArtifactStore contract as Vitest cases, run against every backend (local files now, S3
 * later) so that they all behave the same. See `src/artifacts/artifact-store.ts`.
 *
 * The suite may share one store between its cases: each case writes under a prefix of its own.
 */
import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { ArtifactStore } from '../artifacts/artifact-store.js';
import { expectCode, trackOpened, uniqueName } from './harness.js';

export interface ArtifactStoreConformanceOptions {
  /** Runs once after all cases (delete the temporary folder or bucket). */
  readonly cleanup?: () => Promise<void>;
  /**
   * Changes the stored bytes of `key` behind the store's back (flip a byte of the file), so the
   * suite can check that `get` notices. Without it the corruption case is skipped.
   */
  readonly corrupt?: (key: string) => Promise<void>;
}

/**
 * Declares the conformance cases for one backend.
 *
 * @param open opens the store; every call must reach the same data, so that a case can close
 *   the store and open it again to check what was kept. Cases close what they open.
 * @example
 * describeArtifactStoreConformance('local', () => openLocalArtifactStore({ path: dir }), {
 *   corrupt: async (key) => flipFirstByte(path.join(dir, key)),
 * });
 */
export function describeArtifactStoreConformance(
  name: string,
  open: () => Promise<ArtifactStore>,
  options: ArtifactStoreConformanceOptions = {},
): void {
  describe(`ArtifactStore conformance: ${name}`, () => {
    const connect = trackOpened(open, options.cleanup);

    it('stores bytes and returns their SHA-256 and size', async () => {
      const store = await connect();
      const p = uniqueName('conformance');
      const abc = await store.put(`${p}/abc.txt`, new TextEncoder().encode('abc'));
      // The SHA-256 test vector of FIPS 180-2.
      expect(abc).toEqual({
        key: `${p}/abc.txt`,
        sha256: 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
        sizeBytes: 3,
      });

      const everyByte = Uint8Array.from({ length: 512 }, (_, i) => i % 256);
      const large = new Uint8Array(randomBytes(3 * 1024 * 1024 + 7));
      for (const [key, data] of [
        [`${p}/bytes.bin`, everyByte],
        [`${p}/deep/er/large.bin`, large],
        [`${p}/empty`, new Uint8Array(0)],
      ] as const) {
        const stored = await store.put(key, data);
        expect(stored).toEqual({ key, sha256: sha256(data), sizeBytes: data.byteLength });
        expectSameBytes(await store.get(key), data);
        expectSameBytes(await store.get(key, stored.sha256), data);
        expect(await store.exists(key)).toBe(true);
      }
    });

    it('keeps what was put even when the caller reuses its buffers', async () => {
      const store = await connect();
      const key = `${uniqueName('conformance')}/model.bin`;
      const data = new Uint8Array([1, 2, 3, 4]);
      await store.put(key, data);
      data[0] = 99;
      const read = await store.get(key);
      read[1] = 99;
      expect(bytesOf(await store.get(key))).toEqual([1, 2, 3, 4]);
    });

    it('reports a missing key as not found', async () => {
      const store = await connect();
      const p = uniqueName('conformance');
      await store.put(`${p}/a/b.bin`, new Uint8Array([1]));
      for (const key of [`${p}/missing.bin`, `${p}/a`, `${p}/a/b.bin/c`]) {
        await expectCode(store.get(key), 'FERRY_ARTIFACT_NOT_FOUND');
        await expectCode(store.get(key, sha256(new Uint8Array([1]))), 'FERRY_ARTIFACT_NOT_FOUND');
        expect(await store.exists(key)).toBe(false);
      }
    });

    it('refuses bytes whose SHA-256 is not the expected one', async () => {
      const store = await connect();
      const key = `${uniqueName('conformance')}/model.bin`;
      const stored = await store.put(key, new TextEncoder().encode('weights v1'));
      const other = sha256(new TextEncoder().encode('weights v2'));
      const err = await expectCode(store.get(key, other), 'FERRY_ARTIFACT_CORRUPT');
      expect(err.message).toContain(key);
      expect(bytesOf(await store.get(key, stored.sha256.toUpperCase()))).toEqual(
        bytesOf(new TextEncoder().encode('weights v1')),
      );
      await expectCode(store.get(key, 'not-a-hash'), 'FERRY_ARGUMENT_INVALID');
    });

    it.skipIf(options.corrupt === undefined)(
      'notices bytes changed behind its back (skipped when the backend gives no corrupt hook)',
      async () => {
        const store = await connect();
        const key = `${uniqueName('conformance')}/model.bin`;
        const stored = await store.put(key, new Uint8Array(randomBytes(4096)));
        await options.corrupt?.(key);
        await expectCode(store.get(key, stored.sha256), 'FERRY_ARTIFACT_CORRUPT');
      },
    );

    it('accepts only relative keys of [A-Za-z0-9._-] segments', async () => {
      const store = await connect();
      const p = uniqueName('conformance');
      const bad = [
        '',
        '/abs/key',
        `${p}//double`,
        `${p}/trailing/`,
        '../escape',
        `${p}/../escape`,
        `./${p}/dot`,
        `${p}/.`,
        `${p}/with space`,
        `${p}\\backslash`,
        `${p}/naïve`,
        `${p}/tilde~`,
        `${p}/colon:x`,
        `${p}/${'s'.repeat(256)}`,
      ];
      const data = new Uint8Array([7]);
      for (const key of bad) {
        await expectCode(store.put(key, data), 'FERRY_ARGUMENT_INVALID');
        await expectCode(store.get(key), 'FERRY_ARGUMENT_INVALID');
        await expectCode(store.exists(key), 'FERRY_ARGUMENT_INVALID');
        await expectCode(store.delete(key), 'FERRY_ARGUMENT_INVALID');
      }
      for (const key of [`${p}/A-z_0.9`, `${p}/...`, `${p}/.hidden`, `${p}/${'s'.repeat(255)}`]) {
        await store.put(key, data);
        expect(await store.exists(key)).toBe(true);
      }
    });

    it('is immutable: the same bytes again are a no-op, other bytes are refused', async () => {
      const store = await connect();
      const key = `${uniqueName('conformance')}/model.bin`;
      const v1 = new TextEncoder().encode('weights v1');
      const first = await store.put(key, v1);
      expect(await store.put(key, new TextEncoder().encode('weights v1'))).toEqual(first);
      const err = await expectCode(
        store.put(key, new TextEncoder().encode('weights v2')),
        'FERRY_ARGUMENT_INVALID',
      );
      expect(err.message).toContain(key);
      await expectCode(store.put(key, new Uint8Array(0)), 'FERRY_ARGUMENT_INVALID');
      expect(bytesOf(await store.get(key, first.sha256))).toEqual(bytesOf(v1));
    });

    it('lets exactly one of many concurrent puts of different bytes to one key win', async () => {
      const store = await connect();
      const key = `${uniqueName('conformance')}/race.bin`;
      const candidates = Array.from(
        { length: 10 },
        (_, i) => new Uint8Array(randomBytes(1000 + i)),
      );
      const results = await Promise.allSettled(candidates.map((c) => store.put(key, c)));
      const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
      expect(won).toHaveLength(1);
      for (const r of results) {
        if (r.status === 'rejected')
          expect(r.reason).toMatchObject({ code: 'FERRY_ARGUMENT_INVALID' });
      }
      const winner = candidates[won[0] ?? -1] ?? new Uint8Array();
      expect(bytesOf(await store.get(key, sha256(winner)))).toEqual(bytesOf(winner));
    });

    it('accepts concurrent puts of the same bytes to one key', async () => {
      const store = await connect();
      const key = `${uniqueName('conformance')}/same.bin`;
      const data = new Uint8Array(randomBytes(10_000));
      const results = await Promise.all(range(10).map(() => store.put(key, data)));
      for (const r of results) expect(r).toEqual({ key, sha256: sha256(data), sizeBytes: 10_000 });
      expect(bytesOf(await store.get(key))).toEqual(bytesOf(data));
    });

    it('lists keys that start with a prefix, sorted', async () => {
      const store = await connect();
      const p = uniqueName('conformance');
      const keys = [`${p}/models/b`, `${p}/models/a/2.bin`, `${p}/models/a.json`, `${p}/models/C`];
      keys.push(`${p}/models/a/10.bin`, `${p}/modelsX/z`, `${p}/other/1`);
      for (const key of keys) await store.put(key, new TextEncoder().encode(key));

      const all = [...keys].sort();
      expect(await store.list(`${p}/`)).toEqual(all);
      expect(await store.list(p)).toEqual(all);
      // Byte order: 'C' < 'a' < 'b', '.' < '/', and '10' < '2'.
      expect(await store.list(`${p}/models/`)).toEqual([
        `${p}/models/C`,
        `${p}/models/a.json`,
        `${p}/models/a/10.bin`,
        `${p}/models/a/2.bin`,
        `${p}/models/b`,
      ]);
      expect(await store.list(`${p}/models/a`)).toEqual([
        `${p}/models/a.json`,
        `${p}/models/a/10.bin`,
        `${p}/models/a/2.bin`,
      ]);
      expect(await store.list(`${p}/models`)).toEqual(all.filter((k) => !k.includes('/other/')));
      expect(await store.list(`${p}/models/a/2.bin`)).toEqual([`${p}/models/a/2.bin`]);
      expect(await store.list(`${p}/nothing/`)).toEqual([]);
      const everything = await store.list();
      expect(everything.filter((k) => k.startsWith(`${p}/`))).toEqual(all);
      expect(everything).toEqual([...everything].sort());
      for (const prefix of ['/abs', '../', `${p}//`, `${p}/a b`]) {
        await expectCode(store.list(prefix), 'FERRY_ARGUMENT_INVALID');
      }
    });

    it('deletes a key; deleting a missing key is a no-op; a deleted key may be reused', async () => {
      const store = await connect();
      const p = uniqueName('conformance');
      await store.put(`${p}/keep.bin`, new Uint8Array([1]));
      await store.put(`${p}/drop.bin`, new Uint8Array([2]));
      await store.delete(`${p}/drop.bin`);
      await store.delete(`${p}/drop.bin`);
      await store.delete(`${p}/never/was.bin`);
      expect(await store.exists(`${p}/drop.bin`)).toBe(false);
      await expectCode(store.get(`${p}/drop.bin`), 'FERRY_ARTIFACT_NOT_FOUND');
      expect(await store.list(`${p}/`)).toEqual([`${p}/keep.bin`]);

      const again = await store.put(`${p}/drop.bin`, new Uint8Array([3, 3]));
      expect(bytesOf(await store.get(`${p}/drop.bin`, again.sha256))).toEqual([3, 3]);
    });

    it('keeps artifacts across close and reopen', async () => {
      const key = `${uniqueName('conformance')}/kept.bin`;
      const data = new Uint8Array(randomBytes(2048));
      const first = await connect();
      const stored = await first.put(key, data);
      await first.close();
      const second = await connect();
      expect(bytesOf(await second.get(key, stored.sha256))).toEqual(bytesOf(data));
      expect(await second.exists(key)).toBe(true);
    });

    it('may be closed twice, and refuses every call once closed', async () => {
      const store = await connect();
      await store.close();
      await store.close();
      const key = `${uniqueName('conformance')}/x`;
      const calls: (() => Promise<unknown>)[] = [
        () => store.put(key, new Uint8Array([1])),
        () => store.get(key),
        () => store.exists(key),
        () => store.delete(key),
        () => store.list(),
      ];
      for (const call of calls) await expectCode(call(), 'FERRY_STORE_CLOSED');
    });
  });
}

function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

function expectSameBytes(actual: Uint8Array, expected: Uint8Array): void {
  expect(actual.byteLength).toBe(expected.byteLength);
  expect(Buffer.compare(actual, expected)).toBe(0);
}

/** Plain numbers, so that a Buffer and a Uint8Array of the same bytes compare equal. */
function bytesOf(data: Uint8Array): number[] {
  return Array.from(data);
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}
