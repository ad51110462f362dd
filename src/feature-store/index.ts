/** The feature store's public surface: ingestion (batch and stream), online lookups, training sets, governance, window rules, stores. */
export {
  FeatureStore,
  EVENT_ID_COLUMN,
  type BuiltDataset,
  type FeatureStoreOptions,
  type IngestEventsOptions,
  type IngestOptions,
  type IngestResult,
  type MaterializeOptions,
  type MaterializeResult,
  type RejectedRow,
  type TrainingSetOptions,
} from './feature-store.js';
export {
  FeatureCatalog,
  type DatasetRecord,
  type DefinitionVersion,
  type IngestionRecord,
  type Lineage,
  type SyncChange,
} from './catalog.js';
export {
  startIngestionConsumers,
  ingestSubject,
  ingestDeadLetterSubject,
  type IngestionConsumers,
  type IngestionConsumerOptions,
} from './stream.js';
export { openSqliteOnlineStore, type SqliteOnlineStoreOptions } from './online/sqlite.js';
export { openRedisOnlineStore, type RedisOnlineStoreOptions } from './online/redis.js';
export { openParquetOfflineStore, type ParquetOfflineStoreOptions } from './offline/parquet.js';
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
export {
  readEvents,
  type OnlineStore,
  type OnlineRecord,
  type OnlineWrite,
  type OnlineEvent,
} from './online/online-store.js';
