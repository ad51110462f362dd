import fs from 'node:fs';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { describe, expect, it } from 'vitest';
import { tableFromRows, tableToRows, type Table } from '../../core/table.js';
import { describeOfflineStoreConformance } from '../../testing/offline-store.conformance.js';
import { runScript } from '../../testing/script.js';
import { tempDirs } from '../../testing/temp.js';
import { openParquetOfflineStore } from './parquet.js';

const tmp = tempDirs();

const conformanceDir = path.join(tmp.root, 'conformance');
describeOfflineStoreConformance('parquet', () => openParquetOfflineStore({ path: conformanceDir }));

const DAY = 86_400_000;

function events(rows: { id: number; at: number }[]): Table {
  return tableFromRows(
    [
      { name: 'id', type: 'int' },
      { name: 'at', type: 'timestamp' },
    ],
    rows,
  );
}

/** Every file under `dir`, relative to it, with `/` separators. */
function filesUnder(dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true, withFileTypes: true }) as fs.Dirent[])
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)).split(path.sep).join('/'))
    .sort();
}

describe('ParquetOfflineStore', () => {
  it('partitions files by the UTC date of the time column, and leaves nothing in staging', async () => {
    const root = tmp.fresh();
    const store = await openParquetOfflineStore({ path: root });
    const midnight = Date.UTC(2024, 0, 31);
    await store.append(
      'inference_log/fraud',
      events([
        { id: 1, at: midnight - 1 },
        { id: 2, at: midnight },
        { id: 3, at: midnight + DAY + 5 },
      ]),
      { timeColumn: 'at' },
    );
    await store.append('inference_log/fraud', events([{ id: 4, at: midnight }]));
    await store.close();

    const files = filesUnder(path.join(root, 'inference_log', 'fraud'));
    expect(files.map((f) => f.replace(/part-\d+-[0-9a-f-]{36}\.parquet$/, 'part.parquet'))).toEqual(
      [
        'date=2024-01-30/part.parquet',
        'date=2024-01-31/part.parquet',
        'date=2024-02-01/part.parquet',
        'part.parquet',
      ],
    );
    expect(filesUnder(path.join(root, '.staging'))).toEqual([]);
  });

  it('writes plain Parquet that any DuckDB reads with the documented types, partition column excluded', async () => {
    const root = tmp.fresh();
    const store = await openParquetOfflineStore({ path: root });
    const data = tableFromRows(
      [
        { name: 'i', type: 'int' },
        { name: 'f', type: 'float' },
        { name: 'b', type: 'bool' },
        { name: 's', type: 'string' },
        { name: 't', type: 'timestamp' },
      ],
      [{ i: 42, f: 1.25, b: true, s: 'x', t: Date.UTC(2024, 5, 1, 12, 30, 0, 250) }],
    );
    await store.append('typed', data, { timeColumn: 't' });
    await store.close();

    const [file] = filesUnder(path.join(root, 'typed'));
    const instance = await DuckDBInstance.create(':memory:');
    const connection = await instance.connect();
    const reader = await connection.runAndReadAll(
      `SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet('${path.join(root, 'typed', file ?? '')}', hive_partitioning = false))`,
    );
    expect(reader.getRows()).toEqual([
      ['i', 'BIGINT'],
      ['f', 'DOUBLE'],
      ['b', 'BOOLEAN'],
      ['s', 'VARCHAR'],
      ['t', 'TIMESTAMP'],
    ]);
    const value = await connection.runAndReadAll(
      `SELECT strftime(t, '%Y-%m-%dT%H:%M:%S.%g') FROM read_parquet('${path.join(root, 'typed', '*', '*.parquet')}')`,
    );
    expect(value.getRows()).toEqual([['2024-06-01T12:30:00.250']]);
    connection.closeSync();
    instance.closeSync();
  });

  it('reads an unpartitioned table back in append order', async () => {
    const store = await openParquetOfflineStore({ path: tmp.fresh() });
    const batches = [
      [5, 3, 9],
      [1],
      [8, 2],
      ...Array.from({ length: 12 }, (_, i) => [100 - i, 50 + i]),
    ];
    for (const batch of batches)
      await store.append('ordered', events(batch.map((id) => ({ id, at: id }))));
    expect((await store.read('ordered', { columns: ['id'] })).columns[0]?.values).toEqual(
      batches.flat(),
    );
    await store.close();
  });

  it('maps DuckDB result types to Ferry column types', async () => {
    const store = await openParquetOfflineStore({ path: tmp.fresh() });
    const result = await store.query(
      `
      SELECT DATE '2024-03-10' AS d, 1.25::DECIMAL(10, 2) AS dec, 7::TINYINT AS tiny, 2::HUGEINT AS huge,
             TIMESTAMPTZ '2024-03-10 00:00:01+00' AS tz, epoch_ms(1500) AS ms, 1.5::FLOAT AS real,
             [1, 2] AS list, $1 AS param_text`,
      ['text'],
    );
    expect(result.columns.map((c) => [c.name, c.type])).toEqual([
      ['d', 'timestamp'],
      ['dec', 'float'],
      ['tiny', 'int'],
      ['huge', 'int'],
      ['tz', 'timestamp'],
      ['ms', 'timestamp'],
      ['real', 'float'],
      ['list', 'string'],
      ['param_text', 'string'],
    ]);
    expect(tableToRows(result)).toEqual([
      {
        d: Date.UTC(2024, 2, 10),
        dec: 1.25,
        tiny: 7,
        huge: 2,
        tz: Date.UTC(2024, 2, 10, 0, 0, 1),
        ms: 1500,
        real: 1.5,
        list: '[1, 2]',
        param_text: 'text',
      },
    ]);
    await store.close();
  });

  it('binds a number as UTC milliseconds where the query compares it with a timestamp or a date', async () => {
    const store = await openParquetOfflineStore({ path: tmp.fresh() });
    const t = Date.UTC(2024, 4, 1, 6);
    await store.append(
      'ev',
      events([
        { id: 1, at: t - 1 },
        { id: 2, at: t },
        { id: 3, at: t + DAY },
      ]),
      { timeColumn: 'at' },
    );
    // `at` is a DuckDB keyword (time travel), so the query quotes it.
    const byTime = await store.query('SELECT id FROM {{ev}} WHERE "at" >= $1 ORDER BY id', [t]);
    expect(byTime.columns[0]?.values).toEqual([2, 3]);
    const byDate = await store.query(
      'SELECT id FROM {{ev}} WHERE CAST("at" AS DATE) = $1 ORDER BY id',
      [t + DAY],
    );
    expect(byDate.columns[0]?.values).toEqual([3]);
    await store.close();
  });

  it('ignores leftovers of a crashed append: empty date folders and staged files', async () => {
    const root = tmp.fresh();
    const store = await openParquetOfflineStore({ path: root });
    await store.append('t', events([{ id: 1, at: 0 }]));
    fs.mkdirSync(path.join(root, 't', 'date=2024-01-01'));
    fs.mkdirSync(path.join(root, 'half', 'date=2024-01-01'), { recursive: true });
    fs.mkdirSync(path.join(root, '.staging', 'crashed'), { recursive: true });
    fs.writeFileSync(path.join(root, '.staging', 'crashed', 'out.parquet'), 'partial');
    expect(tableToRows(await store.read('t'))).toEqual([{ id: 1, at: 0 }]);
    expect(await store.hasTable('half')).toBe(false);
    expect(await store.listTables()).toEqual(['t']);
    await store.close();
  });

  it('removes staging folders left by a crash more than an hour ago when it opens', async () => {
    const root = tmp.fresh();
    const old = path.join(root, '.staging', 'old');
    const recent = path.join(root, '.staging', 'recent');
    fs.mkdirSync(old, { recursive: true });
    fs.mkdirSync(recent, { recursive: true });
    const twoHoursAgo = new Date(Date.now() - 2 * 3600_000);
    fs.utimesSync(old, twoHoursAgo, twoHoursAgo);
    const store = await openParquetOfflineStore({ path: root });
    expect(fs.existsSync(old)).toBe(false);
    // A recent one may belong to another store on the same folder that is writing right now.
    expect(fs.existsSync(recent)).toBe(true);
    await store.close();
  });

  it('keeps an acknowledged append when the process is killed right after it', async () => {
    const root = tmp.fresh();
    const script = `
      const { openParquetOfflineStore } = await import('./src/feature-store/offline/parquet.ts');
      const store = await openParquetOfflineStore({ path: process.argv[1] });
      const at = Date.UTC(2024, 0, 1);
      await store.append('crash', { rowCount: 2, columns: [
        { name: 'id', type: 'int', values: [1, 2] },
        { name: 'at', type: 'timestamp', values: [at, at + 86400000] },
      ] }, { timeColumn: 'at' });
      process.kill(process.pid, 'SIGKILL');
    `;
    await expect(runScript(script, [root])).rejects.toMatchObject({ signal: 'SIGKILL' });
    const store = await openParquetOfflineStore({ path: root });
    expect(await store.count('crash')).toBe(2);
    await store.close();
  });

  it('finishes appends and reads already asked for when it is closed', async () => {
    const root = tmp.fresh();
    const store = await openParquetOfflineStore({ path: root });
    const n = 50_000;
    const big = events(Array.from({ length: n }, (_, id) => ({ id, at: id * 1000 })));
    await store.append('big', big);
    const appends = [store.append('big', big), store.append('other', big, { timeColumn: 'at' })];
    const read = store.read('big');
    await store.close();
    await Promise.all(appends);
    expect((await read).rowCount).toBeGreaterThanOrEqual(n);
    const reopened = await openParquetOfflineStore({ path: root });
    expect(await reopened.count('big')).toBe(2 * n);
    expect(await reopened.count('other')).toBe(n);
    await reopened.close();
  });

  it('finishes every operation asked for before close, those still queued for a connection too', async () => {
    const root = tmp.fresh();
    const n = 5000;
    const batch = events(Array.from({ length: n }, (_, id) => ({ id, at: id * 1000 })));
    // More operations than the store runs at once, so some still wait for a connection at close.
    const writer = await openParquetOfflineStore({ path: root });
    await writer.append('seed', batch);
    const appends = Array.from({ length: 8 }, (_, i) => writer.append(`t${i}`, batch));
    await writer.close();
    await Promise.all(appends);
    // Counts and queries alone too: close() must wait for them from the moment they are asked,
    // not only once they reach DuckDB, with nothing slower to hide the difference.
    const reader = await openParquetOfflineStore({ path: root });
    const counts = Array.from({ length: 8 }, (_, i) => reader.count(`t${i}`));
    const query = reader.query('SELECT sum(id) AS total FROM {{seed}}');
    await reader.close();
    expect(await Promise.all(counts)).toEqual(Array.from({ length: 8 }, () => n));
    expect((await query).columns[0]?.values).toEqual([(n * (n - 1)) / 2]);
    await expect(reader.count('seed')).rejects.toMatchObject({ code: 'FERRY_STORE_CLOSED' });
  });

  it('runs appends to several tables, reads, counts and queries at the same time, losing no row', async () => {
    const store = await openParquetOfflineStore({ path: tmp.fresh() });
    // One partitioned table, one nested, one plain: each append path runs beside the others.
    const tables = [
      { name: 'clicks', timeColumn: 'at' },
      { name: 'log/fraud', timeColumn: undefined },
      { name: 'scores', timeColumn: undefined },
    ] as const;
    const rowsPerBatch = 3000;
    const batch = (round: number, t: number): Table =>
      events(
        Array.from({ length: rowsPerBatch }, (_, i) => {
          const id = (round * tables.length + t) * rowsPerBatch + i;
          return { id, at: id * 60_000 };
        }),
      );
    const rounds = 10;
    for (let round = 0; round < rounds; round++) {
      const before = round * rowsPerBatch;
      const after = before + rowsPerBatch;
      const [appended, reads, counts, query] = await Promise.all([
        Promise.all(
          tables.map((t, i) =>
            store.append(t.name, batch(round, i), t.timeColumn ? { timeColumn: 'at' } : {}),
          ),
        ),
        // A table does not exist before its first append; read it from the second round on.
        Promise.all(tables.map((t) => (round === 0 ? null : store.read(t.name)))),
        Promise.all(tables.map((t) => (round === 0 ? null : store.count(t.name)))),
        round === 0
          ? null
          : store.query(
              'SELECT (SELECT count(*) FROM {{clicks}}) AS clicks, (SELECT count(*) FROM {{scores}}) AS scores, (SELECT max(id) FROM {{log/fraud}}) AS top',
            ),
      ]);
      expect(appended).toHaveLength(tables.length);
      if (round === 0) continue;
      // A reader sees each append whole or not at all: an unpartitioned append is one file, and
      // this one spans ~2 dates of the partitioned table, whose files land one by one.
      for (const [i, t] of tables.entries()) {
        for (const seen of [reads[i]?.rowCount, counts[i]]) {
          if (t.timeColumn) {
            expect(seen).toBeGreaterThanOrEqual(before);
            expect(seen).toBeLessThanOrEqual(after);
          } else {
            expect([before, after]).toContain(seen);
          }
        }
      }
      const [clicks, scores, top] = query?.columns.map((c) => c.values[0]) ?? [];
      expect(clicks).toBeGreaterThanOrEqual(before);
      expect(scores === before || scores === after).toBe(true);
      // The largest id 'log/fraud' (table 1) held before this round.
      expect(top).toBeGreaterThanOrEqual(((round - 1) * tables.length + 2) * rowsPerBatch - 1);
    }
    for (const [i, t] of tables.entries()) {
      expect(await store.count(t.name)).toBe(rounds * rowsPerBatch);
      const ids = (await store.read(t.name, { columns: ['id'] })).columns[0]?.values as number[];
      const expected = Array.from(
        { length: rounds },
        (_, round) => batch(round, i).columns[0]?.values,
      ).flat();
      expect([...ids].sort((a, b) => a - b)).toEqual(expected);
    }
    await store.close();
  });

  it('refuses a root whose path holds glob characters', async () => {
    await expect(
      openParquetOfflineStore({ path: path.join(tmp.fresh(), 'data[1]') }),
    ).rejects.toMatchObject({
      code: 'FERRY_ARGUMENT_INVALID',
    });
  });

  it('names the existing tables when asked for an unknown one', async () => {
    const store = await openParquetOfflineStore({ path: tmp.fresh() });
    await store.append('features/cards', events([{ id: 1, at: 0 }]));
    await store.append('datasets', events([{ id: 1, at: 0 }]));
    await expect(store.read('cards')).rejects.toThrow(
      /'cards' does not exist.*existing tables: datasets, features\/cards/,
    );
    await store.close();
  });

  it('refuses column names that differ from the table’s only by case', async () => {
    const store = await openParquetOfflineStore({ path: tmp.fresh() });
    await store.append('t', tableFromRows([{ name: 'Amount', type: 'float' }], [{ Amount: 1 }]));
    await expect(
      store.append('t', tableFromRows([{ name: 'amount', type: 'float' }], [{ amount: 2 }])),
    ).rejects.toMatchObject({ code: 'FERRY_ARGUMENT_INVALID' });
    await expect(
      store.append(
        'u',
        tableFromRows(
          [
            { name: 'x', type: 'float' },
            { name: 'X', type: 'float' },
          ],
          [{ x: 1, X: 2 }],
        ),
      ),
    ).rejects.toMatchObject({ code: 'FERRY_ARGUMENT_INVALID' });
    await store.close();
  });
});

