import { describe, expect, it } from 'vitest';
import { parseProjectSpec } from '../config/load.js';
import type { FeatureSetSpec, ProjectSpec } from '../config/schema.js';
import type { ColumnSchema } from '../core/table.js';
import { SeenKeys } from '../data/validate/rows.js';
import { FerryError } from '../errors/index.js';
import { compileIngestion, prepareEvents, ruleSetOf, type IngestionPlan } from './ingestion.js';

const T0 = Date.UTC(2026, 9, 1);

/** Events as a stream sends them: JSON values, text times, numbers as text or numbers. */
const INPUT: ColumnSchema[] = [
  { name: 'card', type: 'string' },
  { name: 'ts', type: 'timestamp' },
  { name: 'event_id', type: 'string' },
  { name: 'amount', type: 'float' },
  { name: 'rate', type: 'float' },
];

/** A feature set whose source calls the key `card`, with a filter and a derived feature. */
function spec(validation: string): ProjectSpec {
  return parseProjectSpec(
    {
      entities: [{ name: 'card', keys: ['card_id'] }],
      feature_sets: [
        {
          name: 'pay',
          entity: 'card',
          timestamp: 'ts',
          steps: [
            { step: 'rename', columns: { card: 'card_id' } },
            { step: 'filter', where: 'amount > 0' },
            { step: 'derive', column: 'amount_eur', expr: 'amount * rate', type: 'float' },
          ],
          features: [{ name: 'amount_eur', type: 'float' }],
          validation: JSON.parse(validation) as unknown,
        },
      ],
    },
    'test',
  );
}

async function plan(validation: string, tableRules = false): Promise<IngestionPlan> {
  const s = spec(validation);
  const fs = s.feature_sets[0] as FeatureSetSpec;
  return compileIngestion(fs, 'card_id', ruleSetOf(s, fs), INPUT, { tableRules });
}

const RANGE = JSON.stringify({
  policy: 'quarantine',
  rules: [{ rule: 'range', column: 'amount_eur', max: 100 }],
});

