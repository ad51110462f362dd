/**
 * The catalog of what a server serves: every registered model (its `champion`, else its newest
 * version) plus any ServedModel built elsewhere (endpoint graphs), looked up by name.
 *
 * Each served model is an immutable snapshot of one version: a request takes the snapshot once and
 * keeps it to the end, so `refresh()` can move `champion` under load by loading and warming the new
 * version first and then swapping one reference. No request is dropped and none mixes versions.
 * Other versions are loaded on their first `/versions/{v}` request and cached for the life of the
 * catalog (versions are immutable, so a cached one never goes stale).
 */
import type { LoadedModel, ModelSignature } from '../core/model.js';
import type { TableProfile } from '../core/profile.js';
import type { Scalar, Table } from '../core/table.js';
import { silentLogger, type Logger } from '../core/logger.js';
import { FerryError, toFerryError } from '../errors/index.js';
import type { ModelVersion } from '../metadata/metadata-store.js';
import { CHAMPION, type ModelRegistry } from '../registry/registry.js';
import type { InferContext, InferResult, ServedModel, ServedModelCatalog } from './served-model.js';

/**
 * A catalog that can also serve a named version of a model with that version's own signature.
 * The HTTP server uses these when the catalog offers them and falls back to
 * `ServedModel.infer(input, context, version)` otherwise.
 */
export interface VersionedCatalog extends ServedModelCatalog {
  /**
   * The model pinned to one version, loaded (and warmed) on first use.
   * Throws FERRY_MODEL_NOT_FOUND or FERRY_MODEL_VERSION_NOT_FOUND.
   */
  getVersion(name: string, version: string): Promise<ServedModel>;
  /** True once the model's default version has loaded. */
  isModelReady(name: string): boolean;
}

export interface RegistryCatalogOptions {
  readonly logger?: Logger;
  /** Serve only these registered models (all of them by default). */
  readonly models?: readonly string[];
  /** Wraps each loaded, warmed version before it serves (micro-batching). */
  readonly wrap?: (model: LoadedModel, record: ModelVersion) => LoadedModel;
}

export interface RefreshReport {
  /** Models whose default version changed (or that appeared since the last refresh). */
  readonly swapped: readonly {
    readonly model: string;
    readonly from: string | null;
    readonly to: string;
  }[];
  /** Models whose new default version failed to load; they keep serving the old one. */
  readonly failed: readonly {
    readonly model: string;
    readonly version: string;
    readonly error: FerryError;
  }[];
}

export interface RegistryCatalog extends VersionedCatalog {
  /** Serves another ServedModel (an endpoint) under its name; names must be unique. */
  add(served: ServedModel): void;
  /**
   * Re-reads versions and aliases; where a model's default version moved, loads and warms the
   * new version, then swaps to it. Concurrent calls run one after the other.
   */
  refresh(): Promise<RefreshReport>;
  /** Resolves once the initial loads have settled, successfully or not (see `failures`). */
  whenLoaded(): Promise<void>;
  /** Models whose initial load failed; while any did, `ready()` stays false. */
  failures(): readonly { readonly model: string; readonly error: FerryError }[];
}

/** Shown as OIP `platform`: runtimes named `native` are Ferry's own. */
export function platformOf(runtime: string): string {
  return runtime === 'native' ? 'ferry-native' : runtime;
}

/**
 * One row of typical values (training medians, most frequent categories) to run a freshly loaded
 * model once before it takes traffic, so the first real request does not pay for lazy setup and
 * a model that cannot predict is caught before the swap.
 */
export function warmupTable(signature: ModelSignature, profile: TableProfile | undefined): Table {
  const columns = signature.inputs.map((input) => {
    const p = profile?.columns[input.name];
    let value: Scalar = null;
    if (p?.kind === 'numeric') {
      const median = p.quantiles['0.5'] ?? p.mean;
      if (median !== null && median !== undefined) {
        value =
          input.type === 'bool'
            ? median >= 0.5
            : input.type === 'int'
              ? Math.round(median)
              : median;
      }
    } else if (p?.kind === 'categorical' && input.type === 'string') {
      value = p.top[0]?.value ?? null;
    }
    return { name: input.name, type: input.type, values: [value] };
  });
  return { columns, rowCount: 1 };
}

/** One version of a registered model, ready to serve. Immutable. */
class VersionServed implements ServedModel {
  readonly name: string;
  readonly version: string;
  readonly platform: string;
  readonly signature: ModelSignature;
  readonly monitoredModel: string;
  /** Memo of the loaded version, so the hot path skips the owner's lookup. */
  private model: LoadedModel | undefined;

  constructor(
    private readonly owner: RegistryModel,
    readonly record: ModelVersion,
    readonly versions: readonly string[],
  ) {
    this.name = owner.name;
    this.monitoredModel = owner.name;
    this.version = String(record.version);
    this.platform = platformOf(record.runtime);
    this.signature = record.signature;
  }

