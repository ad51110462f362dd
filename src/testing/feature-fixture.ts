/**
 * A feature store for tests, opened in a folder of its own: a ferry.yaml given as text, a fresh
 * Parquet offline store and an online store (the embedded SQLite one unless a test names
 * another). The cases of the feature store, its ingestion streams, its materialization and the
 * HTTP feature routes open their stores through here, so they all run on the same setup.
 */
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { parseProjectSpec } from '../config/load.js';
import type { ProjectSpec } from '../config/schema.js';
import type { ColumnSchema } from '../core/table.js';
import { FeatureStore, type FeatureStoreOptions } from '../feature-store/feature-store.js';
import { openParquetOfflineStore } from '../feature-store/offline/parquet.js';
import type { OfflineStore } from '../feature-store/offline/offline-store.js';
import type { OnlineStore } from '../feature-store/online/online-store.js';
import { openSqliteOnlineStore } from '../feature-store/online/sqlite.js';

/**
 * The head of ferry.yaml in the feature-store tests: the `card` entity, keyed by `card_id`, and the
 * start of a `tx` feature set of its events, timestamped by `ts`. A test's spec goes on with the
 * rest of the set (`    features: ...`, indented under it), then its other sets and vectors.
 * @example const SPEC = `${CARD_TX}\n    features:\n      - { name: amount, type: float }\n`;
 */
export const CARD_TX = `entities:
  - { name: card, keys: [card_id] }
feature_sets:
  - name: tx
    entity: card
    timestamp: ts`;

/** The columns of a table of `tx` events in those tests: what a file of card payments would hold. */
export const TX_EVENT_SCHEMA: ColumnSchema[] = [
  { name: 'card_id', type: 'string' },
  { name: 'ts', type: 'timestamp' },
  { name: 'event_id', type: 'string' },
  { name: 'amount', type: 'float' },
  { name: 'country', type: 'string' },
];

/** Opens a fresh online store for one fixture; `dir` is the fixture's own empty folder. */
export type OnlineStoreFactory = (dir: string) => Promise<OnlineStore>;

/** The embedded SQLite online store, as `online.db` in the fixture's folder. */
export const sqliteOnline: OnlineStoreFactory = (dir) =>
  openSqliteOnlineStore({ path: path.join(dir, 'online.db') });

export interface FeatureHarness {
  readonly dir: string;
  readonly spec: ProjectSpec;
  readonly offline: OfflineStore;
  readonly online: OnlineStore;
  readonly store: FeatureStore;
}

export interface FeatureFixtureOptions {
  /** An empty folder for the project (offline store, online store file, sources). */
  readonly dir: string;
  /** ferry.yaml as text, or a spec already parsed. */
  readonly spec: string | ProjectSpec;
  /** {@link sqliteOnline} when absent. */
  readonly online?: OnlineStoreFactory;
  readonly onlineHistoryMs?: number;
  /** Puts a layer around the Parquet offline store (to make it fail, or count its calls). */
  readonly wrapOffline?: (offline: OfflineStore, dir: string) => OfflineStore;
  /** Hooks given to the FeatureStore, such as a catalog's `hooks()`. */
  readonly hooks?: Pick<FeatureStoreOptions, 'onIngested' | 'onDataset' | 'resolveReference'>;
}

/**
 * A FeatureStore over a fresh Parquet offline store and the given online store. Close them with
 * {@link closeFeatureHarness} when done.
 * @example const h = await openFeatureFixture({ dir: tmp.fresh(), spec: SPEC });
 */
export async function openFeatureFixture(options: FeatureFixtureOptions): Promise<FeatureHarness> {
  const { dir } = options;
  const spec =
    typeof options.spec === 'string'
      ? parseProjectSpec(parseYaml(options.spec), 'test')
      : options.spec;
  const parquet = await openParquetOfflineStore({ path: path.join(dir, 'offline') });
  const offline = options.wrapOffline ? options.wrapOffline(parquet, dir) : parquet;
  const online = await (options.online ?? sqliteOnline)(dir);
  const store = new FeatureStore({
    spec,
    projectDir: dir,
    offline,
    online,
    ...(options.onlineHistoryMs !== undefined ? { onlineHistoryMs: options.onlineHistoryMs } : {}),
    ...options.hooks,
  });
  return { dir, spec, offline, online, store };
}

/** Closes the offline store, then the online store, of a harness. */
export async function closeFeatureHarness(h: FeatureHarness): Promise<void> {
  await h.offline.close();
  await h.online.close();
}
