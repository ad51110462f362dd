/**
 * The step kinds of a serving graph: a plain map from `kind` to its compiler. A new kind is one
 * file here, one arm in `src/config/endpoint-schema.ts` and one entry below.
 */
import type { EndpointStepSpec, StepKind } from '../../../config/endpoint-schema.js';
import type { StepCompiler } from '../step.js';
import { compileCustomStep } from './custom.js';
import { compileEnrichStep } from './enrich.js';
import { compileEnsembleStep } from './ensemble.js';
import { compileModelStep } from './model.js';
import { compileOutputStep } from './output.js';
import { compileRouterStep } from './router.js';
import { compileTransformStep } from './transform.js';

export const STEP_COMPILERS: {
  readonly [K in StepKind]: StepCompiler<Extract<EndpointStepSpec, { kind: K }>>;
} = {
  enrich: compileEnrichStep,
  transform: compileTransformStep,
  model: compileModelStep,
  router: compileRouterStep,
  ensemble: compileEnsembleStep,
  custom: compileCustomStep,
  output: compileOutputStep,
};
