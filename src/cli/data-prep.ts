/**
 * `ferry data prep <recipe> [--out file] [--json]`: runs a recipe of ferry.yaml (`recipes:`) on
 * its source and writes the prepared rows (splits to `<name>.<part>.<ext>`) with the fitted
 * recipe beside them (`<out>.recipe.json`). Prints where every row went; progress goes to stderr.
 */
import path from 'node:path';
import type { Command } from 'commander';
import { formatPrepReport, loadFittedRecipe, runRecipe } from '../data/prep/index.js';
import { fileReferences } from '../data/validate/reference.js';
import { withWorkspace, type GlobalOptions } from './context.js';
import { printJson, progress } from './output.js';

interface PrepOptions extends GlobalOptions {
  readonly out?: string;
  readonly fitted?: string;
}

export function registerDataPrep(data: Command): void {
  data
    .command('prep')
    .description('run a preparation recipe from ferry.yaml and write the prepared data')
    .argument('<recipe>', 'recipe name under `recipes:`')
    .option('--out <file>', "output file (.parquet, .csv or .jsonl); default: the recipe's out")
    .option(
      '--fitted <file>',
      'apply the learned constants of an earlier run (<out>.recipe.json) instead of fitting',
    )
    .option('--json', 'print the report as JSON')
    .action(async (recipe: string, _o: unknown, command: Command) => {
      const options = command.optsWithGlobals<PrepOptions>();
      const say = progress(options);
      const fitted = options.fitted ? loadFittedRecipe(path.resolve(options.fitted)) : undefined;
      const report = await withWorkspace(options, (ws) =>
        runRecipe(ws.project.spec, ws.project.dir, recipe, {
          ...(options.out ? { out: path.resolve(options.out) } : {}),
          ...(fitted ? { fitted } : {}),
          onProgress: say,
          quarantine: ws.offline,
          resolveReference: fileReferences(
            ws.project.dir,
            async (model) => (await ws.registry.resolve(model)).profile,
          ),
        }),
      );
      if (options.json) printJson(report);
      else process.stdout.write(`${formatPrepReport(report)}\n`);
    });
}
