/**
 * Data preparation throughput: reading, preparing and validating a large CSV, in rows per second
 * and peak memory.
 *
 * Setup (not timed): a generated, seeded CSV of 1,000,000 data lines and 20 columns (ids, a
 * timestamp written `%d/%m/%Y %H:%M:%S`, French-formatted amounts `"1.234,56"`, plain floats,
 * ints, categoricals of 3 to 1,000 values, two boolean spellings, a label), with the dirt of a
 * real export: about 1% of values missing, 0.5% exact duplicate lines, 0.1% of ids re-sent with
 * another amount, a few out-of-range ages and unknown country codes, and a few malformed lines.
 * A 50,000-row customers CSV is the merge's other side.
 *
 * Cases, each in a process of its own so that its peak RSS is its own:
 * - baseline: plain DuckDB (`@duckdb/node-api`), `SELECT count(*), sum(..) FROM read_csv(..)`
 *   with DuckDB's sniffer and `ignore_errors` (the malformed lines would stop it otherwise);
 * - reference: the same reader copying every column, typed by the sniffer, to Parquet: the
 *   floor of what Ferry's reader does (it stages every source as typed Parquet);
 * - Ferry's source reader (`openSource`): text scan, type inference from every value, malformed
 *   lines counted, staged to Parquet, then counted;
 * - `runRecipe` with every step kind that fits this data (dedupe, cast, drop_missing, filter,
 *   merge, derive, split, fill, clip, encode, scale, rename, drop), written as Parquet;
 * - the same recipe with a rule set of 9 rules under the quarantine policy.
 * Rows per second divide the file's data lines by the case's wall time (process start and
 * imports excluded). The baseline runs first and last, twice each, and reports its median: on a
 * machine shared with other work the spread shows. CPU seconds (every thread) are printed too,
 * since they move less than wall time when other processes compete for the cores. Memory: the
 * process's RSS and DuckDB's own `duckdb_memory()` sampled every 50 ms, with the kernel's RSS
 * high-water mark as a check on the sampling.
 *
 * Note that the baseline converts 3 of the 20 columns and writes nothing, so any path that types
 * and writes every column stays well below it; the reference row shows how far DuckDB itself gets.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { finished } from 'node:stream/promises';
import { createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { parseProjectSpec } from '../src/config/load.js';
import type { ProjectSpec } from '../src/config/schema.js';
import { quoteString, resultToTable, withDuckDB } from '../src/data/duckdb.js';
import { runRecipe } from '../src/data/prep/run.js';
import type { PrepReport } from '../src/data/prep/report.js';
import { openSource } from '../src/data/source.js';
import { openParquetOfflineStore } from '../src/feature-store/offline/parquet.js';
import type { LatencyResult } from './measure.js';
import { runBench, type Reporter } from './report.js';
import { createRng } from '../src/training/random.js';

const SELF = fileURLToPath(import.meta.url);
const ROOT = path.dirname(path.dirname(SELF));
/** Data lines of the main CSV, duplicates and malformed lines included. */
const ROWS = 1_000_000;
const CUSTOMERS = 50_000;
const MALFORMED = 12;
const SAMPLE_MS = 50;
/** A case still running after this long is stopped (the harness stops the file at 180 s). */
const CASE_TIMEOUT_MS = 120_000;
/** Runs of the baseline in each of its two processes (first and last). */
const BASELINE_RUNS = 2;
const MB = 1024 * 1024;

const CASES = ['baseline', 'duckdb-parquet', 'read', 'prep', 'prep-validate'] as const;
type CaseName = (typeof CASES)[number];

const COUNTRIES = ['FR', 'DE', 'ES', 'IT', 'BE', 'NL', 'PT', 'PL'];
const CHANNELS = ['web', 'app', 'store'];
const SEGMENTS = ['gold', 'silver', 'bronze', 'new'];

