/**
 * Loads `ferry.yaml`, applies `FERRY_` environment overrides, validates the result into a
 * frozen ProjectSpec, and resolves the embedded stores' paths. Every error names the file,
 * the path inside it and what was expected.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { FerryError } from '../errors/index.js';
import {
  featureSetStepRefusal,
  parseDuration,
  parseFeatureRef,
  projectSchema,
  type ProjectInput,
  type ProjectSpec,
} from './schema.js';

export const CONFIG_FILE_NAMES = ['ferry.yaml', 'ferry.yml'] as const;

export interface Project {
  /** Absolute path of the project folder. */
  readonly dir: string;
  /** Absolute path of the config file, or null when defaults were used. */
  readonly file: string | null;
  readonly spec: ProjectSpec;
  /** Absolute path of the state folder (`.ferry` by default). */
  readonly stateDir: string;
}

/** Environment variables that override a setting, and where it lives in the spec. */
const ENV_OVERRIDES: readonly {
  env: string;
  path: readonly string[];
  parse: (v: string) => unknown;
}[] = [
  { env: 'FERRY_STATE_DIR', path: ['state_dir'], parse: (v) => v },
  { env: 'FERRY_SERVER_HOST', path: ['server', 'host'], parse: (v) => v },
  {
    env: 'FERRY_SERVER_PORT',
    path: ['server', 'port'],
    parse: (v) => (/^\d+$/.test(v) ? Number(v) : v),
  },
  { env: 'FERRY_LOG_LEVEL', path: ['log_level'], parse: (v) => v },
];

/**
 * Finds the config file in `dir`; returns null when there is none.
 */
export function findConfigFile(dir: string): string | null {
  for (const candidate of CONFIG_FILE_NAMES) {
    const file = path.join(dir, candidate);
    if (existsSync(file)) return file;
  }
  return null;
}

/**
 * Loads the project in `dir`.
 * @example const project = loadProject(process.cwd());
 */
export function loadProject(
  dir: string,
  options: { env?: NodeJS.ProcessEnv; requireConfig?: boolean } = {},
): Project {
  const absDir = path.resolve(dir);
  const file = findConfigFile(absDir);
  if (!file && options.requireConfig !== false) {
    throw new FerryError(
      'FERRY_CONFIG_NOT_FOUND',
      `no ferry.yaml in ${absDir}; run 'ferry init ${dir}' to create a project, or pass --project <dir>`,
    );
  }
  const raw = file ? readYaml(file) : {};
  const spec = parseProjectSpec(raw, file ?? '(defaults)', options.env ?? process.env);
  return deepFreeze({ dir: absDir, file, spec, stateDir: path.resolve(absDir, spec.state_dir) });
}

/**
 * A project defined in code instead of ferry.yaml: the same validation and checks, the same
 * errors (named after `origin`), state under `dir`.
 * @example
 * const project = defineProject('.', {
 *   entities: [{ name: 'card', keys: ['card_id'] }],
 *   feature_sets: [{ name: 'tx', entity: 'card', timestamp: 'ts', features: [{ name: 'amount', type: 'float' }] }],
 * });
 */
export function defineProject(dir: string, input: ProjectInput, origin = '(code)'): Project {
  const absDir = path.resolve(dir);
  const spec = parseProjectSpec(input, origin);
  return deepFreeze({
    dir: absDir,
    file: null,
    spec,
    stateDir: path.resolve(absDir, spec.state_dir),
  });
}

/** Validates an already-parsed config object (for the TypeScript API and tests). */
export function parseProjectSpec(
  raw: unknown,
  source: string,
  env: NodeJS.ProcessEnv = {},
): ProjectSpec {
  const withEnv = applyEnv(raw, env);
  const result = projectSchema.safeParse(withEnv);
  if (!result.success) throw configError(source, result.error.issues);
  const problems = crossCheck(result.data);
  if (problems.length > 0) throw configError(source, problems);
  return deepFreeze(result.data);
}

