/**
 * The model registry: numbered, immutable model versions with movable aliases, on top of a
 * MetadataStore (the records) and an ArtifactStore (the bytes). Loading a version checks the
 * artifact's SHA-256 against the one recorded at registration.
 */
import type { ArtifactStore } from '../artifacts/artifact-store.js';
import type { LoadedModel, ModelRuntime } from '../core/model.js';
import { FerryError } from '../errors/index.js';
import type {
  MetadataStore,
  ModelSummary,
  ModelVersion,
  NewModelVersion,
} from '../metadata/metadata-store.js';

export const CHAMPION = 'champion';

/** A new version as `register` takes it: the artifact's bytes instead of where they are stored. */
export interface RegisterInput extends Omit<
  NewModelVersion,
  'artifactKey' | 'sha256' | 'sizeBytes'
> {
  readonly artifact: Uint8Array;
}

/** A reference to a version: `name`, `name@alias` or `name:version`. */
export interface ModelRef {
  readonly model: string;
  readonly alias?: string;
  readonly version?: number;
}

/**
 * Parses `fraud`, `fraud@champion` or `fraud:3`.
 * @example parseModelRef('fraud@champion') // { model: 'fraud', alias: 'champion' }
 */
export function parseModelRef(text: string): ModelRef {
  const match = /^([A-Za-z0-9][A-Za-z0-9._-]*?)(?:@([A-Za-z0-9._-]+)|:(\d+))?$/.exec(text);
  if (!match) {
    throw new FerryError(
      'FERRY_ARGUMENT_INVALID',
      `'${text}' is not a model reference; use <model>, <model>@<alias> or <model>:<version>`,
    );
  }
  const [, model, alias, version] = match as unknown as [
    string,
    string,
    string | undefined,
    string | undefined,
  ];
  if (alias !== undefined) return { model, alias };
  if (version !== undefined) return { model, version: Number(version) };
  return { model };
}

export class ModelRegistry {
  private readonly runtimes: ReadonlyMap<string, ModelRuntime>;

  constructor(
    private readonly metadata: MetadataStore,
    private readonly artifacts: ArtifactStore,
    runtimes: readonly ModelRuntime[],
  ) {
    this.runtimes = new Map(runtimes.map((r) => [r.name, r]));
  }

  /**
   * Stores the artifact, then records the next version of the model; points `champion` at it
   * when the model had no champion yet.
   */
  async register(input: RegisterInput): Promise<{ version: ModelVersion; promoted: boolean }> {
    // The artifact key carries a random part because the version number is only known once the
    // record is written; writing bytes first means a crash leaves an orphan file, never a
    // version whose artifact is missing.
    const key = `models/${input.model}/${Date.now()}-${crypto.randomUUID()}.bin`;
    const stored = await this.artifacts.put(key, input.artifact);
    const version = await this.metadata.registerModelVersion({
      model: input.model,
      runtime: input.runtime,
      artifactKey: stored.key,
      sha256: stored.sha256,
      sizeBytes: stored.sizeBytes,
      signature: input.signature,
      metrics: input.metrics,
      params: input.params,
      lineage: input.lineage,
      profile: input.profile,
      ...(input.description === undefined ? {} : { description: input.description }),
    });
    const aliases = await this.metadata.getAliases(input.model);
    let promoted = false;
    if (aliases[CHAMPION] === undefined) {
      await this.metadata.setAlias(input.model, CHAMPION, version.version);
      promoted = true;
    }
    return { version, promoted };
  }

  listModels(): Promise<ModelSummary[]> {
    return this.metadata.listModels();
  }

  async versions(model: string): Promise<ModelVersion[]> {
    const versions = await this.metadata.listModelVersions(model);
    if (versions.length === 0) throw await this.unknownModel(model);
    return versions;
  }

  aliases(model: string): Promise<Record<string, number>> {
    return this.metadata.getAliases(model);
  }

