import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDirs } from '../testing/temp.js';
import { countLines, repairCsv, toUtf8, type CsvGrammar } from './csv-scan.js';

const tmp = tempDirs();

function file(content: string | Buffer): string {
  const full = path.join(tmp.fresh(), 'f.csv');
  writeFileSync(full, content);
  return full;
}

const GRAMMAR: CsvGrammar = {
  delimiter: Buffer.from(','),
  quote: Buffer.from('"'),
  escape: Buffer.from('"'),
  header: true,
  columns: 3,
  maxRecordBytes: 2_097_152,
  encoding: 'utf8',
};

/** The repaired copy's records and what the repair left out. */
function repair(
  content: string,
  grammar: Partial<CsvGrammar> = {},
): { copy: string; left: [number, number, string][]; kept: number } {
  const out = path.join(tmp.fresh(), 'out.csv');
  const result = repairCsv(file(content), { ...GRAMMAR, ...grammar }, out, 20);
  return {
    copy: readFileSync(out, 'utf8'),
    left: result.left.examples.map((l) => [l.line, l.row, l.text]),
    kept: result.kept,
  };
}

describe('countLines', () => {
  it('counts \\n, \\r\\n and lone \\r line ends, but not blank lines at the end', () => {
    expect(countLines(file('a\nb\nc\n'))).toBe(3);
    expect(countLines(file('a\nb\nc'))).toBe(3);
    expect(countLines(file('a\r\nb\r\n\r\nc\r\n'))).toBe(4);
    expect(countLines(file('a\rb\rc\r'))).toBe(3);
    expect(countLines(file('a\n"x\ny"\n\n\n\n'))).toBe(3);
    expect(countLines(file('\n\n'))).toBe(0);
    expect(countLines(file(''))).toBe(0);
  });
});

describe('repairCsv', () => {
  it('copies each record with its row number and line range, and skips blank lines', () => {
    const { copy, left, kept } = repair('h1,h2,h3\n1,"two\nlines",x\n\n2,b,c\n3,"q ""x""",z');
    expect(copy).toBe('1,2,3,1,"two\nlines",x\n2,5,5,2,b,c\n3,6,6,3,"q ""x""",z');
    expect(left).toEqual([]);
    expect(kept).toBe(3);
  });

  it('leaves out the line of a quote that is not closed where a field can end, and goes on', () => {
    const { copy, left } = repair('h1,h2,h3\n1,a,b\n"2,broken\n3,c,d\n4,"e",f\n5,g,h\n');
    // Row 2 is left out; rows keep the file's numbers.
    expect(left).toEqual([[3, 2, '"2,broken']]);
    expect(copy).toBe('1,2,2,1,a,b\n3,4,4,3,c,d\n4,5,5,4,"e",f\n5,6,6,5,g,h\n');
  });

  it('leaves out a quote still open at the end of the file or past the longest record', () => {
    expect(repair('h1,h2,h3\n1,a,b\n2,"open,c\n3,d,e\n').left).toEqual([[3, 2, '2,"open,c']]);
    const long = `h1,h2,h3\n"x,${'y'.repeat(40)}\n${'z,'.repeat(40)}\n1,a,"b"\n`;
    const { copy, left } = repair(long, { maxRecordBytes: 50 });
    expect(left.map(([line]) => line)).toEqual([2]);
    expect(copy.endsWith('3,4,4,1,a,"b"\n')).toBe(true);
  });

  it('keeps a record whose only fault is on one line: DuckDB reports it', () => {
    const { copy, left } = repair('h1,h2,h3\n"a"x,b,c\n1,2,3,4\n5,6\n');
    expect(left).toEqual([]);
    expect(copy).toBe('1,2,2,"a"x,b,c\n2,3,3,1,2,3,4\n3,4,4,5,6\n');
  });

  it("follows DuckDB's quoting: doubled quotes, spaces round quotes, the escape, a trailing delimiter", () => {
    // A quote after spaces goes on with the field; only spaces may follow a closing quote.
    expect(repair('h1,h2,h3\n "a" "b\nc" ,2,3\n').copy).toBe('1,2,3, "a" "b\nc" ,2,3\n');
    // With an escape that is not the quote, a doubled quote closes the field and makes the rest
    // of it plain text, up to the line end (DuckDB refuses that one line).
    const escaped = repair('h1,h2,h3\n"a\\"\nb",2,3\n"x""\ny",4,5\n6,7,8,\n', {
      escape: Buffer.from('\\'),
    });
    expect(escaped.left).toEqual([]);
    expect(escaped.copy).toBe('1,2,3,"a\\"\nb",2,3\n2,4,4,"x""\n3,5,5,y",4,5\n4,6,6,6,7,8,\n');
  });

  it('keeps the line ends of a \\r\\n or \\r file, and counts blank lines of one column as records', () => {
    expect(repair('h\r\n"a\r\nb"\r\n\r\nc\r\n', { columns: 1 }).copy).toBe(
      '1,2,3,"a\r\nb"\r\n2,4,4,\r\n3,5,5,c\r\n',
    );
    expect(repair('h1,h2,h3\r1,2,3\r"4,5\r6,7,8\r').copy).toBe('1,2,2,1,2,3\r3,4,4,6,7,8\r');
  });

  it('reads Latin-1 bytes and a multi-byte delimiter', () => {
    const out = path.join(tmp.fresh(), 'out.csv');
    const source = file(Buffer.from('a§b§c\né§"x\ny"§z\n"bad§1§2\n1§2§3\n', 'latin1'));
    const grammar = {
      ...GRAMMAR,
      delimiter: Buffer.from('§', 'latin1'),
      encoding: 'latin1' as const,
    };
    const result = repairCsv(source, grammar, out, 20);
    expect(result.left.examples).toEqual([{ line: 4, row: 2, text: '"bad§1§2' }]);
    expect(readFileSync(out, 'latin1')).toBe('1§2§3§é§"x\ny"§z\n3§5§5§1§2§3\n');
  });
});

describe('toUtf8', () => {
  it('reads UTF-16 of either byte order, without its mark', () => {
    const text = 'a,b\nété,2\n';
    const le = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')]);
    const be = Buffer.from(le);
    be.swap16();
    for (const bytes of [le, be]) {
      const out = path.join(tmp.fresh(), 'out.csv');
      toUtf8(file(bytes), out);
      expect(readFileSync(out, 'utf8')).toBe(text);
    }
  });
});