function readYaml(file: string): unknown {
  const text = readFileSync(file, 'utf8');
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0) {
    const first = doc.errors[0];
    throw new FerryError(
      'FERRY_CONFIG_INVALID',
      `${file}: not valid YAML: ${first?.message ?? 'parse error'}`,
    );
  }
  return doc.toJS() ?? {};
}

function applyEnv(raw: unknown, env: NodeJS.ProcessEnv): unknown {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return raw;
  const copy = structuredClone(raw) as Record<string, unknown>;
  for (const override of ENV_OVERRIDES) {
    const value = env[override.env];
    if (value === undefined || value === '') continue;
    let node = copy;
    for (const key of override.path.slice(0, -1)) {
      const next = node[key];
      if (next === undefined || next === null || typeof next !== 'object') node[key] = {};
      node = node[key] as Record<string, unknown>;
    }
    node[override.path[override.path.length - 1] as string] = override.parse(value);
  }
  return copy;
}

interface Problem {
  readonly path: readonly PropertyKey[];
  readonly message: string;
}

function configError(source: string, issues: readonly (Problem | z.core.$ZodIssue)[]): FerryError {
  const lines = issues.map((issue) => `  at ${formatPath(issue.path)}: ${issue.message}`);
  return new FerryError(
    'FERRY_CONFIG_INVALID',
    `${source} is not a valid Ferry configuration:\n${lines.join('\n')}`,
    {
      details: {
        file: source,
        issues: issues.map((i) => ({ path: formatPath(i.path), message: i.message })),
      },
    },
  );
}

