import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES } from './codes.js';
import { renderErrorsMarkdown } from './docs.js';
import { FerryError, toFerryError } from './ferry-error.js';

describe('error codes', () => {
  it('docs/errors.md is exactly the table in codes.ts', () => {
    const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
    expect(doc).toBe(renderErrorsMarkdown());
  });

  it('every code has the FERRY_ prefix and an HTTP error status', () => {
    for (const [code, info] of Object.entries(ERROR_CODES)) {
      expect(code).toMatch(/^FERRY_[A-Z_]+$/);
      expect(info.status).toBeGreaterThanOrEqual(400);
      expect(info.status).toBeLessThan(600);
    }
  });

  it('a FerryError carries its code, status and cause', () => {
    const cause = new Error('disk full');
    const err = new FerryError('FERRY_ARTIFACT_CORRUPT', 'bad hash', { cause });
    expect(err.status).toBe(500);
    expect(err.cause).toBe(cause);
    expect(String(err)).toBe('FERRY_ARTIFACT_CORRUPT: bad hash');
    expect(toFerryError(new Error('x')).code).toBe('FERRY_INTERNAL');
    expect(toFerryError(err)).toBe(err);
  });
});
