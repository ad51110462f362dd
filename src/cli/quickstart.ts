/** `ferry quickstart` (and `npm run quickstart`): the whole loop on embedded stores. */
import type { Command } from 'commander';
import { runQuickstart } from '../quickstart/run.js';
import { argumentError } from './output.js';
import { waitForSignal } from './serve.js';

interface QuickstartOptions {
  readonly dir: string;
  readonly host?: string;
  readonly port?: string;
  readonly once?: boolean;
}

export function registerQuickstart(program: Command): void {
  program
    .command('quickstart')
    .description('generate data, build features, train, serve an endpoint and send it live traffic')
    .option('--dir <dir>', 'folder for the demo project (rebuilt on each run)', 'ferry-quickstart')
    .option('--host <host>', 'address to serve on', '127.0.0.1')
    .option('--port <port>', 'port to serve on', '8080')
    .option('--once', 'exit after the demo traffic instead of serving on')
    .action(async (options: QuickstartOptions) => {
      const port = Number(options.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) {
        throw argumentError(`--port must be a port number (0-65535), got '${options.port}'`);
      }
      const started = Date.now();
      const demo = await runQuickstart({
        dir: options.dir,
        port,
        ...(options.host ? { host: options.host } : {}),
      });
      process.stdout.write(`\nDone in ${((Date.now() - started) / 1000).toFixed(1)} s.\n`);
      if (options.once) {
        await demo.close();
        return;
      }
      process.stdout.write(
        `\nThe endpoint keeps serving at ${demo.server.url} (Ctrl-C to stop). Try:\n\n  ${demo.curl}\n\n` +
          `Metrics: curl -s ${demo.server.url}/metrics | grep ferry_\n` +
          `Drift:   npx ferry monitor fraud_detector --project ${options.dir}\n`,
      );
      await waitForSignal();
      await demo.close();
    });
}