  /**
   * The version a reference points to. A bare name means its `champion`, else its newest version.
   */
  async resolve(ref: ModelRef | string): Promise<ModelVersion> {
    const r = typeof ref === 'string' ? parseModelRef(ref) : ref;
    let number = r.version;
    if (number === undefined) {
      const aliases = await this.metadata.getAliases(r.model);
      if (r.alias !== undefined) {
        number = aliases[r.alias];
        if (number === undefined) {
          const versions = await this.metadata.listModelVersions(r.model);
          if (versions.length === 0) throw await this.unknownModel(r.model);
          throw new FerryError(
            'FERRY_MODEL_VERSION_NOT_FOUND',
            `model '${r.model}' has no alias '${r.alias}'; aliases: ${formatAliases(aliases)}`,
          );
        }
      } else {
        number = aliases[CHAMPION];
        if (number === undefined) {
          const versions = await this.metadata.listModelVersions(r.model);
          const newest = versions[versions.length - 1];
          if (!newest) throw await this.unknownModel(r.model);
          return newest;
        }
      }
    }
    const version = await this.metadata.getModelVersion(r.model, number);
    if (!version) {
      const versions = await this.metadata.listModelVersions(r.model);
      if (versions.length === 0) throw await this.unknownModel(r.model);
      throw new FerryError(
        'FERRY_MODEL_VERSION_NOT_FOUND',
        `model '${r.model}' has no version ${number}; versions: ${versions.map((v) => v.version).join(', ')}`,
      );
    }
    return version;
  }

  /** Loads a version with its runtime after checking the artifact's SHA-256. */
  async load(version: ModelVersion): Promise<LoadedModel> {
    const runtime = this.runtimes.get(version.runtime);
    if (!runtime) {
      throw new FerryError(
        'FERRY_BACKEND_UNSUPPORTED',
        `model '${version.model}' version ${version.version} needs runtime '${version.runtime}', which is not available; available: ${[...this.runtimes.keys()].join(', ')}`,
      );
    }
    const bytes = await this.artifacts.get(version.artifactKey, version.sha256);
    return runtime.load(bytes);
  }

  async setAlias(model: string, alias: string, version: number): Promise<void> {
    await this.metadata.setAlias(model, alias, version);
  }

  async removeAlias(model: string, alias: string): Promise<void> {
    await this.metadata.removeAlias(model, alias);
  }

  /**
   * Deletes a version no alias points to (FERRY_ARGUMENT_INVALID naming the alias otherwise),
   * then its artifact unless another version, of any model, records the same artifact key.
   * The version's number is never given out again.
   * @example await registry.deleteVersion('fraud', 2);
   */
  async deleteVersion(model: string, version: number): Promise<{ artifactDeleted: boolean }> {
    const target = await this.resolve({ model, version });
    const holding = Object.entries(await this.metadata.getAliases(model))
      .filter(([, v]) => v === version)
      .map(([a]) => a);
    const first = holding[0];
    if (first !== undefined) {
      throw new FerryError(
        'FERRY_ARGUMENT_INVALID',
        `cannot delete ${model}:${version}: alias ${holding.map((a) => `'${a}'`).join(', ')} points to it; ` +
          `move it (ferry models alias set ${model} ${first} <version>) or remove it (ferry models alias rm ${model} ${first}) first`,
      );
    }
    // The store checks the aliases again inside its transaction, so a racing `alias set` wins.
    await this.metadata.deleteModelVersion(model, version);
    for (const m of await this.metadata.listModels()) {
      for (const v of await this.metadata.listModelVersions(m.name)) {
        if (v.artifactKey === target.artifactKey) return { artifactDeleted: false };
      }
    }
    await this.artifacts.delete(target.artifactKey);
    return { artifactDeleted: true };
  }

  private async unknownModel(model: string): Promise<FerryError> {
    const known = (await this.metadata.listModels()).map((m) => m.name);
    return new FerryError(
      'FERRY_MODEL_NOT_FOUND',
      `model '${model}' is not registered; registered models: ${known.join(', ') || '(none: train one with ferry train)'}`,
    );
  }
}

function formatAliases(aliases: Record<string, number>): string {
  const entries = Object.entries(aliases);
  return entries.length === 0 ? '(none)' : entries.map(([a, v]) => `${a} -> ${v}`).join(', ');
}
