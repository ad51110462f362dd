/**
 * Ferry's version, reported by `ferry --version`, `GET /v2` and recorded with every run and
 * deployment, and the git commit of the source tree when it runs from a checkout.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const FERRY_VERSION = '0.1.0';

let commit: string | null | undefined;

/**
 * The git commit of Ferry's own source tree, when it runs from a checkout (null otherwise):
 * with the version, the code a run can be reproduced with.
 */
export function codeVersion(): { ferry: string; commit: string | null } {
  if (commit === undefined) {
    try {
      commit = execFileSync('git', ['rev-parse', 'HEAD'], {
        cwd: path.dirname(fileURLToPath(import.meta.url)),
        stdio: ['ignore', 'pipe', 'ignore'],
        timeout: 5000,
        encoding: 'utf8',
      }).trim();
      if (!/^[0-9a-f]{40}$/.test(commit)) commit = null;
    } catch {
      commit = null;
    }
  }
  return { ferry: FERRY_VERSION, commit };
}
