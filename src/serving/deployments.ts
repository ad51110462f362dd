/**
 * Deployments: the numbered record of what each endpoint of ferry.yaml served. `ferry deploy` and
 * `ferry serve` record one (MetadataStore document `deployment`, named after the endpoint) when
 * the endpoint's spec differs from its latest deployment, and only after the spec compiled
 * exactly as serving compiles it (models resolved, loaded and warmed, vectors and expressions
 * checked): an invalid spec records nothing. The deployment version is what OIP `model_version`
 * and `/v1/endpoints` report.
 *
 * A deployment pins the spec, not the model versions: the versions its references resolved to
 * are recorded for the record, and an alias that moves later swaps the served version without a
 * new deployment (`graph/endpoint.ts`, `refresh`). Moving the alias back rolls back.
 *
 * Workers of `ferry serve --workers N` record deployments concurrently and the store has no
 * compare-and-set, so two of them may both append the same spec. Deploying never appends a spec
 * equal to the latest, so two consecutive documents with the same spec hash can only come from
 * such a race; every read treats the later one as the earlier, so all workers report one version
 * (a number may be skipped in the history).
 */
import { createHash } from 'node:crypto';
import type { EndpointSpec } from '../config/endpoint-schema.js';
import type { JsonObject } from '../core/json.js';
import type { Logger } from '../core/logger.js';
import { FerryError } from '../errors/index.js';
import { canonicalJson } from '../feature-store/catalog.js';
import type { MetadataStore, StoredDocument } from '../metadata/metadata-store.js';
import type { Workspace } from '../project/workspace.js';
import { parseModelRef } from '../registry/registry.js';
import { codeVersion } from '../version.js';
import { compileGraph, type CompiledGraph } from './graph/compile.js';
import { createModelProvider } from './graph/models.js';
import type { ModelProvider } from './graph/step.js';

/** The MetadataStore document kind of deployments; the document name is the endpoint's. */
export const DEPLOYMENT_KIND = 'deployment';

/** A model reference of the spec and the version it resolved to when the deployment was made. */
export interface DeployedModel {
  readonly ref: string;
  readonly model: string;
  readonly version: number;
}

export interface Deployment {
  readonly endpoint: string;
  /** 1, 2, ... per endpoint; a new one only when the spec changed. */
  readonly version: number;
  /** UTC milliseconds. */
  readonly createdAt: number;
  /** SHA-256 of the canonical JSON (sorted keys) of the parsed endpoint spec. */
  readonly specHash: string;
  /** The parsed endpoint spec (defaults filled in, durations in milliseconds), as JSON. */
  readonly spec: JsonObject;
  /** Each model reference of the spec, resolved at deploy time, in the order steps name them. */
  readonly models: readonly DeployedModel[];
  readonly ferryVersion: string;
  /** The commit of Ferry's source tree when it ran from a git checkout. */
  readonly gitCommit?: string | null;
}

export interface DeployResult {
  readonly deployment: Deployment;
  /** False when the latest deployment already had this spec (it is returned unchanged). */
  readonly created: boolean;
  /** The graph compiled to validate the spec. */
  readonly graph: CompiledGraph;
}

export interface DeployOptions {
  /** Told of each deployment recorded. */
  readonly logger?: Logger;
  /** Compiles with this provider, so versions it has loaded are not loaded again. */
  readonly models?: ModelProvider;
}

/** What is stored in the document body; version and time are the document's own. */
interface DeploymentBody {
  endpoint: string;
  specHash: string;
  spec: JsonObject;
  models: DeployedModel[];
  ferryVersion: string;
  gitCommit: string | null;
}

/**
 * SHA-256 of the canonical JSON of a parsed endpoint spec: equal specs hash equally, whatever
 * the key order or formatting of ferry.yaml.
 * @example endpointSpecHash(ws.project.spec.endpoints[0]) // '3f1c…'
 */
export function endpointSpecHash(endpoint: EndpointSpec): string {
  return createHash('sha256')
    .update(canonicalJson(toJson(endpoint)))
    .digest('hex');
}

/**
 * Validates the endpoint of ferry.yaml named `name` by compiling it as serving does, then records
 * a new deployment if its spec differs from the latest one. Throws the compile error (and records
 * nothing) when the spec is invalid, FERRY_ENDPOINT_NOT_FOUND when ferry.yaml has no such endpoint.
 * @example
 * const { deployment, created } = await deployEndpoint(ws, 'fraud');
 * console.log(`fraud: deployment ${deployment.version}${created ? ' (new)' : ''}`);
 */
export async function deployEndpoint(
  ws: Workspace,
  name: string,
  options: DeployOptions = {},
): Promise<DeployResult> {
  const endpoint = endpointOf(ws, name);
  const graph = await compileGraph(endpoint, {
    spec: ws.project.spec,
    root: ws.project.dir,
    models: options.models ?? createModelProvider(ws.registry),
    features: ws.features,
    events: ws.events,
  });
  return record(ws.metadata, endpoint, graph, options.logger);
}

/**
 * What `ferry serve` calls for each endpoint before serving it: `deployEndpoint`, except that a
 * graph the caller already compiled from the same spec is not compiled again.
 * @example
 * const graph = await compileGraph(endpoint, deps);
 * const { deployment } = await ensureDeployment(ws, endpoint.name, graph, { logger });
 */
