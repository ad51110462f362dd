/**
 * The monitor of a model: its logged live traffic compared with the profile of the data it was
 * trained on, per feature (population stability index), plus what the traffic looked like.
 */
import type { Table } from '../core/table.js';
import { getColumn } from '../core/table.js';
import { FerryError } from '../errors/index.js';
import type { OfflineStore } from '../feature-store/offline/offline-store.js';
import type { ModelRegistry } from '../registry/registry.js';
import { driftReport } from './drift.js';
import { inferenceLogTable } from './inference-log.js';

export interface MonitorReport {
  readonly model: string;
  /** The version whose training profile is the reference. */
  readonly referenceVersion: number;
  readonly rows: number;
  readonly from: number | null;
  readonly to: number | null;
  /** Rows per model version seen in the traffic. */
  readonly versions: Readonly<Record<string, number>>;
  readonly features: ReturnType<typeof driftReport>;
  /** Columns whose drift status is `drift`. */
  readonly drifted: readonly string[];
}

/**
 * @example const report = await monitorModel(ws.registry, ws.offline, 'fraud', { since: Date.now() - 3_600_000 });
 */
export async function monitorModel(
  registry: ModelRegistry,
  offline: OfflineStore,
  model: string,
  options: { since?: number } = {},
): Promise<MonitorReport> {
  const reference = await registry.resolve(model);
  const table = inferenceLogTable(model);
  if (!(await offline.hasTable(table))) {
    throw new FerryError(
      'FERRY_MONITOR_NO_DATA',
      `no logged traffic for model '${model}' yet; send predictions through 'ferry serve' first`,
    );
  }
  const live = await offline.read(table, {
    timeColumn: '_ts',
    ...(options.since === undefined ? {} : { start: options.since }),
  });
  if (live.rowCount === 0) {
    throw new FerryError(
      'FERRY_MONITOR_NO_DATA',
      `no logged traffic for model '${model}' in the requested period`,
    );
  }
  const inputs = new Set(reference.signature.inputs.map((i) => i.name));
  const liveInputs: Table = {
    columns: live.columns.filter((c) => inputs.has(c.name)),
    rowCount: live.rowCount,
  };
  const referenceProfile = {
    rowCount: reference.profile.rowCount,
    columns: Object.fromEntries(
      Object.entries(reference.profile.columns).filter(([name]) => inputs.has(name)),
    ),
  };
  const features = driftReport(referenceProfile, liveInputs);
  const times = (getColumn(live, '_ts')?.values ?? []).filter(
    (v): v is number => typeof v === 'number',
  );
  const versions: Record<string, number> = {};
  for (const v of getColumn(live, '_model_version')?.values ?? []) {
    const key = String(v);
    versions[key] = (versions[key] ?? 0) + 1;
  }
  return {
    model,
    referenceVersion: reference.version,
    rows: live.rowCount,
    from: times.length ? Math.min(...times) : null,
    to: times.length ? Math.max(...times) : null,
    versions,
    features,
    drifted: features.filter((f) => f.status === 'drift').map((f) => f.column),
  };
}
