/**
 * Value conversions between Ferry types, written twice with one meaning: as DuckDB SQL for batch
 * work and as JavaScript for request-time rows. Both follow Ferry's own grammars (never DuckDB's
 * or JavaScript's lenient parsers), so they agree on every input; the parity test checks it.
 *
 * A conversion never fails a run: a value that does not convert becomes null and is counted as a
 * conversion failure by the step that asked for it. Text that is empty or only blanks (space,
 * tab, CR, LF) is a missing value, not a failure. The grammars agree with the `type` validation
 * rule (`src/data/validate/convert.ts`):
 * - text to `float`: `[+-]digits[.digits][e[+-]digits]` (or `.digits`) after removing the
 *   `thousands` separator and reading `decimal` as the point; finite values only, so `NaN`,
 *   `Infinity`, `0x10` and `1_000` fail;
 * - text to `int`: the same, when the value is whole and a safe integer (`3.0` and `1e3` are);
 * - text to `bool`: true/t/yes/y/1 and false/f/no/n/0, in any case;
 * - text to `timestamp`: with `format`, a strftime pattern (see {@link FORMAT_DIRECTIVES});
 *   without, whole epoch milliseconds (`-?digits`) or ISO 8601 `YYYY-MM-DD[( |T)HH:MM[:SS[.f]]
 *   [Z|±HH[:MM]]]`. Fractions beyond microseconds are truncated; the day and time must exist.
 *   Text without an offset is wall-clock time in `timezone` (UTC by default).
 * - numbers to `timestamp`: epoch in `unit` (ms by default), rounded half away from zero to the
 *   microsecond; timestamps to numbers: UTC milliseconds (to `int` only when whole);
 * - `float` to `int`: whole safe integers only; numbers to `bool`: 0 and 1 only; bool to numbers:
 *   1 and 0; `int`, `bool` and `timestamp` to text (timestamps as `YYYY-MM-DD HH:MM:SS[.ffffff]`).
 * Float to text is not offered: DuckDB and JavaScript print doubles differently.
 *
 * The SQL never relies on a CASE to keep an expression from failing: DuckDB's optimiser may
 * compute a repeated sub-expression for every row, outside the CASE that guards it. So casts of
 * text are TRY_CASTs, and guards sit inside the arguments of functions that can fail.
 */
import type { ColumnType, Scalar } from '../../core/table.js';
import { FerryError } from '../../errors/index.js';
import { quoteString } from '../duckdb.js';
import { doubleLiteral, MAX_SAFE, microsOf, msOfMicros } from './relation.js';
import { checkTimeZone, wallToUtcSeconds } from './timezone.js';

export interface ConversionOptions {
  /** strftime pattern of text timestamps. */
  readonly format?: string | undefined;
  /** IANA zone of text timestamps without an offset. */
  readonly timezone?: string | undefined;
  /** Epoch unit of numbers cast to timestamps. */
  readonly unit?: 's' | 'ms' | 'us' | undefined;
  /** Decimal mark of text numbers. */
  readonly decimal?: string | undefined;
  /** Thousands separator of text numbers. */
  readonly thousands?: string | undefined;
}

/** A conversion as SQL: a helper expression computed once per row (optional), then the value. */
export interface ConversionSql {
  /** An expression to compute into a helper column before `value` reads it (by `helperRef`). */
  readonly helper: string | null;
  /** The converted value, given the SQL of the helper column (ignored when there is none). */
  readonly value: (helperRef: string) => string;
}

const BLANKS_SQL = `' \t\n\r'`;
const EDGES = /^[ \t\n\r]+|[ \t\n\r]+$/g;
const DECIMAL_SOURCE = '[+-]?([0-9]+(\\.[0-9]*)?|\\.[0-9]+)([eE][+-]?[0-9]+)?';
const DECIMAL = new RegExp(`^(?:${DECIMAL_SOURCE})$`);
const TRUE_TEXT = ['true', 't', 'yes', 'y', '1'];
const FALSE_TEXT = ['false', 'f', 'no', 'n', '0'];
const TRUE_SET = new Set(TRUE_TEXT);
const FALSE_SET = new Set(FALSE_TEXT);
const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const MONTH_NAMES = [
  'january',
  'february',
  'march',
  'april',
  'may',
  'june',
  'july',
  'august',
  'september',
  'october',
  'november',
  'december',
];
/** ±8.64e15 ms, the range of a JavaScript Date, in microseconds. */
const MAX_MICROS = 8.64e18;
const UNIT_MICROS = { s: 1_000_000, ms: 1000, us: 1 } as const;

