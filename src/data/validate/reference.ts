/**
 * Reference profiles of `distribution` rules, and the population stability index computed from
 * bucket counts (the SQL path counts buckets in DuckDB; the rows path calls `psi` directly).
 *
 * A reference is a profile JSON file, as `ferry data profile --json` writes it (a TableProfile),
 * or `model:<model>[@alias|:version]`, the training profile a model version was registered with.
 * Files are resolved here; models need a registry, so the caller passes a resolver for them.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { ColumnProfile, TableProfile } from '../../core/profile.js';
import { FerryError } from '../../errors/index.js';

/** Finds the profile of `column` in the reference `reference` (a rule's `reference:` text). */
export type ResolveReference = (reference: string, column: string) => Promise<ColumnProfile>;

export const MODEL_PREFIX = 'model:';

/**
 * The column of a table profile, or a clear error naming the columns it has.
 * @example columnOf(profile, 'amount', 'ref.json')
 */
export function columnOf(profile: TableProfile, column: string, reference: string): ColumnProfile {
  const found = profile.columns[column];
  if (found === undefined) {
    throw new FerryError(
      'FERRY_COLUMN_UNKNOWN',
      `reference ${reference} has no profile of column '${column}'; it profiles: ${Object.keys(profile.columns).join(', ') || '(no columns)'}`,
    );
  }
  return found;
}

/**
 * A resolver reading profile JSON files relative to `baseDir` (each file read once), handing
 * `model:` references to `models` when given.
 * @example const resolve = fileReferences('/project', async (ref) => (await registry.resolve(ref)).profile);
 */
export function fileReferences(
  baseDir: string,
  models?: (model: string) => Promise<TableProfile>,
): ResolveReference {
  const cache = new Map<string, Promise<TableProfile>>();
  return async (reference, column) => {
    let profile = cache.get(reference);
    if (profile === undefined) {
      profile = reference.startsWith(MODEL_PREFIX)
        ? modelProfile(reference, models)
        : readProfileFile(path.resolve(baseDir, reference));
      cache.set(reference, profile);
    }
    return columnOf(await profile, column, reference);
  };
}

function modelProfile(
  reference: string,
  models: ((model: string) => Promise<TableProfile>) | undefined,
): Promise<TableProfile> {
  if (models === undefined) {
    throw new FerryError(
      'FERRY_ARGUMENT_INVALID',
      `distribution reference '${reference}' names a model, but no model registry was given to resolve it; validate through the CLI or pass resolveReference`,
    );
  }
  return models(reference.slice(MODEL_PREFIX.length));
}

/**
 * Reads a profile JSON file written by `ferry data profile --json`.
 * @example const profile = await readProfileFile('reference/transactions.json');
 */
export async function readProfileFile(file: string): Promise<TableProfile> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    throw new FerryError(
      'FERRY_DATA_UNREADABLE',
      `cannot read the reference profile ${file}; write one with \`ferry data profile <file> --json > ${path.basename(file)}\``,
      { cause },
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (cause) {
    throw new FerryError('FERRY_DATA_UNREADABLE', `${file} is not JSON; expected a profile`, {
      cause,
    });
  }
  if (
    typeof parsed !== 'object' ||
    parsed === null ||
    typeof (parsed as { rowCount?: unknown }).rowCount !== 'number' ||
    typeof (parsed as { columns?: unknown }).columns !== 'object'
  ) {
    throw new FerryError(
      'FERRY_DATA_UNREADABLE',
      `${file} is not a profile (expected { rowCount, columns } as \`ferry data profile --json\` writes)`,
    );
  }
  return parsed as TableProfile;
}

export { actualCounts, expectedCounts, psiFromCounts } from '../psi.js';
