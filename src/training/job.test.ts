import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadProject } from '../config/load.js';
import { createLogger } from '../core/logger.js';
import { tableFromRows, tableToRows, type Row, type Scalar, type Table } from '../core/table.js';
import { runRecipe, type FittedRecipe } from '../data/prep/index.js';
import { readTable } from '../data/read.js';
import { openWorkspace, type Workspace } from '../project/workspace.js';
import { createRegistryCatalog } from '../serving/catalog.js';
import { createServer } from '../serving/http/server.js';
import { tempDirs } from '../testing/temp.js';
import { runRecipeTrainingJob, type RecipeTrainingJobResult } from './job.js';
import type { NativePredictor } from './native-model.js';
import { withSourceFile } from './recipe-data.js';
import { recipeSha256 } from './recipe-model.js';

const tmp = tempDirs();
const EXAMPLE = path.resolve(import.meta.dirname, '../../examples/prep');
const INPUTS = ['ts', 'amount', 'merchant_category', 'country', 'channel', 'risk_score'];

/** Raw transactions as an export writes them: French amounts, local date-times as text. */
const PROBE: Record<string, string | null>[] = [
  { ts: '30/06/2024 09:15', amount: '1.234,50', merchant_category: 'jewelry', channel: 'online' },
  { ts: '30/06/2024 23:45', amount: '12,50', merchant_category: 'grocery', channel: 'in_store' },
  {
    ts: '30/06/2024 03:05',
    amount: '30.877,95',
    merchant_category: 'electronics',
    channel: 'phone',
  },
  { ts: '30/06/2024 14:00', amount: '0,99', merchant_category: 'fuel', channel: 'online' },
  // Missing and unreadable amounts take the training median; unseen categories their fallback.
  { ts: '30/06/2024 18:30', amount: null, merchant_category: 'crypto', channel: 'fax' },
  { ts: '30/06/2024 07:10', amount: 'n/a', merchant_category: null, channel: 'phone' },
  { ts: '30/06/2024 12:00', amount: '450,00', merchant_category: 'travel', channel: 'online' },
  { ts: '30/06/2024 20:20', amount: '89,90', merchant_category: 'restaurant', channel: null },
].map((row, i) => ({
  tx_id: `probe_${i}`,
  card_id: `card_${String(i + 3).padStart(3, '0')}`,
  country: (['FR', 'DE', 'ES', 'IT', 'BE', 'NL'] as const)[i % 6] as string,
  is_fraud: '0',
  ...row,
}));

/** Each card's latest score in card_scores.csv (every probe time is after all of them). */
function latestScores(dir: string): Map<string, number> {
  const latest = new Map<string, { at: string; score: number }>();
  for (const line of readFileSync(path.join(dir, 'card_scores.csv'), 'utf8')
    .trim()
    .split('\n')
    .slice(1)) {
    const [card, at, score] = line.split(',') as [string, string, string];
    const seen = latest.get(card);
    if (!seen || at >= seen.at) latest.set(card, { at, score: Number(score) });
  }
  return new Map([...latest].map(([card, v]) => [card, v.score]));
}

function csvOf(rows: readonly Record<string, string | null>[]): string {
  const header = Object.keys(rows[0] ?? {});
  const quote = (v: string | null): string => (v === null ? '' : `"${v.replace(/"/g, '""')}"`);
  return [header.join(','), ...rows.map((r) => header.map((h) => quote(r[h] ?? null)).join(','))]
    .join('\n')
    .concat('\n');
}

function concat(tables: readonly Table[]): Row[] {
  return tables.flatMap((t) => tableToRows(t));
}

