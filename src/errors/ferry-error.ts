/** The error type every Ferry module throws: a code from the table, a message, and the cause. */
import { ERROR_CODES, type ErrorCode } from './codes.js';

export class FerryError extends Error {
  readonly code: ErrorCode;
  /** Structured details safe to return to a client (never secrets). */
  readonly details: Readonly<Record<string, unknown>> | undefined;

  /**
   * @example
   * throw new FerryError('FERRY_COLUMN_UNKNOWN', "column 'amount' is not in the table; columns: a, b");
   */
  constructor(
    code: ErrorCode,
    message: string,
    options?: { cause?: unknown; details?: Record<string, unknown> },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'FerryError';
    this.code = code;
    this.details = options?.details;
  }

  get status(): number {
    return ERROR_CODES[this.code].status;
  }

  override toString(): string {
    return `${this.code}: ${this.message}`;
  }
}

export function isFerryError(value: unknown): value is FerryError {
  return value instanceof FerryError;
}

/** Wraps an unknown thrown value so callers always see a coded error. */
export function toFerryError(value: unknown, fallback: ErrorCode = 'FERRY_INTERNAL'): FerryError {
  if (value instanceof FerryError) return value;
  const message = value instanceof Error ? value.message : String(value);
  return new FerryError(fallback, message, { cause: value });
}
