/**
 * The recipe runner: reads a recipe's source, fits and chains its steps into one SQL relation,
 * validates it when the recipe names a rule set, and writes the output with its fitted recipe.
 *
 * Speed: the source is parsed once into a staged Parquet copy, and the steps are chained as SQL
 * (`chain.ts`), computed once into a Parquet checkpoint where later passes would otherwise
 * compute them again (after conversions from text, windows and joins, before fitting); each
 * step's report comes from the checkpoint or from cheap counts, not from a pass of its own.
 *
 * Memory stays bounded: a run has a DuckDB instance of its own with a memory limit
 * ({@link DEFAULT_MEMORY_LIMIT}) and a spill folder in the run's scratch folder, so windows,
 * joins and sorts spill to disk instead of growing with the file; windows rank only the columns
 * that decide them, validation writes its flagged rows to Parquet, and rows are put back in file
 * order once, by the output (or by validation), whatever order the steps left them in.
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
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import type { DataSourceSpec, RecipeSpec, StepSpec } from '../../config/data-schema.js';
import type { ProjectSpec } from '../../config/schema.js';
import type { Table } from '../../core/table.js';
import { FerryError } from '../../errors/index.js';
import type { OfflineStore } from '../../feature-store/offline/offline-store.js';
import { quoteString, resultToTable } from '../duckdb.js';
import { openSource, type OpenedSource } from '../source.js';
import {
  validateRelation,
  type ResolveReference,
  type ValidationReport,
} from '../validate/index.js';
import { FITTED_RECIPE_FORMAT, type FittedRecipe, type FittedStep } from './fitted.js';
import { Chain } from './chain.js';
import { col, ROW, SPLIT, type Relation } from './relation.js';
import {
  describeFitted,
  describeStep,
  stageLine,
  type OutputFile,
  type PrepReport,
  type StageReport,
} from './report.js';
import type { FitContext, StepKind } from './step.js';
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
  /**
   * Memory DuckDB may hold for the run (`'1GB'`, `'512MB'`) before windows, joins and sorts
   * spill to the run's scratch folder; default {@link DEFAULT_MEMORY_LIMIT}.
   */
  readonly memoryLimit?: string;
}

/**
 * The memory a recipe run holds in DuckDB by default, whatever the size of its file: enough for
 * a few million rows without spilling, small beside a machine's memory.
 */
export const DEFAULT_MEMORY_LIMIT = '1GB';

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
  /** Whether rows may be out of file order (after dedupe, merge or split, unless validated). */
  readonly reordersRows: boolean;
  /** Removes what validation wrote for the relation to read; call after reading it. */
  release(): Promise<void>;
}

export interface BuildOptions extends Omit<RunRecipeOptions, 'out' | 'memoryLimit'> {
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
    return await withRunDuckDB(stageDir, options.memoryLimit, async (connection) => {
      const built = await buildRecipe(connection, spec, projectDir, name, { ...options, stageDir });
      try {
        const say = options.onProgress ?? (() => undefined);
        mkdirSync(path.dirname(out), { recursive: true });
        say(`Writing ${out}...`);
        const files = await writeOutput(connection, built, out, format);
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

/**
 * Runs `work` on a DuckDB instance of the run's own, so that its memory limit and its spill
 * folder (inside the run's scratch folder, removed with it) change nothing for other work of
 * the process on the shared instance.
 */
async function withRunDuckDB<T>(
  stageDir: string,
  memoryLimit: string = DEFAULT_MEMORY_LIMIT,
  work: (connection: DuckDBConnection) => Promise<T>,
): Promise<T> {
  let instance: DuckDBInstance;
  try {
    instance = await DuckDBInstance.create(':memory:', {
      memory_limit: memoryLimit,
      temp_directory: path.join(stageDir, 'spill'),
    });
  } catch (cause) {
    throw new FerryError(
      'FERRY_ARGUMENT_INVALID',
      `cannot start DuckDB with memory limit '${memoryLimit}'; give a size such as '1GB' or '512MB'`,
      { cause },
    );
  }
  try {
    const connection = await instance.connect();
    try {
      return await work(connection);
    } finally {
      connection.closeSync();
    }
  } finally {
    instance.closeSync();
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

/** Whether a step can remove rows (as written, or fitted). */
function removesRows(step: StepSpec | FittedStep): boolean {
  switch (step.step) {
    case 'filter':
    case 'drop_missing':
    case 'dedupe':
      return true;
    case 'merge':
      return step.how === 'inner';
    case 'split':
      // Rows without a time cannot be placed; random and stratified splits place every row.
      return step.method === 'time';
    default:
      return false;
  }
}

/**
 * Whether recomputing a step costs enough that its output is worth a checkpoint before it is
 * read again: windows and joins, and conversions from text (pattern matching, time zones).
 */
function costly(step: FittedStep): boolean {
  switch (step.step) {
    case 'dedupe':
    case 'merge':
    case 'split':
      return true;
    case 'cast':
      return step.from === 'string' && step.to !== 'string';
    case 'derive':
      return step.exprType !== step.type;
    default:
      return false;
  }
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
 * `options.fitted`), counts rows at every stage, checkpoints where it pays (see `chain.ts`), and
 * validates the result when the recipe names a rule set. Does not write the output.
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

  const chain = new Chain(source.relation, source.rows, {
    stageDir: options.stageDir,
    query,
    sources,
    stages,
    say,
  });
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
    if (p.spec !== null && kind.learns(p.spec as never)) {
      // Fitting queries the input: read costly steps from a checkpoint, not again per query.
      if (chain.costly) await chain.checkpoint();
      if (fitRows === null) await chain.settle();
      // The settled steps were given that time; the step's own starts here.
      started = Date.now();
      fitRows ??= fitWhere === 'TRUE' ? chain.rows : await chain.count(fitWhere);
    }
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
    const fitted = p.fitted ?? (await kind.fit(p.spec as never, chain.relation, fitCtx));
    fittedSteps.push(fitted);
    if (fitted.step === 'split') {
      fitWhere = `${col(SPLIT)} = 'train'`;
      fittedOn = 'train';
      splits = true;
    }
    if (kind.batchOnly !== null) reordersRows = true;
    await chain.add({
      kind,
      fitted,
      position,
      index: p.index,
      where,
      description: p.spec ? describeStep(p.spec) : describeFitted(fitted),
      removes: removesRows(fitted),
      costly: costly(fitted),
      // Dedupe reads its input three times (see steps/dedupe.ts).
      rereads: fitted.step === 'dedupe',
      seconds: (Date.now() - started) / 1000,
    });
  }
  await chain.settle();
  let relation = chain.relation;
  let rows = chain.rows;

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
      stageDir: options.stageDir,
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
    // Validation writes its rows in row order, and its output keeps it.
    reordersRows = false;
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
  // The chain ends cheap (costly steps end in a checkpoint): one pass per part.
  const files: OutputFile[] = [];
  for (const part of SPLIT_PARTS) {
    const file = partFile(out, part);
    const rows = await copy(
      `SELECT ${columns} FROM (${built.relation.sql}) WHERE ${col(SPLIT)} = '${part}'${order}`,
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
