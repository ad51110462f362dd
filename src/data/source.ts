/**
 * Reading a configured data source (CSV, Parquet, JSON lines) as a relation for preparation.
 *
 * {@link sourceRelation} is the DuckDB table function that scans a source with its read options.
 * {@link openSource} reads the source once, in bounded memory, into a Parquet file in a staging
 * folder (text formats only: Parquet is read in place) and gives back a typed relation over it,
 * with what the read found: the data rows, the malformed records (line range, row number and
 * reason), and per column the values that did not convert to the column's type.
 *
 * Why CSV is scanned as text and typed afterwards: DuckDB rejects a whole line when one value
 * does not fit the type it guessed from a sample, and whether it does depends on which columns a
 * query happens to read. Scanning every column as text makes the set of rows depend only on the
 * file's structure; types are then inferred from every value (not a sample) with the conversion
 * grammars of `prep/convert.ts`, so a CSV value reads the same in batch and at request time, and
 * a value that does not fit a declared type becomes null and is counted, never dropped silently.
 *
 * Order and row numbers. The staged copy holds the rows in file order: DuckDB keeps a parallel
 * scan's order only through operators that carry its batch index, so every copy is checked to be
 * planned as an ordered (batch) copy. The hidden row column ({@link ROW}) is each row's number
 * among the file's data records, malformed ones included (the header and blank lines are not
 * records), so that quarantine reports, keep-first/last and seeded splits see the file's rows.
 * DuckDB's scan numbers neither rows nor, exactly, lines, and its rejects table names each
 * rejected record by the count of records and blank lines before it. So when a CSV has rejected
 * records, the file's physical lines are counted: if lines = header + rows + rejected records,
 * every line is one record, DuckDB's numbers are line numbers, and row numbers follow from them.
 * Otherwise (a quoted field spans lines, blank lines, or a stray quote swallowed lines: DuckDB
 * reads a quoted field across line ends up to the next quote, and in a parallel scan how far
 * depends on where its chunks start), and past 1,024 rejected records, the file is read again
 * through `csv-scan.ts`, which leaves out only the line of a stray quote and numbers each record
 * with its row and line range. A clean file costs nothing more; a few malformed one-line records
 * cost a count of the file's lines; only the rest costs a second read.
 */
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import path from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import type { DataSourceSpec } from '../config/data-schema.js';
import type { ColumnSchema, ColumnType } from '../core/table.js';
import { FerryError } from '../errors/index.js';
import { countLines, repairCsv, toUtf8, type CsvGrammar, type RepairResult } from './csv-scan.js';
import { quoteIdent, quoteString, resultToTable } from './duckdb.js';
import { conversionFunction, conversionSql, textSql } from './prep/convert.js';
import { col, HIDDEN_PREFIX, MAX_SAFE, ROW, type Relation } from './prep/relation.js';

export const SUPPORTED_ENCODINGS = ['utf-8', 'utf-16', 'latin-1'] as const;

export interface SourceRelationOptions {
  /** Record malformed CSV lines in these temporary tables of the connection (DuckDB's rejects). */
  readonly rejects?: { readonly table: string; readonly scans: string };
}

/** A CSV record that could not be read as a row. */
export interface MalformedLine {
  /** 1-based physical line where the record starts (the header is line 1). */
  readonly line: number;
  /** Its last line: `line` unless a quoted field runs across lines. */
  readonly lastLine: number;
  /** The data row it would have been, as the hidden row column numbers rows. */
  readonly row: number;
  /**
   * The kind of error: DuckDB's (`TOO MANY COLUMNS`, `MISSING COLUMNS`, `UNQUOTED VALUE`,
   * `INVALID ENCODING`, `LINE SIZE OVER MAXIMUM`), or `UNCLOSED QUOTE` for a line whose quote
   * is not closed where a field can end, left out alone (see the module comment).
   */
  readonly error: string;
  readonly message: string;
  /** The raw record, when known. */
  readonly text: string | null;
}

/** The records a read left out: how many, the physical lines they span, and the first ones. */
export interface MalformedLines {
  readonly count: number;
  /** Physical lines of those records: `count` unless some span several lines. */
  readonly lines: number;
  /** The first records, in file order. */
  readonly examples: readonly MalformedLine[];
}

export interface OpenedSource {
  readonly name: string;
  readonly type: DataSourceSpec['type'];
  /** Absolute path of the file. */
  readonly path: string;
  /** Typed relation over the data rows, in file order, with the hidden row number column. */
  readonly relation: Relation;
  /** Rows read (malformed records excluded); rows + malformed.count is the file's data records. */
  readonly rows: number;
  readonly malformed: MalformedLines;
  /** Per column, non-missing values that did not convert to its type and were read as null. */
  readonly conversionFailures: Readonly<Record<string, number>>;
  /** Column types that were inferred (not declared under `schema:`). */
  readonly inferred: readonly string[];
}

export interface OpenSourceOptions {
  /** A folder for the staged copy of text sources; the caller removes it. */
  readonly stageDir: string;
  /** Malformed records to keep as examples (default 20). */
  readonly maxExamples?: number;
  /** Accept a source with a header and no data rows (else FERRY_DATA_EMPTY). */
  readonly allowEmpty?: boolean;
  /**
   * DuckDB's CSV read buffer in bytes (default DuckDB's, 32 MB; also caps the line size). DuckDB
   * scans buffers in parallel; tests set a small one so that a small file crosses many buffers.
   */
  readonly csvBufferBytes?: number;
}

