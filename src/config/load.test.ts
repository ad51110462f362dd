import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FerryError } from '../errors/index.js';
import { tempDirs } from '../testing/temp.js';
import { loadProject, parseProjectSpec } from './load.js';

const tmp = tempDirs();

function projectWith(yaml: string): string {
  const dir = tmp.fresh();
  writeFileSync(path.join(dir, 'ferry.yaml'), yaml);
  return dir;
}

function errorOf(fn: () => unknown): FerryError {
  try {
    fn();
  } catch (error) {
    if (error instanceof FerryError) return error;
    throw error;
  }
  throw new Error('expected an error');
}

const FEATURES = `
entities:
  - { name: card, keys: [card_id] }
feature_sets:
  - name: transactions
    entity: card
    timestamp: ts
    features:
      - { name: amount, type: float }
      - { name: country, type: string }
    aggregations:
      - { column: amount, ops: [count, sum], windows: [10m, 1h] }
    ttl: 2d
feature_vectors:
  - name: fraud_v1
    features: [transactions.amount, transactions.amount_sum_1h]
`;

describe('loadProject', () => {
  it('fills defaults and freezes the spec', () => {
    const project = loadProject(projectWith('project: demo\n'), { env: {} });
    expect(project.spec.project).toBe('demo');
    expect(project.spec.metadata).toEqual({ type: 'sqlite', path: 'metadata.db' });
    expect(project.spec.server.port).toBe(8080);
    expect(project.stateDir).toBe(path.join(project.dir, '.ferry'));
    expect(Object.isFrozen(project.spec.server)).toBe(true);
  });

  it('parses durations and checks feature references', () => {
    const project = loadProject(projectWith(FEATURES), { env: {} });
    expect(project.spec.feature_sets[0]?.ttl).toBe(2 * 86_400_000);
    expect(project.spec.feature_vectors[0]?.features).toContain('transactions.amount_sum_1h');
  });

  it('names the file, the path and the expectation for a wrong type', () => {
    const dir = projectWith('server:\n  port: "eighty"\n');
    const error = errorOf(() => loadProject(dir, { env: {} }));
    expect(error.code).toBe('FERRY_CONFIG_INVALID');
    expect(error.message).toContain(path.join(dir, 'ferry.yaml'));
    expect(error.message).toContain('server.port');
    expect(error.message).toMatch(/number/);
  });

  it('rejects unknown keys and unknown backend types', () => {
    const typo = errorOf(() => loadProject(projectWith('sever: {}\n'), { env: {} }));
    expect(typo.message).toContain('sever');
    const backend = errorOf(() =>
      loadProject(projectWith('online_store: { type: memcached }\n'), { env: {} }),
    );
    expect(backend.message).toContain('online_store.type');
    expect(backend.message).toContain('sqlite');
  });

  it('rejects a vector naming an undefined aggregation window, listing the defined ones', () => {
    const error = errorOf(() =>
      parseProjectSpec(
        {
          entities: [{ name: 'card', keys: ['card_id'] }],
          feature_sets: [
            {
              name: 'transactions',
              entity: 'card',
              timestamp: 'ts',
              features: [{ name: 'amount', type: 'float' }],
              aggregations: [{ column: 'amount', ops: ['sum'], windows: ['1h'] }],
            },
          ],
          feature_vectors: [{ name: 'v', features: ['transactions.amount_sum_2h'] }],
        },
        'test.yaml',
      ),
    );
    expect(error.message).toContain('feature_vectors[0].features[0]');
    expect(error.message).toContain('amount_sum_1h');
  });

  it('applies FERRY_ environment overrides before validating', () => {
    const project = loadProject(projectWith('project: demo\n'), {
      env: { FERRY_SERVER_PORT: '9091', FERRY_STATE_DIR: 'state' },
    });
    expect(project.spec.server.port).toBe(9091);
    expect(project.stateDir).toBe(path.join(project.dir, 'state'));
    const error = errorOf(() =>
      loadProject(projectWith('project: demo\n'), { env: { FERRY_SERVER_PORT: 'x' } }),
    );
    expect(error.message).toContain('server.port');
  });

  it('reports a missing ferry.yaml with the command that creates one', () => {
    const dir = tmp.fresh();
    const error = errorOf(() => loadProject(dir, { env: {} }));
    expect(error.code).toBe('FERRY_CONFIG_NOT_FOUND');
    expect(error.message).toContain('ferry init');
  });

  it('reports YAML syntax errors with the file name', () => {
    const error = errorOf(() => loadProject(projectWith('server: [\n'), { env: {} }));
    expect(error.code).toBe('FERRY_CONFIG_INVALID');
    expect(error.message).toContain('ferry.yaml');
  });
});
