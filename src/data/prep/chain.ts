/**
 * A recipe's steps as one SQL chain, with the report's figures gathered at few points.
 *
 * Steps are appended as SQL over the previous relation, nothing runs. A step's figures (rows
 * out, values not converted, unmatched rows, rows per part) come from the rows it produced, and
 * rows a later step removes would be missing from them, so the open steps are settled before a
 * step that removes rows, before fitting and at the end; a removing step's own count then comes
 * for free. Settling writes a checkpoint, a Parquet file in the stage folder, when the chain
 * since the last one holds a costly step (a window, a join, a conversion from text): the chain
 * runs once into the file, and the figures, the later steps' fit queries and the output read
 * the file instead of computing the chain again. A cheap chain is counted where it stands.
 *
 * Converting steps mark each value that did not convert in a hidden column of their output (see
 * `steps/cast.ts`), so their failures are counted from the checkpoint, not by converting again.
 */
import { rmSync } from 'node:fs';
import path from 'node:path';
import type { Table } from '../../core/table.js';
import { FerryError } from '../../errors/index.js';
import { quoteString } from '../duckdb.js';
import type { FittedStep } from './fitted.js';
import { col, ROW, SPLIT, type Relation } from './relation.js';
import { stageLine, type StageReport } from './report.js';
import type { StepKind, StepMeasures } from './step.js';
import { SPLIT_PARTS } from './steps/split.js';

/** A fitted step as the runner appends it. */
export interface ChainStep {
  readonly kind: StepKind<FittedStep['step']>;
  readonly fitted: FittedStep;
  /** 1-based position in the chain, to name helper columns uniquely. */
  readonly position: number;
  /** 1-based position in the recipe as written, for the report. */
  readonly index: number;
  /** Names the recipe and step in messages. */
  readonly where: string;
  readonly description: string;
  /** Whether the step can remove rows. */
  readonly removes: boolean;
  /** Whether computing the step again would cost enough to checkpoint its output instead. */
  readonly costly: boolean;
  /** Whether the step's SQL reads its whole input more than once: a costly input is written first. */
  readonly rereads: boolean;
  /** Seconds spent on the step so far (fitting). */
  readonly seconds: number;
}

export interface ChainOptions {
  /** Where checkpoints are written; the caller removes it. */
  readonly stageDir: string;
  readonly query: (sql: string) => Promise<Table>;
  /** The project's sources a merge may name, opened. */
  readonly sources: ReadonlyMap<string, Relation>;
  /** Receives each step's report, in step order, once it is settled. */
  readonly stages: StageReport[];
  readonly say: (message: string) => void;
}

interface OpenStep extends ChainStep {
  readonly input: Relation;
  spent: number;
}

export class Chain {
  #relation: Relation;
  /** Rows of the relation before the first open step. */
  #rows: number;
  /** Whether a costly step was appended since the last checkpoint. */
  #costly = false;
  /** Whether the rows carry a split's part column. */
  #split = false;
  #open: OpenStep[] = [];
  #checkpoints = 0;
  /** The checkpoint the relation reads, once there is one. */
  #file: string | null = null;
  readonly #options: ChainOptions;

  constructor(relation: Relation, rows: number, options: ChainOptions) {
    this.#relation = relation;
    this.#rows = rows;
    this.#options = options;
  }

  /** The chain's output so far. */
  get relation(): Relation {
    return this.#relation;
  }

  /** Whether the chain since the last checkpoint holds a costly step. */
  get costly(): boolean {
    return this.#costly;
  }

  /** Rows of the relation; settle first when a step that removes rows may be open. */
  get rows(): number {
    if (this.#open.some((o) => o.removes)) {
      throw new FerryError('FERRY_INTERNAL', 'the row count was read before the chain settled');
    }
    return this.#rows;
  }

