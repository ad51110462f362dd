/**
 * The physical lines of a CSV file, for the source reader (`source.ts`) when DuckDB's account of
 * a file cannot be taken line for line.
 *
 * DuckDB reads a quoted field across line ends until the next quote, as RFC 4180 allows. A stray
 * quote (`"3,broken`) therefore swallows the lines after it into one malformed record, and in a
 * parallel scan how much it swallows depends on where the scan's chunks start. Two tools here:
 * - {@link countLines}: the file's physical lines, at memchr speed, to check that the rows and
 *   the rejected records DuckDB reports account for every line;
 * - {@link repairCsv}: one sequential pass with DuckDB's quoting rules that finds every record,
 *   leaves out the first line of a multi-line record that does not parse (its quote is not
 *   closed where a field can end) and goes on at the next line, losing only that line, and
 *   writes the kept records, each prefixed with its row number and line range, to a copy that
 *   DuckDB reads instead of the file;
 * - {@link toUtf8}: a UTF-16 file as UTF-8, as the repair reads bytes where a line end is one.
 * All three stream the file in chunks: memory stays bounded by the longest record.
 */
import { closeSync, fstatSync, openSync, readSync, writeSync } from 'node:fs';

const LF = 0x0a;
const CR = 0x0d;
const SPACE = 0x20;
/** Bytes read at a time. */
const CHUNK = 1 << 22;

/**
 * Physical lines of a file up to its last byte that is not a line end: `\n`, `\r\n` and a lone
 * `\r` each end a line; blank lines at the end are not counted.
 * @example countLines('/data/tx.csv') // 1000001 for a header and a million rows
 */
export function countLines(file: string): number {
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    // One byte more than a chunk, to see what follows a \r at its end.
    const buffer = Buffer.allocUnsafe(CHUNK + 1);
    let before = 0;
    let lines = 0;
    for (let at = 0; at < size;) {
      const n = readSync(fd, buffer, 0, CHUNK + 1, at);
      if (n <= 0) break;
      const chunk = Math.min(n, CHUNK);
      let last = chunk - 1;
      while (last >= 0 && (buffer[last] === LF || buffer[last] === CR)) last--;
      let ends = 0;
      let endsBeforeLast = 0;
      for (let i = buffer.indexOf(LF); i !== -1 && i < chunk; i = buffer.indexOf(LF, i + 1)) {
        ends++;
        if (i < last) endsBeforeLast++;
      }
      // A lone \r ends a line too; a \r\n is counted at its \n.
      for (let i = buffer.indexOf(CR); i !== -1 && i < chunk; i = buffer.indexOf(CR, i + 1)) {
        if (i + 1 < n && buffer[i + 1] === LF) continue;
        ends++;
        if (i < last) endsBeforeLast++;
      }
      if (last >= 0) lines = before + endsBeforeLast + 1;
      before += ends;
      at += chunk;
    }
    return lines;
  } finally {
    closeSync(fd);
  }
}

/** The quoting rules of a CSV dialect, as bytes of the file's encoding (UTF-8 or Latin-1). */
export interface CsvGrammar {
  readonly delimiter: Uint8Array;
  /** The quote; null when fields are never quoted. */
  readonly quote: Uint8Array | null;
  /** The escape inside quotes; the quote itself when quotes are doubled. */
  readonly escape: Uint8Array | null;
  readonly header: boolean;
  /** Columns a record must have. */
  readonly columns: number;
  /** DuckDB's `max_line_size`: a quoted field running longer than this is not closed. */
  readonly maxRecordBytes: number;
  /** How to show a line's text. */
  readonly encoding: 'utf8' | 'latin1';
}

/** A line left out by {@link repairCsv}: a quote opened on it is not closed where a field can end. */
export interface StrayQuoteLine {
  /** 1-based physical line (the header is line 1). */
  readonly line: number;
  /** The data row the line would have been. */
  readonly row: number;
  /** The line's text, cut at 1,000 characters. */
  readonly text: string;
}

export interface RepairResult {
  /** Records written to the copy: every data record but the lines left out. */
  readonly kept: number;
  /** Lines left out: how many, and the first ones. */
  readonly left: { readonly count: number; readonly examples: readonly StrayQuoteLine[] };
}

/**
 * Copies `file` to `out` record by record, leaving out each line that opens a multi-line record
 * that does not parse (see the module comment), and prefixing every kept record with
 * `<row><delimiter><first line><delimiter><last line><delimiter>`; the header is not copied.
 * Rows are numbered from 1 over the data records in file order, the left-out lines included, so
 * they are the numbers the file's rows have; a blank line is no record (except in a file of one
 * column), as in DuckDB. Records follow DuckDB's rules: a quote opens a quoted field only at a
 * field's start (after spaces); inside, the escape keeps the next character; after the closing
 * quote come spaces and the delimiter or the line end, or, when quotes are doubled, another quote
 * that goes on with the field; other text there makes the record malformed and the rest of its
 * field plain text; and a record may end with one delimiter too many.
 * @example repairCsv('/data/tx.csv', grammar, '/stage/tx.repaired.csv', 20)
 */
