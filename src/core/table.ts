/**
 * The in-memory table every module passes around: named, typed columns of equal length.
 * Columnar because training, profiling and inference all work column by column.
 * Timestamps are UTC milliseconds since the epoch (numbers); a missing value is `null`.
 */

export type ColumnType = 'float' | 'int' | 'bool' | 'string' | 'timestamp';
export type Scalar = number | string | boolean | null;

export interface ColumnSchema {
  readonly name: string;
  readonly type: ColumnType;
}

export interface Column {
  readonly name: string;
  readonly type: ColumnType;
  /** One value per row; `null` is missing. Numbers for float/int/timestamp, booleans for bool. */
  readonly values: Scalar[];
}

export interface Table {
  readonly columns: readonly Column[];
  readonly rowCount: number;
}

/** A row as an object keyed by column name. */
export type Row = Record<string, Scalar>;

export function isNumericType(type: ColumnType): boolean {
  return type === 'float' || type === 'int' || type === 'timestamp' || type === 'bool';
}

export function schemaOf(table: Table): ColumnSchema[] {
  return table.columns.map((c) => ({ name: c.name, type: c.type }));
}

export function getColumn(table: Table, name: string): Column | undefined {
  return table.columns.find((c) => c.name === name);
}

/**
 * Builds a table from row objects with the given schema; absent keys become null.
 * @example tableFromRows([{ name: 'a', type: 'int' }], [{ a: 1 }, { a: 2 }])
 */
export function tableFromRows(schema: readonly ColumnSchema[], rows: readonly Row[]): Table {
  const columns = schema.map((s) => ({
    name: s.name,
    type: s.type,
    values: rows.map((r) => r[s.name] ?? null),
  }));
  return { columns, rowCount: rows.length };
}

/** Rows as objects; fine for small tables (requests, samples), not for training data. */
export function tableToRows(table: Table): Row[] {
  const rows: Row[] = new Array<Row>(table.rowCount);
  for (let i = 0; i < table.rowCount; i++) {
    const row: Row = {};
    for (const c of table.columns) row[c.name] = c.values[i] ?? null;
    rows[i] = row;
  }
  return rows;
}

/** The rows at the given indices, in that order. */
export function takeRows(table: Table, indices: ArrayLike<number>): Table {
  const columns = table.columns.map((c) => {
    const values: Scalar[] = new Array<Scalar>(indices.length);
    for (let i = 0; i < indices.length; i++) values[i] = c.values[indices[i] as number] ?? null;
    return { name: c.name, type: c.type, values };
  });
  return { columns, rowCount: indices.length };
}

/** Infers a column type from JavaScript values (used for JSON input). */
export function inferType(values: readonly Scalar[]): ColumnType {
  let sawNumber = false;
  let allInt = true;
  let sawBool = false;
  for (const v of values) {
    if (v === null) continue;
    if (typeof v === 'string') return 'string';
    if (typeof v === 'boolean') sawBool = true;
    else {
      sawNumber = true;
      if (!Number.isInteger(v)) allInt = false;
    }
  }
  if (sawNumber) return allInt ? 'int' : 'float';
  if (sawBool) return 'bool';
  return 'float';
}