describe('ParquetOfflineStore compaction', () => {
  /** The Parquet files directly in a folder of the store. */
  const parquetIn = (dir: string): string[] =>
    fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.parquet')) : [];
  const ids = (table: Table): number[] =>
    (table.columns.find((c) => c.name === 'id')?.values ?? []) as number[];
  const day = Date.UTC(2024, 5, 1);

  it('keeps the files of a partition bounded by compactAfterFiles over 100 appends, rows and order kept', async () => {
    const root = tmp.fresh();
    const store = await openParquetOfflineStore({ path: root });
    const partition = path.join(root, 'stream', 'date=2024-06-01');
    const plain = path.join(root, 'plain');
    const most = { stream: 0, plain: 0 };
    const batches: number[][] = [];
    for (let k = 0; k < 100; k++) {
      const batch = [3 * k + 2, 3 * k, 3 * k + 1];
      batches.push(batch);
      await store.append('stream', events(batch.map((id) => ({ id, at: day + id }))), {
        timeColumn: 'at',
      });
      await store.append('plain', events(batch.map((id) => ({ id, at: id }))));
      await store.compactionsSettled();
      most.stream = Math.max(most.stream, parquetIn(partition).length);
      most.plain = Math.max(most.plain, parquetIn(plain).length);
    }
    // 33 files of tier 0 make one of tier 1: at most 32 + the few tier-1 files, never 100.
    expect(most.stream).toBeLessThanOrEqual(32 + 3);
    expect(most.plain).toBeLessThanOrEqual(32 + 3);
    // 100 = 3 x 33 + 1: three merged files and the last append.
    expect(parquetIn(partition)).toHaveLength(4);
    expect(parquetIn(plain)).toHaveLength(4);
    expect(parquetIn(partition).filter((f) => f.includes('-c1-'))).toHaveLength(3);
    expect(ids(await store.read('plain'))).toEqual(batches.flat());
    expect([...ids(await store.read('stream'))].sort((a, b) => a - b)).toEqual(
      Array.from({ length: 300 }, (_, i) => i),
    );
    expect(await store.compact('stream')).toEqual({ files: 1, compacted: 4 });
    expect(parquetIn(partition)).toHaveLength(1);
    await store.close();
    expect(filesUnder(path.join(root, '.staging'))).toEqual([]);
  });

  it('merges tier upon tier while appends stream in, and keeps append order', async () => {
    const root = tmp.fresh();
    const store = await openParquetOfflineStore({ path: root, compactAfterFiles: 3 });
    const batches = Array.from({ length: 100 }, (_, k) => [2 * k + 1, 2 * k]);
    // Five appends asked for at once (they land in the order asked), a read, and so on; the
    // compactions they start run beside them. Waiting for those every 20 appends keeps compaction
    // from lagging so far that no second tier forms.
    for (let k = 0; k < batches.length; k += 5) {
      const group = batches.slice(k, k + 5);
      await Promise.all(
        group.map((batch) => store.append('log', events(batch.map((id) => ({ id, at: id }))))),
      );
      expect(ids(await store.read('log', { columns: ['id'] }))).toEqual(
        batches.slice(0, k + 5).flat(),
      );
      if (k % 20 === 15) await store.compactionsSettled();
    }
    await store.close();
    // Once settled, no tier holds more than 3 files (tier 1 merges 4 or more appends, tier 2 four
    // tier-1 files...), however far compaction lagged behind the appends.
    const tiers = new Map<number, number>();
    for (const file of parquetIn(path.join(root, 'log'))) {
      const tier = Number(/-c(\d+)-/.exec(file)?.[1] ?? 0);
      tiers.set(tier, (tiers.get(tier) ?? 0) + 1);
    }
    expect(Math.max(...tiers.values())).toBeLessThanOrEqual(3);
    expect(Math.max(...tiers.keys())).toBeGreaterThanOrEqual(2);
    const reopened = await openParquetOfflineStore({ path: root });
    expect(ids(await reopened.read('log'))).toEqual(batches.flat());
    await reopened.close();
  });

  it('writes a merged file whose column types any DuckDB reads, added columns null in older rows', async () => {
    const root = tmp.fresh();
    const store = await openParquetOfflineStore({ path: root, compactAfterFiles: 2 });
    await store.append('t', events([{ id: 1, at: day }]), { timeColumn: 'at' });
    await store.append(
      't',
      tableFromRows(
        [
          { name: 'id', type: 'int' },
          { name: 'at', type: 'timestamp' },
          { name: 'score', type: 'float' },
          { name: 'tag', type: 'string' },
        ],
        [{ id: 2, at: day + 1, score: 0.5, tag: 'x' }],
      ),
      { timeColumn: 'at' },
    );
    await store.append('t', events([{ id: 3, at: day + 2 }]), { timeColumn: 'at' });
    await store.close();
    const [file, ...others] = parquetIn(path.join(root, 't', 'date=2024-06-01'));
    expect(others).toEqual([]);
    expect(file).toMatch(/-c1-/);
    const instance = await DuckDBInstance.create(':memory:');
    const connection = await instance.connect();
    const source = `read_parquet('${path.join(root, 't', 'date=2024-06-01', file ?? '')}', hive_partitioning = false)`;
    const types = await connection.runAndReadAll(
      `SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM ${source})`,
    );
    expect(types.getRows()).toEqual([
      ['id', 'BIGINT'],
      ['at', 'TIMESTAMP'],
      ['score', 'DOUBLE'],
      ['tag', 'VARCHAR'],
    ]);
    const rows = await connection.runAndReadAll(`SELECT id, score, tag FROM ${source} ORDER BY id`);
    expect(rows.getRows()).toEqual([
      [1n, null, null],
      [2n, 0.5, 'x'],
      [3n, null, null],
    ]);
    connection.closeSync();
    instance.closeSync();
  });

  it('counts no row twice after a crash between a merge and the removal of its inputs, and removes them later', async () => {
    const root = tmp.fresh();
    const store = await openParquetOfflineStore({ path: root, compactAfterFiles: Infinity });
    for (let k = 0; k < 6; k++) {
      await store.append('t', events([{ id: k, at: day + k }]), { timeColumn: 'at' });
      await store.append('t', events([{ id: 100 + k, at: k }]));
    }
    const before = filesUnder(path.join(root, 't'));
    const saved = new Map(before.map((f) => [f, fs.readFileSync(path.join(root, 't', f))]));
    expect(await store.compact('t')).toEqual({ files: 2, compacted: 12 });
    await store.close();
    // The state a crash right after the commit leaves: the merged files beside their inputs.
    for (const [f, bytes] of saved) fs.writeFileSync(path.join(root, 't', f), bytes);
    expect(filesUnder(path.join(root, 't'))).toHaveLength(14);

    const reopened = await openParquetOfflineStore({ path: root });
    expect(await reopened.count('t')).toBe(12);
    // The unpartitioned part reads first, in append order.
    expect(ids(await reopened.read('t', { columns: ['id'] })).slice(0, 6)).toEqual([
      100, 101, 102, 103, 104, 105,
    ]);
    expect([...ids(await reopened.read('t'))].sort((a, b) => a - b)).toEqual([
      0, 1, 2, 3, 4, 5, 100, 101, 102, 103, 104, 105,
    ]);
    // The first append of the process removes the leftovers of every folder of the table.
    await reopened.append('t', events([{ id: 6, at: day + 6 }]), { timeColumn: 'at' });
    await reopened.close();
    const after = filesUnder(path.join(root, 't'));
    expect(after.filter((f) => before.includes(f))).toEqual([]);
    expect(after).toHaveLength(3);
  });

  it('loses and doubles no row when the process is killed during compactions', async () => {
    const script = `
      const { openParquetOfflineStore } = await import('./src/feature-store/offline/parquet.ts');
      const [root, mode] = process.argv.slice(1);
      const store = await openParquetOfflineStore({ path: root, compactAfterFiles: mode === 'auto' ? 2 : Infinity });
      const at = Date.UTC(2024, 0, 1);
      for (let k = 0; k < 60; k++) {
        await store.append('crash', { rowCount: 2, columns: [
          { name: 'id', type: 'int', values: [2 * k, 2 * k + 1] },
          { name: 'at', type: 'timestamp', values: [at + k, at + k + 86400000 * (k % 2)] },
        ] }, k % 3 === 0 ? {} : { timeColumn: 'at' });
      }
      if (mode === 'explicit') void store.compact('crash');
      // Background merges (auto) or the explicit compact run while the process dies.
      await new Promise((resolve) => setTimeout(resolve, Number(process.argv[3])));
      process.kill(process.pid, 'SIGKILL');
    `;
    for (const [mode, delayMs] of [
      ['auto', 0],
      ['explicit', 10],
    ] as const) {
      const root = tmp.fresh();
      await expect(runScript(script, [root, mode, String(delayMs)])).rejects.toMatchObject({
        signal: 'SIGKILL',
      });
      const store = await openParquetOfflineStore({ path: root });
      const read = [...ids(await store.read('crash', { columns: ['id'] }))].sort((a, b) => a - b);
      expect(read).toEqual(Array.from({ length: 120 }, (_, i) => i));
      expect(await store.count('crash')).toBe(120);
      // Compacting after the crash keeps them all too.
      await store.compact('crash');
      expect(await store.count('crash')).toBe(120);
      await store.close();
    }
  });

  it('serves exact reads to a second store on the same folder while the first compacts', async () => {
    const root = tmp.fresh();
    const writer = await openParquetOfflineStore({ path: root, compactAfterFiles: 3 });
    const reader = await openParquetOfflineStore({ path: root });
    await writer.append('shared', events([{ id: 0, at: day }]), { timeColumn: 'at' });
    let acked = 1;
    const problems: string[] = [];
    let appending = true;
    const writing = (async () => {
      for (let id = 1; id < 80; id++) {
        await writer.append('shared', events([{ id, at: day + id }]), { timeColumn: 'at' });
        acked = id + 1;
      }
      appending = false;
    })();
    while (appending) {
      const before = acked;
      const read = ids(await reader.read('shared', { columns: ['id'] }));
      if (new Set(read).size !== read.length) problems.push('a row read twice');
      if (read.length < before) problems.push(`${read.length} rows read, ${before} acknowledged`);
    }
    await writing;
    expect(problems).toEqual([]);
    expect(await reader.count('shared')).toBe(80);
    await Promise.all([writer.close(), reader.close()]);
  });

  it('does not bring back a dropped table when a merge was running under the drop', async () => {
    const root = tmp.fresh();
    const store = await openParquetOfflineStore({ path: root, compactAfterFiles: 1 });
    for (let round = 0; round < 5; round++) {
      const appends = Array.from({ length: 12 }, (_, id) =>
        store.append('gone', events([{ id, at: day + id }]), { timeColumn: 'at' }),
      );
      await Promise.all(appends);
      await store.dropTable('gone');
      expect(await store.hasTable('gone')).toBe(false);
    }
    await store.append('gone', events([{ id: 99, at: day }]), { timeColumn: 'at' });
    await store.close();
    const reopened = await openParquetOfflineStore({ path: root });
    expect(tableToRows(await reopened.read('gone'))).toEqual([{ id: 99, at: day }]);
    await reopened.close();
  });

  it('refuses a compactAfterFiles that is not a whole number >= 1 or Infinity', async () => {
    for (const bad of [0, -1, 2.5, Number.NaN]) {
      await expect(
        openParquetOfflineStore({ path: tmp.fresh(), compactAfterFiles: bad }),
      ).rejects.toMatchObject({ code: 'FERRY_ARGUMENT_INVALID' });
    }
  });

  it('reports a failed background compaction, keeps the files as they were, and tries again after the next append', async () => {
    const root = tmp.fresh();
    const failures: string[] = [];
    const store = await openParquetOfflineStore({
      path: root,
      compactAfterFiles: 2,
      onCompactionError: (error, table) => failures.push(`${table}: ${error.code}`),
    });
    await store.append('t', events([{ id: 0, at: 0 }]));
    // A file DuckDB cannot read, named as the store names its files: the merge that takes it in fails.
    const corrupt = path.join(
      root,
      't',
      'part-1000000000000-00000000-0000-4000-8000-000000000000.parquet',
    );
    fs.writeFileSync(corrupt, 'not parquet');
    await store.append('t', events([{ id: 1, at: 1 }]));
    await store.compactionsSettled();
    expect(failures).toEqual(['t: FERRY_BACKEND_UNAVAILABLE']);
    expect(parquetIn(path.join(root, 't'))).toHaveLength(3);
    fs.rmSync(corrupt);
    expect(ids(await store.read('t'))).toEqual([0, 1]);
    await store.append('t', events([{ id: 2, at: 2 }]));
    await store.close();
    expect(failures).toHaveLength(1);
    expect(parquetIn(path.join(root, 't'))).toHaveLength(1);
    const reopened = await openParquetOfflineStore({ path: root });
    expect(ids(await reopened.read('t'))).toEqual([0, 1, 2]);
    await reopened.close();
  });
});

