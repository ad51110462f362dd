/**
 * The inference log: every prediction served, with the features the model saw, written to the
 * offline store table `inference_log/<model>` for monitoring (drift, quality, live accuracy).
 *
 * `record()` only queues the entry, so logging never sits on a request's critical path. A timer
 * flushes the queue every `flushIntervalMs`. Nothing is dropped silently:
 * - when the offline store's append fails, or more than `maxBufferedRows` rows wait in memory,
 *   rows go to JSON-lines spill files under `<stateDir>/spill/` (written to a temporary name,
 *   fsync'd, then renamed, so a spill file is either whole or absent);
 * - `flush()` (and `recoverSpill()` at start) replays spill files into the store once it answers;
 * - only if a spill file cannot be written either are rows counted as dropped, with a warning.
 *
 * Memory: at most `maxBufferedRows` rows wait for the next flush, plus at most as many waiting to
 * be spilled (beyond that, the spill is written synchronously: back-pressure rather than loss),
 * plus the batch a running flush holds.
 *
 * Replays are at-least-once: a crash between a store append and the deletion of the spill file
 * it came from can log those rows twice; `_request_id` tells them apart. Several processes may
 * share a state dir: each claims a spill file by renaming it before replaying it.
 *
 * Table layout (one table per monitored model, name lower-cased and reduced to [a-z0-9_]):
 * | column | type | what |
 * | --- | --- | --- |
 * | `_ts` | timestamp | when the request was answered (UTC ms) |
 * | `_request_id` | string | the request id (x-request-id) |
 * | `_served` | string | the model or endpoint name the request addressed |
 * | `_model_version` | string | the model version that answered |
 * | `_latency_ms` | float | server-side latency of the request |
 * | each feature | its own | the values the model saw (a feature named like a column above is stored as `_feature_<name>`) |
 * | `_prediction` | string or float | the class label as a string (classifiers), the value (regression) |
 * | `_score` | float | classifiers only: probability of the predicted class |
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Label, Prediction } from '../core/model.js';
import type { Column, ColumnType, Scalar, Table } from '../core/table.js';
import { silentLogger, type Logger } from '../core/logger.js';
import type { OfflineStore } from '../feature-store/offline/offline-store.js';
import { LogBatch, unifyTypes, type LogTable } from './log-batch.js';

export { INFERENCE_LOG_PREFIX, inferenceLogTable } from './log-batch.js';

export interface InferenceLogOptions {
  readonly offline: OfflineStore;
  /** Spill files go to `<stateDir>/spill/`. */
  readonly stateDir: string;
  readonly flushIntervalMs?: number;
  readonly maxBufferedRows?: number;
  readonly logger?: Logger;
}

export interface InferenceRecord {
  /** The registered model monitoring compares against (names the table). */
  readonly model: string;
  /** The model or endpoint name the request addressed. */
  readonly served: string;
  readonly version: string;
  readonly requestId: string;
  /** UTC milliseconds. */
  readonly ts: number;
  readonly latencyMs: number;
  readonly features: Table;
  readonly prediction: Prediction;
  /** The classifier's classes, in the order of `prediction.proba`'s columns. */
  readonly classes?: readonly Label[];
}

/** Row totals since the log was created. */
export interface InferenceLogStats {
  /** Rows given to `record()`. */
  readonly recordedRows: number;
  /** Rows appended to the offline store straight from memory. */
  readonly writtenRows: number;
  /** Rows written to spill files. */
  readonly spilledRows: number;
  /** Rows moved from spill files into the offline store. */
  readonly replayedRows: number;
  /** Rows lost because even the spill failed (or recorded after `close()`). */
  readonly droppedRows: number;
  /** Rows in memory now, waiting to be flushed or spilled. */
  readonly bufferedRows: number;
}

/** A claimed or half-written spill file older than this belongs to a process that died. */
const STALE_MS = 10 * 60_000;
const WARN_EVERY_MS = 10_000;

/** One table's rows as a spill file line carries them. */
type SpilledTable = LogTable;

export class InferenceLog {
  private readonly offline: OfflineStore;
  private readonly spillDir: string;
  private readonly maxBufferedRows: number;
  private readonly replayBatchRows: number;
  private readonly logger: Logger;
  private readonly timer: NodeJS.Timeout;

  // Rows waiting for the next flush, and rows beyond maxBufferedRows waiting to be spilled.
  private buffer = new LogBatch();
  private overflow = new LogBatch();
  private overflowScheduled = false;
  private spillWrites: Promise<void> = Promise.resolve();
  private flushChain: Promise<void> = Promise.resolve();
  private flushRunning = false;
  private flushQueued = false;
  private closed = false;
  private spillSeq = 0;
  private lastWarn = 0;

