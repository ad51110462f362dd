/**
 * The project endpoint tests share: card transactions with a one-hour window, an endpoint that
 * enriches, transforms, predicts with a registered `spend` model and decides, and events whose
 * windows a wrong lookup would get visibly wrong.
 */
import type { Scalar, Table } from '../core/table.js';

const HOUR = 3_600_000;
/** The time the tests ask as of: card a has 40 + 60 in the hour before it (1000 is older), b 7. */
export const T0 = Date.UTC(2026, 9, 1, 12);

/**
 * ferry.yaml of the project; `extra` is YAML put at the top level (an online store, say).
 * @example writeFileSync(path.join(dir, 'ferry.yaml'), scoreProject('online_store: { type: redis }'));
 */
export function scoreProject(extra = ''): string {
  return `
project: graph-test
log_level: silent
server: { refresh_interval: 50ms }
${extra}
entities:
  - { name: card, keys: [card_id] }
feature_sets:
  - name: tx
    entity: card
    timestamp: ts
    features:
      - { name: amount, type: float }
      - { name: country, type: string }
    aggregations:
      - { column: amount, ops: [sum, count], windows: [1h] }
    ttl: 30d
feature_vectors:
  - name: card_history
    features: [tx.amount_sum_1h, tx.amount_count_1h]
endpoints:
  - name: score
    inputs: { amount: float }
    steps:
      - { kind: enrich, vector: card_history }
      - kind: transform
        set: { spend: "amount_sum_1h + amount", big: "amount > 100" }
      - { kind: model, model: spend@champion }
      - kind: transform
        set: { decision: "if(prediction > 500, 'review', 'allow')" }
`;
}

export const SCORE_EVENTS = [
  { card_id: 'a', ts: T0 - 2 * HOUR, amount: 1000, country: 'FR' },
  { card_id: 'a', ts: T0 - 30 * 60_000, amount: 40, country: 'FR' },
  { card_id: 'a', ts: T0 - 10 * 60_000, amount: 60, country: 'DE' },
  { card_id: 'b', ts: T0 - 5 * 60_000, amount: 7, country: 'FR' },
];

/** y = slope * spend + 1, so versions of different slopes answer visibly differently. */
export function spendTable(slope: number): Table {
  const spend: Scalar[] = [];
  const y: Scalar[] = [];
  for (let i = 0; i < 300; i++) {
    spend.push(i * 3);
    y.push(slope * i * 3 + 1);
  }
  return {
    rowCount: 300,
    columns: [
      { name: 'spend', type: 'float', values: spend },
      { name: 'y', type: 'float', values: y },
    ],
  };
}
