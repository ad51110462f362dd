/**
 * `enrich`: looks each record's entity up in the online store through a feature vector and adds
 * the vector's features. A field the request already carries is kept (request fields override
 * features). History features are computed as of just before the record's event time `ts` when
 * it is given (exactly what training sets use), else as of now.
 */
import type { EndpointStepSpec } from '../../../config/endpoint-schema.js';
import type { Row } from '../../../core/table.js';
import { FerryError } from '../../../errors/index.js';
import type { StepCompiler } from '../step.js';

type EnrichStepSpec = Extract<EndpointStepSpec, { kind: 'enrich' }>;

/** The optional request field giving the event time that history features are computed before. */
export const EVENT_TIME_INPUT = 'ts';

export const compileEnrichStep: StepCompiler<EnrichStepSpec> = async (spec, env) => {
  const key = env.features.onlineKeyColumn(spec.vector);
  const features = env.features.vectorFeatures(spec.vector);
  const reads: { name: string; type: 'string' | 'timestamp'; optional?: boolean }[] = [];
  if (!env.fields.has(key)) reads.push({ name: key, type: 'string' });
  if (!env.fields.has(EVENT_TIME_INPUT))
    reads.push({ name: EVENT_TIME_INPUT, type: 'timestamp', optional: true });
  const store = env.features;
  return {
    kind: 'enrich',
    name: env.name,
    reads,
    writes: features.filter((f) => f.name !== key),
    predicts: false,
    models: [],
    async run(batch, context) {
      const rows = batch.rows;
      const keys = rows.map((row, i) => {
        const value = row[key];
        if (value === null || value === undefined || value === '') {
          throw new FerryError(
            'FERRY_ENTITY_KEY_MISSING',
            `record ${i} has no '${key}'; endpoint '${context.endpoint}' needs it to look up features of '${spec.vector}'`,
          );
        }
        return String(value);
      });
      // History features are computed strictly before the event: timestamps are integer
      // milliseconds, so "before T" is "as of T - 1 ms", as training sets do.
      const now = Date.now();
      const groups = new Map<number, number[]>();
      rows.forEach((row, i) => {
        const t = row[EVENT_TIME_INPUT];
        const at = typeof t === 'number' ? t - 1 : now;
        const group = groups.get(at);
        if (group) group.push(i);
        else groups.set(at, [i]);
      });
      const found = await Promise.all(
        [...groups].map(async ([at, members]) => ({
          members,
          vectors: await store.getOnlineVector(
            spec.vector,
            members.map((i) => keys[i] as string),
            at,
          ),
        })),
      );
      if (context.cancelled()) return;
      for (const { members, vectors } of found) {
        members.forEach((r, j) => {
          const row = rows[r] as Row;
          const vector = vectors[j] ?? {};
          for (const f of features) {
            if (row[f.name] === undefined || row[f.name] === null)
              row[f.name] = vector[f.name] ?? null;
          }
        });
      }
    },
  };
};
