import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { tempDirs } from '../testing/temp.js';
import { registerTrain } from './train.js';

const tmp = tempDirs();
const EXAMPLE = path.resolve(import.meta.dirname, '../../examples/prep');

/** Runs `ferry train <args>` in this process; returns what it printed on stdout. */
async function ferryTrain(args: string[]): Promise<string> {
  const program = new Command('ferry').option('--project <dir>').exitOverride();
  registerTrain(program);
  program.commands.forEach((c) => c.exitOverride());
  let out = '';
  vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    out += String(chunk);
    return true;
  });
  try {
    await program.parseAsync(['node', 'ferry', 'train', ...args]);
  } finally {
    write.mockRestore();
  }
  return out;
}

function exampleProject(): string {
  const dir = tmp.fresh();
  cpSync(EXAMPLE, dir, {
    recursive: true,
    filter: (file) => !/[\\/](prepared|\.ferry)$/.test(file),
  });
  return dir;
}

interface RecipeOutput {
  version: number;
  recipe: { name: string; sha256: string; inputs: { name: string; type: string }[] };
  rows: { train: number; validation: number; test: number };
  test: { rows: number; metrics: Record<string, number> } | null;
  prep: { source: { path: string }; stages: { rowsIn: number }[] };
}

afterEach(() => vi.restoreAllMocks());

describe('ferry train --recipe', () => {
  it('prepares with the recipe, trains, scores the test part and prints the raw inputs', async () => {
    const dir = exampleProject();
    const base = ['--target', 'is_fraud', '--name', 'fraud', '--project', dir];
    const out = JSON.parse(
      await ferryTrain(['--recipe', 'fraud_training', ...base, '--json']),
    ) as RecipeOutput;
    expect(out.version).toBe(1);
    expect(out.recipe.name).toBe('fraud_training');
    expect(out.recipe.sha256).toMatch(/^[0-9a-f]{64}$/);
    // Without --drop, the card and the time reach the model as features too.
    expect(out.recipe.inputs.map((i) => i.name)).toEqual([
      'card_id',
      'ts',
      'amount',
      'merchant_category',
      'country',
      'channel',
      'risk_score',
    ]);
    expect(out.test?.rows).toBe(out.rows.test);
    expect(out.prep.source.path).toBe(path.join(dir, 'transactions.csv'));

    // --data replaces the source's file: the first 200 transactions only.
    const lines = readFileSync(path.join(dir, 'transactions.csv'), 'latin1').split('\n');
    const half = path.join(dir, 'first.csv');
    writeFileSync(half, lines.slice(0, 201).join('\n') + '\n', 'latin1');
    const again = JSON.parse(
      await ferryTrain(['--recipe', 'fraud_training', '--data', half, ...base, '--json']),
    ) as RecipeOutput;
    expect(again.version).toBe(2);
    expect(again.prep.source.path).toBe(half);
    expect(again.prep.stages[0]?.rowsIn).toBeLessThanOrEqual(200);
    expect(again.recipe.sha256).not.toBe(out.recipe.sha256);

    const text = await ferryTrain(['--recipe', 'fraud_training', ...base, '--drop', 'card_id,ts']);
    expect(text).toContain('Test score (once, on');
    expect(text).toContain(
      'Inputs (raw columns the model takes): ts (string), amount (string), merchant_category (string), country (string), channel (string), risk_score (float)',
    );
    expect(text).toContain('Registered fraud version 3');
  }, 60_000);

  it('builds the model as --refit says (folds by default) and reports it', async () => {
    const dir = exampleProject();
    const base = ['--target', 'is_fraud', '--name', 'fraud', '--project', dir];
    const args = [...base, '--recipe', 'fraud_training', '--models', 'gbdt', '--cv', '3', '--json'];
    type Refit = { refit: { mode: string; models: number; rounds: number[] } };
    const bagged = JSON.parse(await ferryTrain(args)) as Refit;
    expect(bagged.refit.mode).toBe('folds');
    expect(bagged.refit.models).toBe(3);
    expect(bagged.refit.rounds).toHaveLength(3);
    const full = JSON.parse(await ferryTrain([...args, '--refit', 'full'])) as Refit;
    expect(full.refit).toEqual({ mode: 'full', models: 1, rounds: [expect.any(Number)] });
    await expect(ferryTrain([...args, '--refit', 'all'])).rejects.toThrow(
      expect.objectContaining({
        code: 'FERRY_ARGUMENT_INVALID',
        message: expect.stringContaining('full, folds'),
      }),
    );
  }, 60_000);

  it('asks for --data or --recipe, and names an unknown recipe', async () => {
    const dir = exampleProject();
    const base = ['--target', 'is_fraud', '--name', 'fraud', '--project', dir];
    await expect(ferryTrain(base)).rejects.toThrow(
      expect.objectContaining({
        code: 'FERRY_ARGUMENT_INVALID',
        message: expect.stringContaining('--recipe'),
      }),
    );
    await expect(ferryTrain(['--recipe', 'nope', ...base])).rejects.toThrow(
      expect.objectContaining({
        code: 'FERRY_ARGUMENT_INVALID',
        message: expect.stringContaining('fraud_training'),
      }),
    );
  });
});