  async infer(input: Table, _context: InferContext, version?: string): Promise<InferResult> {
    if (version !== undefined && version !== this.version) {
      return (await this.owner.pinned(version)).infer(input, _context);
    }
    const model = this.model ?? (this.model = await this.owner.load(this.record));
    const prediction = await model.predict(input);
    return { prediction, modelVersion: this.version, features: input };
  }

  /** The same loaded version with another list of sibling versions (after a refresh). */
  withVersions(versions: readonly string[]): VersionServed {
    return new VersionServed(this.owner, this.record, versions);
  }
}

/** A registered model: its version records, loaded versions and the current default snapshot. */
class RegistryModel {
  /** Loaded (and warmed) versions by number; entries are never replaced. */
  private readonly loads = new Map<number, Promise<LoadedModel>>();
  private readonly pins = new Map<number, VersionServed>();
  records: ReadonlyMap<number, ModelVersion>;
  versions: readonly string[];
  current: VersionServed;
  loaded = false;

  constructor(
    readonly name: string,
    private readonly registry: ModelRegistry,
    records: readonly ModelVersion[],
    defaultVersion: ModelVersion,
    private readonly wrap: RegistryCatalogOptions['wrap'],
  ) {
    this.records = new Map(records.map((r) => [r.version, r]));
    this.versions = records.map((r) => String(r.version));
    this.current = new VersionServed(this, defaultVersion, this.versions);
  }

  load(record: ModelVersion): Promise<LoadedModel> {
    let loading = this.loads.get(record.version);
    if (!loading) {
      loading = (async () => {
        const model = await this.registry.load(record);
        await model.predict(warmupTable(record.signature, record.profile));
        return this.wrap ? this.wrap(model, record) : model;
      })();
      // A failed load is not cached, so the next request (or refresh) tries again.
      loading.catch(() => this.loads.delete(record.version));
      this.loads.set(record.version, loading);
    }
    return loading;
  }

  async pinned(version: string): Promise<VersionServed> {
    const number = /^\d{1,9}$/.test(version) ? Number(version) : NaN;
    const record = this.records.get(number);
    if (!record) {
      throw new FerryError(
        'FERRY_MODEL_VERSION_NOT_FOUND',
        `model '${this.name}' has no version '${version}'; versions: ${this.versions.join(', ')}`,
      );
    }
    if (record.version === this.current.record.version) return this.current;
    let pin = this.pins.get(number);
    if (!pin || pin.versions !== this.versions) {
      pin = new VersionServed(this, record, this.versions);
      this.pins.set(number, pin);
    }
    await this.load(record);
    return pin;
  }
}

function defaultOf(
  records: readonly ModelVersion[],
  aliases: Record<string, number>,
): ModelVersion | undefined {
  const champion = aliases[CHAMPION];
  if (champion !== undefined) {
    const record = records.find((r) => r.version === champion);
    if (record) return record;
  }
  return records[records.length - 1];
}

