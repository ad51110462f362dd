/**
 * THE parity test of the expression language: every operator and function runs on the same
 * inputs in DuckDB (through `compileToSql`) and in
 * TypeScript (through `compileToFunction`), and the results must be equal, nulls included
 * (floats within 1e-12 relative), with DuckDB's result type the one `typeOf` announces.
 * A last test fails when an operator or function has no case here.
 */
import { describe, expect, it } from 'vitest';
import type { DuckDBConnection } from '@duckdb/node-api';
import type { ColumnType, Row, Scalar } from '../../core/table.js';
import { resultToTable, withDuckDB } from '../duckdb.js';
import type { Expr } from './ast.js';
import {
  compileToFunction,
  compileToSql,
  quoteIdentifier,
  typeOf,
  type ExpressionSchema,
} from './compile.js';
import { FUNCTIONS, OPERATORS } from './functions.js';
import { parseExpression } from './parse.js';
import { createRng } from '../../training/random.js';

// ---------------------------------------------------------------------------------------------
// Inputs

const FLOATS: (number | null)[] = [
  null,
  0,
  -0,
  0.5,
  -0.5,
  1,
  -1,
  2.5,
  -2.5,
  0.1,
  3.7,
  -7.25,
  1e-7,
  2.555,
  123456.789,
  1e15,
  -1e300,
];
const INTS: (number | null)[] = [
  null,
  0,
  1,
  -1,
  2,
  3,
  -3,
  7,
  -7,
  10,
  15,
  1_000_003,
  -(2 ** 31),
  2 ** 31,
];
const DIGITS: (number | null)[] = [null, -2, -1, 0, 1, 2, 3];
const BOOLS: (boolean | null)[] = [null, true, false];
const STRINGS: (string | null)[] = [
  null,
  '',
  'a',
  'abc',
  'ABC',
  'Abc',
  'b',
  'bc',
  ' a b ',
  '\ta\n',
  '\u00a0x\u3000',
  'é',
  'e\u0301',
  'Straße',
  'ΑΣ',
  'İstanbul',
  'ǆ',
  'ᾀ',
  '😀',
  '😀a😀',
  '\ufb00',
  '\uff5a',
  "it's",
  '%_',
  '1.5',
  ' 42 ',
  '-1e3',
];
/** Text `to_number` must read, or refuse, exactly as DuckDB does. */
const NUMBER_TEXTS: (string | null)[] = [
  null,
  '',
  ' ',
  '1',
  ' 1 ',
  '\t1\n',
  '\v1',
  '+1',
  '-1',
  '1.',
  '.5',
  '.',
  '1e3',
  '1E3',
  '1e',
  'e3',
  '1e+3',
  '1e-3',
  '0x10',
  '1_000',
  '1,5',
  'inf',
  '-inf',
  'Infinity',
  'nan',
  'NaN',
  '1.5.2',
  '00012',
  '1 2',
  '١',
  '1e400',
  '1e-400',
  '--1',
  '+-1',
  '1d',
  '\u00a01',
  '1.e5',
  '.e5',
  '-0',
  '123456789012345678901234567890',
  '0.1e-2',
  '9007199254740993',
];

function utc(iso: string): number {
  return Date.parse(iso);
}

const TIMESTAMPS: (number | null)[] = [
  null,
  utc('2023-12-31T23:59:59.999Z'),
  utc('2024-01-01T00:00:00.000Z'),
  utc('2024-01-31T23:00:00.000Z'),
  utc('2024-02-01T00:00:00.001Z'),
  utc('2024-02-29T12:34:56.789Z'),
  utc('2024-03-01T00:00:00.100Z'),
  utc('1970-01-01T00:00:00.000Z'),
  utc('1969-12-31T23:59:59.999Z'),
  utc('1900-02-28T23:59:00.000Z'),
  utc('2000-02-29T06:07:08.120Z'),
  utc('2100-03-01T00:00:00.000Z'),
  utc('0001-01-01T00:00:00.000Z'),
  utc('9999-12-31T23:59:59.999Z'),
  -62_198_755_200_000, // 2 BC
  -100_000_000_000_000, // 1200 BC
  253_402_300_800_000, // 10000-01-01
];

