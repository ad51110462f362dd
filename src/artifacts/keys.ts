/**
 * Artifact keys, shared by every ArtifactStore backend so that a key valid on one is valid on all:
 * relative paths of `[A-Za-z0-9._-]` segments joined by `/`, never `.` or `..`, at most 255
 * characters a segment (a file name's limit) and 1024 in all (an S3 key's limit).
 */
import { FerryError } from '../errors/index.js';

const SEGMENT = /^[A-Za-z0-9._-]{1,255}$/;
const MAX_KEY_LENGTH = 1024;

/** True when `key` is a valid artifact key. */
export function isArtifactKey(key: string): boolean {
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY_LENGTH) return false;
  return key.split('/').every((s) => SEGMENT.test(s) && s !== '.' && s !== '..');
}

/**
 * Throws FERRY_ARGUMENT_INVALID unless `key` is a valid artifact key.
 *
 * @example
 * assertArtifactKey('models/fraud/3/model.json'); // fine
 * assertArtifactKey('../etc/passwd'); // throws
 */
export function assertArtifactKey(key: string): void {
  if (!isArtifactKey(key)) {
    throw new FerryError(
      'FERRY_ARGUMENT_INVALID',
      `artifact key '${String(key)}' is invalid; use a relative path of segments made of letters, digits, '.', '_' and '-' joined by '/' (no '..', no leading or double '/'), for example 'models/fraud/3/model.json'`,
    );
  }
}

/**
 * Throws FERRY_ARGUMENT_INVALID unless `prefix` is '' or the start of some valid key
 * (`models/`, `models/fr`).
 *
 * @example
 * assertArtifactPrefix('models/fraud/'); // fine
 */
export function assertArtifactPrefix(prefix: string): void {
  // A prefix is valid when completing it by one character could give a valid key.
  if (prefix !== '' && !isArtifactKey(`${prefix}x`)) {
    throw new FerryError(
      'FERRY_ARGUMENT_INVALID',
      `artifact prefix '${String(prefix)}' is invalid; use '' or the start of a key such as 'models/' or 'models/fraud/'`,
    );
  }
}
