/**
 * `ferry features`: online lookups (`get`) and governance: `list` (every feature set and vector
 * with its version, owner, tags and last ingestion) and `show <name>` (definition, version
 * history, the last ingestion's profile, lineage).
 */
import type { Command } from 'commander';
import { Document, isMap, isScalar, isSeq, visit } from 'yaml';
import type { ColumnProfile } from '../core/profile.js';
import { FerryError } from '../errors/index.js';
import {
  FEATURE_SET_KIND,
  FEATURE_VECTOR_KIND,
  type DefinitionKind,
  type DefinitionVersion,
  type IngestionEntry,
  type Lineage,
} from '../feature-store/catalog.js';
import { withWorkspace, type GlobalOptions } from './context.js';
import { argumentError, formatCell, printJson, printTable } from './output.js';

interface GetOptions extends GlobalOptions {
  readonly key: string[];
  readonly at?: string;
}

export function registerFeatures(program: Command): void {
  const features = program
    .command('features')
    .description('feature sets and vectors: online lookups, versions, ingestions, lineage');
  features
    .command('get')
    .description('the feature vector of one or more entities from the online store')
    .argument('<feature_vector>', 'feature vector name from ferry.yaml')
    .requiredOption(
      '--key <column=value>',
      'entity key, repeatable',
      (v: string, all: string[] = []) => [...all, v],
    )
    .option('--at <time>', 'as of this ISO time instead of now')
    .option('--json', 'machine-readable output')
    .action(async (name: string, _o: unknown, command: Command) => {
      const options = command.optsWithGlobals<GetOptions>();
      const keys = options.key.map((pair) => {
        const eq = pair.indexOf('=');
        if (eq <= 0) throw argumentError(`--key must look like card_id=42, got '${pair}'`);
        return pair.slice(eq + 1);
      });
      const at = options.at === undefined ? Date.now() : Date.parse(options.at);
      if (Number.isNaN(at))
        throw argumentError(
          `--at must be an ISO time such as 2026-10-05T12:00:00Z, got '${options.at}'`,
        );
      const rows = await withWorkspace(options, (ws) =>
        ws.features.getOnlineVector(name, keys, at),
      );
      if (options.json) return printJson(rows.map((values, i) => ({ key: keys[i], values })));
      // Each row names its entity key column already; show the asked key only when it does not.
      const names = [...new Set(rows.flatMap((r) => Object.keys(r ?? {})))];
      const keyName = options.key[0]?.split('=')[0] ?? 'key';
      const withKey = names.includes(keyName) ? names : [keyName, ...names];
      printTable(
        withKey,
        rows.map((r, i) => withKey.map((n) => (n === keyName ? keys[i] : (r?.[n] ?? null)))),
      );
    });
  registerList(features);
  registerShow(features);
}

type ListOptions = GlobalOptions;

/** Ingestion records `features show` looks back through for the newest that wrote rows. */
const PROFILE_LOOKBACK = 20;

interface ListedDefinition {
  readonly name: string;
  readonly kind: DefinitionKind;
  readonly version: number | null;
  readonly owner: string | null;
  readonly description: string | null;
  readonly tags: readonly string[];
  /** The entity a set describes; for a vector, the entities of its sets. */
  readonly entity: string;
  /** Sets only: the newest ingestion record. */
  readonly last_ingestion: {
    readonly at: number;
    readonly mode: string;
    readonly read: number;
    readonly written: number;
  } | null;
}