export async function ensureDeployment(
  ws: Workspace,
  name: string,
  graph?: CompiledGraph,
  options: DeployOptions = {},
): Promise<DeployResult> {
  if (!graph) return deployEndpoint(ws, name, options);
  const endpoint = endpointOf(ws, name);
  if (endpointSpecHash(graph.endpoint) !== endpointSpecHash(endpoint)) {
    throw new FerryError(
      'FERRY_INTERNAL',
      `the graph given for endpoint '${name}' was compiled from another spec than ferry.yaml's`,
    );
  }
  return record(ws.metadata, endpoint, graph, options.logger);
}

/**
 * The newest deployment of an endpoint, undefined when it was never deployed.
 * @example const latest = await latestDeployment(ws.metadata, 'fraud'); // latest?.version
 */
export async function latestDeployment(
  metadata: MetadataStore,
  endpoint: string,
): Promise<Deployment | undefined> {
  const newest = await metadata.getDocument(DEPLOYMENT_KIND, endpoint);
  return newest ? settle(metadata, newest) : undefined;
}

/**
 * Every deployment of an endpoint, newest first (empty when never deployed).
 * @example for (const d of await deploymentHistory(ws.metadata, 'fraud')) console.log(d.version);
 */
export async function deploymentHistory(
  metadata: MetadataStore,
  endpoint: string,
): Promise<Deployment[]> {
  const newest = await metadata.getDocument(DEPLOYMENT_KIND, endpoint);
  if (!newest) return [];
  const older = await Promise.all(
    Array.from({ length: newest.version - 1 }, (_, i) =>
      metadata.getDocument(DEPLOYMENT_KIND, endpoint, i + 1),
    ),
  );
  const docs = [...older, newest].filter((d): d is StoredDocument => d !== undefined);
  // Oldest first, dropping the duplicates a race appended (see the module header).
  const kept: StoredDocument[] = [];
  for (const doc of docs) {
    const previous = kept[kept.length - 1];
    if (previous && bodyOf(previous).specHash === bodyOf(doc).specHash) continue;
    kept.push(doc);
  }
  return kept.reverse().map(toDeployment);
}

/**
 * The latest deployment of every endpoint ever deployed (in ferry.yaml or not any more), by name.
 * @example const deployed = new Map((await listDeployments(ws.metadata)).map((d) => [d.endpoint, d]));
 */
export async function listDeployments(metadata: MetadataStore): Promise<Deployment[]> {
  const docs = await metadata.listDocuments(DEPLOYMENT_KIND);
  return Promise.all(docs.map((doc) => settle(metadata, doc)));
}

function endpointOf(ws: Workspace, name: string): EndpointSpec {
  const endpoints = ws.project.spec.endpoints;
  const endpoint = endpoints.find((e) => e.name === name);
  if (!endpoint) {
    throw new FerryError(
      'FERRY_ENDPOINT_NOT_FOUND',
      `ferry.yaml defines no endpoint '${name}'; its endpoints: ${endpoints.map((e) => e.name).join(', ') || '(none: add one under endpoints:)'}`,
    );
  }
  return endpoint;
}

async function record(
  metadata: MetadataStore,
  endpoint: EndpointSpec,
  graph: CompiledGraph,
  logger: Logger | undefined,
): Promise<DeployResult> {
  const specHash = endpointSpecHash(endpoint);
  const latest = await latestDeployment(metadata, endpoint.name);
  if (latest && latest.specHash === specHash) return { deployment: latest, created: false, graph };
  const code = codeVersion();
  const body: DeploymentBody = {
    endpoint: endpoint.name,
    specHash,
    spec: toJson(endpoint),
    models: [...graph.resolved].map(([ref, version]) => ({
      ref,
      model: parseModelRef(ref).model,
      version,
    })),
    ferryVersion: code.ferry,
    gitCommit: code.commit,
  };
  const stored = await metadata.putDocument(
    DEPLOYMENT_KIND,
    endpoint.name,
    body as unknown as JsonObject,
  );
  const deployment = await settle(metadata, stored);
  // Another process recorded the same spec at the same time: its version is the deployment.
  if (deployment.version !== stored.version) return { deployment, created: false, graph };
  logger?.info(
    { endpoint: endpoint.name, version: deployment.version, specHash },
    `endpoint ${endpoint.name}: recorded deployment ${deployment.version}`,
  );
  return { deployment, created: true, graph };
}

/** The deployment a document stands for: itself, or the first of a run of racing duplicates. */
async function settle(metadata: MetadataStore, doc: StoredDocument): Promise<Deployment> {
  let current = doc;
  while (current.version > 1) {
    const previous = await metadata.getDocument(DEPLOYMENT_KIND, doc.name, current.version - 1);
    if (!previous || bodyOf(previous).specHash !== bodyOf(current).specHash) break;
    current = previous;
  }
  return toDeployment(current);
}

function bodyOf(doc: StoredDocument): DeploymentBody {
  return doc.body as unknown as DeploymentBody;
}

function toDeployment(doc: StoredDocument): Deployment {
  const body = bodyOf(doc);
  return {
    endpoint: body.endpoint,
    version: doc.version,
    createdAt: doc.createdAt,
    specHash: body.specHash,
    spec: body.spec,
    models: body.models,
    ferryVersion: body.ferryVersion,
    gitCommit: body.gitCommit ?? null,
  };
}

/** Plain JSON of a parsed spec (undefined fields dropped). */
function toJson(value: unknown): JsonObject {
  return JSON.parse(JSON.stringify(value)) as JsonObject;
}
