import { describe, expect, it } from 'vitest';
import { getColumn, type Table } from '../core/table.js';
import { generateTransactions } from './generate.js';

const START = Date.UTC(2026, 9, 1);
const HOUR = 3_600_000;

function values<T>(table: Table, name: string): T[] {
  const column = getColumn(table, name);
  if (!column) throw new Error(`no column ${name}`);
  return column.values as T[];
}

function mean(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

function variance(xs: readonly number[]): number {
  const m = mean(xs);
  return xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1);
}

/** Welch's t statistic of a - b (large samples: read as a z score). */
function welch(a: readonly number[], b: readonly number[]): number {
  return (mean(a) - mean(b)) / Math.sqrt(variance(a) / a.length + variance(b) / b.length);
}

/** Two-proportion z statistic of rate(a) - rate(b), for 0/1 samples. */
function proportionZ(a: readonly number[], b: readonly number[]): number {
  const pa = mean(a);
  const pb = mean(b);
  const pooled = (pa * a.length + pb * b.length) / (a.length + b.length);
  return (pa - pb) / Math.sqrt(pooled * (1 - pooled) * (1 / a.length + 1 / b.length));
}

describe('generateTransactions', () => {
  const data = generateTransactions({ seed: 7, cards: 500, days: 28, start: START });
  const { transactions, labels } = data;
  const fraud = values<number>(labels, 'is_fraud');

  it('is deterministic for a seed and differs between seeds', () => {
    const again = generateTransactions({ seed: 7, cards: 500, days: 28, start: START });
    expect(again).toEqual(data);
    const other = generateTransactions({ seed: 8, cards: 500, days: 28, start: START });
    expect(values(other.transactions, 'amount')).not.toEqual(values(transactions, 'amount'));
  });

  it('makes well-formed transactions in time order, one label per transaction', () => {
    expect(transactions.columns.map((c) => `${c.name}:${c.type}`)).toEqual([
      'event_id:string',
      'card_id:string',
      'ts:timestamp',
      'merchant:string',
      'merchant_category:string',
      'country:string',
      'foreign:int',
      'amount:float',
    ]);
    expect(labels.columns.map((c) => c.name)).toEqual(['event_id', 'card_id', 'ts', 'is_fraud']);
    expect(transactions.rowCount).toBeGreaterThan(20_000);
    expect(labels.rowCount).toBe(transactions.rowCount);
    expect(values(labels, 'event_id')).toEqual(values(transactions, 'event_id'));
    expect(new Set(values(transactions, 'event_id')).size).toBe(transactions.rowCount);
    const ts = values<number>(transactions, 'ts');
    expect(ts.every((t, i) => i === 0 || t >= (ts[i - 1] as number))).toBe(true);
    expect(Math.min(...ts)).toBeGreaterThanOrEqual(START);
    expect(Math.max(...ts)).toBeLessThan(START + 28 * 24 * HOUR);
    const cards = new Set(values<string>(transactions, 'card_id'));
    expect(cards.size).toBeGreaterThan(450);
    expect([...cards].filter((card) => !/^c\d{4}$/.test(card))).toEqual([]);
    // Positive amounts in whole cents.
    expect(
      values<number>(transactions, 'amount').filter(
        (a) => !(a > 0) || Math.round(a * 100) / 100 !== a,
      ),
    ).toEqual([]);
    // Daily cycle: the busiest hour sees several times the traffic of the quietest.
    const byHour = new Array<number>(24).fill(0);
    for (const t of ts)
      byHour[new Date(t).getUTCHours()] = (byHour[new Date(t).getUTCHours()] ?? 0) + 1;
    expect(Math.max(...byHour)).toBeGreaterThan(5 * Math.min(...byHour));
  });

  it('has a fraud rate of 2-4% for several seeds', () => {
    for (const seed of [1, 2, 3, 7]) {
      const rate = mean(
        values<number>(
          generateTransactions({ seed, cards: 500, days: 28, start: START }).labels,
          'is_fraud',
        ),
      );
      expect(rate).toBeGreaterThan(0.02);
      expect(rate).toBeLessThan(0.04);
    }
  });

  it('makes fraud more likely for large amounts', () => {
    const logAmount = values<number>(transactions, 'amount').map(Math.log);
    const z = welch(
      logAmount.filter((_, i) => fraud[i] === 1),
      logAmount.filter((_, i) => fraud[i] === 0),
    );
    expect(z).toBeGreaterThan(10);
  });

  it('makes fraud more likely in a burst of spending on one card within an hour', () => {
    const cards = values<string>(transactions, 'card_id');
    const ts = values<number>(transactions, 'ts');
    const recent = new Map<string, number[]>();
    const priorInHour = ts.map((t, i) => {
      const card = cards[i] as string;
      const kept = (recent.get(card) ?? []).filter((p) => p > t - HOUR);
      const n = kept.length;
      kept.push(t);
      recent.set(card, kept);
      return n;
    });
    const burst = fraud.filter((_, i) => (priorInHour[i] as number) >= 2);
    const calm = fraud.filter((_, i) => priorInHour[i] === 0);
    expect(burst.length).toBeGreaterThan(200);
    expect(mean(burst)).toBeGreaterThan(5 * mean(calm));
    expect(proportionZ(burst, calm)).toBeGreaterThan(10);
  });

  it('makes fraud more likely away from the card’s home country', () => {
    const foreign = values<number>(transactions, 'foreign');
    const abroad = fraud.filter((_, i) => foreign[i] === 1);
    const home = fraud.filter((_, i) => foreign[i] === 0);
    expect(proportionZ(abroad, home)).toBeGreaterThan(10);
    // Not a perfect signal: most transactions abroad are honest travel.
    expect(mean(abroad)).toBeLessThan(0.5);
  });
});
