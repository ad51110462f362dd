/**
 * `ferry endpoints list|show`: the endpoints of ferry.yaml and their deployments. `list` shows
 * each endpoint (and any deployed endpoint ferry.yaml no longer defines) with its latest
 * deployment version, steps and models; `show <name>` the spec of the latest deployment, the
 * model versions it resolved and the history of its versions.
 */
import type { Command } from 'commander';
import { stringify } from 'yaml';
import type { EndpointSpec } from '../config/endpoint-schema.js';
import type { JsonObject } from '../core/json.js';
import { FerryError } from '../errors/index.js';
import {
  deploymentHistory,
  endpointSpecHash,
  listDeployments,
  type Deployment,
} from '../serving/deployments.js';
import { modelRefsOf } from '../serving/graph/compile.js';
import { withWorkspace, type GlobalOptions } from './context.js';
import { printJson, printTable } from './output.js';

/**
 * Where ferry.yaml stands against the latest deployment: `deployed` (same spec), `changed` (the
 * next deploy or serve records a new version), `not deployed`, `removed` (no longer in ferry.yaml).
 */
export type EndpointStatus = 'deployed' | 'changed' | 'not deployed' | 'removed';

interface ListedEndpoint {
  readonly name: string;
  readonly status: EndpointStatus;
  /** The latest deployment's version, null when never deployed. */
  readonly deployed: number | null;
  readonly deployedAt: number | null;
  /** Step kinds (a router with its mode), of ferry.yaml's spec, else of the deployed one. */
  readonly steps: readonly string[];
  /** Model references, with the version the latest deployment resolved each to (if it has it). */
  readonly models: readonly { readonly ref: string; readonly version: number | null }[];
  readonly description: string | null;
}

export function registerEndpoints(program: Command): void {
  const endpoints = program
    .command('endpoints')
    .description('endpoints of ferry.yaml and their deployments');

  endpoints
    .command('list')
    .description('every endpoint with its deployed version, steps, models and description')
    .option('--json', 'machine-readable output')
    .action(async (_o: unknown, command: Command) => {
      const options = command.optsWithGlobals<GlobalOptions>();
      const listed = await withWorkspace(options, async (ws) =>
        listEndpoints(ws.project.spec.endpoints, await listDeployments(ws.metadata)),
      );
      if (options.json) return printJson(listed);
      if (listed.length === 0) {
        process.stdout.write(
          'No endpoints: define one under endpoints: in ferry.yaml, then run ferry deploy <endpoint>\n',
        );
        return;
      }
      printTable(
        ['endpoint', 'deployed', 'steps', 'models', 'description'],
        listed.map((e) => [
          e.name,
          deployedCell(e),
          e.steps.join(' -> '),
          e.models.map((m) => (m.version === null ? m.ref : `${m.ref}=v${m.version}`)).join(', '),
          e.description,
        ]),
      );
    });

  endpoints
    .command('show')
    .description('the spec of the latest deployment, its resolved models and its version history')
    .argument('<endpoint>', 'endpoint name')
    .option('--json', 'machine-readable output')
    .action(async (name: string, _o: unknown, command: Command) => {
      const options = command.optsWithGlobals<GlobalOptions>();
      const shown = await withWorkspace(options, async (ws) => {
        const history = await deploymentHistory(ws.metadata, name);
        const inYaml = ws.project.spec.endpoints.find((e) => e.name === name);
        const latest = history[0];
        if (!latest) {
          if (inYaml) {
            throw new FerryError(
              'FERRY_ENDPOINT_NOT_FOUND',
              `endpoint '${name}' is defined in ferry.yaml but was never deployed; run ferry deploy ${name} (ferry serve deploys it too)`,
            );
          }
          const known = [
            ...new Set([
              ...ws.project.spec.endpoints.map((e) => e.name),
              ...(await listDeployments(ws.metadata)).map((d) => d.endpoint),
            ]),
          ];
          throw new FerryError(
            'FERRY_ENDPOINT_NOT_FOUND',
            `no endpoint '${name}' in ferry.yaml or among deployments; endpoints: ${known.join(', ') || '(none: add one under endpoints: in ferry.yaml)'}`,
          );
        }
        const status: EndpointStatus = !inYaml
          ? 'removed'
          : endpointSpecHash(inYaml) === latest.specHash
            ? 'deployed'
            : 'changed';
        return { endpoint: name, status, latest, history };
      });
      if (options.json) return printJson(shown);
      process.stdout.write(formatShown(shown.status, shown.latest, shown.history));
    });
}

