/** Durations in ferry.yaml (`500ms`, `30s`, `10m`, `1h`, `7d`), parsed to milliseconds. */
import { z } from 'zod';

/** A duration such as `30s`, `10m`, `1h`, `7d`, parsed to milliseconds. */
export const duration = z
  .string()
  .regex(/^\d+(ms|s|m|h|d)$/, 'a duration such as 500ms, 30s, 10m, 1h or 7d')
  .transform((text) => parseDuration(text));

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

export function parseDuration(text: string): number {
  const match = /^(\d+)(ms|s|m|h|d)$/.exec(text);
  if (!match) throw new Error(`'${text}' is not a duration such as 30s, 10m, 1h or 7d`);
  return Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS];
}
