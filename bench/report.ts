/**
 * What a benchmark reports and how it is printed. Each `*.bench.ts` runs in its own process
 * through `runBench`: it prints its rows as they are measured and, when `bench/run.ts` asks with
 * `--result <file>`, writes the same figures there as JSON for the summary.
 *
 * Every row carries the ratio of its p50 to the p50 of the benchmark's baseline, measured in the
 * same run on the same machine: absolute figures move with the machine, ratios much less. A
 * benchmark of several parts gives each its own floor by calling `baseline` again: a row is
 * compared with the last baseline before it.
 */
import { writeFileSync } from 'node:fs';
import type { LatencyResult } from './measure.js';

export interface BenchRow extends LatencyResult {
  /** p50 of this row over p50 of the baseline row (1 for the baseline itself). */
  readonly ratio: number;
  readonly baseline: boolean;
}

export interface BenchReport {
  /** The file name without `.bench.ts`: what `npm run bench -- <name>` selects. */
  readonly bench: string;
  readonly title: string;
  /** Name of the row the ratios divide by (the first, when parts have baselines of their own). */
  readonly baseline: string | null;
  readonly rows: BenchRow[];
  /** Setup facts a reader needs to judge the figures (data sizes, model size, setup times). */
  readonly notes: string[];
  readonly seconds: number;
}

export class Reporter {
  readonly rows: BenchRow[] = [];
  readonly notes: string[] = [];
  private base: LatencyResult | null = null;
  private firstBase: LatencyResult | null = null;
  private printedHeader = false;

  constructor(
    readonly bench: string,
    readonly title: string,
  ) {}

  /** A setup fact, printed at once and kept in the report. */
  note(text: string): void {
    this.notes.push(text);
    console.log(`  ${text}`);
  }

  /** Records the row every later row is compared with, until the next baseline. */
  baseline(result: LatencyResult): void {
    this.base = result;
    this.firstBase ??= result;
    this.push(result, true);
  }

  add(result: LatencyResult): void {
    if (this.base === null) throw new Error(`${this.bench}: measure the baseline first`);
    this.push(result, false);
  }

  report(seconds: number): BenchReport {
    return {
      bench: this.bench,
      title: this.title,
      baseline: this.firstBase?.name ?? null,
      rows: this.rows,
      notes: this.notes,
      seconds,
    };
  }

  private push(result: LatencyResult, isBaseline: boolean): void {
    const ratio = isBaseline ? 1 : result.p50Us / (this.base as LatencyResult).p50Us;
    const row: BenchRow = { ...result, ratio, baseline: isBaseline };
    this.rows.push(row);
    if (!this.printedHeader) {
      console.log(tableHeader());
      this.printedHeader = true;
    }
    console.log(tableRow(row));
  }
}

const NAME_WIDTH = 64;

function fixed(value: number): string {
  if (!Number.isFinite(value)) return '-';
  if (value >= 1000) return Math.round(value).toLocaleString('en-US');
  if (value >= 100) return value.toFixed(0);
  if (value >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

/** The column titles of `tableRow`, with a rule under them. */
export function tableHeader(prefix = ''): string {
  const title =
    prefix +
    'case'.padEnd(NAME_WIDTH) +
    'p50 µs'.padStart(10) +
    'p99 µs'.padStart(10) +
    'ops/s'.padStart(12) +
    '× base'.padStart(9);
  return `${title}\n${'-'.repeat(title.length)}`;
}

/** One row: per-operation p50 and p99 in µs, operations per second, p50 ratio to the baseline. */
export function tableRow(row: BenchRow, prefix = ''): string {
  const name = row.baseline ? `${row.name} [baseline]` : row.name;
  return (
    prefix +
    (name.length > NAME_WIDTH - 1 ? `${name.slice(0, NAME_WIDTH - 2)}…` : name).padEnd(NAME_WIDTH) +
    fixed(row.p50Us).padStart(10) +
    fixed(row.p99Us).padStart(10) +
    Math.round(row.opsPerSec).toLocaleString('en-US').padStart(12) +
    `${fixed(row.ratio)}×`.padStart(9)
  );
}

/**
 * Runs one benchmark's body in this process, prints its rows, and writes its report to the file
 * named by `--result <file>` when given. A failure is printed and sets a non-zero exit code.
 * @example
 * await runBench('online', 'online feature lookups', async (report) => {
 *   report.baseline(await measureLatency('raw lookup', (i) => stmt.get(keys[i % n])));
 * });
 */
export async function runBench(
  bench: string,
  title: string,
  body: (report: Reporter) => Promise<void>,
): Promise<void> {
  const at = process.argv.indexOf('--result');
  const resultFile = at >= 0 ? process.argv[at + 1] : undefined;
  const reporter = new Reporter(bench, title);
  console.log(`\n${bench}: ${title}`);
  const started = performance.now();
  try {
    await body(reporter);
  } catch (error) {
    console.error(`${bench} failed:`, error);
    process.exitCode = 1;
    return;
  }
  const report = reporter.report((performance.now() - started) / 1000);
  console.log(`  (${report.seconds.toFixed(1)} s)`);
  if (resultFile !== undefined) writeFileSync(resultFile, JSON.stringify(report));
}