/** ferry.yaml's endpoints in their order, then deployed endpoints it no longer defines. */
function listEndpoints(
  specs: readonly EndpointSpec[],
  deployments: readonly Deployment[],
): ListedEndpoint[] {
  const latest = new Map(deployments.map((d) => [d.endpoint, d]));
  const listed = specs.map((spec): ListedEndpoint => {
    const d = latest.get(spec.name);
    return listedOf(
      spec,
      d,
      !d ? 'not deployed' : d.specHash === endpointSpecHash(spec) ? 'deployed' : 'changed',
    );
  });
  const inYaml = new Set(specs.map((s) => s.name));
  for (const d of deployments)
    if (!inYaml.has(d.endpoint)) listed.push(listedOf(deployedSpec(d), d, 'removed'));
  return listed;
}

function listedOf(
  spec: EndpointSpec,
  d: Deployment | undefined,
  status: EndpointStatus,
): ListedEndpoint {
  const resolved = new Map(d?.models.map((m) => [m.ref, m.version]));
  return {
    name: spec.name,
    status,
    deployed: d?.version ?? null,
    deployedAt: d?.createdAt ?? null,
    steps: spec.steps.map((s) => (s.kind === 'router' ? `router(${s.mode})` : s.kind)),
    models: [...new Set(spec.steps.flatMap(modelRefsOf))].map((ref) => ({
      ref,
      version: resolved.get(ref) ?? null,
    })),
    description: spec.description ?? null,
  };
}

/** The spec a deployment recorded: the parsed spec as JSON, which keeps its shape. */
function deployedSpec(d: Deployment): EndpointSpec {
  return d.spec as unknown as EndpointSpec;
}

function deployedCell(e: ListedEndpoint): string {
  if (e.deployed === null) return 'not deployed';
  if (e.status === 'changed') return `${e.deployed} (ferry.yaml changed)`;
  if (e.status === 'removed') return `${e.deployed} (not in ferry.yaml)`;
  return String(e.deployed);
}

/** `endpoints show` for people. */
function formatShown(
  status: EndpointStatus,
  d: Deployment,
  history: readonly Deployment[],
): string {
  const spec = deployedSpec(d);
  const lines = [
    `Endpoint ${d.endpoint}, deployment ${d.version} of ${new Date(d.createdAt).toISOString()} (spec sha256 ${d.specHash.slice(0, 12)})`,
  ];
  if (spec.description) lines.push(`  ${spec.description}`);
  lines.push(
    status === 'changed'
      ? `  ferry.yaml has changed since: ferry deploy ${d.endpoint} (or ferry serve) records the next version`
      : status === 'removed'
        ? '  ferry.yaml no longer defines this endpoint'
        : '  ferry.yaml has this spec',
    `  recorded by Ferry ${d.ferryVersion}${d.gitCommit ? ` (commit ${d.gitCommit.slice(0, 12)})` : ''}`,
    '',
    'Spec:',
    indent(stringify(withReadableTimeouts(d.spec), { lineWidth: 0 }).trimEnd()),
    '',
    'Models (resolved at deploy time; aliases may have moved since):',
    ...(d.models.length > 0
      ? d.models.map((m) => `  ${m.ref} -> ${m.model}:${m.version}`)
      : ['  -']),
    '',
    'Versions:',
    ...history.map(
      (h) =>
        `  v${h.version}  ${new Date(h.createdAt).toISOString()}  sha256 ${h.specHash.slice(0, 12)}  ` +
        (h.models.map((m) => `${m.ref}=v${m.version}`).join(', ') || '-'),
    ),
  );
  return lines.join('\n') + '\n';
}

/** The spec with its timeouts (stored in milliseconds) written as ferry.yaml takes them: `250ms`. */
function withReadableTimeouts(spec: JsonObject): JsonObject {
  const readable = (object: JsonObject): JsonObject =>
    typeof object.timeout === 'number' ? { ...object, timeout: `${object.timeout}ms` } : object;
  const steps = Array.isArray(spec.steps)
    ? spec.steps.map((step) =>
        step !== null && typeof step === 'object' && !Array.isArray(step) ? readable(step) : step,
      )
    : spec.steps;
  return readable(steps === undefined ? spec : { ...spec, steps });
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((line) => `  ${line}`)
    .join('\n');
}