  private recordedRows = 0;
  private writtenRows = 0;
  private spilledRows = 0;
  private replayedRows = 0;
  private droppedRows = 0;

  /**
   * Starts the flush timer. Call `recoverSpill()` once at start to replay what an earlier run left.
   * @example
   * const log = new InferenceLog({ offline, stateDir: '.ferry', flushIntervalMs: 1000, maxBufferedRows: 100_000, logger });
   * await log.recoverSpill();
   * log.record({ model: 'fraud', served: 'fraud', version: '3', requestId, ts: Date.now(), latencyMs: 2.1, features, prediction });
   * await log.close();
   */
  constructor(options: InferenceLogOptions) {
    this.offline = options.offline;
    this.spillDir = path.join(options.stateDir, 'spill');
    this.maxBufferedRows = Math.max(1, options.maxBufferedRows ?? 100_000);
    // Replays read spill files back into memory; batches keep appends few and large without
    // holding a whole backlog at once.
    this.replayBatchRows = Math.max(this.maxBufferedRows, 50_000);
    this.logger = options.logger ?? silentLogger();
    this.timer = setInterval(() => this.kick(), Math.max(10, options.flushIntervalMs ?? 1000));
    this.timer.unref();
  }

  /** Queues an entry's rows and returns at once; never throws. */
  record(entry: InferenceRecord): void {
    const rows = entry.features.rowCount;
    this.recordedRows += rows;
    if (this.closed) {
      this.drop(rows, 'the inference log is closed');
      return;
    }
    const fits = this.buffer.rows + rows <= this.maxBufferedRows;
    try {
      (fits ? this.buffer : this.overflow).add(entry);
    } catch (err) {
      this.drop(rows, `an entry of model '${entry.model}' is malformed`, err);
      return;
    }
    if (fits) {
      if (this.buffer.rows === this.maxBufferedRows) this.kick();
      return;
    }
    this.kick();
    if (this.overflow.rows >= this.maxBufferedRows) {
      this.spillOverflowNow();
    } else if (!this.overflowScheduled) {
      this.overflowScheduled = true;
      setImmediate(() => {
        this.overflowScheduled = false;
        const overflow = this.takeOverflow();
        if (overflow.rows > 0) this.spillLater(overflow.build());
      });
    }
  }

  stats(): InferenceLogStats {
    return {
      recordedRows: this.recordedRows,
      writtenRows: this.writtenRows,
      spilledRows: this.spilledRows,
      replayedRows: this.replayedRows,
      droppedRows: this.droppedRows,
      bufferedRows: this.buffer.rows + this.overflow.rows,
    };
  }

  /**
   * Writes everything recorded so far to the store (or to spill files if the store fails), then
   * replays spill files if the store took the writes.
   */
  flush(): Promise<void> {
    const run = this.flushChain.then(() => this.flushOnce());
    this.flushChain = run.catch((err: unknown) => {
      this.logger.error({ err }, 'inference log flush failed');
    });
    return run;
  }

  /** Starts a flush unless one is queued or running (timer ticks, full buffer). */
  private kick(): void {
    if (this.flushQueued || this.flushRunning) return;
    this.flushQueued = true;
    this.flush().catch(() => undefined); // logged by flush()
  }

  /** Stops the timer and flushes everything; later `record()` calls count as dropped. */
  async close(): Promise<void> {
    if (this.closed) return this.flushChain;
    this.closed = true;
    clearInterval(this.timer);
    await this.flush();
  }

  /**
   * Replays every spill file (including those a crashed process left) into the store; returns
   * the rows replayed. Leaves files in place when the store fails, to try again later.
   */
  async recoverSpill(): Promise<number> {
    const before = this.replayedRows;
    await this.replay(true);
    return this.replayedRows - before;
  }

  private async flushOnce(): Promise<void> {
    this.flushRunning = true;
    this.flushQueued = false;
    try {
      const batch = this.buffer;
      this.buffer = new LogBatch();
      // Rows waiting to be spilled can go straight to the store instead.
      const overflow = this.takeOverflow();
      if (overflow.rows > 0) batch.addTables(overflow.build());
      let storeOk = true;
      const failed: SpilledTable[] = [];
      for (const item of batch.build()) {
        try {
          await this.offline.append(item.table, item.data, { timeColumn: '_ts' });
          this.writtenRows += item.data.rowCount;
        } catch (err) {
          storeOk = false;
          this.warn(`offline store append to ${item.table} failed; spilling rows to disk`, err);
          failed.push(item);
        }
      }
      if (failed.length > 0) this.spillLater(failed);
      await this.spillWrites;
      if (storeOk) await this.replay(false);
    } finally {
      this.flushRunning = false;
    }
  }

