import { describe, expect, it } from 'vitest';
import { FerryError } from '../../errors/index.js';
import { formatExpression, type Expr } from './ast.js';
import { FUNCTIONS } from './functions.js';
import { parseExpression } from './parse.js';

/** The tree as a compact S-expression, to state shapes and precedence at a glance. */
function tree(e: Expr): string {
  switch (e.kind) {
    case 'number':
      return e.integer ? String(e.value) : `${e.value}f`;
    case 'string':
      return JSON.stringify(e.value);
    case 'boolean':
      return String(e.value);
    case 'null':
      return 'null';
    case 'column':
      return e.name;
    case 'unary':
      return `(${e.op} ${tree(e.operand)})`;
    case 'binary':
      return `(${e.op} ${tree(e.left)} ${tree(e.right)})`;
    case 'in':
      return `(${e.negated ? 'not-in' : 'in'} ${tree(e.operand)} ${e.values.map(tree).join(' ')})`;
    case 'is_null':
      return `(${e.negated ? 'is-not-null' : 'is-null'} ${tree(e.operand)})`;
    case 'call':
      return `(${e.name}() ${e.args.map(tree).join(' ')})`;
  }
}

function parsed(source: string): string {
  return tree(parseExpression(source));
}

function errorOf(source: string): FerryError {
  try {
    parseExpression(source);
  } catch (error) {
    if (error instanceof FerryError) return error;
    throw error;
  }
  throw new Error(`expected ${source} not to parse`);
}

describe('parseExpression: precedence', () => {
  it.each([
    ['1 + 2 * 3', '(+ 1 (* 2 3))'],
    ['(1 + 2) * 3', '(* (+ 1 2) 3)'],
    ['not a = b', '(not (= a b))'],
    ['a or b and c', '(or a (and b c))'],
    ['(a or b) and c', '(and (or a b) c)'],
    ['a - b - c', '(- (- a b) c)'],
    ['a / b * c % d', '(% (* (/ a b) c) d)'],
    ['-x * y', '(* (- x) y)'],
    ['- -x', '(- (- x))'],
    ['-2 + 3', '(+ (- 2) 3)'],
    ['not not a', '(not (not a))'],
    ['a and not b or c', '(or (and a (not b)) c)'],
    ['a = b and c != d or not e', '(or (and (= a b) (!= c d)) (not e))'],
    ['a + 1 in (2, 3)', '(in (+ a 1) 2 3)'],
    ['not x in (1)', '(not (in x 1))'],
    ['x not in (1, null)', '(not-in x 1 null)'],
    ['x is null or y is not null', '(or (is-null x) (is-not-null y))'],
    ['a + 1 is null', '(is-null (+ a 1))'],
    ['log(a + 1) > 2 * b', '(> (log() (+ a 1)) (* 2 b))'],
    ['coalesce(a, if(b, 1, 2), null)', '(coalesce() a (if() b 1 2) null)'],
    ['x in (a or b, 1)', '(in x (or a b) 1)'],
  ])('%s', (source, expected) => {
    expect(parsed(source)).toBe(expected);
  });

  it('reads == as = and <> as !=', () => {
    expect(parsed('a == b')).toBe('(= a b)');
    expect(parsed('a <> b')).toBe('(!= a b)');
    expect(parsed('a<=b')).toBe('(<= a b)');
  });
});

describe('parseExpression: literals and names', () => {
  it('types numbers by how they are written', () => {
    expect(parsed('1')).toBe('1');
    expect(parsed('1.0')).toBe('1f');
    expect(parsed('1e3')).toBe('1000f');
    expect(parsed('.5')).toBe('0.5f');
    expect(parsed('2.5E-3')).toBe('0.0025f');
    expect(parsed('007')).toBe('7');
  });

  it('reads quoted strings with doubled quotes, and keeps everything else as written', () => {
    expect(parsed("'it''s'")).toBe('"it\'s"');
    expect(parsed("''")).toBe('""');
    expect(parsed("'a\\nb'")).toBe('"a\\\\nb"');
    expect(parsed("'😀 é'")).toBe('"😀 é"');
  });

  it('reads keywords and function names in any case, column names as written', () => {
    expect(parsed('TRUE AND False OR NULL')).toBe('(or (and true false) null)');
    expect(parsed('X Is Not Null')).toBe('(is-not-null X)');
    expect(parsed('LOG(Amount)')).toBe('(log() Amount)');
  });

  it('reads backquoted column names, with doubled backquotes', () => {
    expect(parsed('`Column With Spaces` + 1')).toBe('(+ Column With Spaces 1)');
    expect(parsed('`and`')).toBe('and');
    expect(parsed('`a``b`')).toBe('a`b');
    // Backquotes always make a column: a backquoted name cannot be called.
    expect(errorOf('`log`(1)').message).toContain("found '('");
  });

  it('takes a name without parentheses as a column, even a function name', () => {
    expect(parsed('log + year')).toBe('(+ log year)');
  });

  it('records where each node is in the source', () => {
    const e = parseExpression('  log(a + 1) ');
    expect([e.start, e.end]).toEqual([2, 12]);
    if (e.kind !== 'call') throw new Error('expected a call');
    const arg = e.args[0] as Expr;
    expect([arg.start, arg.end]).toEqual([6, 11]);
    const grouped = parseExpression('(a + b) * c');
    if (grouped.kind !== 'binary') throw new Error('expected a binary');
    expect([grouped.left.start, grouped.left.end]).toEqual([0, 7]);
  });
});