export function repairCsv(
  file: string,
  grammar: CsvGrammar,
  out: string,
  maxExamples: number,
): RepairResult {
  const input = openSync(file, 'r');
  try {
    const output = openSync(out, 'w');
    try {
      return new Repair(input, output, grammar, maxExamples).run();
    } finally {
      closeSync(output);
    }
  } finally {
    closeSync(input);
  }
}

/** A record found in the window. */
interface Found {
  /** Window index just past its content (before its line end). */
  readonly contentEnd: number;
  /** Window index just past its line end. */
  readonly end: number;
  /** Line ends inside its quoted fields. */
  readonly inner: number;
  /**
   * Whether DuckDB would refuse its shape: a quote not closed where a field can end, or a wrong
   * column count.
   */
  readonly bad: boolean;
  /** Whether it may go on past the window (which then has to move on or grow). */
  readonly more: boolean;
}

const UTF8_BOM = [0xef, 0xbb, 0xbf];

class Repair {
  readonly #in: number;
  readonly #out: number;
  readonly #g: CsvGrammar;
  readonly #maxExamples: number;
  readonly #size: number;
  /** The part of the file being read: its bytes from offset #base, #length of them. */
  #window: Buffer = Buffer.allocUnsafe(CHUNK);
  #base = 0;
  #length = 0;
  /** The first quote and \r at or after the last record's start; -1: none, -2: not looked for. */
  #nextQuote = -2;
  #nextCr = -2;
  #output: Buffer = Buffer.allocUnsafe(1 << 20);
  #used = 0;
  readonly #examples: StrayQuoteLine[] = [];
  #left = 0;
  /** First bytes of the quote and the escape (-1 for none), and whether quotes are doubled. */
  readonly #q0: number;
  readonly #e0: number;
  readonly #doubled: boolean;

  constructor(input: number, output: number, grammar: CsvGrammar, maxExamples: number) {
    this.#in = input;
    this.#out = output;
    this.#g = grammar;
    const { quote, escape } = grammar;
    this.#q0 = quote === null ? -1 : (quote[0] as number);
    this.#e0 = escape === null ? -1 : (escape[0] as number);
    this.#doubled = quote !== null && escape !== null && Buffer.compare(quote, escape) === 0;
    this.#maxExamples = maxExamples;
    this.#size = fstatSync(input).size;
  }