const STEPS = [
  { step: 'dedupe' },
  {
    step: 'cast',
    column: 'ts',
    to: 'timestamp',
    format: '%d/%m/%Y %H:%M:%S',
    timezone: 'Europe/Paris',
  },
  { step: 'cast', column: 'amount', to: 'float', decimal: ',', thousands: '.' },
  { step: 'drop_missing', columns: ['id', 'ts'] },
  { step: 'filter', where: 'amount is null or amount >= 0' },
  { step: 'merge', source: 'customers', on: ['customer_id'] },
  { step: 'derive', column: 'hour', expr: 'hour(ts)' },
  { step: 'derive', column: 'log_amount', expr: 'log(amount + 1)' },
  {
    step: 'split',
    method: 'stratified',
    column: 'label',
    fractions: { train: 0.8, validation: 0.1, test: 0.1 },
    seed: 7,
  },
  { step: 'fill', columns: ['amount', 'balance', 'credit_limit'], with: 'median' },
  { step: 'fill', columns: ['score'], with: 'mean' },
  { step: 'fill', columns: ['channel', 'segment'], with: 'mode' },
  { step: 'fill', columns: ['device'], with: 'constant', value: 'unknown' },
  { step: 'clip', columns: ['amount', 'balance'], lower: 0.01, upper: 0.99 },
  { step: 'encode', column: 'channel', method: 'one_hot' },
  { step: 'encode', column: 'segment', method: 'one_hot' },
  { step: 'encode', column: 'merchant_category', method: 'ordinal' },
  { step: 'encode', column: 'device', method: 'ordinal' },
  { step: 'scale', columns: ['log_amount', 'score', 'credit_limit'], method: 'standard' },
  { step: 'scale', columns: ['temperature'], method: 'min_max' },
  { step: 'rename', columns: { tenure_days: 'tenure' } },
  { step: 'drop', columns: ['region'] },
];
const RULES = [
  { rule: 'not_null', column: 'id' },
  { rule: 'not_null', column: 'customer_id' },
  { rule: 'unique', columns: ['id'] },
  { rule: 'range', column: 'age', min: 0, max: 120 },
  { rule: 'allowed', column: 'country', values: COUNTRIES },
  { rule: 'pattern', column: 'customer_id', regex: 'c_[0-9]{6}' },
  { rule: 'null_share', column: 'visits', max: 0.05 },
  { rule: 'row_count', min: 900_000 },
  {
    rule: 'expression',
    // A check must be true: a missing value would fail it without the first term.
    check: 'items is null or (items >= 1 and items <= 10)',
    message: 'items out of 1..10',
  },
];

/** What `ferry.yaml` would hold: the two sources, the rule set and the recipe with and without it. */
const SPEC = {
  sources: [
    // Read as text: the recipe converts them with the export's formats.
    { name: 'events', type: 'csv', path: 'events.csv', schema: { ts: 'string', amount: 'string' } },
    { name: 'customers', type: 'csv', path: 'customers.csv' },
  ],
  validations: [{ name: 'bench_rules', policy: 'quarantine', rules: RULES }],
  recipes: [
    { name: 'bench_prep', source: 'events', steps: STEPS },
    { name: 'bench_prep_validate', source: 'events', validation: 'bench_rules', steps: STEPS },
  ],
};

const TITLES: Record<CaseName, string> = {
  baseline: 'DuckDB read_csv, count(*) + 3 sums',
  'duckdb-parquet': 'DuckDB read_csv → Parquet, all columns (reference)',
  read: 'Ferry openSource: read, type, stage (to a count)',
  prep: `Ferry runRecipe: ${STEPS.length} steps → Parquet`,
  'prep-validate': `Ferry runRecipe: ${STEPS.length} steps + ${RULES.length} rules (quarantine)`,
};

// ---------------------------------------------------------------------------------------------
// Generation

/** Writes `header` and `lines` lines from `next`, in ~1 MB chunks, waiting when the stream is full. */
async function writeCsv(
  file: string,
  header: string,
  lines: number,
  next: () => string,
): Promise<number> {
  const out = createWriteStream(file);
  let chunk = header + '\n';
  let bytes = 0;
  for (let i = 0; i < lines; i++) {
    chunk += next() + '\n';
    if (chunk.length >= 1 << 20) {
      bytes += chunk.length;
      if (!out.write(chunk)) await once(out, 'drain');
      chunk = '';
    }
  }
  bytes += chunk.length;
  out.end(chunk);
  await finished(out);
  return bytes;
}

const pad2 = (n: number): string => (n < 10 ? `0${n}` : String(n));

/** A French-formatted amount, quoted: `"1.234,56"`. */
function euros(value: number): string {
  const [whole, cents] = Math.abs(value).toFixed(2).split('.') as [string, string];
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, '.');
  return `"${value < 0 ? '-' : ''}${grouped},${cents}"`;
}

