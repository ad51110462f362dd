/**
 * `ferry serve`: every registered model and endpoint over the Open Inference Protocol v2, in this
 * process or, with `--workers N`, in N worker processes sharing one port (src/serving/workers.ts).
 */
import cluster from 'node:cluster';
import type { Command } from 'commander';
import { openWorkspace } from '../project/workspace.js';
import { startServer } from '../serving/start.js';
import { runPrimary, runWorker, workerProject } from '../serving/workers.js';
import { projectFrom, type GlobalOptions } from './context.js';
import { argumentError } from './output.js';

interface ServeOptions extends GlobalOptions {
  readonly host?: string;
  readonly port?: string;
  readonly workers?: string;
}

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description(
      'serve registered models and endpoints over HTTP (Open Inference Protocol v2) with /metrics',
    )
    .option('--host <host>', 'address to listen on (default: server.host, 127.0.0.1)')
    .option('--port <port>', 'port to listen on (default: server.port, 8080)')
    .option(
      '--workers <n>',
      'worker processes sharing the port; a worker that dies is replaced (default: 1, this process)',
    )
    .action(async (_o: unknown, command: Command) => {
      const options = command.optsWithGlobals<ServeOptions>();
      const port = options.port === undefined ? undefined : Number(options.port);
      if (port !== undefined && !(Number.isInteger(port) && port >= 0 && port <= 65535)) {
        throw argumentError(`--port must be a port number (0-65535), got '${options.port}'`);
      }
      const workers = options.workers === undefined ? 1 : Number(options.workers);
      if (!(Number.isInteger(workers) && workers >= 1 && workers <= 256)) {
        throw argumentError(
          `--workers must be a whole number from 1 to 256, got '${options.workers}'`,
        );
      }
      const listen = {
        ...(options.host ? { host: options.host } : {}),
        ...(port === undefined ? {} : { port }),
      };
      if (workers > 1 && cluster.isPrimary) {
        // A bad ferry.yaml is reported once, here, rather than by every worker. The primary opens
        // no store: the workers run this command again with the same arguments and take the
        // branch below.
        projectFrom(options);
        const result = await runPrimary({
          workers,
          log: (line) => process.stderr.write(`${line}\n`),
        });
        if (result.killed > 0 || result.failed > 0) process.exitCode = 1;
        return;
      }
      if (cluster.isWorker) {
        await runWorker(async (metricsText) => {
          const ws = await openWorkspace(workerProject(projectFrom(options)));
          try {
            // `/metrics` answers for every worker, not only the one a scrape reached.
            const server = await startServer(ws, { ...listen, metricsText });
            return {
              url: server.url,
              served: server.served,
              registry: server.metrics.registry,
              close: async () => {
                try {
                  await server.close();
                } finally {
                  await ws.close();
                }
              },
            };
          } catch (error) {
            await ws.close();
            throw error;
          }
        });
        return;
      }
      const ws = await openWorkspace(projectFrom(options));
      let server;
      try {
        server = await startServer(ws, listen);
      } catch (error) {
        await ws.close();
        throw error;
      }
      process.stderr.write(
        `Serving ${server.served.join(', ') || '(no models yet)'} at ${server.url}\n`,
      );
      await waitForSignal();
      process.stderr.write('Draining in-flight requests...\n');
      await server.close();
      await ws.close();
    });
}

/** Resolves on SIGINT or SIGTERM, so the caller can drain and close. */
export function waitForSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const done = (signal: NodeJS.Signals): void => {
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      resolve(signal);
    };
    process.on('SIGINT', done);
    process.on('SIGTERM', done);
  });
}