  run(): RepairResult {
    this.#load(0);
    let pos = 0;
    if (this.#g.encoding === 'utf8' && UTF8_BOM.every((b, i) => this.#window[i] === b)) pos = 3;
    let line = 1;
    let row = 0;
    let header = this.#g.header;
    for (;;) {
      if (!this.#atEnd() && this.#length - pos < CHUNK / 2) pos = this.#moveTo(pos);
      if (pos >= this.#length) break;
      let found = this.#find(pos);
      while (found.more) {
        pos = pos > 0 ? this.#moveTo(pos) : this.#grow();
        found = this.#find(pos);
      }
      if (header) {
        header = false;
      } else if (found.contentEnd === pos && this.#g.columns > 1) {
        // A blank line: DuckDB skips it.
      } else if (found.bad && found.inner > 0) {
        // A stray quote: leave out this line alone and go on with the next.
        row++;
        const lineEnd = this.#lineEnd(pos);
        this.#leave(line, row, pos, lineEnd);
        pos = lineEnd + (this.#window[lineEnd] === CR && this.#window[lineEnd + 1] === LF ? 2 : 1);
        line++;
        continue;
      } else {
        row++;
        this.#emit(row, line, line + found.inner, pos, found.end);
      }
      line += 1 + found.inner;
      pos = found.end;
    }
    this.#flush();
    return {
      kept: row - this.#left,
      left: { count: this.#left, examples: this.#examples },
    };
  }

  #atEnd(): boolean {
    return this.#base + this.#length >= this.#size;
  }

  #load(from: number): void {
    this.#base = from;
    this.#length = Math.max(0, readSync(this.#in, this.#window, 0, this.#window.length, from));
    this.#nextQuote = -2;
    this.#nextCr = -2;
  }

  /** Starts the window at window index `pos`; returns `pos`'s index in the new window (0). */
  #moveTo(pos: number): number {
    this.#load(this.#base + pos);
    return 0;
  }

  /** Doubles the window (one record fills it), reading on; the record still starts at 0. */
  #grow(): number {
    const bigger = Buffer.allocUnsafe(this.#window.length * 2);
    this.#window.copy(bigger, 0, 0, this.#length);
    this.#window = bigger;
    const at = this.#base + this.#length;
    this.#length += Math.max(
      0,
      readSync(this.#in, bigger, this.#length, bigger.length - this.#length, at),
    );
    this.#nextQuote = -2;
    this.#nextCr = -2;
    return 0;
  }

  /**
   * The record at window index `start`. One without a quote or a \r ends at the first \n (the
   * common case, found at memchr speed); any other is read byte by byte.
   */
  #find(start: number): Found {
    const w = this.#window;
    const n = this.#length;
    const quote = this.#g.quote;
    if (this.#nextQuote === -2 || (this.#nextQuote !== -1 && this.#nextQuote < start)) {
      this.#nextQuote = quote === null ? -1 : indexIn(w, quote[0] as number, start, n);
    }
    if (this.#nextCr === -2 || (this.#nextCr !== -1 && this.#nextCr < start)) {
      this.#nextCr = indexIn(w, CR, start, n);
    }
    const lf = indexIn(w, LF, start, n);
    const lineEnd = lf === -1 ? n : lf;
    const quoted = this.#nextQuote !== -1 && this.#nextQuote < lineEnd;
    const cr = this.#nextCr !== -1 && this.#nextCr < lineEnd;
    if (!quoted && (!cr || this.#nextCr === lf - 1)) {
      if (lf === -1) return { contentEnd: n, end: n, inner: 0, bad: false, more: !this.#atEnd() };
      return { contentEnd: cr ? lf - 1 : lf, end: lf + 1, inner: 0, bad: false, more: false };
    }
    return this.#read(start);
  }

  /** Reads the record at `start` byte by byte (see {@link repairCsv} for the rules). */
  #read(start: number): Found {
    const w = this.#window;
    const n = this.#length;
    const g = this.#g;
    const quote = g.quote;
    const q0 = this.#q0;
    const escape = g.escape;
    const e0 = this.#e0;
    const doubled = this.#doubled;
    const delimiter = g.delimiter;
    const d0 = delimiter[0] as number;
    const columns = g.columns;
    let fields = 1;
    let fieldStart = true;
    let fieldEmpty = true;
    let inQuotes = false;
    let afterQuote = false;
    let inner = 0;
    let bad = false;
    let i = start;
    while (i < n) {
      const c = w[i] as number;
      if (inQuotes) {
        if (inner > 0 && i - start > g.maxRecordBytes) {
          // DuckDB gives up on a record this long, and so does the repair.
          return { contentEnd: i, end: i, inner, bad: true, more: false };
        }
        if (c === q0 && this.#matches(i, quote as Uint8Array)) {
          inQuotes = false;
          afterQuote = true;
          i += (quote as Uint8Array).length;
          continue;
        }
        if (!doubled && c === e0 && this.#matches(i, escape as Uint8Array)) {
          // The escaped character is kept whatever it is, a line end included.
          i += (escape as Uint8Array).length;
          if (i >= n) break;
        }
        const d = w[i] as number;
        if (d === LF ? w[i - 1] !== CR : d === CR) inner++;
        i++;
        continue;
      }
      if (c === LF || c === CR) {
        if (c === CR && i + 1 >= n && !this.#atEnd()) break; // a \r\n may be cut
        const end = c === CR && w[i + 1] === LF ? i + 2 : i + 1;
        const wrong = bad || !fits(fields, fieldEmpty, columns);
        return { contentEnd: i, end, inner, bad: wrong, more: false };
      }
      if (c === d0 && this.#matches(i, delimiter)) {
        fields++;
        fieldStart = true;
        fieldEmpty = true;
        afterQuote = false;
        i += delimiter.length;
        continue;
      }
      if (afterQuote) {
        if (c === SPACE) {
          i++;
        } else if (doubled && c === q0 && this.#matches(i, quote as Uint8Array)) {
          // A doubled quote, or a quote after spaces: the quoted field goes on.
          inQuotes = true;
          afterQuote = false;
          i += (quote as Uint8Array).length;
        } else {
          // Text after a closing quote: the record is refused, and the rest of the field is
          // read as unquoted text (a quote in it opens nothing), as DuckDB does.
          bad = true;
          afterQuote = false;
          fieldStart = false;
          fieldEmpty = false;
          i++;
        }
        continue;
      }
      if (fieldStart && c === q0 && this.#matches(i, quote as Uint8Array)) {
        inQuotes = true;
        fieldEmpty = false;
        i += (quote as Uint8Array).length;
        continue;
      }
      if (c !== SPACE) fieldStart = false;
      fieldEmpty = false;
      i++;
    }
    if (!this.#atEnd()) return { contentEnd: n, end: n, inner, bad: false, more: true };
    // The file ends inside this record.
    const wrong = bad || inQuotes || !fits(fields, fieldEmpty, columns);
    return { contentEnd: n, end: n, inner, bad: wrong, more: false };
  }

  #matches(i: number, bytes: Uint8Array): boolean {
    if (bytes.length === 1) return true; // the caller compared the first byte
    if (i + bytes.length > this.#length) return false;
    for (let k = 1; k < bytes.length; k++) if (this.#window[i + k] !== bytes[k]) return false;
    return true;
  }

  /** Window index of the first line end at or after `start` (or the window's length). */
  #lineEnd(start: number): number {
    const lf = indexIn(this.#window, LF, start, this.#length);
    const cr = indexIn(this.#window, CR, start, lf === -1 ? this.#length : lf);
    return cr !== -1 ? cr : lf !== -1 ? lf : this.#length;
  }

  #leave(line: number, row: number, start: number, end: number): void {
    this.#left++;
    if (this.#examples.length < this.#maxExamples) {
      const text = this.#window.toString(this.#g.encoding, start, Math.min(end, start + 4000));
      this.#examples.push({ line, row, text: text.slice(0, 1000) });
    }
  }

  /**
   * Writes `<row>,<first>,<last>,<record>` (with the file's delimiter), the record with its own
   * line end: DuckDB refuses a file whose line ends differ.
   */
  #emit(row: number, first: number, last: number, start: number, end: number): void {
    const delimiter = this.#g.delimiter;
    const need = 3 * (16 + delimiter.length) + (end - start);
    if (this.#used + need > this.#output.length) {
      this.#flush();
      if (need > this.#output.length) this.#output = Buffer.allocUnsafe(need);
    }
    const out = this.#output;
    let at = this.#used;
    at = writeDigits(out, at, row);
    for (let k = 0; k < delimiter.length; k++) out[at++] = delimiter[k] as number;
    at = writeDigits(out, at, first);
    for (let k = 0; k < delimiter.length; k++) out[at++] = delimiter[k] as number;
    at = writeDigits(out, at, last);
    for (let k = 0; k < delimiter.length; k++) out[at++] = delimiter[k] as number;
    const w = this.#window;
    if (end - start < 256) for (let i = start; i < end; i++) out[at++] = w[i] as number;
    else at += w.copy(out, at, start, end);
    this.#used = at;
  }

  #flush(): void {
    writeAll(this.#out, this.#output.subarray(0, this.#used));
    this.#used = 0;
  }
}

/** Writes `n` (a positive integer) in ASCII digits at `at`; returns the index past them. */
function writeDigits(out: Buffer, at: number, n: number): number {
  let digits = 1;
  for (let p = 10; p <= n; p *= 10) digits++;
  for (let k = at + digits - 1; k >= at; k--) {
    out[k] = 0x30 + (n % 10);
    n = Math.floor(n / 10);
  }
  return at + digits;
}

/** Index of `byte` in `buffer[from, to)`, or -1. */
function indexIn(buffer: Buffer, byte: number, from: number, to: number): number {
  const i = buffer.indexOf(byte, from);
  return i === -1 || i >= to ? -1 : i;
}

/** Whether a record of `fields` fits `columns`: DuckDB accepts one delimiter too many at the end. */
function fits(fields: number, lastEmpty: boolean, columns: number): boolean {
  return fields === columns || (fields === columns + 1 && lastEmpty);
}

/**
 * Writes a UTF-16 file (little-endian unless it opens with a big-endian byte order mark) to
 * `out` as UTF-8, without the mark, for {@link repairCsv}, which reads bytes.
 * @example toUtf8('/data/export.csv', '/stage/export.utf8.csv')
 */
export function toUtf8(file: string, out: string): void {
  const input = openSync(file, 'r');
  try {
    const output = openSync(out, 'w');
    try {
      const buffer = Buffer.allocUnsafe(CHUNK);
      let n = readSync(input, buffer, 0, CHUNK, 0);
      const be = buffer[0] === 0xfe && buffer[1] === 0xff;
      const decoder = new TextDecoder(be ? 'utf-16be' : 'utf-16le');
      for (let at = 0; n > 0; n = readSync(input, buffer, 0, CHUNK, at)) {
        writeAll(output, Buffer.from(decoder.decode(buffer.subarray(0, n), { stream: true })));
        at += n;
      }
      writeAll(output, Buffer.from(decoder.decode()));
    } finally {
      closeSync(output);
    }
  } finally {
    closeSync(input);
  }
}

function writeAll(fd: number, bytes: Buffer): void {
  for (let done = 0; done < bytes.length;) done += writeSync(fd, bytes, done, bytes.length - done);
}
