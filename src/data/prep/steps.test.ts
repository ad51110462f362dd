import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseProjectSpec } from '../../config/load.js';
import type { Table } from '../../core/table.js';
import { openParquetOfflineStore } from '../../feature-store/offline/parquet.js';
import { tempDirs } from '../../testing/temp.js';
import { readTable } from '../read.js';
import type { PrepReport, StageReport } from './report.js';
import { runRecipe, type RunRecipeOptions } from './run.js';
import { splitHash } from './steps/split.js';

const tmp = tempDirs();

interface Prepared {
  readonly report: PrepReport;
  readonly dir: string;
  /** The output, or the train part when the recipe splits. */
  readonly table: Table;
  readonly parts: Record<string, Table>;
}

/** Writes `files` and a project with `sources` and one recipe `r` of `steps`, then runs it. */
async function prep(
  files: Record<string, string>,
  steps: unknown[],
  extra: { sources?: unknown[]; validations?: unknown[]; validation?: string } = {},
  options: RunRecipeOptions = {},
): Promise<Prepared> {
  const dir = tmp.fresh();
  for (const [name, content] of Object.entries(files)) writeFileSync(path.join(dir, name), content);
  const spec = parseProjectSpec(
    {
      sources: extra.sources ?? [{ name: 'data', type: 'csv', path: 'data.csv' }],
      validations: extra.validations ?? [],
      recipes: [
        {
          name: 'r',
          source: 'data',
          steps,
          ...(extra.validation ? { validation: extra.validation } : {}),
        },
      ],
    },
    'test',
  );
  const out = path.join(dir, 'out.parquet');
  const report = await runRecipe(spec, dir, 'r', { out, ...options });
  const parts: Record<string, Table> = {};
  for (const file of report.output.files) {
    parts[file.part ?? 'all'] = await readTable(file.path, { allowEmpty: true });
  }
  return { report, dir, table: parts.all ?? (parts.train as Table), parts };
}

function column(table: Table, name: string): unknown[] {
  const found = table.columns.find((c) => c.name === name);
  if (!found) throw new Error(`no column ${name} in ${table.columns.map((c) => c.name).join(',')}`);
  return found.values;
}

function stage(report: PrepReport, name: string): StageReport {
  const found = report.stages.find((s) => s.stage === name);
  if (!found) throw new Error(`no stage ${name}`);
  return found;
}

/** rows in = rows out + removed, at every stage, and each stage starts where the last ended. */
function expectAccounted(report: PrepReport): void {
  let previous: number | null = null;
  for (const s of report.stages) {
    const removed = Object.values(s.removed).reduce((n: number, k) => n + (k ?? 0), 0);
    expect(s.rowsIn, `${s.description}`).toBe(s.rowsOut + removed);
    if (previous !== null) expect(s.rowsIn, `${s.description}`).toBe(previous);
    previous = s.rowsOut;
  }
  expect(report.output.rows).toBe(previous);
}

const csv = (header: string, rows: readonly (readonly unknown[])[]): string =>
  [header, ...rows.map((r) => r.map((v) => (v === null ? '' : String(v))).join(','))].join('\n') +
  '\n';

describe('dedupe', () => {
  const data = csv('k,ts,v', [
    ['a', '2024-01-01 00:00', 1],
    ['a', '2024-01-03 00:00', 2],
    ['a', '2024-01-03 00:00', 3], // ties a's latest time, later in the file
    ['b', null, 4], // no time: never the latest while another has one
    ['b', '2024-01-02 00:00', 5],
    ['c', '2024-01-01 00:00', 6],
    ['c', '2024-01-01 00:00', 7], // ties c's earliest time, later in the file
    ['a', '2024-01-02 00:00', 8],
  ]);

  it('keeps the last row per key by time, the later in the file on ties, never a missing time', async () => {
    const { table, report } = await prep({ 'data.csv': data }, [
      { step: 'dedupe', columns: ['k'], keep: 'last', order_by: 'ts' },
    ]);
    expect(column(table, 'k')).toEqual(['a', 'b', 'c']);
    expect(column(table, 'v')).toEqual([3, 5, 7]);
    expect(stage(report, 'dedupe').removed).toEqual({ deduplicated: 5 });
    expectAccounted(report);
  });

  it('keeps the first row per key by time, the earlier in the file on ties', async () => {
    const { table } = await prep({ 'data.csv': data }, [
      { step: 'dedupe', columns: ['k'], keep: 'first', order_by: 'ts' },
    ]);
    // Output keeps the source's row order.
    expect(column(table, 'v')).toEqual([1, 5, 6]);
  });

  it('removes exact duplicate rows only, keeping the first in the file', async () => {
    const { table, report } = await prep(
      {
        'data.csv': csv('k,v', [
          ['a', 1],
          ['a', 2],
          ['a', 1],
          [null, 3],
          [null, 3],
          ['b', 1],
        ]),
      },
      [{ step: 'dedupe' }],
    );
    expect(column(table, 'k')).toEqual(['a', 'a', null, 'b']);
    expect(column(table, 'v')).toEqual([1, 2, 3, 1]);
    expect(stage(report, 'dedupe').removed).toEqual({ deduplicated: 2 });
  });
});

