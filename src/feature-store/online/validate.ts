/**
 * Argument checks every OnlineStore backend applies before it writes anything, so that a bad
 * batch is refused whole, with the same FERRY_ARGUMENT_INVALID message whatever the backend.
 */
import { FerryError } from '../../errors/index.js';
import type { OnlineEvent, OnlineWrite } from './online-store.js';

export function assertFeatureSet(featureSet: string): void {
  if (typeof featureSet !== 'string' || featureSet === '') {
    throw new FerryError('FERRY_ARGUMENT_INVALID', 'feature set name must be a non-empty string');
  }
}

/** The checks of `writeLatest`: a feature set name and well-formed records. */
export function assertWrites(featureSet: string, records: readonly OnlineWrite[]): void {
  assertFeatureSet(featureSet);
  for (const r of records) assertRecord(featureSet, r);
}

/** The checks of `appendEvents`: those of `writeLatest`, a string eventId and a usable retainMs. */
export function assertEvents(
  featureSet: string,
  events: readonly OnlineEvent[],
  retainMs: number,
): void {
  assertFeatureSet(featureSet);
  if (!(retainMs >= 0)) {
    throw new FerryError(
      'FERRY_ARGUMENT_INVALID',
      `retainMs must be a non-negative number of milliseconds (Infinity keeps every event), got ${retainMs}`,
    );
  }
  for (const e of events) {
    assertRecord(featureSet, e);
    if (e.eventId !== undefined && typeof e.eventId !== 'string') {
      throw new FerryError(
        'FERRY_ARGUMENT_INVALID',
        `event of key '${e.key}' in '${featureSet}': eventId must be a string`,
      );
    }
  }
}

function assertRecord(featureSet: string, r: OnlineWrite): void {
  if (typeof r.key !== 'string') {
    throw new FerryError(
      'FERRY_ARGUMENT_INVALID',
      `entity key in '${featureSet}' must be a string, got ${JSON.stringify(r.key)}`,
    );
  }
  if (typeof r.ts !== 'number' || !Number.isFinite(r.ts)) {
    throw new FerryError(
      'FERRY_ARGUMENT_INVALID',
      `ts of key '${r.key}' in '${featureSet}' must be UTC milliseconds, got ${JSON.stringify(r.ts)}`,
    );
  }
  if (typeof r.values !== 'object' || r.values === null || Array.isArray(r.values)) {
    throw new FerryError(
      'FERRY_ARGUMENT_INVALID',
      `values of key '${r.key}' in '${featureSet}' must be an object of feature values`,
    );
  }
}
