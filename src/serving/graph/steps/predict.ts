/**
 * What model-like steps (model, router, ensemble) share: building a model's input table from the
 * batch's rows, the fields a prediction writes, and writing a prediction back into rows.
 *
 * A prediction writes `<output>` (the class label, or the regression value) and, for classifiers,
 * `<output>_score`: the probability of the positive class for two classes (the second in
 * ascending order: `1`, `true`, `yes`), else the probability of the predicted class.
 */
import type { Label, ModelSignature, Prediction } from '../../../core/model.js';
import type { ColumnType, Row, Scalar, Table } from '../../../core/table.js';
import { FerryError } from '../../../errors/index.js';
import type {
  AnsweringModel,
  CompileEnv,
  CompiledStep,
  GraphBatch,
  ServingModel,
} from '../step.js';

/** The type of a model's `<output>` field. */
export function labelType(signature: ModelSignature): ColumnType {
  if (signature.task === 'regression') return 'float';
  const classes = signature.classes ?? [];
  if (classes.every((c) => typeof c === 'boolean')) return 'bool';
  if (classes.every((c) => typeof c === 'number'))
    return classes.every((c) => Number.isInteger(c)) ? 'int' : 'float';
  return 'string';
}

/** The fields a model-like step writes. */
export function predictionFields(
  signature: ModelSignature,
  output: string,
): { name: string; type: ColumnType }[] {
  const fields = [{ name: output, type: labelType(signature) }];
  if (signature.task === 'classification') fields.push({ name: `${output}_score`, type: 'float' });
  return fields;
}

/**
 * The request fields a model needs that no earlier step writes (its inputs, typed as trained),
 * and a check that fields earlier steps write have a type the model can take.
 */
export function modelReads(
  signature: ModelSignature,
  env: CompileEnv,
  ref: string,
): CompiledStep['reads'] {
  const reads: { name: string; type: ColumnType }[] = [];
  for (const input of signature.inputs) {
    const known = env.fields.get(input.name);
    if (known === undefined) {
      reads.push({ name: input.name, type: input.type });
    } else if (!compatible(known, input.type)) {
      throw new FerryError(
        'FERRY_CONFIG_INVALID',
        `endpoint '${env.endpoint}', step '${env.name}': model ${ref} takes '${input.name}' as ${input.type}, but an earlier step makes it ${known}; cast it in a transform step`,
      );
    }
  }
  return reads;
}

function compatible(given: ColumnType, wanted: ColumnType): boolean {
  if (given === wanted) return true;
  const numeric = (t: ColumnType): boolean => t !== 'string';
  return numeric(given) && numeric(wanted);
}

/** Checks that the models a router or ensemble combines answer alike (task and classes). */
export function checkAlike(models: readonly ServingModel[], env: CompileEnv): void {
  const [first, ...rest] = models;
  if (!first) return;
  for (const m of rest) {
    const a = first.signature;
    const b = m.signature;
    const sameClasses =
      (a.classes ?? []).length === (b.classes ?? []).length &&
      (a.classes ?? []).every((c, i) => c === b.classes?.[i]);
    if (a.task !== b.task || !sameClasses) {
      throw new FerryError(
        'FERRY_CONFIG_INVALID',
        `endpoint '${env.endpoint}', step '${env.name}': ${describe(first)} and ${describe(m)} do not answer alike (${a.task}${a.classes ? ` [${a.classes.join(', ')}]` : ''} vs ${b.task}${b.classes ? ` [${b.classes.join(', ')}]` : ''}); combine models of one task and one set of classes`,
      );
    }
  }
}

function describe(m: ServingModel): string {
  return `${m.record.model}:${m.record.version}`;
}

export function answering(model: ServingModel): AnsweringModel {
  return { model: model.record.model, version: String(model.record.version) };
}

/** The model's input table from the given rows (all rows when `rows` is undefined). */
export function inputTable(
  signature: ModelSignature,
  batch: GraphBatch,
  rows?: readonly number[],
): Table {
  const n = rows ? rows.length : batch.rows.length;
  const columns = signature.inputs.map((input) => {
    const values = new Array<Scalar>(n);
    for (let i = 0; i < n; i++) {
      const row = batch.rows[rows ? (rows[i] as number) : i] as Row;
      values[i] = row[input.name] ?? null;
    }
    return { name: input.name, type: input.type, values };
  });
  return { columns, rowCount: n };
}

/** The score a classifier's row gets (see the module comment). */
export function scoreOf(prediction: Prediction, k: number, i: number): number | null {
  const proba = prediction.proba;
  if (!proba || k === 0) return null;
  if (k === 2) return proba[i * 2 + 1] ?? null;
  let best = 0;
  for (let c = 0; c < k; c++) best = Math.max(best, proba[i * k + c] ?? 0);
  return best;
}

/**
 * Writes a prediction of the given rows (all when undefined) into the batch: the fields, the
 * batch's prediction and who answered.
 */
export function writePrediction(
  batch: GraphBatch,
  output: string,
  classes: readonly Label[] | undefined,
  prediction: Prediction,
  by: readonly (AnsweringModel | undefined)[] | AnsweringModel,
  rows?: readonly number[],
): void {
  const k = classes?.length ?? 0;
  const n = rows ? rows.length : batch.rows.length;
  const whole = rows === undefined;
  let target = batch.prediction;
  if (whole) {
    target = prediction;
  } else if (!target || target.predict.length !== batch.rows.length || target === prediction) {
    target = emptyPrediction(batch.rows.length, k);
  }
  for (let i = 0; i < n; i++) {
    const r = rows ? (rows[i] as number) : i;
    const row = batch.rows[r] as Row;
    const label = prediction.predict[i] ?? null;
    row[output] = label;
    if (k > 0) row[`${output}_score`] = scoreOf(prediction, k, i);
    if (!whole) {
      (target.predict as Label[])[r] = label as Label;
      if (k > 0 && prediction.proba && target.proba) {
        target.proba.set(prediction.proba.subarray(i * k, i * k + k), r * k);
      }
    }
    batch.answeredBy[r] = Array.isArray(by)
      ? (by as (AnsweringModel | undefined)[])[i]
      : (by as AnsweringModel);
  }
  batch.prediction = target;
}

function emptyPrediction(n: number, k: number): Prediction {
  return {
    predict: new Array<Label>(n),
    ...(k > 0 ? { proba: new Float64Array(n * k) } : {}),
  };
}
