/**
 * The parser of Ferry's expression language: a hand-written tokenizer and a precedence-climbing
 * parser producing the tree of `ast.ts`. Errors quote the expression with a caret under the
 * offending column and say what was expected there.
 *
 * Precedence, loosest first: `or`; `and`; `not`; comparisons (`= == != <> < <= > >=`, `in`,
 * `is null`, which do not chain); `+ -`; `* / %`; unary `-`. Keywords and function names are
 * case-insensitive; column names are not.
 */
import { FerryError } from '../../errors/index.js';
import { KEYWORDS, type BinaryOperator, type ComparisonOperator, type Expr } from './ast.js';
import { arityText, FUNCTION_TABLE, FUNCTIONS } from './functions.js';

type TokenKind = 'number' | 'string' | 'identifier' | 'quoted' | 'keyword' | 'symbol' | 'end';

interface Token {
  readonly kind: TokenKind;
  /** The text as written; for keywords, lower case. */
  readonly text: string;
  readonly start: number;
  readonly end: number;
  /** Unquoted content of string literals and backquoted names. */
  readonly value?: string;
}

const SYMBOLS = [
  '==',
  '!=',
  '<>',
  '<=',
  '>=',
  '+',
  '-',
  '*',
  '/',
  '%',
  '=',
  '<',
  '>',
  '(',
  ')',
  ',',
];

const COMPARISONS: Readonly<Record<string, ComparisonOperator>> = {
  '=': '=',
  '==': '=',
  '!=': '!=',
  '<>': '!=',
  '<': '<',
  '<=': '<=',
  '>': '>',
  '>=': '>=',
};

/**
 * The expression quoted on its own line with carets under [start, end), for error messages;
 * for a multi-line expression, the line holding `start`.
 * @example pointAt('a +', 3) // '  a +\n     ^'
 */
export function pointAt(source: string, start: number, end = start + 1): string {
  const lineStart = source.lastIndexOf('\n', start - 1) + 1;
  const newline = source.indexOf('\n', start);
  const lineEnd = newline === -1 ? source.length : newline;
  const line = source.slice(lineStart, lineEnd);
  // Tabs stay tabs in the padding so the caret lines up however they are displayed.
  const padding = line.slice(0, start - lineStart).replace(/[^\t]/g, ' ');
  const width = Math.max(1, Math.min(end, lineEnd) - start);
  return `  ${line}\n  ${padding}${'^'.repeat(width)}`;
}

/** Column (1-based) of an offset, with the line when the source has several. */
export function positionOf(source: string, offset: number): string {
  const before = source.slice(0, offset);
  const line = before.split('\n').length;
  const column = offset - (before.lastIndexOf('\n') + 1) + 1;
  return line === 1 ? `column ${column}` : `line ${line}, column ${column}`;
}

function syntaxError(source: string, start: number, message: string, end?: number): FerryError {
  return new FerryError(
    'FERRY_ARGUMENT_INVALID',
    `invalid expression: ${message} (${positionOf(source, start)})\n${pointAt(source, start, end)}`,
    { details: { expression: source, offset: start } },
  );
}

