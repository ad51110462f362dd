/**
 * `npm run bench [-- <name>...]`: runs every `bench/*.bench.ts` (or the named ones)
 * one after the other and prints a summary table. `npm run -s bench -- --json` prints the figures
 * as JSON on stdout instead (`-s` keeps npm's banner out of it; each benchmark's own lines go
 * to stderr).
 *
 * Each benchmark runs in a process of its own, so one benchmark's heap, JIT state and open
 * handles never colour the next one's figures, and a crash or hang stops only that benchmark.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { tableHeader, tableRow, type BenchReport } from './report.js';

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.dirname(BENCH_DIR);
const SUFFIX = '.bench.ts';
/** A benchmark still running after this long is stopped and reported as failed... */
const TIMEOUT_MS = 180_000;
/**
 * ...unless it needs longer: `features` generates and joins millions of rows (a training set of
 * 1M label rows over 3M events) besides its lookups and ingestion runs.
 */
const TIMEOUTS_MS: Readonly<Record<string, number>> = {
  features: 1_200_000,
  train: 1_200_000,
  // 19 load runs of FERRY_BENCH_SECONDS (10 s) plus warm-ups, after training, ingestion and
  // starting 5 servers: 6 to 12 minutes on a busy machine.
  serve: 1_200_000,
  // Ferry and XGBoost on 10 public data sets, 5 split seeds each under 20k rows, and a million
  // flights: 15 to 30 minutes at Ferry's defaults, more with a search in FERRY_QUALITY_OPTIONS.
  quality: 3_600_000,
};

interface Outcome {
  readonly bench: string;
  readonly report?: BenchReport;
  readonly error?: string;
}

function available(): string[] {
  return readdirSync(BENCH_DIR)
    .filter((f) => f.endsWith(SUFFIX))
    .map((f) => f.slice(0, -SUFFIX.length))
    .sort();
}

function runOne(bench: string, resultFile: string, json: boolean): Promise<Outcome> {
  return new Promise((resolve) => {
    // `--import tsx` resolves from the repository root, where tsx is installed.
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', path.join(BENCH_DIR, bench + SUFFIX), '--result', resultFile],
      { cwd: ROOT, stdio: ['ignore', json ? 'pipe' : 'inherit', 'inherit'] },
    );
    // With --json, stdout carries only the JSON: a benchmark's own lines go to stderr.
    child.stdout?.pipe(process.stderr);
    let timedOut = false;
    const timeoutMs = TIMEOUTS_MS[bench] ?? TIMEOUT_MS;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    // Whichever settles first wins; a later resolve is a no-op.
    child.on('error', (error) => {
      clearTimeout(timer);
      resolve({ bench, error: error.message });
    });
    // 'close', not 'exit': the benchmark's output has been passed on by then.
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (timedOut) return resolve({ bench, error: `stopped after ${timeoutMs / 1000} s` });
      if (code !== 0) return resolve({ bench, error: `exited with ${signal ?? `code ${code}`}` });
      try {
        resolve({ bench, report: JSON.parse(readFileSync(resultFile, 'utf8')) as BenchReport });
      } catch (error) {
        resolve({ bench, error: `wrote no result (${(error as Error).message})` });
      }
    });
  });
}

function machine(): Record<string, string | number> {
  const cpus = os.cpus();
  return {
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    cpus: cpus.length,
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
  };
}

function printSummary(outcomes: readonly Outcome[]): void {
  const info = machine();
  console.log(
    `\nSummary (${info.cpuModel}, ${info.cpus} CPUs, Node ${info.node}); µs per operation, × base = p50 / p50 of the last [baseline] row above it`,
  );
  console.log(tableHeader('bench    '));
  for (const o of outcomes) {
    const label = o.bench.padEnd(9);
    if (o.report) for (const row of o.report.rows) console.log(tableRow(row, label));
    else console.log(`${label}FAILED: ${o.error}`);
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const json = args.includes('--json');
  const names = args.filter((a) => !a.startsWith('--'));
  const all = available();
  const unknown = names.filter((n) => !all.includes(n));
  if (unknown.length > 0) {
    console.error(`unknown benchmark ${unknown.join(', ')}; available: ${all.join(', ')}`);
    process.exitCode = 2;
    return;
  }
  const selected = names.length > 0 ? all.filter((n) => names.includes(n)) : all;
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'ferry-bench-'));
  const outcomes: Outcome[] = [];
  const startedAt = new Date().toISOString();
  try {
    for (const bench of selected)
      outcomes.push(await runOne(bench, path.join(tmp, `${bench}.json`), json));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  if (json) {
    const out = {
      startedAt,
      machine: machine(),
      benches: outcomes.flatMap((o) => (o.report ? [o.report] : [])),
      failed: outcomes.flatMap((o) => (o.error ? [{ bench: o.bench, error: o.error }] : [])),
    };
    process.stdout.write(JSON.stringify(out, null, 2) + '\n');
  } else printSummary(outcomes);
  if (outcomes.some((o) => o.error)) process.exitCode = 1;
}

await main();
