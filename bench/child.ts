/**
 * What the benchmarks that compare with XGBoost share: Debian's Python (the one with
 * python3-xgboost, not a pyenv `python3`), matrices handed over as raw binary files, and child
 * processes that print their result as the last line of JSON on stdout.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';

export const PYTHON = '/usr/bin/python3';

/** True when `PYTHON` can import xgboost (`apt-get install -y python3-xgboost`). */
export function xgboostPresent(): boolean {
  return spawnSync(PYTHON, ['-c', 'import xgboost'], { stdio: 'ignore' }).status === 0;
}

/** Writes a typed array's bytes as they are (numpy reads them with `fromfile`). */
export function writeTyped(file: string, data: Float64Array | Int32Array): void {
  writeFileSync(file, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
}

export function readFloat64(file: string): Float64Array {
  const bytes = readFileSync(file);
  return new Float64Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 8);
}

/**
 * Runs a child and resolves with the JSON of its last stdout line; rejects with the tail of its
 * stderr when it fails or prints no result.
 * @example const r = await runJsonChild<{ fitSeconds: number }>(PYTHON, ['-c', script, dir]);
 */
export function runJsonChild<T>(
  command: string,
  args: readonly string[],
  options: { readonly cwd?: string; readonly env?: NodeJS.ProcessEnv } = {},
): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const tail = err.trim().split('\n').slice(-3).join(' / ');
      if (code !== 0) return reject(new Error(`${command} exited with code ${code}: ${tail}`));
      try {
        resolve(JSON.parse(out.trim().split('\n').pop() ?? '') as T);
      } catch {
        reject(new Error(`${command} printed no result: ${out} ${tail}`));
      }
    });
  });
}
