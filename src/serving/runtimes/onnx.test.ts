import { describe, expect, it } from 'vitest';
import type { ModelSignature } from '../../core/model.js';
import { tableFromRows, type Row } from '../../core/table.js';
import { exportOnnx } from '../../onnx/export.js';
import { foreignLinearClassifier, foreignLinearRegressor } from '../../onnx/testing.js';
import { NativePredictor, type NativeModelDocument } from '../../training/native-model.js';
import { createRng } from '../../training/random.js';
import { fitToyGbdt, TOY_SCHEMA, TOY_SIGNATURE } from '../../testing/model-fixture.js';
import { OnnxModel, onnxRuntime } from './onnx.js';

function makeRows(n: number, seed: number): Row[] {
  const rand = createRng(seed);
  const colors = ['red', 'green', 'blue'];
  return Array.from({ length: n }, () => {
    const x = rand() < 0.1 ? null : Math.fround(rand());
    const color = rand() < 0.1 ? null : (colors[Math.floor(rand() * 3)] as string);
    return { x, color, label: (x ?? 0) > 0.5 || color === 'red' ? 'yes' : 'no' };
  });
}

function gbdtDocument(): NativeModelDocument {
  return fitToyGbdt(tableFromRows(TOY_SCHEMA, makeRows(800, 1)));
}

describe('onnx runtime', () => {
  it('runs an exported model like the native runtime: labels, probabilities, odd rows', async () => {
    const doc = gbdtDocument();
    const loaded = await onnxRuntime.load(exportOnnx(doc));
    expect(onnxRuntime.name).toBe('onnx');
    expect(loaded.signature).toEqual(TOY_SIGNATURE);
    const live = tableFromRows(TOY_SCHEMA, [
      ...makeRows(100, 2),
      { x: null, color: 'purple', label: null },
      { x: Number.NaN, color: null, label: null },
    ]);
    const native = new NativePredictor(doc).predict(live);
    const onnx = await loaded.predict(live);
    expect(onnx.predict).toEqual(native.predict);
    native.proba?.forEach((p, i) =>
      expect(Math.abs(p - (onnx.proba?.[i] as number))).toBeLessThan(1e-5),
    );
  });

  it('stacks the signature inputs into a single [N,F] graph input', async () => {
    const loaded = await OnnxModel.create(foreignLinearRegressor([3, -2, 0.5], 1));
    expect(loaded.signature).toEqual({
      task: 'regression',
      target: 'target',
      inputs: [0, 1, 2].map((i) => ({ name: `float_input_${i}`, type: 'float' })),
    });
    const table = tableFromRows(loaded.signature.inputs, [
      { float_input_0: 1, float_input_1: 2, float_input_2: 4 },
      { float_input_0: 0, float_input_1: 0.5, float_input_2: -2 },
    ]);
    expect((await loaded.predict(table)).predict).toEqual([2, -1]);
  });

  it('reads class labels from a foreign classifier and answers probabilities in their order', async () => {
    const bytes = foreignLinearClassifier(
      [
        [2, 0],
        [0, 2],
        [-1, -1],
      ],
      [0, 0, 0],
      ['cat', 'dog', 'fox'],
    );
    const loaded = await OnnxModel.create(bytes);
    expect(loaded.signature.classes).toEqual(['cat', 'dog', 'fox']);
    const table = tableFromRows(loaded.signature.inputs, [
      { float_input_0: 3, float_input_1: 0 },
      { float_input_0: -3, float_input_1: -3 },
    ]);
    const { predict, proba } = await loaded.predict(table);
    expect(predict).toEqual(['cat', 'fox']);
    expect(proba).toHaveLength(6);
    expect((proba?.[0] as number) + (proba?.[1] as number) + (proba?.[2] as number)).toBeCloseTo(
      1,
      6,
    );
    expect(proba?.[0] as number).toBeGreaterThan(0.9);
  });

  it('refuses bytes that are not ONNX, and signatures that do not fit the graph', async () => {
    await expect(
      onnxRuntime.load(new TextEncoder().encode('{"format":"ferry-native"}')),
    ).rejects.toMatchObject({
      code: 'FERRY_MODEL_INVALID',
    });
    const wrong: ModelSignature = {
      task: 'regression',
      target: 'y',
      inputs: [{ name: 'a', type: 'float' }],
    };
    await expect(
      OnnxModel.create(foreignLinearRegressor([1, 2, 3], 0), wrong),
    ).rejects.toMatchObject({
      code: 'FERRY_MODEL_INVALID',
      message: expect.stringContaining("graph input 'float_input'"),
    });
  });

  it('names a missing column with FERRY_INPUT_MISSING', async () => {
    const loaded = await onnxRuntime.load(exportOnnx(gbdtDocument()));
    const partial = tableFromRows([{ name: 'x', type: 'float' }], [{ x: 0.3 }]);
    await expect(loaded.predict(partial)).rejects.toMatchObject({ code: 'FERRY_INPUT_MISSING' });
  });
});
