/**
 * Compiles an expression twice from one type-checked walk: to DuckDB SQL for batch work, and to
 * a TypeScript closure for streaming ingestion and request time. Both take their meaning from
 * the entries of `functions.ts`; `parity.test.ts` proves they agree.
 *
 * Types: int and float mix (to float); `/` always gives float; strings, booleans and timestamps
 * only meet their own kind. Timestamps are TIMESTAMP in DuckDB and UTC milliseconds in
 * TypeScript. In rows given to a compiled function, a missing key reads as null, and so does a
 * non-finite number (NaN, ±Infinity), as Ferry's tables load them into DuckDB.
 */
import type { ColumnType, Row, Scalar } from '../../core/table.js';
import { FerryError } from '../../errors/index.js';
import { formatColumnName, formatExpression, type Expr } from './ast.js';
import {
  arityText,
  FUNCTION_TABLE,
  OPERATORS,
  sqlNull,
  type Call,
  type Evaluator,
  type ExprType,
  type Operation,
  type TypeCheck,
} from './functions.js';
import { editDistance, parseExpression, pointAt, positionOf } from './parse.js';

/** Column types by column name: what an expression may refer to. */
export type ExpressionSchema = Readonly<Record<string, ColumnType>>;

/** How a compiler builds its output; the walk supplies types and does the checking. */
interface Backend<T> {
  column(name: string, type: ColumnType): T;
  number(value: number, integer: boolean): T;
  string(value: string): T;
  boolean(value: boolean): T;
  /** A null of the given type: the literal null, or a strict call folded by a null argument. */
  typedNull(type: ExprType): T;
  apply(operation: Operation, args: readonly T[], call: Call): T;
}

interface Typed<T> {
  readonly type: ExprType;
  readonly out: T;
}

class Walker<T> {
  constructor(
    private readonly schema: ExpressionSchema,
    /** The source text when there is one, to point at sub-expressions with a caret. */
    private readonly source: string | null,
    private readonly backend: Backend<T>,
  ) {}

  walk(node: Expr): Typed<T> {
    const b = this.backend;
    switch (node.kind) {
      case 'number':
        return { type: node.integer ? 'int' : 'float', out: b.number(node.value, node.integer) };
      case 'string':
        return { type: 'string', out: b.string(node.value) };
      case 'boolean':
        return { type: 'bool', out: b.boolean(node.value) };
      case 'null':
        return { type: 'null', out: b.typedNull('null') };
      case 'column': {
        const type = Object.hasOwn(this.schema, node.name) ? this.schema[node.name] : undefined;
        if (type === undefined) throw this.unknownColumn(node);
        return { type, out: b.column(node.name, type) };
      }
      case 'unary':
        return this.apply(node, OPERATORS[node.op === '-' ? 'negate' : 'not'], [node.operand]);
      case 'binary':
        return this.apply(node, OPERATORS[node.op], [node.left, node.right]);
      case 'in':
        return this.apply(node, OPERATORS[node.negated ? 'not in' : 'in'], [
          node.operand,
          ...node.values,
        ]);
      case 'is_null':
        return this.apply(node, OPERATORS[node.negated ? 'is not null' : 'is null'], [
          node.operand,
        ]);
      case 'call': {
        // The parser checks these too; a tree built by hand gets the same errors here.
        const spec = FUNCTION_TABLE.get(node.name);
        if (spec === undefined) {
          throw this.error(
            node,
            `unknown function '${node.name}'; known functions: ${[...FUNCTION_TABLE.keys()].sort().join(', ')}`,
          );
        }
        if (node.args.length < spec.minArgs || node.args.length > spec.maxArgs) {
          throw this.error(
            node,
            `${node.name} takes ${arityText(spec)}, got ${node.args.length}: ${spec.signature}`,
          );
        }
        return this.apply(node, spec, node.args);
      }
    }
  }

  private apply(node: Expr, operation: Operation, nodes: readonly Expr[]): Typed<T> {
    const children = nodes.map((n) => this.walk(n));
    const types = children.map((c) => c.type);
    const check: TypeCheck = {
      types,
      nodes,
      fail: (message, index) => {
        throw this.error(index === undefined ? node : (nodes[index] as Expr), message, node);
      },
    };
    const result = operation.type(check);
    if (operation.strict && types.includes('null')) {
      return { type: result, out: this.backend.typedNull(result) };
    }
    const call: Call = { types, nodes, result };
    return {
      type: result,
      out: this.backend.apply(
        operation,
        children.map((c) => c.out),
        call,
      ),
    };
  }

  /** A type error quoting the sub-expression at fault (and its context, when it is a part). */
  private error(at: Expr, message: string, context?: Expr): FerryError {
    const quoted = formatExpression(at);
    const within =
      context !== undefined && context !== at ? ` in \`${formatExpression(context)}\`` : '';
    const location =
      this.source === null
        ? ''
        : ` (${positionOf(this.source, at.start)})\n${pointAt(this.source, at.start, at.end)}`;
    return new FerryError(
      'FERRY_ARGUMENT_INVALID',
      `type error: ${message}: \`${quoted}\`${within}${location}`,
      {
        details: { expression: this.source ?? formatExpression(at), offset: at.start },
      },
    );
  }

