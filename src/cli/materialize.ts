/**
 * `ferry materialize <feature_set> [--since <time>]`: rebuilds the online store of a feature set
 * from the offline store: all history after clearing the set online, or only the events since
 * an ISO time or a duration ago (`2d`, `6h`), added to what is online.
 */
import type { Command } from 'commander';
import { parseDuration } from '../config/schema.js';
import { withWorkspace, type GlobalOptions } from './context.js';
import { argumentError, printJson, progress } from './output.js';

interface MaterializeCliOptions extends GlobalOptions {
  readonly since?: string;
}

export function registerMaterialize(program: Command): void {
  program
    .command('materialize')
    .description("rebuild a feature set's online values and recent events from the offline store")
    .argument('<feature_set>', 'feature set name from ferry.yaml')
    .option(
      '--since <time>',
      'only events at or after this ISO time, or this long ago (30m, 6h, 2d); without it the set is cleared online and rebuilt from all history',
    )
    .option('--json', 'machine-readable output')
    .addHelpText(
      'after',
      `
Examples:
  ferry materialize transactions
  ferry materialize transactions --since 2d
  ferry materialize transactions --since 2026-10-01T00:00:00Z`,
    )
    .action(async (name: string, _o: unknown, command: Command) => {
      const options = command.optsWithGlobals<MaterializeCliOptions>();
      const since = options.since === undefined ? undefined : parseSince(options.since, Date.now());
      const say = progress(options);
      const result = await withWorkspace(options, (ws) =>
        ws.features.materialize(name, {
          ...(since === undefined ? {} : { since }),
          onProgress: say,
        }),
      );
      if (options.json) return printJson(result);
      process.stdout.write(
        `Materialized '${name}': ${result.events} events of ${result.entities} entities ` +
          (result.since === null
            ? 'from all history (the set was cleared online first)'
            : `since ${new Date(result.since).toISOString()}`) +
          '\n',
      );
    });
}

/**
 * `--since`: an ISO time, or a duration before `now`.
 * @example parseSince('2d', Date.UTC(2026, 9, 3)) // Date.UTC(2026, 9, 1)
 */
export function parseSince(text: string, now: number): number {
  if (/^\d+(ms|s|m|h|d)$/.test(text)) return now - parseDuration(text);
  const at = /^\d{4}-\d{2}-\d{2}/.test(text) ? Date.parse(text) : NaN;
  if (Number.isNaN(at))
    throw argumentError(
      `--since must be an ISO time such as 2026-10-01T00:00:00Z or a duration such as 2d or 6h, got '${text}'`,
    );
  return at;
}
