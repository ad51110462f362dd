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

describe('ferry CLI: feature store governance', () => {
  const HOUR = 3_600_000;
  const T0 = Date.UTC(2026, 8, 1);
  let dir: string;
  const events: { card: string; at: number; amount: number }[] = [];

  /** ferry.yaml of the project, with `windows` for the amount aggregations. */
  function yaml(windows: string, moreFeatures = ''): string {
    return `
entities:
  - { name: card, keys: [card_id] }
feature_sets:
  - name: tx
    entity: card
    timestamp: ts
    owner: risk-team
    description: card transactions
    tags: [payments, tier1]
    source: { type: csv, path: tx.csv }
    features:
      - { name: amount, type: float }
      - { name: country, type: string }
    aggregations:
      - { column: amount, ops: [count, sum, max], windows: [${windows}] }
    ttl: 1d
feature_vectors:
  - name: fraud
    owner: risk-team
    features: [tx.amount, tx.country, tx.amount_sum_6h, { feature: tx.amount_max_6h, alias: biggest }${moreFeatures}]
    label: { source: { type: csv, path: labels.csv }, column: is_fraud, timestamp: ts }
`;
  }

  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'ferry-features-'));
    // 20 cards over 3 days; fraudulent cards spend big amounts. A fixed LCG keeps it repeatable.
    let seed = 7;
    const random = (): number => (seed = (seed * 48271) % 2147483647) / 2147483647;
    const tx = ['card_id,ts,amount,country'];
    const labels = ['card_id,ts,is_fraud'];
    for (let c = 0; c < 20; c++) {
      const fraud = c % 4 === 0;
      for (let i = 0; i < 30; i++) {
        const at = T0 + Math.floor(random() * 72 * HOUR);
        const amount = (fraud ? 200 : 20) + Math.round(random() * 50);
        events.push({ card: `c${c}`, at, amount });
        tx.push(`c${c},${new Date(at).toISOString()},${amount},${random() < 0.5 ? 'FR' : 'DE'}`);
        labels.push(`c${c},${new Date(at + 60_000).toISOString()},${fraud ? 1 : 0}`);
      }
    }
    writeFileSync(path.join(dir, 'tx.csv'), tx.join('\n') + '\n');
    writeFileSync(path.join(dir, 'labels.csv'), labels.join('\n') + '\n');
    writeFileSync(path.join(dir, 'ferry.yaml'), yaml('1h, 6h'));
  });

  const run = (args: string[]): ReturnType<typeof ferry> => ferry([...args, '--project', dir], dir);
  const json = <T>(args: string[]): T => {
    const result = run([...args, '--json']);
    expect(result.stderr).not.toContain('FERRY_');
    expect(result.status, result.stderr).toBe(0);
    return JSON.parse(result.stdout) as T;
  };

  it('answers --help for materialize and features list|show', () => {
    for (const command of [['materialize'], ['features', 'list'], ['features', 'show']]) {
      const help = ferry([...command, '--help'], dir);
      expect(help.status, command.join(' ')).toBe(0);
      expect(help.stdout).toContain(`Usage: ferry ${command.join(' ')}`);
    }
  });

  it('lists sets and vectors with version, owner, tags and the last ingestion', () => {
    expect(json<{ written: number }>(['ingest', 'tx']).written).toBe(600);
    const listed = json<
      {
        name: string;
        kind: string;
        version: number;
        owner: string;
        tags: string[];
        entity: string;
        last_ingestion: { written: number; read: number } | null;
      }[]
    >(['features', 'list']);
    expect(listed).toMatchObject([
      {
        name: 'tx',
        kind: 'feature_set',
        version: 1,
        owner: 'risk-team',
        tags: ['payments', 'tier1'],
        entity: 'card',
        last_ingestion: { read: 600, written: 600 },
      },
      { name: 'fraud', kind: 'feature_vector', version: 1, entity: 'card', last_ingestion: null },
    ]);
    const text = run(['features', 'list']);
    expect(text.status).toBe(0);
    expect(text.stdout).toMatch(/tx\s+feature set\s+1\s+risk-team\s+payments,tier1\s+card/);
  });

  it('trains from a vector, registering the dataset and the lineage', () => {
    const built = json<{ dataset: string; rows: number }>(['dataset', 'build', 'fraud']);
    expect(built.rows).toBe(600);
    expect(built.dataset).toMatch(/^fraud-/);
    const text = run(['dataset', 'build', 'fraud']);
    expect(text.stdout).toMatch(/Registered dataset fraud-\S+/);

    const trained = json<{
      version: number;
      vector: string;
      vector_version: number;
      dataset: string;
      task: string;
      metrics: Record<string, number>;
    }>(['train', '--vector', 'fraud', '--name', 'fraud_model']);
    expect(trained).toMatchObject({
      version: 1,
      vector: 'fraud',
      vector_version: 1,
      task: 'classification',
    });
    expect(trained.metrics.accuracy).toBeGreaterThan(0.9);
    const show = run(['models', 'show', 'fraud_model']);
    expect(show.status).toBe(0);
    // Keys and time are not features; the alias is.
    expect(show.stdout).toContain('biggest');
    expect(show.stdout).not.toMatch(/\bcard_id\b/);

    const shown = json<{
      current: { version: number; owner: string };
      history: { version: number; change: string }[];
      last_ingestion: { written: number; profile: { columns: Record<string, unknown> } };
      lineage: {
        sources: { role: string; path: string }[];
        feature_vectors: { name: string }[];
        datasets: { id: string }[];
        models: { model: string; version: number; dataset: string }[];
      };
    }>(['features', 'show', 'tx']);
    expect(shown.current).toMatchObject({ version: 1, owner: 'risk-team' });
    expect(shown.last_ingestion.written).toBe(600);
    expect(Object.keys(shown.last_ingestion.profile.columns)).toEqual(['amount', 'country']);
    expect(shown.lineage.sources).toEqual([
      { role: 'events', of: 'tx', path: 'tx.csv', sha256: null },
    ]);
    expect(shown.lineage.feature_vectors.map((v) => v.name)).toEqual(['fraud']);
    expect(shown.lineage.datasets.map((d) => d.id)).toContain(trained.dataset);
    expect(shown.lineage.models).toEqual([
      {
        model: 'fraud_model',
        version: 1,
        vector: 'fraud',
        vector_version: 1,
        dataset: trained.dataset,
      },
    ]);
    const vector = json<{ lineage: { sources: { role: string; sha256: string | null }[] } }>([
      'features',
      'show',
      'fraud',
    ]);
    expect(vector.lineage.sources.filter((s) => s.role === 'labels')[0]?.sha256).toMatch(
      /^[0-9a-f]{64}$/,
    );

    const people = run(['features', 'show', 'tx']);
    expect(people.status).toBe(0);
    for (const part of [
      'Feature set tx, version 1',
      'Versions:',
      'Last ingestion:',
      'Lineage:',
      'fraud_model v1',
    ])
      expect(people.stdout).toContain(part);
  });

  it('bumps the version when the definition changes and keeps the history', () => {
    writeFileSync(path.join(dir, 'ferry.yaml'), yaml('1h, 6h, 1d', ', tx.amount_sum_1d'));
    // The first command after the change warns that the online store kept only 6h of events.
    const first = run(['features', 'list', '--json']);
    expect(first.status, first.stderr).toBe(0);
    expect(first.stderr).toContain('FERRY_ONLINE_STALE');
    expect(first.stderr).toContain('ferry materialize tx');
    const shown = json<{
      current: { version: number };
      history: { version: number; change: string }[];
      lineage: { feature_vectors: { name: string; version: number }[] };
    }>(['features', 'show', 'tx']);
    expect(shown.current.version).toBe(2);
    expect(shown.history.map((h) => [h.version, h.change])).toEqual([
      [1, 'created'],
      [2, 'definition'],
    ]);
    expect(shown.lineage.feature_vectors).toEqual([{ name: 'fraud', version: 2 }]);
  });

  it('materializes the online store from the offline one, all of it or since a time', () => {
    const at = T0 + 73 * HOUR; // after every event: live traffic, which online answers exactly
    const lookup = (): { key: string; values: Record<string, unknown> }[] =>
      json([
        'features',
        'get',
        'fraud',
        '--key',
        'card_id=c0',
        '--key',
        'card_id=c5',
        '--at',
        new Date(at).toISOString(),
      ]);
    // ferry.yaml now has a 1d window, longer than what ingestion kept online (6h): a full
    // rebuild keeps the events the new window needs.
    const all = json<{ events: number; entities: number; cleared: boolean }>(['materialize', 'tx']);
    expect(all).toMatchObject({ events: 600, entities: 20, cleared: true });
    const rebuilt = lookup();
    for (const { key, values } of rebuilt) {
      const mine = events.filter((e) => e.card === key && e.at <= at);
      const sum = (window: number): number =>
        mine.filter((e) => e.at > at - window).reduce((total, e) => total + e.amount, 0);
      expect(values.amount_sum_6h, key).toBe(sum(6 * HOUR));
      expect(values.amount_sum_1d, key).toBe(sum(24 * HOUR));
    }
    const since = json<{ events: number; cleared: boolean }>([
      'materialize',
      'tx',
      '--since',
      new Date(T0 + 48 * HOUR).toISOString(),
    ]);
    expect(since.cleared).toBe(false);
    expect(since.events).toBeGreaterThan(0);
    expect(since.events).toBeLessThan(600);
    expect(lookup()).toEqual(rebuilt);
    const text = run(['materialize', 'tx', '--since', '1d']);
    expect(text.status).toBe(0);
    expect(text.stdout).toContain("Materialized 'tx': 0 events");
  });

  it('gives coded errors and exit code 2 for bad input', () => {
    const unknown = run(['materialize', 'nope']);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain('FERRY_FEATURE_SET_UNKNOWN');
    const since = run(['materialize', 'tx', '--since', 'yesterday']);
    expect(since.status).toBe(2);
    expect(since.stderr).toContain('FERRY_ARGUMENT_INVALID');
    const show = run(['features', 'show', 'nope']);
    expect(show.status).toBe(2);
    expect(show.stderr).toContain('FERRY_FEATURE_SET_UNKNOWN');
    const both = run(['train', '--vector', 'fraud', '--data', 'tx.csv', '--name', 'm']);
    expect(both.status).toBe(2);
    expect(both.stderr).toContain('FERRY_ARGUMENT_INVALID');
    const vector = run(['train', '--vector', 'nope', '--name', 'm']);
    expect(vector.status).toBe(2);
    expect(vector.stderr).toContain('FERRY_FEATURE_VECTOR_UNKNOWN');
  });
});

