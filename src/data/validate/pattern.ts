/**
 * The `pattern` rule's regular expressions, made to mean the same thing in DuckDB
 * (`regexp_full_match`, Google RE2) and in JavaScript (`RegExp`).
 *
 * A pattern must match the WHOLE value (`^(?:pattern)$` in JavaScript, RE2's full match in
 * DuckDB), case-sensitively, one code point at a time (JavaScript's `u` flag). The two engines
 * share most syntax; where they differ, the JavaScript side is rewritten to RE2's meaning and
 * constructs only one engine understands are rejected up front, so a pattern is either refused
 * by both paths or means the same in both:
 * - `.` matches any character but `\n` (JavaScript alone would also refuse `\r`, U+2028, U+2029);
 * - `\s` is `[\t\n\f\r ]` and `\S` its complement (JavaScript's `\s` also takes `\v` and Unicode
 *   spaces); `\S` inside `[...]` is refused, as JavaScript cannot say it there;
 * - `\d`, `\w`, `\b` are ASCII in both;
 * - refused: lookaround `(?=` `(?!` `(?<=` `(?<!`, back-references `\1` `\k<n>`, named groups and
 *   inline flags `(?...)` other than `(?:`, POSIX classes `[[:alpha:]]`, `\A` `\z` `\Q` `\x{..}`
 *   `\u` `\c` `\0`, `\p{...}` other than a general category such as `\p{L}` or `\p{Lu}`,
 *   repetition counts above 1000 (RE2's limit), and escapes of ordinary letters.
 */
import { FerryError } from '../../errors/index.js';

export interface PortablePattern {
  /** The pattern as the user wrote it: what DuckDB's `regexp_full_match` receives. */
  readonly source: string;
  /** The anchored JavaScript equivalent. */
  readonly regex: RegExp;
}

const RE2_SPACE = '\\t\\n\\f\\r ';
/** Characters JavaScript's `u` flag allows after a backslash. */
const SYNTAX = new Set('^$\\.*+?()[]{}|/');
/** RE2's largest repetition count. */
const MAX_REPEAT = 1000;

/**
 * Checks a pattern against the portable subset and builds its JavaScript twin.
 * @example compilePattern('[A-Z]{2}\\d+').regex.test('FR123') // true
 */
export function compilePattern(source: string): PortablePattern {
  const refuse = (what: string): never => {
    throw new FerryError(
      'FERRY_CONFIG_INVALID',
      `pattern /${source}/ uses ${what}, which DuckDB and JavaScript read differently; rewrite it with plain classes, groups (?:...) and quantifiers`,
    );
  };
  let out = '';
  let inClass = false;
  for (let i = 0; i < source.length; i++) {
    const c = source[i] as string;
    if (c === '\\') {
      const next = source[i + 1];
      if (next === undefined) refuse('a trailing backslash');
      i++;
      out += escapeOf(next as string, inClass, source, i, refuse);
      if (next === 'p' || next === 'P') {
        const close = source.indexOf('}', i);
        out += source.slice(i + 1, close + 1);
        i = close;
      } else if (next === 'x') {
        out += source.slice(i + 1, i + 3);
        i += 2;
      }
      continue;
    }
    if (inClass) {
      if (c === '[' && source[i + 1] === ':') refuse('a POSIX class [:name:]');
      if (c === ']') inClass = false;
      out += c;
      continue;
    }
    switch (c) {
      case '[':
        inClass = true;
        out += c;
        // A `]` right after `[` or `[^` is a literal in RE2 but closes an empty class in JavaScript.
        if (source[i + 1] === '^') {
          out += '^';
          i++;
        }
        if (source[i + 1] === ']') refuse('a leading ] inside [...]');
        break;
      case '.':
        out += '[^\\n]';
        break;
      case '(':
        if (source[i + 1] === '?') {
          if (source[i + 2] !== ':') refuse(`the group syntax (?${source[i + 2] ?? ''}`);
        }
        out += c;
        break;
      case '{': {
        const m = /^\{(\d*)(,?)(\d*)\}/.exec(source.slice(i));
        if (m === null || m[1] === '') refuse('a { that is not a repetition {n}, {n,} or {n,m}');
        const counts = [m?.[1], m?.[3]].filter((n) => n !== undefined && n !== '').map(Number);
        if (counts.some((n) => n > MAX_REPEAT)) refuse(`a repetition count above ${MAX_REPEAT}`);
        out += m?.[0] ?? '';
        i += (m?.[0].length ?? 1) - 1;
        break;
      }
      default:
        out += c;
    }
  }
  let regex: RegExp;
  try {
    regex = new RegExp(`^(?:${out})$`, 'u');
  } catch (cause) {
    throw new FerryError(
      'FERRY_CONFIG_INVALID',
      `pattern /${source}/ is not a valid regular expression: ${cause instanceof Error ? cause.message : String(cause)}`,
      { cause },
    );
  }
  return { source, regex };
}

/** The JavaScript text of the escape `\<c>` at `source[at]`, or a refusal. */
function escapeOf(
  c: string,
  inClass: boolean,
  source: string,
  at: number,
  refuse: (what: string) => never,
): string {
  if (/[1-9]/.test(c)) refuse('a back-reference');
  switch (c) {
    case 's':
      return inClass ? RE2_SPACE : `[${RE2_SPACE}]`;
    case 'S':
      return inClass ? refuse('\\S inside [...]') : `[^${RE2_SPACE}]`;
    case 'b':
    case 'B':
      return inClass ? refuse(`\\${c} inside [...]`) : `\\${c}`;
    case 'd':
    case 'D':
    case 'w':
    case 'W':
    case 'n':
    case 't':
    case 'r':
    case 'f':
    case 'v':
      return `\\${c}`;
    case 'x':
      return /^[0-9A-Fa-f]{2}$/.test(source.slice(at + 1, at + 3))
        ? '\\x'
        : refuse('\\x not followed by two hex digits');
    case 'p':
    case 'P':
      return /^\{[A-Z][a-z]?\}/.test(source.slice(at + 1))
        ? `\\${c}`
        : refuse(`\\${c} other than a general category like \\${c}{L}`);
    default:
      if (!/[!-/:-@[-`{-~]/.test(c)) refuse(`the escape \\${c}`);
      // RE2 lets any punctuation be escaped; JavaScript's `u` flag only its syntax characters
      // (and `-` inside a class), so the others are written as themselves.
      if (SYNTAX.has(c) || (inClass && c === '-')) return `\\${c}`;
      return c;
  }
}
