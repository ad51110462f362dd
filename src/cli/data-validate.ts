/**
 * `ferry data validate <file> [--rules <name>]`: checks a file against a rule set of ferry.yaml
 * (`validations:`) and applies its policy. Exits 0 when every rule holds or the policy is warn or
 * quarantine (failing rows then go to `quarantine/<rule set>`); exits non-zero with
 * FERRY_VALIDATION_FAILED when a rule under policy fail fails, after printing the report.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import type { ValidationSpec } from '../config/data-schema.js';
import { withDuckDB } from '../data/duckdb.js';
import { formatOf } from '../data/read.js';
import { openSource } from '../data/source.js';
import { fileReferences } from '../data/validate/reference.js';
import { validateRelation } from '../data/validate/relation.js';
import { formatReport, type ValidationReport } from '../data/validate/report.js';
import { isFerryError } from '../errors/index.js';
import { withWorkspace, type GlobalOptions } from './context.js';
import { argumentError, printJson, progress } from './output.js';

interface ValidateOptions extends GlobalOptions {
  readonly rules?: string;
}

export function registerDataValidate(data: Command): void {
  data
    .command('validate')
    .description('check a file against a rule set from ferry.yaml and apply its policy')
    .argument('<file>', 'data file: .csv, .parquet or .jsonl')
    .option('--rules <name>', 'rule set under `validations:` (default: the only one)')
    .option('--json', 'print the report as JSON')
    .action(async (file: string, _o: unknown, command: Command) => {
      const options = command.optsWithGlobals<ValidateOptions>();
      const say = progress(options);
      const format = formatOf(file);
      if (format === null) {
        throw argumentError(
          `cannot tell the format of ${file} from its extension; name it .csv, .parquet or .jsonl`,
        );
      }
      const absolute = path.resolve(file);
      const print = (report: ValidationReport): void => {
        if (options.json) printJson(report);
        else process.stdout.write(formatReport(report));
      };
      await withWorkspace(options, async (ws) => {
        const ruleSet = pickRuleSet(ws.project.spec.validations, options.rules);
        const stageDir = mkdtempSync(path.join(os.tmpdir(), 'ferry-validate-'));
        try {
          const report = await withDuckDB(async (con) => {
            say(`Reading ${file}...`);
            const source = await openSource(con, { type: format, path: absolute }, process.cwd(), {
              stageDir,
            });
            if (source.malformed.count > 0) {
              const first = source.malformed.examples[0];
              say(
                `${source.malformed.count} malformed lines were not read` +
                  (first ? ` (line ${first.line}: ${first.message})` : ''),
              );
            }
            say(`Checking ${source.rows} rows against rule set '${ruleSet.name}'...`);
            const result = await validateRelation(con, source.relation, ruleSet, {
              baseDir: ws.project.dir,
              resolveReference: fileReferences(
                ws.project.dir,
                async (model) => (await ws.registry.resolve(model)).profile,
              ),
              quarantine: { offline: ws.offline, name: ruleSet.name, source: absolute },
            });
            await result.release();
            return result.report;
          });
          print(report);
          if (report.quarantine && !options.json) {
            process.stdout.write(
              `\nQuarantined rows: ferry data quarantine show ${ruleSet.name}\n`,
            );
          }
        } catch (error) {
          // The report of a stopped run still belongs on stdout; the coded error follows on stderr.
          const report = isFerryError(error) ? error.details?.report : undefined;
          if (report !== undefined) print(report as ValidationReport);
          throw error;
        } finally {
          rmSync(stageDir, { recursive: true, force: true });
        }
      });
    });
}

function pickRuleSet(
  validations: readonly ValidationSpec[],
  name: string | undefined,
): ValidationSpec {
  const names = validations.map((v) => v.name);
  if (name === undefined) {
    if (validations.length === 1) return validations[0] as ValidationSpec;
    throw argumentError(
      validations.length === 0
        ? 'ferry.yaml defines no rule sets; add one under `validations:` (name, policy, rules)'
        : `ferry.yaml defines several rule sets; pick one with --rules (${names.join(', ')})`,
    );
  }
  const found = validations.find((v) => v.name === name);
  if (!found) {
    throw argumentError(
      `no rule set '${name}' under \`validations:\` in ferry.yaml; rule sets: ${names.join(', ') || '(none)'}`,
    );
  }
  return found;
}
