/** The artifact store: its interface, key rules, and the backends configuration can pick. */
export type { ArtifactStore, StoredArtifact } from './artifact-store.js';
export { assertArtifactKey, assertArtifactPrefix, isArtifactKey } from './keys.js';
export {
  LocalArtifactStore,
  openLocalArtifactStore,
  type LocalArtifactStoreOptions,
} from './local.js';
