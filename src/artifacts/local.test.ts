import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { describeArtifactStoreConformance } from '../testing/artifact-store.conformance.js';
import { tempDirs } from '../testing/temp.js';
import { openLocalArtifactStore } from './local.js';

const tmp = tempDirs();

const conformanceRoot = path.join(tmp.root, 'conformance');
describeArtifactStoreConformance('local', () => openLocalArtifactStore({ path: conformanceRoot }), {
  corrupt: async (key) => {
    const file = path.join(conformanceRoot, key);
    const bytes = fs.readFileSync(file);
    bytes[bytes.length >> 1] = (bytes[bytes.length >> 1] ?? 0) ^ 0x01;
    fs.writeFileSync(file, bytes);
  },
});

/** Every file under `dir`, relative, sorted. */
function filesUnder(dir: string): string[] {
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
    .sort();
}

describe('LocalArtifactStore', () => {
  it('keeps each artifact as a file at its key under the root, and nothing else', async () => {
    const root = tmp.fresh();
    const store = await openLocalArtifactStore({ path: root });
    await store.put('models/fraud/1.bin', new Uint8Array([1, 2, 3]));
    await store.put('models/fraud/1.bin', new Uint8Array([1, 2, 3]));
    await store.put('reports/drift.json', new TextEncoder().encode('{"psi":0.1}'));
    await expect(store.put('models/fraud/1.bin', new Uint8Array([9]))).rejects.toMatchObject({
      code: 'FERRY_ARGUMENT_INVALID',
    });
    await Promise.allSettled([1, 2, 3].map((i) => store.put('race.bin', new Uint8Array([i]))));

    // No temporary file is left behind, even by refused puts.
    expect(filesUnder(root)).toEqual(['models/fraud/1.bin', 'race.bin', 'reports/drift.json']);
    expect([...fs.readFileSync(path.join(root, 'models/fraud/1.bin'))]).toEqual([1, 2, 3]);
    await store.close();
  });

  it('creates the root folder, and refuses a root that is a file', async () => {
    const root = path.join(tmp.root, 'deep', 'er', 'artifacts');
    const store = await openLocalArtifactStore({ path: root });
    expect(fs.statSync(root).isDirectory()).toBe(true);
    await store.close();

    const file = path.join(tmp.root, 'a-file');
    fs.writeFileSync(file, 'x');
    const err = await openLocalArtifactStore({ path: file }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'FERRY_BACKEND_UNAVAILABLE' });
    expect((err as Error).message).toContain(file);
  });

  it('refuses a key that would be both an artifact and a folder of artifacts', async () => {
    const store = await openLocalArtifactStore({ path: tmp.fresh() });
    await store.put('a/b', new Uint8Array([1]));
    await store.put('c', new Uint8Array([2]));
    await expect(store.put('a', new Uint8Array([3]))).rejects.toMatchObject({
      code: 'FERRY_ARGUMENT_INVALID',
    });
    await expect(store.put('c/d', new Uint8Array([4]))).rejects.toMatchObject({
      code: 'FERRY_ARGUMENT_INVALID',
    });
    expect(await store.exists('a')).toBe(false);
    await store.delete('a'); // a folder, not an artifact: nothing to delete
    expect(await store.list()).toEqual(['a/b', 'c']);
    await store.close();
  });

  it('lists only names that are keys, skipping temporary and foreign files', async () => {
    const root = tmp.fresh();
    const store = await openLocalArtifactStore({ path: root });
    await store.put('models/m.bin', new Uint8Array([1]));
    fs.writeFileSync(path.join(root, 'models', '~ferry-0123456789abcdef.tmp'), 'partial');
    fs.writeFileSync(path.join(root, 'models', 'notes from a user.txt'), 'hello');
    fs.mkdirSync(path.join(root, 'bad dir'));
    fs.writeFileSync(path.join(root, 'bad dir', 'x'), 'x');
    expect(await store.list()).toEqual(['models/m.bin']);
    await store.close();
  });
});
