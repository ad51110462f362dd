/**
 * The native model runtime: runs artifacts trained by Ferry (`src/training`) in TypeScript, with
 * no native dependency. The artifact format and the predictor live with the training code that
 * writes them; this file is the ModelRuntime face the registry and the serving engine use.
 * Artifacts of format versions 1 and 2 load; a version 2 artifact trained on a preparation recipe
 * takes the recipe's raw columns and prepares them itself, so callers send rows as they come.
 */
import type { LoadedModel, ModelRuntime } from '../../core/model.js';
import { decodeNativeModel, NativePredictor } from '../../training/native-model.js';

/**
 * @example
 * const model = await nativeRuntime.load(artifactBytes);
 * const { predict, proba } = model.predict(table);
 */
export const nativeRuntime: ModelRuntime = {
  name: 'native',
  load(artifact: Uint8Array): Promise<LoadedModel> {
    // Decoding throws FERRY_MODEL_INVALID synchronously; surface it as a rejected promise.
    try {
      return Promise.resolve(new NativePredictor(decodeNativeModel(artifact)));
    } catch (error) {
      return Promise.reject(error);
    }
  },
};