describe('split', () => {
  const labelled = csv(
    'id,label',
    Array.from({ length: 1000 }, (_, i) => [i + 1, i % 10 === 3 ? 1 : 0]),
  );
  const stratified = {
    step: 'split',
    method: 'stratified',
    column: 'label',
    fractions: { train: 0.7, validation: 0.15, test: 0.15 },
    seed: 7,
  };

  it('keeps each class in the same shares in every part', async () => {
    const { parts, report } = await prep({ 'data.csv': labelled }, [stratified]);
    const positives = (t: Table): number => column(t, 'label').filter((v) => v === 1).length;
    expect([parts.train, parts.validation, parts.test].map((t) => t?.rowCount)).toEqual([
      700, 150, 150,
    ]);
    expect([parts.train, parts.validation, parts.test].map((t) => positives(t as Table))).toEqual([
      70, 15, 15,
    ]);
    expect(stage(report, 'split').splits).toEqual({ train: 700, validation: 150, test: 150 });
    // Not simply the first rows of the file.
    expect(Math.max(...(column(parts.train as Table, 'id') as number[]))).toBeGreaterThan(900);
    expectAccounted(report);
  });

  it('gives the same parts for the same seed and other parts for another seed', async () => {
    const ids = async (seed: number): Promise<unknown[]> =>
      column(
        (await prep({ 'data.csv': labelled }, [{ ...stratified, seed }])).parts.test as Table,
        'id',
      );
    const first = await ids(7);
    expect(await ids(7)).toEqual(first);
    expect(await ids(8)).not.toEqual(first);
  });

  it('ranks rows by a seeded hash of their row number (reproducible outside Ferry too)', async () => {
    const rows = Array.from({ length: 20 }, (_, i) => [i + 1]);
    const { parts } = await prep({ 'data.csv': csv('id', rows) }, [
      {
        step: 'split',
        method: 'random',
        fractions: { train: 0.5, validation: 0.25, test: 0.25 },
        seed: 3,
      },
    ]);
    const byHash = [...Array.from({ length: 20 }, (_, i) => i + 1)].sort(
      (a, b) => splitHash(3, a) - splitHash(3, b) || a - b,
    );
    expect(new Set(column(parts.train as Table, 'id'))).toEqual(new Set(byHash.slice(0, 10)));
    expect(new Set(column(parts.test as Table, 'id'))).toEqual(new Set(byHash.slice(15)));
  });

  it('splits by time: every train time is before every validation time, ties stay together', async () => {
    const rows: unknown[][] = [];
    for (let i = 0; i < 40; i++) {
      // Days 1..10, four rows each, in shuffled file order; one row without a time.
      const day = ((i * 7) % 10) + 1;
      rows.push([i, `2024-01-${String(day).padStart(2, '0')} 12:00`]);
    }
    rows.push([99, null]);
    const { parts, report } = await prep({ 'data.csv': csv('id,at', rows) }, [
      {
        step: 'split',
        method: 'time',
        column: 'at',
        fractions: { train: 0.55, validation: 0.25, test: 0.2 },
      },
    ]);
    const times = (t: Table): number[] => column(t, 'at') as number[];
    const train = times(parts.train as Table);
    const validation = times(parts.validation as Table);
    const test = times(parts.test as Table);
    expect(Math.max(...train)).toBeLessThan(Math.min(...validation));
    expect(Math.max(...validation)).toBeLessThan(Math.min(...test));
    // 22 rows would cut day 6 in two: the whole day goes to train.
    expect([train.length, validation.length, test.length]).toEqual([24, 8, 8]);
    expect(stage(report, 'split').removed).toEqual({ missing: 1 });
    expectAccounted(report);
  });
});

