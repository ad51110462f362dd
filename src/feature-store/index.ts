/** The feature store's public surface: ingestion, online lookups, training sets, window rules. */
export {
  FeatureStore,
  EVENT_ID_COLUMN,
  type FeatureStoreOptions,
  type IngestOptions,
  type IngestResult,
  type RejectedRow,
  type TrainingSetOptions,
} from './feature-store.js';
export {
  aggregate,
  aggregationName,
  aggregationsOf,
  aggregationType,
  computeAggregations,
  type WindowAggregation,
  type WindowEvent,
} from './windows.js';
export { castKey, castTimestamp, castValue, INVALID } from './cast.js';
export type { OfflineStore, ReadOptions } from './offline/offline-store.js';
export type { OnlineStore, OnlineRecord, OnlineWrite, OnlineEvent } from './online/online-store.js';
