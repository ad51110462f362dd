export {
  ModelRegistry,
  parseModelRef,
  CHAMPION,
  type ModelRef,
  type RegisterInput,
} from './registry.js';
