/**
 * The TypeScript side of the expression functions whose DuckDB behaviour is not what JavaScript
 * does by default: string order by code point, DuckDB's case mapping and trimming, substring by
 * code point with DuckDB's offset rules, rounding half away from zero, number ↔ text
 * conversions, and calendar fields of UTC milliseconds. Each one is pinned against DuckDB by
 * `parity.test.ts`; none allocates beyond its result.
 */

/**
 * Compares strings by Unicode code point, as DuckDB compares UTF-8 bytes. JavaScript's `<`
 * compares UTF-16 units, which orders U+E000–U+FFFF after the astral planes.
 * @example compareStrings('\u{1F600}', '\uFB00') > 0 // true, though '\u{1F600}' < '\uFB00'
 */
export function compareStrings(a: string, b: string): number {
  const n = a.length < b.length ? a.length : b.length;
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return codePointRank(x) - codePointRank(y);
  }
  return a.length - b.length;
}

/** Moves surrogates (astral code points) above U+E000–U+FFFF, keeping the rest in place. */
function codePointRank(unit: number): number {
  if (unit < 0xd800) return unit;
  return unit >= 0xe000 ? unit - 0x800 : unit + 0x2000;
}

/** Number of code points (DuckDB's `length`), not UTF-16 units. */
export function codePointLength(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const unit = s.charCodeAt(i);
    // Count each surrogate pair once.
    if (unit >= 0xdc00 && unit <= 0xdfff && i > 0) {
      const previous = s.charCodeAt(i - 1);
      if (previous >= 0xd800 && previous <= 0xdbff) n--;
    }
  }
  return n;
}

/**
 * Where DuckDB 1.5's case mapping (utf8proc, simple one-to-one mappings) differs from taking
 * JavaScript's mapping of one code point when that is one code point: `[first, last, delta]`,
 * delta 0 meaning "left as it is" (letters newer than DuckDB's Unicode tables). Found by
 * comparing every code point; `parity.test.ts` repeats the comparison.
 */
const UPPER_EXCEPTIONS: readonly (readonly [number, number, number])[] = [
  [0xdf, 0xdf, 0x1e9e - 0xdf], // ß → ẞ
  [0x19b, 0x19b, 0],
  [0x264, 0x264, 0],
  [0x1c8a, 0x1c8a, 0],
  [0x1f80, 0x1f87, 8], // Greek with ypogegrammeni: to the titlecase letter, not two letters
  [0x1f90, 0x1f97, 8],
  [0x1fa0, 0x1fa7, 8],
  [0x1fb3, 0x1fb3, 9],
  [0x1fc3, 0x1fc3, 9],
  [0x1ff3, 0x1ff3, 9],
  [0xa7cd, 0xa7cd, 0],
  [0xa7cf, 0xa7cf, 0],
  [0xa7d3, 0xa7d3, 0],
  [0xa7d5, 0xa7d5, 0],
  [0xa7db, 0xa7db, 0],
  [0x10d70, 0x10d85, 0],
  [0x16ebb, 0x16ed3, 0],
];

const LOWER_EXCEPTIONS: readonly (readonly [number, number, number])[] = [
  [0x130, 0x130, 0x69 - 0x130], // İ → i
  [0x1c89, 0x1c89, 0],
  [0xa7cb, 0xa7cc, 0],
  [0xa7ce, 0xa7ce, 0],
  [0xa7d2, 0xa7d2, 0],
  [0xa7d4, 0xa7d4, 0],
  [0xa7da, 0xa7da, 0],
  [0xa7dc, 0xa7dc, 0],
  [0x10d50, 0x10d65, 0],
  [0x16ea0, 0x16eb8, 0],
];

interface CaseMapping {
  readonly exceptions: ReadonlyMap<number, string>;
  readonly cache: Map<string, string>;
  readonly map: (s: string) => string;
}

function caseMapping(
  ranges: readonly (readonly [number, number, number])[],
  map: (s: string) => string,
): CaseMapping {
  const exceptions = new Map<number, string>();
  for (const [first, last, delta] of ranges) {
    for (let cp = first; cp <= last; cp++) exceptions.set(cp, String.fromCodePoint(cp + delta));
  }
  return { exceptions, cache: new Map(), map };
}

const UPPER = caseMapping(UPPER_EXCEPTIONS, (s) => s.toUpperCase());
const LOWER = caseMapping(LOWER_EXCEPTIONS, (s) => s.toLowerCase());
const NON_ASCII = /[^\x20-\x7e]/;

