/**
 * The `expression` rule's bridge to Ferry's expression language (`src/data/expr/`): one check
 * compiled to DuckDB SQL for the batch path and to a function for the rows path. The language's
 * parity tests guarantee the two compute the same value; the rule fails a row whose value is not
 * `true` (false or null). A check must be boolean: `amount` alone is refused, not read as truthy.
 */
import type { ColumnSchema, Row, Scalar } from '../../core/table.js';
import { FerryError } from '../../errors/index.js';
import { quoteIdent } from '../duckdb.js';
import {
  compileToFunction,
  compileToSql,
  parseExpression,
  typeOf,
  type ExpressionSchema,
  type Expr,
} from '../expr/index.js';

function parsed(check: string, schema: readonly ColumnSchema[]): [Expr, ExpressionSchema] {
  const types: ExpressionSchema = Object.fromEntries(schema.map((c) => [c.name, c.type]));
  const expr = parseExpression(check);
  const type = typeOf(expr, types);
  if (type !== 'bool') {
    throw new FerryError(
      'FERRY_CONFIG_INVALID',
      `expression rule '${check}' gives a ${type}, not true or false; write a comparison such as '${check} > 0'`,
    );
  }
  return [expr, types];
}

/**
 * The check as a function of a row.
 * @example expressionFunction('amount >= 0', schema)({ amount: -1 }) // false
 */
export function expressionFunction(
  check: string,
  schema: readonly ColumnSchema[],
): (row: Row) => Scalar {
  return compileToFunction(...parsed(check, schema));
}

/**
 * The check as a DuckDB SQL expression over the relation's columns.
 * @example expressionSql('amount >= 0', schema)
 */
export function expressionSql(check: string, schema: readonly ColumnSchema[]): string {
  const types = new Map(schema.map((c) => [c.name, c.type] as const));
  // The language's functions read a non-finite number as null (its contract), but a DuckDB
  // DOUBLE or TIMESTAMP column can hold NaN and ±infinity, which its SQL would compare as values:
  // null them on the way in so both paths see the same row.
  const column = (name: string): string => {
    const type = types.get(name);
    const c = quoteIdent(name);
    return type === 'float' || type === 'timestamp'
      ? `(CASE WHEN isfinite(${c}) THEN ${c} END)`
      : c;
  };
  return compileToSql(...parsed(check, schema), column);
}