/** The strftime directives a `format` may use. */
export const FORMAT_DIRECTIVES: Readonly<Record<string, string>> = {
  '%Y': 'year, 4 digits',
  '%y': 'year, 2 digits (69-99 → 1900s, 00-68 → 2000s)',
  '%m': 'month, 1-2 digits',
  '%b': 'month abbreviation (Jan), any case',
  '%B': 'month name (January), any case',
  '%d': 'day, 1-2 digits',
  '%H': 'hour 0-23, 1-2 digits',
  '%I': 'hour 1-12, 1-2 digits, with %p',
  '%p': 'AM or PM, any case',
  '%M': 'minute, 1-2 digits',
  '%S': 'second, 1-2 digits',
  '%f': 'fraction of a second, 1-9 digits (kept to the microsecond)',
  '%z': 'offset Z, ±HH, ±HHMM or ±HH:MM',
  '%T': '%H:%M:%S',
  '%F': '%Y-%m-%d',
  '%%': 'a literal %',
};

/** Capture names (DuckDB compares them without case, so they spell out the part). */
type Group =
  | 'epoch'
  | 'year'
  | 'yy'
  | 'month'
  | 'mon'
  | 'day'
  | 'hour'
  | 'hour12'
  | 'ampm'
  | 'minute'
  | 'second'
  | 'frac'
  | 'zone';

const DIRECTIVE_GROUP: Readonly<Record<string, Group>> = {
  Y: 'year',
  y: 'yy',
  m: 'month',
  b: 'mon',
  B: 'mon',
  d: 'day',
  H: 'hour',
  I: 'hour12',
  p: 'ampm',
  M: 'minute',
  S: 'second',
  f: 'frac',
  z: 'zone',
};

/** A text timestamp grammar: a regular expression valid in both RE2 and JavaScript. */
interface TimeGrammar {
  readonly source: string;
  readonly groups: readonly Group[];
  readonly regex: RegExp;
}

const ISO_GRAMMAR = grammar(
  // Epochs past 30 digits are far out of range; the bound keeps SQL's arithmetic from overflowing.
  '(-?[0-9]{1,30})|([0-9]{4})-([0-9]{2})-([0-9]{2})' +
    '(?:[T ]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\\.([0-9]+))?)?(Z|[+-][0-9]{2}(?::?[0-9]{2})?)?)?',
  ['epoch', 'year', 'month', 'day', 'hour', 'minute', 'second', 'frac', 'zone'],
);

const FAST_DATE = '([1-9][0-9]{3}|0[1-9][0-9]{2}|00[1-9][0-9]|000[1-9])-[0-9]{2}-[0-9]{2}';
const FAST_CLOCK = '[T ]([01][0-9]|2[0-3]):[0-5][0-9]';
const FAST_SECONDS = ':[0-5][0-9](\\.[0-9]{1,6})?';
/** ISO date-times that DuckDB's TIMESTAMP cast reads exactly as the ISO grammar does. */
const FAST_ISO = `${FAST_DATE}(${FAST_CLOCK}(${FAST_SECONDS})?)?`;
/**
 * The same, or a date-time with seconds ending in `Z` (as `toISOString` and Ferry's writers
 * print it), which DuckDB's cast reads as UTC: usable only where text without an offset is UTC.
 */
const FAST_ISO_UTC = `${FAST_DATE}(${FAST_CLOCK}((${FAST_SECONDS})?|${FAST_SECONDS}Z))?`;

function grammar(source: string, groups: Group[]): TimeGrammar {
  return { source, groups, regex: new RegExp(`^(?:${source})$`) };
}