  private unknownColumn(node: Expr & { kind: 'column' }): FerryError {
    const names = Object.keys(this.schema);
    // Near misses: another case, or a typo or two in a name long enough for that to be telling.
    const typos = node.name.length < 4 ? 0 : node.name.length < 8 ? 1 : 2;
    const close = names.filter(
      (n) => n.toLowerCase() === node.name.toLowerCase() || editDistance(n, node.name) <= typos,
    );
    const hint =
      close.length > 0 ? `; did you mean ${close.map(formatColumnName).join(' or ')}?` : '';
    const listed = names.length === 0 ? 'none' : names.map(formatColumnName).join(', ');
    const location =
      this.source === null
        ? ''
        : ` (${positionOf(this.source, node.start)})\n${pointAt(this.source, node.start, node.end)}`;
    return new FerryError(
      'FERRY_COLUMN_UNKNOWN',
      `column '${node.name}' is not in the table (columns: ${listed})${hint}${location}`,
      { details: { column: node.name, columns: names } },
    );
  }
}

function walk<T>(expr: Expr | string, schema: ExpressionSchema, backend: Backend<T>): Typed<T> {
  const source = typeof expr === 'string' ? expr : null;
  const tree = typeof expr === 'string' ? parseExpression(expr) : expr;
  return new Walker(schema, source, backend).walk(tree);
}

// ---------------------------------------------------------------------------------------------
// Types only

const TYPES_ONLY: Backend<null> = {
  column: () => null,
  number: () => null,
  string: () => null,
  boolean: () => null,
  typedNull: () => null,
  apply: () => null,
};

/**
 * The column type of an expression's values, or a FerryError naming the sub-expression whose
 * types do not fit. An expression that is always null (`null`, `coalesce(null)`) is a float,
 * as an all-null column is.
 * @example typeOf('amount / 2 > 10', { amount: 'int' }) // 'bool'
 */
export function typeOf(expr: Expr | string, schema: ExpressionSchema): ColumnType {
  const { type } = walk(expr, schema, TYPES_ONLY);
  return type === 'null' ? 'float' : type;
}

// ---------------------------------------------------------------------------------------------
// DuckDB SQL

/** A DuckDB identifier in double quotes, embedded quotes doubled: any column name is safe. */
export function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

function sqlBackend(quoteColumn: (name: string) => string): Backend<string> {
  return {
    column: (name) => quoteColumn(name),
    // BIGINT, as Ferry's int columns are; a bare 1 would be a 32-bit INTEGER.
    // A float literal gets an exponent so DuckDB reads it as DOUBLE, not DECIMAL (0.1 + 0.2
    // must be 0.30000000000000004 on both sides).
    number: (value, integer) => (integer ? `CAST(${value} AS BIGINT)` : `${value.toExponential()}`),
    string: (value) => `'${value.replaceAll("'", "''")}'`,
    boolean: (value) => (value ? 'TRUE' : 'FALSE'),
    typedNull: sqlNull,
    apply: (operation, args, call) => operation.sql(args, call),
  };
}

/**
 * The expression as a DuckDB SQL expression over the schema's columns, fully parenthesised and
 * typed like `typeOf` says (int → BIGINT, float → DOUBLE, timestamp → TIMESTAMP).
 * @example compileToSql('log(amount + 1)', { amount: 'float' })
 * // 'CASE WHEN ("amount" + CAST(1 AS BIGINT)) > 0 THEN ln(("amount" + CAST(1 AS BIGINT))) END'
 */
export function compileToSql(
  expr: Expr | string,
  schema: ExpressionSchema,
  quoteColumn: (name: string) => string = quoteIdentifier,
): string {
  const { type, out } = walk(expr, schema, sqlBackend(quoteColumn));
  // A result that is null whatever the row still needs a type in a result set.
  return type === 'null' ? `CAST(${out} AS DOUBLE)` : out;
}

// ---------------------------------------------------------------------------------------------
// TypeScript closures

function mismatch(name: string, type: ColumnType, value: Scalar): never {
  throw new FerryError(
    'FERRY_ARGUMENT_INVALID',
    `column '${name}' is declared ${type} but the row holds ${typeof value} ${JSON.stringify(value)}; ` +
      'cast rows to the schema before evaluating expressions on them',
    { details: { column: name, type } },
  );
}

function readColumn(name: string, type: ColumnType): Evaluator {
  switch (type) {
    case 'string':
      return (row) => {
        const v = row[name];
        if (typeof v === 'string') return v;
        return v === null || v === undefined ? null : mismatch(name, type, v);
      };
    case 'bool':
      return (row) => {
        const v = row[name];
        if (typeof v === 'boolean') return v;
        return v === null || v === undefined ? null : mismatch(name, type, v);
      };
    default:
      return (row) => {
        const v = row[name];
        // `+ 0` turns -0 into 0, as DuckDB's BIGINT and TIMESTAMP hold it.
        if (typeof v === 'number')
          return Number.isFinite(v) ? (type === 'float' ? v : v + 0) : null;
        return v === null || v === undefined ? null : mismatch(name, type, v);
      };
  }
}

const ALWAYS_NULL: Evaluator = () => null;

const TS_BACKEND: Backend<Evaluator> = {
  column: readColumn,
  number: (value) => () => value,
  string: (value) => () => value,
  boolean: (value) => () => value,
  typedNull: () => ALWAYS_NULL,
  apply: (operation, args, call) => operation.ts(args, call),
};

/**
 * The expression as a function of one row. Closures are built once here; a call walks them
 * without parsing, `eval` or allocation beyond its result. Rows hold the schema's types
 * (numbers for int, float and timestamp, booleans, strings); a value of another type throws
 * FERRY_ARGUMENT_INVALID.
 * @example compileToFunction('amount * 2', { amount: 'float' })({ amount: 1.5 }) // 3
 */
export function compileToFunction(
  expr: Expr | string,
  schema: ExpressionSchema,
): (row: Row) => Scalar {
  return walk(expr, schema, TS_BACKEND).out;
}