describe('formatExpression', () => {
  it.each([
    ['1+2*3', '1 + 2 * 3'],
    ['(1+2)*3', '(1 + 2) * 3'],
    ['a-(b-c)', 'a - (b - c)'],
    ['(a-b)-c', 'a - b - c'],
    ['not (a and b)', 'not (a and b)'],
    ['(not a) = b', '(not a) = b'],
    ['(a = b) = c', '(a = b) = c'],
    ['-(-x)', '-(-x)'],
    ['-(a+b)', '-(a + b)'],
    ['`my col` <> `and`', '`my col` != `and`'],
    ["x NOT IN ('a''b', 2.0)", "x not in ('a''b', 2.0)"],
    ['(a or b) is null', '(a or b) is null'],
    ['ROUND(x,2)', 'round(x, 2)'],
    ['1e21 + 0.5', '1e+21 + 0.5'],
  ])('%s prints as %s and reads back the same', (source, expected) => {
    const text = formatExpression(parseExpression(source));
    expect(text).toBe(expected);
    expect(parsed(text)).toBe(parsed(source));
  });
});

describe('parseExpression: errors', () => {
  it('points a caret at the column and says what was expected', () => {
    const error = errorOf('log(amount + 1');
    expect(error.code).toBe('FERRY_ARGUMENT_INVALID');
    expect(error.message).toBe(
      "invalid expression: expected ')' or ',' in the arguments of log, found the end of the " +
        'expression (column 15)\n  log(amount + 1\n                ^',
    );
    expect(error.details).toEqual({ expression: 'log(amount + 1', offset: 14 });
  });

  it('underlines a whole token', () => {
    expect(errorOf('a + * b').message).toBe(
      "invalid expression: expected a value, found '*' (column 5)\n  a + * b\n      ^",
    );
    expect(errorOf('a = not b').message).toContain('(column 5)\n  a = not b\n      ^^^');
  });

  it('lists the known functions for an unknown one, with a guess', () => {
    const error = errorOf('lgo(x) + 1');
    expect(error.message).toContain("unknown function 'lgo'; did you mean 'log'?");
    expect(error.message).toContain(`Known functions: ${FUNCTIONS.join(', ')}`);
    expect(error.message).toContain('\n  lgo(x) + 1\n  ^^^');
    expect(errorOf('frobnicate(x)').message).not.toContain('did you mean');
    expect(errorOf('f(x)').message).not.toContain('did you mean');
    expect(errorOf('startswith(s, t)').message).toContain("did you mean 'starts_with'?");
  });

  it('states the expected arity', () => {
    expect(errorOf('round(1, 2, 3)').message).toContain(
      'round takes 1 or 2 arguments, got 3: round(x, digits?)',
    );
    expect(errorOf('log()').message).toContain('log takes 1 argument, got 0: log(x)');
    expect(errorOf('coalesce()').message).toContain('coalesce takes at least 1 argument, got 0');
    expect(errorOf('bucket(x)').message).toContain('bucket takes at least 2 arguments, got 1');
    expect(errorOf('clip(x, 1)').message).toContain('clip takes 3 arguments, got 2');
  });

  it.each([
    ['', 'expected an expression, found nothing (column 1)'],
    ['1 +', 'expected a value, found the end of the expression (column 4)'],
    ["'abc", "unterminated string: expected a closing ' (column 1)"],
    ['`abc', 'unterminated quoted column name: expected a closing ` (column 1)'],
    ['``', 'empty column name (column 1)'],
    ['1 < 2 < 3', 'comparisons do not chain; join them with and (a < b and b < c)'],
    ['a = b is null', 'comparisons do not chain'],
    ['"x" = 1', "unexpected character '\"'; strings use single quotes ('text')"],
    ['a # b', "unexpected character '#' (column 3)"],
    ['a b', "expected the end of the expression, found 'b'; is an operator missing? (column 3)"],
    ['1 (b)', 'is a function name or an operator missing before it?'],
    ['x in ()', "expected at least one value in the list after 'in' (column 7)"],
    ['x in 1', "expected '(' to open the list after 'in', found number 1"],
    ['x in (1, 2', "expected ')' or ',' in the list after 'in'"],
    ['x is 5', "expected 'null' after 'is', found number 5"],
    ['x is not true', "expected 'null' after 'is not', found 'true'"],
    ['(a + b', "expected ')' to close the '(' at column 1, found the end of the expression"],
    ['a)', "expected the end of the expression, found ')'"],
    ['12abc', "unexpected 'a' after a number (column 3)"],
    ['1e+', 'expected digits after the exponent of a number (column 2)'],
    ['1e999', 'number 1e999 is too large'],
    ['9007199254740993', 'integer 9007199254740993 is beyond ±2^53'],
    ['and', "expected a value, found 'and'; a column named 'and' needs backquotes: `and`"],
    ['f(x', "unknown function 'f'"],
  ])('%j: %s', (source, message) => {
    const error = errorOf(source);
    expect(error.code).toBe('FERRY_ARGUMENT_INVALID');
    expect(error.message).toContain(message);
  });

  it('gives the line and column in a multi-line expression and quotes that line', () => {
    const error = errorOf('amount > 0\n  and * 2');
    expect(error.message).toBe(
      "invalid expression: expected a value, found '*' (line 2, column 7)\n    and * 2\n        ^",
    );
  });

  it('keeps tabs in the caret line so the caret lines up', () => {
    expect(errorOf('\ta +').message).toContain('\n  \ta +\n  \t   ^');
  });
});