describe('prepareEvents: the one path of batch and streaming ingestion', () => {
  it('reads text as the input schema says, rejects what does not convert, and accounts for every row', async () => {
    const p = await plan(RANGE);
    const rows = [
      { card: 'a', ts: '2026-10-01T00:00:00Z', event_id: 'e1', amount: '12.5', rate: 2 },
      // Not a float: rejected with the value, never turned into a null amount.
      { card: 'a', ts: '2026-10-01T00:01:00Z', event_id: 'e2', amount: 'lots', rate: 2 },
      { card: 'b', ts: T0, event_id: 'e3', amount: -1, rate: 2 },
      { card: null, ts: T0, event_id: 'e4', amount: 1, rate: 2 },
      { card: 'c', ts: T0 + 1, event_id: 'e5', amount: 60, rate: 2 },
      { card: 'a', ts: T0, event_id: 'e1', amount: 12.5, rate: 2 },
      { card: 'd', ts: null, amount: 1, rate: 0.5, extra: { nested: true } },
    ];
    const { accepted, rejected, report } = prepareEvents(p, rows, { firstRow: 101 });
    expect(accepted).toEqual({
      keys: ['a'],
      times: [T0],
      eventIds: ['e1'],
      features: [[25]],
    });
    expect(rejected.map((r) => [r.row, r.rule])).toEqual([
      [102, 'type(amount)'],
      [104, 'entity_key'],
      [105, 'range(amount_eur)'],
      [107, 'timestamp'],
    ]);
    expect(rejected[0]?.reason).toBe("'amount' is 'lots', not a valid float");
    expect(rejected[0]?.values).toMatchObject({ card: 'a', amount: 'lots' });
    expect(rejected[2]?.reason).toMatch(/amount_eur is 120, above the maximum 100/);
    // The row as it came in, nested values as JSON text.
    expect(rejected[3]?.values).toMatchObject({ card: 'd', extra: '{"nested":true}' });
    expect(report).toMatchObject({
      read: 7,
      filtered: 1,
      duplicates: 1,
      rejectedByRule: { 'type(amount)': 1, entity_key: 1, 'range(amount_eur)': 1, timestamp: 1 },
    });
    expect(report.read).toBe(
      report.filtered + rejected.length + report.duplicates + accepted.keys.length,
    );
  });

  it('numbers validation failures by source row, counting the rows a filter removed before them', async () => {
    const p = await plan(RANGE);
    const { rejected, report } = prepareEvents(p, [
      { card: 'a', ts: T0, amount: -1, rate: 1 },
      { card: 'a', ts: T0 + 1, amount: -2, rate: 1 },
      { card: 'a', ts: T0 + 2, amount: 500, rate: 1 },
    ]);
    expect(rejected.map((r) => r.row)).toEqual([3]);
    const range = report.validation?.rules.find((r) => r.name === 'range(amount_eur)');
    expect(range?.examples.map((e) => e.row)).toEqual([3]);
  });

  it('checks unique keys across the batches of a stream', async () => {
    const p = await plan(
      JSON.stringify({ policy: 'quarantine', rules: [{ rule: 'unique', columns: ['event_id'] }] }),
    );
    const seen = new SeenKeys();
    const first = prepareEvents(p, [{ card: 'a', ts: T0, event_id: 'x', amount: 1, rate: 1 }], {
      seen,
    });
    expect(first.accepted.keys).toEqual(['a']);
    const second = prepareEvents(
      p,
      [
        { card: 'b', ts: T0 + 1, event_id: 'x', amount: 1, rate: 1 },
        { card: 'b', ts: T0 + 2, event_id: 'y', amount: 1, rate: 1 },
      ],
      { seen },
    );
    expect(second.accepted.eventIds).toEqual(['y']);
    expect(second.rejected[0]?.reason).toMatch(/already seen in an earlier batch/);
  });

  it('throws FERRY_VALIDATION_FAILED under policy fail, and leaves table rules to whole files', async () => {
    const failing = JSON.stringify({
      policy: 'fail',
      rules: [
        { rule: 'range', column: 'amount_eur', max: 100 },
        { rule: 'row_count', min: 10 },
      ],
    });
    const rows = [{ card: 'a', ts: T0, amount: 80, rate: 2 }];
    const stream = await plan(failing);
    const error = (() => {
      try {
        prepareEvents(stream, rows);
      } catch (e) {
        return e;
      }
      return null;
    })();
    expect(error).toBeInstanceOf(FerryError);
    expect((error as FerryError).code).toBe('FERRY_VALIDATION_FAILED');
    const ok = prepareEvents(stream, [{ card: 'a', ts: T0, amount: 8, rate: 2 }]);
    expect(ok.accepted.features).toEqual([[16]]);
    expect(ok.report.validation?.rules.map((r) => r.status)).toEqual(['pass', 'skipped']);
    // A batch file is a whole table: its row count is checked.
    const file = await plan(failing, true);
    expect(() => prepareEvents(file, [{ card: 'a', ts: T0, amount: 8, rate: 2 }])).toThrow(
      /row_count/,
    );
  });

  it('names the step that misses a column, and the columns the prepared rows lack', async () => {
    const s = spec(RANGE);
    const fs = s.feature_sets[0] as FeatureSetSpec;
    await expect(
      compileIngestion(
        fs,
        'card_id',
        null,
        INPUT.filter((c) => c.name !== 'card'),
      ),
    ).rejects.toThrow(
      "feature set 'pay', step 1 (rename): column 'card' is not in the table at this step; columns: ts, event_id, amount, rate",
    );
    await expect(
      compileIngestion({ ...fs, timestamp: 'when' }, 'card_id', null, INPUT),
    ).rejects.toMatchObject({
      code: 'FERRY_COLUMN_UNKNOWN',
      message: expect.stringContaining(
        "needs column(s) 'when', which the input lacks after its steps",
      ),
    });
  });
});
