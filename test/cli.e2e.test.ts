/**
 * The CLI end to end, as a user runs it: init, train on a public data set (penguins, numeric and
 * string columns with missing values), inspect the registry, serve over OIP v2, monitor, and the
 * errors a user gets for bad input.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '..');
const MAIN = path.join(ROOT, 'src/cli/main.ts');
const TSX = pathToFileURL(path.join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href;

function ferry(args: string[], cwd: string): { status: number; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, ['--import', TSX, MAIN, ...args], {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, FERRY_PROJECT: '' },
  });
  return { status: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

function penguinsCsv(file: string): void {
  const rows = JSON.parse(
    readFileSync(path.join(ROOT, 'node_modules/vega-datasets/data/penguins.json'), 'utf8'),
  ) as Record<string, string | number | null>[];
  const header = Object.keys(rows[0] ?? {});
  const quote = (v: string | number | null): string =>
    v === null ? '' : typeof v === 'number' ? String(v) : `"${v.replace(/"/g, '""')}"`;
  writeFileSync(
    file,
    [
      header.map(quote).join(','),
      ...rows.map((r) => header.map((h) => quote(r[h] ?? null)).join(',')),
    ].join('\n') + '\n',
  );
}

describe('ferry CLI', () => {
  let dir: string;
  let server: ChildProcess | undefined;

  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'ferry-cli-'));
    penguinsCsv(path.join(dir, 'penguins.csv'));
  });

  afterAll(() => {
    server?.kill('SIGKILL');
  });

  it('answers --help for the program and every command', () => {
    const help = ferry(['--help'], dir);
    expect(help.status).toBe(0);
    for (const command of ['init', 'train', 'models', 'serve', 'monitor', 'quickstart']) {
      expect(help.stdout).toContain(command);
      const sub = ferry([command, '--help'], dir);
      expect(sub.status, command).toBe(0);
      expect(sub.stdout).toContain('Usage: ferry ' + command);
    }
  });

  it('creates a project with ferry init and refuses to overwrite it', () => {
    const project = path.join(dir, 'project');
    const first = ferry(['init', project], dir);
    expect(first.status).toBe(0);
    expect(existsSync(path.join(project, 'ferry.yaml'))).toBe(true);
    expect(existsSync(path.join(project, '.ferry'))).toBe(true);
    const again = ferry(['init', project], dir);
    expect(again.status).toBe(2);
    expect(again.stderr).toContain('FERRY_ARGUMENT_INVALID');
  });

  it('trains on penguins, registers version 1 as champion and shows it', () => {
    const project = path.join(dir, 'project');
    const train = ferry(
      [
        'train',
        '--data',
        'penguins.csv',
        '--target',
        'Species',
        '--name',
        'penguins',
        '--project',
        project,
        '--json',
      ],
      dir,
    );
    expect(train.stderr).not.toContain('FERRY_');
    expect(train.status).toBe(0);
    const result = JSON.parse(train.stdout) as {
      version: number;
      champion: boolean;
      task: string;
      candidates: { name: string }[];
      metrics: Record<string, number>;
    };
    expect(result.version).toBe(1);
    expect(result.champion).toBe(true);
    expect(result.task).toBe('classification');
    expect(result.candidates.length).toBeGreaterThanOrEqual(2);
    expect(result.metrics.accuracy).toBeGreaterThan(0.9);

    const list = JSON.parse(
      ferry(['models', 'list', '--json', '--project', project], dir).stdout,
    ) as { name: string; aliases: Record<string, number> }[];
    expect(list.map((m) => m.name)).toEqual(['penguins']);
    expect(list[0]?.aliases.champion).toBe(1);

    const show = ferry(['models', 'show', 'penguins', '--project', project], dir);
    expect(show.status).toBe(0);
    expect(show.stdout).toContain('Beak Length (mm)');
    expect(show.stdout).toContain('Adelie, Chinstrap, Gentoo');
  });

  it('gives coded errors and exit code 2 for bad input', () => {
    const project = path.join(dir, 'project');
    const missing = ferry(
      ['train', '--data', 'nope.csv', '--target', 'y', '--name', 'm', '--project', project],
      dir,
    );
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/FERRY_DATA_UNREADABLE: .*nope\.csv/);
    const target = ferry(
      [
        'train',
        '--data',
        'penguins.csv',
        '--target',
        'species',
        '--name',
        'm',
        '--project',
        project,
      ],
      dir,
    );
    expect(target.status).toBe(2);
    expect(target.stderr).toContain('FERRY_COLUMN_UNKNOWN');
    expect(target.stderr).toContain('Species');
    const model = ferry(['models', 'show', 'nobody', '--project', project], dir);
    expect(model.status).toBe(2);
    expect(model.stderr).toContain('FERRY_MODEL_NOT_FOUND');
    const unknown = ferry(['trian'], dir);
    expect(unknown.status).toBe(2);
    const noData = ferry(['monitor', 'penguins', '--project', project], dir);
    expect(noData.status).toBe(2);
    expect(noData.stderr).toContain('FERRY_MONITOR_NO_DATA');
  });

  it('serves the model over OIP v2, logs predictions, and monitor reports drift', async () => {
    const project = path.join(dir, 'project');
    server = spawn(
      process.execPath,
      ['--import', TSX, MAIN, 'serve', '--port', '0', '--project', project],
      { cwd: dir },
    );
    const url = await new Promise<string>((resolve, reject) => {
      let err = '';
      server?.stderr?.on('data', (chunk: Buffer) => {
        err += chunk.toString();
        const match = /at (http:\/\/\S+)/.exec(err);
        if (match?.[1]) resolve(match[1]);
      });
      server?.on('exit', (code) => reject(new Error(`serve exited with ${code}: ${err}`)));
    });
    expect((await fetch(`${url}/v2/health/ready`)).status).toBe(200);
    const meta = (await (await fetch(`${url}/v2/models/penguins`)).json()) as {
      inputs: { name: string }[];
      parameters: { classes: string[] };
    };
    expect(meta.parameters.classes).toEqual(['Adelie', 'Chinstrap', 'Gentoo']);
    expect(meta.inputs.map((i) => i.name)).toContain('Body Mass (g)');

    const body = {
      id: 'e2e-1',
      inputs: [
        { name: 'Island', shape: [2], datatype: 'BYTES', data: ['Biscoe', 'Torgersen'] },
        { name: 'Beak Length (mm)', shape: [2], datatype: 'FP64', data: [47.5, 39.1] },
        { name: 'Beak Depth (mm)', shape: [2], datatype: 'FP64', data: [15.0, 18.7] },
        { name: 'Flipper Length (mm)', shape: [2], datatype: 'FP64', data: [218, 181] },
        { name: 'Body Mass (g)', shape: [2], datatype: 'FP64', data: [4950, 3750] },
        { name: 'Sex', shape: [2], datatype: 'BYTES', data: ['MALE', null] },
      ],
    };
    const reply = await fetch(`${url}/v2/models/penguins/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    expect(reply.status).toBe(200);
    const out = (await reply.json()) as {
      id: string;
      model_version: string;
      outputs: { name: string; data: unknown[] }[];
    };
    expect(out.id).toBe('e2e-1');
    expect(out.model_version).toBe('1');
    expect(out.outputs.find((o) => o.name === 'predict')?.data).toEqual(['Gentoo', 'Adelie']);

    const bad = await fetch(`${url}/v2/models/penguins/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"inputs": [',
    });
    expect(bad.status).toBe(400);
    expect((await fetch(`${url}/v2/health/live`)).status).toBe(200);

    const exited = new Promise<number | null>((resolve) =>
      server?.on('exit', (code) => resolve(code)),
    );
    server.kill('SIGTERM');
    expect(await exited).toBe(0);
    server = undefined;

    const monitor = ferry(['monitor', 'penguins', '--json', '--project', project], dir);
    expect(monitor.stderr).toBe('');
    const report = JSON.parse(monitor.stdout) as {
      rows: number;
      features: { column: string; psi: number }[];
    };
    expect(report.rows).toBe(2);
    expect(report.features.map((f) => f.column)).toContain('Body Mass (g)');
  });
});