function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < source.length) {
    const c = source[i] as string;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      i++;
      continue;
    }
    const start = i;
    if (isDigit(c) || (c === '.' && isDigit(source[i + 1]))) {
      while (isDigit(source[i])) i++;
      if (source[i] === '.') {
        i++;
        while (isDigit(source[i])) i++;
      }
      if (source[i] === 'e' || source[i] === 'E') {
        let j = i + 1;
        if (source[j] === '+' || source[j] === '-') j++;
        if (!isDigit(source[j])) {
          throw syntaxError(source, i, 'expected digits after the exponent of a number');
        }
        i = j;
        while (isDigit(source[i])) i++;
      }
      if (isIdentifierChar(source[i])) {
        throw syntaxError(source, i, `unexpected '${source[i]}' after a number`);
      }
      tokens.push({ kind: 'number', text: source.slice(start, i), start, end: i });
    } else if (c === "'" || c === '`') {
      // 'it''s' and `a ``quoted`` name`: the delimiter doubled stands for itself.
      let value = '';
      i++;
      for (;;) {
        const next = source.indexOf(c, i);
        if (next === -1) {
          const what = c === "'" ? 'string' : 'quoted column name';
          throw syntaxError(source, start, `unterminated ${what}: expected a closing ${c}`);
        }
        value += source.slice(i, next);
        i = next + 1;
        if (source[i] !== c) break;
        value += c;
        i++;
      }
      if (c === '`' && value === '') throw syntaxError(source, start, 'empty column name', i);
      tokens.push({
        kind: c === "'" ? 'string' : 'quoted',
        text: source.slice(start, i),
        start,
        end: i,
        value,
      });
    } else if (isIdentifierStart(c)) {
      while (isIdentifierChar(source[i])) i++;
      const text = source.slice(start, i);
      const lower = text.toLowerCase();
      tokens.push(
        KEYWORDS.has(lower)
          ? { kind: 'keyword', text: lower, start, end: i }
          : { kind: 'identifier', text, start, end: i },
      );
    } else {
      const symbol = SYMBOLS.find((s) => source.startsWith(s, i));
      if (symbol === undefined) {
        const hint =
          c === '"'
            ? "; strings use single quotes ('text') and odd column names backquotes (`my col`)"
            : '';
        throw syntaxError(source, i, `unexpected character '${c}'${hint}`);
      }
      i += symbol.length;
      tokens.push({ kind: 'symbol', text: symbol, start, end: i });
    }
  }
  tokens.push({ kind: 'end', text: '', start: source.length, end: source.length });
  return tokens;
}

function isDigit(c: string | undefined): boolean {
  return c !== undefined && c >= '0' && c <= '9';
}

function isIdentifierStart(c: string): boolean {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c === '_';
}

function isIdentifierChar(c: string | undefined): boolean {
  return c !== undefined && (isIdentifierStart(c) || isDigit(c));
}

function describe(token: Token): string {
  switch (token.kind) {
    case 'end':
      return 'the end of the expression';
    case 'number':
      return `number ${token.text}`;
    case 'string':
      return `string ${token.text}`;
    default:
      return `'${token.text}'`;
  }
}

/** Closest known function name, for "did you mean"; none when nothing is close. */
function closestFunction(name: string): string | undefined {
  const allowed = name.length < 3 ? 0 : name.length < 6 ? 1 : 2;
  let best: string | undefined;
  let bestDistance = allowed + 1;
  for (const candidate of FUNCTIONS) {
    const d = editDistance(name, candidate);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

/**
 * Edits (insert, delete, substitute, swap two neighbours) between two names: for suggestions.
 * @example editDistance('lgo', 'log') // 1
 */
export function editDistance(a: string, b: string): number {
  // Rows i-2, i-1 and i of the optimal-string-alignment table.
  let before: number[] = [];
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(
        (previous[j] as number) + 1,
        (current[j - 1] as number) + 1,
        (previous[j - 1] as number) + cost,
      );
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d = Math.min(d, (before[j - 2] as number) + 1);
      }
      current[j] = d;
    }
    before = previous;
    previous = current;
  }
  return previous[b.length] as number;
}

class Parser {
  private index = 0;

  constructor(
    private readonly source: string,
    private readonly tokens: readonly Token[],
  ) {}

  parse(): Expr {
    if (this.peek().kind === 'end') {
      throw syntaxError(this.source, 0, 'expected an expression, found nothing');
    }
    const expr = this.or();
    const rest = this.peek();
    if (rest.kind !== 'end') {
      const hint =
        rest.text === '('
          ? '; is a function name or an operator missing before it?'
          : '; is an operator missing?';
      throw this.error(rest, `expected the end of the expression, found ${describe(rest)}${hint}`);
    }
    return expr;
  }

