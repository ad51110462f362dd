#!/usr/bin/env node
/**
 * The `ferry` command line. Each command lives in its own file and only parses arguments and
 * prints; the work is done by the library.
 */
import { Command, CommanderError } from 'commander';
import { registerData } from './data.js';
import { registerDataset } from './dataset.js';
import { registerDeploy } from './deploy.js';
import { registerEndpoints } from './endpoints.js';
import { registerFeatures } from './features.js';
import { registerIngest } from './ingest.js';
import { registerInit } from './init.js';
import { registerMaterialize } from './materialize.js';
import { registerModels } from './models.js';
import { registerMonitor } from './monitor.js';
import { reportError } from './output.js';
import { registerQuickstart } from './quickstart.js';
import { registerRuns } from './runs.js';
import { registerServe } from './serve.js';
import { registerTrain } from './train.js';
import { FERRY_VERSION } from '../version.js';

export function buildProgram(): Command {
  const program = new Command('ferry')
    .description('Ferry: take machine-learning models from the lab to live traffic.')
    .version(FERRY_VERSION)
    .option('--project <dir>', 'project folder (default: $FERRY_PROJECT or the current folder)')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  registerInit(program);
  registerTrain(program);
  registerData(program);
  registerModels(program);
  registerIngest(program);
  registerMaterialize(program);
  registerDataset(program);
  registerFeatures(program);
  registerDeploy(program);
  registerEndpoints(program);
  registerServe(program);
  registerMonitor(program);
  registerQuickstart(program);
  registerRuns(program);
  exitOverrideAll(program);
  return program;
}

/** Every command, nested ones included, reports parse errors to runCli instead of exiting. */
function exitOverrideAll(command: Command): void {
  for (const sub of command.commands) {
    sub.exitOverride();
    exitOverrideAll(sub);
  }
}

export async function runCli(argv: readonly string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv as string[]);
  } catch (error) {
    if (error instanceof CommanderError) {
      // Commander has printed its message already; help and version are successes.
      process.exitCode = error.exitCode === 0 ? 0 : 2;
      return;
    }
    reportError(error);
  }
}

await runCli(process.argv);