/** Letters matched in any case without a flag (RE2 and JavaScript differ on inline flags). */
function anyCase(word: string): string {
  return [...word].map((ch) => `[${ch.toLowerCase()}${ch.toUpperCase()}]`).join('');
}

const META = /[.*+?^${}()|[\]\\/-]/g;

function compileFormat(format: string, where: string): TimeGrammar {
  const expanded = format.replaceAll('%T', '%H:%M:%S').replaceAll('%F', '%Y-%m-%d');
  let source = '';
  const groups: Group[] = [];
  for (let i = 0; i < expanded.length; i++) {
    const ch = expanded[i] as string;
    if (ch !== '%') {
      source += ch.replace(META, (m) => `\\${m}`);
      continue;
    }
    const d = expanded[i + 1];
    i++;
    switch (d) {
      case '%':
        source += '%';
        continue;
      case 'Y':
        source += '([0-9]{4})';
        break;
      case 'y':
      case 'm':
      case 'd':
      case 'H':
      case 'I':
      case 'M':
      case 'S':
        source += d === 'y' ? '([0-9]{2})' : '([0-9]{1,2})';
        break;
      case 'b':
        source += `(${MONTHS.map(anyCase).join('|')})`;
        break;
      case 'B':
        source += `(${MONTH_NAMES.map(anyCase).join('|')})`;
        break;
      case 'p':
        source += '([AaPp][Mm])';
        break;
      case 'f':
        source += '([0-9]{1,9})';
        break;
      case 'z':
        source += '(Z|[+-][0-9]{2}(?::?[0-9]{2})?)';
        break;
      default:
        throw new FerryError(
          'FERRY_CONFIG_INVALID',
          `${where}: format '${format}' uses '%${d ?? ''}', which Ferry does not read; use ${Object.keys(FORMAT_DIRECTIVES).join(' ')}`,
        );
    }
    const group = DIRECTIVE_GROUP[d] as Group;
    if (groups.includes(group)) {
      throw new FerryError(
        'FERRY_CONFIG_INVALID',
        `${where}: format '${format}' gives '%${d}' twice; give each part of the time once`,
      );
    }
    groups.push(group);
  }
  const has = (g: Group): boolean => groups.includes(g);
  const missing: string[] = [];
  if (!has('year') && !has('yy')) missing.push('a year (%Y or %y)');
  if (!has('month') && !has('mon')) missing.push('a month (%m, %b or %B)');
  if (!has('day')) missing.push('a day (%d)');
  if (has('hour12') !== has('ampm')) missing.push('%I and %p together');
  if (has('hour') && has('hour12')) missing.push('either %H or %I, not both');
  if (missing.length > 0) {
    throw new FerryError(
      'FERRY_CONFIG_INVALID',
      `${where}: format '${format}' needs ${missing.join(', ')}`,
    );
  }
  return grammar(source, groups);
}

/**
 * Throws a coded error when a conversion is not offered or its options do not apply to it;
 * `where` names the step for the message.
 * @example checkConversion('string', 'timestamp', { format: '%d/%m/%Y' }, "recipe 'x', step 1 (cast)")
 */
export function checkConversion(
  from: ColumnType,
  to: ColumnType,
  options: ConversionOptions,
  where: string,
): void {
  const fail = (message: string): never => {
    throw new FerryError('FERRY_CONFIG_INVALID', `${where}: ${message}`);
  };
  const numeric = from === 'int' || from === 'float';
  if (from === 'float' && to === 'string') {
    fail(
      'casting float to string is not offered (DuckDB and JavaScript print doubles differently); cast to int first, or keep the number',
    );
  }
  if ((from === 'bool' && to === 'timestamp') || (from === 'timestamp' && to === 'bool')) {
    fail(`a ${from} cannot be cast to ${to}`);
  }
  const textToTime = from === 'string' && to === 'timestamp';
  const textToNumber = from === 'string' && (to === 'int' || to === 'float');
  if (options.format !== undefined && !textToTime)
    fail('`format` applies only to text cast to timestamp');
  if (options.timezone !== undefined && !textToTime)
    fail('`timezone` applies only to text cast to timestamp');
  if (options.unit !== undefined && !(numeric && to === 'timestamp'))
    fail('`unit` applies only to numbers cast to timestamp');
  if ((options.decimal !== undefined || options.thousands !== undefined) && !textToNumber)
    fail('`decimal` and `thousands` apply only to text cast to int or float');
  if (options.decimal !== undefined && options.decimal === options.thousands)
    fail('`decimal` and `thousands` must be different characters');
  if (options.timezone !== undefined) checkTimeZone(options.timezone, where);
  if (options.format !== undefined) compileFormat(options.format, where);
}

