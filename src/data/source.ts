/**
 * Reading a configured data source (CSV, Parquet, JSON lines) as a relation for preparation.
 *
 * {@link sourceRelation} is the DuckDB table function that scans a source with its read options.
 * {@link openSource} reads the source once, in bounded memory, into a Parquet file in a staging
 * folder (text formats only: Parquet is read in place) and gives back a typed relation over it,
 * with what the read found: the data rows, the malformed lines (line number and reason, from
 * DuckDB's rejects table), and per column the values that did not convert to the column's type.
 *
 * Why CSV is scanned as text and typed afterwards: DuckDB rejects a whole line when one value
 * does not fit the type it guessed from a sample, and whether it does depends on which columns a
 * query happens to read. Scanning every column as text makes the set of rows depend only on the
 * file's structure; types are then inferred from every value (not a sample) with the conversion
 * grammars of `prep/convert.ts`, so a CSV value reads the same in batch and at request time, and
 * a value that does not fit a declared type becomes null and is counted, never dropped silently.
 */
import { openSync, readSync, closeSync, statSync } from 'node:fs';
import path from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import type { DataSourceSpec } from '../config/data-schema.js';
import type { ColumnSchema, ColumnType } from '../core/table.js';
import { FerryError } from '../errors/index.js';
import { quoteIdent, quoteString, resultToTable } from './duckdb.js';
import { conversionFunction, conversionSql, textSql } from './prep/convert.js';
import { col, HIDDEN_PREFIX, MAX_SAFE, ROW, type Relation } from './prep/relation.js';

export const SUPPORTED_ENCODINGS = ['utf-8', 'utf-16', 'latin-1'] as const;

export interface SourceRelationOptions {
  /** Record malformed CSV lines in these temporary tables of the connection (DuckDB's rejects). */
  readonly rejects?: { readonly table: string; readonly scans: string };
}

/** A CSV line DuckDB could not read. */
export interface MalformedLine {
  /** 1-based line number in the file (the header is line 1). */
  readonly line: number;
  /** DuckDB's kind of error, e.g. `TOO MANY COLUMNS`, `INVALID ENCODING`. */
  readonly error: string;
  readonly message: string;
  /** The raw line, when DuckDB kept it. */
  readonly text: string | null;
}

export interface OpenedSource {
  readonly name: string;
  readonly type: DataSourceSpec['type'];
  /** Absolute path of the file. */
  readonly path: string;
  /** Typed relation over the data rows, with the hidden row number column. */
  readonly relation: Relation;
  /** Rows read (malformed lines excluded). */
  readonly rows: number;
  readonly malformed: { readonly count: number; readonly examples: readonly MalformedLine[] };
  /** Per column, non-missing values that did not convert to its type and were read as null. */
  readonly conversionFailures: Readonly<Record<string, number>>;
  /** Column types that were inferred (not declared under `schema:`). */
  readonly inferred: readonly string[];
}

