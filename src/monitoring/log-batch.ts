/**
 * The rows the inference log holds between flushes, kept as growing columns per log table.
 *
 * Why columns: a server answering thousands of requests a second holds every request's entry for
 * up to a flush interval. Kept as they come (an entry, its feature table, a column object and a
 * values array per feature), they are dozens of small objects per request that all outlive the
 * young generation, so the garbage collector copies and promotes them all: on a 30-feature model
 * that cost more CPU than answering the request. Here an entry's values are copied at once into
 * typed arrays (numbers and booleans are not objects the collector traces) and the request's own
 * objects die young; `tables()` turns the columns into a Table once per flush.
 */
import type { Label } from '../core/model.js';
import type { Column, ColumnType, Scalar, Table } from '../core/table.js';
import type { InferenceRecord } from './inference-log.js';

/** One table's rows, as the offline store takes them and a spill file line carries them. */
export interface LogTable {
  readonly table: string;
  readonly data: Table;
}

/** Log columns named like these; a feature of such a name is stored as `_feature_<name>`. */
export const RESERVED_COLUMNS: ReadonlySet<string> = new Set([
  '_ts',
  '_request_id',
  '_served',
  '_model_version',
  '_latency_ms',
  '_prediction',
  '_score',
]);

/**
 * The offline store table of a model's inference log.
 * @example inferenceLogTable('Fraud-Model.v2') // 'inference_log/fraud_model_v2'
 */
export function inferenceLogTable(model: string): string {
  const name = model.toLowerCase().replace(/[^a-z0-9_]/g, '_');
  return INFERENCE_LOG_PREFIX + (name === '' ? '_' : name);
}

export const INFERENCE_LOG_PREFIX = 'inference_log/';

const isNumeric = (t: ColumnType): boolean => t === 'int' || t === 'float' || t === 'timestamp';

/** The type two columns of one name stack as: numbers widen to float, anything else to string. */
export function unifyTypes(a: ColumnType, b: ColumnType): ColumnType {
  if (a === b) return a;
  return isNumeric(a) && isNumeric(b) ? 'float' : 'string';
}

/** A column that grows: numbers and booleans in typed arrays, strings in an array. */
class ColumnBuilder {
  length = 0;
  private numbers: Float64Array | undefined;
  /** 1 where a number (or boolean) is missing. */
  private missing: Uint8Array | undefined;
  private texts: (string | null)[] | undefined;

  constructor(
    public type: ColumnType,
    capacity: number,
  ) {
    if (type === 'string') this.texts = [];
    else {
      this.numbers = new Float64Array(Math.max(16, capacity));
      this.missing = new Uint8Array(this.numbers.length);
    }
  }

  push(value: Scalar): void {
    if (this.texts) {
      this.texts.push(value === null ? null : String(value));
      this.length++;
      return;
    }
    this.reserve(1);
    const i = this.length++;
    const numbers = this.numbers as Float64Array;
    const missing = this.missing as Uint8Array;
    if (typeof value === 'number') {
      numbers[i] = value;
      missing[i] = 0;
    } else if (typeof value === 'boolean') {
      numbers[i] = value ? 1 : 0;
      missing[i] = 0;
    } else {
      missing[i] = 1;
    }
  }

  pushRepeated(value: Scalar, n: number): void {
    for (let i = 0; i < n; i++) this.push(value);
  }

  /** Changes the column's type to `type` (a widening by {@link unifyTypes}), converting what it holds. */
  widen(type: ColumnType): void {
    if (type === this.type) return;
    if (type === 'string') {
      const values = this.values();
      this.texts = values.map((v) => (v === null ? null : String(v)));
      this.numbers = undefined;
      this.missing = undefined;
    }
    this.type = type;
  }

  values(): Scalar[] {
    const out = new Array<Scalar>(this.length);
    if (this.texts) {
      for (let i = 0; i < this.length; i++) out[i] = this.texts[i] ?? null;
      return out;
    }
    const numbers = this.numbers as Float64Array;
    const missing = this.missing as Uint8Array;
    const bool = this.type === 'bool';
    for (let i = 0; i < this.length; i++) {
      if (missing[i] === 1) out[i] = null;
      else out[i] = bool ? numbers[i] === 1 : (numbers[i] as number);
    }
    return out;
  }

  private reserve(more: number): void {
    const numbers = this.numbers as Float64Array;
    if (this.length + more <= numbers.length) return;
    const size = Math.max(numbers.length * 2, this.length + more);
    const grown = new Float64Array(size);
    grown.set(numbers);
    const missing = new Uint8Array(size);
    missing.set(this.missing as Uint8Array);
    this.numbers = grown;
    this.missing = missing;
  }
}

/** The growing rows of one log table; columns appear as entries bring them (null before). */
class TableBuilder {
  rowCount = 0;
  private readonly columns = new Map<string, ColumnBuilder>();