// ---------------------------------------------------------------------------------------------
// SQL

/**
 * Trimmed text, null when blank. Trimming only text that has a blank at an end is three times
 * faster in DuckDB than trimming every value.
 */
export function textSql(value: string): string {
  const blank = '(32, 9, 10, 13)';
  return (
    `NULLIF(CASE WHEN ascii(${value}) IN ${blank} OR ascii(${value}[-1]) IN ${blank} ` +
    `THEN trim(${value}, ${BLANKS_SQL}) ELSE ${value} END, '')`
  );
}

function localeTextSql(text: string, options: ConversionOptions): string {
  let t = text;
  if (options.thousands !== undefined) t = `replace(${t}, ${quoteString(options.thousands)}, '')`;
  if (options.decimal !== undefined && options.decimal !== '.')
    t = `replace(${t}, ${quoteString(options.decimal)}, '.')`;
  return t;
}

function floatFromTextSql(text: string): string {
  const d = `TRY_CAST(${text} AS DOUBLE)`;
  return `CASE WHEN regexp_full_match(${text}, '${DECIMAL_SOURCE}') AND isfinite(${d}) THEN ${d} END`;
}

function intFromFloatSql(f: string): string {
  return `TRY_CAST(CASE WHEN ${f} = trunc(${f}) AND abs(${f}) <= ${MAX_SAFE} THEN ${f} END AS BIGINT)`;
}

function numberToBoolSql(n: string): string {
  return `CASE WHEN ${n} = 0 THEN FALSE WHEN ${n} = 1 THEN TRUE END`;
}

function timestampToTextSql(ts: string): string {
  return (
    `CASE WHEN epoch_us(${ts}) % 1000000 = 0 THEN strftime(${ts}, '%Y-%m-%d %H:%M:%S') ` +
    `ELSE strftime(${ts}, '%Y-%m-%d %H:%M:%S.%f') END`
  );
}

/** SQL of the text grammar's parts (`p` is the regexp_extract struct) assembled into a TIMESTAMP. */
function assembleSql(p: string, g: TimeGrammar, zone: string | undefined): string {
  const has = (x: Group): boolean => g.groups.includes(x);
  const field = (x: Group): string => `${p}.${x}`;
  const num = (x: Group, absent = '0'): string =>
    has(x)
      ? `CASE WHEN ${field(x)} = '' THEN ${absent} ELSE TRY_CAST(${field(x)} AS BIGINT) END`
      : absent;
  const year = has('year')
    ? num('year')
    : `(CASE WHEN ${num('yy')} < 69 THEN 2000 ELSE 1900 END + ${num('yy')})`;
  const month = has('month')
    ? num('month')
    : `list_position(${sqlList(MONTHS)}, lower(left(${field('mon')}, 3)))`;
  const day = num('day');
  const hour = has('hour12')
    ? `(${num('hour12')} % 12 + CASE WHEN lower(${field('ampm')}) = 'pm' THEN 12 ELSE 0 END)`
    : num('hour');
  const minute = num('minute');
  const second = num('second');
  const frac = has('frac')
    ? `CASE WHEN ${field('frac')} = '' THEN 0 ELSE TRY_CAST(rpad(left(${field('frac')}, 6), 6, '0') AS BIGINT) END`
    : '0';
  const valid = [
    `${year} >= 1`,
    `${month} BETWEEN 1 AND 12`,
    `${day} BETWEEN 1 AND ${daysInMonthSql(year, month)}`,
    has('hour12') ? `${num('hour12')} BETWEEN 1 AND 12` : `${hour} <= 23`,
    `${minute} <= 59`,
    `${second} <= 59`,
  ].join(' AND ');
  const wall = `(${daysFromCivilSql(year, month, day)} * 86400 + ${hour} * 3600 + ${minute} * 60 + ${second})`;
  const micros = (seconds: string): string => `make_timestamp(${seconds} * 1000000 + ${frac})`;
  let time: string;
  if (has('zone')) {
    const z = field('zone');
    const offset =
      `(CASE WHEN left(${z}, 1) = '-' THEN -1 ELSE 1 END * ` +
      `(TRY_CAST(substr(${z}, 2, 2) AS BIGINT) * 3600 + CASE WHEN length(${z}) > 3 THEN TRY_CAST(right(${z}, 2) AS BIGINT) * 60 ELSE 0 END))`;
    const zoned = `CASE WHEN ${z} = 'Z' THEN ${micros(wall)} ELSE ${micros(`(${wall} - ${offset})`)} END`;
    time =
      zone === undefined
        ? `CASE WHEN ${z} = '' THEN ${micros(wall)} ELSE ${zoned} END`
        : `CASE WHEN ${z} = '' THEN ${localSql(micros(wall), zone)} ELSE ${zoned} END`;
  } else {
    time = zone === undefined ? micros(wall) : localSql(micros(wall), zone);
  }
  return `CASE WHEN ${valid} THEN ${time} END`;
}

