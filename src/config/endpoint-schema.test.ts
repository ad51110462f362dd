/**
 * The endpoint examples of docs/serving.md are valid ferry.yaml: every YAML block there that
 * holds steps or endpoints parses against the schema, so the guide cannot drift from the code.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { endpointSchema, endpointStepSchema } from './endpoint-schema.js';
import { projectSchema } from './schema.js';

const guide = readFileSync(new URL('../../docs/serving.md', import.meta.url), 'utf8');
const blocks = [...guide.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1] as string);

describe('docs/serving.md', () => {
  it('has an example of each router mode, an ensemble, a custom and an output step', () => {
    const text = blocks.join('\n');
    for (const mode of ['split', 'canary', 'shadow']) expect(text).toContain(`mode: ${mode}`);
    for (const kind of ['ensemble', 'custom', 'output', 'enrich', 'transform'])
      expect(text).toContain(`kind: ${kind}`);
  });

  it.each(blocks.map((b, i) => [i, b] as const))('YAML block %i is valid', (_i, block) => {
    // A block elided with "..." shows only the part it is about.
    if (block.includes('[...]')) return;
    const value: unknown = parseYaml(block);
    if (Array.isArray(value)) {
      for (const step of value) expect(endpointStepSchema.safeParse(step).error).toBeUndefined();
    } else if (value && typeof value === 'object' && 'endpoints' in value) {
      const endpoints = (value as { endpoints: unknown[] }).endpoints;
      for (const e of endpoints) expect(endpointSchema.safeParse(e).error).toBeUndefined();
    } else if (value && typeof value === 'object' && 'kind' in value) {
      expect(endpointStepSchema.safeParse(value).error).toBeUndefined();
    } else {
      expect(projectSchema.safeParse(value).error).toBeUndefined();
    }
  });
});
