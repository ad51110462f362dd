/**
 * The OfflineStore contract as Vitest cases, run against every backend (local Parquet now, Parquet
 * on shared storage later) so that they all behave the same. See
 * `src/feature-store/offline/offline-store.ts`.
 *
 * The suite may share one store between its cases and with earlier runs: each case works on
 * tables of its own (random suffixes), so a backend needs no reset between cases.
 */
import { describe, expect, it } from 'vitest';
import {
  tableFromRows,
  tableToRows,
  type ColumnSchema,
  type Row,
  type Table,
} from '../core/table.js';
import type { OfflineStore } from '../feature-store/offline/offline-store.js';
import { expectCode, trackOpened, uniqueName } from './harness.js';

const DAY = 86_400_000;
/** 2024-03-10T00:00:00Z: a UTC midnight, to put rows on both sides of a date boundary. */
const MIDNIGHT = Date.UTC(2024, 2, 10);

/**
 * Declares the conformance cases for one backend.
 *
 * @param open opens the store; every call must reach the same data, so that a case can close the
 *   store and open it again to check what was kept. Cases close what they open.
 * @param cleanup runs once after all cases (delete the temporary folder).
 * @example
 * describeOfflineStoreConformance('parquet', () => openParquetOfflineStore({ path: dir }));
 */
