import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { FerryError } from '../../errors/index.js';
import { resultToTable, withDuckDB } from '../duckdb.js';
import {
  compileToFunction,
  compileToSql,
  quoteIdentifier,
  typeOf,
  type ExpressionSchema,
} from './compile.js';
import { FUNCTIONS } from './functions.js';
import { parseExpression } from './parse.js';

const SCHEMA: ExpressionSchema = {
  amount: 'float',
  n: 'int',
  name: 'string',
  ok: 'bool',
  at: 'timestamp',
};

function errorOf(run: () => unknown): FerryError {
  try {
    run();
  } catch (error) {
    if (error instanceof FerryError) return error;
    throw error;
  }
  throw new Error('expected a FerryError');
}

describe('typeOf', () => {
  it.each([
    ['amount / 2', 'float'],
    ['n / 2', 'float'],
    ['n + 1', 'int'],
    ['n % 3', 'int'],
    ['n + 1.5', 'float'],
    ['-n', 'int'],
    ['abs(n)', 'int'],
    ['round(n)', 'int'],
    ['round(amount)', 'float'],
    ['round(n, 1)', 'float'],
    ['floor(n)', 'int'],
    ['ceil(amount)', 'float'],
    ['clip(n, 0, 10)', 'int'],
    ['clip(n, 0, 2.5)', 'float'],
    ['length(name)', 'int'],
    ["name = 'a'", 'bool'],
    ['n in (1, 2.5)', 'bool'],
    ['coalesce(n, 1.5)', 'float'],
    ['coalesce(null, name)', 'string'],
    ['if(ok, at, null)', 'timestamp'],
    ['epoch_ms(at)', 'int'],
    ['dayofweek(at)', 'int'],
    ['bucket(amount, 1, 10)', 'int'],
    ['to_string(at)', 'string'],
    ['to_number(name)', 'float'],
    ['null', 'float'],
    ['null + null', 'float'],
    ['year(null)', 'int'],
  ])('%s is %s', (source, type) => {
    expect(typeOf(source, SCHEMA)).toBe(type);
  });
});

describe('type errors', () => {
  it('names the operation and the sub-expression, with a caret under it', () => {
    const error = errorOf(() => typeOf("n > 0 and 'abc' + 1 > 2", SCHEMA));
    expect(error.code).toBe('FERRY_ARGUMENT_INVALID');
    expect(error.message).toBe(
      "type error: cannot add string and int: `'abc' + 1` (column 11)\n" +
        "  n > 0 and 'abc' + 1 > 2\n" +
        '            ^^^^^^^^^',
    );
  });

  it('points at the argument of a function that has the wrong type', () => {
    const error = errorOf(() => compileToSql('log(name) + 1', SCHEMA));
    expect(error.message).toBe(
      'type error: log(x): argument 1 must be a number, got string: `name` in `log(name)` ' +
        '(column 5)\n  log(name) + 1\n      ^^^^',
    );
  });

  it.each([
    ['name + name', 'cannot add string and string; use concat(a, b) to join strings'],
    ['at - at', 'cannot subtract timestamp and timestamp; use epoch_ms(t) for a timestamp'],
    ['ok * 2', 'cannot multiply bool and int'],
    ['-name', 'cannot negate string'],
    ['not n', 'not needs a boolean, got int'],
    ['ok and n', 'and needs booleans, got int: `n` in `ok and n`'],
    ['at < 5', 'cannot compare timestamp and int with <'],
    ['ok = 1', 'cannot compare bool and int with ='],
    ["n in (1, 'a')", "in: cannot compare int with string: `'a'`"],
    ['if(n, 1, 2)', 'if(condition, then, else): argument 1 must be a bool, got int'],
    ['if(ok, 1, name)', 'if(condition, then, else): then is int but else is string'],
    ['coalesce(n, name)', 'coalesce(a, b, ...): arguments of types int and string do not mix'],
    ['concat(name, n)', 'argument 2 must be a string, got int; use to_string(x)'],
    ['substr(name, 1.5)', 'substr(s, start, length?): argument 2 must be an int, got float'],
    ['round(amount, 0.5)', 'round(x, digits?): argument 2 must be an int, got float'],
    ['year(amount)', 'year(t): argument 1 must be a timestamp, got float'],
    ['to_number(at)', 'to_number(x): use epoch_ms(t) for a timestamp as milliseconds'],
    ['bucket(amount, n)', 'bucket(x, edge1, edge2, ...): edges must be number literals: `n`'],
    ['bucket(amount, 1, 1)', 'edges must be in ascending order: `1` in `bucket(amount, 1, 1)`'],
    ['bucket(amount, null)', 'edges must be number literals'],
  ])('%s: %s', (source, message) => {
    const error = errorOf(() => compileToFunction(source, SCHEMA));
    expect(error.code).toBe('FERRY_ARGUMENT_INVALID');
    expect(error.message).toContain(message);
  });

  it('quotes the sub-expression from the tree when there is no source text', () => {
    const error = errorOf(() => typeOf(parseExpression("( 'abc'+1 ) * 2"), SCHEMA));
    expect(error.message).toBe("type error: cannot add string and int: `'abc' + 1`");
  });
});

