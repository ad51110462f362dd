/**
 * The parity test: a fitted recipe with every row-wise step gives the same rows in batch (DuckDB)
 * and one row at a time (applyToRow), on data made to expose differences: nulls and blanks,
 * values that do not convert, locale numbers, times on daylight-saving changes, categories and
 * levels never seen when fitting, values beyond the clip bounds, rows the filter removes. The
 * recipe is fitted on one file and applied to another, as at request time.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseProjectSpec } from '../../config/load.js';
import { tableToRows, type Row } from '../../core/table.js';
import { tempDirs } from '../../testing/temp.js';
import { readTable } from '../read.js';
import type { FittedRecipe } from './fitted.js';
import { applyToRow, applyToRows } from './row.js';
import { runRecipe } from './run.js';

const tmp = tempDirs();

const HEADER = ['id', 'amount', 'at', 'country', 'level', 'score', 'flag', 'note'] as const;
type Line = readonly (string | null)[];

/** Rows to fit on: every category and level appears, some values are missing or broken. */
const FIT: Line[] = [
  ['1', '1.234,5', '31/03/2024 01:30', 'fr', 'low', '0.5', 'yes', 'a'],
  ['2', '12,25', '31/03/2024 03:30', 'fr', 'mid', '1.5', 'no', 'b'],
  ['3', 'n/a', '27/10/2024 02:30', 'de', 'high', '2.5', 'yes', 'c'],
  ['4', null, '27/10/2024 01:59', 'de', 'mid', null, 'y', null],
  ['5', '-3,5', '01/01/2024 00:00', 'it', 'low', '-10', 'N', 'e'],
  ['6', ' 7,0 ', '29/02/2024 23:59', null, 'high', '3.75', 'maybe', 'f'],
  ['7', '100.000,0', '15/06/2024 12:00', 'fr', null, '100', 'true', 'g'],
  ['8', '0,001', 'garbage', 'es', 'low', '0', 'FALSE', 'h'],
  ['9', '2', '30/02/2024 10:00', 'de', 'mid', '4.125', '0', 'i'],
  ['10', '9.999,99', '31/12/2024 23:59', 'fr', 'mid', '-0.25', '1', 'j'],
];

/** Rows to apply to: unseen categories and levels, edge values, rows the filter removes. */
const APPLY: Line[] = [
  ['11', '5', '31/03/2024 02:30', 'jp', 'extreme', '1000', 'yes', 'k'],
  ['12', '-0', '27/10/2024 02:59', 'fr', 'low', '-1000', 'no', null],
  ['13', '1.000.000,5', '01/01/1970 00:00', 'de', 'mid', '2.5', 'y', 'm'],
  ['14', 'abc', '', null, null, null, null, null],
  [null, '3', '01/01/2024 00:00', 'fr', 'low', '1', 'yes', 'n'],
  ['16', '0,5', '31/03/2024 02:00', 'es', 'high', '0.0001', 'n', 'o'],
  ['17', '  ', '10/10/2024 10:10', 'FR', 'Low', '3', 't', 'p'],
  ['18', '1,5', '01/13/2024 00:00', 'it', 'mid', 'NaN', 'f', 'q'],
];

const STEPS = [
  { step: 'rename', columns: { note: 'comment' } },
  { step: 'cast', column: 'amount', to: 'float', decimal: ',', thousands: '.' },
  {
    step: 'cast',
    column: 'at',
    to: 'timestamp',
    format: '%d/%m/%Y %H:%M',
    timezone: 'Europe/Paris',
  },
  { step: 'cast', column: 'flag', to: 'bool' },
  { step: 'cast', column: 'score', to: 'float' },
  { step: 'drop_missing', columns: ['id'] },
  { step: 'filter', where: 'amount is null or amount < 500000' },
  { step: 'fill', columns: ['amount'], with: 'mean' },
  { step: 'fill', columns: ['score'], with: 'median' },
  { step: 'fill', columns: ['flag'], with: 'constant', value: false },
  { step: 'derive', column: 'ratio', expr: 'if(score = 0, null, amount / score)' },
  { step: 'derive', column: 'month', expr: 'month(at)' },
  { step: 'derive', column: 'id_text', expr: 'id * 10', type: 'string' },
  { step: 'encode', column: 'country', method: 'one_hot', min_count: 2 },
  { step: 'encode', column: 'level', method: 'ordinal' },
  { step: 'clip', columns: ['score', 'month'], lower: 0.1, upper: 0.9 },
  { step: 'scale', columns: ['amount'], method: 'standard' },
  { step: 'scale', columns: ['score'], method: 'min_max' },
  { step: 'drop', columns: ['comment'] },
];

