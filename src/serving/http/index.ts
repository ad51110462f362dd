/** The HTTP input: the Open Inference Protocol v2 server over a ServedModelCatalog. */
export {
  createServer,
  type InferResponse,
  type ServerLimits,
  type ServerOptions,
} from './server.js';
export {
  datatypeOfColumn,
  decodeInputs,
  encodeOutputs,
  viewOf,
  type Datatype,
  type InferRequestBody,
  type ModelMetadata,
  type RequestInput,
  type ResponseOutput,
} from './tensors.js';
