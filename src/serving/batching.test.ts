import { describe, expect, it } from 'vitest';
import type { ModelSignature, Prediction } from '../core/model.js';
import { tableFromRows, type ColumnSchema, type Row, type Table } from '../core/table.js';
import { FerryError } from '../errors/index.js';
import { fitLogistic } from '../training/algorithms/linear.js';
import { NATIVE_FORMAT, NATIVE_FORMAT_VERSION, NativePredictor } from '../training/native-model.js';
import { fit, transform } from '../training/preprocess.js';
import { createRng } from '../training/random.js';
import { TOY_SCHEMA, TOY_SIGNATURE } from '../testing/model-fixture.js';
import {
  batchObserver,
  batchPredictions,
  type BatchObserver,
  type PredictingModel,
} from './batching.js';
import { createServerMetrics } from './metrics.js';

/** The toy inputs (x, color) without the label. */
const INPUTS: ColumnSchema[] = TOY_SCHEMA.slice(0, 2);

/**
 * A three-class logistic model on the toy inputs: its probabilities are smooth in x, so every
 * distinct row gets distinct probabilities and a row swapped between requests would show.
 */
function fitThreeClassModel(): NativePredictor {
  const rand = createRng(7);
  const colors = ['red', 'green', 'blue'];
  const rows = Array.from({ length: 600 }, () => ({
    x: rand() * 3,
    color: colors[Math.floor(rand() * 3)] as string,
  }));
  const labels = Int32Array.from(rows, (r) =>
    Math.min(2, Math.floor(r.x + (r.color === 'red' ? 0.4 : 0))),
  );
  const train = tableFromRows(INPUTS, rows);
  const signature: ModelSignature = { ...TOY_SIGNATURE, classes: ['high', 'low', 'mid'] };
  const preprocess = fit(train, signature.inputs, { mode: 'linear' });
  return new NativePredictor({
    format: NATIVE_FORMAT,
    version: NATIVE_FORMAT_VERSION,
    signature,
    preprocess,
    model: fitLogistic(transform(preprocess, train), labels, 3),
  });
}

const MODEL = fitThreeClassModel();

/** A request of `n` rows no other request shares (its own seed). */
function request(n: number, seed: number): Table {
  const rand = createRng(1000 + seed);
  const colors = ['red', 'green', 'blue'];
  const rows: Row[] = Array.from({ length: n }, () => ({
    x: rand() * 3,
    color: colors[Math.floor(rand() * 3)] as string,
  }));
  return tableFromRows(INPUTS, rows);
}

/** The real model, recording the row count of every call; `fail` makes a call throw. */
function counted(
  model: PredictingModel = MODEL,
  fail?: (input: Table) => boolean,
): { model: PredictingModel; calls: number[] } {
  const calls: number[] = [];
  return {
    calls,
    model: {
      signature: model.signature,
      predict(input) {
        calls.push(input.rowCount);
        if (fail?.(input)) throw new Error(`model failed on a batch of ${input.rowCount} rows`);
        return model.predict(input);
      },
    },
  };
}

function recorder(): BatchObserver & {
  seen: { rows: number; requests: number; queueDelaySeconds: number }[];
} {
  const seen: { rows: number; requests: number; queueDelaySeconds: number }[] = [];
  return { seen, observe: (batch) => seen.push(batch) };
}

const sum = (values: readonly number[]): number => values.reduce((a, b) => a + b, 0);

