/**
 * The feature catalog on the real SQLite metadata store and the embedded feature stores:
 * versions follow definitions (and only them), ingestions are recorded with a profile (stream
 * batches throttled), training sets are registered as datasets, and lineage answers what feeds
 * what.
 */
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseProjectSpec } from '../config/load.js';
import type { ProjectSpec } from '../config/schema.js';
import { tableFromRows, type Row, type Table } from '../core/table.js';
import type { MetadataStore } from '../metadata/metadata-store.js';
import { openSqliteMetadataStore } from '../metadata/sqlite.js';
import {
  openFeatureFixture,
  TX_EVENT_SCHEMA,
  type FeatureHarness,
} from '../testing/feature-fixture.js';
import { tempDirs } from '../testing/temp.js';
import {
  DATASET_KIND,
  FEATURE_SET_KIND,
  FEATURE_VECTOR_KIND,
  FeatureCatalog,
  INGESTION_KIND,
} from './catalog.js';
import type { IngestedEvent, IngestResult } from './feature-store.js';

const MIN = 60_000;
const T0 = Date.UTC(2026, 9, 1);

const BASE = {
  entities: [{ name: 'card', keys: ['card_id'] }],
  validations: [
    {
      name: 'tx_rules',
      policy: 'quarantine',
      rules: [{ rule: 'range', column: 'amount', min: 0 }],
    },
  ],
  feature_sets: [
    {
      name: 'tx',
      entity: 'card',
      timestamp: 'ts',
      owner: 'risk',
      description: 'card transactions',
      tags: ['pii:none'],
      source: { type: 'csv', path: 'tx.csv' },
      validation: 'tx_rules',
      features: [
        { name: 'amount', type: 'float' },
        { name: 'country', type: 'string' },
      ],
      aggregations: [{ column: 'amount', ops: ['sum', 'count'], windows: ['1h'] }],
      ttl: '7d',
    },
    {
      name: 'profile',
      entity: 'card',
      timestamp: 'ts',
      features: [{ name: 'age', type: 'int' }],
    },
  ],
  feature_vectors: [
    {
      name: 'fraud',
      owner: 'risk',
      features: ['tx.amount', 'tx.amount_sum_1h', { feature: 'profile.age', alias: 'card_age' }],
      label: { source: { type: 'csv', path: 'labels.csv' }, column: 'is_fraud', timestamp: 'ts' },
    },
    { name: 'ages', features: ['profile.*'] },
  ],
};

type Raw = typeof BASE;

function specOf(edit: (raw: Raw) => void = () => undefined): ProjectSpec {
  const raw = structuredClone(BASE) as Raw;
  edit(raw);
  return parseProjectSpec(raw, 'test');
}

const tmp = tempDirs();
const opened: { close(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((s) => s.close()));
});

async function metadataStore(): Promise<MetadataStore> {
  const metadata = await openSqliteMetadataStore({ path: path.join(tmp.fresh(), 'metadata.db') });
  opened.push(metadata);
  return metadata;
}

async function featureStore(spec: ProjectSpec, catalog: FeatureCatalog): Promise<FeatureHarness> {
  const h = await openFeatureFixture({ dir: tmp.fresh(), spec, hooks: catalog.hooks() });
  opened.push(h.offline, h.online);
  return h;
}

/** A catalog on a fresh metadata store, synced with the base spec, and a feature store that reports to it. */
async function cataloguedStore(): Promise<
  FeatureHarness & { metadata: MetadataStore; catalog: FeatureCatalog }
> {
  const metadata = await metadataStore();
  const catalog = new FeatureCatalog(metadata);
  const spec = specOf();
  await catalog.sync(spec);
  return { ...(await featureStore(spec, catalog)), metadata, catalog };
}

function txRows(rows: { card: string; at: number; amount: number; country?: string }[]): Table {
  return tableFromRows(
    [
      { name: 'card_id', type: 'string' },
      { name: 'ts', type: 'timestamp' },
      { name: 'amount', type: 'float' },
      { name: 'country', type: 'string' },
    ],
    rows.map((r) => ({ card_id: r.card, ts: r.at, amount: r.amount, country: r.country ?? 'FR' })),
  );
}

