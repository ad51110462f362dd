/**
 * How commands talk to the terminal: plain text for people, `--json` for programs, coded errors
 * on stderr with a non-zero exit. Progress goes to stderr so stdout stays clean for `--json`.
 */
import { FerryError, toFerryError } from '../errors/index.js';

export interface OutputOptions {
  readonly json?: boolean;
}

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

/** Prints rows as an aligned text table. */
export function printTable(
  headers: readonly string[],
  rows: readonly (readonly unknown[])[],
): void {
  const cells = [headers, ...rows.map((r) => r.map(formatCell))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => String(r[i] ?? '').length)));
  for (const row of cells) {
    process.stdout.write(
      row
        .map((c, i) => String(c ?? '').padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd() + '\n',
    );
  }
}

export function formatCell(value: unknown): string {
  if (value === null || value === undefined) return '-';
  if (typeof value === 'number') {
    if (Number.isInteger(value)) return String(value);
    return Math.abs(value) >= 1000 || Math.abs(value) < 0.001
      ? value.toPrecision(4)
      : value.toFixed(4);
  }
  if (value instanceof Date) return value.toISOString();
  return String(value);
}

/** Progress for people: on stderr, silent under --json. */
export function progress(options: OutputOptions): (message: string) => void {
  return (message) => {
    if (!options.json) process.stderr.write(`${message}\n`);
  };
}

/** Prints a coded error and sets the exit code: 2 for bad input, 1 for failures. */
export function reportError(error: unknown): void {
  const ferry = toFerryError(error);
  process.stderr.write(`${ferry.code}: ${ferry.message}\n`);
  if (ferry.code === 'FERRY_INTERNAL' && error instanceof Error && error.stack) {
    process.stderr.write(`${error.stack}\n`);
  }
  process.exitCode = ferry.status < 500 ? 2 : 1;
}

export function argumentError(message: string): FerryError {
  return new FerryError('FERRY_ARGUMENT_INVALID', message);
}
