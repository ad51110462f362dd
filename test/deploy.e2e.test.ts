/**
 * `ferry deploy` and `ferry endpoints list|show` as a user runs them, on a project with a
 * registered toy model: the first deploy records version 1, the same spec again changes nothing,
 * an edit of ferry.yaml records version 2, an invalid spec records nothing and exits 2, and the
 * listing and history show what was recorded.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadProject } from '../src/config/load.js';
import { openWorkspace } from '../src/project/workspace.js';
import { toyVersion } from '../src/testing/model-fixture.js';
import { tempDirs } from '../src/testing/temp.js';

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

/** ferry.yaml with endpoint `toy_score` (a transform, then the toy model) and `spare`. */
function yaml(transform: string): string {
  return `project: deploy-e2e
log_level: warn
endpoints:
  - name: toy_score
    description: scores toy rows
    inputs: { boost: float }
    steps:
      - kind: transform
        set: { x: "${transform}" }
      - { kind: model, model: toy@champion, output: answer }
  - name: spare
    steps:
      - { kind: model, model: "toy:1" }
`;
}

interface ShownJson {
  endpoint: string;
  status: string;
  latest: { version: number; specHash: string; spec: { steps: { set?: { x?: string } }[] } };
  history: { version: number; createdAt: number; models: { ref: string; version: number }[] }[];
}

describe('ferry deploy and ferry endpoints', () => {
  const tmp = tempDirs();
  let project: string;

  beforeAll(async () => {
    project = tmp.fresh();
    fs.writeFileSync(path.join(project, 'ferry.yaml'), yaml('x + boost'));
    const ws = await openWorkspace(loadProject(project));
    try {
      await ws.registry.register({ model: 'toy', ...toyVersion() });
    } finally {
      await ws.close();
    }
  });

  // Each command is a process of its own that loads the TypeScript sources: seconds apiece on busy cores.
  it(
    'records version 1, keeps it while the spec is the same, and records 2 after an edit',
    { timeout: 300_000 },
    () => {
      const before = ferry(['endpoints', 'list', '--project', project], project);
      expect(before.stderr).toBe('');
      expect(before.status).toBe(0);
      expect(before.stdout).toMatch(/toy_score\s+not deployed\s+transform -> model\s+toy@champion/);

      const first = ferry(['deploy', 'toy_score', '--project', project], project);
      expect(first.stderr).toBe('');
      expect(first.status).toBe(0);
      expect(first.stdout).toContain('Deployed endpoint toy_score: version 1 (new');
      expect(first.stdout).toContain('toy@champion -> v1');
      expect(first.stdout).toMatch(/request:\s+(x:float, boost:float|boost:float, x:float), color/);
      expect(first.stdout).toMatch(/response:\s+answer, answer_score, model, model_version/);

      const again = ferry(['deploy', 'toy_score', '--project', project, '--json'], project);
      expect(again.status).toBe(0);
      const unchanged = JSON.parse(again.stdout) as { version: number; created: boolean };
      expect(unchanged).toMatchObject({ version: 1, created: false });

      fs.writeFileSync(path.join(project, 'ferry.yaml'), yaml('x * boost'));
      const second = ferry(['deploy', 'toy_score', '--project', project], project);
      expect(second.status).toBe(0);
      expect(second.stdout).toContain('Deployed endpoint toy_score: version 2 (new');

      // An invalid spec: nothing recorded, the compile error, exit 2.
      fs.writeFileSync(path.join(project, 'ferry.yaml'), yaml('x * nowhere'));
      const bad = ferry(['deploy', 'toy_score', '--project', project], project);
      expect(bad.status).toBe(2);
      expect(bad.stderr).toMatch(/^FERRY_CONFIG_INVALID: .*toy_score.*nowhere/);
      expect(bad.stdout).toBe('');

      const unknown = ferry(['deploy', 'fraud', '--project', project], project);
      expect(unknown.status).toBe(2);
      expect(unknown.stderr).toMatch(/^FERRY_ENDPOINT_NOT_FOUND: .*'fraud'.*toy_score, spare/);
    },
  );

  it(
    'lists each endpoint with its deployed version and shows the latest spec and history',
    { timeout: 300_000 },
    () => {
      // ferry.yaml still holds the invalid edit of the test above: toy_score has changed since 2.
      const list = ferry(['endpoints', 'list', '--project', project], project);
      expect(list.status).toBe(0);
      const lines = list.stdout.trimEnd().split('\n');
      expect(lines[0]).toMatch(/^endpoint\s+deployed\s+steps\s+models\s+description$/);
      expect(lines[1]).toMatch(
        /^toy_score\s+2 \(ferry\.yaml changed\)\s+transform -> model\s+toy@champion=v1\s+scores toy rows$/,
      );
      expect(lines[2]).toMatch(/^spare\s+not deployed\s+model\s+toy:1\s+-$/);

      fs.writeFileSync(path.join(project, 'ferry.yaml'), yaml('x * boost'));
      const json = ferry(['endpoints', 'list', '--project', project, '--json'], project);
      const listed = JSON.parse(json.stdout) as {
        name: string;
        status: string;
        deployed: number;
      }[];
      expect(listed.map((e) => [e.name, e.status, e.deployed])).toEqual([
        ['toy_score', 'deployed', 2],
        ['spare', 'not deployed', null],
      ]);

      const show = ferry(['endpoints', 'show', 'toy_score', '--project', project], project);
      expect(show.stderr).toBe('');
      expect(show.status).toBe(0);
      expect(show.stdout).toMatch(/^Endpoint toy_score, deployment 2 of \d{4}-\d\d-\d\dT/);
      expect(show.stdout).toContain('x * boost');
      expect(show.stdout).not.toContain('x + boost');
      expect(show.stdout).toContain('toy@champion -> toy:1');
      expect(show.stdout).toMatch(/Versions:\n {2}v2 {2}\d{4}-.*\n {2}v1 {2}\d{4}-/);

      const shownJson = ferry(
        ['endpoints', 'show', 'toy_score', '--project', project, '--json'],
        project,
      );
      const shown = JSON.parse(shownJson.stdout) as ShownJson;
      expect(shown.status).toBe('deployed');
      expect(shown.latest.version).toBe(2);
      expect(shown.latest.spec.steps[0]?.set?.x).toBe('x * boost');
      expect(shown.history.map((h) => h.version)).toEqual([2, 1]);
      expect(shown.history[0]?.models).toEqual([{ ref: 'toy@champion', model: 'toy', version: 1 }]);

      const never = ferry(['endpoints', 'show', 'spare', '--project', project], project);
      expect(never.status).toBe(2);
      expect(never.stderr).toMatch(
        /^FERRY_ENDPOINT_NOT_FOUND: .*never deployed.*ferry deploy spare/,
      );
    },
  );
});
