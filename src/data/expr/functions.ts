/**
 * The one table of the expression language's operators and functions. Each entry holds, side by
 * side, its arity, its type rule, its DuckDB SQL and its TypeScript implementation, so the two
 * compilations cannot drift apart without `parity.test.ts` noticing: it runs every entry both
 * ways on the same inputs and requires equal results, nulls included.
 *
 * Null semantics are SQL's: a `strict` entry gives null when any argument is null (the compiler
 * folds a literal `null` argument away, which also spares DuckDB an ambiguous `year(NULL)`);
 * `and`, `or`, `in`, `is null`, `coalesce`, `if`, `concat` and `clip` say what they do with nulls.
 *
 * Templates may repeat an argument's SQL (`CASE WHEN x > 0 THEN ln(x) END`); DuckDB evaluates
 * the repeated sub-expression once, but the text grows with nesting of such functions.
 */
import type { ColumnType, Row, Scalar } from '../../core/table.js';
import type { Expr } from './ast.js';
import {
  codePointLength,
  compareStrings,
  dayOf,
  dayOfWeekOf,
  formatDouble,
  formatTimestamp,
  hourOf,
  lowerCase,
  minuteOf,
  monthOf,
  NUMBER_TEXT,
  parseNumber,
  replaceAll,
  roundDigits,
  roundHalfAway,
  substring,
  trimSpaces,
  upperCase,
  yearOf,
} from './runtime.js';

/** A value's type inside an expression: a column type, or `null` for the bare literal null. */
export type ExprType = ColumnType | 'null';

/** A compiled expression on one row. */
export type Evaluator = (row: Row) => Scalar;

/** What a type rule sees of a call, and how it reports a mismatch. */
export interface TypeCheck {
  readonly types: readonly ExprType[];
  readonly nodes: readonly Expr[];
  /** Throws a type error about argument `index`, or about the whole call without one. */
  fail(message: string, index?: number): never;
}

/** What a compiler passes to an entry's SQL or TypeScript builder. */
export interface Call {
  readonly types: readonly ExprType[];
  readonly nodes: readonly Expr[];
  /** The call's result type, from the type rule. */
  readonly result: ExprType;
}

export interface Operation {
  /** The name under which the parity test covers it: the function name or the operator. */
  readonly name: string;
  /** Null in any argument gives null. */
  readonly strict: boolean;
  type(check: TypeCheck): ExprType;
  sql(args: readonly string[], call: Call): string;
  ts(args: readonly Evaluator[], call: Call): Evaluator;
}

export interface FunctionSpec extends Operation {
  readonly minArgs: number;
  /** `Infinity` for variadic functions. */
  readonly maxArgs: number;
  /** For messages and docs, e.g. `round(x, digits?)`. */
  readonly signature: string;
  readonly description: string;
}

// ---------------------------------------------------------------------------------------------
// Type rules

function isNumeric(type: ExprType): boolean {
  return type === 'int' || type === 'float' || type === 'null';
}

function expect(check: TypeCheck, index: number, wanted: ExprType, what: string): void {
  const type = check.types[index] as ExprType;
  if (type !== wanted && type !== 'null') {
    check.fail(`${what}: argument ${index + 1} must be ${article(wanted)}, got ${type}`, index);
  }
}

function expectNumeric(check: TypeCheck, index: number, what: string): void {
  const type = check.types[index] as ExprType;
  if (!isNumeric(type)) {
    check.fail(`${what}: argument ${index + 1} must be a number, got ${type}`, index);
  }
}

function article(type: ExprType): string {
  return type === 'int' ? 'an int' : `a ${type}`;
}

/** float if any is float, else int if any is int, else null (all null). */
function numericResult(types: readonly ExprType[]): ExprType {
  if (types.includes('float')) return 'float';
  return types.includes('int') ? 'int' : 'null';
}

/**
 * The common type of values that meet (coalesce, if, in, comparisons): int and float make float,
 * null joins anything. A mismatch is reported at the argument that broke it, or at the whole
 * call with `atCall`.
 */
