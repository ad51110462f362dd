/**
 * Ferry's expression language: derived columns, filters and conversions written once, compiled
 * to DuckDB SQL for batch work and to TypeScript closures for streaming and request time, with
 * the same results (`parity.test.ts`). The reference is `docs/expressions.md`.
 */
export { parseExpression } from './parse.js';
export { formatExpression, referencedColumns, type Expr } from './ast.js';
export {
  compileToFunction,
  compileToSql,
  quoteIdentifier,
  typeOf,
  type ExpressionSchema,
} from './compile.js';
export { FUNCTIONS } from './functions.js';