describe('training on a preparation recipe', () => {
  let dir: string;
  let ws: Workspace;
  let outcome: RecipeTrainingJobResult;
  let model: NativePredictor;

  beforeAll(async () => {
    dir = tmp.fresh();
    cpSync(EXAMPLE, dir, {
      recursive: true,
      filter: (file) => !/[\\/](prepared|\.ferry)$/.test(file),
    });
    ws = await openWorkspace(loadProject(dir));
    outcome = await runRecipeTrainingJob(ws.metadata, ws.registry, {
      spec: ws.project.spec,
      projectDir: dir,
      recipe: 'fraud_training',
      target: 'is_fraud',
      model: 'fraud',
      drop: ['card_id', 'ts'],
      seed: 1,
      quarantine: ws.offline,
    });
    model = (await ws.registry.load(outcome.version)) as NativePredictor;
  }, 60_000);

  afterAll(async () => {
    await ws?.close();
  });

  it('registers a model of raw inputs, with the recipe in its lineage and the row accounting in its run', async () => {
    const version = outcome.version;
    expect(version.signature.inputs.map((i) => i.name)).toEqual(INPUTS);
    expect(version.signature.inputs.find((i) => i.name === 'amount')?.type).toBe('string');
    expect(version.signature.inputs.find((i) => i.name === 'risk_score')?.type).toBe('float');
    const embedded = model.document.recipe?.fitted as FittedRecipe;
    expect(embedded.recipe).toBe('fraud_training');
    expect(version.lineage).toMatchObject({
      run: outcome.run.id,
      recipe: 'fraud_training',
      recipeSha256: recipeSha256(embedded),
      data: path.join(dir, 'transactions.csv'),
    });
    expect(version.lineage.dataSha256).toMatch(/^[0-9a-f]{64}$/);
    // The reference profile describes what callers send: raw text, not prepared numbers.
    expect(Object.keys(version.profile.columns).sort()).toEqual(
      INPUTS.filter((c) => c !== 'risk_score').sort(),
    );
    expect(version.profile.columns.amount?.kind).toBe('categorical');

    const run = (await ws.metadata.getRun(outcome.run.id))!;
    expect(run.status).toBe('succeeded');
    expect(run.params.recipe).toBe('fraud_training');
    // The refit mode is recorded resolved, and what was built beside it.
    expect(run.params.refit).toBe('folds');
    const refit = run.outputs.refit as { mode: string; models: number; rounds: number[] };
    expect(refit.mode).toBe(outcome.result.best === 'gbdt' ? 'folds' : 'full');
    expect(refit).toEqual(outcome.result.refit);
    const prep = run.outputs.prep as {
      stages: { rowsIn: number; rowsOut: number; removed: Record<string, number> }[];
      parts: { train: number; validation: number; test: number };
      trainedOn: number;
      trainingOnly: string[];
    };
    for (const stage of prep.stages) {
      const removed = Object.values(stage.removed).reduce((n, k) => n + k, 0);
      expect(stage.rowsIn).toBe(stage.rowsOut + removed);
    }
    const { train, validation, test } = prep.parts;
    expect(train + validation + test).toBe(prep.stages.at(-1)?.rowsOut);
    expect(prep.trainedOn).toBe(train + validation);
    expect(outcome.result.validation.rows).toBe(train + validation);
    expect(test).toBeGreaterThan(0);
    expect(prep.trainingOnly).toEqual([
      'drop rows missing card_id, ts',
      'filter amount is null or amount >= 0',
    ]);
    // Scored once on the untouched test part, recorded beside the validation metrics.
    expect(outcome.test?.rows).toBe(test);
    expect(run.metrics.test_roc_auc).toBe(outcome.test?.metrics.roc_auc);
    expect(version.metrics.test_roc_auc).toBeGreaterThan(0.8);
    expect(version.metrics.roc_auc).toBe(outcome.result.metrics.roc_auc);
  });

  it('predicts on raw rows exactly what it predicts on the rows the recipe prepares in batch', async () => {
    const scores = latestScores(dir);
    // The batch path: the recipe with the model's fitted constants, run on the same raw rows.
    // It keeps tx_id (which the recipe drops last) to pair each prepared row with its raw one.
    const fitted = model.document.recipe?.fitted as FittedRecipe;
    const keepId: FittedRecipe = {
      ...fitted,
      steps: fitted.steps.map((s) =>
        s.step === 'drop' ? { ...s, columns: s.columns.filter((c) => c !== 'tx_id') } : s,
      ),
    };
    const probeFile = path.join(dir, 'probe', 'probe.csv');
    mkdirSync(path.dirname(probeFile), { recursive: true });
    writeFileSync(probeFile, csvOf(PROBE));
    const report = await runRecipe(
      withSourceFile(ws.project.spec, 'fraud_training', probeFile),
      dir,
      'fraud_training',
      { fitted: keepId, out: path.join(dir, 'probe', 'prepared.parquet') },
    );
    const parts = await Promise.all(
      report.output.files.map((f) => readTable(f.path, { allowEmpty: true })),
    );
    const byId = new Map(concat(parts).map((r) => [r.tx_id, r]));
    expect(byId.size).toBe(PROBE.length);
    const prepared = PROBE.map((r) => byId.get(r.tx_id) as Row);

    // The serving path: callers send only the model's inputs, as raw text, and the score.
    const raw: Row[] = PROBE.map((r) => {
      const row: Row = { risk_score: scores.get(r.card_id as string) ?? null };
      for (const name of INPUTS) if (name !== 'risk_score') row[name] = r[name] ?? null;
      return row;
    });
    expect(raw.every((r) => typeof r.risk_score === 'number')).toBe(true);
    const rawTable = tableFromRows(model.signature.inputs, raw);
    // Every feature the model reads is the value the batch path computed...
    const features = (model.document.recipe?.features ?? []).map((f) => f.name);
    expect(features).toContain('log_amount');
    const servedRows = tableToRows(model.prepare(rawTable));
    servedRows.forEach((row, i) => {
      const expected = prepared[i] as Row;
      for (const name of features) {
        const [a, b] = [row[name], expected[name]];
        if (typeof a === 'number' && typeof b === 'number') expect(a, name).toBeCloseTo(b, 9);
        else expect(a, name).toEqual(b);
      }
    });
    // ...among them outliers clipped, text amounts converted, local times read in Paris.
    expect(servedRows.map((r) => r.amount)).toEqual(prepared.map((r) => r.amount));
    expect(prepared[2]?.amount).toBeLessThan(30_877.95);
    expect(prepared[0]?.amount).toBe(1234.5);
    expect(prepared[1]?.hour).toBe(21);
    // ...so the predictions are the same.
    const served = model.predict(rawTable);
    const batch = model.inner.predict(tableFromRows(fitted.schema, prepared));
    expect(served.predict).toEqual(batch.predict);
    expect(served.proba).toHaveLength(2 * PROBE.length);
    served.proba?.forEach((p, i) => expect(p).toBeCloseTo(batch.proba?.[i] as number, 12));
  });

  it('answers a row the recipe would filter out of training', () => {
    const refund = { ts: '30/06/2024 10:00', amount: '-25,00', merchant_category: 'fuel' };
    const rows: Row[] = [
      { ...refund, country: 'FR', channel: 'online', risk_score: 0.2 },
      { ...refund, ts: null, country: 'FR', channel: 'online', risk_score: null },
    ];
    const { predict } = model.predict(tableFromRows(model.signature.inputs, rows));
    expect(predict).toHaveLength(2);
  });

  describe('over OIP v2', () => {
    let app: FastifyInstance;
    const logger = createLogger({ level: 'silent' });

    beforeAll(async () => {
      const catalog = await createRegistryCatalog(ws.registry, { logger });
      await catalog.whenLoaded();
      app = createServer({
        catalog,
        logger,
        limits: { bodyLimitBytes: 64 * 1024, maxRowsPerRequest: 100 },
        defaultMetrics: false,
      });
      await app.ready();
    });

    afterAll(async () => {
      await app?.close();
    });

    it('lists the raw inputs in the model metadata and takes them as they are', async () => {
      const meta = await app.inject('/v2/models/fraud');
      expect(meta.statusCode).toBe(200);
      expect(meta.json<{ inputs: unknown[] }>().inputs).toEqual([
        { name: 'ts', datatype: 'BYTES', shape: [-1] },
        { name: 'amount', datatype: 'BYTES', shape: [-1] },
        { name: 'merchant_category', datatype: 'BYTES', shape: [-1] },
        { name: 'country', datatype: 'BYTES', shape: [-1] },
        { name: 'channel', datatype: 'BYTES', shape: [-1] },
        { name: 'risk_score', datatype: 'FP64', shape: [-1] },
      ]);
      const rows: Record<string, Scalar>[] = [
        {
          ts: '30/06/2024 09:15',
          amount: '1.234,50',
          merchant_category: 'jewelry',
          country: 'FR',
          channel: 'online',
          risk_score: 0.8,
        },
        {
          ts: '01/06/2024 23:45',
          amount: '12,50',
          merchant_category: 'grocery',
          country: 'DE',
          channel: 'in_store',
          risk_score: 0.1,
        },
      ];
      const res = await app.inject({
        method: 'POST',
        url: '/v2/models/fraud/infer',
        payload: {
          inputs: INPUTS.map((name) => ({
            name,
            shape: [rows.length],
            datatype: name === 'risk_score' ? 'FP64' : 'BYTES',
            data: rows.map((r) => r[name] ?? null),
          })),
        },
      });
      expect(res.statusCode).toBe(200);
      const outputs = res.json<{ outputs: { name: string; data: unknown[] }[] }>().outputs;
      const expected = model.predict(tableFromRows(model.signature.inputs, rows));
      expect(outputs.find((o) => o.name === 'predict')?.data).toEqual(expected.predict);
      expect(outputs.find((o) => o.name === 'predict_proba')?.data).toEqual(
        Array.from(expected.proba ?? []),
      );
    });
  });
});
