/**
 * The ONNX side of `ferry models export --format onnx` and `ferry models import --onnx`:
 * `models.ts` parses the arguments and calls these.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import type { ModelSignature } from '../core/model.js';
import type { ModelVersion } from '../metadata/metadata-store.js';
import { FerryError } from '../errors/index.js';
import { exportOnnx } from '../onnx/export.js';
import { importOnnx } from '../onnx/import.js';
import { parseSignature } from '../onnx/signature.js';
import type { Workspace } from '../project/workspace.js';
import { decodeNativeModel } from '../training/native-model.js';
import { withWorkspace, type GlobalOptions } from './context.js';
import { argumentError, printJson } from './output.js';

async function readInput(file: string, what: string): Promise<Uint8Array> {
  try {
    return await readFile(file);
  } catch (cause) {
    throw new FerryError(
      'FERRY_DATA_UNREADABLE',
      `cannot read ${what} '${file}': ${(cause as Error).message}`,
      { cause },
    );
  }
}

/** The ONNX bytes of a version: a native model converted, an ONNX one as stored. */
async function onnxOf(
  ws: Workspace,
  ref: string,
): Promise<{ version: ModelVersion; bytes: Uint8Array }> {
  const version = await ws.registry.resolve(ref);
  const artifact = await ws.artifacts.get(version.artifactKey, version.sha256);
  if (version.runtime === 'onnx') return { version, bytes: artifact };
  if (version.runtime !== 'native') {
    throw new FerryError(
      'FERRY_EXPORT_UNSUPPORTED',
      `${version.model}:${version.version} runs on runtime '${version.runtime}', which has no ONNX export`,
    );
  }
  return { version, bytes: exportOnnx(decodeNativeModel(artifact)) };
}

/**
 * `ferry models export <ref> --format onnx --out model.onnx`.
 * @example await exportOnnxCommand('fraud@champion', { out: 'fraud.onnx' });
 */
export async function exportOnnxCommand(
  ref: string,
  options: GlobalOptions & { out: string },
): Promise<void> {
  const { version, bytes } = await withWorkspace(options, (ws) => onnxOf(ws, ref));
  // Written beside the target, then renamed: a reader never sees half a model.
  const partial = `${options.out}.partial-${process.pid}`;
  await writeFile(partial, bytes);
  await rename(partial, options.out);
  const summary = {
    model: version.model,
    version: version.version,
    format: 'onnx',
    out: options.out,
    bytes: bytes.byteLength,
  };
  if (options.json) return printJson(summary);
  process.stdout.write(
    `Exported ${version.model}:${version.version} as ONNX (${bytes.byteLength} bytes) to ${options.out}\n`,
  );
}

/**
 * `ferry models import --onnx model.onnx --name fraud [--signature signature.json]`.
 * @example await importOnnxCommand({ onnx: 'model.onnx', name: 'fraud' });
 */
export async function importOnnxCommand(
  options: GlobalOptions & { onnx: string; name?: string; signature?: string },
): Promise<void> {
  const name = options.name;
  if (name === undefined) {
    throw argumentError(
      'give the model name to register the ONNX file under: ferry models import --onnx <file> --name <model>',
    );
  }
  const bytes = await readInput(options.onnx, 'ONNX file');
  let signature: ModelSignature | undefined;
  if (options.signature !== undefined) {
    const text = new TextDecoder().decode(await readInput(options.signature, 'signature file'));
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (cause) {
      throw argumentError(
        `signature file '${options.signature}' is not JSON: ${(cause as Error).message}`,
      );
    }
    signature = parseSignature(parsed, `signature file '${options.signature}'`);
  }
  const { version, promoted } = await withWorkspace(options, (ws) =>
    importOnnx(bytes, {
      registry: ws.registry,
      name,
      ...(signature === undefined ? {} : { signature }),
    }),
  );
  if (options.json) {
    return printJson({
      model: version.model,
      version: version.version,
      runtime: version.runtime,
      champion: promoted,
      sha256: version.sha256,
      signature: version.signature,
    });
  }
  const inputs = version.signature.inputs.map((i) => `${i.name}:${i.type}`).join(', ');
  process.stdout.write(
    `Imported ${options.onnx} as ${version.model}:${version.version} (runtime onnx)` +
      (promoted ? ' (champion)' : '') +
      `; ${version.signature.task}, inputs ${inputs}\n`,
  );
}
