/**
 * `transform`: sets fields to expressions of the data-preparation language (`ln(amount + 1)`,
 * `if(prediction_score > 0.9, 'block', 'allow')`), evaluated per record with the same functions
 * as batch preparation. Expressions are type-checked against the fields before the step when the
 * graph is compiled; the fields of one step are computed from the record as it was before it.
 */
import type { EndpointStepSpec } from '../../../config/endpoint-schema.js';
import type { ColumnType, Row, Scalar } from '../../../core/table.js';
import {
  compileToFunction,
  parseExpression,
  referencedColumns,
  typeOf,
  type Expr,
} from '../../../data/expr/index.js';
import { FerryError, toFerryError } from '../../../errors/index.js';
import type { StepCompiler } from '../step.js';

type TransformStepSpec = Extract<EndpointStepSpec, { kind: 'transform' }>;

export const compileTransformStep: StepCompiler<TransformStepSpec> = async (spec, env) => {
  const schema: Record<string, ColumnType> = Object.fromEntries(env.fields);
  const reads: { name: string; type: ColumnType }[] = [];
  const compiled: { field: string; fn: (row: Row) => Scalar; type: ColumnType }[] = [];
  for (const [field, text] of Object.entries(spec.set)) {
    const where = `endpoint '${env.endpoint}', step '${env.name}', field '${field}'`;
    let expr: Expr;
    try {
      expr = parseExpression(text);
    } catch (err) {
      throw wrap(err, where);
    }
    for (const column of referencedColumns(expr)) {
      if (schema[column] !== undefined) continue;
      const type = env.inputType(column);
      if (type === undefined) {
        throw new FerryError(
          'FERRY_CONFIG_INVALID',
          `${where}: '${column}' is not written by an earlier step nor typed as a request field; declare it under the endpoint's inputs: (e.g. ${column}: float)`,
        );
      }
      schema[column] = type;
      reads.push({ name: column, type });
    }
    try {
      compiled.push({ field, fn: compileToFunction(expr, schema), type: typeOf(expr, schema) });
    } catch (err) {
      throw wrap(err, where);
    }
  }
  return {
    kind: 'transform',
    name: env.name,
    reads,
    writes: compiled.map((c) => ({ name: c.field, type: c.type })),
    predicts: false,
    models: [],
    run(batch) {
      for (const row of batch.rows) {
        const values = compiled.map((c) => c.fn(row));
        compiled.forEach((c, i) => {
          row[c.field] = values[i] ?? null;
        });
      }
    },
  };
};

function wrap(err: unknown, where: string): FerryError {
  const e = toFerryError(err);
  return new FerryError('FERRY_CONFIG_INVALID', `${where}: ${e.message}`, { cause: err });
}