function registerList(features: Command): void {
  features
    .command('list')
    .description('feature sets and vectors with version, owner, tags, entity and last ingestion')
    .option('--json', 'machine-readable output')
    .action(async (_o: unknown, command: Command) => {
      const options = command.optsWithGlobals<ListOptions>();
      const listed = await withWorkspace(options, async (ws): Promise<ListedDefinition[]> => {
        const spec = ws.project.spec;
        const [sets, vectors, ingestions] = await Promise.all([
          ws.catalog.list(FEATURE_SET_KIND),
          ws.catalog.list(FEATURE_VECTOR_KIND),
          ws.catalog.lastIngestions(),
        ]);
        const byName = (entries: DefinitionVersion[]): Map<string, DefinitionVersion> =>
          new Map(entries.map((e) => [e.name, e]));
        const setEntries = byName(sets);
        const vectorEntries = byName(vectors);
        const governed = (entry: DefinitionVersion | undefined) => ({
          version: entry?.version ?? null,
          owner: entry?.owner ?? null,
          description: entry?.description ?? null,
          tags: entry?.tags ?? [],
        });
        const entityOf = new Map(spec.feature_sets.map((fs) => [fs.name, fs.entity]));
        return [
          ...spec.feature_sets.map((fs): ListedDefinition => {
            const last = ingestions.get(fs.name);
            return {
              name: fs.name,
              kind: FEATURE_SET_KIND,
              ...governed(setEntries.get(fs.name)),
              entity: fs.entity,
              last_ingestion: last
                ? { at: last.ended_at, mode: last.mode, read: last.read, written: last.written }
                : null,
            };
          }),
          ...spec.feature_vectors.map((v): ListedDefinition => {
            const sets = Object.keys(vectorEntries.get(v.name)?.definition.feature_sets ?? {});
            return {
              name: v.name,
              kind: FEATURE_VECTOR_KIND,
              ...governed(vectorEntries.get(v.name)),
              entity: [...new Set(sets.map((s) => entityOf.get(s) ?? '?'))].join(', '),
              last_ingestion: null,
            };
          }),
        ];
      });
      if (options.json) return printJson(listed);
      if (listed.length === 0) {
        process.stdout.write(
          'No feature sets or vectors: define them under feature_sets: and feature_vectors: in ferry.yaml\n',
        );
        return;
      }
      printTable(
        ['name', 'kind', 'version', 'owner', 'tags', 'entity', 'last ingestion', 'rows written'],
        listed.map((d) => [
          d.name,
          d.kind === FEATURE_SET_KIND ? 'feature set' : 'feature vector',
          d.version,
          d.owner,
          d.tags.join(',') || null,
          d.entity,
          d.last_ingestion ? new Date(d.last_ingestion.at).toISOString() : null,
          d.last_ingestion?.written ?? null,
        ]),
      );
    });
}

interface ShowOptions extends GlobalOptions {
  readonly kind?: string;
}

interface Shown {
  readonly kind: DefinitionKind;
  readonly name: string;
  readonly current: DefinitionVersion;
  readonly history: DefinitionVersion[];
  readonly last_ingestion: IngestionEntry | null;
  /** The newest ingestion that wrote rows (its profile describes them); often the last one. */
  readonly profiled_ingestion: IngestionEntry | null;
  readonly lineage: Lineage;
}

