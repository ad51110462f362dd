/** Training: fit and select models on a Table, producing a native model artifact. */
export {
  inferTask,
  trainModel,
  type TrainCandidate,
  type TrainOptions,
  type TrainResult,
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
