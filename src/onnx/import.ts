/**
 * Registers a foreign ONNX model (scikit-learn, XGBoost, PyTorch... or a Ferry export) as a model
 * version served by the `onnx` runtime. The signature is read from the file (see
 * `signature.ts`) unless one is given; it is written into the stored artifact's metadata
 * (`ferry.signature`), so the runtime reads the same signature the registry records. The graph
 * itself is stored unchanged, and it must load in onnxruntime before anything is registered.
 */
import { createHash } from 'node:crypto';
import type { ModelSignature } from '../core/model.js';
import type { ModelVersion } from '../metadata/metadata-store.js';
import type { ModelRegistry } from '../registry/registry.js';
import { FerryError } from '../errors/index.js';
import { OnnxModel, onnxRuntime } from '../serving/runtimes/onnx.js';
import { SIGNATURE_METADATA } from './export.js';
import { decodeOnnx, encodeOnnx, type ModelProto } from './proto.js';
import { parseSignature, readSignature } from './signature.js';

export interface ImportOnnxOptions {
  readonly registry: ModelRegistry;
  /** The model name to register a new version of. */
  readonly name: string;
  /** Overrides the signature read from the file. */
  readonly signature?: ModelSignature;
  readonly description?: string;
}

/**
 * Stores the ONNX bytes as the next version of `name` (runtime `onnx`) and returns it.
 * Throws FERRY_MODEL_INVALID when the bytes are not ONNX or onnxruntime cannot load them, and
 * FERRY_ARGUMENT_INVALID when no usable signature can be read or the one given is malformed.
 * @example
 * const { version } = await importOnnx(await fs.promises.readFile('model.onnx'), { registry, name: 'fraud' });
 */
export async function importOnnx(
  bytes: Uint8Array,
  options: ImportOnnxOptions,
): Promise<{ version: ModelVersion; promoted: boolean }> {
  let model: ModelProto;
  try {
    model = decodeOnnx(bytes);
  } catch (cause) {
    throw new FerryError(
      'FERRY_MODEL_INVALID',
      'the file is not an ONNX model (its bytes do not parse as an ONNX ModelProto)',
      { cause },
    );
  }
  if (!model.graph) {
    throw new FerryError('FERRY_MODEL_INVALID', 'the ONNX file has no graph');
  }
  const signature =
    options.signature === undefined
      ? readSignature(model)
      : parseSignature(options.signature, 'the signature given');
  model.metadataProps = [
    ...(model.metadataProps ?? []).filter((p) => p.key !== SIGNATURE_METADATA),
    { key: SIGNATURE_METADATA, value: JSON.stringify(signature) },
  ];
  const artifact = encodeOnnx(model);
  // Fails here, not at serving time, when the runtime cannot run the graph with this signature.
  await (await OnnxModel.create(artifact, signature)).release();
  return options.registry.register({
    model: options.name,
    runtime: onnxRuntime.name,
    artifact,
    signature,
    metrics: {},
    params: {},
    lineage: {
      imported: 'onnx',
      sha256: createHash('sha256').update(bytes).digest('hex'),
      producer: [model.producerName, model.producerVersion].filter(Boolean).join(' ') || 'unknown',
    },
    profile: { rowCount: 0, columns: {} },
    ...(options.description === undefined ? {} : { description: options.description }),
  });
}