export function describeOfflineStoreConformance(
  name: string,
  open: () => Promise<OfflineStore>,
  cleanup?: () => Promise<void>,
): void {
  describe(`OfflineStore conformance: ${name}`, () => {
    const connect = trackOpened(open, cleanup);

    describe('append and read', () => {
      it('round-trips every column type, nulls and extremes included', async () => {
        const store = await connect();
        const table = uniqueName('t');
        const schema: ColumnSchema[] = [
          { name: 'id', type: 'int' },
          { name: 'count', type: 'int' },
          { name: 'amount', type: 'float' },
          { name: 'flag', type: 'bool' },
          { name: 'label', type: 'string' },
          { name: 'ts', type: 'timestamp' },
        ];
        const rows: Row[] = [
          {
            id: 1,
            count: Number.MAX_SAFE_INTEGER,
            amount: 0.1 + 0.2,
            flag: true,
            label: 'naïve 日本語 🚀',
            ts: 1_700_000_000_123,
          },
          {
            id: 2,
            count: -Number.MAX_SAFE_INTEGER,
            amount: -1e-300,
            flag: false,
            label: '',
            ts: -1,
          },
          {
            id: 3,
            count: 0,
            amount: 1.7976931348623157e308,
            flag: null,
            label: `it's "quoted"\n\\`,
            ts: 0,
          },
          { id: 4, count: null, amount: null, flag: true, label: null, ts: null },
          {
            id: 5,
            count: -7,
            amount: -0.5,
            flag: false,
            label: 'Z',
            ts: Date.UTC(2099, 11, 31, 23, 59, 59, 999),
          },
        ];
        await store.append(table, tableFromRows(schema, rows));
        const read = await store.read(table);
        expect(read.columns.map((c) => ({ name: c.name, type: c.type }))).toEqual(schema);
        expect(read.rowCount).toBe(rows.length);
        expect(sortedRows(read, 'id')).toEqual(rows);
      });

      it('creates a table on its first append and lists it, nested names included', async () => {
        const store = await connect();
        const parent = uniqueName('t');
        const child = `${parent}/fraud_v2`;
        expect(await store.hasTable(parent)).toBe(false);
        await store.append(child, ids([1, 2, 3]));
        expect(await store.hasTable(child)).toBe(true);
        expect(await store.hasTable(parent)).toBe(false);
        await store.append(parent, ids([9]));
        const tables = await store.listTables();
        expect(tables).toContain(parent);
        expect(tables).toContain(child);
        expect(await store.count(child)).toBe(3);
        expect(await store.count(parent)).toBe(1);
        expect(sortedRows(await store.read(parent), 'id')).toEqual([{ id: 9 }]);
      });

      it('adds the rows of every append', async () => {
        const store = await connect();
        const table = uniqueName('t');
        await store.append(table, ids([1, 2]));
        await store.append(table, ids([3]));
        await store.append(table, ids([4, 5, 6]));
        expect(await store.count(table)).toBe(6);
        expect(sortedRows(await store.read(table), 'id').map((r) => r.id)).toEqual([
          1, 2, 3, 4, 5, 6,
        ]);
      });

      it('round-trips tables larger than one internal batch', async () => {
        const store = await connect();
        const table = uniqueName('t');
        const n = 5003;
        const data: Table = {
          rowCount: n,
          columns: [
            { name: 'id', type: 'int', values: Array.from({ length: n }, (_, i) => i) },
            {
              name: 'x',
              type: 'float',
              values: Array.from({ length: n }, (_, i) => (i % 7 === 0 ? null : i / 3)),
            },
            { name: 's', type: 'string', values: Array.from({ length: n }, (_, i) => `row-${i}`) },
          ],
        };
        await store.append(table, data);
        const read = await store.read(table);
        expect(sortedRows(read, 'id')).toEqual(tableToRows(data));
      });

      it('creates a table with its columns from an empty first append, and an empty append changes nothing', async () => {
        const store = await connect();
        const table = uniqueName('t');
        const schema: ColumnSchema[] = [
          { name: 'id', type: 'int' },
          { name: 'ts', type: 'timestamp' },
        ];
        await store.append(table, tableFromRows(schema, []), { timeColumn: 'ts' });
        expect(await store.hasTable(table)).toBe(true);
        const empty = await store.read(table);
        expect(empty.rowCount).toBe(0);
        expect(empty.columns.map((c) => ({ name: c.name, type: c.type }))).toEqual(schema);
        await store.append(table, tableFromRows(schema, [{ id: 1, ts: 5 }]), { timeColumn: 'ts' });
        await store.append(table, tableFromRows(schema, []), { timeColumn: 'ts' });
        expect(sortedRows(await store.read(table), 'id')).toEqual([{ id: 1, ts: 5 }]);
      });

      it('reads only the columns asked, in the order asked', async () => {
        const store = await connect();
        const table = uniqueName('t');
        const schema: ColumnSchema[] = [
          { name: 'id', type: 'int' },
          { name: 'a', type: 'string' },
          { name: 'b', type: 'float' },
        ];
        await store.append(table, tableFromRows(schema, [{ id: 1, a: 'x', b: 2.5 }]));
        const read = await store.read(table, { columns: ['b', 'id'] });
        expect(read.columns.map((c) => [c.name, c.type, c.values])).toEqual([
          ['b', 'float', [2.5]],
          ['id', 'int', [1]],
        ]);
        await expectCode(store.read(table, { columns: ['id', 'nope'] }), 'FERRY_COLUMN_UNKNOWN');
      });

      it('keeps acknowledged appends after the store is closed and opened again', async () => {
        const table = uniqueName('t');
        const first = await connect();
        await first.append(table, ids([1, 2, 3]));
        await first.append(table, withTime([{ id: 4, ts: MIDNIGHT }]), { timeColumn: 'ts' });
        await first.close();
        const second = await connect();
        expect(await second.count(table)).toBe(4);
        expect(
          sortedRows(await second.read(table, { columns: ['id'] }), 'id').map((r) => r.id),
        ).toEqual([1, 2, 3, 4]);
      });

      it('lands every row of concurrent appends to one table', async () => {
        const store = await connect();
        const table = uniqueName('t');
        await Promise.all(
          Array.from({ length: 12 }, (_, k) =>
            k % 2 === 0
              ? store.append(table, withTime([{ id: k, ts: MIDNIGHT + k * DAY }]), {
                  timeColumn: 'ts',
                })
              : store.append(table, withTime([{ id: k, ts: MIDNIGHT - k }])),
          ),
        );
        expect(
          sortedRows(await store.read(table, { columns: ['id'] }), 'id').map((r) => r.id),
        ).toEqual(Array.from({ length: 12 }, (_, k) => k));
      });
    });

    describe('schema', () => {
      it('adds a new column: earlier rows read it as null, and a column missing from a later append reads as null', async () => {
        const store = await connect();
        const table = uniqueName('t');
        const id = { name: 'id', type: 'int' } as const;
        const a = { name: 'a', type: 'string' } as const;
        const b = { name: 'b', type: 'float' } as const;
        await store.append(table, tableFromRows([id, a], [{ id: 1, a: 'one' }]));
        await store.append(table, tableFromRows([id, a, b], [{ id: 2, a: 'two', b: 2.5 }]));
        await store.append(table, tableFromRows([b, id], [{ id: 3, b: 3.5 }]));
        const read = await store.read(table);
        expect(read.columns.map((c) => [c.name, c.type]).sort()).toEqual([
          ['a', 'string'],
          ['b', 'float'],
          ['id', 'int'],
        ]);
        expect(sortedRows(read, 'id')).toEqual([
          { id: 1, a: 'one', b: null },
          { id: 2, a: 'two', b: 2.5 },
          { id: 3, a: null, b: 3.5 },
        ]);
      });

      it('refuses an append that changes a column type, and keeps the table as it was', async () => {
        const store = await connect();
        const table = uniqueName('t');
        await store.append(table, ids([1]));
        const changed = tableFromRows([{ name: 'id', type: 'string' }], [{ id: 'x' }]);
        await expectCode(store.append(table, changed), 'FERRY_ARGUMENT_INVALID');
        expect(await store.count(table)).toBe(1);
        expect((await store.read(table)).columns.map((c) => c.type)).toEqual(['int']);
      });

      it('refuses data that does not match its declared column types, and writes nothing', async () => {
        const store = await connect();
        const table = uniqueName('t');
        const bad: Table[] = [
          { rowCount: 2, columns: [{ name: 'id', type: 'int', values: [1, 1.5] }] },
          { rowCount: 1, columns: [{ name: 'x', type: 'float', values: ['1'] }] },
          { rowCount: 1, columns: [{ name: 'x', type: 'bool', values: [1] }] },
          { rowCount: 1, columns: [{ name: 'x', type: 'timestamp', values: [Number.NaN] }] },
          { rowCount: 3, columns: [{ name: 'id', type: 'int', values: [1, 2] }] },
          { rowCount: 0, columns: [] },
        ];
        for (const data of bad)
          await expectCode(store.append(table, data), 'FERRY_ARGUMENT_INVALID');
        expect(await store.hasTable(table)).toBe(false);
      });
    });

    describe('time', () => {
      it('reads start <= time < end, to the millisecond, across UTC dates', async () => {
        const store = await connect();
        const table = uniqueName('t');
        const times = [
          MIDNIGHT - DAY,
          MIDNIGHT - 1,
          MIDNIGHT,
          MIDNIGHT + 1,
          MIDNIGHT + DAY - 1,
          MIDNIGHT + DAY,
          0,
          -DAY - 1,
        ];
        await store.append(table, withTime(times.map((ts, id) => ({ id, ts }))), {
          timeColumn: 'ts',
        });
        const between = async (start?: number, end?: number): Promise<number[]> => {
          const read = await store.read(table, { timeColumn: 'ts', start, end });
          return tableToRows(read)
            .map((r) => r.ts as number)
            .sort((x, y) => x - y);
        };
        expect(await between(MIDNIGHT, MIDNIGHT + DAY)).toEqual([
          MIDNIGHT,
          MIDNIGHT + 1,
          MIDNIGHT + DAY - 1,
        ]);
        expect(await between(MIDNIGHT - 1, MIDNIGHT)).toEqual([MIDNIGHT - 1]);
        expect(await between(MIDNIGHT + DAY)).toEqual([MIDNIGHT + DAY]);
        expect(await between(undefined, 1)).toEqual([-DAY - 1, 0]);
        expect(await between(MIDNIGHT + 2, MIDNIGHT + 3)).toEqual([]);
        expect(await between()).toEqual([...times].sort((x, y) => x - y));
      });

      it('keeps rows of a time-partitioned table whole, whichever UTC date they fall on', async () => {
        const store = await connect();
        const table = uniqueName('t');
        const rows = [
          { id: 1, ts: MIDNIGHT - 1 },
          { id: 2, ts: MIDNIGHT },
          { id: 3, ts: MIDNIGHT + 40 * DAY + 123 },
          { id: 4, ts: -1 },
        ];
        await store.append(table, withTime(rows), { timeColumn: 'ts' });
        await store.append(table, withTime([{ id: 5, ts: MIDNIGHT + 7 }]));
        expect(sortedRows(await store.read(table), 'id')).toEqual([
          ...rows,
          { id: 5, ts: MIDNIGHT + 7 },
        ]);
        const range = await store.read(table, {
          timeColumn: 'ts',
          start: MIDNIGHT,
          end: MIDNIGHT + 8,
          columns: ['id'],
        });
        expect(sortedRows(range, 'id')).toEqual([{ id: 2 }, { id: 5 }]);
      });

      it('refuses a time-partitioned append with a missing, mistyped or null time column', async () => {
        const store = await connect();
        const table = uniqueName('t');
        await expectCode(
          store.append(table, ids([1]), { timeColumn: 'ts' }),
          'FERRY_ARGUMENT_INVALID',
        );
        await expectCode(
          store.append(table, ids([1]), { timeColumn: 'id' }),
          'FERRY_ARGUMENT_INVALID',
        );
        await expectCode(
          store.append(
            table,
            withTime([
              { id: 1, ts: MIDNIGHT },
              { id: 2, ts: null },
            ]),
            { timeColumn: 'ts' },
          ),
          'FERRY_ARGUMENT_INVALID',
        );
        expect(await store.hasTable(table)).toBe(false);
      });

      it('refuses a time range without a timestamp time column', async () => {
        const store = await connect();
        const table = uniqueName('t');
        await store.append(table, withTime([{ id: 1, ts: MIDNIGHT }]));
        await expectCode(store.read(table, { start: 0 }), 'FERRY_ARGUMENT_INVALID');
        await expectCode(
          store.read(table, { timeColumn: 'id', start: 0 }),
          'FERRY_ARGUMENT_INVALID',
        );
        await expectCode(
          store.read(table, { timeColumn: 'nope', start: 0 }),
          'FERRY_COLUMN_UNKNOWN',
        );
      });
    });

    describe('query', () => {
      it('computes in bulk over {{table}} with bound parameters, and maps result types back', async () => {
        const store = await connect();
        const table = uniqueName('t');
        const schema: ColumnSchema[] = [
          { name: 'card', type: 'string' },
          { name: 'amount', type: 'float' },
          { name: 'n', type: 'int' },
          { name: 'ts', type: 'timestamp' },
        ];
        await store.append(
          table,
          tableFromRows(schema, [
            { card: 'a', amount: 10, n: 1, ts: MIDNIGHT },
            { card: 'a', amount: 5.5, n: 2, ts: MIDNIGHT + 10 },
            { card: 'b', amount: 99, n: 3, ts: MIDNIGHT + 20 },
            { card: 'b', amount: 1, n: 4, ts: MIDNIGHT + 30 },
            { card: 'c', amount: 50, n: 5, ts: MIDNIGHT - 1 },
          ]),
          { timeColumn: 'ts' },
        );
        const result = await store.query(
          `SELECT card, count(*) AS rows, sum(amount) AS total, max(ts) AS last_at, bool_or(amount > $2) AS big
           FROM {{${table}}} WHERE ts >= $1 AND card <> $3 GROUP BY card ORDER BY card`,
          [MIDNIGHT, 50, 'zzz'],
        );
        expect(result.columns.map((c) => [c.name, c.type])).toEqual([
          ['card', 'string'],
          ['rows', 'int'],
          ['total', 'float'],
          ['last_at', 'timestamp'],
          ['big', 'bool'],
        ]);
        expect(tableToRows(result)).toEqual([
          { card: 'a', rows: 2, total: 15.5, last_at: MIDNIGHT + 10, big: false },
          { card: 'b', rows: 2, total: 100, last_at: MIDNIGHT + 30, big: true },
        ]);
      });

      it('joins several tables, with spaces allowed inside the braces', async () => {
        const store = await connect();
        const [left, right] = [uniqueName('t'), uniqueName('t')];
        await store.append(
          left,
          tableFromRows([{ name: 'id', type: 'int' }], [{ id: 1 }, { id: 2 }]),
        );
        await store.append(
          right,
          tableFromRows(
            [
              { name: 'id', type: 'int' },
              { name: 'label', type: 'string' },
            ],
            [{ id: 2, label: 'two' }],
          ),
        );
        const joined = await store.query(
          `SELECT l.id, r.label FROM {{ ${left} }} l LEFT JOIN {{${right}}} r USING (id) ORDER BY l.id`,
        );
        expect(tableToRows(joined)).toEqual([
          { id: 1, label: null },
          { id: 2, label: 'two' },
        ]);
      });

      it('refuses an unknown table, a statement that writes, and malformed SQL', async () => {
        const store = await connect();
        const table = uniqueName('t');
        await store.append(table, ids([1]));
        const missing = uniqueName('t');
        await expect(store.query(`SELECT * FROM {{${missing}}}`)).rejects.toMatchObject({
          code: 'FERRY_ARGUMENT_INVALID',
          message: expect.stringContaining(missing),
        });
        await expectCode(store.query(`SELECT * FROM {{Bad-Name}}`), 'FERRY_ARGUMENT_INVALID');
        await expectCode(
          store.query(`CREATE TABLE stolen AS SELECT * FROM {{${table}}}`),
          'FERRY_ARGUMENT_INVALID',
        );
        await expectCode(store.query(`SELEC * FROM {{${table}}}`), 'FERRY_ARGUMENT_INVALID');
        await expectCode(
          store.query(`SELECT * FROM {{${table}}} WHERE id = $1`, []),
          'FERRY_ARGUMENT_INVALID',
        );
      });
    });

    describe('compaction', () => {
      it('gives exactly the same rows to count and read after many small appends and a compact', async () => {
        const store = await connect();
        const table = uniqueName('t');
        // 3 dates and the unpartitioned part: 4 partitions, 10 small appends each.
        for (let k = 0; k < 40; k++) {
          const rows = [0, 1].map((i) => ({
            id: 2 * k + i,
            ts: MIDNIGHT + (k % 3) * DAY + k,
            label: `row ${2 * k + i}`,
          }));
          await store.append(table, labelled(rows), k % 4 === 3 ? {} : { timeColumn: 'ts' });
        }
        const before = sortedRows(await store.read(table), 'id');
        expect(before).toHaveLength(80);
        const result = await store.compact(table);
        expect(result.compacted).toBeGreaterThan(0);
        expect(result.files).toBeGreaterThanOrEqual(1);
        expect(result.files).toBeLessThanOrEqual(4);
        expect(await store.count(table)).toBe(80);
        expect(sortedRows(await store.read(table), 'id')).toEqual(before);
        const range = await store.read(table, {
          timeColumn: 'ts',
          start: MIDNIGHT + DAY,
          end: MIDNIGHT + 2 * DAY,
          columns: ['id'],
        });
        expect(range.rowCount).toBe(
          before.filter((r) => Number(r.ts) >= MIDNIGHT + DAY && Number(r.ts) < MIDNIGHT + 2 * DAY)
            .length,
        );
        // Nothing left to merge: a second compact changes nothing.
        expect(await store.compact(table)).toEqual({ files: result.files, compacted: 0 });
        await store.append(table, labelled([{ id: 80, ts: MIDNIGHT, label: 'after' }]), {
          timeColumn: 'ts',
        });
        await store.close();
        const reopened = await connect();
        expect(await reopened.count(table)).toBe(81);
        expect(sortedRows(await reopened.read(table), 'id')).toEqual([
          ...before,
          { id: 80, ts: MIDNIGHT, label: 'after' },
        ]);
        await expectCode(reopened.compact(uniqueName('t')), 'FERRY_ARGUMENT_INVALID');
        await expectCode(reopened.compact('Bad-Name'), 'FERRY_ARGUMENT_INVALID');
      });

      it('loses and doubles no row while parallel appends, reads and compactions run at once', async () => {
        const store = await connect();
        const table = uniqueName('t');
        const rowsPerBatch = 3;
        const batches = 96;
        const acked = new Set<number>();
        const appendBatch = async (k: number): Promise<void> => {
          const rows = Array.from({ length: rowsPerBatch }, (_, i) => ({
            id: k * rowsPerBatch + i,
            ts: MIDNIGHT + (k % 4) * DAY + i,
          }));
          await store.append(table, withTime(rows), k % 3 === 0 ? {} : { timeColumn: 'ts' });
          for (const row of rows) acked.add(row.id);
        };
        const problems: string[] = [];
        let reads = 0;
        const checkRead = async (): Promise<void> => {
          const before = [...acked];
          const ids = (await store.read(table, { columns: ['id'] })).columns[0]?.values ?? [];
          const seen = new Set(ids);
          if (seen.size !== ids.length)
            problems.push(`a read saw ${ids.length - seen.size} row(s) twice`);
          const missed = before.filter((id) => !seen.has(id));
          if (missed.length > 0)
            problems.push(`a read missed acknowledged rows ${missed.join(', ')}`);
          const counted = await store.count(table);
          if (counted < before.length)
            problems.push(`count ${counted} < ${before.length} acknowledged`);
          const [twice] =
            (await store.query(`SELECT count(*) - count(DISTINCT id) AS twice FROM {{${table}}}`))
              .columns[0]?.values ?? [];
          if (twice !== 0) problems.push(`a query saw ${String(twice)} row(s) twice`);
          reads++;
        };
        await appendBatch(0);
        let appending = true;
        const writers = 6;
        const appenders = Array.from({ length: writers }, async (_, w) => {
          for (let k = 1 + w; k < batches; k += writers) await appendBatch(k);
        });
        const readers = Array.from({ length: 2 }, async () => {
          while (appending) await checkRead();
        });
        const compactor = (async () => {
          let merged = 0;
          while (appending) merged += (await store.compact(table)).compacted;
          return merged;
        })();
        await Promise.all(appenders);
        appending = false;
        await Promise.all(readers);
        const merged = await compactor;
        expect(problems).toEqual([]);
        expect(reads).toBeGreaterThan(0);
        expect(merged).toBeGreaterThan(0);
        await checkRead();
        expect(problems).toEqual([]);
        const ids = (await store.read(table, { columns: ['id'] })).columns[0]?.values as number[];
        expect([...ids].sort((a, b) => a - b)).toEqual(
          Array.from({ length: batches * rowsPerBatch }, (_, i) => i),
        );
      });

      it('keeps a column added by a later append, null in the older rows, through a compact', async () => {
        const store = await connect();
        const table = uniqueName('t');
        const id = { name: 'id', type: 'int' } as const;
        const ts = { name: 'ts', type: 'timestamp' } as const;
        const a = { name: 'a', type: 'string' } as const;
        const b = { name: 'b', type: 'float' } as const;
        const flag = { name: 'flag', type: 'bool' } as const;
        const expected: Row[] = [];
        for (let k = 0; k < 6; k++) {
          const partitioned = k % 2 === 0 ? { timeColumn: 'ts' } : {};
          const t = MIDNIGHT + k;
          if (k < 3) {
            await store.append(
              table,
              tableFromRows([id, ts, a], [{ id: k, ts: t, a: `a${k}` }]),
              partitioned,
            );
            expected.push({ id: k, ts: t, a: `a${k}`, b: null, flag: null });
          } else {
            const row = { id: k, ts: t, a: `a${k}`, b: k + 0.5, flag: k % 2 === 0 };
            await store.append(table, tableFromRows([id, ts, a, b, flag], [row]), partitioned);
            expected.push(row);
          }
        }
        await store.append(table, tableFromRows([b, id, ts], [{ id: 6, ts: MIDNIGHT, b: -1 }]));
        expected.push({ id: 6, ts: MIDNIGHT, a: null, b: -1, flag: null });
        await store.compact(table);
        const read = await store.read(table);
        expect(read.columns.map((c) => [c.name, c.type]).sort()).toEqual([
          ['a', 'string'],
          ['b', 'float'],
          ['flag', 'bool'],
          ['id', 'int'],
          ['ts', 'timestamp'],
        ]);
        expect(sortedRows(read, 'id')).toEqual(expected);
        // Appends after the compact are checked against the same types.
        await expectCode(
          store.append(table, tableFromRows([{ name: 'b', type: 'string' }], [{ b: 'x' }])),
          'FERRY_ARGUMENT_INVALID',
        );
        await store.append(table, tableFromRows([id, flag], [{ id: 7, flag: true }]));
        expect(await store.count(table)).toBe(8);
      });
    });

    describe('tables', () => {
      it('reports an unknown table as FERRY_ARGUMENT_INVALID, naming it', async () => {
        const store = await connect();
        const missing = uniqueName('t');
        for (const call of [() => store.read(missing), () => store.count(missing)]) {
          await expect(call()).rejects.toMatchObject({
            code: 'FERRY_ARGUMENT_INVALID',
            message: expect.stringContaining(missing),
          });
        }
        expect(await store.hasTable(missing)).toBe(false);
      });

      it('refuses table names outside [a-z0-9_] segments joined by /', async () => {
        const store = await connect();
        for (const bad of ['', 'Upper', 'a-b', 'a//b', '/a', 'a/', '../escape', 'a/./b', 'a b']) {
          await expectCode(store.append(bad, ids([1])), 'FERRY_ARGUMENT_INVALID');
          await expectCode(store.read(bad), 'FERRY_ARGUMENT_INVALID');
        }
      });

      it('drops one table only, and lets the name start afresh', async () => {
        const store = await connect();
        const table = uniqueName('t');
        const child = `${table}/child`;
        const other = uniqueName('t');
        await store.append(table, ids([1]));
        await store.append(table, withTime([{ id: 2, ts: MIDNIGHT }]), { timeColumn: 'ts' });
        await store.append(child, ids([3]));
        await store.append(other, ids([4]));
        await store.dropTable(table);
        expect(await store.hasTable(table)).toBe(false);
        expect(await store.listTables()).not.toContain(table);
        expect(await store.count(child)).toBe(1);
        expect(await store.count(other)).toBe(1);
        // Dropping again, or a table that never existed, is not an error.
        await store.dropTable(table);
        await store.dropTable(uniqueName('t'));
        // The old column types are gone with the table.
        await store.append(
          table,
          tableFromRows([{ name: 'id', type: 'string' }], [{ id: 'fresh' }]),
        );
        expect(tableToRows(await store.read(table))).toEqual([{ id: 'fresh' }]);
      });

      it('refuses every call after close with FERRY_STORE_CLOSED', async () => {
        const store = await open();
        await store.close();
        const table = uniqueName('t');
        await expectCode(store.append(table, ids([1])), 'FERRY_STORE_CLOSED');
        await expectCode(store.read(table), 'FERRY_STORE_CLOSED');
        await expectCode(store.query('SELECT 1'), 'FERRY_STORE_CLOSED');
        await expectCode(store.compact(table), 'FERRY_STORE_CLOSED');
        await store.close();
      });
    });
  });
}

function ids(values: number[]): Table {
  return tableFromRows(
    [{ name: 'id', type: 'int' }],
    values.map((id) => ({ id })),
  );
}

function labelled(rows: Row[]): Table {
  return tableFromRows(
    [
      { name: 'id', type: 'int' },
      { name: 'ts', type: 'timestamp' },
      { name: 'label', type: 'string' },
    ],
    rows,
  );
}

function withTime(rows: Row[]): Table {
  return tableFromRows(
    [
      { name: 'id', type: 'int' },
      { name: 'ts', type: 'timestamp' },
    ],
    rows,
  );
}

/** Rows as objects ordered by a key column: row order is not part of the contract. */
function sortedRows(table: Table, key: string): Row[] {
  return tableToRows(table).sort((a, b) => Number(a[key]) - Number(b[key]));
}
