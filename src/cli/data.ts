/** `ferry data`: profile, validate and prepare tables; inspect the quarantine. */
import type { Command } from 'commander';
import { registerDataPrep } from './data-prep.js';
import { registerDataProfile } from './data-profile.js';
import { registerDataQuarantine } from './data-quarantine.js';
import { registerDataValidate } from './data-validate.js';

export function registerData(program: Command): void {
  const data = program
    .command('data')
    .description('profile, validate and prepare tables; inspect quarantined rows');
  registerDataProfile(data);
  registerDataValidate(data);
  registerDataPrep(data);
  registerDataQuarantine(data);
}
