/**
 * The recipe runner: reads a recipe's source, fits and chains its steps into one SQL relation,
 * validates it when the recipe names a rule set, and writes the output with its fitted recipe.
 *
 * Memory stays bounded: the source is parsed once into a staged Parquet copy; row-wise steps are
 * nested SQL that DuckDB streams; steps that need the whole table (dedupe, merge, split) are
 * written to staged Parquet checkpoints, so later passes (fit queries, counts, the output) read
 * columnar files instead of recomputing windows and joins.
 *
 * Fitting: steps that learn constants (fill with mean/median/mode, encode, scale, clip) learn
 * them from the training rows when the recipe splits, and from every row otherwise. Learning on
 * the train part only needs the split to be decided before the first such step: a split written
 * after it is moved there when that changes nothing else (no step in between removes rows or
 * changes the split's column); otherwise the recipe is refused with what to move.
 */
import { mkdtempSync, renameSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import type { DataSourceSpec, RecipeSpec, StepSpec } from '../../config/data-schema.js';
import type { ProjectSpec } from '../../config/schema.js';
import type { Table } from '../../core/table.js';
import { FerryError } from '../../errors/index.js';
import type { OfflineStore } from '../../feature-store/offline/offline-store.js';
import { quoteString, resultToTable, withDuckDB } from '../duckdb.js';
import { openSource, type OpenedSource } from '../source.js';
import {
  validateRelation,
  type ResolveReference,
  type ValidationReport,
} from '../validate/index.js';
import { FITTED_RECIPE_FORMAT, type FittedRecipe, type FittedStep } from './fitted.js';
import { col, ROW, SPLIT, type Relation } from './relation.js';
import {
  describeFitted,
  describeStep,
  stageLine,
  type OutputFile,
  type PrepReport,
  type StageReport,
} from './report.js';
import type { FitContext, StepKind, StepMeasures } from './step.js';
import { kindOf } from './steps/index.js';
import { SPLIT_PARTS } from './steps/split.js';

export interface RunRecipeOptions {
  /** Output file (.parquet, .csv or .jsonl); default the recipe's `out`, else `prepared/<name>.parquet`. */
  readonly out?: string;
  /** Progress lines, one per stage. */
  readonly onProgress?: (message: string) => void;
  /** Apply these learned constants instead of fitting (a `<out>.recipe.json` from an earlier run). */
  readonly fitted?: FittedRecipe;
  /** Where rows set aside by a `quarantine` rule set go (the workspace's offline store). */
  readonly quarantine?: OfflineStore;
  /** Resolves `model:` references of distribution rules. */
  readonly resolveReference?: ResolveReference;
}

export interface BuiltRecipe {
  /** The prepared rows: the steps' output, validation applied. */
  readonly relation: Relation;
  readonly fitted: FittedRecipe;
  readonly source: OpenedSource;
  readonly stages: StageReport[];
  readonly reordered: string | null;
  readonly validation: ValidationReport | null;
  /** Whether the chain holds a split (its rows carry the hidden part column). */
  readonly splits: boolean;
  /** Whether rows may be out of file order (after dedupe, merge or split). */
  readonly reordersRows: boolean;
  /** Drops what validation keeps in the connection; call after reading the relation. */
  release(): Promise<void>;
}

export interface BuildOptions extends Omit<RunRecipeOptions, 'out'> {
  /** Folder for staged copies and checkpoints; the caller removes it. */
  readonly stageDir: string;
}

/**
 * Runs a recipe: prepares its source and writes the output (splits to `<name>.<part>.<ext>`)
 * and the fitted recipe (`<out>.recipe.json`); returns the report of where every row went.
 * @example const report = await runRecipe(project.spec, project.dir, 'transactions', { onProgress: console.error });
 */
export async function runRecipe(
  spec: ProjectSpec,
  projectDir: string,
  name: string,
  options: RunRecipeOptions = {},
): Promise<PrepReport> {
  const started = Date.now();
  const recipe = findRecipe(spec, name);
  const out = path.resolve(
    options.out ?? path.resolve(projectDir, recipe.out ?? `prepared/${name}.parquet`),
  );
  const format = outputFormat(out);
  const stageDir = mkdtempSync(path.join(os.tmpdir(), 'ferry-prep-'));
  try {
    return await withDuckDB(async (connection) => {
      const built = await buildRecipe(connection, spec, projectDir, name, { ...options, stageDir });
      try {
        const say = options.onProgress ?? (() => undefined);
        mkdirSync(path.dirname(out), { recursive: true });
        say(`Writing ${out}...`);
        const files = await writeOutput(connection, built, out, format, stageDir);
        const fittedFile = `${out}.recipe.json`;
        writeAtomically(fittedFile, JSON.stringify(built.fitted, null, 2) + '\n');
        return {
          recipe: name,
          source: {
            name: built.source.name,
            type: built.source.type,
            path: built.source.path,
            malformed: built.source.malformed,
          },
          stages: built.stages,
          fittedOn: built.fitted.fittedOn,
          fitRows: built.fitted.fitRows,
          reordered: built.reordered,
          validation: built.validation,
          output: {
            rows: files.reduce((n, f) => n + f.rows, 0),
            files,
            fittedRecipe: fittedFile,
            schema: built.fitted.schema,
          },
          seconds: (Date.now() - started) / 1000,
        };
      } finally {
        await built.release();
      }
    });
  } finally {
    rmSync(stageDir, { recursive: true, force: true });
  }
}

function findRecipe(spec: ProjectSpec, name: string): RecipeSpec {
  const recipe = spec.recipes.find((r) => r.name === name);
  if (!recipe) {
    throw new FerryError(
      'FERRY_ARGUMENT_INVALID',
      `no recipe '${name}' in ferry.yaml; recipes: ${spec.recipes.map((r) => r.name).join(', ') || '(none, add one under recipes:)'}`,
    );
  }
  return recipe;
}

function findSource(spec: ProjectSpec, name: string, where: string): DataSourceSpec {
  const source = spec.sources.find((s) => s.name === name);
  if (!source) {
    throw new FerryError(
      'FERRY_CONFIG_INVALID',
      `${where}: source '${name}' is not defined under sources:; defined: ${spec.sources.map((s) => s.name).join(', ') || '(none)'}`,
    );
  }
  return source;
}

/** Steps whose constants come from the fit rows. */
function learns(step: StepSpec): boolean {
  return kindOf(step.step).learns(step as never);
}

/** Columns a step writes (creates, changes or removes); 'all' when it may change any. */
function writes(step: StepSpec): readonly string[] {
  switch (step.step) {
    case 'rename':
      return [...Object.keys(step.columns), ...Object.values(step.columns)];
    case 'cast':
    case 'derive':
    case 'encode':
      return [step.column];
    case 'fill':
    case 'scale':
    case 'clip':
    case 'drop':
      return step.columns;
    default:
      return [];
  }
}

/** Whether a step can remove rows. */
function removesRows(step: StepSpec): boolean {
  return (
    step.step === 'filter' ||
    step.step === 'drop_missing' ||
    step.step === 'dedupe' ||
    (step.step === 'merge' && step.how === 'inner')
  );
}

interface PlannedStep {
  readonly spec: StepSpec;
  /** 1-based position in the recipe as written. */
  readonly index: number;
}

/**
 * The order steps run in: as written, except that a split written after the first step that
 * learns constants moves just before it (see the module comment), or a coded error says why it
 * cannot.
 */
export function planSteps(recipe: RecipeSpec): { order: PlannedStep[]; reordered: string | null } {
  const order = recipe.steps.map((spec, i) => ({ spec, index: i + 1 }));
  const splits = order.filter((p) => p.spec.step === 'split');
  if (splits.length > 1) {
    throw new FerryError(
      'FERRY_CONFIG_INVALID',
      `recipe '${recipe.name}' has ${splits.length} split steps (steps ${splits.map((s) => s.index).join(', ')}); keep one`,
    );
  }
  const split = splits[0];
  if (!split || split.spec.step !== 'split') return { order, reordered: null };
  const at = order.indexOf(split);
  const first = order.findIndex((p) => learns(p.spec));
  if (first < 0 || first > at) return { order, reordered: null };
  const splitColumn = split.spec.column;
  for (const p of order.slice(first, at)) {
    const where = `recipe '${recipe.name}', step ${p.index} (${p.spec.step})`;
    if (removesRows(p.spec)) {
      throw new FerryError(
        'FERRY_CONFIG_INVALID',
        `${where} removes rows between step ${order[first]?.index} (${order[first]?.spec.step}), which learns from the training rows, and the split (step ${split.index}); ` +
          `move the split before step ${order[first]?.index}, so that the steps after it are fitted on the train part`,
      );
    }
    const dropped =
      p.spec.step === 'select' &&
      splitColumn !== undefined &&
      !p.spec.columns.includes(splitColumn);
    if (splitColumn !== undefined && (writes(p.spec).includes(splitColumn) || dropped)) {
      throw new FerryError(
        'FERRY_CONFIG_INVALID',
        `${where} changes '${splitColumn}', the split's column, between step ${order[first]?.index} (which learns from the training rows) and the split (step ${split.index}); ` +
          `move the split before step ${order[first]?.index}`,
      );
    }
  }
  const moved = [
    ...order.slice(0, first),
    split,
    ...order.slice(first, at),
    ...order.slice(at + 1),
  ];
  return {
    order: moved,
    reordered: `split (step ${split.index}) ran before step ${order[first]?.index} (${order[first]?.spec.step}), so that learned constants come from the training rows only`,
  };
}

/**
 * Reads the recipe's source and builds its chain: fits each step (or takes its constants from
 * `options.fitted`), counts rows at every stage, checkpoints batch steps, and validates the
 * result when the recipe names a rule set. Does not write the output.
 * @example await withDuckDB((con) => buildRecipe(con, spec, dir, 'tx', { stageDir }));
 */
export async function buildRecipe(
  connection: DuckDBConnection,
  spec: ProjectSpec,
  projectDir: string,
  name: string,
  options: BuildOptions,
): Promise<BuiltRecipe> {
  const recipe = findRecipe(spec, name);
  const say = options.onProgress ?? (() => undefined);
  const query = async (sql: string): Promise<Table> => resultToTable(await connection.run(sql));
  const count = async (relation: Relation): Promise<number> =>
    Number((await query(`SELECT count(*) FROM (${relation.sql})`)).columns[0]?.values[0] ?? 0);

  // The source, typed as the fitted recipe saw it when one is given.
  const sourceSpec = findSource(spec, recipe.source, `recipe '${name}'`);
  const fixedTypes = options.fitted
    ? Object.fromEntries(options.fitted.source.schema.map((c) => [c.name, c.type]))
    : {};
  let started = Date.now();
  say(`Reading ${sourceSpec.path}...`);
  const source = await openSource(
    connection,
    { ...sourceSpec, schema: { ...fixedTypes, ...(sourceSpec.schema ?? {}) } } as DataSourceSpec,
    projectDir,
    { stageDir: options.stageDir },
  );
  const stages: StageReport[] = [];
  const read: StageReport = {
    stage: 'read',
    index: 0,
    description: `read ${sourceSpec.path}`,
    rowsIn: source.rows + source.malformed.count,
    rowsOut: source.rows,
    removed: source.malformed.count > 0 ? { malformed: source.malformed.count } : {},
    conversionFailures: source.conversionFailures,
    notes: [],
    seconds: (Date.now() - started) / 1000,
  };
  stages.push(read);
  say(stageLine(read));

  // Steps, in the order they run, with their constants when given.
  let plan: { spec: StepSpec | null; fitted: FittedStep | null; index: number }[];
  let reordered: string | null = null;
  if (options.fitted) {
    plan = options.fitted.steps.map((fitted, i) => ({ spec: null, fitted, index: i + 1 }));
  } else {
    const planned = planSteps(recipe);
    plan = planned.order.map((p) => ({ spec: p.spec, fitted: null, index: p.index }));
    reordered = planned.reordered;
    if (reordered) say(`note: ${reordered}`);
  }

  // Other sources a merge names, opened once.
  const sources = new Map<string, Relation>();
  for (const p of plan) {
    const other =
      p.spec?.step === 'merge'
        ? p.spec.source
        : p.fitted?.step === 'merge'
          ? p.fitted.source
          : null;
    if (other === null || sources.has(other)) continue;
    const opened = await openSource(
      connection,
      findSource(spec, other, `recipe '${name}', step ${p.index} (merge)`),
      projectDir,
      { stageDir: options.stageDir },
    );
    sources.set(other, opened.relation);
  }

  let relation = source.relation;
  let rows = source.rows;
  let fitWhere = 'TRUE';
  let fittedOn: 'train' | 'all' = 'all';
  let fitRows: number | null = null;
  let splits = false;
  let reordersRows = false;
  const fittedSteps: FittedStep[] = [];
  let position = 0;
  for (const p of plan) {
    position++;
    started = Date.now();
    const kindName = (p.fitted ?? p.spec)?.step as FittedStep['step'];
    const kind = kindOf(kindName) as StepKind<FittedStep['step']>;
    const where = `recipe '${name}', step ${p.index} (${kindName})`;
    const fitCtx: FitContext = {
      where,
      fitWhere,
      query,
      source: async (other) => {
        const found = sources.get(other);
        if (!found) throw new FerryError('FERRY_INTERNAL', `source '${other}' was not opened`);
        return found;
      },
    };
    if (p.spec !== null && kind.learns(p.spec as never) && fitRows === null) {
      fitRows =
        fitWhere === 'TRUE'
          ? rows
          : await count({
              sql: `SELECT * FROM (${relation.sql}) WHERE ${fitWhere}`,
              schema: relation.schema,
            });
    }
    const fitted = p.fitted ?? (await kind.fit(p.spec as never, relation, fitCtx));
    fittedSteps.push(fitted);
    const sqlCtx = { index: position, sources };
    let output: Relation = {
      sql: kind.sql(fitted as never, relation, sqlCtx),
      schema: kind.schema(fitted as never, relation.schema),
    };
    let rowsOut = rows;
    if (kind.batchOnly !== null) {
      // Checkpoint: later passes read this file instead of recomputing the window or join.
      const file = path.join(options.stageDir, `step-${position}.parquet`);
      const written = await query(`COPY (${output.sql}) TO ${quoteString(file)} (FORMAT parquet)`);
      rowsOut = Number(written.columns[0]?.values[0] ?? 0);
      output = { sql: `SELECT * FROM read_parquet(${quoteString(file)})`, schema: output.schema };
      reordersRows = true;
    } else if (kind.removes !== null) {
      rowsOut = await count(output);
    }
    const measures: StepMeasures = kind.measure
      ? await kind.measure(fitted as never, relation, output, { ...sqlCtx, query })
      : {};
    let splitCounts: Record<string, number> | undefined;
    if (fitted.step === 'split') {
      const parts = await query(
        `SELECT ${col(SPLIT)}, count(*) FROM (${output.sql}) GROUP BY ${col(SPLIT)}`,
      );
      splitCounts = Object.fromEntries(SPLIT_PARTS.map((part) => [part, 0]));
      for (let i = 0; i < parts.rowCount; i++) {
        splitCounts[String(parts.columns[0]?.values[i])] = Number(parts.columns[1]?.values[i] ?? 0);
      }
      fitWhere = `${col(SPLIT)} = 'train'`;
      fittedOn = 'train';
      splits = true;
    }
    const stage: StageReport = {
      stage: kindName,
      index: p.index,
      description: p.spec ? describeStep(p.spec) : describeFitted(fitted),
      rowsIn: rows,
      rowsOut,
      removed: rows > rowsOut && kind.removes !== null ? { [kind.removes]: rows - rowsOut } : {},
      conversionFailures: measures.conversionFailures ?? {},
      ...(splitCounts ? { splits: splitCounts } : {}),
      requestTime: kind.batchOnly === null ? 'applied' : `skipped: ${kind.batchOnly}`,
      notes: [...(measures.notes ?? [])],
      seconds: (Date.now() - started) / 1000,
    };
    if (rowsOut > rows) {
      throw new FerryError(
        'FERRY_INTERNAL',
        `${where} turned ${rows} rows into ${rowsOut}; a step must never add rows`,
      );
    }
    stages.push(stage);
    say(stageLine(stage));
    relation = output;
    rows = rowsOut;
  }

  const fitted: FittedRecipe = {
    format: FITTED_RECIPE_FORMAT,
    recipe: name,
    source: { name: source.name, type: source.type, schema: [...source.relation.schema] },
    fittedOn: options.fitted ? options.fitted.fittedOn : fittedOn,
    fitRows: options.fitted ? options.fitted.fitRows : (fitRows ?? 0),
    steps: fittedSteps,
    schema: [...relation.schema],
    createdAt: options.fitted ? options.fitted.createdAt : new Date().toISOString(),
  };

  let validation: ValidationReport | null = null;
  let release = async (): Promise<void> => undefined;
  if (recipe.validation !== undefined) {
    started = Date.now();
    const ruleSet = spec.validations.find((v) => v.name === recipe.validation);
    if (!ruleSet) {
      throw new FerryError(
        'FERRY_CONFIG_INVALID',
        `recipe '${name}': rule set '${recipe.validation}' is not defined under validations:`,
      );
    }
    const checked = await validateRelation(connection, relation, ruleSet, {
      baseDir: projectDir,
      ...(options.resolveReference ? { resolveReference: options.resolveReference } : {}),
      ...(options.quarantine
        ? { quarantine: { offline: options.quarantine, name: ruleSet.name, source: source.path } }
        : {}),
    });
    validation = checked.report;
    release = checked.release;
    const kept = validation.rows.checked - validation.rows.quarantined;
    const stage: StageReport = {
      stage: 'validate',
      index: null,
      description: `validate with ${ruleSet.name} (${ruleSet.policy})`,
      rowsIn: rows,
      rowsOut: kept,
      removed: validation.rows.quarantined > 0 ? { quarantined: validation.rows.quarantined } : {},
      conversionFailures: {},
      notes: validation.rules
        .filter((r) => r.status === 'fail')
        .map((r) => `${r.name} failed${r.failing > 0 ? ` on ${r.failing} rows` : ''}`),
      seconds: (Date.now() - started) / 1000,
    };
    stages.push(stage);
    say(stageLine(stage));
    relation = checked.output;
    rows = kept;
  }

  return {
    relation,
    fitted,
    source,
    stages,
    reordered,
    validation,
    splits,
    reordersRows,
    release,
  };
}

type OutputFormat = 'parquet' | 'csv' | 'jsonl';

function outputFormat(file: string): OutputFormat {
  const ext = path.extname(file).toLowerCase();
  if (ext === '.parquet' || ext === '.pq') return 'parquet';
  if (ext === '.csv') return 'csv';
  if (ext === '.jsonl' || ext === '.ndjson') return 'jsonl';
  throw new FerryError(
    'FERRY_ARGUMENT_INVALID',
    `cannot tell the output format of ${file}; name it .parquet, .csv or .jsonl`,
  );
}

const COPY_OPTIONS: Record<OutputFormat, string> = {
  parquet: '(FORMAT parquet)',
  csv: '(FORMAT csv, HEADER true)',
  jsonl: '(FORMAT json)',
};

/** `<dir>/<name>.<part><ext>` for `<dir>/<name><ext>`. */
function partFile(out: string, part: string): string {
  const ext = path.extname(out);
  return `${out.slice(0, out.length - ext.length)}.${part}${ext}`;
}

async function writeOutput(
  connection: DuckDBConnection,
  built: BuiltRecipe,
  out: string,
  format: OutputFormat,
  stageDir: string,
): Promise<OutputFile[]> {
  const columns = built.relation.schema.map((c) => col(c.name)).join(', ');
  // Rows in source-file order, whatever order batch steps left them in.
  const order = built.reordersRows ? ` ORDER BY ${col(ROW)}` : '';
  const copy = async (sql: string, file: string): Promise<number> => {
    const temp = `${file}.tmp-${process.pid}`;
    const result = await resultToTable(
      await connection.run(`COPY (${sql}) TO ${quoteString(temp)} ${COPY_OPTIONS[format]}`),
    );
    return Number(result.columns[0]?.values[0] ?? 0);
  };
  const commit = (file: string): void => renameSync(`${file}.tmp-${process.pid}`, file);
  if (!built.splits) {
    const rows = await copy(`SELECT ${columns} FROM (${built.relation.sql})${order}`, out);
    commit(out);
    return [{ path: out, part: null, rows }];
  }
  // One pass over the chain into a checkpoint, then one cheap pass per part.
  const all = path.join(stageDir, 'output.parquet');
  await connection.run(
    `COPY (SELECT * FROM (${built.relation.sql})) TO ${quoteString(all)} (FORMAT parquet)`,
  );
  const files: OutputFile[] = [];
  for (const part of SPLIT_PARTS) {
    const file = partFile(out, part);
    const rows = await copy(
      `SELECT ${columns} FROM read_parquet(${quoteString(all)}) WHERE ${col(SPLIT)} = '${part}'${order}`,
      file,
    );
    files.push({ path: file, part, rows });
  }
  for (const file of files) commit(file.path);
  return files;
}

function writeAtomically(file: string, text: string): void {
  const temp = `${file}.tmp-${process.pid}`;
  writeFileSync(temp, text);
  renameSync(temp, file);
}
