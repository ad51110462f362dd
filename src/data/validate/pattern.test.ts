import { describe, expect, it } from 'vitest';
import { quoteString, withDuckDB } from '../duckdb.js';
import { compilePattern } from './pattern.js';

/** DuckDB's verdict on each input, in order. */
async function duckdbMatches(pattern: string, inputs: readonly string[]): Promise<boolean[]> {
  return withDuckDB(async (con) => {
    const values = inputs.map((s, i) => `(${i}, ${quoteString(s)})`).join(', ');
    const reader = await con.runAndReadAll(
      `SELECT regexp_full_match(s, ${quoteString(pattern)}) FROM (VALUES ${values}) t(i, s) ORDER BY i`,
    );
    return reader.getRows().map((r) => r[0] === true);
  });
}

const CASES: readonly [string, readonly string[]][] = [
  // Whole-value match, not a search.
  ['a|ab', ['a', 'ab', 'abc', 'xab']],
  ['[A-Z]{2}\\d+', ['FR123', 'FR', 'fr123', 'FR123x', ' FR1']],
  // `.` takes \r (RE2) but not \n; one code point, even outside the BMP.
  ['a.b', ['a\rb', 'a\nb', 'a\u2028b', 'a😀b', 'ab']],
  ['.', ['😀', 'é', '\n']],
  // \s is RE2's [\t\n\f\r ]: no \v, no Unicode spaces.
  ['a\\sb', ['a b', 'a\tb', 'a\vb', 'a\u00a0b', 'a\u2003b']],
  ['a\\Sb', ['a b', 'axb', 'a\vb']],
  ['[\\sx]+', [' x\t', 'x\v']],
  // ASCII classes in both.
  ['\\d+', ['123', '٣', '１']],
  ['\\w+', ['abc_1', 'é', 'ß']],
  ['\\bab\\b', ['ab']],
  ['[^a]', ['b', 'a', '😀', '\n']],
  // Punctuation escapes, hex escapes, general categories.
  ['x\\-y\\.z\\@', ['x-y.z@', 'x-yaz@']],
  ['[a\\-z]+', ['a-z', 'b']],
  ['\\x41+', ['AAA', 'a']],
  ['\\p{Lu}\\p{Ll}+', ['Émile', 'émile', 'E']],
  ['(?:ab){2,3}', ['ab', 'abab', 'ababab', 'abababab']],
  ['[^\\n]*', ['', 'x\ry']],
  ['\\$\\d+(?:\\.\\d{2})?', ['$10', '$10.50', '$10.5']],
];

describe('compilePattern', () => {
  it.each(CASES)('/%s/ matches exactly what DuckDB matches', async (pattern, inputs) => {
    const { regex } = compilePattern(pattern);
    const js = inputs.map((s) => regex.test(s));
    expect(js).toEqual(await duckdbMatches(pattern, inputs));
  });

  it('anchors the whole value', () => {
    const { regex } = compilePattern('\\d{3}');
    expect(regex.test('123')).toBe(true);
    expect(regex.test('1234')).toBe(false);
    expect(regex.test('x123')).toBe(false);
    expect(regex.test('123\n')).toBe(false);
  });

  it.each([
    ['(?=a)a', 'lookaround'],
    ['(?<!a)b', 'lookaround'],
    ['(a)\\1', 'back-reference'],
    ['(?<name>a)', 'named group'],
    ['(?i)abc', 'inline flag'],
    ['[[:alpha:]]+', 'POSIX class'],
    ['[\\S]', '\\S inside a class'],
    ['a{1001}', 'RE2 repetition limit'],
    ['\\Aabc', 'RE2-only anchor'],
    ['\\x{41}', 'RE2-only hex'],
    ['\\u0041', 'JS-only escape'],
    ['\\p{Script=Greek}', 'JS-only property'],
    ['[]a]', 'leading ]'],
    ['a{,3}', 'open repetition'],
    ['(', 'syntax error'],
  ])('refuses /%s/ (%s)', (pattern) => {
    expect(() => compilePattern(pattern)).toThrow(
      expect.objectContaining({ code: 'FERRY_CONFIG_INVALID' }),
    );
  });
});
