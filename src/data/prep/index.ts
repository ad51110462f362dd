/**
 * Data preparation: recipes of steps (ferry.yaml `recipes:`) run in DuckDB over a source, with
 * learned constants saved as a fitted recipe that applies the same preparation to single rows at
 * request time. See `run.ts` for the batch path and `row.ts` for the row path.
 */
export {
  runRecipe,
  buildRecipe,
  planSteps,
  type RunRecipeOptions,
  type BuiltRecipe,
} from './run.js';
export { applyToRow, applyToRows, compileRecipe, type RowPipeline } from './row.js';
export {
  FITTED_RECIPE_FORMAT,
  loadFittedRecipe,
  parseFittedRecipe,
  type FittedRecipe,
  type FittedStep,
} from './fitted.js';
export {
  describeStep,
  formatPrepReport,
  stageLine,
  type OutputFile,
  type PrepReport,
  type RowLoss,
  type StageReport,
} from './report.js';
export {
  checkConversion,
  coerceInput,
  conversionFunction,
  conversionSql,
  FORMAT_DIRECTIVES,
  type ConversionOptions,
} from './convert.js';
export type { Relation } from './relation.js';
export type { RemovalReason } from './step.js';
export { splitHash, SPLIT_PARTS, type SplitPart } from './steps/split.js';
