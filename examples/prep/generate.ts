/**
 * Writes the example's data, deterministically (a fixed-seed generator), with the dirt real
 * exports have: exact duplicate lines, a corrected transaction sent twice, a line with an extra
 * field, a line that is not UTF-8, amounts that are not numbers, impossible dates, missing
 * cards and countries, refunds (negative amounts), outliers, and an unknown country code.
 * Run: npx tsx examples/prep/generate.ts
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = path.dirname(fileURLToPath(import.meta.url));
let state = 20240601;
/** A uniform number in [0, 1) from a 32-bit linear congruential generator. */
function random(): number {
  state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
  return state / 2 ** 32;
}
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
const pad = (n: number): string => String(n).padStart(2, '0');

const cards = Array.from({ length: 40 }, (_, i) => `card_${String(i + 1).padStart(3, '0')}`);
const categories = ['grocery', 'fuel', 'travel', 'online', 'restaurant', 'electronics', 'jewelry'];
const countries = ['FR', 'FR', 'FR', 'DE', 'ES', 'IT', 'BE', 'NL'];
const channels = ['in_store', 'online', 'phone'];

/** A French-formatted amount: '1.234,56'. */
function euros(value: number): string {
  const [whole, cents] = value.toFixed(2).split('.') as [string, string];
  return `"${whole.replace(/\B(?=(\d{3})+(?!\d))/g, '.')},${cents}"`;
}

const lines: string[] = ['tx_id,card_id,ts,amount,merchant_category,country,channel,is_fraud'];
for (let i = 1; i <= 420; i++) {
  const day = 1 + Math.floor(random() * 30);
  const hour = Math.floor(random() * 24);
  const minute = Math.floor(random() * 60);
  const fraud = random() < 0.12 ? 1 : 0;
  const base = fraud ? 150 + random() * 900 : 5 + random() * 120;
  let amount = euros(base);
  let ts = `${pad(day)}/06/2024 ${pad(hour)}:${pad(minute)}`;
  let card = pick(cards);
  let country = pick(countries);
  if (i % 97 === 0) amount = 'n/a';
  if (i % 83 === 0) amount = euros(25_000 + random() * 10_000);
  if (i % 71 === 0) amount = euros(-(5 + random() * 50));
  if (i % 89 === 0) ts = '31/06/2024 10:00';
  if (i % 101 === 0) card = '';
  if (i % 67 === 0) country = '';
  if (i % 131 === 0) country = 'XX';
  const category = fraud ? pick(['online', 'electronics', 'jewelry', 'travel']) : pick(categories);
  const channel = pick(channels);
  const line = `tx_${i},${card},${ts},${amount},${category},${country},${channel},${fraud}`;
  lines.push(line);
  if (i % 53 === 0) lines.push(line);
  if (i % 61 === 0) {
    // A correction of the same transaction, sent a minute later with another amount.
    const later = `${pad(day)}/06/2024 ${pad(hour)}:${pad(Math.min(minute + 1, 59))}`;
    lines.push(
      `tx_${i},${card},${later},${euros(base + 1)},${category},${country},${channel},${fraud}`,
    );
  }
  if (i === 150) lines.push(`${line},unexpected`);
}
const body = Buffer.from(lines.join('\n') + '\n', 'utf8');
// One line exported in latin-1: a byte that is not UTF-8.
const broken = Buffer.from(
  'tx_999,card_001,15/06/2024 12:00,"12,00",caf\xe9,FR,in_store,0\n',
  'latin1',
);
writeFileSync(path.join(dir, 'transactions.csv'), Buffer.concat([body, broken]));

const scores: string[] = ['card_id,updated_at,risk_score'];
for (const card of cards) {
  let day = 1 + Math.floor(random() * 5);
  while (day <= 30) {
    scores.push(`${card},2024-06-${pad(day)}T00:00:00Z,${random().toFixed(3)}`);
    day += 3 + Math.floor(random() * 8);
  }
}
writeFileSync(path.join(dir, 'card_scores.csv'), scores.join('\n') + '\n');
