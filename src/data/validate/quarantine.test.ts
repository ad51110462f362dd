import { describe, expect, it } from 'vitest';
import { offlineFixture } from '../../testing/offline-fixture.js';
import { listQuarantine, readQuarantine, writeQuarantine } from './quarantine.js';

const fx = offlineFixture();

describe('quarantine', () => {
  it('keeps rule, reason, row number, run and the record, and reads them back newest first', async () => {
    const target = { offline: fx.offline, name: 'tx', source: 'data/tx.csv' };
    await writeQuarantine(
      target,
      [
        {
          row: 3,
          rule: 'range(amount)',
          reason: 'amount is -5, below the minimum 0',
          values: { amount: -5, id: 'a' },
        },
        { row: 7, rule: 'not_null(id)', reason: 'id is missing', values: { amount: 1, id: null } },
      ],
      { runId: 'run-1', at: 1_000 },
    );
    await writeQuarantine(
      target,
      [{ row: 2, rule: 'range(amount)', reason: 'later', values: { amount: -1, id: 'b' } }],
      { runId: 'run-2', at: 2_000 },
    );
    const entries = await readQuarantine(fx.offline, 'tx', { limit: 10 });
    expect(entries.map((e) => [e.runId, e.row])).toEqual([
      ['run-2', 2],
      ['run-1', 3],
      ['run-1', 7],
    ]);
    expect(entries[1]).toEqual({
      quarantinedAt: 1_000,
      source: 'data/tx.csv',
      row: 3,
      rule: 'range(amount)',
      reason: 'amount is -5, below the minimum 0',
      runId: 'run-1',
      record: { amount: -5, id: 'a' },
    });
    expect(await readQuarantine(fx.offline, 'quarantine/tx', { limit: 1 })).toHaveLength(1);
    expect(await listQuarantine(fx.offline)).toEqual([
      { name: 'tx', table: 'quarantine/tx', rows: 3, newest: 2_000 },
    ]);
  });

  it('shares one table with the feature store, whose rows have no rule or run', async () => {
    // The columns the feature store's ingestion writes (src/feature-store/feature-store.ts).
    await fx.offline.append('quarantine/tx', {
      columns: [
        { name: 'quarantined_at', type: 'timestamp', values: [500] },
        { name: 'source', type: 'string', values: ['tx.csv'] },
        { name: 'row', type: 'int', values: [4] },
        { name: 'reason', type: 'string', values: ["entity key 'card' is missing"] },
        { name: 'record', type: 'string', values: ['{"card":null}'] },
      ],
      rowCount: 1,
    });
    await writeQuarantine(
      { offline: fx.offline, name: 'tx', source: 'tx.csv' },
      [{ row: 9, rule: 'unique(card)', reason: 'dup', values: { card: 'c' } }],
      { runId: 'r', at: 900 },
    );
    const entries = await readQuarantine(fx.offline, 'tx');
    expect(entries.map((e) => [e.row, e.rule, e.runId])).toEqual([
      [9, 'unique(card)', 'r'],
      [4, null, null],
    ]);
    expect(entries[1]?.record).toEqual({ card: null });
  });

  it('lists nothing when empty, and names the quarantines when asked for an unknown one', async () => {
    expect(await listQuarantine(fx.offline)).toEqual([]);
    await writeQuarantine(
      { offline: fx.offline, name: 'orders', source: 's' },
      [{ row: 1, rule: 'r', reason: 'x', values: {} }],
      { runId: 'r', at: 1 },
    );
    await expect(readQuarantine(fx.offline, 'tx')).rejects.toThrow(
      /no quarantine 'tx'; quarantines: orders/,
    );
    await expect(readQuarantine(fx.offline, 'Bad Name')).rejects.toMatchObject({
      code: 'FERRY_ARGUMENT_INVALID',
    });
    await expect(readQuarantine(fx.offline, 'orders', { limit: 0 })).rejects.toMatchObject({
      code: 'FERRY_ARGUMENT_INVALID',
    });
  });
});
