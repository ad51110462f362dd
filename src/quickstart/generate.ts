/**
 * The quickstart's data: card transactions that look like the real thing, with fraud a model can
 * learn. Deterministic for a seed, so a demo, a test and a bug report all see the same rows.
 *
 * How it is made:
 * - each card has a home country, a daily activity rate and favourite merchant categories;
 *   it spends on most days, mostly around lunch and the evening, in amounts drawn log-normally
 *   per category, now and then abroad (travel);
 * - fraud comes two ways: a compromised card gets a burst of several transactions within about
 *   an hour, large, often abroad and in resellable categories; and a few single transactions are
 *   fraud with a probability that grows with the amount and with being abroad.
 * So fraud depends on amount, spending velocity and place, which the quickstart's window
 * features (count and sum over 10m/1h/1d) and request fields can see.
 */
import type { Table } from '../core/table.js';
import { createRng } from '../training/random.js';

export interface GenerateOptions {
  readonly seed: number;
  readonly cards?: number;
  readonly days?: number;
  /** UTC ms of the first day's midnight. */
  readonly start?: number;
}

export interface GeneratedData {
  /** event_id, card_id, ts, merchant, merchant_category, country, foreign (0/1), amount; in time order. */
  readonly transactions: Table;
  /** event_id, card_id, ts, is_fraud (0/1): one row per transaction, in the same order. */
  readonly labels: Table;
}

interface Category {
  readonly name: string;
  /** Log-normal parameters of the amount (log of euros). */
  readonly mu: number;
  readonly sigma: number;
  /** Share of ordinary spending. */
  readonly weight: number;
  /** Favoured by fraudsters: goods and tickets that resell. */
  readonly resellable: boolean;
}

const CATEGORIES: readonly Category[] = [
  { name: 'grocery', mu: 3.3, sigma: 0.55, weight: 30, resellable: false },
  { name: 'restaurant', mu: 3.4, sigma: 0.5, weight: 18, resellable: false },
  { name: 'fuel', mu: 3.9, sigma: 0.3, weight: 10, resellable: false },
  { name: 'pharmacy', mu: 3.0, sigma: 0.5, weight: 6, resellable: false },
  { name: 'entertainment', mu: 3.5, sigma: 0.7, weight: 8, resellable: false },
  { name: 'online_retail', mu: 3.9, sigma: 0.9, weight: 16, resellable: true },
  { name: 'electronics', mu: 5.2, sigma: 0.8, weight: 5, resellable: true },
  { name: 'travel', mu: 5.4, sigma: 0.9, weight: 7, resellable: true },
];
const MERCHANTS_PER_CATEGORY = 25;

const HOME_COUNTRIES: readonly [string, number][] = [
  ['FR', 40],
  ['DE', 20],
  ['ES', 14],
  ['IT', 10],
  ['GB', 9],
  ['NL', 7],
];
/** Where cards travel to, and where stolen card numbers are used from. */
const TRAVEL_COUNTRIES = ['FR', 'DE', 'ES', 'IT', 'GB', 'NL', 'PT', 'US'];
const FRAUD_COUNTRIES = ['US', 'BR', 'NG', 'RU', 'CN', 'TR', 'FR', 'GB'];

/** Relative activity by UTC hour: quiet nights, a lunch peak and an evening peak. */
const HOUR_WEIGHTS = [
  1, 0.5, 0.3, 0.2, 0.2, 0.4, 1, 2.5, 4, 4.5, 5, 6, 8, 7, 5, 4.5, 5, 6.5, 8, 8, 6, 4, 3, 2,
];

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/**
 * Generates the transactions and their labels.
 * @example const { transactions, labels } = generateTransactions({ seed: 7, cards: 500, days: 28 });
 */