function localSql(ts: string, zone: string): string {
  return `timezone('UTC', timezone(${quoteString(zone)}, ${ts}))`;
}

function sqlList(items: readonly string[]): string {
  return `[${items.map(quoteString).join(', ')}]`;
}

function daysInMonthSql(year: string, month: string): string {
  return (
    `CASE WHEN ${month} = 2 THEN CASE WHEN (${year} % 4 = 0 AND ${year} % 100 <> 0) OR ${year} % 400 = 0 THEN 29 ELSE 28 END ` +
    `WHEN ${month} IN (4, 6, 9, 11) THEN 30 ELSE 31 END`
  );
}

/** Days from 1970-01-01 to a civil date (year >= 1), by H. Hinnant's algorithm in integers. */
function daysFromCivilSql(year: string, month: string, day: string): string {
  const y = `(${year} - CASE WHEN ${month} <= 2 THEN 1 ELSE 0 END)`;
  const era = `(${y} // 400)`;
  const yoe = `(${y} - ${era} * 400)`;
  const mp = `((${month} + 9) % 12)`;
  const doy = `((153 * ${mp} + 2) // 5 + ${day} - 1)`;
  const doe = `(${yoe} * 365 + ${yoe} // 4 - ${yoe} // 100 + ${doy})`;
  return `(${era} * 146097 + ${doe} - 719468)`;
}

/**
 * The SQL converting `value` (an expression of Ferry type `from`, stored as {@link sqlType}) to
 * `to`. Call {@link checkConversion} first.
 * @example const c = conversionSql('"amount"', 'string', 'float', { decimal: ',' }); c.value('')
 */