function mapCodePoint(ch: string, mapping: CaseMapping): string {
  let mapped = mapping.cache.get(ch);
  if (mapped === undefined) {
    mapped = mapping.exceptions.get(ch.codePointAt(0) as number);
    if (mapped === undefined) {
      // DuckDB maps one code point to one code point: full mappings that expand (ß → SS) and
      // context rules (final sigma) do not apply, so a multi-code-point result keeps the letter.
      const full = mapping.map(ch);
      const single =
        full.length === 1 || (full.length === 2 && (full.codePointAt(0) as number) > 0xffff);
      mapped = single ? full : ch;
    }
    mapping.cache.set(ch, mapped);
  }
  return mapped;
}

function mapCase(s: string, mapping: CaseMapping): string {
  // Printable ASCII maps the same everywhere; JavaScript's own mapping is then the fast path.
  if (!NON_ASCII.test(s)) return mapping.map(s);
  let out = '';
  for (const ch of s) out += mapCodePoint(ch, mapping);
  return out;
}

/** DuckDB's `upper`: one-to-one per code point (`upper('ß')` is 'ẞ'). */
export function upperCase(s: string): string {
  return mapCase(s, UPPER);
}

/** DuckDB's `lower`: one-to-one per code point (`lower('ΑΣ')` is 'ασ', no final sigma). */
export function lowerCase(s: string): string {
  return mapCase(s, LOWER);
}

/**
 * DuckDB's `trim`: strips space separators (Unicode category Zs: U+0020, U+00A0, U+2000–U+200A,
 * ...) from both ends, but not tabs or line breaks (JavaScript's `trim` strips those too).
 */
export function trimSpaces(s: string): string {
  let start = 0;
  let end = s.length;
  while (start < end && isSpaceSeparator(s.charCodeAt(start))) start++;
  while (end > start && isSpaceSeparator(s.charCodeAt(end - 1))) end--;
  return start === 0 && end === s.length ? s : s.slice(start, end);
}

function isSpaceSeparator(unit: number): boolean {
  return (
    unit === 0x20 ||
    unit === 0xa0 ||
    unit === 0x1680 ||
    (unit >= 0x2000 && unit <= 0x200a) ||
    unit === 0x202f ||
    unit === 0x205f ||
    unit === 0x3000
  );
}

const SURROGATE = /[\uD800-\uDFFF]/;

/**
 * DuckDB's `substring(s, start, length)` on code points. `start` is 1-based; a negative start
 * counts from the end (-1 is the last character); 0 is one before the first. A negative length
 * takes the characters before `start` instead of from it. The window is cut to the string.
 * @example substring('abcde', -3, 2) // 'cd'
 */
export function substring(s: string, start: number, length: number | null): string {
  const astral = SURROGATE.test(s);
  const chars = astral ? Array.from(s) : null;
  const n = chars === null ? s.length : chars.length;
  // Without a length the window runs to the end of the string.
  const span = length ?? Infinity;
  const from = start >= 0 ? start - 1 : n + start;
  let lo = span >= 0 ? from : from + span;
  let hi = span >= 0 ? from + span : from;
  if (lo < 0) lo = 0;
  if (hi > n) hi = n;
  if (lo >= hi) return '';
  return chars === null ? s.slice(lo, hi) : chars.slice(lo, hi).join('');
}

/** `replace` with a literal pattern (no `$&` specials); an empty pattern changes nothing. */
export function replaceAll(s: string, from: string, to: string): string {
  return from === '' ? s : s.split(from).join(to);
}

/** C's `round`: halves go away from zero (JavaScript's `Math.round` sends -2.5 to -2). */
export function roundHalfAway(x: number): number {
  return x < 0 ? -Math.round(-x) : Math.round(x);
}

/** Powers of ten parsed from text, so they are the correctly rounded values C's `pow` gives. */
function powerOfTen(exponent: number): number {
  return Number(`1e${exponent}`);
}

/**
 * DuckDB's `round(x, digits)` on doubles, step by step: scale by a power of ten, round half away
 * from zero, scale back; a non-finite intermediate keeps x (or gives 0 for negative digits).
 * @example roundDigits(2.555, 2) // 2.56
 */
export function roundDigits(x: number, digits: number): number {
  if (digits < 0) {
    const modifier = powerOfTen(-digits);
    const rounded = roundHalfAway(x / modifier) * modifier;
    return Number.isFinite(rounded) ? rounded : 0;
  }
  const modifier = powerOfTen(digits);
  const rounded = roundHalfAway(x * modifier) / modifier;
  return Number.isFinite(rounded) ? rounded : x;
}

