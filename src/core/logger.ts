/**
 * The one way Ferry makes a logger: pino, JSON lines on stdout, with secrets redacted wherever a
 * caller might log them (authorization headers, API keys). Modules take a `Logger` in their
 * options rather than importing a global, so tests and embedders choose where logs go.
 */
import { pino, type DestinationStream, type Level, type Logger } from 'pino';

export type { Logger };
export type LogLevel = Level | 'silent';

export interface LoggerOptions {
  /** A pino level (`info`, `debug`...) or `silent`; pino rejects any other name. */
  readonly level?: LogLevel | (string & {});
  /** Shown as `name` on every line, e.g. `ferry-serve`. */
  readonly name?: string;
  /** Where lines go; stdout by default. Tests pass a stream to read them back. */
  readonly destination?: DestinationStream;
}

/**
 * Paths pino censors. Wildcards cover one level, so the common places are listed: a header bag
 * at the top level or under `req`, and an `api_key` at the top level or one object down.
 */
const REDACT_PATHS = [
  'authorization',
  'headers.authorization',
  'headers["x-api-key"]',
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'req.headers.cookie',
  'api_key',
  'apiKey',
  '*.api_key',
  '*.apiKey',
  '*.authorization',
];

/**
 * @example
 * const log = createLogger({ level: 'info', name: 'ferry-serve' });
 * log.info({ model: 'fraud' }, 'model loaded');
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const config = {
    level: options.level ?? 'info',
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    ...(options.name === undefined ? {} : { name: options.name }),
  };
  return options.destination === undefined ? pino(config) : pino(config, options.destination);
}

/** A logger that writes nothing (for library callers that pass none). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
