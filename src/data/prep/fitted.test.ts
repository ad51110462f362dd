import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseProjectSpec } from '../../config/load.js';
import { tableToRows } from '../../core/table.js';
import { tempDirs } from '../../testing/temp.js';
import { readTable } from '../read.js';
import { loadFittedRecipe, parseFittedRecipe } from './fitted.js';
import { applyToRow } from './row.js';
import { runRecipe } from './run.js';

const tmp = tempDirs();

const STEPS = [
  { step: 'fill', columns: ['amount'], with: 'mean' },
  { step: 'encode', column: 'shop', method: 'one_hot' },
  { step: 'scale', columns: ['amount'], method: 'standard' },
];

function project(dir: string, file: string): ReturnType<typeof parseProjectSpec> {
  return parseProjectSpec(
    {
      sources: [{ name: 'sales', type: 'csv', path: file }],
      recipes: [{ name: 'sales', source: 'sales', steps: STEPS }],
    },
    path.join(dir, 'ferry.yaml'),
  );
}

describe('fitted recipes', () => {
  it('round-trips through JSON and applies again without refitting, in batch and per row', async () => {
    const dir = tmp.fresh();
    writeFileSync(path.join(dir, 'a.csv'), 'amount,shop\n10,x\n20,y\n,x\n30,x\n');
    writeFileSync(path.join(dir, 'b.csv'), 'amount,shop\n1000,x\n,z\n3000,y\n');
    const first = await runRecipe(project(dir, 'a.csv'), dir, 'sales', {
      out: path.join(dir, 'a.parquet'),
    });
    const fitted = loadFittedRecipe(first.output.fittedRecipe);
    expect(fitted.steps[0]).toEqual({
      step: 'fill',
      with: 'mean',
      values: [{ column: 'amount', type: 'int', value: 20 }],
    });
    expect(JSON.parse(JSON.stringify(fitted))).toEqual(fitted);

    // Applied to other data: the constants learned on a.csv, not b.csv's.
    const again = await runRecipe(project(dir, 'b.csv'), dir, 'sales', {
      out: path.join(dir, 'b.parquet'),
      fitted,
    });
    const rows = tableToRows(await readTable(path.join(dir, 'b.parquet')));
    const scale = fitted.steps[2];
    if (scale?.step !== 'scale') throw new Error('expected the scale step third');
    const { offset, scale: spread } = scale.columns[0] as { offset: number; scale: number };
    expect(rows.map((r) => r.amount)).toEqual([
      (1000 - offset) / spread,
      (20 - offset) / spread,
      (3000 - offset) / spread,
    ]);
    // 'z' was never seen: it goes to shop_other.
    expect(rows[1]).toMatchObject({ shop_x: 0, shop_y: 0, shop_other: 1 });
    expect(loadFittedRecipe(again.output.fittedRecipe)).toEqual(fitted);
    expect(applyToRow(fitted, { amount: 1000, shop: 'x' })).toEqual(rows[0]);
  });

  it('refuses a file that is not a fitted recipe of this version, saying what to do', () => {
    const dir = tmp.fresh();
    const file = path.join(dir, 'old.recipe.json');
    writeFileSync(file, JSON.stringify({ format: 'ferry.fitted-recipe/0', steps: [] }));
    expect(() => loadFittedRecipe(file)).toThrow(/not a fitted recipe.*ferry data prep/);
    expect(() => parseFittedRecipe({ format: 'ferry.fitted-recipe/1' })).toThrow(
      expect.objectContaining({ code: 'FERRY_CONFIG_INVALID' }),
    );
    writeFileSync(file, '{');
    expect(() => loadFittedRecipe(file)).toThrow(
      expect.objectContaining({ code: 'FERRY_DATA_UNREADABLE' }),
    );
    expect(readFileSync(file, 'utf8')).toBe('{');
  });
});