  /** Rows of the relation matching a SQL condition. */
  async count(where = 'TRUE'): Promise<number> {
    const result = await this.#options.query(
      `SELECT count(*) FROM (${this.#relation.sql}) WHERE ${where}`,
    );
    return Number(result.columns[0]?.values[0] ?? 0);
  }

  /** Appends a step; its report is given when the chain next settles. */
  async add(step: ChainStep): Promise<void> {
    if (step.rereads && this.#costly) await this.checkpoint();
    else if (step.removes) await this.settle();
    const input = this.#relation;
    const ctx = { index: step.position, sources: this.#options.sources };
    this.#relation = {
      sql: step.kind.sql(step.fitted as never, input, ctx),
      schema: step.kind.schema(step.fitted as never, input.schema),
    };
    this.#costly ||= step.costly;
    if (step.fitted.step === 'split') this.#split = true;
    const waits =
      step.removes ||
      step.kind.measure !== undefined ||
      step.fitted.step === 'split' ||
      this.#open.length > 0;
    const open: OpenStep = { ...step, input, spent: step.seconds };
    if (waits) this.#open.push(open);
    else this.#report(open, this.#rows, this.#rows, {}, undefined);
  }

  /**
   * Gives every open step its figures: from a checkpoint when the chain since the last one is
   * costly, else from queries over the chain itself.
   */
  async settle(): Promise<void> {
    if (this.#open.length === 0) return;
    if (this.#costly) {
      await this.checkpoint();
      return;
    }
    await this.#settleFrom(this.#relation, null);
  }

  /** Writes the chain to a Parquet checkpoint and settles the open steps from it. */
  async checkpoint(): Promise<void> {
    const started = Date.now();
    const file = path.join(this.#options.stageDir, `checkpoint-${++this.#checkpoints}.parquet`);
    const written = await this.#options.query(
      `COPY (${this.#relation.sql}) TO ${quoteString(file)} (FORMAT parquet)`,
    );
    const rows = Number(written.columns[0]?.values[0] ?? 0);
    const schema = this.#relation.schema;
    const scan = `read_parquet(${quoteString(file)})`;
    // The figures read the markers the steps left; the chain goes on without them.
    const measured: Relation = { sql: `SELECT * FROM ${scan}`, schema };
    const kept = [ROW, ...(this.#split ? [SPLIT] : []), ...schema.map((c) => c.name)];
    this.#relation = { sql: `SELECT ${kept.map(col).join(', ')} FROM ${scan}`, schema };
    this.#costly = false;
    // The write's time goes to the costly steps it computed.
    const costly = this.#open.filter((o) => o.costly);
    const seconds = (Date.now() - started) / 1000;
    for (const o of costly) o.spent += seconds / costly.length;
    await this.#settleFrom(measured, rows);
    // Nothing reads the previous checkpoint any more: free its disk space now.
    if (this.#file !== null) rmSync(this.#file, { force: true });
    this.#file = file;
  }

  /** Reports the open steps, in order, with figures read from `measured`. */
  async #settleFrom(measured: Relation, total: number | null): Promise<void> {
    const open = this.#open;
    this.#open = [];
    let rows = this.#rows;
    for (const o of open) {
      const started = Date.now();
      const ctx = { index: o.position, sources: this.#options.sources, query: this.#options.query };
      // A step that removes rows is only ever the first open one: the rest keep its count.
      const rowsOut = o.removes ? (total ?? (await countOf(measured, ctx.query))) : rows;
      const measures = o.kind.measure
        ? await o.kind.measure(o.fitted as never, o.input, measured, ctx)
        : {};
      const splits = o.fitted.step === 'split' ? await splitCounts(measured, ctx.query) : undefined;
      o.spent += (Date.now() - started) / 1000;
      this.#report(o, rows, rowsOut, measures, splits);
      rows = rowsOut;
    }
    this.#rows = rows;
  }

  #report(
    o: OpenStep,
    rowsIn: number,
    rowsOut: number,
    measures: StepMeasures,
    splits: Record<string, number> | undefined,
  ): void {
    if (rowsOut > rowsIn) {
      throw new FerryError(
        'FERRY_INTERNAL',
        `${o.where} turned ${rowsIn} rows into ${rowsOut}; a step must never add rows`,
      );
    }
    const { kind } = o;
    const stage: StageReport = {
      stage: o.fitted.step,
      index: o.index,
      description: o.description,
      rowsIn,
      rowsOut,
      removed:
        rowsIn > rowsOut && kind.removes !== null ? { [kind.removes]: rowsIn - rowsOut } : {},
      conversionFailures: measures.conversionFailures ?? {},
      ...(splits ? { splits } : {}),
      requestTime: kind.batchOnly === null ? 'applied' : `skipped: ${kind.batchOnly}`,
      notes: [...(measures.notes ?? [])],
      seconds: o.spent,
    };
    this.#options.stages.push(stage);
    this.#options.say(stageLine(stage));
  }
}

async function countOf(
  relation: Relation,
  query: (sql: string) => Promise<Table>,
): Promise<number> {
  const result = await query(`SELECT count(*) FROM (${relation.sql})`);
  return Number(result.columns[0]?.values[0] ?? 0);
}

/** Rows per part of a split's output, every part named. */
async function splitCounts(
  relation: Relation,
  query: (sql: string) => Promise<Table>,
): Promise<Record<string, number>> {
  const parts = await query(
    `SELECT ${col(SPLIT)}, count(*) FROM (${relation.sql}) GROUP BY ${col(SPLIT)}`,
  );
  const counts: Record<string, number> = Object.fromEntries(SPLIT_PARTS.map((part) => [part, 0]));
  for (let i = 0; i < parts.rowCount; i++) {
    counts[String(parts.columns[0]?.values[i])] = Number(parts.columns[1]?.values[i] ?? 0);
  }
  return counts;
}