function csvField(v: string | null): string {
  if (v === null) return '';
  return /[",\n]/.test(v) || v.trim() !== v ? `"${v.replaceAll('"', '""')}"` : v;
}

function writeCsv(file: string, lines: readonly Line[]): void {
  writeFileSync(
    file,
    [HEADER.join(','), ...lines.map((l) => l.map(csvField).join(','))].join('\n') + '\n',
  );
}

/** A CSV line as the batch path reads it: an empty field is missing. */
function asInput(line: Line): Record<string, string | null> {
  return Object.fromEntries(HEADER.map((h, i) => [h, line[i] === '' ? null : (line[i] ?? null)]));
}

async function batch(
  dir: string,
  file: string,
  fitted?: FittedRecipe,
): Promise<{ rows: Row[]; fitted: FittedRecipe }> {
  const spec = parseProjectSpec(
    {
      sources: [
        {
          name: 'data',
          type: 'csv',
          path: file,
          // Text in, so that the recipe's casts do the reading.
          schema: { amount: 'string', at: 'string', flag: 'string', score: 'string' },
        },
      ],
      recipes: [{ name: 'p', source: 'data', steps: STEPS }],
    },
    'parity',
  );
  const out = path.join(dir, `${path.basename(file)}.parquet`);
  const report = await runRecipe(spec, dir, 'p', { out, ...(fitted ? { fitted } : {}) });
  const table = await readTable(out, { allowEmpty: true });
  const recipe = (await import('./fitted.js')).loadFittedRecipe(report.output.fittedRecipe);
  return { rows: tableToRows(table), fitted: recipe };
}

describe('parity of batch and request-time preparation', () => {
  it('gives the same rows in DuckDB and through applyToRow, on the fit rows and on new rows', async () => {
    const dir = tmp.fresh();
    writeCsv(path.join(dir, 'fit.csv'), FIT);
    writeCsv(path.join(dir, 'apply.csv'), APPLY);

    const fitted = await batch(dir, 'fit.csv');
    const js = applyToRows(fitted.fitted, FIT.map(asInput));
    expect(js.rows).toEqual(fitted.rows);
    expect(js.removed).toBe(0);

    const applied = await batch(dir, 'apply.csv', fitted.fitted);
    const jsApplied = applyToRows(fitted.fitted, APPLY.map(asInput));
    expect(jsApplied.rows).toEqual(applied.rows);
    // The row without an id and the one past the filter leave in both.
    expect(jsApplied.removed).toBe(2);
    expect(applied.rows).toHaveLength(APPLY.length - 2);

    // The data did reach the edges the test is about.
    const jp = applied.rows.find((r) => r.id === 11) as Row;
    expect(jp).toMatchObject({ country_other: 1, country_fr: 0, level: -1 });
    expect(jp.at).toBe(Date.parse('2024-03-31T01:30:00Z'));
    const blank = applied.rows.find((r) => r.id === 17) as Row;
    expect(blank).toMatchObject({ country_other: 1, level: -1, flag: true });
    const clipBounds = fitted.fitted.steps.find((s) => s.step === 'clip');
    expect(clipBounds?.step === 'clip' && clipBounds.columns[0]?.max).toBeLessThan(1000);
  });

  it('reads typed request values the way the batch path reads text', () => {
    const fitted: FittedRecipe = {
      format: 'ferry.fitted-recipe/1',
      recipe: 't',
      source: {
        name: 't',
        type: 'csv',
        schema: [
          { name: 'n', type: 'int' },
          { name: 'at', type: 'timestamp' },
        ],
      },
      fittedOn: 'all',
      fitRows: 0,
      steps: [{ step: 'filter', where: 'n > 1' }],
      schema: [
        { name: 'n', type: 'int' },
        { name: 'at', type: 'timestamp' },
      ],
      createdAt: '2024-01-01T00:00:00Z',
    };
    expect(applyToRow(fitted, { n: '2', at: '2024-01-01T00:00:00Z' })).toEqual({
      n: 2,
      at: Date.parse('2024-01-01T00:00:00Z'),
    });
    expect(applyToRow(fitted, { n: 2, at: 0 })).toEqual({ n: 2, at: 0 });
    expect(applyToRow(fitted, { n: 1, at: 0 })).toBeNull();
    expect(applyToRow(fitted, { n: 2.5 })).toBeNull();
  });
});
