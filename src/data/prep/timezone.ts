/**
 * Local wall-clock time in a named time zone to UTC, in JavaScript, with the rules DuckDB's ICU
 * applies in `timezone(zone, TIMESTAMP)`: a wall time that a daylight-saving jump skips is read
 * with the offset from before the jump (02:30 on a spring-forward night in Paris is 01:30 UTC),
 * and a wall time that occurs twice is the later of the two (the first 02:30 after a fall-back
 * night in Paris is 01:30 UTC). The parity test checks both against DuckDB.
 */
import { FerryError } from '../../errors/index.js';

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(zone: string): Intl.DateTimeFormat {
  let f = formatters.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
      era: 'short',
    });
    formatters.set(zone, f);
  }
  return f;
}

/**
 * Throws a coded error when `zone` is not an IANA time zone name.
 * @example checkTimeZone('Europe/Paris', 'recipe x, step 2 (cast)')
 */
export function checkTimeZone(zone: string, where: string): void {
  try {
    formatter(zone);
  } catch (cause) {
    throw new FerryError(
      'FERRY_CONFIG_INVALID',
      `${where}: '${zone}' is not a time zone; use an IANA name such as 'UTC', 'Europe/Paris' or 'America/New_York'`,
      { cause },
    );
  }
}

/** The zone's offset from UTC, in seconds, at the instant `utcSeconds`. */
export function offsetSecondsAt(zone: string, utcSeconds: number): number {
  const parts = formatter(zone).formatToParts(new Date(utcSeconds * 1000));
  let year = 0;
  let month = 0;
  let day = 0;
  let hour = 0;
  let minute = 0;
  let second = 0;
  let bc = false;
  for (const part of parts) {
    switch (part.type) {
      case 'year':
        year = Number(part.value);
        break;
      case 'month':
        month = Number(part.value);
        break;
      case 'day':
        day = Number(part.value);
        break;
      case 'hour':
        hour = Number(part.value);
        break;
      case 'minute':
        minute = Number(part.value);
        break;
      case 'second':
        second = Number(part.value);
        break;
      case 'era':
        bc = part.value.startsWith('B');
        break;
    }
  }
  if (bc) year = 1 - year;
  const wall = Date.UTC(2000, month - 1, day, hour, minute, second);
  // Date.UTC maps years 0-99 to 1900-1999: set the year apart.
  const wallMs = new Date(wall).setUTCFullYear(year, month - 1, day);
  return Math.round((wallMs - utcSeconds * 1000) / 1000);
}

/**
 * UTC seconds of the wall-clock time `wallSeconds` (seconds since 1970-01-01 00:00 read as if the
 * wall clock were UTC) in `zone`.
 * @example wallToUtcSeconds('Europe/Paris', Date.UTC(2024, 2, 31, 2, 30) / 1000) // 01:30 UTC
 */
export function wallToUtcSeconds(zone: string, wallSeconds: number): number {
  // The offsets a day either side: a zone changes its offset at most once within two days.
  const before = offsetSecondsAt(zone, wallSeconds - 86_400);
  const after = offsetSecondsAt(zone, wallSeconds + 86_400);
  const early = wallSeconds - before;
  if (before === after) return early;
  const late = wallSeconds - after;
  const earlyValid = offsetSecondsAt(zone, early) === before;
  const lateValid = offsetSecondsAt(zone, late) === after;
  if (earlyValid && lateValid) return Math.max(early, late);
  if (lateValid) return late;
  // Valid only before the change, or skipped by it: the offset from before the change.
  return early;
}
