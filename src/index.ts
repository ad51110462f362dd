/**
 * Ferry's TypeScript API: the handful of names a backend needs to run the same loop as the CLI.
 * Everything else is internal and may change between versions.
 *
 * @example
 * import { loadProject, openWorkspace, runTrainingJob, readTable } from 'ferry';
 * const ws = await openWorkspace(loadProject('.'));
 * try {
 *   const table = await readTable('data/train.csv');
 *   await runTrainingJob(ws.metadata, ws.registry, { table, target: 'label', model: 'churn' });
 * } finally {
 *   await ws.close();
 * }
 */
export {
  loadProject,
  defineProject,
  parseProjectSpec,
  type Project,
  type ProjectSpec,
  type ProjectInput,
  type FeatureSetSpec,
  type FeatureVectorSpec,
  type EndpointSpec,
} from './config/index.js';
export { FerryError, ERROR_CODES, type ErrorCode } from './errors/index.js';
export type { Table, Column, ColumnType, Row, Scalar } from './core/table.js';
export type { ModelSignature, Prediction, LoadedModel, ModelRuntime } from './core/model.js';
export type { TableProfile } from './core/profile.js';
export { openWorkspace, type Workspace } from './project/workspace.js';
export { readTable, readSource, writeTable } from './data/index.js';
export { profileTable } from './data/profile.js';
export { parseExpression, compileToFunction, compileToSql } from './data/expr/index.js';
export {
  runRecipe,
  applyToRow,
  applyToRows,
  loadFittedRecipe,
  type FittedRecipe,
  type PrepReport,
} from './data/prep/index.js';
export { validateRows, compileRules, type ValidationReport } from './data/validate/index.js';
export {
  FeatureStore,
  FeatureCatalog,
  startIngestionConsumers,
  type IngestResult,
  type BuiltDataset,
} from './feature-store/index.js';
export { trainModel, type TrainResult } from './training/index.js';
export { runTrainingJob, runRecipeTrainingJob } from './training/job.js';
export { ModelRegistry, parseModelRef } from './registry/index.js';
export { startServer, type RunningServer } from './serving/start.js';
export { ServedEndpoint, type EndpointAnswer } from './serving/graph/endpoint.js';
export type { CustomStepFunction } from './serving/graph/steps/custom.js';
export { monitorModel, type MonitorReport } from './monitoring/monitor.js';
export { FERRY_VERSION } from './version.js';
