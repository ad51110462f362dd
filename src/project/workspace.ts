/**
 * Opens a project's backends as its configuration chooses them, and closes them together.
 * Each backend kind is picked from a plain map keyed by the config's `type` literal: adding a
 * backend means adding one arm to the schema and one entry here, nothing else.
 */
import path from 'node:path';
import { openLocalArtifactStore } from '../artifacts/local.js';
import type { ArtifactStore } from '../artifacts/artifact-store.js';
import type { ProjectSpec } from '../config/schema.js';
import type { Project } from '../config/load.js';
import type { EventBus } from '../events/event-bus.js';
import { createMemoryEventBus } from '../events/memory.js';
import { FeatureCatalog } from '../feature-store/catalog.js';
import { FeatureStore } from '../feature-store/feature-store.js';
import type { OfflineStore } from '../feature-store/offline/offline-store.js';
import { openParquetOfflineStore } from '../feature-store/offline/parquet.js';
import type { OnlineStore } from '../feature-store/online/online-store.js';
import { openSqliteOnlineStore } from '../feature-store/online/sqlite.js';
import type { MetadataStore } from '../metadata/metadata-store.js';
import { openSqliteMetadataStore } from '../metadata/sqlite.js';
import { ModelRegistry } from '../registry/registry.js';
import { nativeRuntime } from '../serving/runtimes/native.js';
import { onnxRuntime } from '../serving/runtimes/onnx.js';

type Opener<Config extends { type: string }, Store> = {
  [Type in Config['type']]: (
    config: Extract<Config, { type: Type }>,
    stateDir: string,
  ) => Promise<Store>;
};

const metadataBackends: Opener<ProjectSpec['metadata'], MetadataStore> = {
  sqlite: (c, dir) => openSqliteMetadataStore({ path: path.resolve(dir, c.path) }),
};
const artifactBackends: Opener<ProjectSpec['artifacts'], ArtifactStore> = {
  local: (c, dir) => openLocalArtifactStore({ path: path.resolve(dir, c.path) }),
};
const offlineBackends: Opener<ProjectSpec['offline_store'], OfflineStore> = {
  parquet: (c, dir) =>
    openParquetOfflineStore({
      path: path.resolve(dir, c.path),
      compactAfterFiles: c.compact_after_files,
    }),
};
const onlineBackends: Opener<ProjectSpec['online_store'], OnlineStore> = {
  sqlite: (c, dir) => openSqliteOnlineStore({ path: path.resolve(dir, c.path) }),
  // Loaded on demand, so that projects on the embedded store never load the Redis driver.
  redis: async (c) =>
    (await import('../feature-store/online/redis.js')).openRedisOnlineStore({
      url: c.url,
      keyPrefix: c.key_prefix,
      ...(c.cluster ? { cluster: c.cluster } : {}),
    }),
};
const eventBackends: Opener<ProjectSpec['event_bus'], EventBus> = {
  memory: async (c) => createMemoryEventBus({ maxPending: c.max_pending }),
  // Loaded on demand, so that projects on the in-process bus never load the NATS client.
  nats: async (c) =>
    (await import('../events/nats.js')).openNatsEventBus({
      servers: c.servers,
      stream: c.stream,
      maxPending: c.max_pending,
      ackWaitMs: c.ack_wait,
      ...(c.subject_prefix ? { subjectPrefix: c.subject_prefix } : {}),
    }),
};

function open<Config extends { type: string }, Store>(
  backends: Opener<Config, Store>,
  config: Config,
  stateDir: string,
): Promise<Store> {
  const opener = backends[config.type as Config['type']] as (
    c: Config,
    d: string,
  ) => Promise<Store>;
  return opener(config, stateDir);
}

export interface Workspace {
  readonly project: Project;
  readonly metadata: MetadataStore;
  readonly artifacts: ArtifactStore;
  readonly offline: OfflineStore;
  readonly online: OnlineStore;
  readonly events: EventBus;
  readonly registry: ModelRegistry;
  readonly features: FeatureStore;
  /** Versions, ingestion records, datasets and lineage of the feature sets and vectors. */
  readonly catalog: FeatureCatalog;
  close(): Promise<void>;
}

/**
 * Opens every backend of the project. Close the workspace when done.
 * @example
 * const ws = await openWorkspace(loadProject('.'));
 * try { console.log(await ws.registry.listModels()); } finally { await ws.close(); }
 */
export async function openWorkspace(project: Project): Promise<Workspace> {
  const { spec, stateDir } = project;
  const opened: { close(): Promise<void> }[] = [];
  const track = async <T extends { close(): Promise<void> }>(store: Promise<T>): Promise<T> => {
    const s = await store;
    opened.push(s);
    return s;
  };
  try {
    const metadata = await track(open(metadataBackends, spec.metadata, stateDir));
    const artifacts = await track(open(artifactBackends, spec.artifacts, stateDir));
    const offline = await track(open(offlineBackends, spec.offline_store, stateDir));
    const online = await track(open(onlineBackends, spec.online_store, stateDir));
    const events = await track(open(eventBackends, spec.event_bus, stateDir));
    const registry = new ModelRegistry(metadata, artifacts, [nativeRuntime, onnxRuntime]);
    // Synced on every open (two reads when nothing changed), so versions follow ferry.yaml.
    const catalog = new FeatureCatalog(metadata);
    for (const change of await catalog.sync(spec))
      if (change.notice) process.emitWarning(change.notice, { code: 'FERRY_ONLINE_STALE' });
    const features = new FeatureStore({
      spec,
      projectDir: project.dir,
      offline,
      online,
      ...catalog.hooks(),
    });
    return {
      project,
      metadata,
      artifacts,
      offline,
      online,
      events,
      registry,
      features,
      catalog,
      // The catalog writes its pending stream ingestion records before the stores close.
      close: () => catalog.close().finally(() => closeAll(opened)),
    };
  } catch (error) {
    await closeAll(opened);
    throw error;
  }
}

async function closeAll(stores: readonly { close(): Promise<void> }[]): Promise<void> {
  // Close in reverse order of opening; one failure must not keep the others open.
  const results = await Promise.allSettled([...stores].reverse().map((s) => s.close()));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}
