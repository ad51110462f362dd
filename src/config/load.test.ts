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

describe('feature set steps and validation', () => {
  const featureSet = (extra: Record<string, unknown>): Record<string, unknown> => ({
    entities: [{ name: 'card', keys: ['card_id'] }],
    validations: [{ name: 'tx_rules', rules: [{ rule: 'not_null', column: 'amount' }] }],
    feature_sets: [
      {
        name: 'transactions',
        entity: 'card',
        timestamp: 'ts',
        features: [{ name: 'amount_eur', type: 'float' }],
        ...extra,
      },
    ],
  });

  it('takes row-wise steps and a rule set by name or inline', () => {
    const steps = [
      { step: 'rename', columns: { card: 'card_id' } },
      { step: 'cast', column: 'amount', to: 'float', decimal: ',' },
      { step: 'fill', columns: ['rate'], with: 'constant', value: 1 },
      { step: 'drop_missing', columns: ['amount'] },
      { step: 'filter', where: 'amount > 0' },
      { step: 'derive', column: 'amount_eur', expr: 'amount * rate', type: 'float' },
      { step: 'select', columns: ['card_id', 'ts', 'amount_eur'] },
    ];
    const named = parseProjectSpec(featureSet({ steps, validation: 'tx_rules' }), 'test.yaml');
    expect(named.feature_sets[0]?.steps.map((s) => s.step)).toEqual(steps.map((s) => s.step));
    expect(named.feature_sets[0]?.validation).toBe('tx_rules');
    const inline = parseProjectSpec(
      featureSet({ validation: { rules: [{ rule: 'range', column: 'amount_eur', min: 0 }] } }),
      'test.yaml',
    );
    expect(inline.feature_sets[0]?.steps).toEqual([]);
    expect(inline.feature_sets[0]?.validation).toEqual({
      policy: 'quarantine',
      rules: [{ rule: 'range', column: 'amount_eur', min: 0 }],
    });
  });

  it('refuses a fill learned from the rows, saying why and what to write instead', () => {
    for (const how of ['mean', 'median', 'mode']) {
      const error = errorOf(() =>
        parseProjectSpec(
          featureSet({
            steps: [
              { step: 'filter', where: 'amount > 0' },
              { step: 'fill', columns: ['amount'], with: how },
            ],
          }),
          'test.yaml',
        ),
      );
      expect(error.code).toBe('FERRY_CONFIG_INVALID');
      expect(error.message).toContain('feature_sets[0].steps[1].step');
      expect(error.message).toContain(`fill with ${how} learns its value from the rows it sees`);
      expect(error.message).toContain('change meaning from batch to batch');
      expect(error.message).toContain('with: constant');
    }
  });

  it('refuses steps that belong to training recipes or need the whole table', () => {
    const refused: [Record<string, unknown>, RegExp][] = [
      [{ step: 'encode', column: 'country', method: 'one_hot' }, /training recipe/],
      [{ step: 'scale', columns: ['amount'], method: 'standard' }, /training recipe/],
      [{ step: 'clip', columns: ['amount'] }, /training recipe/],
      [{ step: 'dedupe' }, /whole table.*already stores each event/],
      [{ step: 'merge', source: 'rates', on: ['currency'] }, /feature vector/],
      [
        {
          step: 'split',
          method: 'random',
          fractions: { train: 0.8, validation: 0.1, test: 0.1 },
        },
        /split in a recipe/,
      ],
    ];
    for (const [step, why] of refused) {
      const error = errorOf(() => parseProjectSpec(featureSet({ steps: [step] }), 'test.yaml'));
      expect(error.message).toContain('feature_sets[0].steps[0].step');
      expect(error.message).toContain(`step '${String(step.step)}' cannot run on a feature set`);
      expect(error.message).toMatch(why);
    }
  });

  it('refuses a rule set name that is not under validations:', () => {
    const error = errorOf(() =>
      parseProjectSpec(featureSet({ validation: 'tx_rulez' }), 'test.yaml'),
    );
    expect(error.message).toContain('feature_sets[0].validation');
    expect(error.message).toContain("rule set 'tx_rulez' is not defined under validations:");
    expect(error.message).toContain('tx_rules');
  });

  it('rejects unknown keys of an inline rule set, including a name', () => {
    const error = errorOf(() =>
      parseProjectSpec(
        featureSet({
          validation: { name: 'x', rules: [{ rule: 'not_null', column: 'amount_eur' }] },
        }),
        'test.yaml',
      ),
    );
    expect(error.message).toContain('feature_sets[0].validation');
  });
});