  private takeOverflow(): LogBatch {
    const overflow = this.overflow;
    this.overflow = new LogBatch();
    return overflow;
  }

  private spillOverflowNow(): void {
    const tables = this.takeOverflow().build();
    const rows = countRows(tables);
    try {
      fs.mkdirSync(this.spillDir, { recursive: true });
      const { tmp, final } = this.spillNames();
      const fd = fs.openSync(tmp, 'w');
      try {
        fs.writeSync(fd, spillText(tables));
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      fs.renameSync(tmp, final);
      this.spilledRows += rows;
    } catch (err) {
      this.drop(rows, 'writing a spill file failed', err);
    }
  }

  private spillLater(tables: SpilledTable[]): void {
    this.spillWrites = this.spillWrites.then(() => this.writeSpill(tables));
  }

  private async writeSpill(tables: readonly SpilledTable[]): Promise<void> {
    const rows = countRows(tables);
    if (rows === 0) return;
    try {
      await this.writeSpillFile(tables);
      this.spilledRows += rows;
    } catch (err) {
      this.drop(rows, 'writing a spill file failed', err);
    }
  }

  private async writeSpillFile(tables: readonly SpilledTable[]): Promise<void> {
    await fsp.mkdir(this.spillDir, { recursive: true });
    const { tmp, final } = this.spillNames();
    const handle = await fsp.open(tmp, 'w');
    try {
      await handle.writeFile(spillText(tables));
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fsp.rename(tmp, final);
  }

  private spillNames(): { tmp: string; final: string } {
    const base = `spill-${Date.now()}-${process.pid}-${++this.spillSeq}-${randomUUID().slice(0, 8)}`;
    return {
      tmp: path.join(this.spillDir, `${base}.tmp`),
      final: path.join(this.spillDir, `${base}.jsonl`),
    };
  }

  /** Claims spill files, appends their rows in batches, and deletes each batch once stored. */
  private async replay(recovering: boolean): Promise<void> {
    let names: string[];
    try {
      names = (await fsp.readdir(this.spillDir)).sort();
    } catch {
      return; // no spill directory: nothing was ever spilled
    }
    if (recovering) await this.adoptOrphans(names);
    if (recovering) names = (await fsp.readdir(this.spillDir)).sort();
    const claimed: string[] = [];
    let parts: SpilledTable[] = [];
    let rows = 0;
    for (const name of names) {
      if (!name.endsWith('.jsonl')) continue;
      const file = path.join(this.spillDir, name);
      const claim = `${file}.claimed-${Date.now()}-${process.pid}`;
      try {
        await fsp.rename(file, claim);
      } catch {
        continue; // another process took it
      }
      claimed.push(claim);
      const read = await this.readSpill(claim);
      parts = parts.concat(read);
      rows += countRows(read);
      if (rows >= this.replayBatchRows) {
        if (!(await this.replayBatch(claimed.splice(0), parts))) return;
        parts = [];
        rows = 0;
      }
    }
    if (claimed.length > 0) await this.replayBatch(claimed, parts);
  }

  /**
   * Puts back what a dead process claimed or half wrote, so that this replay takes it. A claim is
   * dead when it is stale or when its process is gone from this host (a serve worker that was
   * killed: its replacement takes the claim at start instead of ten minutes later).
   */
  private async adoptOrphans(names: readonly string[]): Promise<void> {
    const now = Date.now();
    for (const name of names) {
      const file = path.join(this.spillDir, name);
      const claim = /^(.*\.jsonl)\.claimed-(\d+)-(\d+)$/.exec(name);
      try {
        if (claim && (now - Number(claim[2]) > STALE_MS || !processAlive(Number(claim[3])))) {
          await fsp.rename(file, path.join(this.spillDir, claim[1] as string));
        } else if (name.endsWith('.tmp') && now - (await fsp.stat(file)).mtimeMs > STALE_MS) {
          // Lines are whole JSON documents; a torn last line is skipped when read.
          await fsp.rename(file, file.replace(/\.tmp$/, '.jsonl'));
        }
      } catch {
        // Gone or taken by another process meanwhile.
      }
    }
  }

  /** Returns false (leaving the rows spilled) when the store fails. */
  private async replayBatch(
    claimed: readonly string[],
    parts: readonly SpilledTable[],
  ): Promise<boolean> {
    const byTable = new Map<string, Table[]>();
    for (const part of parts) {
      const list = byTable.get(part.table);
      if (list) list.push(part.data);
      else byTable.set(part.table, [part.data]);
    }
    const left: SpilledTable[] = [];
    let replayed = 0;
    for (const [table, tables] of byTable) {
      const data = mergeTables(tables);
      if (left.length === 0) {
        try {
          await this.offline.append(table, data, { timeColumn: '_ts' });
          replayed += data.rowCount;
          continue;
        } catch (err) {
          this.warn(`replaying spilled rows into ${table} failed; they stay on disk`, err);
        }
      }
      left.push({ table, data });
    }
    const unclaim = (): Promise<unknown> =>
      Promise.all(
        claimed.map((c) =>
          fsp.rename(c, c.replace(/\.claimed-\d+-\d+$/, '')).catch(() => undefined),
        ),
      );
    if (left.length > 0 && replayed === 0) {
      await unclaim(); // nothing went in: hand the files back untouched
      return false;
    }
    if (left.length > 0) {
      // Some tables went in: keep only the rest, so none is appended twice.
      try {
        await this.writeSpillFile(left);
      } catch (err) {
        // Better twice than never: the whole files stay, including what was just appended.
        this.warn(
          'could not rewrite a partly replayed spill file; some rows may be logged twice',
          err,
          true,
        );
        this.replayedRows += replayed;
        await unclaim();
        return false;
      }
    }
    this.replayedRows += replayed;
    await Promise.all(claimed.map((c) => fsp.unlink(c).catch(() => undefined)));
    return left.length === 0;
  }

  private async readSpill(file: string): Promise<SpilledTable[]> {
    const text = await fsp.readFile(file, 'utf8');
    const out: SpilledTable[] = [];
    for (const line of text.split('\n')) {
      if (line === '') continue;
      try {
        const parsed = JSON.parse(line) as SpilledTable;
        if (typeof parsed.table === 'string' && Array.isArray(parsed.data?.columns))
          out.push(parsed);
      } catch (err) {
        this.warn(`skipping a torn line in spill file ${file}`, err);
      }
    }
    return out;
  }

  private drop(rows: number, reason: string, err?: unknown): void {
    this.droppedRows += rows;
    this.warn(
      `inference log dropped ${rows} rows: ${reason} (${this.droppedRows} dropped so far)`,
      err,
      true,
    );
  }

  /** Logs at most one warning per interval, so an outage does not flood the log. */
  private warn(message: string, err?: unknown, always = false): void {
    const now = Date.now();
    if (!always && now - this.lastWarn < WARN_EVERY_MS) return;
    this.lastWarn = now;
    this.logger.warn({ err }, message);
  }
}

/**
 * Whether a process of this pid runs on this host. A reused pid reads as alive (the claim then
 * waits to go stale); a state dir shared by several hosts would see another host's live claim as
 * dead, which costs at most rows logged twice (replays are at-least-once).
 */
function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function countRows(tables: readonly SpilledTable[]): number {
  let n = 0;
  for (const t of tables) n += t.data.rowCount;
  return n;
}

function spillText(tables: readonly SpilledTable[]): string {
  let text = '';
  for (const t of tables) text += JSON.stringify(t) + '\n';
  return text;
}

/**
 * Stacks tables that may differ in columns (model versions with other features): the union of
 * columns in first-seen order, null where a table lacks one; mismatched types widen to float
 * (numbers) or string.
 */
export function mergeTables(tables: readonly Table[]): Table {
  const only = tables[0];
  if (tables.length === 1 && only) return only;
  const types = new Map<string, ColumnType>();
  let rowCount = 0;
  for (const t of tables) {
    rowCount += t.rowCount;
    for (const c of t.columns) {
      const seen = types.get(c.name);
      types.set(c.name, seen === undefined ? c.type : unifyTypes(seen, c.type));
    }
  }
  const columns: Column[] = [];
  for (const [name, type] of types) {
    const values: Scalar[] = new Array<Scalar>(rowCount);
    let k = 0;
    for (const t of tables) {
      const c = t.columns.find((col) => col.name === name);
      if (!c) {
        for (let i = 0; i < t.rowCount; i++) values[k++] = null;
        continue;
      }
      const asString = type === 'string' && c.type !== 'string';
      for (let i = 0; i < t.rowCount; i++) {
        const v = c.values[i] ?? null;
        values[k++] = asString && v !== null ? String(v) : v;
      }
    }
    columns.push({ name, type, values });
  }
  return { columns, rowCount };
}
