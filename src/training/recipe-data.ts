/**
 * Training data from a preparation recipe of ferry.yaml: runs the recipe (`runRecipe`, with its
 * validation and quarantine) into a scratch folder, reads its prepared parts back as Tables, and
 * reads the raw columns a model takes from the recipe's source, for the model's reference
 * profile. The user's own prepared output (`ferry data prep`) is left alone.
 */
import { createHash } from 'node:crypto';
import { createReadStream, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { DataSourceSpec } from '../config/data-schema.js';
import type { ProjectSpec } from '../config/schema.js';
import type { ModelInput } from '../core/model.js';
import type { TableProfile } from '../core/profile.js';
import type { Table } from '../core/table.js';
import { quoteIdent, resultToTable, withDuckDB } from '../data/duckdb.js';
import {
  loadFittedRecipe,
  runRecipe,
  type FittedRecipe,
  type PrepReport,
} from '../data/prep/index.js';
import { ROW } from '../data/prep/relation.js';
import { profileTable } from '../data/profile.js';
import { formatOf, readTable } from '../data/read.js';
import { openSource } from '../data/source.js';
import type { ResolveReference } from '../data/validate/index.js';
import type { OfflineStore } from '../feature-store/offline/offline-store.js';

export interface RecipeDataOptions {
  /** A file that replaces the recipe source's file (its format from its extension). */
  readonly data?: string;
  readonly onProgress?: (message: string) => void;
  /** Where rows set aside by a `quarantine` rule set go. */
  readonly quarantine?: OfflineStore;
  /** Resolves `model:` references of distribution rules. */
  readonly resolveReference?: ResolveReference;
}

export interface RecipeData {
  /** Where every row went, stage by stage. */
  readonly report: PrepReport;
  readonly fitted: FittedRecipe;
  /** Whether the recipe splits; without a split every prepared row is in `train`. */
  readonly splits: boolean;
  readonly train: Table;
  readonly validation: Table | null;
  readonly test: Table | null;
  /** The project spec the recipe ran with (its source's file replaced by `data`). */
  readonly spec: ProjectSpec;
}

/**
 * The spec with the recipe source's file replaced by `file` (absolute). A file of another format
 * than the source's (by its extension) is read as that format, with the source's column types.
 * @example runRecipe(withSourceFile(spec, 'fraud_training', '/data/june.csv'), dir, 'fraud_training');
 */
export function withSourceFile(spec: ProjectSpec, recipe: string, file: string): ProjectSpec {
  const found = spec.recipes.find((r) => r.name === recipe);
  // An unknown recipe is runRecipe's error to give.
  if (!found) return spec;
  const format = formatOf(file);
  const sources = spec.sources.map((s): DataSourceSpec => {
    if (s.name !== found.source) return s;
    if (format === null || format === s.type) return { ...s, path: file };
    return {
      type: format,
      path: file,
      ...(s.name === undefined ? {} : { name: s.name }),
      ...(s.schema === undefined ? {} : { schema: s.schema }),
    };
  });
  return { ...spec, sources };
}

/**
 * Runs a recipe and returns its prepared rows, part by part, with its report and fitted recipe.
 * @example const { train, test, fitted } = await prepareRecipeData(spec, dir, 'fraud_training', { onProgress });
 */
export async function prepareRecipeData(
  spec: ProjectSpec,
  projectDir: string,
  recipe: string,
  options: RecipeDataOptions = {},
): Promise<RecipeData> {
  const used =
    options.data === undefined ? spec : withSourceFile(spec, recipe, path.resolve(options.data));
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'ferry-train-'));
  try {
    const report = await runRecipe(used, projectDir, recipe, {
      out: path.join(scratch, `${recipe}.parquet`),
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
      ...(options.quarantine ? { quarantine: options.quarantine } : {}),
      ...(options.resolveReference ? { resolveReference: options.resolveReference } : {}),
    });
    const fitted = loadFittedRecipe(report.output.fittedRecipe);
    const parts = new Map<string | null, Table>();
    for (const file of report.output.files) {
      parts.set(file.part, await readTable(file.path, { format: 'parquet', allowEmpty: true }));
    }
    const splits = !parts.has(null);
    return {
      report,
      fitted,
      splits,
      train: (splits ? parts.get('train') : parts.get(null)) as Table,
      validation: parts.get('validation') ?? null,
      test: parts.get('test') ?? null,
      spec: used,
    };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/**
 * The profile of a model's raw inputs as callers send them: the recipe source's rows, read with
 * the types the recipe saw, every row (request-time traffic meets the rows the recipe's filters
 * removed too). Inputs a merge adds are not in the source and are not profiled.
 * @example const profile = await profileRawInputs(data.spec, dir, data.fitted, signature.inputs);
 */
export async function profileRawInputs(
  spec: ProjectSpec,
  projectDir: string,
  fitted: FittedRecipe,
  inputs: readonly ModelInput[],
): Promise<TableProfile> {
  const source = spec.sources.find((s) => s.name === fitted.source.name);
  const read = new Set(fitted.source.schema.map((c) => c.name));
  const columns = inputs.filter((i) => read.has(i.name)).map((i) => i.name);
  if (source === undefined || columns.length === 0) return { rowCount: 0, columns: {} };
  const types = Object.fromEntries(fitted.source.schema.map((c) => [c.name, c.type]));
  const typed = { ...source, schema: { ...types, ...(source.schema ?? {}) } } as DataSourceSpec;
  const stageDir = mkdtempSync(path.join(os.tmpdir(), 'ferry-profile-'));
  try {
    const table = await withDuckDB(async (connection) => {
      const opened = await openSource(connection, typed, projectDir, { stageDir });
      return resultToTable(
        await connection.run(
          `SELECT ${columns.map(quoteIdent).join(', ')} FROM (${opened.relation.sql}) ORDER BY ${quoteIdent(ROW)}`,
        ),
      );
    });
    return profileTable(table);
  } finally {
    rmSync(stageDir, { recursive: true, force: true });
  }
}

/**
 * SHA-256 (hex) of a file, streamed.
 * @example lineage.dataSha256 = await sha256File(report.source.path);
 */
export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
