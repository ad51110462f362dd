/**
 * What the `type` rule means by "a value converts to a type", written twice with one meaning:
 * {@link convertsTo} for JavaScript values and {@link convertsToSql} for DuckDB columns.
 *
 * A missing value (null, or text that is empty or only blanks) always converts: missingness is
 * the `not_null` rule's business. Otherwise:
 * - to `string`: everything;
 * - to `float`: finite numbers, booleans, and text that is a decimal number
 *   (`[+-]digits[.digits][e[+-]digits]`, blanks around allowed) whose value is finite;
 *   hexadecimal, `1_000`, `Infinity` and `NaN` are not numbers here;
 * - to `int`: the same, when the value is a whole, safe integer (`3.0` and `1e3` are; 2^53 is
 *   not);
 * - to `bool`: booleans, the numbers 0 and 1, and the text (any case) true/false, t/f, yes/no,
 *   y/n, 1/0;
 * - to `timestamp`: finite numbers (UTC milliseconds), and text that is either whole epoch
 *   milliseconds or an ISO 8601 date `YYYY-MM-DD`, optionally with a time `[T ]HH:MM[:SS[.fff]]`
 *   and a zone `Z` or `±HH[:MM]`, naming a real calendar day (no 30 February) and a real time
 *   (no hour 24, no leap second 60); booleans do not.
 * A timestamp column's values are its UTC milliseconds. Blanks are space, tab, CR and LF.
 */
import type { ColumnType, Scalar } from '../../core/table.js';

const BLANK = /^[ \t\n\r]*$/;
const EDGES = /^[ \t\n\r]+|[ \t\n\r]+$/g;
/** One grammar, used verbatim by JavaScript and by RE2 (after trimming). */
const DECIMAL_SOURCE = '[+-]?([0-9]+(\\.[0-9]*)?|\\.[0-9]+)([eE][+-]?[0-9]+)?';
const EPOCH_SOURCE = '-?[0-9]+';
const ISO_SOURCE =
  '[0-9]{4}-[0-9]{2}-[0-9]{2}' +
  '([T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\\.[0-9]+)?)?' +
  '(Z|[+-]([01][0-9]|2[0-3])(:?[0-5][0-9])?)?)?';
const DECIMAL = new RegExp(`^(?:${DECIMAL_SOURCE})$`);
const EPOCH = new RegExp(`^(?:${EPOCH_SOURCE})$`);
const ISO = new RegExp(`^(?:${ISO_SOURCE})$`);
const MAX_SAFE = Number.MAX_SAFE_INTEGER;
const TRUE_TEXT = ['true', 't', 'yes', 'y', '1'];
const FALSE_TEXT = ['false', 'f', 'no', 'n', '0'];
const BOOL_TEXT = new Set([...TRUE_TEXT, ...FALSE_TEXT]);

/**
 * Whether a value converts to `type` (see the module comment).
 * @example convertsTo(' 12 ', 'int') // true
 * @example convertsTo('2024-02-30', 'timestamp') // false
 */
export function convertsTo(value: Scalar | undefined, type: ColumnType): boolean {
  if (value === null || value === undefined || type === 'string') return true;
  if (typeof value === 'number') {
    if (type === 'bool') return value === 0 || value === 1;
    if (!Number.isFinite(value)) return false;
    return type !== 'int' || Number.isSafeInteger(value);
  }
  if (typeof value === 'boolean') return type !== 'timestamp';
  if (BLANK.test(value)) return true;
  const text = value.replace(EDGES, '');
  switch (type) {
    case 'float':
    case 'int': {
      if (!DECIMAL.test(text)) return false;
      const n = Number(text);
      return Number.isFinite(n) && (type === 'float' || Number.isSafeInteger(n));
    }
    case 'bool':
      return BOOL_TEXT.has(text.toLowerCase());
    case 'timestamp':
      if (EPOCH.test(text)) return Number.isFinite(Number(text));
      return ISO.test(text) && isCalendarDay(text);
  }
}

function isCalendarDay(text: string): boolean {
  const year = Number(text.slice(0, 4));
  const month = Number(text.slice(5, 7));
  const day = Number(text.slice(8, 10));
  if (month < 1 || month > 12 || day < 1) return false;
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1] as number;
  return day <= days;
}

/**
 * The SQL of "the value converts" for column expression `column` of Ferry type `from`, whose
 * numbers (int, float, timestamp as UTC ms) are given by `numeric`. Never null.
 * @example convertsToSql('"age"', 'string', 'int', 'NULL')
 */
export function convertsToSql(
  column: string,
  from: ColumnType,
  to: ColumnType,
  numeric: string,
): string {
  if (to === 'string') return 'TRUE';
  const ok = (condition: string): string => `(${column} IS NULL OR coalesce(${condition}, FALSE))`;
  switch (from) {
    case 'bool':
      return ok(to === 'timestamp' ? 'FALSE' : 'TRUE');
    case 'int':
    case 'float':
    case 'timestamp': {
      const v = numeric;
      if (to === 'bool') return ok(`${v} IN (0, 1)`);
      if (to === 'int')
        return ok(`isfinite(${v}) AND ${v} = trunc(${v}) AND abs(${v}) <= ${MAX_SAFE}`);
      return ok(`isfinite(${v})`);
    }
    case 'string': {
      const text = `trim(CAST(${column} AS VARCHAR), chr(32) || chr(9) || chr(10) || chr(13))`;
      const asDouble = `TRY_CAST(${text} AS DOUBLE)`;
      let check: string;
      switch (to) {
        case 'float':
          check = `regexp_full_match(${text}, '${DECIMAL_SOURCE}') AND isfinite(${asDouble})`;
          break;
        case 'int':
          check = `regexp_full_match(${text}, '${DECIMAL_SOURCE}') AND isfinite(${asDouble}) AND ${asDouble} = trunc(${asDouble}) AND abs(${asDouble}) <= ${MAX_SAFE}`;
          break;
        case 'bool':
          check = `lower(${text}) IN (${[...BOOL_TEXT].map((t) => `'${t}'`).join(', ')})`;
          break;
        case 'timestamp':
          check =
            `CASE WHEN regexp_full_match(${text}, '${EPOCH_SOURCE}') THEN isfinite(${asDouble}) ` +
            `ELSE regexp_full_match(${text}, '${ISO_SOURCE}') AND TRY_CAST(substr(${text}, 1, 10) AS DATE) IS NOT NULL END`;
          break;
      }
      return ok(`${text} = '' OR (${check})`);
    }
  }
}