describe('cast, fill and clip', () => {
  it('reads locale numbers and zoned timestamps, counting what did not convert', async () => {
    const { table, report } = await prep(
      {
        'data.csv': csv('amount,at', [
          ['"1.234,5"', '31/03/2024 02:30'],
          ['"-0,5"', '27/10/2024 02:30'],
          ['n/a', '30/02/2024 10:00'],
          ['"7"', ''],
        ]),
      },
      [
        { step: 'cast', column: 'amount', to: 'float', decimal: ',', thousands: '.' },
        {
          step: 'cast',
          column: 'at',
          to: 'timestamp',
          format: '%d/%m/%Y %H:%M',
          timezone: 'Europe/Paris',
        },
      ],
    );
    expect(column(table, 'amount')).toEqual([1234.5, -0.5, null, 7]);
    expect(column(table, 'at')).toEqual([
      Date.parse('2024-03-31T01:30:00Z'),
      Date.parse('2024-10-27T01:30:00Z'),
      null,
      null,
    ]);
    const casts = report.stages.filter((s) => s.stage === 'cast');
    expect(casts.map((s) => s.conversionFailures)).toEqual([{ amount: 1 }, { at: 1 }]);
  });

  it('clips to the quantiles of the fit rows: interpolated for floats, actual values for ints', async () => {
    const rows = Array.from({ length: 101 }, (_, i) => [i * 1.5, i]);
    rows.push([1000, 1000]);
    const { table, report } = await prep({ 'data.csv': csv('x,n', rows) }, [
      { step: 'clip', columns: ['x', 'n'], lower: 0.05, upper: 0.95 },
    ]);
    // 102 values: position q × 101. x: 5.05 → 7.5 + 0.05 × 1.5; 95.95 → between 143.25 and 144.75.
    const fitted = JSON.parse(readFileSync(report.output.fittedRecipe, 'utf8')) as {
      steps: { columns: { column: string; min: number; max: number }[] }[];
    };
    const bounds = fitted.steps[0]?.columns ?? [];
    expect(bounds[0]?.min).toBeCloseTo(7.575, 9);
    expect(bounds[0]?.max).toBeCloseTo(143.925, 9);
    expect(bounds[1]).toMatchObject({ min: 5, max: 96 });
    const x = column(table, 'x') as number[];
    const n = column(table, 'n') as number[];
    expect(Math.min(...x)).toBeCloseTo(7.575, 9);
    expect(Math.max(...x)).toBeCloseTo(143.925, 9);
    expect([Math.min(...n), Math.max(...n)]).toEqual([5, 96]);
    expect(n.every(Number.isInteger)).toBe(true);
  });

  it('learns fill values from the train part only when the recipe splits, even when the split is written last', async () => {
    // Train rows have small amounts, the rest large ones: a mean over all rows would be wrong.
    const rows = Array.from({ length: 100 }, (_, i) => [i + 1, i % 5 === 0 ? null : i + 1]);
    const { report, parts } = await prep({ 'data.csv': csv('t,amount', rows) }, [
      { step: 'cast', column: 't', to: 'timestamp', unit: 's' },
      { step: 'fill', columns: ['amount'], with: 'mean' },
      {
        step: 'split',
        method: 'time',
        column: 't',
        fractions: { train: 0.5, validation: 0.25, test: 0.25 },
      },
    ]);
    expect(report.reordered).toMatch(/split \(step 3\) ran before step 2/);
    expect(report.fittedOn).toBe('train');
    expect(report.fitRows).toBe(50);
    const trainValues = rows
      .slice(0, 50)
      .map((r) => r[1])
      .filter((v): v is number => v !== null);
    const mean = Math.round(trainValues.reduce((a, b) => a + b, 0) / trainValues.length);
    const filled = column(parts.test as Table, 'amount');
    expect(filled).toContain(mean);
    expect(report.stages.map((s) => s.stage)).toEqual(['read', 'cast', 'split', 'fill']);
  });

  it('refuses a split written after a filter that follows a fitted step, saying what to move', async () => {
    await expect(
      prep({ 'data.csv': csv('x', [[1], [2]]) }, [
        { step: 'fill', columns: ['x'], with: 'median' },
        { step: 'filter', where: 'x > 1' },
        { step: 'split', method: 'random', fractions: { train: 0.5, validation: 0.5, test: 0 } },
      ]),
    ).rejects.toMatchObject({
      code: 'FERRY_CONFIG_INVALID',
      message: expect.stringMatching(
        /step 2 \(filter\) removes rows.*move the split before step 1/,
      ),
    });
  });
});