export interface OpenSourceOptions {
  /** A folder for the staged copy of text sources; the caller removes it. */
  readonly stageDir: string;
  /** Malformed lines to keep as examples (default 20). */
  readonly maxExamples?: number;
  /** Accept a source with a header and no data rows (else FERRY_DATA_EMPTY). */
  readonly allowEmpty?: boolean;
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

/**
 * The DuckDB table function that reads a source with its options. CSV columns are all read as
 * text (typing is `openSource`'s work), so only a line's structure (column count, quoting,
 * encoding) can make DuckDB reject it; with `rejects`, such lines are recorded instead of
 * failing the scan (see {@link malformedLines}).
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
      const columns = names.map((n) => `${quoteString(n)}: 'VARCHAR'`).join(', ');
      const rejects = options.rejects
        ? `store_rejects = true, rejects_table = ${quoteString(options.rejects.table)}, rejects_scan = ${quoteString(options.rejects.scans)}`
        : 'ignore_errors = true';
      return (
        `read_csv(${quoteString(file)}, auto_detect = false, header = ${dialect.header}, ` +
        `delim = ${quoteString(dialect.delimiter)}, quote = ${quoteString(dialect.quote)}, ` +
        `escape = ${quoteString(dialect.escape)}, encoding = ${quoteString(dialect.encoding)}, ` +
        `nullstr = [${dialect.nulls.map(quoteString).join(', ')}], columns = {${columns}}, ${rejects})`
      );
    }
    case 'parquet':
      return `read_parquet(${quoteString(file)}, file_row_number = true)`;
    case 'jsonl':
      // Types from every line: from a sample, DuckDB would round a late 1.5 into an int column.
      return `read_json(${quoteString(file)}, format = 'newline_delimited', sample_size = -1)`;
  }
}

/**
 * The malformed lines a scan with `rejects` recorded, first lines first, and how many there are.
 */
export async function malformedLines(
  connection: DuckDBConnection,
  rejectsTable: string,
  limit: number,
): Promise<{ count: number; examples: MalformedLine[] }> {
  const table = quoteIdent(rejectsTable);
  const counted = await resultToTable(
    await connection.run(`SELECT count(DISTINCT line) AS n FROM temp.${table}`),
  );
  const count = Number(counted.columns[0]?.values[0] ?? 0);
  const rows = await resultToTable(
    await connection.run(
      `SELECT line, any_value(error_type) AS error, any_value(error_message) AS message, any_value(csv_line) AS text ` +
        `FROM temp.${table} GROUP BY line ORDER BY line LIMIT ${limit}`,
    ),
  );
  const [line, error, message, text] = rows.columns;
  const examples: MalformedLine[] = [];
  for (let i = 0; i < rows.rowCount; i++) {
    examples.push({
      line: Number(line?.values[i]),
      error: String(error?.values[i] ?? ''),
      message: String(message?.values[i] ?? ''),
      text:
        text?.values[i] === null || text?.values[i] === undefined ? null : String(text.values[i]),
    });
  }
  return { count, examples };
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
  let malformed: { count: number; examples: MalformedLine[] } = { count: 0, examples: [] };

  let typing: Typing;
  try {
    if (spec.type === 'csv') {
      const result = await stageCsv(
        connection,
        spec,
        baseDir,
        staged,
        id,
        options.maxExamples ?? 20,
      );
      typing = result;
      malformed = result.malformed;
    } else {
      let scan: string;
      const reader = sourceRelation(spec, baseDir);
      if (spec.type === 'parquet') {
        scan = `(SELECT file_row_number + 1 AS ${col(ROW)}, * EXCLUDE (file_row_number) FROM ${reader})`;
      } else {
        // JSON is parsed once, into a Parquet copy in file order.
        await connection.run(
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
        `${sourceLabel(spec)}: none of its ${malformed.count} lines could be read` +
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

/**
 * Stages a CSV typed (see the module comment): candidate types from a sample, a declared type
 * kept; the file is parsed into Parquet with each value converted, and a candidate that fails on
 * a value outside the sample is widened (int → float → string) and the file staged again.
 */
async function stageCsv(
  connection: DuckDBConnection,
  spec: DataSourceSpec,
  baseDir: string,
  staged: string,
  id: string,
  maxExamples: number,
): Promise<Typing & { malformed: { count: number; examples: MalformedLine[] } }> {
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
  for (;;) {
    const rejects = { table: `ferry_rejects_${id}`, scans: `ferry_scans_${id}` };
    const reader = sourceRelation(spec, baseDir, { rejects });
    const p = textProjection(names, types);
    // No row number here: a window would make the conversions run on one thread. The Parquet
    // copy keeps file order, so its own row numbers are the file's.
    const inner =
      p.helpers.length > 0 ? `(SELECT *, ${p.helpers.join(', ')} FROM ${reader})` : reader;
    let malformed: { count: number; examples: MalformedLine[] };
    try {
      const converted = `(SELECT ${p.values.join(', ')} FROM ${inner})`;
      await connection.run(
        `COPY (SELECT ${p.flags.join(', ')} FROM ${converted}) TO ${quoteString(staged)} (FORMAT parquet)`,
      );
      malformed = await malformedLines(connection, rejects.table, maxExamples);
    } finally {
      await connection.run(`DROP TABLE IF EXISTS temp.${quoteIdent(rejects.table)}`);
      await connection.run(`DROP TABLE IF EXISTS temp.${quoteIdent(rejects.scans)}`);
    }
    const flagged = names.map((_, i) => i).filter((i) => types[i] !== 'string');
    const counts = await resultToTable(
      await connection.run(
        `SELECT ${['count(*)', ...flagged.map((i) => `count(*) FILTER (WHERE ${col(badName(i))})`)].join(', ')} FROM read_parquet(${quoteString(staged)})`,
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
    const schema = names.map((name, i) => ({ name, type: types[i] as ColumnType }));
    return {
      relation: {
        sql: `SELECT file_row_number + 1 AS ${col(ROW)}, ${names.map(col).join(', ')} FROM read_parquet(${quoteString(staged)}, file_row_number = true)`,
        schema,
      },
      failures,
      rows: Number(counts.columns[0]?.values[0] ?? 0),
      malformed,
    };
  }
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