describe('unknown columns', () => {
  it('lists the columns and suggests a near miss', () => {
    const error = errorOf(() => compileToSql('log(Amount + 1)', SCHEMA));
    expect(error.code).toBe('FERRY_COLUMN_UNKNOWN');
    expect(error.message).toBe(
      "column 'Amount' is not in the table (columns: amount, n, name, ok, at); did you mean " +
        'amount? (column 5)\n  log(Amount + 1)\n      ^^^^^^',
    );
    expect(error.details).toEqual({
      column: 'Amount',
      columns: ['amount', 'n', 'name', 'ok', 'at'],
    });
    expect(errorOf(() => typeOf('x', SCHEMA)).message).not.toContain('did you mean');
  });

  it('does not take properties of Object for columns', () => {
    expect(errorOf(() => typeOf('constructor', SCHEMA)).code).toBe('FERRY_COLUMN_UNKNOWN');
    expect(errorOf(() => typeOf('toString', {})).message).toContain('(columns: none)');
  });
});

describe('compileToSql', () => {
  it('quotes any column name and escapes string literals', () => {
    const schema: ExpressionSchema = { 'a"b': 'int', 'my col': 'float', select: 'string' };
    const sql = compileToSql(
      "concat(`select`, ' said ''hi''; DROP TABLE t; --') = '' or `a\"b` + `my col` > 1",
      schema,
    );
    expect(sql).toBe(
      "((concat(\"select\", ' said ''hi''; DROP TABLE t; --') = '') OR " +
        '(("a""b" + "my col") > CAST(1 AS BIGINT)))',
    );
  });

  it('runs in DuckDB over odd column names, with a custom column quoting', async () => {
    const schema: ExpressionSchema = { 'a"b': 'int', 'my col': 'float', select: 'string' };
    const text = compileToSql(
      "concat(`select`, ' said ''hi''; DROP TABLE t; --')",
      schema,
      (name) => `t.${quoteIdentifier(name)}`,
    );
    const number = compileToSql('`a"b` + `my col`', schema, (name) => `t.${quoteIdentifier(name)}`);
    expect(number).toBe('(t."a""b" + t."my col")');
    const table = await withDuckDB(async (con) =>
      resultToTable(
        await con.run(
          `SELECT ${text} AS text, ${number} AS number
           FROM (SELECT 2::BIGINT AS "a""b", 0.5::DOUBLE AS "my col", 'Ann' AS "select") t`,
        ),
      ),
    );
    expect(table.columns.map((c) => c.values[0])).toEqual(["Ann said 'hi'; DROP TABLE t; --", 2.5]);
  });

  it('keeps float literals exact doubles, not decimals', async () => {
    const table = await withDuckDB(async (con) =>
      resultToTable(await con.run(`SELECT ${compileToSql('0.1 + 0.2', {})} AS x`)),
    );
    expect(table.columns[0]?.values).toEqual([0.1 + 0.2]);
  });

  it('gives an always-null expression a type', () => {
    expect(compileToSql('null', {})).toBe('CAST(NULL AS DOUBLE)');
    expect(compileToSql('year(null)', {})).toBe('CAST(NULL AS BIGINT)');
  });
});

describe('compileToFunction', () => {
  it('evaluates a row, reading a missing key and non-finite numbers as null', () => {
    const f = compileToFunction('coalesce(amount, -1) * 2', SCHEMA);
    expect(f({ amount: 1.25 })).toBe(2.5);
    expect(f({})).toBe(-2);
    expect(f({ amount: Number.NaN })).toBe(-2);
    expect(f({ amount: Infinity })).toBe(-2);
  });

  it('can be reused across rows and is independent of other compilations', () => {
    const big = compileToFunction("amount > 10 and name in ('a', 'b')", SCHEMA);
    const upper = compileToFunction('upper(name)', SCHEMA);
    const rows = [
      { amount: 11, name: 'a' },
      { amount: 11, name: 'c' },
      { amount: null, name: 'a' },
      { amount: null, name: 'c' },
      { amount: 1, name: null },
    ];
    expect(rows.map(big)).toEqual([true, false, null, false, false]);
    expect(rows.map(upper)).toEqual(['A', 'C', 'A', 'C', null]);
  });

  it('rejects a value of the wrong type for its column, naming the column', () => {
    const f = compileToFunction('amount + 1', SCHEMA);
    const error = errorOf(() => f({ amount: '1.5' }));
    expect(error.code).toBe('FERRY_ARGUMENT_INVALID');
    expect(error.message).toBe(
      'column \'amount\' is declared float but the row holds string "1.5"; cast rows to the ' +
        'schema before evaluating expressions on them',
    );
    expect(errorOf(() => compileToFunction('ok', SCHEMA)({ ok: 1 })).message).toContain(
      "column 'ok' is declared bool but the row holds number 1",
    );
  });

  it('accepts a parsed tree as well as text', () => {
    const f = compileToFunction(parseExpression('epoch_ms(at) / 1000'), SCHEMA);
    expect(f({ at: Date.parse('2024-01-01T00:00:00Z') })).toBe(1_704_067_200);
  });
});

describe('docs/expressions.md', () => {
  it('documents every function', () => {
    const docs = readFileSync(
      fileURLToPath(new URL('../../../docs/expressions.md', import.meta.url)),
      'utf8',
    );
    expect(FUNCTIONS.filter((name) => !docs.includes(`| \`${name}(`))).toEqual([]);
  });
});
