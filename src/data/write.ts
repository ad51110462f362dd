/**
 * Writes a Table to a file: CSV (RFC 4180 quoting), Parquet (through DuckDB) or JSON lines.
 * Timestamps are written as ISO 8601 UTC text in CSV and JSON lines, and as TIMESTAMP in
 * Parquet, so that `readTable` reads every format back with the same column types.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Column, Scalar, Table } from '../core/table.js';
import { FerryError } from '../errors/index.js';
import { loadTable, quoteString, withDuckDB } from './duckdb.js';
import { formatOf, type TableFormat } from './read.js';

/** A CSV field, quoted only when it must be (a comma, quote, CR or LF, or edge spaces). */
function csvField(text: string): string {
  return /[",\r\n]|^\s|\s$/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

function textOf(value: Scalar, column: Column): string {
  if (value === null) return '';
  if (column.type === 'timestamp' && typeof value === 'number')
    return new Date(value).toISOString();
  return String(value);
}

/** The table as CSV text: a header, then one line per row (LF line ends); null is an empty field. */
export function toCsv(table: Table): string {
  const lines: string[] = new Array<string>(table.rowCount + 1);
  lines[0] = table.columns.map((c) => csvField(c.name)).join(',');
  const n = table.columns.length;
  const cells: string[] = new Array<string>(n);
  for (let r = 0; r < table.rowCount; r++) {
    for (let c = 0; c < n; c++) {
      const column = table.columns[c] as Column;
      const value = column.values[r] ?? null;
      cells[c] =
        column.type === 'string' && value !== null
          ? csvField(String(value))
          : textOf(value, column);
    }
    lines[r + 1] = cells.join(',');
  }
  return `${lines.join('\n')}\n`;
}

/**
 * Writes the table as CSV, creating the folder if needed. The file is written beside its final
 * name and renamed, so a reader never sees half of it.
 * @example writeCsv(transactions, 'data/transactions.csv');
 */
export function writeCsv(table: Table, file: string): void {
  writeAtomically(file, toCsv(table));
}

/** The table as JSON lines: one object per row, timestamps as ISO 8601 text. */
export function toJsonLines(table: Table): string {
  const lines: string[] = new Array<string>(table.rowCount);
  for (let r = 0; r < table.rowCount; r++) {
    const row: Record<string, Scalar> = {};
    for (const c of table.columns) {
      const v = c.values[r] ?? null;
      row[c.name] = c.type === 'timestamp' && typeof v === 'number' ? new Date(v).toISOString() : v;
    }
    lines[r] = JSON.stringify(row);
  }
  return lines.length ? `${lines.join('\n')}\n` : '';
}

/**
 * Writes the table in the format its extension names (.csv, .parquet, .jsonl), or `format`.
 * @example await writeTable(trainingSet, 'out/train.parquet');
 */
export async function writeTable(
  table: Table,
  file: string,
  options: { format?: TableFormat } = {},
): Promise<void> {
  const format = options.format ?? formatOf(file);
  if (format === 'csv') return writeCsv(table, file);
  if (format === 'jsonl') return writeAtomically(file, toJsonLines(table));
  if (format !== 'parquet') {
    throw new FerryError(
      'FERRY_ARGUMENT_INVALID',
      `cannot tell which format to write ${file} in; name it .csv, .parquet or .jsonl`,
    );
  }
  mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const temp = tempName(file);
  try {
    await withDuckDB(async (con) => {
      await loadTable(con, 'ferry_out', table);
      await con.run(`COPY ferry_out TO ${quoteString(temp)} (FORMAT parquet)`);
      await con.run('DROP TABLE ferry_out');
    });
  } catch (error) {
    throw new FerryError(
      'FERRY_DATA_UNREADABLE',
      `cannot write ${file}: ${error instanceof Error ? error.message : String(error)}`,
      {
        cause: error,
      },
    );
  }
  renameSync(temp, file);
}

function tempName(file: string): string {
  return path.join(
    path.dirname(path.resolve(file)),
    `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`,
  );
}

function writeAtomically(file: string, text: string): void {
  mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const temp = tempName(file);
  writeFileSync(temp, text);
  renameSync(temp, file);
}