describe('ferry CLI: registry export, import and delete', () => {
  let dir: string;
  const source = (): string => path.join(dir, 'source');
  const target = (): string => path.join(dir, 'target');
  const showJson = (
    ref: string,
    project: string,
  ): {
    selected: number;
    versions: { version: number; sha256: string; metrics: object; lineage: object }[];
  } => JSON.parse(ferry(['models', 'show', ref, '--json', '--project', project], dir).stdout);

  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'ferry-cli-registry-'));
    penguinsCsv(path.join(dir, 'penguins.csv'));
    for (const project of [source(), target()]) {
      expect(ferry(['init', project], dir).status).toBe(0);
    }
    const data = ['--data', 'penguins.csv', '--target', 'Species', '--name', 'penguins'];
    for (const seed of ['1', '2']) {
      const train = ferry(['train', ...data, '--seed', seed, '--project', source()], dir);
      expect(train.stderr).not.toContain('FERRY_');
    }
  }, 120_000);

  it('exports a version to one file and imports it into another project as the next version', () => {
    const out = path.join(dir, 'penguins-v2.json');
    const exported = ferry(
      ['models', 'export', 'penguins:2', '--out', out, '--project', source()],
      dir,
    );
    expect(exported.stderr).toBe('');
    expect(exported.stdout).toContain('Exported penguins:2');
    expect(existsSync(out)).toBe(true);

    const imported = ferry(['models', 'import', out, '--project', target(), '--json'], dir);
    expect(imported.stderr).toBe('');
    expect(JSON.parse(imported.stdout)).toMatchObject({
      model: 'penguins',
      version: 1,
      champion: true,
      from: { model: 'penguins', version: 2 },
    });
    const again = ferry(['models', 'import', out, '--name', 'birds', '--project', target()], dir);
    expect(again.stdout).toContain('Imported penguins:2 as birds:1 (champion)');

    const original = showJson('penguins:2', source()).versions[1];
    const copy = showJson('penguins', target()).versions[0];
    expect(copy?.sha256).toBe(original?.sha256);
    expect(copy?.metrics).toEqual(original?.metrics);
    expect(copy?.lineage).toMatchObject({
      ...original?.lineage,
      imported_from: { model: 'penguins', version: 2, sha256: original?.sha256, bundle: out },
    });

    // One changed byte of the artifact: refused, nothing registered.
    const envelope = JSON.parse(readFileSync(out, 'utf8')) as { artifact: string };
    const bytes = Buffer.from(envelope.artifact, 'base64');
    bytes[10] = (bytes[10] ?? 0) ^ 0x20;
    const tampered = path.join(dir, 'tampered.json');
    writeFileSync(tampered, JSON.stringify({ ...envelope, artifact: bytes.toString('base64') }));
    const refused = ferry(['models', 'import', tampered, '--project', target()], dir);
    // FERRY_ARTIFACT_CORRUPT is an integrity failure (HTTP 500), so exit code 1, not 2.
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain('FERRY_ARTIFACT_CORRUPT');
    expect(refused.stderr).toContain('SHA-256');
    const notBundle = ferry(['models', 'import', 'penguins.csv', '--project', target()], dir);
    expect(notBundle.status).toBe(2);
    expect(notBundle.stderr).toContain('FERRY_ARGUMENT_INVALID');
    expect(showJson('penguins', target()).versions.map((v) => v.version)).toEqual([1]);

    const format = ferry(
      ['models', 'export', 'penguins:2', '--out', out, '--format', 'zip', '--project', source()],
      dir,
    );
    expect(format.status).toBe(2);
    expect(format.stderr).toContain('FERRY_ARGUMENT_INVALID');
  }, 60_000);

  it('deletes a version only when no alias points to it', () => {
    const run = (args: string[]): ReturnType<typeof ferry> =>
      ferry([...args, '--project', source()], dir);
    expect(run(['models', 'alias', 'set', 'penguins', 'challenger', '2']).status).toBe(0);
    const refused = run(['models', 'delete', 'penguins:2']);
    expect(refused.status).toBe(2);
    expect(refused.stderr).toContain('FERRY_ARGUMENT_INVALID');
    expect(refused.stderr).toContain("'challenger'");
    const champion = run(['models', 'delete', 'penguins:1']);
    expect(champion.stderr).toContain("'champion'");
    const noVersion = run(['models', 'delete', 'penguins']);
    expect(noVersion.status).toBe(2);
    expect(noVersion.stderr).toContain('<model>:<version>');

    expect(run(['models', 'alias', 'rm', 'penguins', 'challenger']).status).toBe(0);
    const deleted = run(['models', 'delete', 'penguins:2']);
    expect(deleted.stderr).toBe('');
    expect(deleted.stdout).toContain('Deleted penguins:2 and its artifact');
    expect(showJson('penguins', source()).versions.map((v) => v.version)).toEqual([1]);
    const gone = run(['models', 'delete', 'penguins:2']);
    expect(gone.status).toBe(2);
    expect(gone.stderr).toContain('FERRY_MODEL_VERSION_NOT_FOUND');
  }, 60_000);
});

