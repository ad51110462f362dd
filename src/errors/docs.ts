/** Renders the error-code table as the Markdown of `docs/errors.md`. */
import { ERROR_CODES } from './codes.js';

export function renderErrorsMarkdown(): string {
  const lines = [
    '# Error codes',
    '',
    'Every error Ferry reports carries one of these codes, in CLI output (`FERRY_X: message`), in',
    'HTTP replies (`{"error": "...", "code": "FERRY_X"}` with the status below) and in logs.',
    'This file is generated from `src/errors/codes.ts` by `npm run docs:errors`; a test keeps them equal.',
    '',
    '| code | HTTP | meaning | what to do |',
    '| --- | --- | --- | --- |',
  ];
  for (const [code, info] of Object.entries(ERROR_CODES)) {
    lines.push(`| \`${code}\` | ${info.status} | ${info.meaning} | ${info.action} |`);
  }
  return lines.join('\n') + '\n';
}
