import { cpSync, existsSync } from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { PrepReport } from '../data/prep/index.js';
import { tempDirs } from '../testing/temp.js';
import { registerDataPrep } from './data-prep.js';

const tmp = tempDirs();
const EXAMPLE = path.resolve(import.meta.dirname, '../../examples/prep');

/** Runs `ferry data <args>` in this process; returns what it printed on stdout. */
async function ferryData(args: string[]): Promise<string> {
  const program = new Command('ferry').option('--project <dir>').exitOverride();
  const data = program.command('data').exitOverride();
  registerDataPrep(data);
  let out = '';
  const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    out += String(chunk);
    return true;
  });
  try {
    await program.parseAsync(['node', 'ferry', 'data', ...args]);
  } finally {
    write.mockRestore();
  }
  return out;
}

afterEach(() => vi.restoreAllMocks());

describe('ferry data prep', () => {
  it('runs the example recipe and reports where every row went', async () => {
    const dir = tmp.fresh();
    cpSync(EXAMPLE, dir, { recursive: true });
    const report = JSON.parse(
      await ferryData(['prep', 'fraud_training', '--project', dir, '--json']),
    ) as PrepReport;
    expect(report.source.malformed.examples.map((m) => m.line)).toEqual([156, 436]);
    for (const stage of report.stages) {
      const removed = Object.values(stage.removed).reduce((n, k) => n + (k ?? 0), 0);
      expect(stage.rowsIn).toBe(stage.rowsOut + removed);
    }
    expect(report.fittedOn).toBe('train');
    expect(report.output.files.map((f) => path.basename(f.path))).toEqual([
      'fraud_training.train.parquet',
      'fraud_training.validation.parquet',
      'fraud_training.test.parquet',
    ]);
    for (const file of report.output.files) expect(existsSync(file.path)).toBe(true);
    expect(existsSync(path.join(dir, 'prepared/fraud_training.parquet.recipe.json'))).toBe(true);
    expect(report.validation?.outcome).toBe('quarantined');

    // Applied again with the fitted recipe, to another output, as text.
    const out = path.join(dir, 'again.csv');
    const text = await ferryData([
      'prep',
      'fraud_training',
      '--project',
      dir,
      '--out',
      out,
      '--fitted',
      path.join(dir, 'prepared/fraud_training.parquet.recipe.json'),
    ]);
    expect(text).toMatch(/Fitted on the train part \(285 rows\)/);
    expect(existsSync(path.join(dir, 'again.train.csv'))).toBe(true);
  });

  it('names the recipes there are when asked for one that is not', async () => {
    const dir = tmp.fresh();
    cpSync(EXAMPLE, dir, { recursive: true });
    await expect(ferryData(['prep', 'nope', '--project', dir])).rejects.toMatchObject({
      code: 'FERRY_ARGUMENT_INVALID',
      message: expect.stringMatching(/recipes: fraud_training/),
    });
  });
});
