/**
 * `ensemble`: every member model predicts every record (members in parallel) and their answers
 * are combined into one.
 *
 * - `mean`: the average of the regression values, or of the class probabilities; the label is the
 *   class of highest probability (ties go to the first class in the model's order).
 * - `weighted`: the same with each member's `weight` (a member given as a plain reference has
 *   weight 1). Weights are accepted only with this method.
 * - `vote`: each member's label is one vote and the most voted class wins; ties go to the class of
 *   higher mean probability, then to the first class. Classifiers only. The probabilities the
 *   step answers with are the shares of the votes, so `<output>_score` agrees with the label.
 *
 * Members must answer alike (one task, one set of classes). Each record is answered by
 * `{ model: 'ensemble(<a>,<b>,...)', version: '<va>,<vb>,...' }`: the members' model names and
 * versions in the order listed, so the `model` and `model_version` response fields name the
 * exact combination.
 */
import type { EndpointStepSpec } from '../../../config/endpoint-schema.js';
import type { Label, Prediction } from '../../../core/model.js';
import { FerryError } from '../../../errors/index.js';
import type { AnsweringModel, CompiledStep, ServingModel, StepCompiler } from '../step.js';
import {
  answering,
  checkAlike,
  inputTable,
  modelReads,
  predictionFields,
  writePrediction,
} from './predict.js';

type EnsembleStepSpec = Extract<EndpointStepSpec, { kind: 'ensemble' }>;

interface Member {
  readonly ref: string;
  readonly weight: number;
  readonly model: ServingModel;
}

export const compileEnsembleStep: StepCompiler<EnsembleStepSpec> = async (spec, env) => {
  const where = `endpoint '${env.endpoint}', step '${env.name}'`;
  if (spec.method !== 'weighted') {
    const given = spec.models.find((m) => typeof m !== 'string');
    if (given !== undefined && typeof given !== 'string') {
      throw new FerryError(
        'FERRY_CONFIG_INVALID',
        `${where}: ${given.model} has a weight, which only method: weighted uses; use method: weighted or list the model as a plain reference`,
      );
    }
  }
  const members: Member[] = await Promise.all(
    spec.models.map(async (m) => {
      const ref = typeof m === 'string' ? m : m.model;
      const weight = typeof m === 'string' ? 1 : m.weight;
      return { ref, weight, model: await env.models.load(await env.models.resolve(ref)) };
    }),
  );
  const models = members.map((m) => m.model);
  checkAlike(models, env);
  const signature = (members[0] as Member).model.signature;
  if (spec.method === 'vote' && signature.task !== 'classification') {
    throw new FerryError(
      'FERRY_CONFIG_INVALID',
      `${where}: method: vote needs classifiers, but ${members.map((m) => m.ref).join(', ')} are regression models; use method: mean or weighted`,
    );
  }

  const reads = new Map<string, CompiledStep['reads'][number]>();
  for (const m of members) {
    for (const read of modelReads(m.model.signature, env, m.ref))
      if (!reads.has(read.name)) reads.set(read.name, read);
  }
  const each = models.map(answering);
  const by: AnsweringModel = {
    model: `ensemble(${each.map((a) => a.model).join(',')})`,
    version: each.map((a) => a.version).join(','),
  };
  const classes = signature.classes;
  const combine = (predictions: readonly Prediction[], n: number): Prediction => {
    if (signature.task === 'regression') return meanValues(predictions, members, n);
    const k = classes?.length ?? 0;
    const probas = predictions.map((p) => probabilities(p, classes ?? [], n));
    return spec.method === 'vote'
      ? vote(predictions, probas, classes ?? [], n, k)
      : meanProba(probas, members, classes ?? [], n, k);
  };

  return {
    kind: 'ensemble',
    name: env.name,
    reads: [...reads.values()],
    writes: predictionFields(signature, spec.output),
    predicts: true,
    ...(classes ? { classes } : {}),
    task: signature.task,
    models: dedupe(each),
    async run(batch, context) {
      const predictions = await Promise.all(
        models.map((m) => m.predict(inputTable(m.signature, batch))),
      );
      if (context.cancelled()) return;
      writePrediction(batch, spec.output, classes, combine(predictions, batch.rows.length), by);
    },
  };
};

function meanValues(
  predictions: readonly Prediction[],
  members: readonly Member[],
  n: number,
): Prediction {
  const total = members.reduce((sum, m) => sum + m.weight, 0);
  const predict: Label[] = new Array<Label>(n);
  for (let i = 0; i < n; i++) {
    let sum = 0;
    predictions.forEach((p, j) => {
      sum += (members[j] as Member).weight * Number(p.predict[i]);
    });
    predict[i] = sum / total;
  }
  return { predict };
}

/** A member's N x K probabilities; a classifier that gives none counts its label as certain. */
function probabilities(prediction: Prediction, classes: readonly Label[], n: number): Float64Array {
  const k = classes.length;
  if (prediction.proba && prediction.proba.length === n * k) return prediction.proba;
  const proba = new Float64Array(n * k);
  for (let i = 0; i < n; i++) {
    const c = classes.indexOf(prediction.predict[i] as Label);
    if (c >= 0) proba[i * k + c] = 1;
  }
  return proba;
}

function meanProba(
  probas: readonly Float64Array[],
  members: readonly Member[],
  classes: readonly Label[],
  n: number,
  k: number,
): Prediction {
  const total = members.reduce((sum, m) => sum + m.weight, 0);
  const proba = new Float64Array(n * k);
  probas.forEach((p, j) => {
    const w = (members[j] as Member).weight;
    for (let x = 0; x < n * k; x++) proba[x] = (proba[x] as number) + w * (p[x] as number);
  });
  for (let x = 0; x < n * k; x++) proba[x] = (proba[x] as number) / total;
  const predict: Label[] = new Array<Label>(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let c = 1; c < k; c++)
      if ((proba[i * k + c] as number) > (proba[i * k + best] as number)) best = c;
    predict[i] = classes[best] as Label;
  }
  return { predict, proba };
}

function vote(
  predictions: readonly Prediction[],
  probas: readonly Float64Array[],
  classes: readonly Label[],
  n: number,
  k: number,
): Prediction {
  const m = predictions.length;
  const index = new Map(classes.map((c, i) => [c, i]));
  const shares = new Float64Array(n * k);
  const predict: Label[] = new Array<Label>(n);
  const votes = new Array<number>(k);
  const mean = new Array<number>(k);
  for (let i = 0; i < n; i++) {
    votes.fill(0);
    mean.fill(0);
    predictions.forEach((p, j) => {
      const c = index.get(p.predict[i] as Label);
      if (c !== undefined) votes[c] = (votes[c] as number) + 1;
      const pj = probas[j] as Float64Array;
      for (let c2 = 0; c2 < k; c2++)
        mean[c2] = (mean[c2] as number) + (pj[i * k + c2] as number) / m;
    });
    let best = 0;
    for (let c = 1; c < k; c++) {
      const dv = (votes[c] as number) - (votes[best] as number);
      if (dv > 0 || (dv === 0 && (mean[c] as number) > (mean[best] as number))) best = c;
    }
    predict[i] = classes[best] as Label;
    for (let c = 0; c < k; c++) shares[i * k + c] = (votes[c] as number) / m;
  }
  return { predict, proba: shares };
}

function dedupe(models: readonly AnsweringModel[]): AnsweringModel[] {
  const seen = new Map<string, AnsweringModel>();
  for (const a of models)
    if (!seen.has(`${a.model}:${a.version}`)) seen.set(`${a.model}:${a.version}`, a);
  return [...seen.values()];
}