describe('encode', () => {
  it('one-hot encodes categories seen min_count times; rare ones go to other, nulls to no column', async () => {
    const { table, report } = await prep(
      { 'data.csv': csv('c', [['fr'], ['fr'], ['de'], ['de'], ['it'], [null]]) },
      [{ step: 'encode', column: 'c', method: 'one_hot', min_count: 2 }],
    );
    expect(report.output.schema.map((c) => c.name)).toEqual(['c_de', 'c_fr', 'c_other']);
    expect(column(table, 'c_fr')).toEqual([1, 1, 0, 0, 0, 0]);
    expect(column(table, 'c_de')).toEqual([0, 0, 1, 1, 0, 0]);
    expect(column(table, 'c_other')).toEqual([0, 0, 0, 0, 1, 0]);
  });
});

describe('merge', () => {
  const events = csv('card,at,amount', [
    ['c1', '2024-01-01 10:00', 1],
    ['c1', '2024-01-01 12:00', 2],
    ['c2', '2024-01-01 09:00', 3],
    ['c3', '2024-01-01 10:00', 4],
    ['c1', null, 5],
  ]);
  const features = csv('card,at,score', [
    ['c1', '2024-01-01 09:00', 0.1],
    ['c1', '2024-01-01 11:00', 0.2],
    ['c1', '2024-01-01 11:00', 0.25], // same key and time, later in the file: wins
    ['c1', '2024-01-01 12:00:01', 0.9], // one second after the last event: never used
    ['c2', '2024-01-01 09:30', 0.5], // after c2's event: never used
  ]);
  const sources = [
    { name: 'data', type: 'csv', path: 'events.csv' },
    { name: 'features', type: 'csv', path: 'features.csv' },
  ];

  it('takes, as of each row, the latest earlier row of the other source: never a future one', async () => {
    const { table, report } = await prep(
      { 'events.csv': events, 'features.csv': features },
      [{ step: 'merge', source: 'features', on: ['card'], as_of: { left: 'at', right: 'at' } }],
      { sources },
    );
    expect(column(table, 'amount')).toEqual([1, 2, 3, 4, 5]);
    expect(column(table, 'score')).toEqual([0.1, 0.25, null, null, null]);
    expect(column(table, 'at_features')).toEqual([
      Date.parse('2024-01-01T09:00:00Z'),
      Date.parse('2024-01-01T11:00:00Z'),
      null,
      null,
      null,
    ]);
    expect(stage(report, 'merge').notes.join(' ')).toMatch(
      /1 row.*repeat.*3 row\(s\) found no match/,
    );
    expectAccounted(report);
  });

  it('removes rows without a match in an inner merge, and counts them', async () => {
    const { table, report } = await prep(
      { 'events.csv': events, 'features.csv': features },
      [
        {
          step: 'merge',
          source: 'features',
          on: ['card'],
          how: 'inner',
          as_of: { left: 'at', right: 'at' },
        },
      ],
      { sources },
    );
    expect(column(table, 'amount')).toEqual([1, 2]);
    expect(stage(report, 'merge').removed).toEqual({ no_match: 3 });
    expectAccounted(report);
  });

  it('joins on keys without multiplying rows when the other source repeats a key', async () => {
    const { table, report } = await prep(
      {
        'events.csv': events,
        'cards.csv': csv('card,segment', [
          ['c1', 'old'],
          ['c2', 'b'],
          ['c1', 'new'],
        ]),
      },
      [{ step: 'merge', source: 'cards', on: ['card'] }],
      { sources: [sources[0], { name: 'cards', type: 'csv', path: 'cards.csv' }] },
    );
    expect(column(table, 'segment')).toEqual(['new', 'new', 'b', null, 'new']);
    expect(stage(report, 'merge').notes[0]).toMatch(/1 row\(s\) of source 'cards' repeat/);
  });
});