/** The absolute path of a source's file; relative paths start at the project folder. */
export function sourcePath(spec: DataSourceSpec, baseDir: string): string {
  return path.resolve(baseDir, spec.path);
}

function sourceLabel(spec: DataSourceSpec): string {
  return spec.name === undefined ? spec.path : `source '${spec.name}' (${spec.path})`;
}

/**
 * Checks that the file exists and is not empty, with coded errors saying what to do.
 */
function checkFile(file: string, spec: DataSourceSpec, baseDir: string): void {
  let size: number;
  try {
    const stat = statSync(file);
    if (!stat.isFile()) throw new Error('not a regular file');
    size = stat.size;
  } catch (cause) {
    throw new FerryError(
      'FERRY_DATA_UNREADABLE',
      `cannot read ${sourceLabel(spec)}: no file at ${file}; check the path (relative paths start at ${baseDir})`,
      { cause },
    );
  }
  if (size === 0) {
    throw new FerryError(
      'FERRY_DATA_EMPTY',
      `${sourceLabel(spec)} is an empty file; give a file with a header and at least one row`,
    );
  }
}

interface CsvDialect {
  readonly delimiter: string;
  readonly quote: string;
  readonly escape: string;
  readonly header: boolean;
  readonly encoding: string;
  readonly nulls: readonly string[];
}

function csvDialect(spec: Extract<DataSourceSpec, { type: 'csv' }>): CsvDialect {
  const o = spec.options ?? {};
  const encoding = (o.encoding as string | undefined) ?? 'utf-8';
  if (!(SUPPORTED_ENCODINGS as readonly string[]).includes(encoding)) {
    throw new FerryError(
      'FERRY_CONFIG_INVALID',
      `${sourceLabel(spec)}: encoding '${encoding}' is not supported; use ${SUPPORTED_ENCODINGS.join(', ')} (convert other files with iconv first)`,
    );
  }
  const tsv = path.extname(spec.path).toLowerCase() === '.tsv';
  return {
    delimiter: o.delimiter ?? (tsv ? '\t' : ','),
    quote: o.quote ?? '"',
    escape: o.escape ?? o.quote ?? '"',
    header: o.header ?? true,
    encoding,
    // An empty field is always missing; null_values adds markers such as NA.
    nulls: [...new Set(['', ...(o.null_values ?? [])])],
  };
}

/** Reads the first record of a CSV file (its header, or the first row) as fields. */
function firstRecord(file: string, dialect: CsvDialect): string[] {
  const fd = openSync(file, 'r');
  let bytes: Buffer;
  try {
    const buffer = Buffer.alloc(1 << 16);
    const n = readSync(fd, buffer, 0, buffer.length, 0);
    bytes = buffer.subarray(0, n);
  } finally {
    closeSync(fd);
  }
  let text: string;
  if (dialect.encoding === 'latin-1') text = new TextDecoder('latin1').decode(bytes);
  else if (dialect.encoding === 'utf-16') {
    const be = bytes[0] === 0xfe && bytes[1] === 0xff;
    text = new TextDecoder(be ? 'utf-16be' : 'utf-16le').decode(bytes);
  } else text = new TextDecoder('utf-8').decode(bytes);
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const fields: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i] as string;
    if (quoted) {
      if (ch === dialect.escape && text[i + 1] === dialect.quote) {
        field += dialect.quote;
        i++;
      } else if (ch === dialect.quote) quoted = false;
      else field += ch;
    } else if (ch === dialect.quote) quoted = true;
    else if (ch === dialect.delimiter) {
      fields.push(field);
      field = '';
    } else if (ch === '\n' || ch === '\r') break;
    else field += ch;
  }
  fields.push(field);
  return fields;
}

/**
 * The CSV's column names, from its header (or `column0`... without one). DuckDB would rename a
 * repeated name (`a, a` to `a, a_1`), giving a column a name nobody wrote: that is an error here.
 */
function csvColumns(file: string, spec: DataSourceSpec, dialect: CsvDialect): string[] {
  const record = firstRecord(file, dialect);
  if (!dialect.header) return record.map((_, i) => `column${i}`);
  const names = record.map((name, i) => (name.trim() === '' ? `column${i}` : name.trim()));
  const seen = new Set<string>();
  const repeated = new Set<string>();
  for (const name of names) (seen.has(name) ? repeated : seen).add(name);
  if (repeated.size > 0) {
    throw new FerryError(
      'FERRY_DATA_UNREADABLE',
      `${sourceLabel(spec)} has repeated column names in its header: ${[...repeated].map(quoteIdent).join(', ')}; give every column a distinct name`,
    );
  }
  const reserved = names.filter((n) => n.startsWith(HIDDEN_PREFIX));
  if (reserved.length > 0) {
    throw new FerryError(
      'FERRY_DATA_UNREADABLE',
      `${sourceLabel(spec)}: column names starting with '${HIDDEN_PREFIX}' are reserved for Ferry (${reserved.join(', ')}); rename them in the file`,
    );
  }
  return names;
}

/** DuckDB's `max_line_size`, given explicitly so that the repair of `csv-scan.ts` uses the same. */
const MAX_LINE_BYTES = 2_097_152;

/** A CSV scan: the file, its dialect and columns, and what each record starts with. */
interface CsvScan {
  readonly file: string;
  readonly dialect: CsvDialect;
  readonly names: readonly string[];
  /** Records start with the repair's row number and line range (a copy from `repairCsv`). */
  readonly numbered: boolean;
  readonly bufferBytes?: number | undefined;
}

