/**
 * The embedded ArtifactStore: one file per key under a root folder (`models/fraud/3/model.json`
 * is `<root>/models/fraud/3/model.json`).
 *
 * A put is durable and never replaces other bytes: the data goes to a temporary file in the
 * target folder, is fsynced, then hard-linked to its name, which fails if the name exists (an
 * atomic create-if-absent, so two concurrent puts of one key cannot both win); the folders are
 * fsynced last so the new name survives a power loss. Temporary names contain '~', which no key
 * may, so they never show up as keys or collide with one.
 *
 * Known limits: a key and keys under it (`a` and `a/b`) cannot both exist, since `a` cannot be a
 * file and a folder at once (such a put is FERRY_ARGUMENT_INVALID); on a case-insensitive file
 * system (macOS, Windows by default) `Model.bin` and `model.bin` are the same key; on a file
 * system without hard links, two racing puts of one key are not kept apart.
 */
import { createHash, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { FerryError } from '../errors/index.js';
import type { ArtifactStore, StoredArtifact } from './artifact-store.js';
import { assertArtifactKey, assertArtifactPrefix, isArtifactKey } from './keys.js';

export interface LocalArtifactStoreOptions {
  /** Root folder; created if missing. */
  readonly path: string;
}

const SHA256_PATTERN = /^[0-9a-fA-F]{64}$/;
/** Errors of `link` on file systems without hard links; `put` then falls back to rename. */
const NO_HARD_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EXDEV']);

/**
 * Opens the artifact store rooted at `options.path`, creating the folder.
 *
 * @example
 * const artifacts = await openLocalArtifactStore({ path: '.ferry/artifacts' });
 * const { sha256 } = await artifacts.put('models/fraud/3/model.json', bytes);
 * const same = await artifacts.get('models/fraud/3/model.json', sha256);
 */
export async function openLocalArtifactStore(
  options: LocalArtifactStoreOptions,
): Promise<LocalArtifactStore> {
  const root = path.resolve(options.path);
  try {
    await fs.mkdir(root, { recursive: true });
    const stat = await fs.stat(root);
    if (!stat.isDirectory()) throw new Error('it is not a folder');
    await fsyncDir(path.dirname(root));
  } catch (err) {
    throw new FerryError(
      'FERRY_BACKEND_UNAVAILABLE',
      `cannot open the local artifact store at '${root}': ${errorMessage(err)}; point it at a writable folder`,
      { cause: err },
    );
  }
  return new LocalArtifactStore(root);
}

export class LocalArtifactStore implements ArtifactStore {
  readonly backend = 'local';
  /** Absolute root folder. */
  readonly root: string;
  #closed = false;

  /** Use `openLocalArtifactStore`, which creates the root folder. */
  constructor(root: string) {
    this.root = root;
  }

  async put(key: string, data: Uint8Array): Promise<StoredArtifact> {
    this.#checkOpen();
    assertArtifactKey(key);
    const sha256 = createHash('sha256').update(data).digest('hex');
    const stored = { key, sha256, sizeBytes: data.byteLength };
    const file = this.#path(key);
    const dir = path.dirname(file);
    return this.#io(key, async () => {
      try {
        await fs.mkdir(dir, { recursive: true });
      } catch (err) {
        if (hasCode(err, 'EEXIST', 'ENOTDIR')) throw this.#nested(key, err);
        throw err;
      }
      const tmp = path.join(dir, `~ferry-${randomBytes(8).toString('hex')}.tmp`);
      try {
        const handle = await fs.open(tmp, 'wx');
        try {
          await handle.writeFile(data);
          await handle.sync();
        } finally {
          await handle.close();
        }
        let outcome = await linkIfAbsent(tmp, file);
        if (outcome === 'unsupported') {
          // Without hard links there is no atomic create-if-absent: check, then rename.
          // (Two puts racing here may both rename; the last one wins.)
          outcome = (await pathExists(file)) ? 'exists' : 'created';
          if (outcome === 'created') await fs.rename(tmp, file);
        }
        if (outcome === 'exists') await this.#checkSame(key, file, sha256);
      } finally {
        await fs.rm(tmp, { force: true });
      }
      await this.#syncFolders(dir);
      return stored;
    });
  }

  async get(key: string, expectedSha256?: string): Promise<Uint8Array> {
    this.#checkOpen();
    assertArtifactKey(key);
    if (expectedSha256 !== undefined && !SHA256_PATTERN.test(expectedSha256)) {
      throw new FerryError(
        'FERRY_ARGUMENT_INVALID',
        `expected SHA-256 '${expectedSha256}' for artifact '${key}' is not 64 hex digits`,
      );
    }
    return this.#io(key, async () => {
      let buf: Buffer;
      try {
        buf = await fs.readFile(this.#path(key));
      } catch (err) {
        if (hasCode(err, 'ENOENT', 'ENOTDIR', 'EISDIR')) throw this.#notFound(key, err);
        throw err;
      }
      if (expectedSha256 !== undefined) {
        const actual = createHash('sha256').update(buf).digest('hex');
        if (actual !== expectedSha256.toLowerCase()) {
          throw new FerryError(
            'FERRY_ARTIFACT_CORRUPT',
            `artifact '${key}' in '${this.root}' has SHA-256 ${actual} but ${expectedSha256.toLowerCase()} was recorded; the file was changed or damaged: restore it, or register the model again`,
          );
        }
      }
      return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
    });
  }

  async exists(key: string): Promise<boolean> {
    this.#checkOpen();
    assertArtifactKey(key);
    return this.#io(key, () => exists(this.#path(key)));
  }

  async delete(key: string): Promise<void> {
    this.#checkOpen();
    assertArtifactKey(key);
    const file = this.#path(key);
    return this.#io(key, async () => {
      try {
        await fs.unlink(file);
      } catch (err) {
        if (hasCode(err, 'ENOENT', 'ENOTDIR')) return;
        // A folder of other keys is not an artifact: nothing to delete (macOS says EPERM).
        if (hasCode(err, 'EISDIR', 'EPERM') && (await fs.stat(file)).isDirectory()) return;
        throw err;
      }
      await fsyncDir(path.dirname(file));
    });
  }

  async list(prefix = ''): Promise<string[]> {
    this.#checkOpen();
    assertArtifactPrefix(prefix);
    // Walk only the deepest folder the prefix names in full.
    const startRel = prefix.slice(0, prefix.lastIndexOf('/') + 1);
    const keys: string[] = [];
    const walk = async (rel: string): Promise<void> => {
      let entries;
      try {
        entries = await fs.readdir(path.join(this.root, rel), { withFileTypes: true });
      } catch (err) {
        if (hasCode(err, 'ENOENT', 'ENOTDIR')) return;
        throw err;
      }
      for (const entry of entries) {
        const key = rel + entry.name;
        if (!isArtifactKey(key)) continue; // temporary files, foreign names
        if (entry.isDirectory()) {
          const sub = `${key}/`;
          if (sub.startsWith(prefix) || prefix.startsWith(sub)) await walk(sub);
        } else if (entry.isFile() && key.startsWith(prefix)) {
          keys.push(key);
        }
      }
    };
    await this.#io(prefix, () => walk(startRel));
    return keys.sort();
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  #path(key: string): string {
    return path.join(this.root, ...key.split('/'));
  }

  #checkOpen(): void {
    if (this.#closed) {
      throw new FerryError(
        'FERRY_STORE_CLOSED',
        `the local artifact store at '${this.root}' was used after close(); open it again`,
      );
    }
  }

  /** Runs a file-system operation, turning unexpected failures into coded errors. */
  async #io<T>(key: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof FerryError) throw err;
      throw new FerryError(
        'FERRY_BACKEND_UNAVAILABLE',
        `local artifact store at '${this.root}' failed on '${key}': ${errorMessage(err)}`,
        { cause: err },
      );
    }
  }

  /** An existing `file` is fine only when it holds exactly the bytes being put. */
  async #checkSame(key: string, file: string, sha256: string): Promise<void> {
    const stat = await fs.stat(file);
    if (stat.isDirectory()) throw this.#nested(key);
    const existing = createHash('sha256')
      .update(await fs.readFile(file))
      .digest('hex');
    if (existing !== sha256) {
      throw new FerryError(
        'FERRY_ARGUMENT_INVALID',
        `artifact '${key}' already exists with other content (SHA-256 ${existing}, not ${sha256}); artifacts are immutable: put the new bytes under a new key`,
      );
    }
  }

  /** fsyncs `dir` and each folder above it up to the root, so every new name is durable. */
  async #syncFolders(dir: string): Promise<void> {
    for (let d = dir; ; d = path.dirname(d)) {
      await fsyncDir(d);
      if (d === this.root || !d.startsWith(this.root)) return;
    }
  }

  #nested(key: string, cause?: unknown): FerryError {
    return new FerryError(
      'FERRY_ARGUMENT_INVALID',
      `artifact key '${key}' clashes with an existing key: the local store cannot hold both a key and keys under it (such as 'a' and 'a/b'); choose another key`,
      { cause },
    );
  }

  #notFound(key: string, cause: unknown): FerryError {
    return new FerryError(
      'FERRY_ARTIFACT_NOT_FOUND',
      `artifact '${key}' is not in the local artifact store at '${this.root}'; check that ferry.yaml points to the store the model was registered with`,
      { cause },
    );
  }
}

async function linkIfAbsent(
  from: string,
  to: string,
): Promise<'created' | 'exists' | 'unsupported'> {
  try {
    await fs.link(from, to);
    return 'created';
  } catch (err) {
    if (hasCode(err, 'EEXIST')) return 'exists';
    if (hasCode(err, ...NO_HARD_LINKS)) return 'unsupported';
    throw err;
  }
}

async function pathExists(p: string): Promise<boolean> {
  try {
    await fs.lstat(p);
    return true;
  } catch (err) {
    if (hasCode(err, 'ENOENT', 'ENOTDIR')) return false;
    throw err;
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    return (await fs.stat(file)).isFile();
  } catch (err) {
    if (hasCode(err, 'ENOENT', 'ENOTDIR')) return false;
    throw err;
  }
}

async function fsyncDir(dir: string): Promise<void> {
  // Windows cannot open a folder for fsync; NTFS journals its metadata anyway.
  if (process.platform === 'win32') return;
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function errorCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null || !('code' in err)) return undefined;
  return typeof err.code === 'string' ? err.code : undefined;
}

function hasCode(err: unknown, ...codes: string[]): boolean {
  const code = errorCode(err);
  return code !== undefined && codes.includes(code);
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