export function generateTransactions(options: GenerateOptions): GeneratedData {
  const cards = options.cards ?? 500;
  const days = options.days ?? 28;
  const start = options.start ?? Date.UTC(2026, 9, 1);
  const rand = createRng(options.seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)] as T;
  const weighted = <T>(items: readonly (readonly [T, number])[]): T => {
    let total = 0;
    for (const [, w] of items) total += w;
    let u = rand() * total;
    for (const [item, w] of items) {
      u -= w;
      if (u < 0) return item;
    }
    return (items[items.length - 1] as readonly [T, number])[0];
  };
  const normal = (): number =>
    Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  const poisson = (mean: number): number => {
    // Knuth's method: means here are small (a few per day).
    const limit = Math.exp(-mean);
    let k = 0;
    let p = rand();
    while (p > limit) {
      k++;
      p *= rand();
    }
    return k;
  };
  const hourWeights = HOUR_WEIGHTS.map((w, h) => [h, w] as const);
  const timeOfDay = (): number =>
    weighted(hourWeights) * HOUR + Math.floor((rand() * HOUR) / 1000) * 1000;
  const amountOf = (category: Category, scale = 1): number =>
    Math.max(
      0.5,
      Math.round(Math.exp(category.mu + category.sigma * normal()) * scale * 100) / 100,
    );
  const merchantOf = (category: Category): string =>
    `${category.name}_${String(1 + Math.floor(rand() * MERCHANTS_PER_CATEGORY)).padStart(3, '0')}`;

  const rows: Raw[] = [];
  const homes: string[] = [];
  for (let c = 0; c < cards; c++) {
    const card = `c${String(c).padStart(4, '0')}`;
    const home = weighted(HOME_COUNTRIES);
    homes.push(home);
    const perDay = Math.min(10, Math.exp(Math.log(2.5) + 0.6 * normal()));
    // Each card leans towards a few categories of its own.
    const taste = CATEGORIES.map((cat) => [cat, cat.weight * Math.exp(0.8 * normal())] as const);
    let abroadUntil = -1;
    let abroadIn = home;
    for (let d = 0; d < days; d++) {
      const dayStart = start + d * DAY;
      if (dayStart > abroadUntil && rand() < 0.01) {
        abroadUntil = dayStart + (2 + Math.floor(rand() * 5)) * DAY;
        abroadIn = pick(TRAVEL_COUNTRIES.filter((k) => k !== home));
      }
      const n = poisson(perDay);
      for (let i = 0; i < n; i++) {
        const category = weighted(taste);
        const country = dayStart <= abroadUntil ? abroadIn : home;
        const amount = amountOf(category);
        // A lone fraudulent charge: likelier for large amounts and abroad.
        const z =
          -7.2 +
          1.1 * Math.log(amount / 30) +
          (country !== home ? 1.8 : 0) +
          (category.resellable ? 0.6 : 0);
        const fraud = rand() < 1 / (1 + Math.exp(-z));
        rows.push({
          card,
          ts: dayStart + timeOfDay(),
          merchant: merchantOf(category),
          category: category.name,
          country,
          home,
          amount,
          fraud,
        });
      }
    }
  }

  // Card-testing and cash-out bursts on compromised cards.
  const resellable = CATEGORIES.filter((cat) => cat.resellable);
  const bursts = poisson(cards * days * 0.0125);
  for (let b = 0; b < bursts; b++) {
    const c = Math.floor(rand() * cards);
    const card = `c${String(c).padStart(4, '0')}`;
    const home = homes[c] as string;
    const country = rand() < 0.65 ? pick(FRAUD_COUNTRIES.filter((k) => k !== home)) : home;
    let ts = start + Math.floor(rand() * days) * DAY + timeOfDay();
    const size = 3 + Math.floor(rand() * 6);
    for (let i = 0; i < size; i++) {
      const category = rand() < 0.8 ? pick(resellable) : pick(CATEGORIES);
      // The first charges are small tests; then the fraudster cashes out.
      const scale = i < 2 && rand() < 0.5 ? 0.2 : 1.5 + rand() * 2;
      rows.push({
        card,
        ts,
        merchant: merchantOf(category),
        category: category.name,
        country,
        home,
        amount: amountOf(category, scale),
        fraud: true,
      });
      ts += MINUTE + Math.floor((rand() * 12 * MINUTE) / 1000) * 1000;
    }
  }

  rows.sort((a, b) => a.ts - b.ts || (a.card < b.card ? -1 : a.card > b.card ? 1 : 0));
  const end = start + days * DAY;
  const kept = rows.filter((r) => r.ts < end);
  const eventIds = kept.map((_, i) => `t${String(i + 1).padStart(7, '0')}`);
  const transactions: Table = {
    columns: [
      { name: 'event_id', type: 'string', values: eventIds },
      { name: 'card_id', type: 'string', values: kept.map((r) => r.card) },
      { name: 'ts', type: 'timestamp', values: kept.map((r) => r.ts) },
      { name: 'merchant', type: 'string', values: kept.map((r) => r.merchant) },
      { name: 'merchant_category', type: 'string', values: kept.map((r) => r.category) },
      { name: 'country', type: 'string', values: kept.map((r) => r.country) },
      { name: 'foreign', type: 'int', values: kept.map((r) => (r.country === r.home ? 0 : 1)) },
      { name: 'amount', type: 'float', values: kept.map((r) => r.amount) },
    ],
    rowCount: kept.length,
  };
  const labels: Table = {
    columns: [
      { name: 'event_id', type: 'string', values: eventIds },
      { name: 'card_id', type: 'string', values: kept.map((r) => r.card) },
      { name: 'ts', type: 'timestamp', values: kept.map((r) => r.ts) },
      { name: 'is_fraud', type: 'int', values: kept.map((r) => (r.fraud ? 1 : 0)) },
    ],
    rowCount: kept.length,
  };
  return { transactions, labels };
}

interface Raw {
  readonly card: string;
  readonly ts: number;
  readonly merchant: string;
  readonly category: string;
  readonly country: string;
  readonly home: string;
  readonly amount: number;
  readonly fraud: boolean;
}