/** A decimal number with optional sign, fraction and exponent, between ASCII blanks. */
export const NUMBER_TEXT =
  /^[ \t\n\r\f\v]*([+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?)[ \t\n\r\f\v]*$/;

/**
 * `to_number` of a string: the number it spells, or null. Only plain decimal notation is read
 * (`' 1.5e3 '`, `'-.5'`); hex, digit separators, `inf` and `nan` are null.
 */
export function parseNumber(s: string): number | null {
  return NUMBER_TEXT.test(s) ? Number(s) : null;
}

/**
 * A double as DuckDB writes it: shortest round-trip digits, fixed notation with at least one
 * decimal for 1e-4 ≤ |x| < 1e16, scientific (`1e+16`, `1.5e-05`) otherwise.
 * @example formatDouble(1) // '1.0'
 */
export function formatDouble(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (x === Infinity) return 'inf';
  if (x === -Infinity) return '-inf';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const scientific = x.toExponential();
  const e = scientific.indexOf('e');
  const exponent = Number(scientific.slice(e + 1));
  const sign = x < 0 ? '-' : '';
  const digits = scientific.slice(sign.length, e).replace('.', '');
  if (exponent >= -4 && exponent < 16) {
    if (exponent < 0) return `${sign}0.${'0'.repeat(-exponent - 1)}${digits}`;
    const whole = digits.slice(0, exponent + 1).padEnd(exponent + 1, '0');
    const fraction = digits.slice(exponent + 1);
    return `${sign}${whole}.${fraction === '' ? '0' : fraction}`;
  }
  const mantissa = digits.length === 1 ? digits : `${digits[0]}.${digits.slice(1)}`;
  const magnitude = String(Math.abs(exponent)).padStart(2, '0');
  return `${sign}${mantissa}e${exponent < 0 ? '-' : '+'}${magnitude}`;
}

const DAY_MS = 86_400_000;

function daysOf(ms: number): number {
  return Math.floor(ms / DAY_MS);
}

/**
 * The proleptic Gregorian date of a day number (days since 1970-01-01), packed as
 * year * 10000 + month * 100 + day so that no object is allocated per call. Years are
 * astronomical (0 is 1 BC), as DuckDB's `year` gives them. (Howard Hinnant's civil_from_days.)
 */
function civil(days: number): number {
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const doe = z - era * 146_097;
  const yoe = Math.floor(
    (doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365,
  );
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  const year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  return year * 10_000 + (year < 0 ? -1 : 1) * (month * 100 + day);
}

function civilYear(packed: number): number {
  return Math.trunc(packed / 10_000);
}

function civilMonth(packed: number): number {
  return Math.trunc(Math.abs(packed) / 100) % 100;
}

function civilDay(packed: number): number {
  return Math.abs(packed) % 100;
}

export function yearOf(ms: number): number {
  return civilYear(civil(daysOf(ms)));
}

export function monthOf(ms: number): number {
  return civilMonth(civil(daysOf(ms)));
}

export function dayOf(ms: number): number {
  return civilDay(civil(daysOf(ms)));
}

export function hourOf(ms: number): number {
  return Math.floor((ms - daysOf(ms) * DAY_MS) / 3_600_000);
}

export function minuteOf(ms: number): number {
  return Math.floor((ms - daysOf(ms) * DAY_MS) / 60_000) % 60;
}

/** 0 = Sunday … 6 = Saturday, as DuckDB's `dayofweek`; 1970-01-01 was a Thursday. */
export function dayOfWeekOf(ms: number): number {
  return (((daysOf(ms) + 4) % 7) + 7) % 7;
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

/**
 * A timestamp as DuckDB casts it to text: `2024-01-31 23:59:59.5`, fraction only when non-zero,
 * years before 1 written as `0002-01-01 (BC)`.
 */
export function formatTimestamp(ms: number): string {
  const days = daysOf(ms);
  const packed = civil(days);
  const year = civilYear(packed);
  const date = `${pad(year > 0 ? year : 1 - year, 4)}-${pad(civilMonth(packed), 2)}-${pad(civilDay(packed), 2)}`;
  const inDay = ms - days * DAY_MS;
  const seconds = Math.floor(inDay / 1000);
  const millis = inDay - seconds * 1000;
  const time = `${pad(Math.floor(seconds / 3600), 2)}:${pad(Math.floor(seconds / 60) % 60, 2)}:${pad(seconds % 60, 2)}`;
  const fraction = millis === 0 ? '' : `.${pad(millis, 3).replace(/0+$/, '')}`;
  return `${date}${year > 0 ? '' : ' (BC)'} ${time}${fraction}`;
}