describe('FeatureCatalog versions', () => {
  it('bumps a version when the definition changes, and not otherwise', async () => {
    const metadata = await metadataStore();
    const catalog = new FeatureCatalog(metadata);
    const first = await catalog.sync(specOf());
    expect(first.map((c) => `${c.kind}/${c.name}@${c.version}:${c.change}`).sort()).toEqual([
      'feature_set/profile@1:created',
      'feature_set/tx@1:created',
      'feature_vector/ages@1:created',
      'feature_vector/fraud@1:created',
    ]);
    // The same spec again: nothing stored.
    expect(await catalog.sync(specOf())).toEqual([]);
    expect((await metadata.getDocument(FEATURE_SET_KIND, 'tx'))?.version).toBe(1);

    // Owner, description and tags only: a new revision of the same version.
    const governance = await catalog.sync(
      specOf((r) => {
        const tx = r.feature_sets[0] as Raw['feature_sets'][0];
        tx.owner = 'fraud-team';
        tx.tags = ['pii:none', 'tier:1'];
      }),
    );
    expect(governance).toEqual([
      { kind: FEATURE_SET_KIND, name: 'tx', change: 'governance', version: 1 },
    ]);
    const tx1 = await catalog.version(FEATURE_SET_KIND, 'tx');
    expect(tx1).toMatchObject({ version: 1, revision: 2, owner: 'fraud-team' });
    expect(tx1?.tags).toEqual(['pii:none', 'tier:1']);

    // A new window: tx v2, and so fraud v2 (it uses tx); ages does not use tx and stays at 1.
    const windowed = specOf((r) => {
      const tx = r.feature_sets[0] as Raw['feature_sets'][0];
      tx.owner = 'fraud-team';
      tx.tags = ['pii:none', 'tier:1'];
      (tx.aggregations?.[0] as { windows: string[] }).windows = ['1h', '1d'];
    });
    const changes = await catalog.sync(windowed);
    expect(changes.map((c) => `${c.kind}/${c.name}@${c.version}:${c.change}`).sort()).toEqual([
      'feature_set/tx@2:definition',
      'feature_vector/fraud@2:definition',
    ]);
    // The online store pruned events beyond 1h: the change says to rebuild it.
    expect(changes.find((c) => c.name === 'tx')?.notice).toMatch(
      /grew from 1h to 1d.*ferry materialize tx/,
    );
    expect(changes.find((c) => c.name === 'fraud')?.notice).toBeUndefined();
    expect(await catalog.sync(windowed)).toEqual([]);

    // Older versions stay readable as they were.
    const old = await catalog.version(FEATURE_SET_KIND, 'tx', 1);
    expect(old?.definition.aggregations).toEqual([
      { column: 'amount', ops: ['sum', 'count'], windows: ['1h'] },
    ]);
    expect(
      (await catalog.version(FEATURE_VECTOR_KIND, 'fraud', 1))?.definition.feature_sets,
    ).toEqual({ tx: 1, profile: 1 });
    expect(
      (await catalog.version(FEATURE_VECTOR_KIND, 'fraud', 2))?.definition.feature_sets,
    ).toEqual({ tx: 2, profile: 1 });
    expect(await catalog.version(FEATURE_SET_KIND, 'tx', 9)).toBeUndefined();
    const history = await catalog.history(FEATURE_SET_KIND, 'tx');
    expect(history.map((h) => [h.revision, h.version, h.change])).toEqual([
      [1, 1, 'created'],
      [2, 1, 'governance'],
      [3, 2, 'definition'],
    ]);
  });

  it('counts as definition the named rule set, the entity keys, the ttl and the aliases', async () => {
    const catalog = new FeatureCatalog(await metadataStore());
    await catalog.sync(specOf());
    // Each sync keeps the earlier changes and adds one more.
    const changes: ((r: Raw) => void)[] = [
      (r) => {
        (r.validations[0]?.rules[0] as { min: number }).min = 1;
      },
      (r) => {
        (r.feature_sets[0] as { ttl: string }).ttl = '1d';
      },
      (r) => {
        (r.feature_vectors[0] as { features: unknown[] }).features[2] = {
          feature: 'profile.age',
          alias: 'age_of_card',
        };
      },
      (r) => {
        (r.entities[0] as { keys: string[] }).keys = ['card_number'];
      },
    ];
    const firstChanges = (n: number): ProjectSpec =>
      specOf((r) => changes.slice(0, n).forEach((change) => change(r)));
    const rules = await catalog.sync(firstChanges(1));
    expect(rules.map((c) => `${c.name}@${c.version}`).sort()).toEqual(['fraud@2', 'tx@2']);
    const ttl = await catalog.sync(firstChanges(2));
    expect(ttl.map((c) => `${c.name}@${c.version}`).sort()).toEqual(['fraud@3', 'tx@3']);
    const alias = await catalog.sync(firstChanges(3));
    expect(alias.map((c) => `${c.name}@${c.version}`)).toEqual(['fraud@4']);
    const keys = await catalog.sync(firstChanges(4));
    expect(keys.map((c) => `${c.name}@${c.version}`).sort()).toEqual([
      'ages@2',
      'fraud@5',
      'profile@2',
      'tx@4',
    ]);
  });
});

