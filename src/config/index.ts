export {
  loadProject,
  defineProject,
  parseProjectSpec,
  findConfigFile,
  windowMs,
  type Project,
} from './load.js';
export {
  parseDuration,
  projectSchema,
  type ProjectSpec,
  type ProjectInput,
  type FeatureSetSpec,
  type FeatureVectorSpec,
  type FeatureRefSpec,
  type OnlineStoreSpec,
  type EventBusSpec,
  parseFeatureRef,
  type EndpointSpec,
  type StepSpec,
  type SourceSpec,
  type AggregationOp,
} from './schema.js';
