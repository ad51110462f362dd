/**
 * The model versions serving graphs predict with: references resolved through the registry,
 * versions loaded once, warmed (one prediction on typical values, so the first request pays for
 * no lazy setup and a version that cannot predict never takes traffic) and shared by every graph
 * of a server. Versions are immutable, so a loaded one never goes stale.
 */
import type { LoadedModel } from '../../core/model.js';
import type { ModelVersion } from '../../metadata/metadata-store.js';
import type { ModelRegistry } from '../../registry/registry.js';
import { warmupTable } from '../catalog.js';
import type { ModelProvider, ServingModel } from './step.js';

export interface ModelProviderOptions {
  /**
   * Wraps a loaded, warmed version for serving (micro-batching, metrics); by default predictions
   * are passed through.
   */
  readonly wrap?: (model: LoadedModel, record: ModelVersion) => ServingModel;
}

/**
 * @example
 * const models = createModelProvider(ws.registry);
 * const fraud = await models.load(await models.resolve('fraud@champion'));
 */
export function createModelProvider(
  registry: ModelRegistry,
  options: ModelProviderOptions = {},
): ModelProvider {
  const loads = new Map<string, Promise<ServingModel>>();
  const wrap =
    options.wrap ??
    ((model: LoadedModel, record: ModelVersion): ServingModel => ({
      record,
      signature: model.signature,
      predict: async (input) => model.predict(input),
    }));
  return {
    resolve: (ref) => registry.resolve(ref),
    load(record) {
      const key = `${record.model}\u0000${record.version}`;
      let loading = loads.get(key);
      if (!loading) {
        loading = (async () => {
          const model = await registry.load(record);
          await model.predict(warmupTable(record.signature, record.profile));
          return wrap(model, record);
        })();
        // A failed load is not kept, so the next compile (or refresh) tries again.
        loading.catch(() => loads.delete(key));
        loads.set(key, loading);
      }
      return loading;
    },
  };
}