export function conversionSql(
  value: string,
  from: ColumnType,
  to: ColumnType,
  options: ConversionOptions = {},
): ConversionSql {
  const plain = (sql: string): ConversionSql => ({ helper: null, value: () => sql });
  if (from === to) return plain(value);
  switch (from) {
    case 'string': {
      const text = textSql(value);
      switch (to) {
        case 'float':
          return plain(floatFromTextSql(localeTextSql(text, options)));
        case 'int':
          return plain(intFromFloatSql(floatFromTextSql(localeTextSql(text, options))));
        case 'bool':
          // list_contains, not IN: DuckDB plans an IN list of 5 or more constants as a hash
          // join, and a join gives up the scan's order (a staged copy would lose file order).
          return plain(
            `CASE WHEN list_contains([${TRUE_TEXT.map(quoteString).join(', ')}], lower(${text})) THEN TRUE ` +
              `WHEN list_contains([${FALSE_TEXT.map(quoteString).join(', ')}], lower(${text})) THEN FALSE END`,
          );
        case 'timestamp': {
          const iso = options.format === undefined;
          const g = iso ? ISO_GRAMMAR : compileFormat(options.format as string, 'cast');
          const extract = `regexp_extract(${text}, '^(?:${g.source})$', ${sqlList(g.groups)})`;
          const zone = zoneOf(options);
          // Most ISO text is a plain date-time that DuckDB's own cast reads exactly as the
          // grammar does (a real day, hours 00-23, at most microseconds); parsing only the rest
          // by parts makes typing a CSV several times faster.
          const fast = `regexp_full_match(${text}, '${zone === undefined ? FAST_ISO_UTC : FAST_ISO}')`;
          const fastValue = `TRY_CAST(${text} AS TIMESTAMP)`;
          return {
            helper: iso ? `CASE WHEN NOT ${fast} THEN ${extract} END` : extract,
            value: (p) => {
              const parsed = assembleSql(p, g, zone);
              if (!iso) return `CASE WHEN ${p}.${g.groups[0]} <> '' THEN ${parsed} END`;
              const micros = `TRY_CAST(TRY_CAST(${p}.epoch AS HUGEINT) * 1000 AS BIGINT)`;
              return (
                `CASE WHEN ${fast} THEN ${zone === undefined ? fastValue : localSql(fastValue, zone)} ` +
                `WHEN ${p}.epoch <> '' THEN make_timestamp(CASE WHEN abs(${micros}) <= ${MAX_MICROS} THEN ${micros} END) ` +
                `WHEN ${p}.year <> '' THEN ${parsed} END`
              );
            },
          };
        }
        default:
          return plain(value);
      }
    }
    case 'int':
    case 'float': {
      const n = from === 'int' ? `CAST(${value} AS DOUBLE)` : value;
      switch (to) {
        case 'float':
          return plain(n);
        case 'int':
          return plain(intFromFloatSql(value));
        case 'bool':
          return plain(numberToBoolSql(value));
        case 'timestamp': {
          const scaled = `(${n} * ${doubleLiteral(UNIT_MICROS[options.unit ?? 'ms'])})`;
          return plain(
            `make_timestamp(TRY_CAST(CASE WHEN isfinite(${scaled}) AND abs(${scaled}) <= ${doubleLiteral(MAX_MICROS)} ` +
              `THEN round(${scaled}) END AS BIGINT))`,
          );
        }
        case 'string':
          return plain(`CAST(${value} AS VARCHAR)`);
      }
      break;
    }
    case 'bool':
      switch (to) {
        case 'int':
          return plain(`CAST(${value} AS BIGINT)`);
        case 'float':
          return plain(`CAST(${value} AS DOUBLE)`);
        case 'string':
          return plain(`CASE WHEN ${value} THEN 'true' ELSE 'false' END`);
      }
      break;
    case 'timestamp': {
      const us = `epoch_us(${value})`;
      switch (to) {
        case 'float':
          return plain(`(CAST(${us} // 1000 AS DOUBLE) + CAST(${us} % 1000 AS DOUBLE) / 1000)`);
        case 'int':
          return plain(`CASE WHEN ${us} % 1000 = 0 THEN ${us} // 1000 END`);
        case 'string':
          return plain(timestampToTextSql(value));
      }
      break;
    }
  }
  throw new FerryError('FERRY_CONFIG_INVALID', `a ${from} cannot be cast to ${to}`);
}

function zoneOf(options: ConversionOptions): string | undefined {
  const zone = options.timezone;
  return zone === undefined || zone === 'UTC' || zone === 'Etc/UTC' ? undefined : zone;
}

// ---------------------------------------------------------------------------------------------
// JavaScript

function textOf(value: Scalar): string | null {
  if (typeof value !== 'string') return null;
  const t = value.replace(EDGES, '');
  return t === '' ? null : t;
}

function localeText(text: string, options: ConversionOptions): string {
  let t = text;
  if (options.thousands !== undefined) t = t.replaceAll(options.thousands, '');
  if (options.decimal !== undefined && options.decimal !== '.')
    t = t.replaceAll(options.decimal, '.');
  return t;
}

