import { beforeAll, describe, expect, it } from 'vitest';
import type { ModelSignature } from '../../core/model.js';
import { tableFromRows, type ColumnSchema, type Row } from '../../core/table.js';
import {
  FITTED_RECIPE_FORMAT,
  type FittedRecipe,
  type FittedStep,
} from '../../data/prep/fitted.js';
import { applyToRows } from '../../data/prep/row.js';
import { kindOf } from '../../data/prep/steps/index.js';
import { compileForest, predictForestRaw, type GbdtModel } from '../../training/algorithms/gbdt.js';
import { fitLogistic } from '../../training/algorithms/linear.js';
import {
  decodeNativeModel,
  embedRecipe,
  encodeNativeModel,
  NATIVE_FORMAT,
  NATIVE_FORMAT_VERSION,
  NativePredictor,
  type EmbeddedRecipe,
  type NativeModelDocument,
} from '../../training/native-model.js';
import { fit, transform } from '../../training/preprocess.js';
import { createRng } from '../../training/random.js';
import { recipeSha256 } from '../../training/recipe-model.js';
import { trainModel } from '../../training/train.js';
import { fitToyGbdt, TOY_SCHEMA, TOY_SIGNATURE } from '../../testing/model-fixture.js';
import { nativeRuntime } from './native.js';

/** Label 'yes' when x > 0.5 or the color is red; 'no' otherwise. */
function makeRows(n: number, seed: number): Row[] {
  const rand = createRng(seed);
  const colors = ['red', 'green', 'blue'];
  return Array.from({ length: n }, () => {
    const x = rand();
    const color = colors[Math.floor(rand() * 3)] as string;
    return { x, color, label: x > 0.5 || color === 'red' ? 'yes' : 'no' };
  });
}

describe('native runtime', () => {
  const table = tableFromRows(TOY_SCHEMA, makeRows(1000, 1));
  const doc = fitToyGbdt(table);

  it('loads an artifact that predicts exactly what the in-memory model predicts', async () => {
    const loaded = await nativeRuntime.load(encodeNativeModel(doc));
    expect(nativeRuntime.name).toBe('native');
    expect(loaded.signature).toEqual(TOY_SIGNATURE);
    const live = tableFromRows(TOY_SCHEMA, makeRows(200, 2));
    const fromArtifact = await loaded.predict(live);
    const inMemory = new NativePredictor(doc).predict(live);
    expect(fromArtifact).toEqual(inMemory);
    // And both equal preprocessing + forest + sigmoid done by hand.
    const raw = predictForestRaw(
      compileForest(doc.model as GbdtModel),
      transform(doc.preprocess, live),
    );
    raw.forEach((z, i) =>
      expect(fromArtifact.proba?.[2 * i + 1]).toBeCloseTo(1 / (1 + Math.exp(-z)), 12),
    );
  });

  it('gives labels from signature.classes and N x K probabilities in that order', async () => {
    const loaded = await nativeRuntime.load(encodeNativeModel(doc));
    const probe = tableFromRows(TOY_SCHEMA, [
      { x: 0.9, color: 'green' },
      { x: 0.1, color: 'green' },
    ]);
    const { predict, proba } = await loaded.predict(probe);
    expect(predict).toEqual(['yes', 'no']);
    expect(proba).toHaveLength(4);
    expect((proba?.[1] as number) > 0.5).toBe(true);
    expect((proba?.[0] as number) + (proba?.[1] as number)).toBeCloseTo(1, 12);
  });

  it('predicts through unseen categories and nulls without throwing', async () => {
    const loaded = await nativeRuntime.load(encodeNativeModel(doc));
    const odd = tableFromRows(TOY_SCHEMA, [
      { x: null, color: 'purple' },
      { x: 0.2, color: null },
      { x: Number.NaN, color: 'red' },
    ]);
    const { predict, proba } = await loaded.predict(odd);
    expect(predict).toHaveLength(3);
    expect(predict[2]).toBe('yes');
    for (let i = 0; i < 3; i++) {
      expect((proba?.[2 * i] as number) + (proba?.[2 * i + 1] as number)).toBeCloseTo(1, 12);
    }
  });

  it('serves a linear model with multiclass probabilities as well', async () => {
    const labels = Int32Array.from({ length: 300 }, (_, i) => i % 3);
    const rows = Array.from({ length: 300 }, (_, i) => ({
      x: (i % 3) + 0.1 * ((i * 7) % 5),
      color: 'red',
    }));
    const train = tableFromRows(TOY_SCHEMA, rows);
    const sig: ModelSignature = { ...TOY_SIGNATURE, classes: [1, 2, 3] };
    const preprocess = fit(train, sig.inputs, { mode: 'linear' });
    const model = fitLogistic(transform(preprocess, train), labels, 3);
    const artifact = encodeNativeModel({
      format: NATIVE_FORMAT,
      version: NATIVE_FORMAT_VERSION,
      signature: sig,
      preprocess,
      model,
    });
    const loaded = await nativeRuntime.load(artifact);
    const { predict, proba } = await loaded.predict(
      tableFromRows(TOY_SCHEMA, [
        { x: 0.1, color: 'red' },
        { x: 2.2, color: 'blue' },
      ]),
    );
    expect(predict).toEqual([1, 3]);
    expect(proba).toHaveLength(6);
  });

  it('round-trips a model from trainModel, regression included', async () => {
    const rand = createRng(3);
    const rows = Array.from({ length: 400 }, () => {
      const x = rand();
      return { x, color: x > 0.5 ? 'red' : 'blue', label: 3 * x };
    });
    const train = tableFromRows(
      [
        TOY_SCHEMA[0] as ColumnSchema,
        TOY_SCHEMA[1] as ColumnSchema,
        { name: 'label', type: 'float' },
      ],
      rows,
    );
    const result = await trainModel(train, { target: 'label', seed: 1 });
    const loaded = await nativeRuntime.load(result.artifact);
    const { predict, proba } = await loaded.predict(
      tableFromRows(TOY_SCHEMA, [{ x: 0.5, color: 'red' }]),
    );
    expect(proba).toBeUndefined();
    expect(predict[0] as number).toBeCloseTo(1.5, 0);
  });

  it('rejects bytes that are not a native model with FERRY_MODEL_INVALID', async () => {
    const invalid = expect.objectContaining({ code: 'FERRY_MODEL_INVALID' });
    await expect(nativeRuntime.load(Uint8Array.of(0xff, 0xfe, 0x00))).rejects.toThrow(invalid);
    await expect(nativeRuntime.load(new TextEncoder().encode('{"format":"onnx"}'))).rejects.toThrow(
      invalid,
    );
    const json = JSON.parse(new TextDecoder().decode(encodeNativeModel(doc))) as Record<
      string,
      unknown
    >;
    const future = new TextEncoder().encode(JSON.stringify({ ...json, version: 99 }));
    await expect(nativeRuntime.load(future)).rejects.toThrow(/version 99/);
  });

  it('rejects a forest whose nodes point backwards instead of looping forever', async () => {
    const model = doc.model as GbdtModel;
    const left = [...model.left];
    const firstSplit = left.findIndex((l) => l > 0);
    left[firstSplit] = firstSplit;
    const broken = encodeNativeModel({
      ...doc,
      model: { ...model, left },
    });
    await expect(nativeRuntime.load(broken)).rejects.toThrow(
      expect.objectContaining({ code: 'FERRY_MODEL_INVALID' }),
    );
  });

  it('names a missing input column with FERRY_INPUT_MISSING', async () => {
    const loaded = await nativeRuntime.load(encodeNativeModel(doc));
    const partial = tableFromRows([{ name: 'x', type: 'float' }], [{ x: 0.3 }]);
    expect(() => loaded.predict(partial)).toThrow(
      expect.objectContaining({ code: 'FERRY_INPUT_MISSING' }),
    );
  });
});

