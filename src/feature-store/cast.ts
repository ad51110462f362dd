/**
 * Casting source values to a feature set's declared types, the same way for every ingestion
 * path (batch files now, streams later), so that one value means one thing everywhere.
 * A cast either yields the value (null for missing) or INVALID, which the caller turns into a
 * rejected row with its reason: a value is never silently coerced into something else.
 */
import type { ColumnType, Scalar } from '../core/table.js';

export const INVALID: unique symbol = Symbol('invalid');
export type Cast<T> = T | null | typeof INVALID;

const TRUE = new Set(['true', 't', 'yes', 'y', '1']);
const FALSE = new Set(['false', 'f', 'no', 'n', '0']);
/** An ISO date-time without an offset: read as UTC, never as the machine's local time. */
const NAIVE_ISO = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?$/;

/** An entity key as the stores keep it: a non-empty string. */
export function castKey(value: Scalar | undefined): Cast<string> {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string') return value === '' ? null : value;
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : INVALID;
  return INVALID;
}

/**
 * A time as UTC milliseconds: from a timestamp or integer column (milliseconds), or an ISO 8601
 * string (without an offset it is UTC).
 * @example castTimestamp('2026-10-01T12:00:00Z') // 1790856000000
 */
export function castTimestamp(value: Scalar | undefined): Cast<number> {
  if (value === null || value === undefined) return null;
  if (typeof value === 'number') return Number.isFinite(value) ? Math.trunc(value) : INVALID;
  if (typeof value !== 'string') return INVALID;
  const text = value.trim();
  if (text === '') return null;
  if (/^-?\d+$/.test(text)) return Number(text);
  const ms = Date.parse(
    NAIVE_ISO.test(text) ? `${text.replace(' ', 'T')}${text.length === 10 ? '' : 'Z'}` : text,
  );
  return Number.isNaN(ms) ? INVALID : ms;
}

/**
 * A value as the declared feature type.
 * @example castValue('12.5', 'float') // 12.5
 */
export function castValue(value: Scalar | undefined, type: ColumnType): Cast<Scalar> {
  if (value === null || value === undefined) return null;
  switch (type) {
    case 'float':
    case 'int': {
      let n: number;
      if (typeof value === 'number') n = value;
      else if (typeof value === 'boolean') n = value ? 1 : 0;
      else {
        const text = value.trim();
        if (text === '') return null;
        n = Number(text);
      }
      if (!Number.isFinite(n)) return INVALID;
      return type === 'int' && !Number.isInteger(n) ? INVALID : n;
    }
    case 'bool': {
      if (typeof value === 'boolean') return value;
      if (typeof value === 'number') return value === 1 ? true : value === 0 ? false : INVALID;
      const text = value.trim().toLowerCase();
      if (text === '') return null;
      return TRUE.has(text) ? true : FALSE.has(text) ? false : INVALID;
    }
    case 'string':
      return typeof value === 'string' ? value : String(value);
    case 'timestamp':
      return castTimestamp(value);
  }
}

/** A short, safe rendering of a rejected value for a reason message. */
export function showValue(value: Scalar | undefined): string {
  const text = typeof value === 'string' ? `'${value}'` : String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
