/** The offline store: its interface and the backends configuration can choose. */
export type { OfflineStore, ReadOptions } from './offline-store.js';
export {
  openParquetOfflineStore,
  ParquetOfflineStore,
  type ParquetOfflineStoreOptions,
} from './parquet.js';