  column(name: string, type: ColumnType): ColumnBuilder {
    let column = this.columns.get(name);
    if (!column) {
      column = new ColumnBuilder(type, this.rowCount);
      column.pushRepeated(null, this.rowCount);
      this.columns.set(name, column);
    } else if (column.type !== type) {
      column.widen(unifyTypes(column.type, type));
    }
    return column;
  }

  /** Gives every column the table's row count (null where a batch of rows lacked it). */
  pad(): void {
    for (const column of this.columns.values()) {
      if (column.length < this.rowCount) column.pushRepeated(null, this.rowCount - column.length);
    }
  }

  build(): Table {
    const columns: Column[] = [];
    for (const [name, c] of this.columns) columns.push({ name, type: c.type, values: c.values() });
    return { columns, rowCount: this.rowCount };
  }
}

/** The log rows of many entries, by log table. */
export class LogBatch {
  /** Rows held. */
  rows = 0;
  private readonly tables = new Map<string, TableBuilder>();

  /**
   * Adds an entry's rows. A malformed entry (columns shorter than its row count, fewer
   * predictions than rows) throws and adds nothing.
   */
  add(entry: InferenceRecord): void {
    const n = entry.features.rowCount;
    for (const c of entry.features.columns) {
      if (c.values.length < n) {
        throw new Error(`feature '${c.name}' has ${c.values.length} values for ${n} rows`);
      }
    }
    const { predict, proba } = entry.prediction;
    if (predict.length < n) throw new Error(`${predict.length} predictions for ${n} rows`);
    const name = inferenceLogTable(entry.model);
    let table = this.tables.get(name);
    if (!table) {
      table = new TableBuilder();
      this.tables.set(name, table);
    }
    table.column('_ts', 'timestamp').pushRepeated(entry.ts, n);
    table.column('_request_id', 'string').pushRepeated(entry.requestId, n);
    table.column('_served', 'string').pushRepeated(entry.served, n);
    table.column('_model_version', 'string').pushRepeated(entry.version, n);
    table.column('_latency_ms', 'float').pushRepeated(entry.latencyMs, n);
    for (const c of entry.features.columns) {
      const column = table.column(
        RESERVED_COLUMNS.has(c.name) ? `_feature_${c.name}` : c.name,
        c.type,
      );
      for (let i = 0; i < n; i++) column.push(c.values[i] ?? null);
    }
    const classifier =
      entry.classes !== undefined ||
      proba !== undefined ||
      predict.some((p) => typeof p !== 'number');
    if (!classifier) {
      const column = table.column('_prediction', 'float');
      for (let i = 0; i < n; i++) column.push(predict[i] ?? null);
    } else {
      const labels = table.column('_prediction', 'string');
      for (let i = 0; i < n; i++) {
        const p = predict[i];
        labels.push(p === undefined || p === null ? null : String(p));
      }
      const scores = table.column('_score', 'float');
      for (const s of scoresOf(entry, n)) scores.push(s);
    }
    table.rowCount += n;
    table.pad();
    this.rows += n;
  }

  /** Adds the rows of tables (another batch's, read back from a spill file). */
  addTables(tables: readonly LogTable[]): void {
    for (const { table: name, data } of tables) {
      let table = this.tables.get(name);
      if (!table) {
        table = new TableBuilder();
        this.tables.set(name, table);
      }
      for (const c of data.columns) {
        const column = table.column(c.name, c.type);
        for (let i = 0; i < data.rowCount; i++) column.push(c.values[i] ?? null);
      }
      table.rowCount += data.rowCount;
      table.pad();
      this.rows += data.rowCount;
    }
  }

  /** The rows held, one table per log table. */
  build(): LogTable[] {
    return [...this.tables].map(([table, builder]) => ({ table, data: builder.build() }));
  }
}

/** Probability of the predicted class per row (the row's highest when classes are unknown). */
function scoresOf(entry: InferenceRecord, n: number): Scalar[] {
  const out: Scalar[] = new Array<Scalar>(n).fill(null);
  const proba = entry.prediction.proba;
  if (!proba || n === 0) return out;
  const k = proba.length / n;
  if (!Number.isInteger(k) || k < 1) return out;
  const index = entry.classes
    ? new Map<Label, number>(entry.classes.map((c, i) => [c, i]))
    : undefined;
  for (let r = 0; r < n; r++) {
    const label = entry.prediction.predict[r];
    const j = index && label !== undefined ? index.get(label) : undefined;
    if (j !== undefined) {
      out[r] = proba[r * k + j] as number;
    } else {
      let best = -Infinity;
      for (let c = 0; c < k; c++) best = Math.max(best, proba[r * k + c] as number);
      out[r] = best;
    }
  }
  return out;
}