describe('ferry CLI: model selection and runs', () => {
  let dir: string;
  let project: string;

  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'ferry-cli-search-'));
    project = path.join(dir, 'project');
    penguinsCsv(path.join(dir, 'penguins.csv'));
    expect(ferry(['init', project], dir).status).toBe(0);
  });

  it('searches the named models within a time budget, shows progress and records the run', () => {
    const train = ferry(
      [
        'train',
        ...['--data', 'penguins.csv', '--target', 'Species', '--name', 'penguins'],
        ...['--models', 'gbdt,logreg', '--search', 'random', '--trials', '3'],
        ...['--time-budget', '60s', '--cv', '3', '--metric', 'accuracy', '--seed', '5'],
        ...['--project', project],
      ],
      dir,
    );
    expect(train.stderr).not.toContain('FERRY_');
    expect(train.status).toBe(0);
    // Progress on stderr: candidate n of N, the best so far, the time left.
    expect(train.stderr).toMatch(/candidate 1\/6 \S+: .*best \S+ accuracy=\d\.\d{4}; \d+ s left/);
    expect(train.stdout).toContain('<- best');
    expect(train.stdout).toMatch(/Test score \(once, on 69 rows\): accuracy=/);
    const runId = /Run ([0-9a-f-]{36})\./.exec(train.stdout)?.[1] ?? '';

    const list = ferry(['runs', 'list', '--project', project], dir);
    expect(list.status).toBe(0);
    expect(list.stdout).toContain(runId);
    expect(list.stdout).toContain('succeeded');

    const show = ferry(['runs', 'show', runId, '--project', project], dir);
    expect(show.status).toBe(0);
    expect(show.stdout).toContain('Leaderboard (6 candidates)');
    expect(show.stdout).toContain('logistic_regression_2');
    expect(show.stdout).toContain('gbdt_3');

    const run = JSON.parse(
      ferry(['runs', 'show', runId, '--json', '--project', project], dir).stdout,
    ) as {
      status: string;
      params: Record<string, unknown>;
      metrics: Record<string, number>;
      outputs: {
        leaderboard: {
          name: string;
          algorithm: string;
          params: object;
          metrics: object;
          seconds: number;
        }[];
        search: { strategy: string; metric: string; launched: number };
        validation: { method: string; folds: number };
        test: { rows: number };
      };
    };
    expect(run.status).toBe('succeeded');
    expect(run.params).toMatchObject({
      seed: 5,
      models: ['gbdt', 'logreg'],
      search: 'random',
      trials: 3,
      timeBudgetMs: 60_000,
      cv: 3,
      metric: 'accuracy',
      testFraction: 0.2,
    });
    expect(run.params.dataSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(run.params).toHaveProperty('codeVersion');
    expect(run.outputs.leaderboard).toHaveLength(6);
    expect(new Set(run.outputs.leaderboard.map((e) => e.algorithm))).toEqual(
      new Set(['gbdt', 'linear']),
    );
    expect(run.outputs.search).toMatchObject({
      strategy: 'random',
      metric: 'accuracy',
      launched: 6,
    });
    expect(run.outputs.validation).toMatchObject({ method: 'cross_validation', folds: 3 });
    expect(run.outputs.test.rows).toBe(69);
    expect(run.metrics.test_accuracy).toBeGreaterThan(0.9);
  }, 120_000);

  it('refuses bad search flags and unknown runs with exit code 2', () => {
    const base = ['train', '--data', 'penguins.csv', '--target', 'Species', '--name', 'x'];
    const budget = ferry([...base, '--time-budget', 'soon', '--project', project], dir);
    expect(budget.status).toBe(2);
    expect(budget.stderr).toContain('--time-budget must be a duration');
    const models = ferry([...base, '--models', 'svm', '--project', project], dir);
    expect(models.status).toBe(2);
    expect(models.stderr).toMatch(/FERRY_ARGUMENT_INVALID: unknown model 'svm'/);
    const metric = ferry([...base, '--metric', 'rmse', '--project', project], dir);
    expect(metric.status).toBe(2);
    expect(metric.stderr).toContain("metric 'rmse' does not apply to classification");
    const unknown = ferry(['runs', 'show', 'nope', '--project', project], dir);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain('FERRY_RUN_NOT_FOUND');
  }, 60_000);
});
