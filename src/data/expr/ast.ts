/**
 * The syntax tree of Ferry's expression language: what `parseExpression` returns and what both
 * compilers (DuckDB SQL and TypeScript closures) walk. Every node records where it came from in
 * the source text, so that a type error can point at the exact sub-expression.
 */

export type UnaryOperator = '-' | 'not';
export type ArithmeticOperator = '+' | '-' | '*' | '/' | '%';
export type ComparisonOperator = '=' | '!=' | '<' | '<=' | '>' | '>=';
export type LogicalOperator = 'and' | 'or';
export type BinaryOperator = ArithmeticOperator | ComparisonOperator | LogicalOperator;

interface NodeBase {
  /** Offset of the node's first character in the source (0-based). */
  readonly start: number;
  /** Offset just past the node's last character. */
  readonly end: number;
}

export interface NumberLiteral extends NodeBase {
  readonly kind: 'number';
  readonly value: number;
  /** Written without a decimal point or exponent (`3`, not `3.0`): typed int. */
  readonly integer: boolean;
}

export interface StringLiteral extends NodeBase {
  readonly kind: 'string';
  readonly value: string;
}

export interface BooleanLiteral extends NodeBase {
  readonly kind: 'boolean';
  readonly value: boolean;
}

export interface NullLiteral extends NodeBase {
  readonly kind: 'null';
}

export interface ColumnRef extends NodeBase {
  readonly kind: 'column';
  readonly name: string;
}

export interface UnaryExpr extends NodeBase {
  readonly kind: 'unary';
  readonly op: UnaryOperator;
  readonly operand: Expr;
}

export interface BinaryExpr extends NodeBase {
  readonly kind: 'binary';
  /** `==` is read as `=` and `<>` as `!=`. */
  readonly op: BinaryOperator;
  readonly left: Expr;
  readonly right: Expr;
}

export interface InExpr extends NodeBase {
  readonly kind: 'in';
  readonly operand: Expr;
  readonly values: readonly Expr[];
  /** `x not in (...)`. */
  readonly negated: boolean;
}

export interface IsNullExpr extends NodeBase {
  readonly kind: 'is_null';
  readonly operand: Expr;
  /** `x is not null`. */
  readonly negated: boolean;
}

export interface CallExpr extends NodeBase {
  readonly kind: 'call';
  /** Lower case: function names are case-insensitive. */
  readonly name: string;
  readonly args: readonly Expr[];
}

export type Expr =
  | NumberLiteral
  | StringLiteral
  | BooleanLiteral
  | NullLiteral
  | ColumnRef
  | UnaryExpr
  | BinaryExpr
  | InExpr
  | IsNullExpr
  | CallExpr;

/** Binding strength, loosest first; the parser and the printer share it. */
export const PRECEDENCE = {
  or: 1,
  and: 2,
  not: 3,
  comparison: 4,
  additive: 5,
  multiplicative: 6,
  negate: 7,
  primary: 8,
} as const;

/** Words that cannot name a column without backquotes. */
export const KEYWORDS: ReadonlySet<string> = new Set([
  'and',
  'or',
  'not',
  'in',
  'is',
  'null',
  'true',
  'false',
]);

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function precedenceOf(expr: Expr): number {
  switch (expr.kind) {
    case 'binary':
      if (expr.op === 'or') return PRECEDENCE.or;
      if (expr.op === 'and') return PRECEDENCE.and;
      if (expr.op === '+' || expr.op === '-') return PRECEDENCE.additive;
      if (expr.op === '*' || expr.op === '/' || expr.op === '%') return PRECEDENCE.multiplicative;
      return PRECEDENCE.comparison;
    case 'in':
    case 'is_null':
      return PRECEDENCE.comparison;
    case 'unary':
      return expr.op === 'not' ? PRECEDENCE.not : PRECEDENCE.negate;
    case 'number':
      return expr.value < 0 || Object.is(expr.value, -0) ? PRECEDENCE.negate : PRECEDENCE.primary;
    default:
      return PRECEDENCE.primary;
  }
}

/** A column name as the language writes it: bare when it can be, backquoted otherwise. */
export function formatColumnName(name: string): string {
  return IDENTIFIER.test(name) && !KEYWORDS.has(name.toLowerCase())
    ? name
    : `\`${name.replaceAll('`', '``')}\``;
}

function formatNumber(value: number, integer: boolean): string {
  const text = String(value);
  // A float literal must keep its decimal point, or it would read back as an int.
  return integer || /[.e]/.test(text) ? text : `${text}.0`;
}

/**
 * The expression as canonical source text, with only the parentheses it needs; parsing the text
 * gives back the same tree (offsets aside). Used to quote sub-expressions in error messages.
 * @example formatExpression(parseExpression('(a+1)*2')) // '(a + 1) * 2'
 */
export function formatExpression(expr: Expr): string {
  switch (expr.kind) {
    case 'number':
      return formatNumber(expr.value, expr.integer);
    case 'string':
      return `'${expr.value.replaceAll("'", "''")}'`;
    case 'boolean':
      return expr.value ? 'true' : 'false';
    case 'null':
      return 'null';
    case 'column':
      return formatColumnName(expr.name);
    case 'unary': {
      const operand = wrap(expr.operand, expr.op === 'not' ? PRECEDENCE.not : PRECEDENCE.primary);
      return expr.op === 'not' ? `not ${operand}` : `-${operand}`;
    }
    case 'binary': {
      const own = precedenceOf(expr);
      // Left-associative: a right operand of equal strength needs parentheses (a - (b - c)).
      // Comparisons do not chain, so both sides of one need them when they are comparisons.
      const leftMin = own === PRECEDENCE.comparison ? own + 1 : own;
      return `${wrap(expr.left, leftMin)} ${expr.op} ${wrap(expr.right, own + 1)}`;
    }
    case 'in': {
      const values = expr.values.map(formatExpression).join(', ');
      return `${wrap(expr.operand, PRECEDENCE.additive)} ${expr.negated ? 'not in' : 'in'} (${values})`;
    }
    case 'is_null':
      return `${wrap(expr.operand, PRECEDENCE.additive)} is ${expr.negated ? 'not null' : 'null'}`;
    case 'call':
      return `${expr.name}(${expr.args.map(formatExpression).join(', ')})`;
  }
}

function wrap(expr: Expr, min: number): string {
  const text = formatExpression(expr);
  return precedenceOf(expr) < min ? `(${text})` : text;
}

/**
 * The column names an expression reads.
 * @example referencedColumns(parseExpression('amount / n + amount')) // Set { 'amount', 'n' }
 */
export function referencedColumns(expr: Expr): Set<string> {
  const out = new Set<string>();
  const visit = (node: unknown): void => {
    if (!node || typeof node !== 'object') return;
    if ((node as Partial<ColumnRef>).kind === 'column') out.add((node as ColumnRef).name);
    for (const value of Object.values(node)) {
      if (Array.isArray(value)) value.forEach(visit);
      else if (value && typeof value === 'object') visit(value);
    }
  };
  visit(expr);
  return out;
}
