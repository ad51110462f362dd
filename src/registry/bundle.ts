/**
 * Model bundles: one model version in one file, to move it between projects (a laptop and a
 * server, staging and production) without sharing their stores.
 *
 * The file is a JSON envelope (UTF-8), readable with any JSON tool:
 * ```json
 * {
 *   "format": "ferry-model-bundle", "formatVersion": 1, "ferryVersion": "0.1.0",
 *   "exportedAt": "2026-11-28T19:30:00.000Z",
 *   "model": "fraud", "version": 3, "createdAt": 1795000000000, "runtime": "native",
 *   "sha256": "<64 hex digits>", "sizeBytes": 48213,
 *   "signature": { ... }, "metrics": { ... }, "params": { ... }, "lineage": { ... },
 *   "profile": { ... }, "description": "...",
 *   "artifact": "<the artifact's bytes, base64>"
 * }
 * ```
 * Import checks the artifact against `sha256` before anything is stored, and registers it as the
 * next version of the model (the bundle's own name unless another is given). The version keeps its
 * signature, metrics, parameters, profile and lineage; the lineage gains `imported_from` (model,
 * version, SHA-256, export time and Ferry version of the source). Aliases are not carried: they
 * belong to the source project. As with any registration, the version becomes `champion` when the
 * model had none.
 */
import { z } from 'zod';
import { createHash } from 'node:crypto';
import type { ArtifactStore } from '../artifacts/artifact-store.js';
import type { JsonObject } from '../core/json.js';
import type { ModelSignature } from '../core/model.js';
import type { TableProfile } from '../core/profile.js';
import { FerryError } from '../errors/index.js';
import type { ModelVersion } from '../metadata/metadata-store.js';
import { FERRY_VERSION } from '../version.js';
import type { ModelRef, ModelRegistry } from './registry.js';

export const BUNDLE_FORMAT = 'ferry-model-bundle';
export const BUNDLE_FORMAT_VERSION = 1;

/** What export reads from: a workspace has both. */
export interface BundleSource {
  readonly registry: ModelRegistry;
  readonly artifacts: ArtifactStore;
}

/** A bundle's contents, the artifact decoded. */
export interface ModelBundle {
  readonly format: typeof BUNDLE_FORMAT;
  readonly formatVersion: number;
  readonly ferryVersion: string;
  /** ISO 8601, UTC. */
  readonly exportedAt: string;
  readonly model: string;
  readonly version: number;
  /** When the source version was registered (UTC milliseconds). */
  readonly createdAt: number;
  readonly runtime: string;
  readonly sha256: string;
  readonly sizeBytes: number;
  readonly signature: ModelSignature;
  readonly metrics: Readonly<Record<string, number>>;
  readonly params: JsonObject;
  readonly lineage: JsonObject;
  readonly profile: TableProfile;
  readonly description?: string;
  readonly artifact: Uint8Array;
}

export interface ImportOptions {
  /** Register under this model name instead of the bundle's. */
  readonly name?: string;
  /** Where the bundle was read from (a file path), recorded in `imported_from`. */
  readonly source?: string;
}

export interface ImportResult {
  readonly version: ModelVersion;
  /** True when the imported version became the model's champion. */
  readonly promoted: boolean;
  readonly bundle: Omit<ModelBundle, 'artifact'>;
}

const JSON_VALUE: z.ZodType<unknown> = z.json();

const SIGNATURE = z.object({
  task: z.enum(['classification', 'regression']),
  target: z.string(),
  inputs: z.array(
    z.object({
      name: z.string(),
      type: z.enum(['float', 'int', 'bool', 'string', 'timestamp']),
      optional: z.boolean().optional(),
    }),
  ),
  classes: z.array(z.union([z.string(), z.number(), z.boolean()])).optional(),
});

const ENVELOPE = z.object({
  format: z.literal(BUNDLE_FORMAT),
  formatVersion: z.number().int(),
  ferryVersion: z.string(),
  exportedAt: z.string(),
  model: z.string(),
  version: z.number().int().positive(),
  createdAt: z.number(),
  runtime: z.string().min(1),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  sizeBytes: z.number().int().nonnegative(),
  signature: SIGNATURE,
  metrics: z.record(z.string(), z.number()),
  params: z.record(z.string(), JSON_VALUE),
  lineage: z.record(z.string(), JSON_VALUE),
  profile: z.object({ rowCount: z.number(), columns: z.record(z.string(), JSON_VALUE) }),
  description: z.string().optional(),
  artifact: z.base64(),
});

function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * The bundle file of one version: `ref` is `model`, `model@alias` or `model:version` (a bare
 * name means its champion). The artifact is read with its SHA-256 checked, so a damaged store is
 * never exported.
 * @example
 * const { bytes, version } = await exportBundle(ws, 'fraud@champion');
 * writeFileSync('fraud-v3.ferry.json', bytes);
 */