function registerShow(features: Command): void {
  features
    .command('show')
    .description(
      'a feature set or vector: definition, version history, last ingestion profile, lineage',
    )
    .argument('<name>', 'feature set or feature vector name')
    .option(
      '--kind <kind>',
      'feature_set or feature_vector, when a set and a vector share the name',
    )
    .option('--json', 'machine-readable output')
    .action(async (name: string, _o: unknown, command: Command) => {
      const options = command.optsWithGlobals<ShowOptions>();
      const wanted = parseKind(options.kind);
      const shown = await withWorkspace(options, async (ws): Promise<Shown> => {
        const catalog = ws.catalog;
        const [set, vector] = await Promise.all([
          wanted === FEATURE_VECTOR_KIND ? undefined : catalog.version(FEATURE_SET_KIND, name),
          wanted === FEATURE_SET_KIND ? undefined : catalog.version(FEATURE_VECTOR_KIND, name),
        ]);
        if (set && vector) {
          throw argumentError(
            `'${name}' is both a feature set and a feature vector; add --kind feature_set or --kind feature_vector`,
          );
        }
        const current = set ?? vector;
        if (!current) {
          const known = [
            ...(await catalog.list(FEATURE_SET_KIND)),
            ...(await catalog.list(FEATURE_VECTOR_KIND)),
          ].map((d) => d.name);
          throw new FerryError(
            wanted === FEATURE_VECTOR_KIND
              ? 'FERRY_FEATURE_VECTOR_UNKNOWN'
              : 'FERRY_FEATURE_SET_UNKNOWN',
            `no feature set or vector named '${name}'; known: ${known.join(', ') || '(none: define them in ferry.yaml)'}`,
          );
        }
        const [history, ingestions, lineage] = await Promise.all([
          catalog.history(current.kind, name),
          current.kind === FEATURE_SET_KIND ? catalog.ingestions(name, PROFILE_LOOKBACK) : [],
          catalog.lineage(current.kind, name),
        ]);
        return {
          kind: current.kind,
          name,
          current,
          history,
          last_ingestion: ingestions[0] ?? null,
          profiled_ingestion: ingestions.find((i) => i.written > 0) ?? null,
          lineage,
        };
      });
      if (options.json) return printJson(shown);
      process.stdout.write(formatShown(shown));
    });
}

function parseKind(kind: string | undefined): DefinitionKind | undefined {
  if (kind === undefined) return undefined;
  if (kind === FEATURE_SET_KIND || kind === FEATURE_VECTOR_KIND) return kind;
  throw argumentError(`--kind must be feature_set or feature_vector, got '${kind}'`);
}

/** `features show` for people. */
function formatShown(s: Shown): string {
  const c = s.current;
  const lines: string[] = [];
  const what = s.kind === FEATURE_SET_KIND ? 'Feature set' : 'Feature vector';
  lines.push(`${what} ${s.name}, version ${c.version} (definition sha256 ${c.hash.slice(0, 12)})`);
  if (c.description) lines.push(`  ${c.description}`);
  lines.push(`  owner: ${c.owner ?? '-'}   tags: ${c.tags.join(', ') || '-'}`);
  lines.push('', 'Definition:');
  const shownDefinition =
    typeof c.definition.ttl === 'number'
      ? { ...c.definition, ttl: formatDuration(c.definition.ttl) }
      : c.definition;
  lines.push(indent(compactYaml(shownDefinition)));
  if (s.kind === FEATURE_SET_KIND) {
    const names = aggregationNames(c.definition.aggregations);
    if (names.length > 0) lines.push(`  # aggregated features: ${names.join(', ')}`);
  }

  lines.push('', 'Versions:');
  for (const h of s.history) {
    lines.push(
      `  v${h.version}  ${new Date(h.recorded_at).toISOString()}  ${h.change}` +
        (h.change === 'governance'
          ? ` (owner ${h.owner ?? '-'}, tags ${h.tags.join(', ') || '-'})`
          : ''),
    );
  }

  if (s.kind === FEATURE_SET_KIND) {
    lines.push('');
    const last = s.last_ingestion;
    if (!last) lines.push('Last ingestion: none yet (ferry ingest ' + s.name + ')');
    else {
      const rules = Object.entries(last.quarantined_by_rule)
        .map(([rule, n]) => `${rule} ${n}`)
        .join(', ');
      lines.push(
        `Last ingestion: ${new Date(last.ended_at).toISOString()} (${last.mode}, ${last.batches} batch(es), ` +
          `version ${last.feature_set_version ?? '-'}) from ${last.origins.join(', ')}`,
        `  read ${last.read}, filtered ${last.filtered}, quarantined ${last.quarantined}${rules ? ` (${rules})` : ''}, ` +
          `duplicates ${last.duplicates}, written ${last.written}` +
          (last.event_time
            ? `; event times ${new Date(last.event_time.min).toISOString()} .. ${new Date(last.event_time.max).toISOString()}`
            : ''),
      );
      const profiled = s.profiled_ingestion;
      const columns = Object.entries(profiled?.profile.columns ?? {});
      if (profiled && columns.length > 0 && profiled.profiled_rows > 0) {
        lines.push(
          `  profile of the ${profiled.written} rows written` +
            (profiled === last ? '' : ` at ${new Date(profiled.ended_at).toISOString()}`) +
            (profiled.profiled_rows < profiled.written
              ? ` (a sample of ${profiled.profiled_rows})`
              : '') +
            ':',
        );
        lines.push(...indent(indent(profileTable(columns))).split('\n'));
      }
    }
  }

  const l = s.lineage;
  lines.push('', 'Lineage:');
  const sources = [
    ...new Set(
      l.sources.map(
        (x) => `${x.role} ${x.path}${x.sha256 ? ` (sha256 ${x.sha256.slice(0, 12)})` : ''}`,
      ),
    ),
  ];
  lines.push(
    `  sources:   ${sources.join('; ') || '-'}`,
    `  sets:      ${l.feature_sets.map((x) => `${x.name} v${x.version ?? '?'}`).join(', ') || '-'}`,
    `  vectors:   ${l.feature_vectors.map((x) => `${x.name} v${x.version ?? '?'}`).join(', ') || '-'}`,
    `  datasets:  ${l.datasets.map((d) => `${d.id} (${d.vector} v${d.vector_version ?? '?'}, ${d.rows} rows)`).join(', ') || '-'}`,
    `  models:    ${l.models.map((m) => `${m.model} v${m.version}${m.dataset ? ` (dataset ${m.dataset})` : ''}`).join(', ') || '-'}`,
  );
  return lines.join('\n') + '\n';
}

