/** `ferry serve`: every registered model and endpoint over the Open Inference Protocol v2. */
import type { Command } from 'commander';
import { openWorkspace } from '../project/workspace.js';
import { startServer } from '../serving/start.js';
import { projectFrom, type GlobalOptions } from './context.js';
import { argumentError } from './output.js';

interface ServeOptions extends GlobalOptions {
  readonly host?: string;
  readonly port?: string;
}

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description(
      'serve registered models and endpoints over HTTP (Open Inference Protocol v2) with /metrics',
    )
    .option('--host <host>', 'address to listen on (default: server.host, 127.0.0.1)')
    .option('--port <port>', 'port to listen on (default: server.port, 8080)')
    .action(async (_o: unknown, command: Command) => {
      const options = command.optsWithGlobals<ServeOptions>();
      const port = options.port === undefined ? undefined : Number(options.port);
      if (port !== undefined && !(Number.isInteger(port) && port >= 0 && port <= 65535)) {
        throw argumentError(`--port must be a port number (0-65535), got '${options.port}'`);
      }
      const ws = await openWorkspace(projectFrom(options));
      let server;
      try {
        server = await startServer(ws, {
          ...(options.host ? { host: options.host } : {}),
          ...(port === undefined ? {} : { port }),
        });
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
