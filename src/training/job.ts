/**
 * A training job: one run that trains the candidates on a table, registers the best as the next
 * version of a model with its metrics, signature, lineage and training-data profile, and records
 * everything in the run. The CLI, the quickstart and pipelines all train through here.
 */
import type { JsonObject } from '../core/json.js';
import type { Task } from '../core/model.js';
import { getColumn, type Table } from '../core/table.js';
import { profileTable } from '../data/profile.js';
import { FerryError } from '../errors/index.js';
import type { MetadataStore, Run } from '../metadata/metadata-store.js';
import type { ModelRegistry } from '../registry/registry.js';
import type { ModelVersion } from '../metadata/metadata-store.js';
import { FERRY_VERSION } from '../version.js';
import { trainModel, type TrainResult } from './train.js';

export interface TrainingJobOptions {
  readonly table: Table;
  readonly target: string;
  /** The model name to register under. */
  readonly model: string;
  readonly task?: Task;
  readonly seed?: number;
  /** Columns that are not features (ids, timestamps). */
  readonly drop?: readonly string[];
  /** Where the data came from: file and hash, feature vector, dataset. */
  readonly lineage?: JsonObject;
  readonly onProgress?: (message: string) => void;
}

export interface TrainingJobResult {
  readonly run: Run;
  readonly result: TrainResult;
  readonly version: ModelVersion;
  /** True when the new version became the model's champion. */
  readonly promoted: boolean;
}

/**
 * @example
 * const { version } = await runTrainingJob(ws.metadata, ws.registry, { table, target: 'is_fraud', model: 'fraud' });
 */
export async function runTrainingJob(
  metadata: MetadataStore,
  registry: ModelRegistry,
  options: TrainingJobOptions,
): Promise<TrainingJobResult> {
  const drop = new Set(options.drop ?? []);
  for (const name of drop) {
    if (!getColumn(options.table, name)) {
      throw new FerryError(
        'FERRY_COLUMN_UNKNOWN',
        `cannot drop column '${name}': it is not in the table; columns: ${options.table.columns.map((c) => c.name).join(', ')}`,
      );
    }
  }
  const table: Table = {
    columns: options.table.columns.filter((c) => !drop.has(c.name)),
    rowCount: options.table.rowCount,
  };
  const params: JsonObject = {
    target: options.target,
    task: options.task ?? null,
    seed: options.seed ?? 42,
    drop: [...drop],
    rows: table.rowCount,
    ferryVersion: FERRY_VERSION,
  };
  const run = await metadata.createRun({ kind: 'training', name: options.model, params });
  try {
    const result = await trainModel(table, {
      target: options.target,
      ...(options.task ? { task: options.task } : {}),
      seed: options.seed ?? 42,
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    });
    const profile = profileTable(table);
    const best = result.candidates.find((c) => c.name === result.best);
    const { version, promoted } = await registry.register({
      model: options.model,
      runtime: 'native',
      artifact: result.artifact,
      signature: result.signature,
      metrics: result.metrics,
      params: { algorithm: result.best, ...(best?.params ?? {}) },
      lineage: { run: run.id, ...(options.lineage ?? {}) },
      profile,
    });
    const finished = await metadata.updateRun(run.id, {
      status: 'succeeded',
      endedAt: Date.now(),
      metrics: result.metrics,
      outputs: {
        model: options.model,
        version: version.version,
        best: result.best,
        leaderboard: result.candidates.map((c) => ({
          name: c.name,
          params: c.params,
          metrics: c.metrics,
          seconds: c.seconds,
        })),
      },
    });
    return { run: finished, result, version, promoted };
  } catch (error) {
    await metadata.updateRun(run.id, {
      status: 'failed',
      endedAt: Date.now(),
      outputs: { error: error instanceof Error ? error.message : String(error) },
    });
    throw error;
  }
}
