/**
 * `ferry deploy <endpoint>`: validates an endpoint of ferry.yaml by compiling it as `ferry serve`
 * does (models resolved, loaded and warmed) and records a new deployment version when its spec
 * changed since the latest one.
 */
import type { Command } from 'commander';
import type { CompiledGraph } from '../serving/graph/compile.js';
import { deployEndpoint, type DeployedModel, type Deployment } from '../serving/deployments.js';
import { withWorkspace, type GlobalOptions } from './context.js';
import { printJson } from './output.js';

export function registerDeploy(program: Command): void {
  program
    .command('deploy')
    .description(
      'validate an endpoint of ferry.yaml and record a new deployment version if its spec changed',
    )
    .argument('<endpoint>', 'endpoint name from ferry.yaml')
    .option('--json', 'machine-readable output')
    .action(async (name: string, _o: unknown, command: Command) => {
      const options = command.optsWithGlobals<GlobalOptions>();
      const { deployment, created, graph } = await withWorkspace(options, (ws) =>
        deployEndpoint(ws, name),
      );
      if (options.json) {
        return printJson({
          ...deployment,
          created,
          inputs: graph.inputs,
          response: graph.response.map((r) => r.name),
        });
      }
      process.stdout.write(formatDeploy(deployment, created, graph));
    });
}

function formatDeploy(d: Deployment, created: boolean, graph: CompiledGraph): string {
  const lines = [
    created
      ? `Deployed endpoint ${d.endpoint}: version ${d.version} (new, spec sha256 ${d.specHash.slice(0, 12)})`
      : `Endpoint ${d.endpoint} unchanged: deployment ${d.version} of ${new Date(d.createdAt).toISOString()} has this spec`,
    `  steps:    ${graph.steps.map((s) => (s.name === s.kind ? s.name : `${s.name} (${s.kind})`)).join(' -> ')}`,
    `  models:   ${d.models.map((m) => formatModel(m, graph)).join(', ') || '-'}`,
    `  request:  ${graph.inputs.map((i) => `${i.name}:${i.type}${i.optional ? '?' : ''}`).join(', ') || '-'}`,
    `  response: ${graph.response.map((r) => r.name).join(', ')}`,
  ];
  return lines.join('\n') + '\n';
}

/** `fraud@champion -> v3`, and the version it resolves to now when an alias moved since. */
function formatModel(m: DeployedModel, graph: CompiledGraph): string {
  const now = graph.resolved.get(m.ref);
  return (
    `${m.ref} -> v${m.version}` + (now !== undefined && now !== m.version ? ` (now v${now})` : '')
  );
}
