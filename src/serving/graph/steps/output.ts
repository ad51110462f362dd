/**
 * `output`: publishes each record, as it is when the step runs, to a subject of the event bus:
 * one message per record, in record order, each `{ request_id, <field>: value, ... }`. Publishing
 * is awaited (durable once `publish` resolves), so a stream input that acknowledges after the
 * graph ran never acknowledges a request whose results were not published.
 *
 * What a message holds:
 * - `fields:` when given (request fields, fields of earlier steps, `model`, `model_version`);
 * - else the endpoint's `response:` when it lists its fields (all must be known by then);
 * - else every field the records have at this step (request fields, features, outputs of
 *   earlier steps) plus `model` and `model_version`: a superset of the default response, whose
 *   fields are only known once the whole graph is compiled.
 * The step writes no fields.
 */
import type { EndpointStepSpec } from '../../../config/endpoint-schema.js';
import type { JsonValue } from '../../../core/json.js';
import type { Row } from '../../../core/table.js';
import { FerryError } from '../../../errors/index.js';
import type { CompiledStep, StepCompiler } from '../step.js';

type OutputStepSpec = Extract<EndpointStepSpec, { kind: 'output' }>;

/** The field of each published message naming the request it came from. */
export const REQUEST_ID_FIELD = 'request_id';

/** Result fields saying which model version answered (as in compile.ts's response). */
const META_FIELDS = new Set(['model', 'model_version']);

export const compileOutputStep: StepCompiler<OutputStepSpec> = async (spec, env) => {
  const where = `endpoint '${env.endpoint}', step '${env.name}'`;
  const reads: { name: string; type: CompiledStep['reads'][number]['type'] }[] = [];
  let fields: string[];
  if (spec.fields) {
    fields = spec.fields;
    for (const field of fields) {
      if (META_FIELDS.has(field) || env.fields.has(field)) continue;
      const type = env.inputType(field);
      if (type === undefined) {
        throw new FerryError(
          'FERRY_CONFIG_INVALID',
          `${where}: field '${field}' is not written by an earlier step nor typed as a request field; fields so far: ${[...env.fields.keys(), ...META_FIELDS].join(', ')}`,
        );
      }
      reads.push({ name: field, type });
    }
  } else {
    const response = env.spec.endpoints.find((e) => e.name === env.endpoint)?.response;
    if (response) {
      const unknown = response.find((f) => !META_FIELDS.has(f) && !env.fields.has(f));
      if (unknown !== undefined) {
        throw new FerryError(
          'FERRY_CONFIG_INVALID',
          `${where}: response field '${unknown}' is not written before this step, so it cannot be published; list the fields to publish under fields:, or move the output step after the step that writes it`,
        );
      }
      fields = response;
    } else {
      fields = [...env.fields.keys(), ...META_FIELDS];
    }
  }
  const subject = spec.subject;
  const events = env.events;
  return {
    kind: 'output',
    name: env.name,
    reads,
    writes: [],
    predicts: false,
    models: [],
    async run(batch, context) {
      for (const [i, row] of batch.rows.entries()) {
        if (context.cancelled()) return;
        await events.publish(subject, message(row, batch.answeredBy[i], fields, context.requestId));
      }
    },
  };
};

function message(
  row: Row,
  by: { model: string; version: string } | undefined,
  fields: readonly string[],
  requestId: string,
): Record<string, JsonValue> {
  const out: Record<string, JsonValue> = { [REQUEST_ID_FIELD]: requestId };
  for (const field of fields) {
    // The request id is the step's to give; a record field of that name does not replace it.
    if (field === REQUEST_ID_FIELD) continue;
    if (field === 'model') out[field] = by?.model ?? null;
    else if (field === 'model_version') out[field] = by?.version ?? null;
    else out[field] = row[field] ?? null;
  }
  return out;
}