/** The events' lines, one per call: exactly `ROWS` of them, dirt included. */
function eventLines(random: () => number): () => string {
  const start = Date.UTC(2024, 0, 1) / 1000;
  const year = 366 * 86_400;
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const orNull = (text: string): string => (random() < 0.01 ? '' : text);
  const malformedAt = new Set(
    Array.from({ length: MALFORMED }, (_, k) => Math.floor(((k + 0.5) * ROWS) / MALFORMED)),
  );
  let emitted = 0;
  let id = 0;
  let previous = '';
  let previousFields: string[] = [];
  const fields = (): string[] => {
    id++;
    const d = new Date((start + Math.floor(random() * year)) * 1000);
    const ts =
      `${pad2(d.getUTCDate())}/${pad2(d.getUTCMonth() + 1)}/${d.getUTCFullYear()} ` +
      `${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:${pad2(d.getUTCSeconds())}`;
    // Log-uniform from 1 to ~8,000, 0.5% refunds (negative), 0.1% not a number.
    const value = Math.round(Math.exp(random() * 9) * 100) / 100;
    const r = random();
    const amount = r < 0.001 ? 'n/a' : euros(r < 0.006 ? -value : value);
    // A label that depends on the amount, so stratification and scaling see real structure.
    const label = random() < (value > 1000 ? 0.3 : 0.08) ? '1' : '0';
    return [
      String(id),
      orNull(`c_${String(1 + Math.floor(random() * CUSTOMERS)).padStart(6, '0')}`),
      orNull(ts),
      orNull(amount),
      orNull((random() * 20_000 - 5_000).toFixed(2)),
      orNull(random().toFixed(3)),
      orNull((random() * 0.5).toFixed(2)),
      orNull((random() * 50 - 10).toFixed(1)),
      orNull(String(1 + Math.floor(random() * 10))),
      orNull(random() < 0.002 ? '999' : String(18 + Math.floor(random() * 72))),
      orNull(String(Math.floor(random() * 500))),
      orNull(String(Math.floor(random() * 3650))),
      orNull(random() < 0.003 ? 'XX' : pick(COUNTRIES)),
      orNull(pick(CHANNELS)),
      orNull(`mcc_${pad2(1 + Math.floor(random() ** 2 * 20))}`),
      orNull(`dev_${String(Math.floor(random() * 1000)).padStart(4, '0')}`),
      orNull(`R-${pad2(1 + Math.floor(random() * 50))}`),
      orNull(random() < 0.3 ? 'true' : 'false'),
      orNull(random() < 0.2 ? 'Y' : 'N'),
      label,
    ];
  };
  return () => {
    emitted++;
    if (malformedAt.has(emitted)) {
      // Alternately a field too many and a line cut short.
      return emitted % 2 === 0 ? `${previous},extra` : previousFields.slice(0, 7).join(',');
    }
    const r = random();
    if (r < 0.005 && previous !== '') return previous; // an exact duplicate line
    const row = fields();
    if (r > 0.999 && previous !== '') {
      // The previous id sent again with another amount: a duplicate key, not a duplicate line.
      row[0] = String(id - 1);
      row[3] = euros(Math.round(random() * 10_000) / 100);
    }
    previousFields = row;
    previous = row.join(',');
    return previous;
  };
}

const EVENTS_HEADER =
  'id,customer_id,ts,amount,balance,score,discount,temperature,items,age,visits,tenure_days,' +
  'country,channel,merchant_category,device,region,is_new,has_promo,label';

async function generate(dir: string): Promise<{ bytes: number }> {
  const random = createRng(42);
  const bytes = await writeCsv(
    path.join(dir, 'events.csv'),
    EVENTS_HEADER,
    ROWS,
    eventLines(random),
  );
  let c = 0;
  await writeCsv(
    path.join(dir, 'customers.csv'),
    'customer_id,segment,credit_limit',
    CUSTOMERS,
    () => {
      c++;
      const segment = random() < 0.02 ? '' : SEGMENTS[Math.floor(random() * SEGMENTS.length)];
      return `c_${String(c).padStart(6, '0')},${segment},${Math.round(500 + random() * 20_000)}`;
    },
  );
  return { bytes };
}

// ---------------------------------------------------------------------------------------------
// One case, in a child process

interface CaseResult {
  readonly name: CaseName;
  /** Wall seconds of each run of the case. */
  readonly seconds: number[];
  /** CPU seconds (user + system, every thread) of each run: less moved by other work on the machine. */
  readonly cpuSeconds: number[];
  /** RSS after imports and DuckDB's start, before the work. */
  readonly idleRss: number;
  /** Highest sampled RSS. */
  readonly peakRss: number;
  /** The kernel's high-water mark of RSS (Linux), or null. */
  readonly hwmRss: number | null;
  /** Highest sampled sum of `duckdb_memory()`. */
  readonly peakDuck: number;
  /** Rows the case read (the reads) or wrote (the recipes). */
  readonly rows: number;
  readonly details: string[];
}

