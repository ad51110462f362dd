/**
 * Reading a data file (CSV, Parquet, JSON lines) into a Table, through the one source reader of
 * `source.ts`: `ferry train --data`, `ferry data profile`, the feature store and recipes all
 * parse, type and check a file the same way. CSV columns are typed from every value with Ferry's
 * grammars (int, float, bool, timestamp as UTC ms, else string), JSON lines from every line, and
 * Parquet by its own types; a ferry.yaml source's read options and `schema:` apply.
 *
 * Nothing is left out silently. A CSV record that cannot be parsed (wrong column count, broken
 * quoting, invalid encoding) is left out of the table and reported with its line numbers (a line
 * whose quote is not closed is left out alone: the lines after it are read), and a value that
 * does not fit its column's type (a declared type, a non-finite float, an integer beyond 2^53)
 * is read as null and counted:
 * - {@link readSource} returns both with the table, for callers that report them their own way;
 * - {@link readTable} passes them to `onIssues`, which by default emits a process warning
 *   (`FerryDataWarning`, printed on stderr) with the counts and the first line numbers. A warning
 *   rather than an error, so that one bad line in a large export does not stop training; a file
 *   with no readable line at all is FERRY_DATA_UNREADABLE.
 */
import { closeSync, mkdtempSync, openSync, readSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { DataSourceSpec } from '../config/data-schema.js';
import type { Table } from '../core/table.js';
import { FerryError } from '../errors/index.js';
import { quoteIdent, resultToTable, withDuckDB } from './duckdb.js';
import { openSource, type MalformedLines } from './source.js';

export type { MalformedLine, MalformedLines } from './source.js';

export type TableFormat = 'csv' | 'parquet' | 'jsonl';

/** A table read from a source, with what the read set aside. */
export interface SourceRead {
  readonly table: Table;
  /** CSV records that could not be parsed and are not in the table. */
  readonly malformed: MalformedLines;
  /** Per column, values read as null because they did not fit the column's type. */
  readonly conversionFailures: Readonly<Record<string, number>>;
}

/** What {@link readTable} hands to `onIssues` when a read set something aside. */
export interface ReadIssues extends Omit<SourceRead, 'table'> {
  /** The file as the caller named it. */
  readonly file: string;
}

export interface ReadSourceOptions {
  /** Accept a file with a header and no rows (else FERRY_DATA_EMPTY). */
  readonly allowEmpty?: boolean;
  /** Malformed records to keep as examples (default 20). */
  readonly maxExamples?: number;
}

export interface ReadTableOptions {
  /** The file's format; by default from its extension (.csv/.tsv/.txt, .parquet/.pq, .jsonl/.ndjson). */
  readonly format?: TableFormat;
  /** Accept a file with a header and no rows (else FERRY_DATA_EMPTY). */
  readonly allowEmpty?: boolean;
  /**
   * Called once when lines were left out or values read as null; by default a process warning
   * on stderr. Pass `() => {}` to ignore them, or throw from it to refuse such a file.
   */
  readonly onIssues?: (issues: ReadIssues) => void;
}

const EXTENSIONS: Record<string, TableFormat> = {
  '.csv': 'csv',
  '.tsv': 'csv',
  '.txt': 'csv',
  '.parquet': 'parquet',
  '.pq': 'parquet',
  '.jsonl': 'jsonl',
  '.ndjson': 'jsonl',
};

/** The format a file name implies, or null. */
export function formatOf(file: string): TableFormat | null {
  return EXTENSIONS[path.extname(file).toLowerCase()] ?? null;
}

/**
 * Reads a ferry.yaml source (with its read options and `schema:` types) into memory as a Table,
 * with the malformed lines and conversion failures. Relative paths start at `baseDir`. Errors
 * are those of `openSource`: FERRY_DATA_UNREADABLE, FERRY_DATA_EMPTY, FERRY_CONFIG_INVALID,
 * FERRY_COLUMN_UNKNOWN.
 * @example
 * const { table, malformed } = await readSource(
 *   { type: 'csv', path: 'data/tx.csv', options: { delimiter: ';' }, schema: { card_id: 'string' } },
 *   projectDir,
 * );
 */
export async function readSource(
  spec: DataSourceSpec,
  baseDir: string,
  options: ReadSourceOptions = {},
): Promise<SourceRead> {
  const stageDir = mkdtempSync(path.join(os.tmpdir(), 'ferry-read-'));
  try {
    return await withDuckDB(async (connection) => {
      const source = await openSource(connection, spec, baseDir, { ...options, stageDir });
      const schema = source.relation.schema;
      // No ORDER BY: DuckDB keeps a scan's order (preserve_insertion_order), and the staged
      // copy is in file order; sorting would cost a pass over every row.
      const result = await resultToTable(
        await connection.run(
          `SELECT ${schema.map((c) => quoteIdent(c.name)).join(', ')} FROM (${source.relation.sql})`,
        ),
      );
      const table: Table = {
        rowCount: result.rowCount,
        columns: result.columns.map((c, i) => ({ ...c, type: schema[i]?.type ?? c.type })),
      };
      return {
        table,
        malformed: source.malformed,
        conversionFailures: source.conversionFailures,
      };
    });
  } finally {
    rmSync(stageDir, { recursive: true, force: true });
  }
}

/**
 * Reads a whole file into memory as a Table, with the source reader's defaults (comma-separated
 * UTF-8 with a header, tab for .tsv). A CSV whose first line has more `;`, tabs or `|` than
 * commas is read with that delimiter, as a file given on the command line has no options.
 * Relative paths start at the current folder. What the read set aside goes to `onIssues`.
 * @example const table = await readTable('data/transactions.csv');
 */
export async function readTable(file: string, options: ReadTableOptions = {}): Promise<Table> {
  const format = options.format ?? formatOf(file);
  if (!format) {
    throw new FerryError(
      'FERRY_DATA_UNREADABLE',
      `cannot tell the format of ${file} from its extension; name it .csv, .parquet or .jsonl, or pass the format explicitly`,
    );
  }
  let spec: DataSourceSpec = { type: format, path: file };
  if (format === 'csv' && path.extname(file).toLowerCase() !== '.tsv') {
    const delimiter = sniffDelimiter(path.resolve(file));
    if (delimiter !== ',') spec = { type: 'csv', path: file, options: { delimiter } };
  }
  const read = await readSource(
    spec,
    process.cwd(),
    options.allowEmpty !== undefined ? { allowEmpty: options.allowEmpty } : {},
  );
  if (read.malformed.count > 0 || Object.keys(read.conversionFailures).length > 0) {
    (options.onIssues ?? warnIssues)({
      file,
      malformed: read.malformed,
      conversionFailures: read.conversionFailures,
    });
  }
  return read.table;
}

/** Delimiters a file without options may use, comma first (it wins a tie). */
const DELIMITERS = [',', ';', '\t', '|'] as const;

/** The delimiter of {@link DELIMITERS} that the first line has most of, outside double quotes. */
function sniffDelimiter(file: string): string {
  let head: string;
  try {
    const fd = openSync(file, 'r');
    try {
      const buffer = Buffer.alloc(1 << 16);
      head = buffer.toString('latin1', 0, readSync(fd, buffer, 0, buffer.length, 0));
    } finally {
      closeSync(fd);
    }
  } catch {
    return ','; // The reader reports a missing file with the right message.
  }
  const counts = new Map<string, number>();
  let quoted = false;
  for (const ch of head) {
    if (ch === '"') quoted = !quoted;
    else if (!quoted && (ch === '\n' || ch === '\r')) break;
    else if (!quoted) counts.set(ch, (counts.get(ch) ?? 0) + 1);
  }
  let best: string = ',';
  for (const d of DELIMITERS) if ((counts.get(d) ?? 0) > (counts.get(best) ?? 0)) best = d;
  return best;
}

/** How many examples of malformed lines a warning shows. */
const WARNING_EXAMPLES = 3;

/** The default `onIssues`: one process warning saying what was set aside and where. */
function warnIssues(issues: ReadIssues): void {
  const parts: string[] = [];
  const { count, lines, examples } = issues.malformed;
  if (count > 0) {
    const shown = examples
      .slice(0, WARNING_EXAMPLES)
      .map(
        (m) =>
          `${m.lastLine > m.line ? `lines ${m.line}–${m.lastLine}` : `line ${m.line}`}: ${m.error.toLowerCase()}`,
      );
    const more = count > shown.length ? `, and ${count - shown.length} more` : '';
    const what =
      lines === count
        ? `${count} malformed line${count === 1 ? ' was' : 's were'}`
        : `${count} malformed record${count === 1 ? '' : 's'} (${lines} lines) ${count === 1 ? 'was' : 'were'}`;
    parts.push(
      `${what} left out (${shown.join('; ')}${more}); check the delimiter, quoting and encoding`,
    );
  }
  const failures = Object.entries(issues.conversionFailures);
  if (failures.length > 0) {
    parts.push(
      `values that did not fit their column's type were read as null (${failures.map(([c, n]) => `${quoteIdent(c)}: ${n}`).join(', ')})`,
    );
  }
  process.emitWarning(`${issues.file}: ${parts.join('; ')}`, { type: 'FerryDataWarning' });
}