/** Hidden columns of a repaired copy: each record's first and last line. */
const FIRST_LINE = `${HIDDEN_PREFIX}line`;
const LAST_LINE = `${HIDDEN_PREFIX}last_line`;

/** The `read_csv` of a scan, every column as text (see {@link sourceRelation}). */
function csvReader(scan: CsvScan, rejects?: SourceRelationOptions['rejects']): string {
  const { dialect } = scan;
  const numbers = scan.numbered ? [ROW, FIRST_LINE, LAST_LINE] : [];
  const columns = [
    ...numbers.map((n) => `${quoteString(n)}: 'BIGINT'`),
    ...scan.names.map((n) => `${quoteString(n)}: 'VARCHAR'`),
  ].join(', ');
  const size =
    scan.bufferBytes === undefined
      ? `max_line_size = ${MAX_LINE_BYTES}`
      : `max_line_size = ${Math.min(MAX_LINE_BYTES, scan.bufferBytes)}, buffer_size = ${scan.bufferBytes}`;
  const errors = rejects
    ? `store_rejects = true, rejects_table = ${quoteString(rejects.table)}, rejects_scan = ${quoteString(rejects.scans)}`
    : 'ignore_errors = true';
  return (
    `read_csv(${quoteString(scan.file)}, auto_detect = false, header = ${scan.numbered ? false : dialect.header}, ` +
    `delim = ${quoteString(dialect.delimiter)}, quote = ${quoteString(dialect.quote)}, ` +
    `escape = ${quoteString(dialect.escape)}, encoding = ${quoteString(dialect.encoding)}, ` +
    `nullstr = [${dialect.nulls.map(quoteString).join(', ')}], columns = {${columns}}, ${size}, ${errors})`
  );
}

/**
 * The DuckDB table function that reads a source with its options. CSV columns are all read as
 * text (typing is `openSource`'s work), so only a line's structure (column count, quoting,
 * encoding) can make DuckDB reject it; with `rejects`, such lines are recorded instead of
 * failing the scan. The scan has no row numbers: {@link openSource} gives them.
 * @example sourceRelation({ type: 'csv', path: 'tx.csv', options: { delimiter: ';' } }, '/proj')
 * // "read_csv('/proj/tx.csv', header = true, delim = ';', ...)"
 */
export function sourceRelation(
  spec: DataSourceSpec,
  baseDir: string,
  options: SourceRelationOptions = {},
): string {
  const file = sourcePath(spec, baseDir);
  checkFile(file, spec, baseDir);
  switch (spec.type) {
    case 'csv': {
      const dialect = csvDialect(spec);
      const names = csvColumns(file, spec, dialect);
      return csvReader({ file, dialect, names, numbered: false }, options.rejects);
    }
    case 'parquet':
      return `read_parquet(${quoteString(file)}, file_row_number = true)`;
    case 'jsonl':
      // Types from every line: from a sample, DuckDB would round a late 1.5 into an int column.
      return `read_json(${quoteString(file)}, format = 'newline_delimited', sample_size = -1)`;
  }
}

/**
 * Runs a `COPY ... TO` that must write rows in the order its scan reads them. DuckDB keeps that
 * order only when it plans the copy in batches (every operator below passing the scan's batch
 * index on); a hash join, say, would interleave the threads' rows. Checking the plan makes a
 * query that loses the order fail here rather than stage a shuffled file.
 */
async function copyInOrder(connection: DuckDBConnection, copy: string): Promise<void> {
  const plan = await connection.runAndReadAll(`EXPLAIN ${copy}`);
  const text = plan
    .getRowsJS()
    .map((r) => String(r[1]))
    .join('\n');
  if (!text.includes('BATCH_COPY_TO_FILE')) {
    throw new FerryError(
      'FERRY_INTERNAL',
      'staging a source would not keep its row order (DuckDB did not plan the copy in batches); this is a bug in the SQL Ferry generates: report it with the source and its schema',
    );
  }
  await connection.run(copy);
}

let stageCounter = 0;

/**
 * Reads a source once into a typed relation (see the module comment), staging text formats as
 * Parquet in `options.stageDir`. Errors: FERRY_DATA_UNREADABLE (missing file, malformed JSON,
 * repeated header names, every line malformed), FERRY_DATA_EMPTY (empty file; no data rows
 * unless `allowEmpty`), FERRY_CONFIG_INVALID (unknown encoding), FERRY_COLUMN_UNKNOWN (schema
 * names a missing column).
 * @example const src = await openSource(con, spec.sources[0], projectDir, { stageDir });
 */
