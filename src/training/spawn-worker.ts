/**
 * Starts a worker thread on a module beside the caller, from the build (`.js`) or from
 * TypeScript sources (tsx, vitest). From sources the worker first registers tsx's loader and
 * then imports the `.ts` entry through tsx's `tsImport`: loader hooks registered with `--import`
 * do not reach worker threads on Node 20.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker, type WorkerOptions } from 'node:worker_threads';

/**
 * @param callerUrl `import.meta.url` of the module next to the entry.
 * @param entry the entry's file name without extension (`search-worker`).
 * @example const worker = spawnWorker(import.meta.url, 'search-worker', { workerData });
 */
export function spawnWorker(callerUrl: string, entry: string, options: WorkerOptions): Worker {
  // execArgv: [] so a worker does not repeat the parent's --import hooks.
  const settings: WorkerOptions = { ...options, execArgv: [] };
  if (callerUrl.endsWith('.ts')) {
    const api = path.join(
      path.dirname(createRequire(callerUrl).resolve('tsx/esm/api')),
      'index.mjs',
    );
    const url = JSON.stringify(new URL(`./${entry}.ts`, callerUrl).href);
    const code = `import(${JSON.stringify(pathToFileURL(api).href)}).then((tsx) => tsx.tsImport(${url}, ${url}));`;
    return new Worker(code, { ...settings, eval: true });
  }
  return new Worker(new URL(`./${entry}.js`, callerUrl), settings);
}