/** A fitted recipe from hand-written steps, its output schema as the steps define it. */
function fittedOf(source: ColumnSchema[], steps: FittedStep[]): FittedRecipe {
  let schema: ColumnSchema[] = source;
  for (const step of steps) schema = kindOf(step.step).schema(step as never, schema);
  return {
    format: FITTED_RECIPE_FORMAT,
    recipe: 'payments',
    source: { name: 'payments', type: 'csv', schema: source },
    fittedOn: 'all',
    fitRows: 400,
    steps,
    schema,
    createdAt: '2024-07-01T00:00:00.000Z',
  };
}

const RAW: ColumnSchema[] = [
  { name: 'id', type: 'string' },
  { name: 'amount', type: 'string' },
  { name: 'color', type: 'string' },
  { name: 'label', type: 'string' },
];

/** Amounts as French text; refunds (negative) are filtered out of training. */
const RECIPE = fittedOf(RAW, [
  { step: 'cast', column: 'amount', from: 'string', to: 'float', options: { decimal: ',' } },
  { step: 'filter', where: 'amount is null or amount >= 0' },
  { step: 'fill', with: 'median', values: [{ column: 'amount', type: 'float', value: 0.5 }] },
  { step: 'derive', column: 'big', expr: 'amount > 0.5', exprType: 'bool', type: 'bool' },
  {
    step: 'encode',
    method: 'one_hot',
    column: 'color',
    type: 'string',
    min_count: 1,
    categories: [
      { value: 'blue', column: 'color_blue' },
      { value: 'red', column: 'color_red' },
    ],
    other: 'color_other',
  },
  { step: 'drop', columns: ['id'] },
]);

const french = (x: number): string => x.toFixed(3).replace('.', ',');