/** Doubles of every magnitude: from random decimal exponents, and from random bit patterns. */
function randomDoubles(n: number): number[] {
  const next = createRng(42);
  const out: number[] = [];
  const bits = new Float64Array(1);
  const words = new Uint32Array(bits.buffer);
  while (out.length < n) {
    if (out.length % 2 === 0) {
      out.push((next() * 2 - 1) * 10 ** Math.floor(next() * 44 - 22));
    } else {
      words[0] = Math.floor(next() * 2 ** 32);
      words[1] = Math.floor(next() * 2 ** 32);
      if (Number.isFinite(bits[0])) out.push(bits[0] as number);
    }
  }
  return out;
}

function randomTimestamps(n: number): number[] {
  const next = createRng(7);
  // Years 1000 to 3000.
  return Array.from({ length: n }, () =>
    Math.floor(-30_610_224_000_000 + next() * 63_113_904_000_000),
  );
}

/** Every (x, y) pair of two domains. */
function pairs<X extends Scalar, Y extends Scalar>(xs: readonly X[], ys: readonly Y[]): Row[] {
  return xs.flatMap((x) => ys.map((y) => ({ x, y })));
}

function singles<X extends Scalar>(xs: readonly X[]): Row[] {
  return xs.map((x) => ({ x }));
}

// ---------------------------------------------------------------------------------------------
// Cases

interface ParityCase {
  readonly name: string;
  readonly schema: ExpressionSchema;
  readonly rows: readonly Row[];
  readonly expressions: readonly string[];
}

const ARITHMETIC = ['x + y', 'x - y', 'x * y', 'x / y', 'x % y'];
const COMPARISONS = ['x = y', 'x == y', 'x != y', 'x <> y', 'x < y', 'x <= y', 'x > y', 'x >= y'];
const NULL_TESTS = ['x is null', 'x is not null'];
const NUMERIC_FUNCTIONS = [
  'log(x)',
  'log10(x)',
  'exp(x)',
  'sqrt(x)',
  'abs(x)',
  'round(x)',
  'floor(x)',
  'ceil(x)',
  '-x',
  'bucket(x, -1, 0, 2.5, 100)',
  'clip(x, -1, 2.5)',
  'clip(x, null, 1)',
  'clip(x, 0, null)',
  'clip(x, 3, 1)',
  'to_string(x)',
  'to_number(x)',
  'coalesce(x, 42)',
];