export async function openSource(
  connection: DuckDBConnection,
  spec: DataSourceSpec,
  baseDir: string,
  options: OpenSourceOptions,
): Promise<OpenedSource> {
  const file = sourcePath(spec, baseDir);
  const name = spec.name ?? path.basename(spec.path);
  const id = `${process.pid}_${++stageCounter}`;
  const staged = path.join(options.stageDir, `source-${id}.parquet`);
  const declared = spec.schema ?? {};
  let malformed: MalformedLines = { count: 0, lines: 0, examples: [] };

  let typing: Typing;
  try {
    if (spec.type === 'csv') {
      const result = await stageCsv(connection, spec, baseDir, {
        staged,
        id,
        stageDir: options.stageDir,
        maxExamples: options.maxExamples ?? 20,
        bufferBytes: options.csvBufferBytes,
      });
      typing = result;
      malformed = result.malformed;
    } else {
      let scan: string;
      const reader = sourceRelation(spec, baseDir);
      if (spec.type === 'parquet') {
        scan = `(SELECT file_row_number + 1 AS ${col(ROW)}, * EXCLUDE (file_row_number) FROM ${reader})`;
      } else {
        // JSON is parsed once, into a Parquet copy in file order.
        await copyInOrder(
          connection,
          `COPY (SELECT * FROM ${reader}) TO ${quoteString(staged)} (FORMAT parquet)`,
        );
        scan = `(SELECT file_row_number + 1 AS ${col(ROW)}, * EXCLUDE (file_row_number) FROM read_parquet(${quoteString(staged)}, file_row_number = true))`;
      }
      const described = await connection.runAndReadAll(`DESCRIBE SELECT * FROM ${scan}`);
      let stored = described
        .getRowsJS()
        .map((r) => ({ name: String(r[0]), duck: String(r[1]) }))
        .filter((c) => c.name !== ROW);
      if (spec.type === 'jsonl') stored = await jsonIntegers(connection, reader, staged, stored);
      for (const column of Object.keys(declared)) {
        if (!stored.some((c) => c.name === column)) {
          throw new FerryError(
            'FERRY_COLUMN_UNKNOWN',
            `${sourceLabel(spec)}: schema names column '${column}', which the file does not have; columns: ${stored.map((c) => c.name).join(', ')}`,
          );
        }
      }
      typing = await typeNative(connection, scan, stored, declared);
    }
  } catch (error) {
    throw unreadable(spec, file, error);
  }

  if (typing.rows === 0 && (malformed.count > 0 || !options.allowEmpty)) {
    if (malformed.count > 0) {
      const first = malformed.examples[0];
      throw new FerryError(
        'FERRY_DATA_UNREADABLE',
        `${sourceLabel(spec)}: none of its ${malformed.lines} lines could be read` +
          (first ? ` (line ${first.line}: ${first.message})` : '') +
          '; check the delimiter, quote and encoding options',
      );
    }
    throw new FerryError(
      'FERRY_DATA_EMPTY',
      `${sourceLabel(spec)} has no data rows; give a file with a header and at least one row`,
    );
  }
  return {
    name,
    type: spec.type,
    path: file,
    relation: typing.relation,
    rows: typing.rows,
    malformed,
    conversionFailures: typing.failures,
    inferred: typing.relation.schema
      .filter((c) => declared[c.name] === undefined)
      .map((c) => c.name),
  };
}

function unreadable(spec: DataSourceSpec, file: string, error: unknown): FerryError {
  if (error instanceof FerryError) return error;
  const reason =
    error instanceof Error ? (error.message.split('\n')[0] ?? error.message) : String(error);
  const hint =
    spec.type === 'csv'
      ? 'check the delimiter, quote and encoding options'
      : spec.type === 'parquet'
        ? 'check that it is a complete Parquet file'
        : 'each line must be one complete JSON object';
  return new FerryError(
    'FERRY_DATA_UNREADABLE',
    `cannot read ${sourceLabel(spec)} (${file}) as ${spec.type}: ${reason}; ${hint}`,
    { cause: error },
  );
}

interface Typing {
  readonly relation: Relation;
  readonly failures: Record<string, number>;
  /** Rows counted while typing. */
  readonly rows: number;
}

/** Rows of the sample that picks each text column's candidate type. */
const SAMPLE_ROWS = 20_000;
const INFER_ORDER: readonly ColumnType[] = ['int', 'float', 'bool', 'timestamp'];
/** Text that is not missing: the conversions read empty or blank-only text as null. */
const NOT_BLANK = /[^ \t\n\r]/;
/** The next type to try when a candidate fails on a value outside the sample. */
const WIDER: Readonly<Record<ColumnType, ColumnType>> = {
  int: 'float',
  float: 'string',
  bool: 'string',
  timestamp: 'string',
  string: 'string',
};

/** Helper column name of column `i` for conversions that need one. */
function helperName(i: number): string {
  return `${HIDDEN_PREFIX}h${i}`;
}

function presentName(i: number): string {
  return `${HIDDEN_PREFIX}present${i}`;
}

function badName(i: number): string {
  return `${HIDDEN_PREFIX}bad${i}`;
}

/**
 * The three SELECT lists converting text columns to `types`, each over the one before: helper
 * expressions; the values, with whether the text was present; the values with a flag per column
 * saying a present value did not convert. Nesting keeps each conversion computed once.
 */
function textProjection(
  names: readonly string[],
  types: readonly ColumnType[],
): { helpers: string[]; values: string[]; flags: string[] } {
  const helpers: string[] = [];
  const values: string[] = [];
  const flags: string[] = [];
  names.forEach((name, i) => {
    const type = types[i] as ColumnType;
    if (type === 'string') {
      values.push(col(name));
      flags.push(col(name));
      return;
    }
    const c = conversionSql(col(name), 'string', type);
    if (c.helper !== null) helpers.push(`${c.helper} AS ${col(helperName(i))}`);
    values.push(`${c.value(col(helperName(i)))} AS ${col(name)}`);
    values.push(`${textSql(col(name))} IS NOT NULL AS ${col(presentName(i))}`);
    flags.push(col(name));
    flags.push(`${col(presentName(i))} AND ${col(name)} IS NULL AS ${col(badName(i))}`);
  });
  return { helpers, values, flags };
}

