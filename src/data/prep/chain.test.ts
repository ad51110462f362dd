/**
 * The report's figures when they are gathered late (see `chain.ts`): a step's figures must be
 * those of the rows it produced, even when a later step of the same chain removes some of them,
 * and a run must give the same rows whether DuckDB holds them in memory or spills them to disk.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseProjectSpec } from '../../config/load.js';
import type { Table } from '../../core/table.js';
import { tempDirs } from '../../testing/temp.js';
import { withDuckDB } from '../duckdb.js';
import { readTable } from '../read.js';
import type { PrepReport, StageReport } from './report.js';
import { runRecipe, type RunRecipeOptions } from './run.js';

const tmp = tempDirs();

async function prep(
  files: Record<string, string>,
  steps: unknown[],
  options: RunRecipeOptions = {},
  sources: unknown[] = [{ name: 'data', type: 'csv', path: 'data.csv' }],
): Promise<{ report: PrepReport; parts: Record<string, Table> }> {
  const dir = tmp.fresh();
  for (const [name, content] of Object.entries(files)) writeFileSync(path.join(dir, name), content);
  const spec = parseProjectSpec(
    { sources, recipes: [{ name: 'r', source: 'data', steps }] },
    'test',
  );
  const report = await runRecipe(spec, dir, 'r', {
    out: path.join(dir, 'out.parquet'),
    ...options,
  });
  const parts: Record<string, Table> = {};
  for (const file of report.output.files) {
    parts[file.part ?? 'all'] = await readTable(file.path, { allowEmpty: true });
  }
  return { report, parts };
}

/** The stages of one kind, in order. */
function stages(report: PrepReport, name: string): StageReport[] {
  return report.stages.filter((s) => s.stage === name);
}

function values(table: Table | undefined, name: string): unknown[] {
  const found = table?.columns.find((c) => c.name === name);
  if (!found) throw new Error(`no column ${name}`);
  return found.values;
}

describe('figures gathered at checkpoints', () => {
  it('counts values that did not convert even when a later step removes their rows', async () => {
    const csv = [
      'id,amount,at,tag',
      '1,"1.234,5",01/02/2024,7',
      '2,n/a,31/02/2024,abc',
      '3,,02/02/2024,',
      '4,x,bad,9',
      '5,"7,25",,q',
    ].join('\n');
    const { report, parts } = await prep({ 'data.csv': csv + '\n' }, [
      { step: 'cast', column: 'amount', to: 'float', decimal: ',', thousands: '.' },
      { step: 'cast', column: 'at', to: 'timestamp', format: '%d/%m/%Y' },
      { step: 'derive', column: 'n', expr: 'tag', type: 'int' },
      { step: 'drop_missing', columns: ['amount'] },
      { step: 'filter', where: 'at is not null' },
    ]);
    // Blank values are missing, not failures; rows 2, 4 and 5 leave after failing.
    expect(stages(report, 'cast').map((s) => s.conversionFailures)).toEqual([
      { amount: 2 },
      { at: 2 },
    ]);
    expect(stages(report, 'derive')[0]?.conversionFailures).toEqual({ n: 2 });
    expect(report.stages.map((s) => [s.stage, s.rowsIn, s.rowsOut, s.removed])).toEqual([
      ['read', 5, 5, {}],
      ['cast', 5, 5, {}],
      ['cast', 5, 5, {}],
      ['derive', 5, 5, {}],
      ['drop_missing', 5, 2, { missing: 3 }],
      ['filter', 2, 1, { filtered: 1 }],
    ]);
    expect(values(parts.all, 'id')).toEqual([1]);
    expect(values(parts.all, 'n')).toEqual([7]);
  });

  it("reports a merge's unmatched rows and a split's parts before a later filter removes rows", async () => {
    const events =
      'id,card\n' + Array.from({ length: 40 }, (_, i) => `${i + 1},c${i % 4}`).join('\n') + '\n';
    const cards = 'card,limit\nc0,100\nc1,200\n';
    const { report, parts } = await prep(
      { 'events.csv': events, 'cards.csv': cards },
      [
        { step: 'merge', source: 'cards', on: ['card'] },
        {
          step: 'split',
          method: 'random',
          fractions: { train: 0.5, validation: 0.25, test: 0.25 },
          seed: 3,
        },
        { step: 'filter', where: 'limit is not null' },
      ],
      {},
      [
        { name: 'data', type: 'csv', path: 'events.csv' },
        { name: 'cards', type: 'csv', path: 'cards.csv' },
      ],
    );
    expect(stages(report, 'merge')[0]?.notes).toEqual([
      "20 row(s) found no match in 'cards'; its columns are null there",
    ]);
    expect(stages(report, 'split')[0]?.splits).toEqual({ train: 20, validation: 10, test: 10 });
    expect(stages(report, 'filter')[0]).toMatchObject({
      rowsIn: 40,
      rowsOut: 20,
      removed: { filtered: 20 },
    });
    const written = report.output.files.reduce((n, f) => n + f.rows, 0);
    expect(written).toBe(20);
    // Every part is in file order, whatever order the join and the split left the rows in.
    for (const part of Object.values(parts)) {
      const ids = values(part, 'id') as number[];
      expect(ids).toEqual([...ids].sort((a, b) => a - b));
    }
  });

  it('gives the same rows and report when DuckDB must spill to stay under its memory limit', async () => {
    // Parquet, so that the reader needs little memory of its own; 300,000 rows are several
    // times what 64 MB holds through a window, a join and a sort.
    const dir = tmp.fresh();
    await withDuckDB((con) =>
      con.run(
        `COPY (SELECT CASE WHEN i % 7 = 0 THEN i - 1 ELSE i END AS k, (i * 7919) % 10007 AS v, ` +
          `'name-' || (i * 31 % 5000) AS name, i % 3 AS label FROM range(300000) r(i)) ` +
          `TO '${path.join(dir, 'data.parquet')}' (FORMAT parquet)`,
      ),
    );
    const steps = [
      { step: 'dedupe', columns: ['k'], keep: 'last', order_by: 'v' },
      {
        step: 'split',
        method: 'stratified',
        column: 'label',
        fractions: { train: 0.6, validation: 0.2, test: 0.2 },
        seed: 11,
      },
      { step: 'fill', columns: ['v'], with: 'median' },
    ];
    const sources = [{ name: 'data', type: 'parquet', path: path.join(dir, 'data.parquet') }];
    const roomy = await prep({}, steps, {}, sources);
    const tight = await prep({}, steps, { memoryLimit: '64MB' }, sources);
    const strip = (r: PrepReport): unknown => r.stages.map((s) => ({ ...s, seconds: 0 }));
    expect(strip(tight.report)).toEqual(strip(roomy.report));
    expect(stages(tight.report, 'dedupe')[0]?.removed).toEqual({ deduplicated: 42_857 });
    for (const part of ['train', 'validation', 'test']) {
      expect(tight.parts[part]).toEqual(roomy.parts[part]);
    }
  });

  it('refuses a memory limit DuckDB cannot read, saying what to give', async () => {
    await expect(
      prep({ 'data.csv': 'a\n1\n' }, [{ step: 'drop_missing', columns: ['a'] }], {
        memoryLimit: 'lots',
      }),
    ).rejects.toMatchObject({
      code: 'FERRY_ARGUMENT_INVALID',
      message: expect.stringMatching(/memory limit 'lots'.*'1GB'/),
    });
  });
});