function unify(
  check: TypeCheck,
  indices: readonly number[],
  message: (a: ExprType, b: ExprType) => string,
  atCall = false,
): ExprType {
  let result: ExprType = 'null';
  for (const i of indices) {
    const type = check.types[i] as ExprType;
    if (type === 'null' || type === result) continue;
    if (result === 'null') result = type;
    else if (isNumeric(type) && isNumeric(result)) result = 'float';
    else check.fail(message(result, type), atCall ? undefined : i);
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// SQL helpers

const SQL_TYPES: Record<ColumnType, string> = {
  float: 'DOUBLE',
  int: 'BIGINT',
  bool: 'BOOLEAN',
  string: 'VARCHAR',
  timestamp: 'TIMESTAMP',
};

/** A SQL null of the type, so DuckDB binds the same function overload as with a value. */
export function sqlNull(type: ExprType): string {
  return type === 'null' ? 'NULL' : `CAST(NULL AS ${SQL_TYPES[type]})`;
}

// ---------------------------------------------------------------------------------------------
// TypeScript helpers: closures that read their arguments once and allocate nothing.

function strict1(a: Evaluator, f: (x: never) => Scalar): Evaluator {
  return (row) => {
    const x = a(row);
    return x === null ? null : f(x as never);
  };
}

function strict2(a: Evaluator, b: Evaluator, f: (x: never, y: never) => Scalar): Evaluator {
  return (row) => {
    const x = a(row);
    if (x === null) return null;
    const y = b(row);
    return y === null ? null : f(x as never, y as never);
  };
}

function strict3(
  a: Evaluator,
  b: Evaluator,
  c: Evaluator,
  f: (x: never, y: never, z: never) => Scalar,
): Evaluator {
  return (row) => {
    const x = a(row);
    if (x === null) return null;
    const y = b(row);
    if (y === null) return null;
    const z = c(row);
    return z === null ? null : f(x as never, y as never, z as never);
  };
}

function arg(args: readonly Evaluator[], index: number): Evaluator {
  return args[index] as Evaluator;
}

function sqlArg(args: readonly string[], index: number): string {
  return args[index] as string;
}

// ---------------------------------------------------------------------------------------------
// Operators

type Verb = 'add' | 'subtract' | 'multiply' | 'divide' | 'take the remainder of';

function arithmetic(
  name: string,
  verb: Verb,
  sql: (a: string, b: string, call: Call) => string,
  ts: (x: number, y: number, call: Call) => number | null,
  intResult: boolean,
): Operation {
  return {
    name,
    strict: true,
    type(check) {
      const [a, b] = check.types as [ExprType, ExprType];
      if (!isNumeric(a) || !isNumeric(b)) {
        const hint =
          a === 'string' && b === 'string' && name === '+'
            ? '; use concat(a, b) to join strings'
            : a === 'timestamp' || b === 'timestamp'
              ? '; use epoch_ms(t) for a timestamp as milliseconds'
              : '';
        check.fail(`cannot ${verb} ${a} and ${b}${hint}`);
      }
      return intResult ? numericResult([a, b]) : 'float';
    },
    sql: (args, call) => sql(sqlArg(args, 0), sqlArg(args, 1), call),
    ts: (args, call) =>
      strict2(arg(args, 0), arg(args, 1), (x: number, y: number) => ts(x, y, call)),
  };
}

function comparison(op: '=' | '!=' | '<' | '<=' | '>' | '>='): Operation {
  const sqlOp = op === '!=' ? '<>' : op;
  return {
    name: op,
    strict: true,
    type(check) {
      unify(check, [0, 1], (a, b) => `cannot compare ${a} and ${b} with ${op}`, true);
      return 'bool';
    },
    sql: (args) => `(${sqlArg(args, 0)} ${sqlOp} ${sqlArg(args, 1)})`,
    ts(args, call) {
      const a = arg(args, 0);
      const b = arg(args, 1);
      // Strings order by code point, as DuckDB orders UTF-8; numbers and booleans by value.
      if (call.types[0] === 'string' || call.types[1] === 'string') {
        switch (op) {
          case '<':
            return strict2(a, b, (x: string, y: string) => compareStrings(x, y) < 0);
          case '<=':
            return strict2(a, b, (x: string, y: string) => compareStrings(x, y) <= 0);
          case '>':
            return strict2(a, b, (x: string, y: string) => compareStrings(x, y) > 0);
          case '>=':
            return strict2(a, b, (x: string, y: string) => compareStrings(x, y) >= 0);
        }
      }
      switch (op) {
        case '=':
          return strict2(a, b, (x: Scalar, y: Scalar) => x === y);
        case '!=':
          return strict2(a, b, (x: Scalar, y: Scalar) => x !== y);
        case '<':
          return strict2(a, b, (x: number, y: number) => x < y);
        case '<=':
          return strict2(a, b, (x: number, y: number) => x <= y);
        case '>':
          return strict2(a, b, (x: number, y: number) => x > y);
        case '>=':
          return strict2(a, b, (x: number, y: number) => x >= y);
      }
    },
  };
}

function logical(op: 'and' | 'or'): Operation {
  const dominant = op === 'or'; // the value that decides the result whatever the other side is
  return {
    name: op,
    strict: false,
    type(check) {
      for (const i of [0, 1]) {
        const type = check.types[i] as ExprType;
        if (type !== 'bool' && type !== 'null') {
          check.fail(`${op} needs booleans, got ${type}`, i);
        }
      }
      return 'bool';
    },
    sql: (args) => `(${sqlArg(args, 0)} ${op.toUpperCase()} ${sqlArg(args, 1)})`,
    ts(args) {
      const a = arg(args, 0);
      const b = arg(args, 1);
      // Three-valued logic: null and false = false, null or true = true, else null wins.
      return (row) => {
        const x = a(row);
        if (x === dominant) return dominant;
        const y = b(row);
        if (y === dominant) return dominant;
        return x === null || y === null ? null : !dominant;
      };
    },
  };
}

function membership(negated: boolean): Operation {
  return {
    name: negated ? 'not in' : 'in',
    strict: false,
    type(check) {
      unify(
        check,
        check.types.map((_, i) => i),
        (a, b) => `${negated ? 'not in' : 'in'}: cannot compare ${a} with ${b}`,
      );
      return 'bool';
    },
    sql(args) {
      const [operand, ...values] = args;
      return `(${operand} ${negated ? 'NOT IN' : 'IN'} (${values.join(', ')}))`;
    },
    ts(args, call) {
      const [operand, ...values] = args as [Evaluator, ...Evaluator[]];
      const literals = call.nodes.slice(1);
      // SQL: true if some value equals, else null if the operand or some value is null.
      if (
        literals.every((n) => n.kind === 'number' || n.kind === 'string' || n.kind === 'boolean')
      ) {
        const set = new Set(literals.map((n) => (n as { value: Scalar }).value));
        return (row) => {
          const x = operand(row);
          return x === null ? null : set.has(x) !== negated;
        };
      }
      return (row) => {
        const x = operand(row);
        if (x === null) return null;
        let sawNull = false;
        for (let i = 0; i < values.length; i++) {
          const y = (values[i] as Evaluator)(row);
          if (y === null) sawNull = true;
          else if (y === x) return !negated;
        }
        return sawNull ? null : negated;
      };
    },
  };
}

function nullTest(negated: boolean): Operation {
  return {
    name: negated ? 'is not null' : 'is null',
    strict: false,
    type: () => 'bool',
    sql: (args) => `(${sqlArg(args, 0)} ${negated ? 'IS NOT NULL' : 'IS NULL'})`,
    ts(args) {
      const a = arg(args, 0);
      return negated ? (row) => a(row) !== null : (row) => a(row) === null;
    },
  };
}

/**
 * The operators, by the name the compiler looks them up with. Int results are normalised with
 * `+ 0` where JavaScript could make a -0 that DuckDB's BIGINT cannot hold (`-5 % 5`, `-0 * 3`).
 */
export const OPERATORS = {
  '+': arithmetic(
    '+',
    'add',
    (a, b) => `(${a} + ${b})`,
    (x, y) => x + y,
    true,
  ),
  '-': arithmetic(
    '-',
    'subtract',
    (a, b) => `(${a} - ${b})`,
    (x, y) => x - y,
    true,
  ),
  '*': arithmetic(
    '*',
    'multiply',
    (a, b) => `(${a} * ${b})`,
    (x, y, call) => (call.result === 'int' ? x * y + 0 : x * y),
    true,
  ),
  // Always a double, as DuckDB 1.5 divides integers; the casts keep that true under
  // `SET integer_division = true`. Division by zero is null: DuckDB 1.5 itself gives
  // ±Infinity or NaN for doubles (clients that print through JSON show those as NULL).
  '/': arithmetic(
    '/',
    'divide',
    (a, b) => `(CAST(${a} AS DOUBLE) / NULLIF(CAST(${b} AS DOUBLE), 0))`,
    (x, y) => (y === 0 ? null : x / y),
    false,
  ),
  // The remainder has the sign of the dividend (C's fmod, JavaScript's %). By zero it is null
  // (DuckDB gives null for ints but NaN for doubles, hence the NULLIF).
  '%': arithmetic(
    '%',
    'take the remainder of',
    (a, b) => `(${a} % NULLIF(${b}, 0))`,
    (x, y, call) => (y === 0 ? null : call.result === 'int' ? (x % y) + 0 : x % y),
    true,
  ),
  negate: {
    name: 'negate',
    strict: true,
    type(check) {
      const type = check.types[0] as ExprType;
      if (!isNumeric(type)) check.fail(`cannot negate ${type}`);
      return type;
    },
    // The space keeps `- -1` from reading as a SQL comment.
    sql: (args) => `(- ${sqlArg(args, 0)})`,
    ts: (args, call) =>
      strict1(arg(args, 0), call.result === 'int' ? (x: number) => 0 - x : (x: number) => -x),
  },
  not: {
    name: 'not',
    strict: true,
    type(check) {
      const type = check.types[0] as ExprType;
      if (type !== 'bool' && type !== 'null') check.fail(`not needs a boolean, got ${type}`);
      return 'bool';
    },
    sql: (args) => `(NOT ${sqlArg(args, 0)})`,
    ts: (args) => strict1(arg(args, 0), (x: boolean) => !x),
  },
  '=': comparison('='),
  '!=': comparison('!='),
  '<': comparison('<'),
  '<=': comparison('<='),
  '>': comparison('>'),
  '>=': comparison('>='),
  and: logical('and'),
  or: logical('or'),
  in: membership(false),
  'not in': membership(true),
  'is null': nullTest(false),
  'is not null': nullTest(true),
} as const satisfies Record<string, Operation>;

export type OperatorName = keyof typeof OPERATORS;

// ---------------------------------------------------------------------------------------------
// Functions

interface FunctionDefinition extends Omit<FunctionSpec, 'name' | 'strict'> {
  readonly strict?: boolean;
}

/** A numeric function of one argument with a float result. */
function mathFunction(
  signature: string,
  description: string,
  sql: (x: string) => string,
  ts: (x: number) => number | null,
): FunctionDefinition {
  return {
    minArgs: 1,
    maxArgs: 1,
    signature,
    description,
    type(check) {
      expectNumeric(check, 0, signature);
      return 'float';
    },
    sql: (args) => sql(sqlArg(args, 0)),
    ts: (args) => strict1(arg(args, 0), ts),
  };
}

/** floor, ceil: ints are already whole, so they pass through (DuckDB would make them doubles). */
function wholeFunction(
  name: string,
  description: string,
  ts: (x: number) => number,
): FunctionDefinition {
  return {
    minArgs: 1,
    maxArgs: 1,
    signature: `${name}(x)`,
    description,
    type(check) {
      expectNumeric(check, 0, `${name}(x)`);
      return check.types[0] as ExprType;
    },
    sql: (args, call) => (call.result === 'int' ? sqlArg(args, 0) : `${name}(${sqlArg(args, 0)})`),
    ts: (args, call) => (call.result === 'int' ? arg(args, 0) : strict1(arg(args, 0), ts)),
  };
}

function stringFunction(
  signature: string,
  description: string,
  arity: number,
  result: ExprType,
  sql: (args: readonly string[]) => string,
  ts: (args: readonly Evaluator[]) => Evaluator,
): FunctionDefinition {
  return {
    minArgs: arity,
    maxArgs: arity,
    signature,
    description,
    type(check) {
      for (let i = 0; i < arity; i++) expect(check, i, 'string', signature);
      return result;
    },
    sql,
    ts,
  };
}

function datePart(
  name: string,
  description: string,
  ts: (ms: number) => number,
): FunctionDefinition {
  return {
    minArgs: 1,
    maxArgs: 1,
    signature: `${name}(t)`,
    description,
    type(check) {
      expect(check, 0, 'timestamp', `${name}(t)`);
      return 'int';
    },
    sql: (args) => `${name}(${sqlArg(args, 0)})`,
    ts: (args) => strict1(arg(args, 0), ts),
  };
}

/** A number written as a literal, possibly negated (`-1.5`); null for anything else. */
function literalNumber(node: Expr): number | null {
  if (node.kind === 'number') return node.value;
  if (node.kind === 'unary' && node.op === '-') {
    const inner = literalNumber(node.operand);
    return inner === null ? null : -inner;
  }
  return null;
}

function edgesOf(nodes: readonly Expr[]): number[] {
  return nodes.slice(1).map((n) => literalNumber(n) as number);
}

const DEFINITIONS = {
  log: mathFunction(
    'log(x)',
    'Natural logarithm; null for x <= 0.',
    (x) => `CASE WHEN ${x} > 0 THEN ln(${x}) END`,
    (x) => (x > 0 ? Math.log(x) : null),
  ),
  log10: mathFunction(
    'log10(x)',
    'Base-10 logarithm; null for x <= 0.',
    (x) => `CASE WHEN ${x} > 0 THEN log10(${x}) END`,
    (x) => (x > 0 ? Math.log10(x) : null),
  ),
  exp: mathFunction('exp(x)', 'e to the power x.', (x) => `exp(${x})`, Math.exp),
  sqrt: mathFunction(
    'sqrt(x)',
    'Square root; null for x < 0.',
    (x) => `CASE WHEN ${x} >= 0 THEN sqrt(${x}) END`,
    (x) => (x >= 0 ? Math.sqrt(x) : null),
  ),
  abs: {
    minArgs: 1,
    maxArgs: 1,
    signature: 'abs(x)',
    description: 'Absolute value; int stays int.',
    type(check) {
      expectNumeric(check, 0, 'abs(x)');
      return check.types[0] as ExprType;
    },
    sql: (args) => `abs(${sqlArg(args, 0)})`,
    ts: (args) => strict1(arg(args, 0), Math.abs),
  },
  round: {
    minArgs: 1,
    maxArgs: 2,
    signature: 'round(x, digits?)',
    description:
      'Rounds half away from zero, to `digits` decimals (negative: tens, hundreds…). ' +
      'round(x) keeps the type of x; with digits the result is a float.',
    type(check) {
      expectNumeric(check, 0, 'round(x, digits?)');
      if (check.types.length === 1) return check.types[0] as ExprType;
      expect(check, 1, 'int', 'round(x, digits?)');
      return 'float';
    },
    sql(args, call) {
      const x = sqlArg(args, 0);
      if (args.length === 2) {
        // DuckDB has no round(DOUBLE, BIGINT); digits go in as INTEGER.
        return `round(CAST(${x} AS DOUBLE), CAST(${sqlArg(args, 1)} AS INTEGER))`;
      }
      return call.result === 'int' ? x : `round(${x})`;
    },
    ts(args, call) {
      if (args.length === 2) return strict2(arg(args, 0), arg(args, 1), roundDigits);
      return call.result === 'int' ? arg(args, 0) : strict1(arg(args, 0), roundHalfAway);
    },
  },
  floor: wholeFunction('floor', 'Largest whole number <= x.', Math.floor),
  ceil: wholeFunction('ceil', 'Smallest whole number >= x.', Math.ceil),
  clip: {
    minArgs: 3,
    maxArgs: 3,
    strict: false,
    signature: 'clip(x, lo, hi)',
    description:
      'x limited to [lo, hi]; a null bound is no bound (clip(x, 0, null) is max(x, 0)); null x ' +
      'gives null. With lo > hi the result is hi.',
    type(check) {
      for (let i = 0; i < 3; i++) expectNumeric(check, i, 'clip(x, lo, hi)');
      return numericResult(check.types);
    },
    sql(args) {
      const [x, lo, hi] = args as [string, string, string];
      // greatest/least skip nulls, which gives the "no bound" meaning; x itself must stay null.
      return `CASE WHEN ${x} IS NULL THEN NULL ELSE least(greatest(${x}, ${lo}), ${hi}) END`;
    },
    ts(args) {
      const [x, lo, hi] = args as [Evaluator, Evaluator, Evaluator];
      return (row) => {
        let v = x(row) as number | null;
        if (v === null) return null;
        const low = lo(row) as number | null;
        if (low !== null && v < low) v = low;
        const high = hi(row) as number | null;
        if (high !== null && v > high) v = high;
        return v;
      };
    },
  },
  coalesce: {
    minArgs: 1,
    maxArgs: Infinity,
    strict: false,
    signature: 'coalesce(a, b, ...)',
    description: 'The first argument that is not null; null if all are.',
    type: (check) =>
      unify(
        check,
        check.types.map((_, i) => i),
        (a, b) => `coalesce(a, b, ...): arguments of types ${a} and ${b} do not mix`,
      ),
    sql: (args) => `COALESCE(${args.join(', ')})`,
    ts(args) {
      return (row) => {
        for (let i = 0; i < args.length; i++) {
          const v = (args[i] as Evaluator)(row);
          if (v !== null) return v;
        }
        return null;
      };
    },
  },
  if: {
    minArgs: 3,
    maxArgs: 3,
    strict: false,
    signature: 'if(condition, then, else)',
    description: '`then` when the condition is true, `else` when it is false or null.',
    type(check) {
      expect(check, 0, 'bool', 'if(condition, then, else)');
      return unify(
        check,
        [1, 2],
        (a, b) => `if(condition, then, else): then is ${a} but else is ${b}`,
      );
    },
    sql: (args) =>
      `CASE WHEN ${sqlArg(args, 0)} THEN ${sqlArg(args, 1)} ELSE ${sqlArg(args, 2)} END`,
    ts(args) {
      const [c, a, b] = args as [Evaluator, Evaluator, Evaluator];
      return (row) => (c(row) === true ? a(row) : b(row));
    },
  },
  lower: stringFunction(
    'lower(s)',
    'Lower case, one code point to one (no final-sigma rule).',
    1,
    'string',
    (args) => `lower(${sqlArg(args, 0)})`,
    (args) => strict1(arg(args, 0), lowerCase),
  ),
  upper: stringFunction(
    'upper(s)',
    "Upper case, one code point to one (upper('ß') is 'ẞ').",
    1,
    'string',
    (args) => `upper(${sqlArg(args, 0)})`,
    (args) => strict1(arg(args, 0), upperCase),
  ),
  trim: stringFunction(
    'trim(s)',
    'Removes spaces (Unicode space separators, not tabs or line breaks) from both ends.',
    1,
    'string',
    (args) => `trim(${sqlArg(args, 0)})`,
    (args) => strict1(arg(args, 0), trimSpaces),
  ),
  length: stringFunction(
    'length(s)',
    'Number of characters (code points).',
    1,
    'int',
    (args) => `length(${sqlArg(args, 0)})`,
    (args) => strict1(arg(args, 0), codePointLength),
  ),
  substr: {
    minArgs: 2,
    maxArgs: 3,
    signature: 'substr(s, start, length?)',
    description:
      'The characters from `start` (1-based; negative counts from the end), `length` of them ' +
      '(to the end without it; negative takes the characters before start).',
    type(check) {
      expect(check, 0, 'string', 'substr(s, start, length?)');
      expect(check, 1, 'int', 'substr(s, start, length?)');
      if (check.types.length === 3) expect(check, 2, 'int', 'substr(s, start, length?)');
      return 'string';
    },
    sql: (args) => `substring(${args.join(', ')})`,
    ts(args) {
      if (args.length === 2) {
        return strict2(arg(args, 0), arg(args, 1), (s: string, start: number) =>
          substring(s, start, null),
        );
      }
      return strict3(arg(args, 0), arg(args, 1), arg(args, 2), substring);
    },
  },
  concat: {
    minArgs: 1,
    maxArgs: Infinity,
    strict: false,
    signature: 'concat(s1, s2, ...)',
    description: 'The strings joined; null arguments are skipped (all null gives an empty string).',
    type(check) {
      check.types.forEach((type, i) => {
        if (type !== 'string' && type !== 'null') {
          check.fail(
            `concat(s1, s2, ...): argument ${i + 1} must be a string, got ${type}; use to_string(x)`,
            i,
          );
        }
      });
      return 'string';
    },
    sql: (args) => `concat(${args.join(', ')})`,
    ts(args) {
      return (row) => {
        let out = '';
        for (let i = 0; i < args.length; i++) {
          const v = (args[i] as Evaluator)(row);
          if (v !== null) out += v as string;
        }
        return out;
      };
    },
  },
  contains: stringFunction(
    'contains(s, part)',
    'Whether `part` occurs in s (always true for an empty part).',
    2,
    'bool',
    (args) => `contains(${args.join(', ')})`,
    (args) => strict2(arg(args, 0), arg(args, 1), (s: string, part: string) => s.includes(part)),
  ),
  starts_with: stringFunction(
    'starts_with(s, prefix)',
    'Whether s begins with prefix.',
    2,
    'bool',
    (args) => `starts_with(${args.join(', ')})`,
    (args) => strict2(arg(args, 0), arg(args, 1), (s: string, p: string) => s.startsWith(p)),
  ),
  ends_with: stringFunction(
    'ends_with(s, suffix)',
    'Whether s ends with suffix.',
    2,
    'bool',
    (args) => `ends_with(${args.join(', ')})`,
    (args) => strict2(arg(args, 0), arg(args, 1), (s: string, p: string) => s.endsWith(p)),
  ),
  replace: stringFunction(
    'replace(s, from, to)',
    'Every occurrence of `from` replaced by `to`, left to right; an empty `from` changes nothing.',
    3,
    'string',
    (args) => `replace(${args.join(', ')})`,
    (args) => strict3(arg(args, 0), arg(args, 1), arg(args, 2), replaceAll),
  ),
  year: datePart('year', 'Calendar year (UTC); 0 is 1 BC.', yearOf),
  month: datePart('month', 'Month 1–12 (UTC).', monthOf),
  day: datePart('day', 'Day of the month 1–31 (UTC).', dayOf),
  hour: datePart('hour', 'Hour 0–23 (UTC).', hourOf),
  minute: datePart('minute', 'Minute 0–59.', minuteOf),
  dayofweek: datePart(
    'dayofweek',
    'Day of the week, 0 = Sunday … 6 = Saturday (UTC).',
    dayOfWeekOf,
  ),
  epoch_ms: {
    minArgs: 1,
    maxArgs: 1,
    signature: 'epoch_ms(t)',
    description: 'Milliseconds since 1970-01-01 UTC, as an int.',
    type(check) {
      expect(check, 0, 'timestamp', 'epoch_ms(t)');
      return 'int';
    },
    sql: (args) => `epoch_ms(${sqlArg(args, 0)})`,
    // Timestamps already are UTC milliseconds on this side.
    ts: (args) => arg(args, 0),
  },
  bucket: {
    minArgs: 2,
    maxArgs: Infinity,
    signature: 'bucket(x, edge1, edge2, ...)',
    description:
      'Index of the bucket of x between ascending literal edges: 0 below edge1, i for ' +
      'edge_i <= x < edge_(i+1), the number of edges at or above the last one.',
    type(check) {
      expectNumeric(check, 0, 'bucket(x, edge1, edge2, ...)');
      let previous = -Infinity;
      for (let i = 1; i < check.nodes.length; i++) {
        const edge = literalNumber(check.nodes[i] as Expr);
        if (edge === null) {
          return check.fail('bucket(x, edge1, edge2, ...): edges must be number literals', i);
        }
        if (edge <= previous) {
          return check.fail('bucket(x, edge1, edge2, ...): edges must be in ascending order', i);
        }
        previous = edge;
      }
      return 'int';
    },
    sql(args) {
      const x = sqlArg(args, 0);
      // Counting the edges at or below x; a null x makes every term, and so the sum, null.
      return `(${args
        .slice(1)
        .map((edge) => `CAST((${x} >= ${edge}) AS BIGINT)`)
        .join(' + ')})`;
    },
    ts(args, call) {
      const edges = edgesOf(call.nodes);
      return strict1(arg(args, 0), (x: number) => {
        let i = 0;
        while (i < edges.length && x >= (edges[i] as number)) i++;
        return i;
      });
    },
  },
  to_string: {
    minArgs: 1,
    maxArgs: 1,
    signature: 'to_string(x)',
    description:
      "x as text, as DuckDB casts it: 1.0 → '1.0', 1e16 → '1e+16', true → 'true', " +
      "timestamps as '2024-01-31 23:59:59.5'.",
    type: () => 'string',
    sql: (args) => `CAST(${sqlArg(args, 0)} AS VARCHAR)`,
    ts(args, call) {
      const x = arg(args, 0);
      switch (call.types[0]) {
        case 'float':
          return strict1(x, formatDouble);
        case 'timestamp':
          return strict1(x, formatTimestamp);
        case 'string':
          return x;
        default:
          return strict1(x, (v: number | boolean) => String(v));
      }
    },
  },
  to_number: {
    minArgs: 1,
    maxArgs: 1,
    signature: 'to_number(x)',
    description:
      "A string's number (' 1.5e3 ' → 1500), null when it is not plain decimal notation; " +
      'ints as floats; true → 1.0.',
    type(check) {
      if (check.types[0] === 'timestamp') {
        check.fail('to_number(x): use epoch_ms(t) for a timestamp as milliseconds', 0);
      }
      return 'float';
    },
    sql(args, call) {
      const x = sqlArg(args, 0);
      if (call.types[0] !== 'string') return `CAST(${x} AS DOUBLE)`;
      // Only the text NUMBER_TEXT accepts reaches the cast (DuckDB's own cast also reads
      // '1_000', 'inf' and '+-1'); a failed match extracts '' and TRY_CAST makes that null.
      return `TRY_CAST(regexp_extract(${x}, '${NUMBER_TEXT.source}', 1) AS DOUBLE)`;
    },
    ts(args, call) {
      const x = arg(args, 0);
      if (call.types[0] === 'string') return strict1(x, parseNumber);
      if (call.types[0] === 'bool') return strict1(x, (v: boolean) => (v ? 1 : 0));
      return x;
    },
  },
} satisfies Record<string, FunctionDefinition>;

/** Every function of the language, by lower-case name. */
export const FUNCTION_TABLE: ReadonlyMap<string, FunctionSpec> = new Map(
  Object.entries(DEFINITIONS).map(([name, definition]: [string, FunctionDefinition]) => [
    name,
    { strict: true, ...definition, name },
  ]),
);

/** The function names, sorted: for docs, messages and the parity test's coverage check. */
export const FUNCTIONS: readonly string[] = [...FUNCTION_TABLE.keys()].sort();

/** "1 argument", "2 or 3 arguments", "at least 2 arguments": for arity errors. */
export function arityText(spec: FunctionSpec): string {
  const plural = (n: number) => `${n} argument${n === 1 ? '' : 's'}`;
  if (spec.maxArgs === Infinity) return `at least ${plural(spec.minArgs)}`;
  if (spec.minArgs === spec.maxArgs) return plural(spec.minArgs);
  const joiner = spec.maxArgs === spec.minArgs + 1 ? 'or' : 'to';
  return `${spec.minArgs} ${joiner} ${plural(spec.maxArgs)}`;
}