interface StageCsvOptions {
  readonly staged: string;
  readonly id: string;
  readonly stageDir: string;
  readonly maxExamples: number;
  readonly bufferBytes?: number | undefined;
}

/**
 * Stages a CSV typed (see the module comment): candidate types from a sample, a declared type
 * kept; the file is parsed into Parquet with each value converted, and a candidate that fails on
 * a value outside the sample is widened (int → float → string) and the file staged again. When
 * DuckDB rejected records and its account does not hold line for line, the file is repaired
 * (`csv-scan.ts`) and the numbered copy staged instead.
 */
async function stageCsv(
  connection: DuckDBConnection,
  spec: Extract<DataSourceSpec, { type: 'csv' }>,
  baseDir: string,
  options: StageCsvOptions,
): Promise<Typing & { malformed: MalformedLines }> {
  const plain = sourceRelation(spec, baseDir);
  const declared = spec.schema ?? {};
  const described = await connection.runAndReadAll(`DESCRIBE SELECT * FROM ${plain}`);
  const names = described.getRowsJS().map((r) => String(r[0]));
  for (const column of Object.keys(declared)) {
    if (!names.includes(column)) {
      throw new FerryError(
        'FERRY_COLUMN_UNKNOWN',
        `${sourceLabel(spec)}: schema names column '${column}', which the file does not have; columns: ${names.join(', ')}`,
      );
    }
  }
  const types = await sampleTypes(connection, plain, names, declared);
  const file = sourcePath(spec, baseDir);
  let scan: CsvScan = {
    file,
    dialect: csvDialect(spec),
    names,
    numbered: false,
    bufferBytes: options.bufferBytes,
  };
  let repaired: RepairResult | null = null;
  for (;;) {
    const pass = await stagePass(connection, scan, types, options);
    const flagged = names.map((_, i) => i).filter((i) => types[i] !== 'string');
    const counts = await resultToTable(
      await connection.run(
        `SELECT ${['count(*)', ...flagged.map((i) => `count(*) FILTER (WHERE ${col(badName(i))})`)].join(', ')} FROM read_parquet(${quoteString(options.staged)})`,
      ),
    );
    const failures: Record<string, number> = {};
    let widened = false;
    flagged.forEach((i, k) => {
      const bad = Number(counts.columns[k + 1]?.values[0] ?? 0);
      if (bad === 0) return;
      const name = names[i] as string;
      if (declared[name] !== undefined) failures[name] = bad;
      else {
        types[i] = WIDER[types[i] as ColumnType];
        widened = true;
      }
    });
    if (widened) continue;
    const rows = Number(counts.columns[0]?.values[0] ?? 0);
    const schema = names.map((name, i) => ({ name, type: types[i] as ColumnType }));
    const columns = names.map(col).join(', ');

    if (repaired !== null) {
      const malformed = repairedMalformed(repaired, pass.rejected, options.maxExamples);
      if (rows + pass.rejected.count !== repaired.kept) {
        throw new FerryError(
          'FERRY_INTERNAL',
          `${sourceLabel(spec)}: Ferry's repair of the file found ${repaired.kept} records to read, but DuckDB read ${rows} rows and rejected ${pass.rejected.count} records; this is a bug in the repair: report it with the file`,
        );
      }
      return {
        relation: {
          sql: `SELECT ${col(ROW)}, ${columns} FROM read_parquet(${quoteString(options.staged)})`,
          schema,
        },
        failures,
        rows,
        malformed,
      };
    }
    const breaks = pass.rejected.count === 0 ? [] : rowBreaks(scan, rows, pass.rejected);
    if (breaks === null) {
      // DuckDB's account does not hold line for line: read a repaired copy instead.
      ({ scan, repaired } = repair(scan, options));
      continue;
    }
    const k = 'file_row_number + 1';
    const row = breaks.length === 0 ? k : `${k} + ${offsetSql(k, breaks)}`;
    const header = scan.dialect.header ? 1 : 0;
    const examples = pass.rejected.examples.map((r): MalformedLine => ({
      line: r.line,
      lastLine: r.line,
      row: r.line - header,
      error: r.error,
      message: r.message,
      text: r.text,
    }));
    const parquet = `read_parquet(${quoteString(options.staged)}, file_row_number = true)`;
    return {
      relation: { sql: `SELECT ${row} AS ${col(ROW)}, ${columns} FROM ${parquet}`, schema },
      failures,
      rows,
      malformed: { count: pass.rejected.count, lines: pass.rejected.count, examples },
    };
  }
}

/** Records DuckDB rejected in one pass, as its rejects table has them. */
interface Rejected {
  /** Records (distinct lines). */
  readonly count: number;
  /** Whether a record's text runs across a line end. */
  readonly multiLine: boolean;
  /** Every record's line number (DuckDB's count), first first, when there are at most MAX_ROW_BREAKS. */
  readonly lines: readonly number[] | null;
  /** Of a numbered scan: physical lines of every record, from their numbers. */
  readonly span: number;
  /** The first records. */
  readonly examples: readonly {
    line: number;
    error: string;
    message: string;
    text: string | null;
  }[];
}

/**
 * Malformed records up to which row numbers come from DuckDB's rejects (one comparison per
 * level of a tree of this many); more, and the repaired copy numbers its rows itself.
 */
const MAX_ROW_BREAKS = 1024;

