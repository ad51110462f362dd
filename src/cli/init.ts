/** `ferry init [dir]`: a new project with a commented ferry.yaml and its state folder. */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { FerryError } from '../errors/index.js';
import { printJson } from './output.js';

export const FERRY_YAML_TEMPLATE = `# Ferry project configuration. Every key is optional; the values shown are the defaults.
# Reference: README.md ("Configuration"). Environment variables FERRY_SERVER_PORT,
# FERRY_SERVER_HOST, FERRY_STATE_DIR and FERRY_LOG_LEVEL override the matching settings.
project: my-project

# Embedded state lives here, relative to this file.
state_dir: .ferry

# Backends: each is chosen by its \`type\`; paths are relative to state_dir.
metadata: { type: sqlite, path: metadata.db }      # models, versions, aliases, runs
artifacts: { type: local, path: artifacts }        # model files, checked by SHA-256
offline_store: { type: parquet, path: offline }    # feature history and the inference log
online_store: { type: sqlite, path: online.db }    # latest features for live lookups
event_bus: { type: memory }                        # in-process events

server:
  host: 127.0.0.1
  port: 8080
  body_limit_bytes: 4194304
  max_rows_per_request: 10000

monitoring:
  flush_interval: 1s          # how often the inference log is written to the offline store
  max_buffered_rows: 100000   # rows kept in memory before spilling to disk

# Feature store (see README, "Feature store"):
# entities:
#   - { name: card, keys: [card_id] }
# feature_sets:
#   - name: transactions
#     entity: card
#     timestamp: ts
#     source: { type: csv, path: data/transactions.csv }
#     features:
#       - { name: amount, type: float }
#     aggregations:
#       - { column: amount, ops: [count, sum, mean], windows: [10m, 1h, 1d] }
#     ttl: 7d
# feature_vectors:
#   - name: fraud_v1
#     features: [transactions.amount_sum_1h, transactions.amount_count_10m]
# endpoints:
#   - name: fraud
#     steps:
#       - { kind: enrich, vector: fraud_v1 }
#       - { kind: model, model: fraud@champion }
`;

/**
 * Creates the project files; refuses to overwrite an existing ferry.yaml.
 * @example initProject('my-project')
 */
export function initProject(dir: string): { dir: string; config: string; stateDir: string } {
  const absDir = path.resolve(dir);
  const config = path.join(absDir, 'ferry.yaml');
  if (existsSync(config)) {
    throw new FerryError(
      'FERRY_ARGUMENT_INVALID',
      `${config} already exists; Ferry will not overwrite it`,
    );
  }
  const stateDir = path.join(absDir, '.ferry');
  mkdirSync(stateDir, { recursive: true });
  writeFileSync(config, FERRY_YAML_TEMPLATE.replace('my-project', projectName(absDir)));
  const gitignore = path.join(absDir, '.gitignore');
  if (!existsSync(gitignore)) writeFileSync(gitignore, '.ferry/\n');
  return { dir: absDir, config, stateDir };
}

function projectName(dir: string): string {
  const base = path
    .basename(dir)
    .replace(/[^A-Za-z0-9._-]/g, '-')
    .replace(/^[^A-Za-z0-9]+/, '');
  return base || 'ferry';
}

export function registerInit(program: Command): void {
  program
    .command('init')
    .description('create a project: a commented ferry.yaml and the .ferry/ state folder')
    .argument('[dir]', 'project folder', '.')
    .option('--json', 'machine-readable output')
    .action((dir: string, options: { json?: boolean }) => {
      const result = initProject(dir);
      if (options.json) printJson(result);
      else process.stdout.write(`Created ${result.config}\nState goes to ${result.stateDir}\n`);
    });
}