interface Outcome {
  readonly rows: number;
  readonly details: string[];
}

/** The kernel's RSS high-water mark of this process (VmHWM; reset by exec, unlike getrusage's). */
function highWaterRss(): number | null {
  try {
    const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    return match ? Number(match[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** Samples RSS and, through `probe`, DuckDB's memory every SAMPLE_MS until stopped. */
function sampleMemory(probe: DuckDBConnection): () => Promise<{ rss: number; duck: number }> {
  let rss = process.memoryUsage.rss();
  let duck = 0;
  let pending: Promise<void> | null = null;
  const sample = (): void => {
    rss = Math.max(rss, process.memoryUsage.rss());
    // A second connection answers while the work's query runs; skip a tick it is still busy.
    pending ??= probe
      .runAndReadAll('SELECT CAST(sum(memory_usage_bytes) AS DOUBLE) FROM duckdb_memory()')
      .then((r) => {
        duck = Math.max(duck, Number(r.getRows()[0]?.[0] ?? 0));
      })
      .finally(() => {
        pending = null;
      });
  };
  const timer = setInterval(sample, SAMPLE_MS);
  sample();
  return async () => {
    clearInterval(timer);
    sample();
    await pending;
    return { rss, duck };
  };
}

function specOf(): ProjectSpec {
  return parseProjectSpec(SPEC, 'bench/prep.bench.ts');
}

const count = (n: number): string => n.toLocaleString('en-US');

/** Times `work` with memory sampled through `probe`. */
async function timed(
  name: CaseName,
  probe: DuckDBConnection,
  runs: number,
  work: () => Promise<Outcome>,
): Promise<CaseResult> {
  const idleRss = process.memoryUsage.rss();
  const stop = sampleMemory(probe);
  const seconds: number[] = [];
  const cpuSeconds: number[] = [];
  let outcome: Outcome = { rows: 0, details: [] };
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    const cpu = process.cpuUsage();
    outcome = await work();
    seconds.push((performance.now() - started) / 1000);
    const used = process.cpuUsage(cpu);
    cpuSeconds.push((used.user + used.system) / 1e6);
  }
  const peak = await stop();
  return {
    name,
    seconds,
    cpuSeconds,
    idleRss,
    peakRss: peak.rss,
    hwmRss: highWaterRss(),
    peakDuck: peak.duck,
    ...outcome,
  };
}

/** Seconds of each stage that took any; `write` is the rest of the run (output files, fitted recipe). */
function stageSummary(report: PrepReport): string {
  const stages = report.stages.map((s) => ({
    label: s.index === null || s.index === 0 ? s.stage : `${s.index}.${s.stage}`,
    seconds: s.seconds,
  }));
  const inStages = stages.reduce((n, s) => n + s.seconds, 0);
  stages.push({ label: 'write', seconds: Math.max(0, report.seconds - inStages) });
  return stages
    .filter((s) => s.seconds >= 0.05)
    .map((s) => `${s.label} ${s.seconds.toFixed(1)}`)
    .join(', ');
}

async function runCase(name: CaseName, dir: string): Promise<CaseResult> {
  const csv = path.join(dir, 'events.csv');
  if (name === 'baseline' || name === 'duckdb-parquet') {
    const instance = await DuckDBInstance.create(':memory:');
    const connection = await instance.connect();
    const probe = await instance.connect();
    try {
      const reader = `read_csv(${quoteString(csv)}, ignore_errors = true)`;
      if (name === 'baseline') {
        return await timed(name, probe, BASELINE_RUNS, async () => {
          const r = await connection.runAndReadAll(
            `SELECT count(*), sum(balance), sum(items), sum(age) FROM ${reader}`,
          );
          const [rows, balance] = r.getRowsJS()[0] ?? [];
          return {
            rows: Number(rows),
            details: [`${count(Number(rows))} rows, sum(balance) ${Number(balance).toFixed(0)}`],
          };
        });
      }
      const out = path.join(dir, 'duckdb.parquet');
      return await timed(name, probe, 1, async () => {
        const r = await connection.runAndReadAll(
          `COPY (SELECT * FROM ${reader}) TO ${quoteString(out)} (FORMAT parquet)`,
        );
        const described = await connection.runAndReadAll(
          `SELECT column_type, count(*) FROM (DESCRIBE SELECT * FROM read_parquet(${quoteString(out)})) GROUP BY ALL ORDER BY ALL`,
        );
        const types = described.getRowsJS().map(([t, n]) => `${Number(n)} ${String(t)}`);
        const rows = Number(r.getRowsJS()[0]?.[0]);
        return { rows, details: [`${count(rows)} rows; sniffed ${types.join(', ')}`] };
      });
    } finally {
      probe.closeSync();
      connection.closeSync();
      instance.closeSync();
    }
  }

  const spec = specOf();
  // The shared instance starts here, untimed, as the baseline's does.
  return withDuckDB(async (probe) => {
    if (name === 'read') {
      const events = spec.sources.find((s) => s.name === 'events');
      if (events === undefined) throw new Error('no events source in the spec');
      return timed(name, probe, 1, () =>
        withDuckDB(async (connection) => {
          const stageDir = mkdtempSync(path.join(dir, 'stage-'));
          try {
            const source = await openSource(connection, events, dir, { stageDir });
            const counted = await resultToTable(
              await connection.run(`SELECT count(*) FROM (${source.relation.sql})`),
            );
            const rows = Number(counted.columns[0]?.values[0]);
            const types = new Map<string, number>();
            for (const c of source.relation.schema) types.set(c.type, (types.get(c.type) ?? 0) + 1);
            return {
              rows,
              details: [
                `${count(rows)} rows, ${source.malformed.count} malformed lines; typed ${listed(types)}` +
                  ` (ts and amount declared string)`,
              ],
            };
          } finally {
            rmSync(stageDir, { recursive: true, force: true });
          }
        }),
      );
    }
    const validate = name === 'prep-validate';
    const offline = await openParquetOfflineStore({ path: path.join(dir, 'offline') });
    try {
      return await timed(name, probe, 1, async () => {
        const report = await runRecipe(spec, dir, validate ? 'bench_prep_validate' : 'bench_prep', {
          out: path.join(dir, 'out', `${name}.parquet`),
          quarantine: offline,
        });
        const removed = new Map<string, number>();
        const failures = new Map<string, number>();
        for (const stage of report.stages) {
          for (const [why, n] of Object.entries(stage.removed)) {
            removed.set(why, (removed.get(why) ?? 0) + (n ?? 0));
          }
          for (const [column, n] of Object.entries(stage.conversionFailures)) {
            failures.set(column, (failures.get(column) ?? 0) + n);
          }
        }
        const details = [
          `${count(report.output.rows)} rows out in ${report.output.files.length} files; ` +
            `rows removed: ${listed(removed)}; values not converted: ${listed(failures)}`,
          `seconds by stage: ${stageSummary(report)}`,
        ];
        const v = report.validation;
        if (v) {
          const failed = v.rules.filter((r) => r.status === 'fail');
          details.push(
            `validation ${v.outcome}: ${count(v.rows.quarantined)} rows quarantined; failing rules: ` +
              failed.map((r) => `${r.name} ${count(r.failing)}`).join(', '),
          );
        }
        return { rows: report.output.rows, details };
      });
    } finally {
      await offline.close();
    }
  });
}

/** `3 int, 2 string` from counts by name. */
function listed(counts: ReadonlyMap<string, number>): string {
  if (counts.size === 0) return 'none';
  return [...counts].map(([what, n]) => `${what} ${count(n)}`).join(', ');
}

// ---------------------------------------------------------------------------------------------
// The parent: generate, run each case in a child, report

function spawnCase(name: CaseName, dir: string): Promise<CaseResult> {
  const out = path.join(dir, `${name}.result.json`);
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', SELF, '--case', name, '--dir', dir, '--out', out],
      { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] },
    );
    const timer = setTimeout(() => child.kill('SIGKILL'), CASE_TIMEOUT_MS);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code !== 0) {
        reject(new Error(`case '${name}' exited with ${signal ?? `code ${code}`}`));
        return;
      }
      try {
        resolve(JSON.parse(readFileSync(out, 'utf8')) as CaseResult);
      } catch (error) {
        reject(new Error(`case '${name}' wrote no result`, { cause: error }));
      }
    });
  });
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)] as number;
}