function floatFromText(text: string): number | null {
  if (!DECIMAL.test(text)) return null;
  const n = Number(text);
  return Number.isFinite(n) ? n : null;
}

function intFromFloat(f: number | null): number | null {
  // `+ 0` turns -0 into 0: a BIGINT has no negative zero.
  return f !== null && Number.isInteger(f) && Math.abs(f) <= MAX_SAFE ? f + 0 : null;
}

function daysFromCivil(year: number, month: number, day: number): number {
  const y = year - (month <= 2 ? 1 : 0);
  const era = Math.trunc(y / 400);
  const yoe = y - era * 400;
  const mp = (month + 9) % 12;
  const doy = Math.trunc((153 * mp + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.trunc(yoe / 4) - Math.trunc(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

function parseTime(text: string, g: TimeGrammar, zone: string | undefined): number | null {
  const m = g.regex.exec(text);
  if (!m) return null;
  const get = (x: Group): string => {
    const i = g.groups.indexOf(x);
    return i < 0 ? '' : (m[i + 1] ?? '');
  };
  const num = (x: Group): number => {
    const s = get(x);
    return s === '' ? 0 : Number(s);
  };
  const epoch = get('epoch');
  if (epoch !== '') {
    const ms = Number(epoch);
    return Math.abs(ms) <= MAX_MICROS / 1000 ? msOfMicros(BigInt(ms) * 1000n) : null;
  }
  const has = (x: Group): boolean => g.groups.includes(x);
  const year = has('year') ? num('year') : (num('yy') < 69 ? 2000 : 1900) + num('yy');
  const month = has('month')
    ? num('month')
    : MONTHS.indexOf(get('mon').slice(0, 3).toLowerCase()) + 1;
  const day = num('day');
  const hour = has('hour12')
    ? (num('hour12') % 12) + (get('ampm').toLowerCase() === 'pm' ? 12 : 0)
    : num('hour');
  const minute = num('minute');
  const second = num('second');
  const f = get('frac');
  const frac = f === '' ? 0 : Number(f.slice(0, 6).padEnd(6, '0'));
  if (
    year < 1 ||
    month < 1 ||
    month > 12 ||
    day < 1 ||
    day > daysInMonth(year, month) ||
    (has('hour12') ? num('hour12') < 1 || num('hour12') > 12 : hour > 23) ||
    minute > 59 ||
    second > 59
  ) {
    return null;
  }
  let seconds = daysFromCivil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
  const z = get('zone');
  if (z === 'Z') {
    // UTC already.
  } else if (z !== '') {
    const sign = z[0] === '-' ? -1 : 1;
    const offset = Number(z.slice(1, 3)) * 3600 + (z.length > 3 ? Number(z.slice(-2)) * 60 : 0);
    seconds -= sign * offset;
  } else if (zone !== undefined) {
    seconds = wallToUtcSeconds(zone, seconds);
  }
  return msOfMicros(BigInt(seconds) * 1_000_000n + BigInt(frac));
}

function roundHalfAway(v: number): number {
  return Math.sign(v) * Math.round(Math.abs(v));
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

/** A Ferry timestamp (UTC ms) as `strftime('%Y-%m-%d %H:%M:%S[.%f]')` prints it. */
function timestampText(ms: number): string {
  const micros = microsOf(ms);
  const perDay = 86_400_000_000n;
  let days = micros / perDay;
  let rest = micros % perDay;
  if (rest < 0n) {
    rest += perDay;
    days -= 1n;
  }
  const date = new Date(Number(days) * 86_400_000);
  const seconds = Number(rest / 1_000_000n);
  const frac = Number(rest % 1_000_000n);
  const text =
    `${pad(date.getUTCFullYear(), 4)}-${pad(date.getUTCMonth() + 1, 2)}-${pad(date.getUTCDate(), 2)} ` +
    `${pad(Math.trunc(seconds / 3600), 2)}:${pad(Math.trunc(seconds / 60) % 60, 2)}:${pad(seconds % 60, 2)}`;
  return frac === 0 ? text : `${text}.${pad(frac, 6)}`;
}

/**
 * The JavaScript twin of {@link conversionSql}: converts one value of Ferry type `from` (a
 * value of another kind converts as if read from text when it is a string, else to null).
 * @example conversionFunction('string', 'float', { decimal: ',', thousands: '.' })('1.234,5') // 1234.5
 */
export function conversionFunction(
  from: ColumnType,
  to: ColumnType,
  options: ConversionOptions = {},
): (value: Scalar) => Scalar {
  if (from === to) return (v) => v;
  switch (from) {
    case 'string':
      switch (to) {
        case 'float':
          return (v) => {
            const t = textOf(v);
            return t === null ? null : floatFromText(localeText(t, options));
          };
        case 'int':
          return (v) => {
            const t = textOf(v);
            return t === null ? null : intFromFloat(floatFromText(localeText(t, options)));
          };
        case 'bool':
          return (v) => {
            const t = textOf(v)?.toLowerCase();
            if (t === undefined) return null;
            return TRUE_SET.has(t) ? true : FALSE_SET.has(t) ? false : null;
          };
        case 'timestamp': {
          const g =
            options.format === undefined ? ISO_GRAMMAR : compileFormat(options.format, 'cast');
          const zone = zoneOf(options);
          return (v) => {
            const t = textOf(v);
            return t === null ? null : parseTime(t, g, zone);
          };
        }
      }
      break;
    case 'int':
    case 'float':
      switch (to) {
        case 'float':
          return (v) => (typeof v === 'number' ? v : null);
        case 'int':
          return (v) => (typeof v === 'number' ? intFromFloat(v) : null);
        case 'bool':
          return (v) => (v === 0 ? false : v === 1 ? true : null);
        case 'timestamp': {
          const k = UNIT_MICROS[options.unit ?? 'ms'];
          return (v) => {
            if (typeof v !== 'number') return null;
            const scaled = v * k;
            if (!Number.isFinite(scaled) || Math.abs(scaled) > MAX_MICROS) return null;
            return msOfMicros(BigInt(roundHalfAway(scaled)));
          };
        }
        case 'string':
          return (v) => (typeof v === 'number' ? String(v) : null);
      }
      break;
    case 'bool':
      switch (to) {
        case 'int':
        case 'float':
          return (v) => (typeof v === 'boolean' ? (v ? 1 : 0) : null);
        case 'string':
          return (v) => (typeof v === 'boolean' ? String(v) : null);
      }
      break;
    case 'timestamp':
      switch (to) {
        case 'float':
          return (v) => (typeof v === 'number' ? v : null);
        case 'int':
          return (v) => (typeof v === 'number' && Number.isInteger(v) ? v : null);
        case 'string':
          return (v) => (typeof v === 'number' ? timestampText(v) : null);
      }
      break;
  }
  throw new FerryError('FERRY_CONFIG_INVALID', `a ${from} cannot be cast to ${to}`);
}

/**
 * A JavaScript value as a value of Ferry type `type`, for rows that arrive from outside (JSON
 * requests): a value of the right kind passes, text is read with the grammars above, a number
 * fits an int or timestamp column by the number rules, NaN and ±Infinity are missing, anything
 * else is null.
 * @example coerceInput('12', 'int') // 12
 */
export function coerceInput(value: unknown, type: ColumnType): Scalar {
  if (value === null || value === undefined) return null;
  switch (typeof value) {
    case 'string':
      return type === 'string' ? value : conversionFunction('string', type)(value);
    case 'number':
      // Non-finite numbers are missing, as the batch path reads them.
      if (!Number.isFinite(value)) return null;
      if (type === 'float') return value;
      if (type === 'timestamp') return value + 0;
      if (type === 'int') return intFromFloat(value);
      if (type === 'bool') return value === 0 ? false : value === 1 ? true : null;
      return null;
    case 'boolean':
      return type === 'bool' ? value : type === 'int' || type === 'float' ? (value ? 1 : 0) : null;
    default:
      return null;
  }
}
