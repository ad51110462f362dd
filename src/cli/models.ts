/** `ferry models list|show|alias`: the model registry from the terminal. */
import type { Command } from 'commander';
import { parseModelRef } from '../registry/registry.js';
import { withWorkspace, type GlobalOptions } from './context.js';
import { argumentError, printJson, printTable } from './output.js';

export function registerModels(program: Command): void {
  const models = program.command('models').description('list and inspect registered models');

  models
    .command('list')
    .description('every registered model with its newest version and aliases')
    .option('--json', 'machine-readable output')
    .action(async (_o: unknown, command: Command) => {
      const options = command.optsWithGlobals<GlobalOptions>();
      const list = await withWorkspace(options, (ws) => ws.registry.listModels());
      if (options.json) return printJson(list);
      if (list.length === 0) {
        process.stdout.write(
          'No models registered yet. Train one with: ferry train --data <file> --target <column> --name <model>\n',
        );
        return;
      }
      printTable(
        ['model', 'latest', 'versions', 'aliases', 'updated'],
        list.map((m) => [
          m.name,
          m.latestVersion,
          m.versionCount,
          formatAliases(m.aliases),
          new Date(m.updatedAt),
        ]),
      );
    });

  models
    .command('show')
    .description('versions, aliases, metrics and inputs of one model')
    .argument('<model>', 'model name, or <model>@<alias> / <model>:<version> for one version')
    .option('--json', 'machine-readable output')
    .action(async (ref: string, _o: unknown, command: Command) => {
      const options = command.optsWithGlobals<GlobalOptions>();
      const parsed = parseModelRef(ref);
      const { versions, aliases, selected } = await withWorkspace(options, async (ws) => {
        const versions = await ws.registry.versions(parsed.model);
        const aliases = await ws.registry.aliases(parsed.model);
        const selected = await ws.registry.resolve(parsed);
        return { versions, aliases, selected };
      });
      if (options.json) {
        return printJson({ name: parsed.model, aliases, selected: selected.version, versions });
      }
      process.stdout.write(
        `Model ${parsed.model}\nAliases: ${formatAliases(aliases) || '(none)'}\n\n`,
      );
      const metricNames = [...new Set(versions.flatMap((v) => Object.keys(v.metrics)))];
      printTable(
        ['version', 'algorithm', ...metricNames, 'created', 'sha256'],
        versions.map((v) => [
          v.version,
          v.params.algorithm ?? v.runtime,
          ...metricNames.map((m) => v.metrics[m]),
          new Date(v.createdAt),
          v.sha256.slice(0, 12),
        ]),
      );
      const sig = selected.signature;
      process.stdout.write(
        `\nVersion ${selected.version}: ${sig.task} of '${sig.target}'` +
          (sig.classes ? `, classes ${sig.classes.join(', ')}` : '') +
          `\nInputs (${sig.inputs.length}): ${sig.inputs.map((i) => `${i.name}:${i.type}`).join(', ')}\n` +
          `Lineage: ${JSON.stringify(selected.lineage)}\n`,
      );
    });

  const alias = models
    .command('alias')
    .description('move or remove an alias (champion, challenger, ...)');
  alias
    .command('set')
    .description('point an alias at a version')
    .argument('<model>', 'model name')
    .argument('<alias>', 'alias name')
    .argument('<version>', 'version number')
    .action(async (model: string, name: string, version: string, _o: unknown, command: Command) => {
      const options = command.optsWithGlobals<GlobalOptions>();
      const number = Number(version);
      if (!Number.isInteger(number) || number < 1)
        throw argumentError(`version must be a positive integer, got '${version}'`);
      await withWorkspace(options, (ws) => ws.registry.setAlias(model, name, number));
      process.stdout.write(`${model}@${name} -> version ${number}\n`);
    });
  alias
    .command('rm')
    .description('remove an alias')
    .argument('<model>', 'model name')
    .argument('<alias>', 'alias name')
    .action(async (model: string, name: string, _o: unknown, command: Command) => {
      const options = command.optsWithGlobals<GlobalOptions>();
      await withWorkspace(options, (ws) => ws.registry.removeAlias(model, name));
      process.stdout.write(`Removed ${model}@${name}\n`);
    });
}

function formatAliases(aliases: Readonly<Record<string, number>>): string {
  return Object.entries(aliases)
    .map(([a, v]) => `${a}->${v}`)
    .join(', ');
}