describe('native runtime, with an embedded recipe', () => {
  const rand = createRng(5);
  const raw = Array.from({ length: 400 }, (_, i) => {
    const x = rand() * (i % 10 === 0 ? -1 : 1);
    const color = (['red', 'green', 'blue'] as const)[i % 3] as string;
    return {
      id: `p${i}`,
      amount: french(x),
      color,
      label: x > 0.5 || color === 'red' ? 'yes' : 'no',
    };
  });
  const prepared = applyToRows(RECIPE, raw).rows;
  const inputs: ColumnSchema[] = [
    { name: 'amount', type: 'string' },
    { name: 'color', type: 'string' },
  ];
  let doc: NativeModelDocument;
  let recipe: EmbeddedRecipe;

  beforeAll(async () => {
    const trained = await trainModel(tableFromRows(RECIPE.schema, prepared), {
      target: 'label',
      seed: 1,
    });
    doc = embedRecipe(decodeNativeModel(trained.artifact), RECIPE);
    recipe = doc.recipe as EmbeddedRecipe;
  });

  it('takes the raw columns and predicts what the model predicts on prepared rows', async () => {
    expect(prepared.length).toBeLessThan(raw.length);
    expect(doc.version).toBe(2);
    expect(doc.signature.inputs).toEqual(inputs);
    expect(recipe.sha256).toBe(recipeSha256(RECIPE));
    expect(recipe.features.map((f) => f.name)).not.toContain('label');
    const loaded = (await nativeRuntime.load(encodeNativeModel(doc))) as NativePredictor;
    const live = [
      { amount: '0,9', color: 'green' },
      { amount: '0,1', color: 'green' },
      { amount: '', color: 'red' },
      { amount: 'n/a', color: 'purple' },
    ];
    const fromRaw = loaded.predict(tableFromRows(inputs, live));
    const byHand = tableFromRows(RECIPE.schema, [
      { amount: 0.9, big: true, color_blue: 0, color_red: 0, color_other: 1 },
      { amount: 0.1, big: false, color_blue: 0, color_red: 0, color_other: 1 },
      { amount: 0.5, big: false, color_blue: 0, color_red: 1, color_other: 0 },
      { amount: 0.5, big: false, color_blue: 0, color_red: 0, color_other: 1 },
    ]);
    expect(fromRaw).toEqual(loaded.inner.predict(byHand));
    expect(fromRaw.predict.slice(0, 3)).toEqual(['yes', 'no', 'yes']);
  });

  it('predicts every row, those the recipe filtered out of training included', async () => {
    const loaded = await nativeRuntime.load(encodeNativeModel(doc));
    const { predict, proba } = await loaded.predict(
      tableFromRows(inputs, [
        { amount: '-3,5', color: 'red' },
        { amount: '0,7', color: 'blue' },
      ]),
    );
    expect(predict).toHaveLength(2);
    expect(proba).toHaveLength(4);
  });

  it('names a missing raw input with FERRY_INPUT_MISSING', async () => {
    const loaded = await nativeRuntime.load(encodeNativeModel(doc));
    const partial = tableFromRows([{ name: 'color', type: 'string' }], [{ color: 'red' }]);
    expect(() => loaded.predict(partial)).toThrow(
      expect.objectContaining({
        code: 'FERRY_INPUT_MISSING',
        message: expect.stringContaining("'amount'"),
      }),
    );
  });

  it('refuses an embedded recipe that was changed, or that a version 1 document carries', async () => {
    const invalid = (pattern: RegExp) =>
      expect.objectContaining({
        code: 'FERRY_MODEL_INVALID',
        message: expect.stringMatching(pattern),
      });
    const steps = RECIPE.steps.map((s) =>
      s.step === 'fill'
        ? { ...s, values: [{ column: 'amount', type: 'float' as const, value: 9 }] }
        : s,
    );
    const changed = { ...doc, recipe: { ...recipe, fitted: { ...RECIPE, steps } } };
    await expect(nativeRuntime.load(encodeNativeModel(changed))).rejects.toThrow(
      invalid(/SHA-256/),
    );
    await expect(nativeRuntime.load(encodeNativeModel({ ...doc, version: 1 }))).rejects.toThrow(
      invalid(/version 1/),
    );
    const unread = {
      ...doc,
      signature: {
        ...doc.signature,
        inputs: [...doc.signature.inputs, { name: 'nope', type: 'float' as const }],
      },
    };
    await expect(nativeRuntime.load(encodeNativeModel(unread))).rejects.toThrow(invalid(/'nope'/));
  });
});

describe('native runtime, older artifacts', () => {
  it('loads a version 1 document and predicts as before', async () => {
    const table = tableFromRows(TOY_SCHEMA, makeRows(300, 4));
    const doc = fitToyGbdt(table);
    const v1 = { ...doc, version: 1 as const };
    const loaded = (await nativeRuntime.load(encodeNativeModel(v1))) as NativePredictor;
    expect(loaded.document.version).toBe(1);
    expect(loaded.inner).toBe(loaded);
    const live = tableFromRows(TOY_SCHEMA, makeRows(50, 5));
    expect(loaded.prepare(live)).toBe(live);
    expect(loaded.predict(live)).toEqual(new NativePredictor(doc).predict(live));
  });
});