describe('FeatureCatalog ingestion records', () => {
  it('records each batch ingestion with its counts, profile and set version', async () => {
    const { catalog, store } = await cataloguedStore();
    const rows = txRows([
      { card: 'a', at: T0, amount: 10 },
      { card: 'a', at: T0 + MIN, amount: 30, country: 'DE' },
      { card: 'b', at: T0 + 2 * MIN, amount: -5 },
      { card: 'b', at: T0 + 3 * MIN, amount: 20 },
    ]);
    await store.ingest('tx', { table: rows });
    await store.ingest('tx', { table: rows });

    const [second, first] = await catalog.ingestions('tx');
    expect(first).toMatchObject({
      feature_set: 'tx',
      feature_set_version: 1,
      mode: 'batch',
      origins: ['the given table'],
      batches: 1,
      read: 4,
      quarantined: 1,
      quarantined_by_rule: { 'range(amount)': 1 },
      duplicates: 0,
      written: 3,
      event_time: { min: T0, max: T0 + 3 * MIN },
      profiled_rows: 3,
      revision: 1,
    });
    expect(first?.profile.rowCount).toBe(3);
    expect(Object.keys(first?.profile.columns ?? {})).toEqual(['amount', 'country']);
    expect(first?.profile.columns.amount).toMatchObject({ kind: 'numeric', min: 10, max: 30 });
    // Re-ingesting the same rows stores nothing new, and says so.
    expect(second).toMatchObject({
      revision: 2,
      read: 4,
      written: 0,
      duplicates: 3,
      event_time: null,
    });
    expect((await catalog.lastIngestions()).get('tx')?.revision).toBe(2);
  });

  it('throttles stream batches to one record per interval, with the counts summed', async () => {
    const metadata = await metadataStore();
    let now = T0;
    const catalog = new FeatureCatalog(metadata, { throttleMs: 60_000, now: () => now });
    await catalog.sync(specOf());
    const batch = (amounts: number[], origin = 'stream'): IngestedEvent => {
      const rows = tableFromRows(
        TX_EVENT_SCHEMA,
        amounts.map((amount, i): Row => ({
          card_id: 'c',
          ts: now + i,
          event_id: '',
          amount,
          country: 'FR',
        })),
      );
      const result: IngestResult = {
        read: amounts.length + 1,
        filtered: 0,
        quarantined: { range: 1 },
        duplicates: 0,
        written: amounts.length,
        rejected: [],
        validation: null,
      };
      return {
        featureSet: 'tx',
        origin,
        mode: 'stream',
        result,
        rows,
        keyColumn: 'card_id',
        timestampColumn: 'ts',
      };
    };
    const records = async () => (await catalog.ingestions('tx', 100)).reverse();

    await catalog.recordIngestion(batch([1, 2]));
    expect(await records()).toHaveLength(1); // the first after a quiet interval: at once
    for (let i = 0; i < 5; i++) {
      now += 5_000;
      await catalog.recordIngestion(batch([10 * i], `stream ${i % 2}`));
    }
    expect(await records()).toHaveLength(1); // the next ones wait
    await catalog.flush();
    const [, accumulated] = await records();
    expect(accumulated).toMatchObject({
      mode: 'stream',
      batches: 5,
      read: 10,
      written: 5,
      quarantined: 5,
      quarantined_by_rule: { range: 5 },
      origins: ['stream 0', 'stream 1'],
      started_at: T0 + 5_000,
      ended_at: T0 + 25_000,
      profiled_rows: 5,
    });
    expect(accumulated?.profile.columns.amount).toMatchObject({ min: 0, max: 40, count: 5 });

    // A minute after the last record, the next batch is recorded at once again.
    now += 61_000;
    await catalog.recordIngestion(batch([7]));
    expect(await records()).toHaveLength(3);
    // A batch ingestion is never held back, and flushes a pending stream record first.
    now += 1_000;
    await catalog.recordIngestion(batch([8]));
    await catalog.recordIngestion({ ...batch([9]), mode: 'batch', origin: 'file.csv' });
    const all = await records();
    expect(all.map((r) => [r.mode, r.batches, r.written])).toEqual([
      ['stream', 1, 2],
      ['stream', 5, 5],
      ['stream', 1, 1],
      ['stream', 1, 1],
      ['batch', 1, 1],
    ]);
    await catalog.close();
  });
});

