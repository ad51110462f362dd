/**
 * ArtifactStore: immutable blobs (model artifacts, fitted preprocessing, reports) by key.
 * Embedded default: local files (`local.ts`).
 *
 * Contract (checked by `src/testing/artifact-store.conformance.ts`):
 * - `put` resolves only once the bytes are durable, and returns their SHA-256 (hex);
 * - keys are relative paths of `[A-Za-z0-9._-]` segments joined by `/`; anything else
 *   (`..`, absolute paths, empty segments) is FERRY_ARGUMENT_INVALID;
 * - putting different bytes under an existing key is FERRY_ARGUMENT_INVALID (artifacts are
 *   immutable); putting the same bytes again is a no-op;
 * - `get` with `expectedSha256` throws FERRY_ARTIFACT_CORRUPT on mismatch, and a missing key is
 *   FERRY_ARTIFACT_NOT_FOUND.
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
  /** Keys under a prefix, sorted. */
  list(prefix?: string): Promise<string[]>;
  close(): Promise<void>;
}
