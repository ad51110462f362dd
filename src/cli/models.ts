/** `ferry models list|show|alias|delete|export|import`: the model registry from the terminal. */
import { readFile, rename, writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { FerryError } from '../errors/index.js';
import { exportBundle, importBundle } from '../registry/bundle.js';
import { parseModelRef } from '../registry/registry.js';
import { withWorkspace, type GlobalOptions } from './context.js';
import { exportOnnxCommand, importOnnxCommand } from './models-onnx.js';
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

  models
    .command('delete')
    .description('delete a version no alias points to, and its artifact')
    .argument('<version>', '<model>:<version>')
    .option('--json', 'machine-readable output')
    .action(async (ref: string, _o: unknown, command: Command) => {
      const options = command.optsWithGlobals<GlobalOptions>();
      const parsed = parseModelRef(ref);
      if (parsed.version === undefined)
        throw argumentError(
          `delete takes one version, as <model>:<version> (e.g. ${parsed.model}:2), got '${ref}'`,
        );
      const version = parsed.version;
      const { artifactDeleted } = await withWorkspace(options, (ws) =>
        ws.registry.deleteVersion(parsed.model, version),
      );
      if (options.json) return printJson({ model: parsed.model, version, artifactDeleted });
      process.stdout.write(
        `Deleted ${parsed.model}:${version}` +
          (artifactDeleted
            ? ' and its artifact\n'
            : ' (its artifact is kept: another version uses it)\n'),
      );
    });

  models
    .command('export')
    .description('write one version to a single file (a bundle) for ferry models import')
    .argument('<model>', '<model>@<alias> or <model>:<version> (a bare name means its champion)')
    .requiredOption('--out <file>', 'the file to write')
    .option(
      '--format <format>',
      'native: a Ferry model bundle (JSON); onnx: an ONNX model, preprocessing included',
      'native',
    )
    .option('--json', 'machine-readable output')
    .action(async (ref: string, _o: unknown, command: Command) => {
      const options = command.optsWithGlobals<GlobalOptions & { out: string; format: string }>();
      if (options.format === 'onnx') return exportOnnxCommand(ref, options);
      if (options.format !== 'native')
        throw argumentError(`unknown export format '${options.format}'; formats: native, onnx`);
      const { version, bytes } = await withWorkspace(options, (ws) => exportBundle(ws, ref));
      // Written beside the target, then renamed: a reader never sees half a bundle.
      const partial = `${options.out}.partial-${process.pid}`;
      await writeFile(partial, bytes);
      await rename(partial, options.out);
      const summary = {
        model: version.model,
        version: version.version,
        sha256: version.sha256,
        out: options.out,
        bytes: bytes.byteLength,
      };
      if (options.json) return printJson(summary);
      process.stdout.write(
        `Exported ${version.model}:${version.version} (sha256 ${version.sha256.slice(0, 12)}) to ${options.out}\n`,
      );
    });

  models
    .command('import')
    .description('register a bundle from ferry models export as the next version')
    .argument('[bundle]', 'a bundle file written by ferry models export')
    .option('--name <model>', 'register under this model name (default: the name in the bundle)')
    .option('--onnx <file>', 'register an ONNX model file instead (needs --name)')
    .option(
      '--signature <file>',
      'with --onnx: a JSON signature overriding the one read from the file',
    )
    .option('--json', 'machine-readable output')
    .action(async (file: string | undefined, _o: unknown, command: Command) => {
      const options = command.optsWithGlobals<
        GlobalOptions & { name?: string; onnx?: string; signature?: string }
      >();
      if (options.onnx !== undefined) {
        if (file !== undefined)
          throw argumentError('give either a bundle or --onnx <file>, not both');
        return importOnnxCommand({ ...options, onnx: options.onnx });
      }
      if (file === undefined)
        throw argumentError(
          'give the bundle to import: ferry models import <bundle> [--name <model>]',
        );
      let bytes: Uint8Array;
      try {
        bytes = await readFile(file);
      } catch (cause) {
        throw new FerryError(
          'FERRY_DATA_UNREADABLE',
          `cannot read bundle '${file}': ${(cause as Error).message}`,
          { cause },
        );
      }
      const result = await withWorkspace(options, (ws) =>
        importBundle(ws.registry, bytes, {
          source: file,
          ...(options.name === undefined ? {} : { name: options.name }),
        }),
      );
      const { version, promoted, bundle } = result;
      if (options.json) {
        return printJson({
          model: version.model,
          version: version.version,
          champion: promoted,
          sha256: version.sha256,
          from: { model: bundle.model, version: bundle.version },
        });
      }
      process.stdout.write(
        `Imported ${bundle.model}:${bundle.version} as ${version.model}:${version.version}` +
          (promoted ? ' (champion)' : '') +
          `, sha256 ${version.sha256.slice(0, 12)} verified\n`,
      );
    });
}

function formatAliases(aliases: Readonly<Record<string, number>>): string {
  return Object.entries(aliases)
    .map(([a, v]) => `${a}->${v}`)
    .join(', ');
}