  private peek(offset = 0): Token {
    return (this.tokens[this.index + offset] ?? this.tokens[this.tokens.length - 1]) as Token;
  }

  private next(): Token {
    const token = this.peek();
    if (token.kind !== 'end') this.index++;
    return token;
  }

  private isKeyword(word: string, offset = 0): boolean {
    const token = this.peek(offset);
    return token.kind === 'keyword' && token.text === word;
  }

  private isSymbol(symbol: string): boolean {
    const token = this.peek();
    return token.kind === 'symbol' && token.text === symbol;
  }

  private error(token: Token, message: string): FerryError {
    return syntaxError(this.source, token.start, message, token.end);
  }

  private expectSymbol(symbol: string, context: string): Token {
    const token = this.peek();
    if (token.kind !== 'symbol' || token.text !== symbol) {
      throw this.error(token, `expected '${symbol}' ${context}, found ${describe(token)}`);
    }
    return this.next();
  }

  private or(): Expr {
    let left = this.and();
    while (this.isKeyword('or')) {
      this.next();
      const right = this.and();
      left = { kind: 'binary', op: 'or', left, right, start: left.start, end: right.end };
    }
    return left;
  }

  private and(): Expr {
    let left = this.not();
    while (this.isKeyword('and')) {
      this.next();
      const right = this.not();
      left = { kind: 'binary', op: 'and', left, right, start: left.start, end: right.end };
    }
    return left;
  }

  private not(): Expr {
    if (!this.isKeyword('not')) return this.comparison();
    const token = this.next();
    const operand = this.not();
    return { kind: 'unary', op: 'not', operand, start: token.start, end: operand.end };
  }

  private comparison(): Expr {
    const left = this.additive();
    const expr = this.comparisonTail(left);
    if (expr !== left && this.startsComparison()) {
      throw this.error(
        this.peek(),
        `comparisons do not chain; join them with and (a < b and b < c), found ${describe(this.peek())}`,
      );
    }
    return expr;
  }

  private startsComparison(): boolean {
    const token = this.peek();
    if (token.kind === 'symbol') return token.text in COMPARISONS;
    return (
      this.isKeyword('in') ||
      this.isKeyword('is') ||
      (this.isKeyword('not') && this.isKeyword('in', 1))
    );
  }

  private comparisonTail(left: Expr): Expr {
    const token = this.peek();
    if (token.kind === 'symbol' && token.text in COMPARISONS) {
      this.next();
      const right = this.additive();
      const op = COMPARISONS[token.text] as BinaryOperator;
      return { kind: 'binary', op, left, right, start: left.start, end: right.end };
    }
    if (this.isKeyword('is')) {
      this.next();
      const negated = this.isKeyword('not');
      if (negated) this.next();
      const last = this.peek();
      if (!this.isKeyword('null')) {
        throw this.error(
          last,
          `expected 'null' after '${negated ? 'is not' : 'is'}', found ${describe(last)}`,
        );
      }
      this.next();
      return { kind: 'is_null', operand: left, negated, start: left.start, end: last.end };
    }
    const negated = this.isKeyword('not') && this.isKeyword('in', 1);
    if (negated) this.next();
    if (this.isKeyword('in')) {
      this.next();
      this.expectSymbol('(', "to open the list after 'in'");
      if (this.isSymbol(')')) {
        throw this.error(this.peek(), "expected at least one value in the list after 'in'");
      }
      const values = [this.or()];
      while (this.isSymbol(',')) {
        this.next();
        values.push(this.or());
      }
      const close = this.expectSymbol(')', "or ',' in the list after 'in'");
      return { kind: 'in', operand: left, values, negated, start: left.start, end: close.end };
    }
    return left;
  }

  private additive(): Expr {
    let left = this.multiplicative();
    while (this.isSymbol('+') || this.isSymbol('-')) {
      const op = this.next().text as '+' | '-';
      const right = this.multiplicative();
      left = { kind: 'binary', op, left, right, start: left.start, end: right.end };
    }
    return left;
  }

