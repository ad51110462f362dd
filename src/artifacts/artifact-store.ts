/**
 * ArtifactStore: immutable blobs (model artifacts, fitted preprocessing, reports) by key.
 * Embedded default: local files (`local.ts`).
 *
 * Contract (checked by `src/testing/artifact-store.conformance.ts`):
 * - `put` resolves only once the bytes are durable, and returns their SHA-256 (hex);
 * - keys are relative paths of `[A-Za-z0-9._-]` segments joined by `/`; anything else
 *   (`..`, absolute paths, empty segments) is FERRY_ARGUMENT_INVALID; `keys.ts` checks them
 *   (segments of at most 255 characters, keys of at most 1024);
 * - putting different bytes under an existing key is FERRY_ARGUMENT_INVALID (artifacts are
 *   immutable), also when puts race: exactly one wins; putting the same bytes again is a no-op;
 * - `get` with `expectedSha256` throws FERRY_ARTIFACT_CORRUPT on mismatch, and a missing key is
 *   FERRY_ARTIFACT_NOT_FOUND;
 * - deleting a missing key is a no-op; a deleted key may be put again;
 * - after `close()` (which may be called twice) every call throws FERRY_STORE_CLOSED.
 */

export interface StoredArtifact {
  readonly key: string;
  readonly sha256: string;
  readonly sizeBytes: number;
}

export interface ArtifactStore {
  readonly backend: string;
  put(key: string, data: Uint8Array): Promise<StoredArtifact>;
  get(key: string, expectedSha256?: string): Promise<Uint8Array>;
  exists(key: string): Promise<boolean>;
  delete(key: string): Promise<void>;
  /** Keys that start with `prefix` (a plain string prefix, as in S3), sorted by byte order. */
  list(prefix?: string): Promise<string[]>;
  close(): Promise<void>;
}