const CASES: readonly ParityCase[] = [
  {
    name: 'arithmetic and comparisons of floats',
    schema: { x: 'float', y: 'float' },
    rows: pairs(FLOATS, FLOATS),
    expressions: [...ARITHMETIC, ...COMPARISONS, 'coalesce(x, y)', 'x in (y, 0.5, -1)'],
  },
  {
    name: 'arithmetic and comparisons of ints',
    schema: { x: 'int', y: 'int' },
    rows: pairs(INTS, INTS),
    expressions: [...ARITHMETIC, ...COMPARISONS, 'coalesce(x, y, 0)', 'x not in (y, 1, 7)'],
  },
  {
    name: 'ints meeting floats',
    schema: { x: 'int', y: 'float' },
    rows: pairs(INTS, FLOATS),
    expressions: [
      ...ARITHMETIC,
      ...COMPARISONS,
      'y - x',
      'y % x',
      'coalesce(x, y)',
      'coalesce(y, x)',
      'x in (y, 2.5)',
      'clip(y, x, 3)',
    ],
  },
  {
    name: 'numeric functions of floats',
    schema: { x: 'float' },
    rows: singles(FLOATS),
    expressions: [
      ...NUMERIC_FUNCTIONS,
      ...NULL_TESTS,
      'x in (0.5, 1, null)',
      'x not in (0.5, 1)',
      'x not in (0.5, null)',
      'log(x + 1) * 2',
      'round(x * 100) / 100',
    ],
  },
  {
    name: 'numeric functions of ints',
    schema: { x: 'int' },
    rows: singles(INTS),
    expressions: [
      ...NUMERIC_FUNCTIONS,
      ...NULL_TESTS,
      'x in (1, 2, null)',
      'x not in (1, 2)',
      'x / 2',
      'x % 2 = 0',
      '-x * 0',
      'x % 1',
    ],
  },
  {
    name: 'round to digits',
    schema: { x: 'float', y: 'int' },
    rows: pairs([...FLOATS, 1.005, 2.675, -0.125, 1234.5, 1e300], DIGITS),
    expressions: ['round(x, y)', 'round(x, 2)', 'round(x, -1)'],
  },
  {
    name: 'round of an int to digits',
    schema: { x: 'int', y: 'int' },
    rows: pairs(INTS, DIGITS),
    expressions: ['round(x, y)'],
  },
  {
    name: 'clip with every kind of bound',
    schema: { x: 'float', y: 'float', z: 'float' },
    rows: [null, -2, 0, 1.5, 4].flatMap((x) =>
      [null, -1, 0, 2].flatMap((y) => [null, 1, 3].map((z) => ({ x, y, z }))),
    ),
    expressions: ['clip(x, y, z)', 'clip(x, y, null)', 'clip(x, null, z)'],
  },
  {
    name: 'three-valued logic',
    schema: { x: 'bool', y: 'bool' },
    rows: pairs(BOOLS, BOOLS),
    expressions: [
      'x and y',
      'x or y',
      'not x',
      'not x and y',
      'not (x and y)',
      'x or y and not x',
      'x = y',
      'x != y',
      'x < y',
      'x >= y',
      'x in (true, null)',
      'x not in (y)',
      'x is null',
      'x is not null',
      'if(x, 1, 2)',
      'if(x and y, 1.5, -1)',
      'if(x, y, null)',
      'coalesce(x, y, false)',
      'to_string(x)',
      'to_number(x)',
    ],
  },
  {
    name: 'comparisons of strings by code point',
    schema: { x: 'string', y: 'string' },
    rows: pairs(STRINGS, STRINGS),
    expressions: [
      ...COMPARISONS,
      'contains(x, y)',
      'starts_with(x, y)',
      'ends_with(x, y)',
      "replace(x, y, '<>')",
      "replace('a-a-a', x, y)",
      'concat(x, y)',
      "concat(x, '|', y, null)",
      'coalesce(x, y)',
      "x in (y, 'a')",
      'if(x < y, x, y)',
    ],
  },
  {
    name: 'string functions',
    schema: { x: 'string' },
    rows: singles(STRINGS),
    expressions: [
      'lower(x)',
      'upper(x)',
      'trim(x)',
      'length(x)',
      'concat(x)',
      'concat(null, x)',
      'to_string(x)',
      'to_number(x)',
      "x in ('a', 'é', '😀')",
      "x not in ('a', null)",
      'x is null',
      'length(trim(upper(x)))',
      "replace(x, 'a', '$&$&')",
      'substr(x, 2)',
      'substr(x, -2)',
      'substr(x, 0)',
    ],
  },
  {
    name: 'substrings over every start and length',
    schema: { x: 'string', y: 'int', z: 'int' },
    rows: ['abcde', 'a😀c', '', null].flatMap((x) =>
      [null, -7, -5, -3, -1, 0, 1, 2, 4, 5, 7].flatMap((y) =>
        [null, -7, -3, -1, 0, 1, 2, 3, 7].map((z) => ({ x, y, z })),
      ),
    ),
    expressions: ['substr(x, y, z)', 'substr(x, y)'],
  },
  {
    name: 'text to numbers',
    schema: { x: 'string' },
    rows: singles(NUMBER_TEXTS),
    expressions: ['to_number(x)', 'to_number(x) is null', 'to_string(to_number(x))'],
  },
  {
    name: 'doubles to text and back',
    schema: { x: 'float' },
    rows: singles([
      ...FLOATS,
      1e16,
      1e-4,
      1e-5,
      0.000123,
      123456789012345680000,
      5e-324,
      1.7976931348623157e308,
      2 ** 53,
      ...randomDoubles(400),
    ]),
    expressions: ['to_string(x)', 'to_number(to_string(x))', 'to_string(-x)', 'to_string(x * 0)'],
  },
  {
    name: 'ints to text',
    schema: { x: 'int' },
    rows: singles([...INTS, 2 ** 53 - 1, -(2 ** 53 - 1)]),
    expressions: ['to_string(x)', 'to_string(-x)', 'to_string(x * 0)', 'to_string(x % 1)'],
  },
  {
    name: 'date parts across year and month boundaries',
    schema: { x: 'timestamp' },
    rows: singles([...TIMESTAMPS, ...randomTimestamps(200)]),
    expressions: [
      'year(x)',
      'month(x)',
      'day(x)',
      'hour(x)',
      'minute(x)',
      'dayofweek(x)',
      'epoch_ms(x)',
      'to_string(x)',
      'x is null',
      'coalesce(x, x)',
    ],
  },
  {
    name: 'comparisons of timestamps',
    schema: { x: 'timestamp', y: 'timestamp' },
    rows: pairs(TIMESTAMPS, TIMESTAMPS),
    expressions: [...COMPARISONS, 'epoch_ms(x) - epoch_ms(y)', 'x in (y)', 'if(x < y, x, y)'],
  },
  {
    name: 'literals and folded nulls',
    schema: { x: 'float', s: 'string' },
    rows: [
      { x: null, s: null },
      { x: 2, s: 'a' },
    ],
    expressions: [
      'null',
      '1',
      '-2.5',
      '0.1 + 0.2',
      '7 / 2',
      '-7 % 3',
      '1 / 0',
      '0.0 / 0',
      "'it''s'",
      'true',
      'null + 1',
      'x + null',
      'x = null',
      'null and false',
      'null or true',
      'null and true',
      'not null',
      '- null',
      'year(null)',
      'log(null)',
      'coalesce(null, null)',
      'coalesce(null, x)',
      'if(null, 1, 2)',
      'concat(null)',
      'concat(null, s)',
      'clip(null, 0, 1)',
      'null in (1, 2)',
      '1 in (null, 1)',
      '2 in (null, 1)',
      'null is null',
      'to_string(null)',
      'bucket(null, 1, 2)',
      'substr(s, null)',
      'round(x, null)',
      'log(-1)',
      'log10(0)',
      'sqrt(-4)',
      'log(0 - x)',
      '5 % 0',
      '5.5 % 0.0',
      "substr('abc', 0, 2)",
      'bucket(-2, -1, 0)',
      'clip(5, null, null)',
    ],
  },
  {
    name: 'a feature engineer’s expressions',
    schema: { amount: 'float', n: 'int', country: 'string', home: 'string', at: 'timestamp' },
    rows: [
      { amount: 12.5, n: 3, country: 'FR', home: 'FR', at: utc('2024-12-31T23:30:00Z') },
      { amount: -3, n: 0, country: 'DE', home: 'FR', at: utc('2025-01-01T00:30:00Z') },
      { amount: null, n: null, country: null, home: 'US', at: null },
      { amount: 1e6, n: -2, country: 'fr', home: null, at: utc('1999-12-31T23:59:59.999Z') },
    ],
    expressions: [
      'log(amount + 1)',
      'country != home',
      'upper(country) = home or home is null',
      'clip(amount / n, -10, 10)',
      'bucket(log10(abs(amount) + 1), 1, 2, 3)',
      'if(hour(at) >= 22 or hour(at) < 6, 1, 0)',
      "concat(lower(country), '-', to_string(n))",
      "coalesce(amount, 0) * coalesce(n, 1) > 10 and not country in ('US')",
      'dayofweek(at) in (0, 6)',
      'round(amount / 3, 2)',
    ],
  },
];