/** A one-shot case as a table row: per-row µs, rows per second over the median run. */
function asLatency(result: CaseResult): LatencyResult {
  const perRowUs = (s: number): number => (s * 1e6) / ROWS;
  const mid = median(result.seconds);
  const mean = result.seconds.reduce((a, b) => a + b, 0) / result.seconds.length;
  return {
    name: TITLES[result.name],
    samples: result.seconds.length,
    opsPerCall: ROWS,
    concurrency: 1,
    p50Us: perRowUs(mid),
    p99Us: perRowUs(Math.max(...result.seconds)),
    meanUs: perRowUs(mean),
    opsPerSec: ROWS / mid,
  };
}

const mb = (bytes: number): string => `${Math.round(bytes / MB)} MB`;
/** A ratio with two significant digits at least, so that 0.013 does not print as 0.01. */
const share = (ratio: number): string => (ratio >= 0.1 ? ratio.toFixed(2) : ratio.toPrecision(2));

function describe(result: CaseResult, base: CaseResult): string[] {
  const seconds = median(result.seconds);
  const cpu = median(result.cpuSeconds);
  const hwm =
    result.hwmRss !== null && result.hwmRss > result.peakRss * 1.05
      ? ` (kernel high-water ${mb(result.hwmRss)})`
      : '';
  return [
    `${result.name}: ${count(Math.round(ROWS / seconds))} rows/s, ${seconds.toFixed(2)} s` +
      (result.seconds.length > 1 ? ` (median of ${result.seconds.length})` : '') +
      `, ${share(median(base.seconds) / seconds)}× the baseline's throughput; ` +
      `CPU ${cpu.toFixed(2)} s (${share(median(base.cpuSeconds) / cpu)}× the baseline's rows per CPU second); ` +
      `peak RSS ${mb(result.peakRss)}${hwm}, ${mb(result.peakRss - result.idleRss)} over idle; ` +
      `DuckDB peak ${mb(result.peakDuck)}`,
    ...result.details.map((d) => `  ${d}`),
  ];
}

