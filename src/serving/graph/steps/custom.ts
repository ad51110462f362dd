/**
 * `custom`: calls a function of the project's own code on the records of a request. The module
 * (`.js`, `.mjs`, or `.ts` loaded through tsx) is resolved against the project folder and loaded
 * when the graph is compiled; a missing module or export fails there, not on the first request.
 *
 * The function gets copies of the records and may change them in place or return new ones (as
 * many, in the same order). Only the fields declared under `outputs:` are taken back into the
 * records: they are what later steps may read, and each value is checked against its declared
 * type (null is allowed). Working on copies means a function that finishes after its step timed
 * out changes nothing the request already answered with.
 */
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { EndpointStepSpec } from '../../../config/endpoint-schema.js';
import type { ColumnType, Row, Scalar } from '../../../core/table.js';
import { FerryError, isFerryError } from '../../../errors/index.js';
import type { StepCompiler } from '../step.js';

type CustomStepSpec = Extract<EndpointStepSpec, { kind: 'custom' }>;

/**
 * What a custom step's module exports. It is called once per request with copies of the
 * request's records (each a plain object of scalars: the request fields and what earlier steps
 * wrote). It may set fields on them in place and return nothing, or return new records, exactly
 * one per record given, in the same order. It may be async; the step's `timeout:` bounds it.
 * The fields it must set are those declared under the step's `outputs:`, with values of the
 * declared types or null (`float`: a finite number, `int`: an integer, `bool`: a boolean,
 * `string`: a string, `timestamp`: UTC milliseconds); other changes to the records are ignored.
 * A throw fails the step, which then follows its `on_error:` policy (a thrown FerryError keeps
 * its code, so a function can reject a bad record as the client's error).
 * @example
 * // steps/risk.ts, used as { kind: custom, module: steps/risk.ts, export: risk, outputs: { risk: float } }
 * export const risk: CustomStepFunction = (records) => {
 *   for (const r of records) r.risk = Number(r.amount ?? 0) > 1000 ? 0.9 : 0.1;
 * };
 */
export type CustomStepFunction = (
  records: Row[],
  context: { readonly endpoint: string; readonly requestId: string },
) => Row[] | void | Promise<Row[] | void>;

const EXTENSIONS = ['.js', '.mjs', '.ts'];

export const compileCustomStep: StepCompiler<CustomStepSpec> = async (spec, env) => {
  const where = `endpoint '${env.endpoint}', step '${env.name}'`;
  const file = path.resolve(env.root, spec.module);
  const ext = path.extname(file);
  if (!EXTENSIONS.includes(ext)) {
    throw new FerryError(
      'FERRY_CONFIG_INVALID',
      `${where}: module '${spec.module}' is neither .js, .mjs nor .ts; give the file one of those extensions`,
    );
  }
  if (!fs.existsSync(file)) {
    throw new FerryError(
      'FERRY_CONFIG_INVALID',
      `${where}: module '${spec.module}' not found (looked for ${file}); paths are relative to the project folder`,
    );
  }
  const loaded = await importModule(file, where, spec.module);
  const fn = loaded[spec.export];
  if (typeof fn !== 'function') {
    const found = Object.keys(loaded)
      .filter((k) => k !== '__esModule')
      .sort();
    throw new FerryError(
      'FERRY_CONFIG_INVALID',
      `${where}: module '${spec.module}' has no function export '${spec.export}'${fn === undefined ? '' : ` (it is a ${typeof fn})`}; its exports: ${found.join(', ') || 'none'}; set export: to one of them`,
    );
  }
  const call = fn as CustomStepFunction;
  const outputs = Object.entries(spec.outputs);
  const label = `${spec.module}#${spec.export}`;

  return {
    kind: 'custom',
    name: env.name,
    // What the function reads is its own business: it sees every field the records have.
    reads: [],
    writes: outputs.map(([name, type]) => ({ name, type })),
    predicts: false,
    models: [],
    async run(batch, context) {
      const copies = batch.rows.map((row) => ({ ...row }));
      let returned: Row[] | void;
      try {
        returned = await call(copies, { endpoint: context.endpoint, requestId: context.requestId });
      } catch (err) {
        // A function that rejects a record with a coded error (a bad value: 400) keeps its code.
        if (isFerryError(err)) throw err;
        throw new FerryError(
          'FERRY_STEP_FAILED',
          `custom function ${label} threw: ${err instanceof Error ? err.message : String(err)}`,
          { cause: err },
        );
      }
      if (context.cancelled()) return;
      const records = returned ?? copies;
      if (!Array.isArray(records) || records.length !== batch.rows.length) {
        throw new FerryError(
          'FERRY_STEP_FAILED',
          `custom function ${label} returned ${Array.isArray(records) ? `${records.length} records` : typeof records} for ${batch.rows.length} records; return one record per record given, or nothing after changing them in place`,
        );
      }
      // Checked for every record before any is written, so a bad value leaves the batch as it was.
      const values = records.map((record, i) => {
        if (record === null || typeof record !== 'object') {
          throw new FerryError(
            'FERRY_STEP_FAILED',
            `custom function ${label} returned ${record === null ? 'null' : typeof record} as record ${i}; records are objects`,
          );
        }
        return outputs.map(([field, type]) => checked(record[field], type, field, i, label));
      });
      values.forEach((row, i) => {
        const target = batch.rows[i] as Row;
        outputs.forEach(([field], j) => {
          target[field] = row[j] ?? null;
        });
      });
    },
  };
};

/** The module's exports: .ts through tsx (no loader hook needed), the rest by dynamic import. */
async function importModule(
  file: string,
  where: string,
  module: string,
): Promise<Record<string, unknown>> {
  const url = pathToFileURL(file);
  try {
    if (file.endsWith('.ts')) {
      // tsImport registers tsx's loader for this one import only (no --import hook needed), as
      // src/training/worker-pool.ts loads search-worker.ts.
      const { tsImport } = await import('tsx/esm/api');
      return (await tsImport(url.href, import.meta.url)) as Record<string, unknown>;
    }
    // The file's modification time in the URL: a graph compiled after the file changed runs
    // the new code (Node caches a module by its URL).
    url.search = `mtime=${fs.statSync(file).mtimeMs}`;
    return (await import(url.href)) as Record<string, unknown>;
  } catch (err) {
    throw new FerryError(
      'FERRY_CONFIG_INVALID',
      `${where}: module '${module}' could not be loaded: ${err instanceof Error ? err.message : String(err)}`,
      { cause: err },
    );
  }
}

function checked(
  value: unknown,
  type: ColumnType,
  field: string,
  record: number,
  label: string,
): Scalar {
  if (value === undefined || value === null) return null;
  let ok: boolean;
  switch (type) {
    case 'float':
      ok = typeof value === 'number' && Number.isFinite(value);
      break;
    case 'int':
    case 'timestamp':
      ok = typeof value === 'number' && Number.isInteger(value);
      break;
    case 'bool':
      ok = typeof value === 'boolean';
      break;
    case 'string':
      ok = typeof value === 'string';
      break;
  }
  if (!ok) {
    const shown =
      typeof value === 'string'
        ? `'${value}'`
        : typeof value === 'object'
          ? 'an object'
          : String(value);
    throw new FerryError(
      'FERRY_STEP_FAILED',
      `custom function ${label} set '${field}' of record ${record} to ${shown} (${typeof value}), but outputs: declares it ${type}${type === 'timestamp' ? ' (UTC milliseconds)' : ''}`,
    );
  }
  return value as Scalar;
}
