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
import { FeatureStore } from '../feature-store/feature-store.js';
import type { OfflineStore } from '../feature-store/offline/offline-store.js';
import { openParquetOfflineStore } from '../feature-store/offline/parquet.js';
import type { OnlineStore } from '../feature-store/online/online-store.js';
import { openSqliteOnlineStore } from '../feature-store/online/sqlite.js';
import type { MetadataStore } from '../metadata/metadata-store.js';
import { openSqliteMetadataStore } from '../metadata/sqlite.js';
import { ModelRegistry } from '../registry/registry.js';
import { nativeRuntime } from '../serving/runtimes/native.js';

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
  parquet: (c, dir) => openParquetOfflineStore({ path: path.resolve(dir, c.path) }),
};
const onlineBackends: Opener<ProjectSpec['online_store'], OnlineStore> = {
  sqlite: (c, dir) => openSqliteOnlineStore({ path: path.resolve(dir, c.path) }),
  redis: () => notYet('redis online store'),
};
const eventBackends: Opener<ProjectSpec['event_bus'], EventBus> = {
  memory: async (c) => createMemoryEventBus({ maxPending: c.max_pending }),
  nats: () => notYet('nats event bus'),
};

// TEMPORARY while the backends land in this change.
function notYet(what: string): Promise<never> {
  return Promise.reject(new Error(`${what} is not wired yet`));
}

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
    const registry = new ModelRegistry(metadata, artifacts, [nativeRuntime]);
    const features = new FeatureStore({ spec, projectDir: project.dir, offline, online });
    return {
      project,
      metadata,
      artifacts,
      offline,
      online,
      events,
      registry,
      features,
      close: () => closeAll(opened),
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