// ---------------------------------------------------------------------------------------------
// Running a case both ways

const RELATIVE_TOLERANCE = 1e-12;

function same(a: Scalar, b: Scalar): boolean {
  if (a === null || b === null) return a === b;
  if (typeof a === 'number' && typeof b === 'number') {
    if (a === b || (Number.isNaN(a) && Number.isNaN(b))) return true;
    return Math.abs(a - b) <= RELATIVE_TOLERANCE * Math.max(Math.abs(a), Math.abs(b));
  }
  return a === b;
}

interface Mismatch {
  readonly expression: string;
  readonly row: Row;
  readonly duckdb: Scalar;
  readonly typescript: Scalar;
}

/** A SQL literal of a value of the type, exact: doubles through their shortest text. */
function sqlLiteral(value: Scalar, type: ColumnType): string {
  if (value === null) return `CAST(NULL AS ${SQL_TYPE[type]})`;
  if (typeof value === 'string') return `'${value.replaceAll("'", "''")}'`;
  if (typeof value === 'boolean') return value ? 'TRUE' : 'FALSE';
  if (type === 'timestamp') return `epoch_ms(CAST(${value} AS BIGINT))`;
  if (type === 'int') return `CAST(${value} AS BIGINT)`;
  return `CAST('${Object.is(value, -0) ? '-0.0' : String(value)}' AS DOUBLE)`;
}

