/**
 * The quickstart end to end on embedded stores: data → feature set → point-in-time training set
 * → model → endpoint over HTTP → inference log → drift.
 */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runQuickstart } from '../src/quickstart/run.js';

describe('quickstart', () => {
  it('runs the whole loop, serves the fraud endpoint and detects the injected drift', async () => {
    const dir = path.join(mkdtempSync(path.join(os.tmpdir(), 'ferry-qs-')), 'demo');
    const lines: string[] = [];
    const demo = await runQuickstart({ dir, port: 0, say: (l) => lines.push(l) });
    try {
      expect(demo.predictions).toBeGreaterThan(500);
      // The model flags some transactions, and most flags are real fraud.
      expect(demo.flagged).toBeGreaterThan(5);
      expect(demo.flaggedFraud / demo.flagged).toBeGreaterThan(0.5);
      expect(demo.drift.rows).toBe(demo.predictions);
      // Only the injected shift drifts: history features served online match training.
      expect(demo.drift.drifted).toEqual(['amount']);

      const meta = (await (await fetch(`${demo.server.url}/v2/models/fraud`)).json()) as {
        inputs: { name: string }[];
      };
      expect(meta.inputs.map((i) => i.name)).toEqual(
        expect.arrayContaining(['card_id', 'amount', 'country']),
      );
      expect(meta.inputs.map((i) => i.name)).not.toContain('amount_sum_1h');
      const metrics = await (await fetch(`${demo.server.url}/metrics`)).text();
      expect(metrics).toContain('ferry_requests_total');
      // The line printed for the user works as printed: no event time, so features as of now.
      const body = /-d '(.*)'$/.exec(demo.curl)?.[1] ?? '';
      const reply = await fetch(`${demo.server.url}/v1/endpoints/fraud/predict`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      });
      expect(reply.status).toBe(200);
      const out = (await reply.json()) as { results: Record<string, unknown>[] };
      expect(Object.keys(out.results[0] ?? {})).toEqual([
        'prediction',
        'prediction_score',
        'decision',
        'model',
        'model_version',
      ]);
      expect(out.results[0]?.model).toBe('fraud_detector');
    } finally {
      await demo.close();
    }
  });
});