export async function exportBundle(
  source: BundleSource,
  ref: ModelRef | string,
): Promise<{ version: ModelVersion; bytes: Uint8Array }> {
  const version = await source.registry.resolve(ref);
  const artifact = await source.artifacts.get(version.artifactKey, version.sha256);
  const envelope = {
    format: BUNDLE_FORMAT,
    formatVersion: BUNDLE_FORMAT_VERSION,
    ferryVersion: FERRY_VERSION,
    exportedAt: new Date().toISOString(),
    model: version.model,
    version: version.version,
    createdAt: version.createdAt,
    runtime: version.runtime,
    sha256: version.sha256,
    sizeBytes: version.sizeBytes,
    signature: version.signature,
    metrics: version.metrics,
    params: version.params,
    lineage: version.lineage,
    profile: version.profile,
    ...(version.description === undefined ? {} : { description: version.description }),
    artifact: Buffer.from(artifact).toString('base64'),
  };
  return { version, bytes: new TextEncoder().encode(JSON.stringify(envelope, null, 1) + '\n') };
}

/**
 * Reads a bundle file's bytes and checks them: the envelope's shape, then the artifact's size
 * and SHA-256. A damaged artifact is FERRY_ARTIFACT_CORRUPT; anything else that is not a bundle
 * is FERRY_ARGUMENT_INVALID.
 * @example const bundle = decodeBundle(readFileSync('fraud-v3.ferry.json'));
 */
export function decodeBundle(bytes: Uint8Array, source = 'the bundle'): ModelBundle {
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (cause) {
    throw new FerryError(
      'FERRY_ARGUMENT_INVALID',
      `${source} is not a Ferry model bundle (not JSON text); export one with ferry models export <model>@<alias> --out <file>`,
      { cause },
    );
  }
  const format = (raw as { format?: unknown } | null)?.format;
  if (format !== BUNDLE_FORMAT) {
    throw new FerryError(
      'FERRY_ARGUMENT_INVALID',
      `${source} is not a Ferry model bundle (its "format" is ${JSON.stringify(format ?? null)}, expected "${BUNDLE_FORMAT}"); export one with ferry models export`,
    );
  }
  const parsed = ENVELOPE.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new FerryError(
      'FERRY_ARGUMENT_INVALID',
      `${source} is a damaged Ferry model bundle: ${issue ? `${issue.path.join('.') || '(top)'}: ${issue.message}` : 'unexpected shape'}; export it again`,
    );
  }
  const envelope = parsed.data;
  if (envelope.formatVersion > BUNDLE_FORMAT_VERSION) {
    throw new FerryError(
      'FERRY_ARGUMENT_INVALID',
      `${source} has bundle format version ${envelope.formatVersion}, newer than this Ferry (${FERRY_VERSION}) reads (${BUNDLE_FORMAT_VERSION}); upgrade Ferry`,
    );
  }
  const artifact = new Uint8Array(Buffer.from(envelope.artifact, 'base64'));
  const actual = sha256Hex(artifact);
  if (artifact.byteLength !== envelope.sizeBytes || actual !== envelope.sha256) {
    throw new FerryError(
      'FERRY_ARTIFACT_CORRUPT',
      `${source}: the artifact of model '${envelope.model}' version ${envelope.version} does not match its recorded SHA-256 ` +
        `(recorded ${envelope.sha256.slice(0, 12)}…, ${envelope.sizeBytes} bytes; found ${actual.slice(0, 12)}…, ${artifact.byteLength} bytes); ` +
        'the file was changed or damaged: export it again',
    );
  }
  return {
    ...envelope,
    signature: envelope.signature as ModelSignature,
    params: envelope.params as JsonObject,
    lineage: envelope.lineage as JsonObject,
    profile: envelope.profile as TableProfile,
    artifact,
  };
}

/**
 * Registers a bundle as the next version of its model (or of `options.name`), after checking it
 * (see `decodeBundle`). Nothing is stored when the check fails.
 * @example
 * const { version } = await importBundle(ws.registry, readFileSync('fraud-v3.ferry.json'), { name: 'fraud' });
 */
export async function importBundle(
  registry: ModelRegistry,
  bytes: Uint8Array,
  options: ImportOptions = {},
): Promise<ImportResult> {
  const bundle = decodeBundle(bytes, options.source);
  const importedFrom: JsonObject = {
    model: bundle.model,
    version: bundle.version,
    sha256: bundle.sha256,
    exported_at: bundle.exportedAt,
    ferry_version: bundle.ferryVersion,
    ...(options.source === undefined ? {} : { bundle: options.source }),
  };
  const { version, promoted } = await registry.register({
    model: options.name ?? bundle.model,
    runtime: bundle.runtime,
    artifact: bundle.artifact,
    signature: bundle.signature,
    metrics: bundle.metrics,
    params: bundle.params,
    lineage: { ...bundle.lineage, imported_from: importedFrom },
    profile: bundle.profile,
    ...(bundle.description === undefined ? {} : { description: bundle.description }),
  });
  const { artifact: _artifact, ...rest } = bundle;
  return { version, promoted, bundle: rest };
}
