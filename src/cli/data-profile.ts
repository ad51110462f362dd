/**
 * `ferry data profile <file>`: per-column statistics of a data file. `--json` prints the profile
 * itself (the format stored with datasets and models), so its output can serve as the reference
 * of a `distribution` validation rule.
 */
import type { Command } from 'commander';
import type { ColumnProfile, TableProfile } from '../core/profile.js';
import type { ColumnType } from '../core/table.js';
import { profileTable } from '../data/profile.js';
import { readTable } from '../data/read.js';
import type { GlobalOptions } from './context.js';
import { argumentError, printJson, progress } from './output.js';

interface ProfileOptions extends GlobalOptions {
  readonly bins: string;
}

export function registerDataProfile(data: Command): void {
  data
    .command('profile')
    .description(
      'per-column statistics of a file: counts, nulls, distinct, range, quantiles, top values, histogram',
    )
    .argument('<file>', 'data file: .csv, .parquet or .jsonl')
    .option('--bins <n>', 'histogram bins of numeric columns', '10')
    .option('--json', 'print the profile as JSON (usable as a distribution rule reference)')
    .action(async (file: string, _o: unknown, command: Command) => {
      const options = command.optsWithGlobals<ProfileOptions>();
      const bins = Number(options.bins);
      if (!Number.isInteger(bins) || bins < 1 || bins > 100) {
        throw argumentError(`--bins must be an integer from 1 to 100, got '${options.bins}'`);
      }
      progress(options)(`Reading ${file}...`);
      const table = await readTable(file);
      const profile = profileTable(table, { bins });
      if (options.json) return printJson(profile);
      const types = Object.fromEntries(table.columns.map((c) => [c.name, c.type]));
      process.stdout.write(formatProfile(profile, types));
    });
}

const BAR_WIDTH = 24;
const EIGHTHS = ['', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];

/** A bar of `share` (0..1) of the full width, in eighths of a character. */
function bar(share: number): string {
  const eighths = Math.round(Math.max(0, Math.min(1, share)) * BAR_WIDTH * 8);
  return '█'.repeat(Math.floor(eighths / 8)) + (EIGHTHS[eighths % 8] ?? '');
}

/** Aligned rows of cells, two spaces apart, each line indented. */
function aligned(
  rows: readonly (readonly string[])[],
  indent: string,
  right: number[] = [],
): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map(
    (row) =>
      indent +
      row
        .map((c, i) => (right.includes(i) ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0)))
        .join('  ')
        .trimEnd(),
  );
}

/**
 * The profile for people: a summary line per column, then each column's quantiles, histogram
 * or top values. Timestamp statistics print as ISO times.
 * @example process.stdout.write(formatProfile(profile, { amount: 'float' }));
 */
export function formatProfile(
  profile: TableProfile,
  types: Readonly<Record<string, ColumnType>> = {},
): string {
  const value = (v: number | null | undefined, type: ColumnType | undefined): string =>
    v === null || v === undefined
      ? '-'
      : type === 'timestamp' && Number.isFinite(v)
        ? new Date(v).toISOString()
        : formatNumber(v);
  const lines: string[] = [
    `${profile.rowCount} rows, ${Object.keys(profile.columns).length} columns`,
    '',
  ];
  const summary = [['column', 'type', 'count', 'nulls', 'distinct', 'min', 'max', 'mean', 'std']];
  for (const [name, p] of Object.entries(profile.columns)) {
    const type = types[name];
    const numeric = p.kind === 'numeric';
    summary.push([
      name,
      type ?? p.kind,
      String(p.count),
      p.nulls === 0 ? '0' : `${p.nulls} (${share(p.nulls, p.count)})`,
      String(p.distinct),
      numeric ? value(p.min, type) : '-',
      numeric ? value(p.max, type) : '-',
      numeric && type !== 'timestamp' ? value(p.mean, type) : '-',
      numeric && type !== 'timestamp' ? value(p.std, type) : '-',
    ]);
  }
  lines.push(...aligned(summary, '', [2, 4]));
  for (const [name, p] of Object.entries(profile.columns)) {
    lines.push('', `${name} (${types[name] ?? p.kind})`);
    lines.push(...columnDetail(p, types[name], value));
  }
  return lines.join('\n') + '\n';
}

function columnDetail(
  p: ColumnProfile,
  type: ColumnType | undefined,
  value: (v: number | null | undefined, type: ColumnType | undefined) => string,
): string[] {
  const present = p.count - p.nulls;
  if (p.kind === 'categorical') {
    if (p.top.length === 0) return ['  (no values)'];
    const rows = p.top.map((t) => [
      JSON.stringify(t.value),
      String(t.count),
      bar(t.count / present),
    ]);
    if (p.otherCount > 0)
      rows.push([
        `(${p.distinct - p.top.length} others)`,
        String(p.otherCount),
        bar(p.otherCount / present),
      ]);
    return ['  top values', ...aligned(rows, '    ', [1])];
  }
  if (present === 0) return ['  (no values)'];
  const quantiles = Object.entries(p.quantiles)
    .map(([q, v]) => `p${Number(q) * 100} ${value(v, type)}`)
    .join('  ');
  const { edges, counts } = p.histogram;
  const largest = Math.max(...counts);
  const rows = counts.map((n, i) => [
    `${value(edges[i], type)} … ${value(edges[i + 1], type)}`,
    String(n),
    bar(largest === 0 ? 0 : n / largest),
  ]);
  return [`  quantiles  ${quantiles}`, '  histogram', ...aligned(rows, '    ', [1])];
}

/** Six significant digits, without trailing zeros: 1.5, 132.917, 1.23457e+9. */
function formatNumber(v: number): string {
  return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(6)));
}

function share(part: number, whole: number): string {
  return whole === 0 ? '0%' : `${Number(((part / whole) * 100).toPrecision(3))}%`;
}