/** Stages `scan` converted to `types` into `options.staged`, with what DuckDB rejected. */
async function stagePass(
  connection: DuckDBConnection,
  scan: CsvScan,
  types: readonly ColumnType[],
  options: StageCsvOptions,
): Promise<{ rejected: Rejected }> {
  const rejects = { table: `ferry_rejects_${options.id}`, scans: `ferry_scans_${options.id}` };
  const reader = csvReader(scan, rejects);
  const p = textProjection(scan.names, types);
  // A numbered copy's line columns are copied too: a scan that stores rejects and reads only
  // some columns fails inside DuckDB (1.5) when a value of a later column is rejected.
  const row = scan.numbered ? [ROW, FIRST_LINE, LAST_LINE].map(col) : [];
  // No row number is computed here: a window would make the conversions run on one thread. The
  // copy keeps file order (checked), so its own row numbers follow the file's.
  const inner =
    p.helpers.length > 0 ? `(SELECT *, ${p.helpers.join(', ')} FROM ${reader})` : reader;
  const converted = `(SELECT ${[...row, ...p.values].join(', ')} FROM ${inner})`;
  try {
    await copyInOrder(
      connection,
      `COPY (SELECT ${[...row, ...p.flags].join(', ')} FROM ${converted}) TO ${quoteString(options.staged)} (FORMAT parquet)`,
    );
    return { rejected: await rejectedRecords(connection, rejects.table, scan, options) };
  } finally {
    await connection.run(`DROP TABLE IF EXISTS temp.${quoteIdent(rejects.table)}`);
    await connection.run(`DROP TABLE IF EXISTS temp.${quoteIdent(rejects.scans)}`);
  }
}

/** A rejected record's text without the line ends DuckDB puts before it in some files. */
const REJECT_TEXT = `ltrim(any_value(csv_line), chr(13) || chr(10))`;

/** What DuckDB recorded in `table` (see {@link Rejected}). */
async function rejectedRecords(
  connection: DuckDBConnection,
  table: string,
  scan: CsvScan,
  options: StageCsvOptions,
): Promise<Rejected> {
  const from = `temp.${quoteIdent(table)}`;
  // A numbered record starts with its row, first and last line (see repairCsv).
  const numbers = `string_split(text, ${quoteString(scan.dialect.delimiter)})`;
  const span = scan.numbered
    ? `sum(coalesce(TRY_CAST(${numbers}[3] AS BIGINT) - TRY_CAST(${numbers}[2] AS BIGINT) + 1, 1))`
    : 'count(*)';
  const summary = await resultToTable(
    await connection.run(
      `SELECT count(*), coalesce(bool_or(contains(text, chr(10)) OR contains(text, chr(13))), false), ${span} ` +
        `FROM (SELECT ${REJECT_TEXT} AS text FROM ${from} GROUP BY line)`,
    ),
  );
  const count = Number(summary.columns[0]?.values[0] ?? 0);
  if (count === 0) return { count, multiLine: false, lines: [], span: 0, examples: [] };
  let lines: number[] | null = null;
  if (count <= MAX_ROW_BREAKS) {
    const all = await resultToTable(
      await connection.run(`SELECT DISTINCT line FROM ${from} ORDER BY line`),
    );
    lines = (all.columns[0]?.values ?? []).map(Number);
  }
  const rows = await resultToTable(
    await connection.run(
      `SELECT line, any_value(error_type), any_value(error_message), ${REJECT_TEXT} ` +
        `FROM ${from} GROUP BY line ORDER BY line LIMIT ${options.maxExamples}`,
    ),
  );
  const [line, error, message, text] = rows.columns;
  const examples: Rejected['examples'][number][] = [];
  for (let i = 0; i < rows.rowCount; i++) {
    const t = text?.values[i];
    examples.push({
      line: Number(line?.values[i]),
      error: String(error?.values[i] ?? ''),
      message: String(message?.values[i] ?? ''),
      text: t === null || t === undefined ? null : String(t),
    });
  }
  return {
    count,
    multiLine: summary.columns[1]?.values[0] === true,
    lines,
    span: Number(summary.columns[2]?.values[0] ?? count),
    examples,
  };
}

/**
 * For a scan of the file itself with rejected records: the number of rows read before each
 * rejected record, first first, when DuckDB's account holds line for line (see the module
 * comment); null when it does not, and the file has to be repaired. Row k of the staged copy is
 * then the file's row k + (the number of breaks below k).
 */
function rowBreaks(scan: CsvScan, rows: number, rejected: Rejected): number[] | null {
  // Line ends can only be counted in the file's bytes for encodings where they are one byte.
  if (scan.dialect.encoding === 'utf-16') return null;
  if (rejected.multiLine || rejected.lines === null) return null;
  const header = scan.dialect.header ? 1 : 0;
  const lines = rejected.lines;
  if (countLines(scan.file) !== header + rows + lines.length) return null;
  // Every line is one record, so DuckDB's numbers are line numbers: line L is row L - header.
  const breaks = lines.map((line, m) => line - header - 1 - m);
  const valid = breaks.every(
    (b, m) => b >= 0 && b <= rows && (m === 0 || b >= (breaks[m - 1] as number)),
  );
  return valid ? breaks : null;
}

/**
 * SQL for the number of `breaks` (sorted) below the row number `k`: a binary search written as
 * nested CASEs, so each row takes one comparison per level.
 * @example offsetSql('k', [1, 1, 5]) // "CASE WHEN k > 1 THEN CASE WHEN k > 5 THEN 3 ELSE 2 END ELSE 0 END"
 */