describe('a whole recipe', () => {
  const rows = [
    ['1', '2024-01-01', '10', 'fr', 'x'],
    ['2', '2024-01-02', '20', 'de', 'x'],
    ['2', '2024-01-02', '20', 'de', 'x'],
    ['3', 'soon', '30', 'fr', 'y'],
    ['4', '2024-01-04', '', 'it', 'y'],
    ['5', '2024-01-05', '-5', 'fr', 'x'],
    ['6', '2024-01-06', '60', null, 'y'],
  ];
  const steps = [
    { step: 'rename', columns: { kind: 'category' } },
    { step: 'cast', column: 'when', to: 'timestamp' },
    { step: 'dedupe' },
    { step: 'drop_missing', columns: ['when'] },
    { step: 'filter', where: 'amount is null or amount >= 0' },
    { step: 'fill', columns: ['amount'], with: 'median' },
    { step: 'derive', column: 'large', expr: 'amount > 15' },
    { step: 'encode', column: 'country', method: 'ordinal' },
    { step: 'scale', columns: ['amount'], method: 'min_max' },
    { step: 'drop', columns: ['id'] },
  ];
  const files = {
    'data.csv':
      'id,when,amount,country,kind\n' +
      rows.map((r) => r.map((v) => v ?? '').join(',')).join('\n') +
      '\n6,2024-01-07,70\n',
  };

  it('accounts for every row at every stage and writes the fitted recipe', async () => {
    const { report, table } = await prep(files, steps);
    expectAccounted(report);
    expect(report.stages.map((s) => [s.stage, s.rowsIn, s.rowsOut])).toEqual([
      ['read', 8, 7],
      ['rename', 7, 7],
      ['cast', 7, 7],
      ['dedupe', 7, 6],
      ['drop_missing', 6, 5],
      ['filter', 5, 4],
      ['fill', 4, 4],
      ['derive', 4, 4],
      ['encode', 4, 4],
      ['scale', 4, 4],
      ['drop', 4, 4],
    ]);
    expect(stage(report, 'read').removed).toEqual({ malformed: 1 });
    expect(stage(report, 'cast').conversionFailures).toEqual({ when: 1 });
    expect(stage(report, 'dedupe').requestTime).toMatch(/^skipped/);
    expect(stage(report, 'filter').requestTime).toBe('applied');
    expect(report.output.schema).toEqual([
      { name: 'when', type: 'timestamp' },
      { name: 'amount', type: 'float' },
      { name: 'country', type: 'int' },
      { name: 'category', type: 'string' },
      { name: 'large', type: 'bool' },
    ]);
    // amounts 10, 20, (missing → median 20), 60 scaled by min 10, range 50.
    expect(column(table, 'amount')).toEqual([0, 0.2, 0.2, 1]);
    expect(column(table, 'country')).toEqual([1, 0, 2, null]);
    expect(existsSync(report.output.fittedRecipe)).toBe(true);
  });

  it('writes CSV and JSON lines too', async () => {
    const asCsv = await prep(files, steps, {}, { out: path.join(tmp.fresh(), 'o.csv') });
    const text = readFileSync(asCsv.report.output.files[0]?.path as string, 'utf8');
    expect(text.split('\n')[0]).toBe('when,amount,country,category,large');
    const asJson = await prep(files, steps, {}, { out: path.join(tmp.fresh(), 'o.jsonl') });
    const lines = readFileSync(asJson.report.output.files[0]?.path as string, 'utf8')
      .trim()
      .split('\n');
    expect(lines).toHaveLength(4);
    expect(JSON.parse(lines[0] as string)).toMatchObject({ amount: 0, category: 'x' });
  });
});

describe('validation in a recipe', () => {
  const data = csv('id,amount', [
    [1, 10],
    [2, -5],
    [3, 7],
    [4, -1],
  ]);

  it('quarantines failing rows with the reason and writes the rest', async () => {
    const dir = tmp.fresh();
    const offline = await openParquetOfflineStore({ path: path.join(dir, 'offline') });
    try {
      const { table, report } = await prep(
        { 'data.csv': data },
        [{ step: 'derive', column: 'double', expr: 'amount * 2' }],
        {
          validations: [
            {
              name: 'positive',
              policy: 'quarantine',
              rules: [{ rule: 'range', column: 'amount', min: 0 }],
            },
          ],
          validation: 'positive',
        },
        { quarantine: offline },
      );
      expect(column(table, 'id')).toEqual([1, 3]);
      expect(stage(report, 'validate').removed).toEqual({ quarantined: 2 });
      expect(report.validation?.outcome).toBe('quarantined');
      expectAccounted(report);
      expect(await offline.listTables()).toContain('quarantine/positive');
    } finally {
      await offline.close();
    }
  });

  it('writes nothing when a rule set with policy fail fails', async () => {
    const dir = tmp.fresh();
    writeFileSync(path.join(dir, 'data.csv'), data);
    const spec = parseProjectSpec(
      {
        sources: [{ name: 'data', type: 'csv', path: 'data.csv' }],
        validations: [
          { name: 'strict', policy: 'fail', rules: [{ rule: 'range', column: 'amount', min: 0 }] },
        ],
        recipes: [{ name: 'r', source: 'data', validation: 'strict' }],
      },
      'test',
    );
    const out = path.join(dir, 'out.parquet');
    await expect(runRecipe(spec, dir, 'r', { out })).rejects.toMatchObject({
      code: 'FERRY_VALIDATION_FAILED',
    });
    expect(existsSync(out)).toBe(false);
    expect(existsSync(`${out}.recipe.json`)).toBe(false);
  });
});
