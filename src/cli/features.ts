/** `ferry features get <feature_vector> --key k=v`: an online lookup. */
import type { Command } from 'commander';
import { withWorkspace, type GlobalOptions } from './context.js';
import { argumentError, printJson, printTable } from './output.js';

interface GetOptions extends GlobalOptions {
  readonly key: string[];
  readonly at?: string;
}

export function registerFeatures(program: Command): void {
  const features = program.command('features').description('online feature lookups');
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
}