export function offsetSql(k: string, breaks: readonly number[]): string {
  const values: number[] = [];
  const below: number[] = [];
  for (const b of breaks) {
    if (values.at(-1) === b) below[below.length - 1] = (below.at(-1) ?? 0) + 1;
    else {
      values.push(b);
      below.push((below.at(-1) ?? 0) + 1);
    }
  }
  // The answer is below[j] for the last j with k > values[j], or 0 (j = -1).
  const pick = (lo: number, hi: number): string => {
    if (lo === hi) return String(lo < 0 ? 0 : below[lo]);
    const mid = Math.floor((lo + hi + 1) / 2);
    return `CASE WHEN ${k} > ${values[mid]} THEN ${pick(mid, hi)} ELSE ${pick(lo, mid - 1)} END`;
  };
  return pick(-1, values.length - 1);
}

/**
 * Repairs the scan's file into the stage folder (UTF-16 is made UTF-8 first, as the repair reads
 * bytes) and gives the scan of the numbered copy.
 */
function repair(
  scan: CsvScan,
  options: StageCsvOptions,
): { scan: CsvScan; repaired: RepairResult } {
  let file = scan.file;
  let dialect = scan.dialect;
  if (dialect.encoding === 'utf-16') {
    file = path.join(options.stageDir, `source-${options.id}.utf8.csv`);
    toUtf8(scan.file, file);
    dialect = { ...dialect, encoding: 'utf-8' };
  }
  const encoding = dialect.encoding === 'latin-1' ? 'latin1' : 'utf8';
  const bytes = (text: string): Buffer => Buffer.from(text, encoding);
  const grammar: CsvGrammar = {
    delimiter: bytes(dialect.delimiter),
    quote: dialect.quote === '' ? null : bytes(dialect.quote),
    escape: dialect.escape === '' ? null : bytes(dialect.escape),
    header: dialect.header,
    columns: scan.names.length,
    maxRecordBytes: Math.min(MAX_LINE_BYTES, scan.bufferBytes ?? MAX_LINE_BYTES),
    encoding,
  };
  const out = path.join(options.stageDir, `source-${options.id}.repaired.csv`);
  const repaired = repairCsv(file, grammar, out, options.maxExamples);
  return { scan: { ...scan, file: out, dialect, numbered: true }, repaired };
}

/** The malformed records of a repaired read: the lines it left out and what DuckDB rejected. */
function repairedMalformed(
  repaired: RepairResult,
  rejected: Rejected,
  maxExamples: number,
): MalformedLines {
  const examples: MalformedLine[] = repaired.left.examples.map((l) => ({
    line: l.line,
    lastLine: l.line,
    row: l.row,
    error: 'UNCLOSED QUOTE',
    message: `a quote opened on line ${l.line} is not closed where a field can end; the line was left out and reading went on at line ${l.line + 1}`,
    text: l.text,
  }));
  for (const r of rejected.examples) {
    // The copy's record starts with its row, first and last line and the delimiter after each.
    const match = /^(\d+)\D(\d+)\D(\d+)\D/.exec(r.text ?? '');
    const [row, first, last] = match ? match.slice(1).map(Number) : [0, 0, 0];
    examples.push({
      line: first ?? 0,
      lastLine: last ?? 0,
      row: row ?? 0,
      error: r.error,
      // DuckDB counted the three numbers as columns.
      message: r.message.replace(
        /(Expected Number of Columns: )(\d+)( Found: )(\d+)/,
        (_, a: string, expected: string, b: string, found: string) =>
          `${a}${Number(expected) - 3}${b}${Number(found) - 3}`,
      ),
      text: match && r.text !== null ? r.text.slice(match[0].length) : r.text,
    });
  }
  examples.sort((a, b) => a.line - b.line);
  return {
    count: repaired.left.count + rejected.count,
    lines: repaired.left.count + rejected.span,
    examples: examples.slice(0, maxExamples),
  };
}

/**
 * Per text column, the declared type or the first of int, float, bool, timestamp that every
 * non-blank value of a sample converts to. The sample is typed in JavaScript, by the twins of the
 * SQL conversions (the same grammars; the parity test holds them to the same answers), which stop
 * at a column's first misfit; in SQL every candidate cost a conversion of every sampled value.
 */
async function sampleTypes(
  connection: DuckDBConnection,
  scan: string,
  names: readonly string[],
  declared: Readonly<Record<string, ColumnType>>,
): Promise<ColumnType[]> {
  const open = names.filter((n) => declared[n] === undefined);
  const chosen = new Map<string, ColumnType>();
  if (open.length > 0) {
    const sample = await resultToTable(
      await connection.run(`SELECT ${open.map(col).join(', ')} FROM ${scan} LIMIT ${SAMPLE_ROWS}`),
    );
    const converters = INFER_ORDER.map((type) => ({
      type,
      convert: conversionFunction('string', type),
    }));
    open.forEach((name, i) => {
      const present = (sample.columns[i]?.values ?? []).filter(
        (v) => typeof v === 'string' && NOT_BLANK.test(v),
      );
      const fit = converters.find(
        (c) => present.length > 0 && present.every((v) => c.convert(v) !== null),
      );
      chosen.set(name, fit?.type ?? 'string');
    });
  }
  return names.map((n) => declared[n] ?? chosen.get(n) ?? 'string');
}

/**
 * Types columns of a typed format (Parquet, JSON): each DuckDB type maps onto its Ferry type and
 * is normalised to the one stored type per Ferry type; non-finite floats and integers beyond
 * 2^53 read as null (and are counted), as do values that do not convert to a declared type.
 */
