/** The step kinds by name: a plain map from `step:` to its implementation. */
import type { FittedStep } from '../fitted.js';
import type { StepKind } from '../step.js';
import { cast } from './cast.js';
import { drop, rename, select } from './columns.js';
import { dedupe } from './dedupe.js';
import { encode } from './encode.js';
import { derive, filter } from './expression.js';
import { merge } from './merge.js';
import { dropMissing, fill } from './missing.js';
import { clip, scale } from './numeric.js';
import { split } from './split.js';

export const STEP_KINDS: { readonly [K in FittedStep['step']]: StepKind<K> } = {
  select,
  drop,
  rename,
  cast,
  fill,
  drop_missing: dropMissing,
  dedupe,
  filter,
  derive,
  encode,
  scale,
  clip,
  merge,
  split,
};

/** The implementation of a step kind. */
export function kindOf<K extends FittedStep['step']>(step: K): StepKind<K> {
  return STEP_KINDS[step] as StepKind<K>;
}