function sameVersions(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/**
 * Lists the registry's models and starts loading each one's default version; resolves once the
 * list is read (loading continues in the background: watch `ready()` or await `whenLoaded()`).
 * @example
 * const catalog = await createRegistryCatalog(registry, { logger });
 * await catalog.whenLoaded();
 * const app = createServer({ catalog, logger, limits });
 */
export async function createRegistryCatalog(
  registry: ModelRegistry,
  options: RegistryCatalogOptions = {},
): Promise<RegistryCatalog> {
  const logger = options.logger ?? silentLogger();
  const wanted = options.models === undefined ? undefined : new Set(options.models);
  const models = new Map<string, RegistryModel>();
  const extras = new Map<string, ServedModel>();
  // Pinned views are cached so that each keeps its identity (the server caches per object).
  const extraPins = new Map<string, ServedModel>();
  const failed = new Map<string, FerryError>();
  let initialDone = false;
  let refreshing: Promise<unknown> = Promise.resolve();

  async function readModel(
    name: string,
  ): Promise<{ records: ModelVersion[]; target: ModelVersion } | undefined> {
    const [records, aliases] = await Promise.all([registry.versions(name), registry.aliases(name)]);
    const target = defaultOf(records, aliases);
    return target ? { records, target } : undefined;
  }

  async function modelNames(): Promise<string[]> {
    const all = (await registry.listModels()).map((m) => m.name);
    if (!wanted) return all;
    const missing = [...wanted].filter((n) => !all.includes(n));
    if (missing.length > 0) {
      throw new FerryError(
        'FERRY_MODEL_NOT_FOUND',
        `model${missing.length > 1 ? 's' : ''} ${missing.join(', ')} ${missing.length > 1 ? 'are' : 'is'} not registered; registered models: ${all.join(', ') || '(none)'}`,
      );
    }
    return all.filter((n) => wanted.has(n));
  }

  const initialLoads: Promise<void>[] = [];
  for (const name of await modelNames()) {
    const read = await readModel(name);
    if (!read) continue;
    const model = new RegistryModel(name, registry, read.records, read.target, options.wrap);
    models.set(name, model);
    initialLoads.push(
      model.load(read.target).then(
        () => {
          model.loaded = true;
          logger.info({ model: name, version: read.target.version }, 'model loaded');
        },
        (err: unknown) => {
          const error = toFerryError(err);
          failed.set(name, error);
          logger.error(
            { model: name, version: read.target.version, err: error },
            'model failed to load',
          );
        },
      ),
    );
  }
  const loaded = Promise.all(initialLoads).then(() => {
    initialDone = true;
  });

  function unknownModel(name: string): FerryError {
    const names = [...models.keys(), ...extras.keys()];
    return new FerryError(
      'FERRY_MODEL_NOT_FOUND',
      `model '${name}' is not served here; served models: ${names.join(', ') || '(none)'}`,
    );
  }

  async function refreshOnce(): Promise<RefreshReport> {
    const swapped: { model: string; from: string | null; to: string }[] = [];
    const failures: { model: string; version: string; error: FerryError }[] = [];
    for (const name of await modelNames()) {
      const read = await readModel(name);
      if (!read) continue;
      const versions = read.records.map((r) => String(r.version));
      const existing = models.get(name);
      if (!existing) {
        if (extras.has(name)) {
          logger.warn(
            { model: name },
            'a registered model has the name of a served endpoint; the endpoint keeps it',
          );
          continue;
        }
        const model = new RegistryModel(name, registry, read.records, read.target, options.wrap);
        try {
          await model.load(read.target);
        } catch (err) {
          failures.push({
            model: name,
            version: String(read.target.version),
            error: toFerryError(err),
          });
          continue;
        }
        model.loaded = true;
        models.set(name, model);
        swapped.push({ model: name, from: null, to: String(read.target.version) });
        continue;
      }
      existing.records = new Map(read.records.map((r) => [r.version, r]));
      if (!sameVersions(existing.versions, versions)) existing.versions = versions;
      const from = existing.current;
      if (from.record.version === read.target.version) {
        if (from.versions !== existing.versions)
          existing.current = from.withVersions(existing.versions);
        if (!existing.loaded) {
          // The initial load failed (say the artifact store was down): try again.
          try {
            await existing.load(from.record);
            existing.loaded = true;
            failed.delete(name);
          } catch (err) {
            failures.push({ model: name, version: from.version, error: toFerryError(err) });
          }
        }
        continue;
      }
      try {
        const pin = await existing.pinned(String(read.target.version));
        // The one reference swap: requests that already took `from` finish on it.
        existing.current =
          pin.versions === existing.versions ? pin : pin.withVersions(existing.versions);
        existing.loaded = true;
        failed.delete(name);
        swapped.push({ model: name, from: from.version, to: existing.current.version });
        logger.info(
          { model: name, from: from.version, to: existing.current.version },
          'default version swapped',
        );
      } catch (err) {
        const error = toFerryError(err);
        failures.push({ model: name, version: String(read.target.version), error });
        logger.error(
          { model: name, version: read.target.version, err: error },
          'new default version failed to load; keeping the old one',
        );
      }
    }
    return { swapped, failed: failures };
  }

  return {
    list() {
      return [...[...models.values()].map((m) => m.current), ...extras.values()];
    },
    get(name) {
      return models.get(name)?.current ?? extras.get(name);
    },
    ready() {
      return initialDone && failed.size === 0;
    },
    isModelReady(name) {
      const model = models.get(name);
      if (model) return model.loaded;
      return extras.has(name);
    },
    async getVersion(name, version) {
      const model = models.get(name);
      if (model) return model.pinned(version);
      const extra = extras.get(name);
      if (!extra) throw unknownModel(name);
      if (version === extra.version) return extra;
      if (!extra.versions.includes(version)) {
        throw new FerryError(
          'FERRY_MODEL_VERSION_NOT_FOUND',
          `'${name}' has no version '${version}'; versions: ${extra.versions.join(', ')}`,
        );
      }
      const key = `${name}@${version}`;
      let pin = extraPins.get(key);
      if (!pin) {
        pin = pinExtra(extra, version);
        extraPins.set(key, pin);
      }
      return pin;
    },
    add(served) {
      if (models.has(served.name) || extras.has(served.name)) {
        throw new FerryError(
          'FERRY_ARGUMENT_INVALID',
          `'${served.name}' is already served; give the endpoint another name`,
        );
      }
      extras.set(served.name, served);
    },
    refresh() {
      const run = refreshing.then(refreshOnce);
      refreshing = run.catch(() => undefined);
      return run;
    },
    whenLoaded() {
      return loaded;
    },
    failures() {
      return [...failed].map(([model, error]) => ({ model, error }));
    },
  };
}

/** A ServedModel built elsewhere, answering for one of its other versions. */
function pinExtra(served: ServedModel, version: string): ServedModel {
  return {
    name: served.name,
    version,
    versions: served.versions,
    platform: served.platform,
    signature: served.signature,
    monitoredModel: served.monitoredModel,
    infer: (input, context) => served.infer(input, context, version),
  };
}
