/** `ferry monitor <model>`: drift of logged traffic against the training profile. */
import type { Command } from 'commander';
import { monitorModel, type MonitorReport } from '../monitoring/monitor.js';
import { withWorkspace, type GlobalOptions } from './context.js';
import { argumentError, printJson, printTable } from './output.js';

interface MonitorOptions extends GlobalOptions {
  readonly since?: string;
}

export function registerMonitor(program: Command): void {
  program
    .command('monitor')
    .description("per-feature drift (PSI) of a model's logged traffic against its training data")
    .argument('<model>', 'registered model name')
    .option('--since <time>', 'only traffic after this ISO time, or a duration ago such as 1h')
    .option('--json', 'machine-readable output')
    .action(async (model: string, _o: unknown, command: Command) => {
      const options = command.optsWithGlobals<MonitorOptions>();
      const since = options.since === undefined ? undefined : parseSince(options.since);
      const report = await withWorkspace(options, (ws) =>
        monitorModel(ws.registry, ws.offline, model, since === undefined ? {} : { since }),
      );
      if (options.json) printJson(report);
      else printMonitorReport(report);
    });
}

export function printMonitorReport(report: MonitorReport): void {
  const period =
    report.from === null
      ? ''
      : ` from ${new Date(report.from).toISOString()} to ${new Date(report.to ?? report.from).toISOString()}`;
  process.stdout.write(
    `Model ${report.model}: ${report.rows} logged predictions${period}\n` +
      `Reference: training profile of version ${report.referenceVersion}; versions in traffic: ${Object.entries(
        report.versions,
      )
        .map(([v, n]) => `${v} (${n})`)
        .join(', ')}\n\n`,
  );
  printTable(
    ['feature', 'psi', 'status', 'rows'],
    report.features.map((f) => [f.column, f.psi, f.status, f.liveCount]),
  );
  process.stdout.write(
    report.drifted.length > 0
      ? `\nDrift (PSI >= 0.25) in: ${report.drifted.join(', ')}\n`
      : '\nNo feature drifted (PSI < 0.25 everywhere).\n',
  );
}

function parseSince(text: string): number {
  const duration = /^(\d+)(s|m|h|d)$/.exec(text);
  if (duration) {
    const unit = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[
      duration[2] as 's' | 'm' | 'h' | 'd'
    ];
    return Date.now() - Number(duration[1]) * unit;
  }
  const time = Date.parse(text);
  if (Number.isNaN(time))
    throw argumentError(`--since must be an ISO time or a duration such as 1h, got '${text}'`);
  return time;
}