describe('batchPredictions', () => {
  it.each([
    { kind: 'synchronous', wrap: (m: PredictingModel): PredictingModel => m },
    {
      kind: 'asynchronous',
      wrap: (m: PredictingModel): PredictingModel => ({
        signature: m.signature,
        predict: async (input) => m.predict(input),
      }),
    },
  ])(
    'answers many concurrent requests exactly as the $kind model alone',
    async ({ kind, wrap }) => {
      const { model, calls } = counted(wrap(MODEL));
      // 240 rows arrive in one synchronous burst: a synchronous model answers each full batch
      // before the next request comes, so the default bound (160 rows) holds; an asynchronous one
      // lets rows wait while its batch runs, so the bound must take the whole burst.
      const batched = batchPredictions(model, {
        maxBatchRows: 16,
        maxWaitUs: 0,
        ...(kind === 'asynchronous' ? { maxQueuedRows: 240 } : {}),
      });
      const requests = Array.from({ length: 60 }, (_, i) => request((i % 7) + 1, i));
      const answers = await Promise.all(requests.map((r) => batched.predict(r)));

      answers.forEach((answer, i) => {
        const alone = MODEL.predict(requests[i] as Table);
        expect(answer).toEqual(alone);
        expect(answer.proba).toHaveLength(3 * (requests[i] as Table).rowCount);
      });
      // The inputs are distinct enough that a swapped row would change an answer.
      const firstProba = new Set(
        answers.flatMap((a) => [...(a.proba ?? [])].filter((_, j) => j % 3 === 0)),
      );
      expect(firstProba.size).toBe(sum(requests.map((r) => r.rowCount)));
      expect(new Set(answers.flatMap((a) => a.predict)).size).toBe(3);
      // Every request holds its own probability buffer.
      expect(new Set(answers.map((a) => a.proba?.buffer)).size).toBe(answers.length);
      // And the model saw few, bounded calls covering every row once.
      expect(calls.length).toBeLessThan(requests.length / 2);
      expect(Math.max(...calls)).toBeLessThanOrEqual(16);
      expect(sum(calls)).toBe(sum(requests.map((r) => r.rowCount)));
    },
  );

  it('merges requests queued in the same turn into one call, whatever the wait', async () => {
    for (const maxWaitUs of [0, 300, 2000]) {
      const { model, calls } = counted();
      const batched = batchPredictions(model, { maxBatchRows: 64, maxWaitUs });
      const requests = [1, 3, 2, 5, 1].map((n, i) => request(n, i));
      const answers = await Promise.all(requests.map((r) => batched.predict(r)));
      expect(calls).toEqual([12]);
      answers.forEach((a, i) => expect(a).toEqual(MODEL.predict(requests[i] as Table)));
    }
  });

  it('waits for later turns only as long as maxWaitUs says', async () => {
    const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
    // A zero wait sends what one turn queued; a request of the next turn goes in another batch.
    const zero = counted();
    const eager = batchPredictions(zero.model, { maxBatchRows: 64, maxWaitUs: 0 });
    const first = eager.predict(request(2, 1));
    await nextTurn();
    const second = eager.predict(request(3, 2));
    await Promise.all([first, second]);
    expect(zero.calls).toEqual([2, 3]);
    // A long wait gathers requests of several turns, until the batch is full.
    const long = counted();
    const patient = batchPredictions(long.model, { maxBatchRows: 6, maxWaitUs: 60_000_000 });
    const requests = [request(2, 1), request(3, 2), request(1, 3)];
    const pending: Promise<Prediction>[] = [];
    for (const r of requests) {
      pending.push(patient.predict(r));
      await nextTurn();
    }
    const answers = await Promise.all(pending);
    expect(long.calls).toEqual([6]);
    answers.forEach((a, i) => expect(a).toEqual(MODEL.predict(requests[i] as Table)));
  });

  it('sends a batch as soon as it is full, in arrival order, without waiting out the wait', async () => {
    const { model, calls } = counted();
    // A minute of wait: the test would time out if full batches waited for it.
    const batched = batchPredictions(model, { maxBatchRows: 4, maxWaitUs: 60_000_000 });
    const requests = [1, 1, 1, 1, 2, 2, 3, 1].map((n, i) => request(n, i));
    const answers = await Promise.all(requests.map((r) => batched.predict(r)));
    // 1+1+1+1 | 2+2 | 3+1: first come, first served, never over four rows.
    expect(calls).toEqual([4, 4, 4]);
    answers.forEach((a, i) => expect(a).toEqual(MODEL.predict(requests[i] as Table)));
  });

  it('predicts a request larger than a batch alone, and lets the others merge', async () => {
    const { model, calls } = counted();
    const batched = batchPredictions(model, { maxBatchRows: 4, maxWaitUs: 0 });
    const requests = [request(1, 1), request(10, 2), request(2, 3)];
    const answers = await Promise.all(requests.map((r) => batched.predict(r)));
    expect(calls).toEqual([10, 3]);
    answers.forEach((a, i) => expect(a).toEqual(MODEL.predict(requests[i] as Table)));
  });

  it('refuses a malformed request alone with FERRY_INPUT_SHAPE naming the column', async () => {
    const { model, calls } = counted();
    const batched = batchPredictions(model, { maxBatchRows: 32, maxWaitUs: 0, name: 'toy:1' });
    // Columns the model does not take are ignored, as by the model itself.
    const withLabel = tableFromRows(TOY_SCHEMA, [
      { x: 0.4, color: 'red', label: 'ignored' },
      { x: 2.9, color: 'blue', label: 'ignored' },
      { x: 1.3, color: 'green', label: 'ignored' },
    ]);
    const good = [request(2, 1), withLabel];
    const base = request(2, 3);
    const wrongType: Table = {
      rowCount: 2,
      columns: [base.columns[0]!, { name: 'color', type: 'int', values: [1, 2] }],
    };
    const tooShort: Table = {
      rowCount: 2,
      columns: [{ name: 'x', type: 'float', values: [0.5] }, base.columns[1]!],
    };
    const missing: Table = { rowCount: 2, columns: [base.columns[0]!] };
    const pending = [
      batched.predict(good[0] as Table),
      batched.predict(wrongType),
      batched.predict(tooShort),
      batched.predict(missing),
      batched.predict(good[1] as Table),
    ];
    const settled = await Promise.allSettled(pending);

    const reasons = settled.map((s) => (s.status === 'rejected' ? (s.reason as FerryError) : null));
    expect(reasons[1]).toMatchObject({ code: 'FERRY_INPUT_SHAPE' });
    expect(reasons[1]?.message).toBe(
      "input 'color' to model 'toy:1' is a int column of 2 values; expected one string column 'color' of 2 values (one per row)",
    );
    expect(reasons[2]).toMatchObject({ code: 'FERRY_INPUT_SHAPE', details: { input: 'x' } });
    expect(reasons[2]?.message).toContain('of 1 values');
    expect(reasons[3]).toMatchObject({ code: 'FERRY_INPUT_SHAPE' });
    expect(reasons[3]?.message).toContain("input 'color' to model 'toy:1' is missing");
    expect(reasons[3]?.status).toBe(400);
    // The well-formed requests shared one call and got their own answers.
    expect(calls).toEqual([5]);
    expect(settled[0]).toEqual({ status: 'fulfilled', value: MODEL.predict(good[0] as Table) });
    expect(settled[4]).toEqual({ status: 'fulfilled', value: MODEL.predict(good[1] as Table) });
  });

  it('retries each request of a failed batch alone, so a bad request fails only itself', async () => {
    // The model throws on any call that contains x = -1 (a valid shape the model cannot take).
    const poisoned = (t: Table): boolean => t.columns[0]!.values.includes(-1);
    const { model, calls } = counted(MODEL, poisoned);
    const batched = batchPredictions(model, { maxBatchRows: 32, maxWaitUs: 0 });
    const bad = tableFromRows(INPUTS, [
      { x: 0.2, color: 'red' },
      { x: -1, color: 'blue' },
    ]);
    const requests = [request(3, 1), bad, request(2, 2)];
    const settled = await Promise.allSettled(requests.map((r) => batched.predict(r)));

    expect(calls).toEqual([7, 3, 2, 2]);
    expect(settled[0]).toEqual({ status: 'fulfilled', value: MODEL.predict(requests[0] as Table) });
    expect(settled[2]).toEqual({ status: 'fulfilled', value: MODEL.predict(requests[2] as Table) });
    expect(settled[1]).toMatchObject({
      status: 'rejected',
      reason: { message: 'model failed on a batch of 2 rows' },
    });
  });

  it('falls back per request when the model answers a batch with the wrong number of rows', async () => {
    const calls: number[] = [];
    const batched = batchPredictions(
      {
        signature: MODEL.signature,
        predict(input) {
          calls.push(input.rowCount);
          const answer = MODEL.predict(input);
          // A broken model that drops the last row of anything larger than one request.
          return input.rowCount > 3
            ? { predict: answer.predict.slice(0, -1), proba: answer.proba?.slice(0, -3) }
            : answer;
        },
      },
      { maxBatchRows: 32, maxWaitUs: 0 },
    );
    const requests = [request(3, 1), request(2, 2)];
    const answers = await Promise.all(requests.map((r) => batched.predict(r)));
    expect(calls).toEqual([5, 3, 2]);
    answers.forEach((a, i) => expect(a).toEqual(MODEL.predict(requests[i] as Table)));
  });

  it('refuses rows beyond maxQueuedRows at once with FERRY_OVERLOADED, and serves the rest', async () => {
    // A model that holds its answers until released, so batches pile up behind the running one.
    const releases: (() => void)[] = [];
    const calls: number[] = [];
    const slow: PredictingModel = {
      signature: MODEL.signature,
      predict(input) {
        calls.push(input.rowCount);
        return new Promise<Prediction>((resolve) =>
          releases.push(() => resolve(MODEL.predict(input))),
        );
      },
    };
    const batched = batchPredictions(slow, {
      maxBatchRows: 2,
      maxWaitUs: 0,
      maxQueuedRows: 4,
      name: 'fraud:3',
    });
    const requests = Array.from({ length: 7 }, (_, i) => request(1, i));
    // The first two fill a batch that starts running; the next four wait; the seventh is refused.
    const pending = requests.map((r) => batched.predict(r));
    const refused = await pending[6]!.catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(FerryError);
    expect(refused).toMatchObject({ code: 'FERRY_OVERLOADED', status: 503 });
    expect((refused as FerryError).message).toBe(
      "the batch queue of model 'fraud:3' is full (4 rows waiting, limit 4); retry with backoff, or raise the model's max queued rows (or add workers)",
    );
    expect(calls).toEqual([2]);
    // Releasing the model lets every admitted request through, two rows at a time.
    for (let release = releases.shift(); release; release = releases.shift()) {
      release();
      // Lets the finished batch settle and the next one start (it calls the model at once).
      await new Promise((resolve) => setImmediate(resolve));
    }
    const answers = await Promise.all(pending.slice(0, 6));
    expect(calls).toEqual([2, 2, 2]);
    answers.forEach((a, i) => expect(a).toEqual(MODEL.predict(requests[i] as Table)));
    // Once drained, the queue admits again.
    const again = batched.predict(request(1, 99));
    await new Promise((resolve) => setImmediate(resolve));
    releases.shift()?.();
    expect(await again).toEqual(MODEL.predict(request(1, 99)));
  });

  it('reports one observation per batch sent: rows, requests and the queue delay', async () => {
    const observer = recorder();
    const batched = batchPredictions(MODEL, { maxBatchRows: 8, maxWaitUs: 0 }, observer);
    await Promise.all([2, 3, 1, 5, 20].map((n, i) => batched.predict(request(n, i))));
    // 2+3+1 make six and the five would not fit: the six go at once; the twenty-row request is
    // a batch of its own, also sent at once; the five go when the first batch is done.
    expect(observer.seen.map(({ rows, requests }) => ({ rows, requests }))).toEqual([
      { rows: 6, requests: 3 },
      { rows: 20, requests: 1 },
      { rows: 5, requests: 1 },
    ]);
    for (const { queueDelaySeconds } of observer.seen) {
      expect(queueDelaySeconds).toBeGreaterThanOrEqual(0);
      expect(Number.isFinite(queueDelaySeconds)).toBe(true);
    }
  });

  it('feeds the server histograms ferry_batch_rows and ferry_batch_queue_delay_seconds', async () => {
    const metrics = createServerMetrics({ defaultMetrics: false });
    const batched = batchPredictions(
      MODEL,
      { maxBatchRows: 16, maxWaitUs: 0 },
      batchObserver(metrics, 'toy', '3'),
    );
    await Promise.all([2, 3, 1].map((n, i) => batched.predict(request(n, i))));
    const text = await metrics.registry.metrics();
    expect(text).toContain('ferry_batch_rows_sum{model="toy",version="3"} 6');
    expect(text).toContain('ferry_batch_rows_count{model="toy",version="3"} 1');
    expect(text).toContain('ferry_batch_rows_bucket{le="4",model="toy",version="3"} 0');
    expect(text).toContain('ferry_batch_rows_bucket{le="8",model="toy",version="3"} 1');
    expect(text).toContain('ferry_batch_queue_delay_seconds_count{model="toy",version="3"} 1');
  });

  it('passes requests straight through when maxBatchRows is 1, still shape-checked', async () => {
    const { model, calls } = counted();
    const observer = recorder();
    const batched = batchPredictions(model, { maxBatchRows: 1, maxWaitUs: 1000 }, observer);
    const requests = [request(2, 1), request(1, 2), request(3, 3)];
    const answers = await Promise.all(requests.map((r) => batched.predict(r)));
    expect(calls).toEqual([2, 1, 3]);
    answers.forEach((a, i) => expect(a).toEqual(MODEL.predict(requests[i] as Table)));
    expect(observer.seen.map((o) => o.requests)).toEqual([1, 1, 1]);
    await expect(
      batched.predict({ rowCount: 1, columns: [request(1, 4).columns[0]!] }),
    ).rejects.toMatchObject({ code: 'FERRY_INPUT_SHAPE' });
  });

  it('checks columns in signature order as strictly as columns in any other order', async () => {
    const { model, calls } = counted();
    const batched = batchPredictions(model, { maxBatchRows: 1, maxWaitUs: 0, name: 'toy:1' });
    const base = request(2, 5);
    const [x, color] = base.columns as [Table['columns'][number], Table['columns'][number]];
    // Same answer whether the columns come in the signature's order or not.
    const reordered: Table = { rowCount: 2, columns: [color, x] };
    expect(await batched.predict(reordered)).toEqual(await batched.predict(base));
    // In order but of the wrong type, or given twice: refused with the message of the full check.
    const wrongType: Table = {
      rowCount: 2,
      columns: [x, { name: 'color', type: 'int', values: [1, 2] }],
    };
    await expect(batched.predict(wrongType)).rejects.toThrow(
      "input 'color' to model 'toy:1' is a int column of 2 values; expected one string column 'color' of 2 values (one per row)",
    );
    const twice: Table = { rowCount: 2, columns: [x, color, color] };
    await expect(batched.predict(twice)).rejects.toThrow(
      "input 'color' to model 'toy:1' appears 2 times",
    );
    expect(calls).toEqual([2, 2]);
  });

  it('rejects options that cannot work with FERRY_ARGUMENT_INVALID', () => {
    const invalid = expect.objectContaining({ code: 'FERRY_ARGUMENT_INVALID' });
    expect(() => batchPredictions(MODEL, { maxBatchRows: 0, maxWaitUs: 0 })).toThrow(invalid);
    expect(() => batchPredictions(MODEL, { maxBatchRows: 8, maxWaitUs: -1 })).toThrow(invalid);
    expect(() =>
      batchPredictions(MODEL, { maxBatchRows: 8, maxWaitUs: 0, maxQueuedRows: 4 }),
    ).toThrow(invalid);
  });
});
