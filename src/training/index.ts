/** Training: fit and select models on a Table, producing a native model artifact. */
export {
  CROSS_VALIDATION_MAX_ROWS,
  GBDT_DEFAULTS,
  inferTask,
  trainModel,
  type GbdtSettings,
  type TrainCandidate,
  type TrainOptions,
  type TrainResult,
  type ValidationInfo,
} from './train.js';
export {
  decodeNativeModel,
  encodeNativeModel,
  NATIVE_FORMAT,
  NATIVE_FORMAT_VERSION,
  NativePredictor,
  type AlgorithmModel,
  type NativeModelDocument,
} from './native-model.js';
export type { PreprocessSpec } from './preprocess.js';