const SQL_TYPE: Record<ColumnType, string> = {
  float: 'DOUBLE',
  int: 'BIGINT',
  bool: 'BOOLEAN',
  string: 'VARCHAR',
  timestamp: 'TIMESTAMP',
};

/**
 * Loads the rows with SQL literals rather than `loadTable`, whose staging through DOUBLE
 * microseconds is not exact for timestamps far from 1970 (year 9999 comes back 8 µs off).
 */
async function loadExactly(con: DuckDBConnection, c: ParityCase): Promise<void> {
  const columns = Object.entries(c.schema);
  const names = ['__row', ...columns.map(([name]) => quoteIdentifier(name))].join(', ');
  const values = c.rows
    .map(
      (row, i) =>
        `(${[i, ...columns.map(([name, type]) => sqlLiteral(row[name] ?? null, type))].join(', ')})`,
    )
    .join(',\n');
  await con.run(
    `CREATE OR REPLACE TEMP TABLE parity AS SELECT * FROM (VALUES ${values}) v(${names})`,
  );
}

async function runCase(c: ParityCase): Promise<Mismatch[]> {
  const select = c.expressions.map((e, i) => `${compileToSql(e, c.schema)} AS "r${i}"`).join(', ');
  const result = await withDuckDB(async (con) => {
    await loadExactly(con, c);
    return resultToTable(await con.run(`SELECT ${select} FROM parity ORDER BY __row`));
  });
  const mismatches: Mismatch[] = [];
  c.expressions.forEach((expression, i) => {
    const column = result.columns[i];
    if (column === undefined) throw new Error(`no result column for ${expression}`);
    // The SQL's result type is the type the language announces.
    expect(`${expression}: ${column.type}`).toBe(`${expression}: ${typeOf(expression, c.schema)}`);
    const f = compileToFunction(expression, c.schema);
    c.rows.forEach((row, r) => {
      const duckdb = column.values[r] ?? null;
      const typescript = f(row);
      if (!same(duckdb, typescript)) mismatches.push({ expression, row, duckdb, typescript });
    });
  });
  return mismatches;
}