describe('FeatureCatalog datasets and lineage', () => {
  it('registers training sets with the label hash and answers lineage', async () => {
    const { metadata, catalog, dir, store } = await cataloguedStore();
    await store.ingest('tx', {
      table: txRows([
        { card: 'a', at: T0, amount: 10 },
        { card: 'b', at: T0 + MIN, amount: 20 },
      ]),
    });
    const labels = path.join(dir, 'labels.csv');
    writeFileSync(
      labels,
      `card_id,ts,is_fraud\na,${new Date(T0 + 5 * MIN).toISOString()},1\nb,${new Date(T0 + 6 * MIN).toISOString()},0\n`,
    );
    const out = path.join(dir, 'train.parquet');
    const built = await store.buildDataset('fraud', { out });
    expect(built.table.rowCount).toBe(2);
    const id = built.dataset as string;
    expect(id).toMatch(/^fraud-\d{8}T\d{6}-[0-9a-f]{6}$/);
    const record = await catalog.dataset(id);
    expect(record).toMatchObject({
      id,
      vector: 'fraud',
      vector_version: 1,
      feature_sets: [
        { name: 'tx', version: 1 },
        { name: 'profile', version: 1 },
      ],
      labels: {
        source: labels,
        sha256: createHash('sha256').update(readFileSync(labels)).digest('hex'),
      },
      rows: 2,
      out,
      profiled_rows: 2,
    });
    expect(record?.columns.map((c) => c.name)).toEqual([
      'card_id',
      'ts',
      'amount',
      'amount_sum_1h',
      'card_age',
      'is_fraud',
    ]);
    expect(record?.profile.columns.amount).toMatchObject({ min: 10, max: 20 });
    // buildTrainingSet registers too, and a given table has no hash.
    const given = tableFromRows(
      [
        { name: 'card_id', type: 'string' },
        { name: 'ts', type: 'timestamp' },
        { name: 'is_fraud', type: 'int' },
      ],
      [{ card_id: 'a', ts: T0 + 9 * MIN, is_fraud: 0 }],
    );
    await store.buildTrainingSet('fraud', { table: given });
    const datasets = await catalog.datasets();
    expect(datasets).toHaveLength(2);
    expect(datasets[1]?.labels).toEqual({ source: 'the given label table', sha256: null });
    expect((await metadata.listDocuments(DATASET_KIND)).length).toBe(2);

    // A model trained on the dataset records vector, version and dataset in its lineage.
    await metadata.registerModelVersion({
      model: 'fraud_model',
      runtime: 'native',
      artifactKey: 'k',
      sha256: '0'.repeat(64),
      sizeBytes: 1,
      signature: { task: 'classification', target: 'is_fraud', inputs: [], classes: [0, 1] },
      metrics: {},
      params: {},
      lineage: { run: 'r1', vector: 'fraud', vector_version: 1, dataset: id },
      profile: { rowCount: 0, columns: {} },
    });

    const ofSet = await catalog.lineage('feature_set', 'tx');
    expect(ofSet.sources).toEqual([{ role: 'events', of: 'tx', path: 'tx.csv', sha256: null }]);
    expect(ofSet.feature_vectors).toEqual([{ name: 'fraud', version: 1 }]);
    expect(ofSet.datasets.map((d) => d.id).sort()).toEqual(datasets.map((d) => d.id).sort());
    expect(ofSet.models).toEqual([
      { model: 'fraud_model', version: 1, vector: 'fraud', vector_version: 1, dataset: id },
    ]);
    // `ages` uses profile only: nothing of tx flows into it.
    const ofAges = await catalog.lineage('feature_vector', 'ages');
    expect(ofAges.feature_sets).toEqual([{ name: 'profile', version: 1 }]);
    expect(ofAges.datasets).toEqual([]);
    expect(ofAges.models).toEqual([]);

    const ofModel = await catalog.lineage('model', 'fraud_model');
    expect(ofModel.feature_sets.map((s) => s.name)).toEqual(['profile', 'tx']);
    expect(ofModel.feature_vectors).toEqual([{ name: 'fraud', version: 1 }]);
    expect(ofModel.datasets.map((d) => d.id)).toEqual([id]);
    expect(ofModel.sources).toContainEqual({
      role: 'labels',
      of: id,
      path: labels,
      sha256: record?.labels.sha256,
    });
    const ofDataset = await catalog.lineage('dataset', id);
    expect(ofDataset.models.map((m) => m.model)).toEqual(['fraud_model']);
    expect(ofDataset.feature_vectors).toEqual([{ name: 'fraud', version: 1 }]);

    await expect(catalog.lineage('feature_set', 'nope')).rejects.toMatchObject({
      code: 'FERRY_FEATURE_SET_UNKNOWN',
    });
    await expect(catalog.lineage('model', 'nope')).rejects.toMatchObject({
      code: 'FERRY_MODEL_NOT_FOUND',
    });
    expect(await metadata.getDocument(INGESTION_KIND, 'tx')).toBeDefined();
  });
});