function formatPath(parts: readonly PropertyKey[]): string {
  if (parts.length === 0) return '(root)';
  return parts
    .map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i === 0 ? '' : '.'}${String(p)}`))
    .join('');
}

/** Checks that references between sections resolve: entities, features, vectors, names. */
function crossCheck(spec: ProjectSpec): Problem[] {
  const problems: Problem[] = [];
  const unique = (section: string, items: readonly { readonly name?: string }[]): void => {
    const seen = new Set<string>();
    items.forEach(({ name = '' }, i) => {
      if (seen.has(name))
        problems.push({ path: [section, i, 'name'], message: `duplicate name '${name}'` });
      seen.add(name);
    });
  };
  const known = (names: Iterable<string | undefined>): string => [...names].join(', ') || '(none)';
  unique('entities', spec.entities);
  unique('feature_sets', spec.feature_sets);
  unique('feature_vectors', spec.feature_vectors);
  unique('endpoints', spec.endpoints);

  const entities = new Set(spec.entities.map((e) => e.name));
  const ruleSets = new Set(spec.validations.map((v) => v.name));
  const featuresBySet = new Map<string, Set<string>>();
  spec.feature_sets.forEach((fs, i) => {
    if (!entities.has(fs.entity)) {
      problems.push({
        path: ['feature_sets', i, 'entity'],
        message: `entity '${fs.entity}' is not defined; defined entities: ${known(entities)}`,
      });
    }
    const names = new Set(fs.features.map((f) => f.name));
    fs.aggregations.forEach((agg, j) => {
      const feature = fs.features.find((f) => f.name === agg.column);
      if (!feature) {
        problems.push({
          path: ['feature_sets', i, 'aggregations', j, 'column'],
          message: `column '${agg.column}' is not a feature of '${fs.name}'; features: ${[...names].join(', ')}`,
        });
      } else if (feature.type === 'string' && agg.ops.some((op) => op !== 'count')) {
        problems.push({
          path: ['feature_sets', i, 'aggregations', j, 'ops'],
          message: `string feature '${agg.column}' supports only the count aggregation`,
        });
      }
      for (const window of agg.windows)
        for (const op of agg.ops) names.add(`${agg.column}_${op}_${window}`);
    });
    featuresBySet.set(fs.name, names);
    fs.steps.forEach((step, j) => {
      const refusal = featureSetStepRefusal(step);
      if (refusal !== null) {
        problems.push({
          path: ['feature_sets', i, 'steps', j, 'step'],
          message: `step '${step.step}' cannot run on a feature set: ${refusal}`,
        });
      }
    });
    if (typeof fs.validation === 'string' && !ruleSets.has(fs.validation)) {
      problems.push({
        path: ['feature_sets', i, 'validation'],
        message: `rule set '${fs.validation}' is not defined under validations:; defined: ${known(ruleSets)}`,
      });
    }
  });

  spec.feature_vectors.forEach((vector, i) => {
    // Output name → the `<set>.<feature>` it comes from: two different features may not share one.
    const outputs = new Map<string, string>();
    vector.features.forEach((entry, j) => {
      const ref = parseFeatureRef(entry);
      const names = featuresBySet.get(ref.set);
      const at = ['feature_vectors', i, 'features', j];
      if (!names) {
        problems.push({
          path: at,
          message: `feature set '${ref.set}' is not defined; defined: ${known(featuresBySet.keys())}`,
        });
        return;
      }
      const selected = ref.feature === '*' ? [...names] : [ref.feature];
      for (const f of selected) {
        const source = `${ref.set}.${f}`;
        const output = ref.alias ?? f;
        if (!names.has(f)) {
          problems.push({
            path: at,
            message: `feature '${source}' is not defined; '${ref.set}' defines: ${[...names].join(', ')}`,
          });
        } else if (outputs.has(output) && outputs.get(output) !== source) {
          problems.push({
            path: at,
            message: `output name '${output}' is taken by both '${outputs.get(output)}' and '${source}'; give one an alias ({ feature: ${source}, alias: <name> })`,
          });
        } else outputs.set(output, source);
      }
    });
  });

  unique('sources', spec.sources);
  unique('validations', spec.validations);
  unique('recipes', spec.recipes);
  const sources = new Set(spec.sources.map((s) => s.name));
  const validations = new Set(spec.validations.map((v) => v.name));
  spec.recipes.forEach((recipe, i) => {
    if (!sources.has(recipe.source)) {
      problems.push({
        path: ['recipes', i, 'source'],
        message: `source '${recipe.source}' is not defined under sources:; defined: ${known(sources)}`,
      });
    }
    if (recipe.validation !== undefined && !validations.has(recipe.validation)) {
      problems.push({
        path: ['recipes', i, 'validation'],
        message: `rule set '${recipe.validation}' is not defined under validations:; defined: ${known(validations)}`,
      });
    }
    recipe.steps.forEach((step, j) => {
      if (step.step === 'merge' && !sources.has(step.source)) {
        problems.push({
          path: ['recipes', i, 'steps', j, 'source'],
          message: `source '${step.source}' is not defined under sources:; defined: ${known(sources)}`,
        });
      }
    });
  });

  const vectors = new Set(spec.feature_vectors.map((v) => v.name));
  spec.endpoints.forEach((endpoint, i) => {
    endpoint.steps.forEach((step, j) => {
      if (step.kind === 'enrich' && !vectors.has(step.vector)) {
        problems.push({
          path: ['endpoints', i, 'steps', j, 'vector'],
          message: `feature vector '${step.vector}' is not defined; defined: ${[...vectors].join(', ') || '(none)'}`,
        });
      }
    });
    if (
      !endpoint.steps.some(
        (s) => s.kind === 'model' || s.kind === 'router' || s.kind === 'ensemble',
      )
    ) {
      problems.push({
        path: ['endpoints', i, 'steps'],
        message: 'an endpoint needs a model, router or ensemble step to give its answer',
      });
    }
  });
  return problems;
}

/** The window of an aggregation name such as `amount_sum_1h`, in milliseconds. */
export function windowMs(window: string): number {
  return parseDuration(window);
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value as Record<string, unknown>)) deepFreeze(child);
  }
  return value;
}
