/** The metadata store: its interface and the backends configuration can pick. */
export type {
  MetadataStore,
  ModelSummary,
  ModelVersion,
  NewModelVersion,
  NewRun,
  Run,
  RunStatus,
  RunUpdate,
  StoredDocument,
} from './metadata-store.js';
export {
  SqliteMetadataStore,
  openSqliteMetadataStore,
  type SqliteMetadataStoreOptions,
} from './sqlite.js';
