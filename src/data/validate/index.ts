/**
 * Data validation: rule sets from ferry.yaml (`validations:`) checked in DuckDB for batches
 * (`validateRelation`) or in TypeScript for streams and requests (`validateRows`), with the same
 * meaning; a report; and the quarantine where failing rows go with their reason.
 */
export {
  validateRelation,
  type Relation,
  type RelationValidation,
  type ValidateRelationOptions,
} from './relation.js';
export {
  compileRules,
  CompiledRules,
  SeenKeys,
  validateRows,
  type CheckOptions,
  type RowCheck,
  type RowFailure,
  type RowsValidation,
  type ValidateRowsOptions,
} from './rows.js';
export {
  formatReport,
  validationError,
  MAX_EXAMPLES,
  type RuleExample,
  type RuleResult,
  type ValidationReport,
} from './report.js';
export { actionOf, prepareRules, type Action, type Policy, type PrepareOptions } from './rules.js';
export {
  fileReferences,
  readProfileFile,
  MODEL_PREFIX,
  type ResolveReference,
} from './reference.js';
export {
  listQuarantine,
  readQuarantine,
  writeQuarantine,
  quarantineTableName,
  QUARANTINE_PREFIX,
  type QuarantineEntry,
  type QuarantineRow,
  type QuarantineSummary,
  type QuarantineTarget,
} from './quarantine.js';
export { convertsTo } from './convert.js';
export { compilePattern, type PortablePattern } from './pattern.js';