async function typeNative(
  connection: DuckDBConnection,
  scan: string,
  stored: readonly { name: string; duck: string }[],
  declared: Readonly<Record<string, ColumnType>>,
): Promise<Typing> {
  const schema: ColumnSchema[] = [];
  const projections: string[] = [];
  const helpers: string[] = [];
  const checks: { name: string; raw: string; value: string }[] = [];
  stored.forEach((s, i) => {
    const natural = naturalType(s.duck);
    const normal = normalise(col(s.name), s.duck, natural);
    const want = declared[s.name] ?? natural;
    let value = normal;
    if (want !== natural) {
      const c = conversionSql(`(${normal})`, natural, want);
      if (c.helper !== null) helpers.push(`${c.helper} AS ${col(helperName(i))}`);
      value = c.value(col(helperName(i)));
    }
    schema.push({ name: s.name, type: want });
    projections.push(`${value} AS ${col(s.name)}`);
    checks.push({ name: s.name, raw: col(s.name), value });
  });
  const from = helpers.length > 0 ? `(SELECT *, ${helpers.join(', ')} FROM ${scan})` : scan;
  const counts = await resultToTable(
    await connection.run(
      `SELECT ${['count(*)', ...checks.map((c) => `count(*) FILTER (WHERE ${c.raw} IS NOT NULL AND (${c.value}) IS NULL)`)].join(', ')} FROM ${from}`,
    ),
  );
  const failures: Record<string, number> = {};
  checks.forEach((c, i) => {
    const n = Number(counts.columns[i + 1]?.values[0] ?? 0);
    if (n > 0) failures[c.name] = n;
  });
  return {
    relation: { sql: `SELECT ${col(ROW)}, ${projections.join(', ')} FROM ${from}`, schema },
    failures,
    rows: Number(counts.columns[0]?.values[0] ?? 0),
  };
}

/**
 * Parquet has no 128-bit integer, so the Parquet copy of JSON lines holds a HUGEINT column
 * (DuckDB's type for JSON integers of both signs) as DOUBLE. Such a column gets its JSON type
 * back here, and normalise() reads the doubles as ints: exact up to 2^53, larger values null and
 * counted. Asking the JSON reader costs a pass over the file, so it is asked only when a DOUBLE
 * column of the copy holds whole numbers only.
 */
async function jsonIntegers(
  connection: DuckDBConnection,
  reader: string,
  staged: string,
  stored: readonly { name: string; duck: string }[],
): Promise<{ name: string; duck: string }[]> {
  const doubles = stored.filter((c) => c.duck === 'DOUBLE');
  if (doubles.length === 0) return [...stored];
  const whole = await resultToTable(
    await connection.run(
      `SELECT ${doubles.map((c) => `bool_and(${col(c.name)} = trunc(${col(c.name)}))`).join(', ')} FROM read_parquet(${quoteString(staged)})`,
    ),
  );
  if (!whole.columns.some((c) => c.values[0] === true)) return [...stored];
  const json = await connection.runAndReadAll(`DESCRIBE SELECT * FROM ${reader}`);
  const types = new Map(json.getRowsJS().map((r) => [String(r[0]), String(r[1])]));
  return stored.map((c) => {
    const type = types.get(c.name);
    return c.duck === 'DOUBLE' && type !== undefined && /^U?HUGEINT$/i.test(type)
      ? { name: c.name, duck: type }
      : c;
  });
}

/** The Ferry type of a DuckDB type name, as `DESCRIBE` prints it. */
function naturalType(duck: string): ColumnType {
  const base = duck.replace(/\(.*$/, '').trim().toUpperCase();
  const ids: Record<string, ColumnType> = {
    DOUBLE: 'float',
    FLOAT: 'float',
    DECIMAL: 'float',
    TINYINT: 'int',
    SMALLINT: 'int',
    INTEGER: 'int',
    BIGINT: 'int',
    HUGEINT: 'int',
    UTINYINT: 'int',
    USMALLINT: 'int',
    UINTEGER: 'int',
    UBIGINT: 'int',
    UHUGEINT: 'int',
    BOOLEAN: 'bool',
    DATE: 'timestamp',
    TIMESTAMP: 'timestamp',
    TIMESTAMP_S: 'timestamp',
    TIMESTAMP_MS: 'timestamp',
    TIMESTAMP_NS: 'timestamp',
    'TIMESTAMP WITH TIME ZONE': 'timestamp',
    VARCHAR: 'string',
  };
  return ids[base] ?? 'string';
}

/** A column of DuckDB type `duck` as the stored type of Ferry type `type`. */
function normalise(column: string, duck: string, type: ColumnType): string {
  const upper = duck.toUpperCase();
  // Guards go inside arguments: DuckDB may compute a CASE branch for every row.
  switch (type) {
    case 'float':
      return `CASE WHEN isfinite(CAST(${column} AS DOUBLE)) THEN CAST(${column} AS DOUBLE) END`;
    case 'int':
      return `TRY_CAST(CASE WHEN abs(TRY_CAST(${column} AS HUGEINT)) <= ${MAX_SAFE} THEN ${column} END AS BIGINT)`;
    case 'timestamp':
      return upper === 'TIMESTAMP WITH TIME ZONE'
        ? `timezone('UTC', ${column})`
        : `CAST(${column} AS TIMESTAMP)`;
    case 'bool':
      return column;
    case 'string':
      return upper === 'VARCHAR' ? column : `CAST(${column} AS VARCHAR)`;
  }
}