describe('ParquetOfflineStore.versionOfOthers', () => {
  const day = Date.UTC(2024, 5, 1);
  const at = (d: number, id: number): { id: number; at: number } => ({
    id,
    at: day + d * DAY + id,
  });

  it('stays the same through its own appends and merges, and moves with any other writer', async () => {
    const root = tmp.fresh();
    const mine = await openParquetOfflineStore({ path: root, compactAfterFiles: 2 });
    const other = await openParquetOfflineStore({ path: root, compactAfterFiles: Infinity });
    const since = day + DAY;
    // Files of an earlier process are others' too.
    await other.append('t', events([at(0, 1), at(1, 2)]), { timeColumn: 'at' });
    const start = await mine.versionOfOthers('t', since);
    expect(start).not.toBe(await mine.versionOfOthers('t', day));

    for (let id = 10; id < 20; id++)
      await mine.append('t', events([at(1, id), at(2, id)]), { timeColumn: 'at' });
    await mine.compactionsSettled();
    // Its merges took in the other's file of day 1: that file is gone, merged by this object.
    const merged = await mine.versionOfOthers('t', since);
    expect(merged).not.toBe(start);
    await mine.append('t', events([at(1, 30)]), { timeColumn: 'at' });
    expect(await mine.compact('t')).toMatchObject({ files: 3 });
    expect(await mine.versionOfOthers('t', since)).toBe(merged);

    // Another writer before `since` does not count; at or after it, it does.
    await other.append('t', events([at(0, 40)]), { timeColumn: 'at' });
    expect(await mine.versionOfOthers('t', since)).toBe(merged);
    await other.append('t', events([at(3, 41)]), { timeColumn: 'at' });
    const added = await mine.versionOfOthers('t', since);
    expect(added).not.toBe(merged);
    await mine.append('t', events([at(1, 42)]), { timeColumn: 'at' });
    expect(await mine.versionOfOthers('t', since)).toBe(added);
    // Another's compaction replaces this object's two files of day 1 by one of its own.
    await other.compact('t');
    const compacted = await mine.versionOfOthers('t', since);
    expect(compacted).not.toBe(added);
    // A drop, by another or by this object, and files removed under it.
    await other.dropTable('t');
    const dropped = await mine.versionOfOthers('t', since);
    expect(dropped).not.toBe(compacted);
    await mine.append('t', events([at(1, 50)]), { timeColumn: 'at' });
    expect(await mine.versionOfOthers('t', since)).toBe(dropped);
    await mine.dropTable('t');
    expect(await mine.versionOfOthers('t', since)).not.toBe(dropped);
    await Promise.all([mine.close(), other.close()]);
  });

  it('sees a file of its own removed by another process, even with its whole folder', async () => {
    const root = tmp.fresh();
    const store = await openParquetOfflineStore({ path: root });
    await store.append('t', events([at(0, 1)]), { timeColumn: 'at' });
    await store.append('t', events([at(1, 2)]), { timeColumn: 'at' });
    const before = await store.versionOfOthers('t', day);
    fs.rmSync(path.join(root, 't', 'date=2024-06-02'), { recursive: true });
    expect(await store.versionOfOthers('t', day)).not.toBe(before);
    await store.close();
  });

  it('writes a batch of one date as one file in its date folder, and of several dates one file each', async () => {
    const root = tmp.fresh();
    const store = await openParquetOfflineStore({ path: root });
    // The last millisecond of a day, and a time that rounds to the next day's first microsecond.
    const edge = day + DAY - 1;
    await store.append('t', events([at(0, 1), { id: 2, at: edge }]), { timeColumn: 'at' });
    await store.append('t', events([{ id: 3, at: edge + 0.9999999 }]), { timeColumn: 'at' });
    await store.append('t', events([at(2, 4), at(3, 5), at(2, 6)]), { timeColumn: 'at' });
    expect(filesUnder(path.join(root, 't')).map((f) => f.split('/')[0])).toEqual([
      'date=2024-06-01',
      'date=2024-06-02',
      'date=2024-06-03',
      'date=2024-06-04',
    ]);
    const read = tableToRows(await store.read('t'));
    expect(read.map((r) => r.id).sort()).toEqual([1, 2, 3, 4, 5, 6]);
    await store.close();
    expect(filesUnder(path.join(root, '.staging'))).toEqual([]);
  });
});
