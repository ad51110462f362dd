/** The online store: its interface and the backends configuration can choose. */
export type { OnlineEvent, OnlineRecord, OnlineStore, OnlineWrite } from './online-store.js';
export {
  openSqliteOnlineStore,
  SqliteOnlineStore,
  type SqliteOnlineStoreOptions,
} from './sqlite.js';
