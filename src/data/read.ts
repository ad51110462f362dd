/**
 * Reads a data file (CSV, Parquet, JSON lines) into a Table through DuckDB, which detects
 * column types. Types map onto Ferry's: DOUBLE/FLOAT/DECIMAL → float, integers → int,
 * BOOLEAN → bool, DATE/TIMESTAMP(TZ) → timestamp (UTC ms), anything else → string.
 */
import { statSync } from 'node:fs';
import path from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import type { Table } from '../core/table.js';
import { FerryError } from '../errors/index.js';
import { quoteIdent, quoteString, resultToTable, withDuckDB } from './duckdb.js';

export type TableFormat = 'csv' | 'parquet' | 'jsonl';

export interface ReadTableOptions {
  /** The file's format; by default from its extension (.csv/.tsv/.txt, .parquet/.pq, .jsonl/.ndjson). */
  readonly format?: TableFormat;
  /** Accept a file with a header and no rows (else FERRY_DATA_EMPTY). */
  readonly allowEmpty?: boolean;
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
 * Reads a whole file into memory as a Table.
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
  let size: number;
  try {
    const stat = statSync(file);
    if (!stat.isFile()) throw new Error('not a regular file');
    size = stat.size;
  } catch (cause) {
    throw new FerryError(
      'FERRY_DATA_UNREADABLE',
      `cannot read ${file}: no such file; check the path (relative paths start at ${process.cwd()})`,
      {
        cause,
      },
    );
  }
  if (size === 0) {
    throw new FerryError(
      'FERRY_DATA_EMPTY',
      `${file} is empty; give a file with a header and at least one row`,
    );
  }

  const table = await withDuckDB(async (con) => {
    try {
      return await readWith(con, file, format, false);
    } catch (error) {
      // DuckDB guesses CSV types from a sample; a late value that does not fit makes it re-read the whole file.
      if (format === 'csv' && error instanceof Error && /Conversion Error/i.test(error.message)) {
        try {
          return await readWith(con, file, format, true);
        } catch (retry) {
          throw unreadable(file, format, retry);
        }
      }
      throw unreadable(file, format, error);
    }
  });

  if (table.rowCount === 0 && !options.allowEmpty) {
    throw new FerryError(
      'FERRY_DATA_EMPTY',
      `${file} has no data rows; give a file with a header and at least one row`,
    );
  }
  if (format === 'csv') await checkHeader(file, table);
  return table;
}

async function readWith(
  con: DuckDBConnection,
  file: string,
  format: TableFormat,
  fullSample: boolean,
): Promise<Table> {
  const result = await con.run(`SELECT * FROM ${scanOf(file, format, fullSample)}`);
  return resultToTable(result);
}

function scanOf(file: string, format: TableFormat, fullSample: boolean): string {
  const f = quoteString(file);
  switch (format) {
    case 'csv':
      return `read_csv(${f}, header = true, auto_detect = true${fullSample ? ', sample_size = -1' : ''})`;
    case 'parquet':
      return `read_parquet(${f})`;
    case 'jsonl':
      return `read_json_auto(${f}, format = 'newline_delimited')`;
  }
}

function unreadable(file: string, format: TableFormat, error: unknown): FerryError {
  const reason =
    error instanceof Error ? (error.message.split('\n')[0] ?? error.message) : String(error);
  const hint =
    format === 'csv'
      ? 'check that it is comma-separated text with a header row'
      : format === 'parquet'
        ? 'check that it is a complete Parquet file'
        : 'check that each line is one JSON object';
  return new FerryError(
    'FERRY_DATA_UNREADABLE',
    `cannot read ${file} as ${format}: ${reason}; ${hint}`,
    { cause: error },
  );
}

/**
 * DuckDB renames a repeated CSV header (`a, a` becomes `a, a_1`), which would silently give a
 * column a name the user never wrote. When a name looks like such a rename, read the raw header.
 */
async function checkHeader(file: string, table: Table): Promise<void> {
  const names = new Set(table.columns.map((c) => c.name));
  const suspicious = table.columns.some((c) => {
    const m = /^(.*)_\d+$/.exec(c.name);
    return m !== null && names.has(m[1] as string);
  });
  if (!suspicious) return;
  const header = await withDuckDB(async (con) => {
    const reader = await con.runAndReadAll(
      `SELECT * FROM read_csv(${quoteString(file)}, header = false, all_varchar = true) LIMIT 1`,
    );
    return (reader.getRows()[0] ?? []).map((v) => (v === null ? '' : String(v)));
  });
  const seen = new Set<string>();
  const repeated = new Set<string>();
  for (const name of header) (seen.has(name) ? repeated : seen).add(name);
  if (repeated.size > 0) {
    throw new FerryError(
      'FERRY_DATA_UNREADABLE',
      `${file} has repeated column names in its header: ${[...repeated].map((n) => quoteIdent(n)).join(', ')}; give every column a distinct name`,
    );
  }
}
