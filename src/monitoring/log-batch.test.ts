/**
 * The inference log's in-memory rows: what goes in comes out as the same table, whatever the
 * entries' columns, types and sizes, and a malformed entry leaves no trace.
 */
import { describe, expect, it } from 'vitest';
import type { Column } from '../core/table.js';
import type { InferenceRecord } from './inference-log.js';
import { LogBatch } from './log-batch.js';

function entry(
  columns: Column[],
  rows: number,
  extra: Partial<InferenceRecord> = {},
): InferenceRecord {
  return {
    model: 'Fraud.v2',
    served: 'fraud',
    version: '3',
    requestId: 'r1',
    ts: 1_000,
    latencyMs: 0.5,
    features: { columns, rowCount: rows },
    prediction: { predict: Array.from({ length: rows }, (_, i) => i * 1.5) },
    ...extra,
  };
}

describe('LogBatch', () => {
  it('stacks entries whose columns differ: nulls where one lacks a column, types widened', () => {
    const batch = new LogBatch();
    batch.add(
      entry(
        [
          { name: 'amount', type: 'int', values: [1, null] },
          { name: 'ok', type: 'bool', values: [true, false] },
        ],
        2,
      ),
    );
    batch.add(
      entry(
        [
          { name: 'amount', type: 'float', values: [2.5] },
          { name: 'country', type: 'string', values: ['FR'] },
          { name: 'ok', type: 'string', values: ['maybe'] },
          { name: '_score', type: 'float', values: [9] },
        ],
        1,
        { requestId: 'r2', ts: 2_000 },
      ),
    );
    const [log] = batch.build();
    expect(log?.table).toBe('inference_log/fraud_v2');
    const column = (name: string) => log?.data.columns.find((c) => c.name === name);
    expect(log?.data.rowCount).toBe(3);
    expect(column('amount')).toEqual({ name: 'amount', type: 'float', values: [1, null, 2.5] });
    expect(column('ok')).toEqual({
      name: 'ok',
      type: 'string',
      values: ['true', 'false', 'maybe'],
    });
    expect(column('country')?.values).toEqual([null, null, 'FR']);
    expect(column('_feature__score')?.values).toEqual([null, null, 9]);
    expect(column('_request_id')?.values).toEqual(['r1', 'r1', 'r2']);
    expect(column('_ts')).toEqual({
      name: '_ts',
      type: 'timestamp',
      values: [1_000, 1_000, 2_000],
    });
    expect(column('_prediction')?.values).toEqual([0, 1.5, 0]);
    expect(batch.rows).toBe(3);
  });

  it('keeps classifier labels as text with the probability of the predicted class', () => {
    const batch = new LogBatch();
    batch.add(
      entry([{ name: 'x', type: 'float', values: [1, 2] }], 2, {
        prediction: { predict: ['no', 'yes'], proba: new Float64Array([0.8, 0.2, 0.1, 0.9]) },
        classes: ['no', 'yes'],
      }),
    );
    const data = batch.build()[0]?.data;
    expect(data?.columns.find((c) => c.name === '_prediction')?.values).toEqual(['no', 'yes']);
    expect(data?.columns.find((c) => c.name === '_score')?.values).toEqual([0.8, 0.9]);
  });

  it('adds nothing of a malformed entry', () => {
    const batch = new LogBatch();
    batch.add(entry([{ name: 'x', type: 'float', values: [1] }], 1));
    expect(() => batch.add(entry([{ name: 'x', type: 'float', values: [1] }], 2))).toThrow(
      /1 values for 2 rows/,
    );
    expect(batch.rows).toBe(1);
    expect(batch.build()[0]?.data.columns.every((c) => c.values.length === 1)).toBe(true);
  });

  it('grows past its first capacity without losing a value', () => {
    const batch = new LogBatch();
    for (let i = 0; i < 1000; i++) {
      batch.add(entry([{ name: 'x', type: 'float', values: [i % 7 === 0 ? null : i] }], 1));
    }
    const x = batch.build()[0]?.data.columns.find((c) => c.name === 'x')?.values ?? [];
    expect(x).toHaveLength(1000);
    expect(x.every((v, i) => v === (i % 7 === 0 ? null : i))).toBe(true);
  });
});