describe('parity of DuckDB SQL and TypeScript', () => {
  for (const c of CASES) {
    it(c.name, async () => {
      const mismatches = await runCase(c);
      // Shown whole, so a failure says which inputs disagree and how.
      expect(mismatches.slice(0, 20)).toEqual([]);
    });
  }

  it('maps every code point the same way in upper, lower and trim', async () => {
    const schema: ExpressionSchema = { s: 'string', w: 'string' };
    const upper = compileToSql('upper(s)', schema);
    const lower = compileToSql('lower(s)', schema);
    const trim = compileToSql('trim(w)', schema);
    const length = compileToSql('length(s)', schema);
    const result = await withDuckDB(async (con) => {
      // Built in SQL: a million rows need not travel through the appender.
      await con.run(`CREATE OR REPLACE TEMP TABLE code_points AS
        SELECT i::INTEGER AS i, chr(i::INTEGER) AS s, chr(i::INTEGER) || 'a' || chr(i::INTEGER) AS w
        FROM range(1, 1114112) r(i) WHERE i < 55296 OR i > 57343`);
      return resultToTable(
        await con.run(`SELECT i, ord(${upper}) AS u, length(${upper}) AS lu, ord(${lower}) AS l,
          length(${lower}) AS ll, ${trim} = 'a' AS t, ${length} AS n FROM code_points ORDER BY i`),
      );
    });
    const [codes, us, lus, ls, lls, ts, ns] = result.columns.map((c) => c.values);
    const f = {
      upper: compileToFunction('upper(s)', schema),
      lower: compileToFunction('lower(s)', schema),
      trim: compileToFunction('trim(w)', schema),
      length: compileToFunction('length(s)', schema),
    };
    const differences: string[] = [];
    const row: Row = { s: null, w: null };
    for (let k = 0; k < (codes?.length ?? 0); k++) {
      const cp = codes?.[k] as number;
      const s = String.fromCodePoint(cp);
      row.s = s;
      row.w = `${s}a${s}`;
      const u = f.upper(row) as string;
      const l = f.lower(row) as string;
      const got = [
        u.codePointAt(0),
        [...u].length,
        l.codePointAt(0),
        [...l].length,
        f.trim(row) === 'a',
        f.length(row),
      ];
      const want = [us?.[k], lus?.[k], ls?.[k], lls?.[k], ts?.[k], ns?.[k]];
      if (got.some((g, j) => g !== want[j])) {
        differences.push(
          `U+${cp.toString(16)}: DuckDB ${JSON.stringify(want)}, TypeScript ${JSON.stringify(got)}`,
        );
      }
    }
    expect(differences.slice(0, 20)).toEqual([]);
  });

  it('covers every operator and function', () => {
    const covered = new Set<string>();
    for (const c of CASES) for (const e of c.expressions) collect(parseExpression(e), covered);
    const missing = [...Object.keys(OPERATORS), ...FUNCTIONS].filter((name) => !covered.has(name));
    expect(missing).toEqual([]);
  });
});

/** The names under which `functions.ts` knows the operations of a tree. */
function collect(expr: Expr, into: Set<string>): void {
  switch (expr.kind) {
    case 'unary':
      into.add(expr.op === '-' ? 'negate' : 'not');
      collect(expr.operand, into);
      break;
    case 'binary':
      into.add(expr.op);
      collect(expr.left, into);
      collect(expr.right, into);
      break;
    case 'in':
      into.add(expr.negated ? 'not in' : 'in');
      collect(expr.operand, into);
      for (const v of expr.values) collect(v, into);
      break;
    case 'is_null':
      into.add(expr.negated ? 'is not null' : 'is null');
      collect(expr.operand, into);
      break;
    case 'call':
      into.add(expr.name);
      for (const a of expr.args) collect(a, into);
      break;
    default:
      break;
  }
}