function profileTable(columns: [string, ColumnProfile][]): string {
  const headers = ['column', 'nulls', 'distinct', 'min', 'mean', 'max', 'top'];
  const rows = columns.map(([name, p]) => [
    name,
    p.nulls,
    p.distinct,
    p.kind === 'numeric' ? p.min : null,
    p.kind === 'numeric' ? p.mean : null,
    p.kind === 'numeric' ? p.max : null,
    p.kind === 'categorical'
      ? p.top
          .slice(0, 3)
          .map((t) => `${t.value} (${t.count})`)
          .join(', ')
      : null,
  ]);
  const cells = [headers, ...rows.map((r) => r.map(formatCell))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => String(r[i] ?? '').length)));
  return cells
    .map((r) =>
      r
        .map((cell, i) => String(cell).padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

function aggregationNames(aggregations: unknown): string[] {
  if (!Array.isArray(aggregations)) return [];
  const names: string[] = [];
  for (const a of aggregations as { column: string; ops: string[]; windows: string[] }[])
    for (const w of a.windows) for (const op of a.ops) names.push(`${a.column}_${op}_${w}`);
  return names;
}

/** 604800000 → `7d`: the largest unit that divides it. */
function formatDuration(ms: number): string {
  const units: [string, number][] = [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ];
  for (const [unit, size] of units) if (ms > 0 && ms % size === 0) return `${ms / size}${unit}`;
  return `${ms}ms`;
}

/** YAML with short lists and small maps of scalars on one line (`keys: [card_id]`). */
function compactYaml(value: unknown): string {
  const doc = new Document(value);
  visit(doc, {
    Seq(_, node) {
      if (node.items.every((item) => isScalar(item) || (isMap(item) && item.items.length <= 4)))
        node.flow = true;
    },
    Map(_, node) {
      if (node.items.length <= 4 && node.items.every((pair) => isScalar(pair.value)))
        node.flow = true;
    },
  });
  // A flow list of flow maps reads better one map per line: keep those lists in block style.
  visit(doc, {
    Seq(_, node) {
      if (node.flow && node.items.some((item) => isMap(item) || isSeq(item))) node.flow = false;
    },
  });
  return doc.toString({ lineWidth: 0, flowCollectionPadding: false }).trimEnd();
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((line) => `  ${line}`)
    .join('\n');
}
