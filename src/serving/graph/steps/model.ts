/**
 * `model`: predicts every record with one registered model version (`<model>@<alias>`,
 * `<model>:<version>` or `<model>`, its champion). The model's inputs are read from the records
 * by name; those no earlier step writes become request fields.
 */
import type { EndpointStepSpec } from '../../../config/endpoint-schema.js';
import type { StepCompiler } from '../step.js';
import { answering, inputTable, modelReads, predictionFields, writePrediction } from './predict.js';

type ModelStepSpec = Extract<EndpointStepSpec, { kind: 'model' }>;

export const compileModelStep: StepCompiler<ModelStepSpec> = async (spec, env) => {
  const model = await env.models.load(await env.models.resolve(spec.model));
  const signature = model.signature;
  const by = answering(model);
  return {
    kind: 'model',
    name: env.name,
    reads: modelReads(signature, env, spec.model),
    writes: predictionFields(signature, spec.output),
    predicts: true,
    ...(signature.classes ? { classes: signature.classes } : {}),
    task: signature.task,
    models: [by],
    async run(batch, context) {
      const prediction = await model.predict(inputTable(signature, batch));
      if (context.cancelled()) return;
      writePrediction(batch, spec.output, signature.classes, prediction, by);
    },
  };
};