  private multiplicative(): Expr {
    let left = this.unary();
    while (this.isSymbol('*') || this.isSymbol('/') || this.isSymbol('%')) {
      const op = this.next().text as '*' | '/' | '%';
      const right = this.unary();
      left = { kind: 'binary', op, left, right, start: left.start, end: right.end };
    }
    return left;
  }

  private unary(): Expr {
    if (!this.isSymbol('-')) return this.primary();
    const token = this.next();
    const operand = this.unary();
    return { kind: 'unary', op: '-', operand, start: token.start, end: operand.end };
  }

  private primary(): Expr {
    const token = this.next();
    const { start, end } = token;
    switch (token.kind) {
      case 'number': {
        const value = Number(token.text);
        const integer = /^[0-9]+$/.test(token.text);
        if (!Number.isFinite(value)) throw this.error(token, `number ${token.text} is too large`);
        if (integer && !Number.isSafeInteger(value)) {
          throw this.error(
            token,
            `integer ${token.text} is beyond ±2^53, where numbers lose digits; write it as a float (${token.text}.0)`,
          );
        }
        return { kind: 'number', value, integer, start, end };
      }
      case 'string':
        return { kind: 'string', value: token.value ?? '', start, end };
      case 'quoted':
        return { kind: 'column', name: token.value ?? '', start, end };
      case 'identifier':
        return this.isSymbol('(')
          ? this.call(token)
          : { kind: 'column', name: token.text, start, end };
      case 'keyword':
        if (token.text === 'true' || token.text === 'false') {
          return { kind: 'boolean', value: token.text === 'true', start, end };
        }
        if (token.text === 'null') return { kind: 'null', start, end };
        if (token.text === 'not') {
          throw this.error(
            token,
            "expected a value, found 'not'; put the negated part in parentheses: a = (not b)",
          );
        }
        throw this.error(
          token,
          `expected a value, found '${token.text}'; a column named '${token.text}' needs backquotes: \`${token.text}\``,
        );
      case 'symbol':
        if (token.text === '(') {
          const inner = this.or();
          const close = this.expectSymbol(
            ')',
            `to close the '(' at ${positionOf(this.source, start)}`,
          );
          // The parentheses are kept in the span, so an error about the group underlines them.
          return { ...inner, start, end: close.end };
        }
        throw this.error(token, `expected a value, found ${describe(token)}`);
      case 'end':
        throw this.error(token, 'expected a value, found the end of the expression');
    }
  }

  private call(nameToken: Token): Expr {
    const name = nameToken.text.toLowerCase();
    const spec = FUNCTION_TABLE.get(name);
    if (spec === undefined) {
      const guess = closestFunction(name);
      throw this.error(
        nameToken,
        `unknown function '${nameToken.text}'${guess === undefined ? '' : `; did you mean '${guess}'?`}` +
          ` Known functions: ${FUNCTIONS.join(', ')}`,
      );
    }
    this.expectSymbol('(', `after ${name}`);
    const args: Expr[] = [];
    if (!this.isSymbol(')')) {
      args.push(this.or());
      while (this.isSymbol(',')) {
        this.next();
        args.push(this.or());
      }
    }
    const close = this.expectSymbol(')', `or ',' in the arguments of ${name}`);
    if (args.length < spec.minArgs || args.length > spec.maxArgs) {
      throw syntaxError(
        this.source,
        nameToken.start,
        `${name} takes ${arityText(spec)}, got ${args.length}: ${spec.signature}`,
        close.end,
      );
    }
    return { kind: 'call', name, args, start: nameToken.start, end: close.end };
  }
}

/**
 * Parses an expression of Ferry's language into its syntax tree; a malformed one throws
 * FERRY_ARGUMENT_INVALID with a caret under the problem.
 * @example parseExpression('log(amount + 1) > 2 and country in (\'FR\', \'DE\')')
 */
export function parseExpression(source: string): Expr {
  return new Parser(source, tokenize(source)).parse();
}
