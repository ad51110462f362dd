/**
 * Runs TypeScript in a separate Node process, for tests that need a second process: a crash
 * (SIGKILL right after a write) or writers contending across processes.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
/** The repository root: scripts import our modules as `./src/...` from it. */
const ROOT = path.resolve(import.meta.dirname, '../..');

/**
 * Runs `script` (an ES module, TypeScript through tsx) with `args` as `process.argv.slice(1)`,
 * from the repository root. Resolves with its output once it exits with 0; rejects otherwise,
 * with the exit `code` or the `signal` that ended it.
 * @example
 * await expect(runScript(`process.kill(process.pid, 'SIGKILL')`, [])).rejects.toMatchObject({ signal: 'SIGKILL' });
 */
export function runScript(
  script: string,
  args: readonly string[],
): Promise<{ stdout: string; stderr: string }> {
  return run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, ...args], {
    cwd: ROOT,
  });
}
