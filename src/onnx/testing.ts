/**
 * Foreign-style ONNX models for tests, shaped as scikit-learn's converters write them: one
 * `[N,F]` float input named `float_input`, ai.onnx.ml linear operators.
 */
import { attr, ElemType, GraphBuilder, ML_DOMAIN } from './proto.js';

/**
 * y = x · coefficients + intercept, output `variable` float [N,1].
 * @example const bytes = foreignLinearRegressor([3, -2, 0.5], 1);
 */
export function foreignLinearRegressor(
  coefficients: readonly number[],
  intercept: number,
): Uint8Array {
  const g = new GraphBuilder();
  const x = g.input('float_input', ElemType.FLOAT, ['N', coefficients.length]);
  g.node(
    'LinearRegressor',
    [x],
    {
      coefficients: attr.floats(coefficients),
      intercepts: attr.floats([intercept]),
      targets: attr.int(1),
    },
    { domain: ML_DOMAIN, name: 'variable' },
  );
  g.output('variable', ElemType.FLOAT, ['N', 1]);
  return g.toBytes({ name: 'sklearn-like' });
}

/**
 * A softmax classifier with string class labels: outputs `label` string [N] and `probabilities`
 * float [N,K]. `coefficients` holds K rows of F weights.
 * @example const bytes = foreignLinearClassifier([[1, 0], [0, 1]], [0, 0], ['a', 'b']);
 */
export function foreignLinearClassifier(
  coefficients: readonly (readonly number[])[],
  intercepts: readonly number[],
  classes: readonly string[],
): Uint8Array {
  const g = new GraphBuilder();
  const f = coefficients[0]?.length ?? 0;
  const x = g.input('float_input', ElemType.FLOAT, ['N', f]);
  g.node(
    'LinearClassifier',
    [x],
    {
      coefficients: attr.floats(coefficients.flat()),
      intercepts: attr.floats(intercepts),
      classlabels_strings: attr.strings(classes),
      post_transform: attr.string('SOFTMAX'),
    },
    { domain: ML_DOMAIN, outputs: ['label', 'probabilities'] },
  );
  g.output('label', ElemType.STRING, ['N']);
  g.output('probabilities', ElemType.FLOAT, ['N', classes.length]);
  return g.toBytes({ name: 'sklearn-like' });
}