async function parent(report: Reporter): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ferry-bench-prep-'));
  try {
    const started = performance.now();
    const { bytes } = await generate(dir);
    report.note(
      `events.csv: ${count(ROWS)} data lines × 20 columns, ${mb(bytes)} ` +
        `(generated in ${((performance.now() - started) / 1000).toFixed(1)} s, not timed); customers.csv: ${count(CUSTOMERS)} rows; ` +
        `${os.cpus().length} CPUs, DuckDB's default threads; load average ${os.loadavg()[0]?.toFixed(1)} at start`,
    );
    const results = new Map<CaseName, CaseResult>();
    // The baseline runs first and last, so that a machine busy with other work during the run
    // shows as a spread of its times rather than skewing every ratio one way.
    for (const name of [...CASES, 'baseline'] as const) {
      console.log(`  running ${name}...`);
      const result = await spawnCase(name, dir);
      const earlier = results.get(name);
      results.set(
        name,
        earlier === undefined
          ? result
          : {
              ...result,
              seconds: [...earlier.seconds, ...result.seconds],
              cpuSeconds: [...earlier.cpuSeconds, ...result.cpuSeconds],
              peakRss: Math.max(earlier.peakRss, result.peakRss),
              peakDuck: Math.max(earlier.peakDuck, result.peakDuck),
            },
      );
    }
    const get = (name: CaseName): CaseResult => results.get(name) as CaseResult;
    // The figures mean nothing if the cases read different data: check the row counts agree.
    const expected = ROWS - MALFORMED;
    for (const name of ['baseline', 'duckdb-parquet', 'read'] as const) {
      if (get(name).rows !== expected) {
        throw new Error(`${name} read ${get(name).rows} rows, expected ${expected}`);
      }
    }
    const base = get('baseline');
    report.baseline(asLatency(base));
    for (const name of CASES.slice(1)) report.add(asLatency(get(name)));
    for (const name of CASES) for (const line of describe(get(name), base)) report.note(line);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const caseAt = process.argv.indexOf('--case');
if (caseAt >= 0) {
  const arg = (flag: string): string => {
    const value = process.argv[process.argv.indexOf(flag) + 1];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    return value;
  };
  const name = arg('--case') as CaseName;
  if (!CASES.includes(name)) throw new Error(`unknown case '${name}'; cases: ${CASES.join(', ')}`);
  const result = await runCase(name, arg('--dir'));
  writeFileSync(arg('--out'), JSON.stringify(result));
} else {
  await runBench('prep', 'reading, preparing and validating a 1M-row, 20-column CSV', parent);
}
