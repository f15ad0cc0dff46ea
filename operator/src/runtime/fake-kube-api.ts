import { randomBytes, randomUUID } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { API_VERSION } from '../../../crds/common.ts';
import type { ObjectCache } from './informer.ts';
import {
  isNotFound,
  KubeApiError,
  type KubeClient,
  type KubeList,
  type KubeObject,
  type ListQuery,
  type PatchType,
} from './kube-api.ts';

/**
 * An API server in memory, for unit tests of what talks to one (controllers, status writer, event
 * recorder, leader election). It keeps the rules a controller can get wrong, as kube-apiserver
 * applies them (fake-kube-api.test.ts runs the same checks against a real one):
 *
 * - resourceVersion: one counter for the whole store; a write carrying a stale resourceVersion (PUT,
 *   or a merge patch that names one) is 409 Conflict; a write that changes nothing changes nothing.
 * - 404 NotFound for a missing object, for a resource the server does not serve, and for a create
 *   into a namespace that does not exist; 409 AlreadyExists for a second create.
 * - the status subresource: a write to the object leaves `status` as it was, a write to `/status`
 *   changes only `status`; `status` given at create is dropped; `metadata.generation` counts the
 *   other changes (and the start of a deletion).
 * - finalizers: DELETE of an object with finalizers sets `deletionTimestamp` and keeps it; removing
 *   the last finalizer then deletes it; no finalizer may be added once it is being deleted.
 * - custom resources (a group not built in): a PUT without resourceVersion is 422, and a
 *   strategic merge patch is 415, as for CRDs.
 * - Secrets: `stringData` is folded into `data` (base64), as the server does.
 * - list with label selectors (=, ==, !=, in, notin, exists, !exists) and the field selectors
 *   metadata.name and metadata.namespace, items in key order.
 * - watch: every change is an ADDED, MODIFIED or DELETED event to the watchers of its collection;
 *   `informer()` builds an ObjectCache on them, which a test can hold back to play a lagging cache.
 * - every object crosses as JSON, so nothing a caller keeps aliases the store (and `undefined`
 *   fields vanish, as on the wire).
 *
 * Not modelled: CRD schema validation (the e2e test against a real server covers it), admission
 * (webhooks, defaults), garbage collection of owned objects (envtest has none either), namespace
 * deletion cascading, graceful pod deletion, strategic merge patches of built-in kinds (refused
 * with an error naming the gap), RBAC, and watch bookmarks or expiry.
 */
export class FakeKubeApi implements KubeClient {
  /** Every request, in order: tests assert what a reconcile wrote (and that an idle one wrote nothing). */
  readonly requests: { method: string; path: string; body?: unknown }[] = [];
  readonly #objects = new Map<string, StoredObject>();
  readonly #documents: Map<string, unknown>;
  readonly #watchers = new Set<{ collection: string; handler: WatchHandler }>();
  readonly #failures: { matches: (method: string, path: string) => boolean; error: KubeApiError }[] = [];
  #resourceVersion = 100;

  constructor(options: { documents?: Record<string, unknown> } = {}) {
    this.#documents = new Map(Object.entries({ ...DEFAULT_DOCUMENTS, ...options.documents }));
  }

  /** The next request for which `matches` holds fails with this status (once). */
  failNext(matches: (method: string, path: string) => boolean, status: number, reason: string): void {
    this.#failures.push({
      matches,
      error: new KubeApiError('?', '?', status, reason, 'injected by the test'),
    });
  }

  /** The writes (not GETs) since `since` requests, as `METHOD path`. */
  writes(since = 0): string[] {
    return this.requests
      .slice(since)
      .filter((r) => r.method !== 'GET')
      .map((r) => `${r.method} ${r.path}`);
  }

  async get<T>(path: string): Promise<T> {
    const request = this.#begin('GET', path);
    const document = this.#documents.get(path);
    if (document !== undefined) return wire(document) as T;
    const target = this.#resolve(request);
    if (target.name === undefined) return this.#list(request, target, {}) as T;
    return wire(this.#existing(request, target).object) as T;
  }

  async getOptional<T>(path: string): Promise<T | undefined> {
    try {
      return await this.get<T>(path);
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  async list<T>(path: string, query: ListQuery = {}): Promise<KubeList<T>> {
    const request = this.#begin('GET', path);
    const target = this.#resolve(request);
    if (target.name !== undefined) throw apiError(request, 405, 'MethodNotAllowed', 'not a collection');
    return this.#list(request, target, query) as unknown as KubeList<T>;
  }

  async create<T>(path: string, body: unknown): Promise<T> {
    const request = this.#begin('POST', path, body);
    const target = this.#resolve(request);
    if (target.name !== undefined || target.subresource !== undefined)
      throw apiError(request, 405, 'MethodNotAllowed', 'POST goes to a collection');
    const object = wire(body) as KubeObject & Record<string, unknown>;
    object.metadata ??= { name: '' };
    const meta = object.metadata as KubeObject['metadata'] & { generateName?: string };
    if (!meta.name && meta.generateName)
      meta.name = `${meta.generateName}${randomBytes(3).toString('hex').slice(0, 5)}`;
    if (!meta.name)
      throw apiError(
        request,
        422,
        'Invalid',
        'metadata.name: Required value: name or generateName is required',
      );
    if (target.namespace !== undefined) {
      if (meta.namespace !== undefined && meta.namespace !== target.namespace)
        throw apiError(
          request,
          400,
          'BadRequest',
          'the namespace of the provided object does not match the namespace sent on the request',
        );
      meta.namespace = target.namespace;
      const namespace = this.#objects.get(
        storeKey({ ...NAMESPACES, namespace: undefined, name: target.namespace }),
      );
      if (!namespace) throw apiError(request, 404, 'NotFound', `namespaces "${target.namespace}" not found`);
      if (namespace.object.metadata.deletionTimestamp)
        throw apiError(request, 403, 'Forbidden', `namespace ${target.namespace} is being terminated`);
    }
    this.#checkKind(request, target, object);
    object.apiVersion = target.apiVersion;
    object.kind = target.resource.kind;
    const key = storeKey({ ...target, name: meta.name });
    if (this.#objects.has(key))
      throw apiError(
        request,
        409,
        'AlreadyExists',
        `${target.resource.plural} "${meta.name}" already exists`,
      );
    if (target.resource.status) delete object['status'];
    if (target.resource.kind === 'Secret') foldStringData(object);
    delete meta.deletionTimestamp;
    delete (meta as { generation?: number }).generation;
    meta.uid = randomUUID();
    (meta as { creationTimestamp?: string }).creationTimestamp = rfc3339(new Date());
    if (target.resource.generation) meta.generation = 1;
    meta.resourceVersion = this.#nextVersion();
    this.#objects.set(key, { target: { ...target, name: meta.name }, object });
    this.#notify(target, 'ADDED', object);
    return wire(object) as T;
  }

  async replace<T>(path: string, body: unknown): Promise<T> {
    const request = this.#begin('PUT', path, body);
    const target = this.#resolve(request);
    const stored = this.#existing(request, target);
    const next = wire(body) as KubeObject & Record<string, unknown>;
    if (!next?.metadata) throw apiError(request, 400, 'BadRequest', 'the body has no metadata');
    if (next.metadata.resourceVersion === undefined && target.resource.custom)
      throw apiError(
        request,
        422,
        'Invalid',
        'metadata.resourceVersion: Invalid value: 0: must be specified for an update',
      );
    return wire(this.#update(request, target, stored, next)) as T;
  }

  async patch<T>(path: string, body: unknown, type: PatchType = 'merge'): Promise<T> {
    const request = this.#begin('PATCH', path, body);
    const target = this.#resolve(request);
    const stored = this.#existing(request, target);
    let next: KubeObject & Record<string, unknown>;
    if (type === 'merge') {
      next = mergePatch(wire(stored.object), wire(body)) as KubeObject & Record<string, unknown>;
      // A merge patch that names no resourceVersion is unconditional: it applies to the latest.
      if ((body as { metadata?: { resourceVersion?: unknown } })?.metadata?.resourceVersion === undefined)
        next.metadata.resourceVersion = stored.object.metadata.resourceVersion;
    } else if (type === 'json') {
      next = jsonPatch(request, wire(stored.object), wire(body) as JsonPatchOp[]) as KubeObject &
        Record<string, unknown>;
    } else {
      if (target.resource.custom)
        throw apiError(
          request,
          415,
          'UnsupportedMediaType',
          'strategic merge patch is not supported for custom resources',
        );
      throw new Error(
        `FakeKubeApi does not model strategic merge patches (${path}); use a merge patch or a real API server`,
      );
    }
    return wire(this.#update(request, target, stored, next)) as T;
  }

  async delete(path: string, query: Record<string, string> = {}): Promise<void> {
    const request = this.#begin('DELETE', path, query);
    try {
      const target = this.#resolve(request);
      const stored = this.#existing(request, target);
      if (target.subresource !== undefined)
        throw apiError(request, 405, 'MethodNotAllowed', 'cannot delete a subresource');
      if ((stored.object.metadata.finalizers ?? []).length === 0) {
        this.#remove(stored);
        return;
      }
      if (stored.object.metadata.deletionTimestamp) return;
      const object = wire(stored.object) as KubeObject & Record<string, unknown>;
      object.metadata.deletionTimestamp = rfc3339(new Date());
      (object.metadata as { deletionGracePeriodSeconds?: number }).deletionGracePeriodSeconds = 0;
      if (object.metadata.generation !== undefined) object.metadata.generation++;
      object.metadata.resourceVersion = this.#nextVersion();
      stored.object = object;
      this.#notify(stored.target, 'MODIFIED', object);
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  }

  /** Calls `handler` with every later change in `collection` (a list path, one namespace or all). */
  watch(collection: string, handler: WatchHandler): () => void {
    const target = this.#resolve({ method: 'GET', path: collection });
    const watcher = { collection: collectionKey(target), handler };
    this.#watchers.add(watcher);
    return () => this.#watchers.delete(watcher);
  }

  /** An informer's cache of `collection`, filled by a list and kept by watch events. */
  informer<T extends KubeObject>(collection: string): FakeInformer<T> {
    return new FakeInformer<T>(this, collection);
  }

  #begin(method: string, path: string, body?: unknown): Request {
    this.requests.push({ method, path, ...(body !== undefined && { body: wire(body) }) });
    const failure = this.#failures.findIndex((f) => f.matches(method, path));
    if (failure >= 0) {
      const { error } = this.#failures.splice(failure, 1)[0]!;
      throw new KubeApiError(method, path, error.status, error.reason, error.message);
    }
    return { method, path };
  }

  #resolve(request: Request): Target {
    const match = /^\/(api\/v1|apis\/([^/]+)\/([^/]+))(\/.*)?$/.exec(request.path.split('?')[0]!);
    if (!match) throw apiError(request, 404, 'NotFound', 'the server could not find the requested resource');
    const apiVersion = match[2] ? `${match[2]}/${match[3]}` : 'v1';
    const segments = (match[4] ?? '').split('/').filter(Boolean).map(decodeURIComponent);
    let namespace: string | undefined;
    if (segments[0] === 'namespaces' && segments.length >= 3) {
      namespace = segments[1];
      segments.splice(0, 2);
    }
    const [plural, name, subresource, ...rest] = segments;
    const resource = RESOURCES[`${apiVersion}/${plural}`] ?? (plural && customResource(apiVersion, plural));
    if (
      !resource ||
      rest.length > 0 ||
      (subresource !== undefined && (subresource !== 'status' || !resource.status))
    )
      throw apiError(request, 404, 'NotFound', 'the server could not find the requested resource');
    if (resource.namespaced === false && namespace !== undefined)
      throw apiError(request, 404, 'NotFound', 'the server could not find the requested resource');
    return { apiVersion, resource, namespace, name, subresource };
  }

  #existing(request: Request, target: Target): StoredObject {
    const stored = target.name === undefined ? undefined : this.#objects.get(storeKey(target));
    if (!stored)
      throw apiError(request, 404, 'NotFound', `${target.resource.plural} "${target.name ?? ''}" not found`);
    return stored;
  }

  #checkKind(request: Request, target: Target, object: KubeObject): void {
    if (object.kind !== undefined && object.kind !== target.resource.kind)
      throw apiError(
        request,
        400,
        'BadRequest',
        `the kind ${object.kind} does not match ${target.resource.kind}`,
      );
    if (object.apiVersion !== undefined && object.apiVersion !== target.apiVersion)
      throw apiError(
        request,
        400,
        'BadRequest',
        `the apiVersion ${object.apiVersion} does not match ${target.apiVersion}`,
      );
  }

  /** A PUT or PATCH of one object (or its status), with the server's preconditions and rules. */
  #update(
    request: Request,
    target: Target,
    stored: StoredObject,
    next: KubeObject & Record<string, unknown>,
  ): KubeObject {
    const before = stored.object as KubeObject & Record<string, unknown>;
    this.#checkKind(request, target, next);
    const meta = next.metadata;
    if (meta.name !== undefined && meta.name !== before.metadata.name)
      throw apiError(request, 400, 'BadRequest', 'the name of the object does not match the name on the URL');
    if (meta.uid !== undefined && meta.uid !== before.metadata.uid)
      throw apiError(
        request,
        409,
        'Conflict',
        `Precondition failed: UID in precondition: ${meta.uid}, UID in object meta: ${before.metadata.uid}`,
      );
    if (meta.resourceVersion !== undefined && meta.resourceVersion !== before.metadata.resourceVersion)
      throw apiError(
        request,
        409,
        'Conflict',
        `Operation cannot be fulfilled on ${target.resource.plural} "${before.metadata.name}": the object has been modified; please apply your changes to the latest version and try again`,
      );
    let after: KubeObject & Record<string, unknown>;
    if (target.subresource === 'status') {
      after = { ...wire(before), status: next['status'] } as KubeObject & Record<string, unknown>;
      if (next['status'] === undefined) delete after['status'];
    } else {
      after = { ...next, apiVersion: target.apiVersion, kind: target.resource.kind };
      // Server-owned fields come from the stored object, whatever the body says.
      after.metadata = {
        ...meta,
        name: before.metadata.name,
        uid: before.metadata.uid,
        ...(before.metadata.namespace !== undefined && { namespace: before.metadata.namespace }),
      };
      for (const field of [
        'creationTimestamp',
        'deletionTimestamp',
        'deletionGracePeriodSeconds',
        'generation',
      ])
        setOrDelete(after.metadata, field, (before.metadata as unknown as Record<string, unknown>)[field]);
      if (target.resource.status) setOrDelete(after, 'status', before['status']);
      if (target.resource.kind === 'Secret') foldStringData(after);
      if (before.metadata.deletionTimestamp) {
        const added = (after.metadata.finalizers ?? []).filter(
          (f) => !before.metadata.finalizers?.includes(f),
        );
        if (added.length > 0)
          throw apiError(
            request,
            422,
            'Invalid',
            `metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers ${JSON.stringify(added)}`,
          );
      }
      if (after.metadata.finalizers?.length === 0) delete after.metadata.finalizers;
    }
    after.metadata.resourceVersion = before.metadata.resourceVersion;
    if (isDeepStrictEqual(after, before)) return before;
    if (
      before.metadata.generation !== undefined &&
      target.subresource === undefined &&
      specChanged(before, after)
    )
      after.metadata.generation = before.metadata.generation + 1;
    after.metadata.resourceVersion = this.#nextVersion();
    stored.object = after;
    if (after.metadata.deletionTimestamp && !after.metadata.finalizers?.length) {
      this.#remove(stored);
      return after;
    }
    this.#notify(stored.target, 'MODIFIED', after);
    return after;
  }

  #remove(stored: StoredObject): void {
    this.#objects.delete(storeKey(stored.target));
    const gone = wire(stored.object) as KubeObject;
    gone.metadata.resourceVersion = this.#nextVersion();
    this.#notify(stored.target, 'DELETED', gone);
  }

  /** The objects of a collection now, as a list would return them, without a request. */
  objects<T extends KubeObject>(collection: string): T[] {
    const target = this.#resolve({ method: 'GET', path: collection });
    return this.#list({ method: 'GET', path: collection }, target, {}).items as T[];
  }

  #list(
    request: Request,
    target: Target,
    query: ListQuery,
  ): KubeList<KubeObject> & { apiVersion: string; kind: string } {
    const labels = parseLabelSelector(request, query.labelSelector ?? '');
    const fields = parseFieldSelector(request, query.fieldSelector ?? '');
    const items = [...this.#objects.entries()]
      .filter(
        ([, s]) =>
          s.target.apiVersion === target.apiVersion &&
          s.target.resource.plural === target.resource.plural &&
          (target.namespace === undefined || s.target.namespace === target.namespace),
      )
      .filter(([, s]) => labels(s.object.metadata.labels ?? {}) && fields(s.object.metadata))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, s]) => wire(s.object) as KubeObject);
    return {
      apiVersion: target.apiVersion,
      kind: `${target.resource.kind}List`,
      metadata: { resourceVersion: String(this.#resourceVersion) },
      items,
    };
  }

  #nextVersion(): string {
    return String(++this.#resourceVersion);
  }

  #notify(target: Target, type: WatchEventType, object: KubeObject): void {
    for (const watcher of this.#watchers) {
      if (
        watcher.collection === collectionKey(target) ||
        watcher.collection === collectionKey({ ...target, namespace: undefined })
      )
        watcher.handler(type, wire(object) as KubeObject);
    }
  }
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';
export type WatchHandler = (type: WatchEventType, object: KubeObject) => void;

/**
 * What the operator's Informer gives a reconcile (get and list from a cache), fed by the fake's
 * watch. Live by default; `hold()` stops applying events, as a cache that has not caught up, until
 * `release()` applies what came meanwhile.
 */
export class FakeInformer<T extends KubeObject> implements ObjectCache<T> {
  readonly #cache = new Map<string, T>();
  readonly #pending: [WatchEventType, KubeObject][] = [];
  #held = false;

  constructor(api: FakeKubeApi, collection: string) {
    api.watch(collection, (type, object) => {
      if (this.#held) this.#pending.push([type, object]);
      else this.#apply(type, object);
    });
    for (const item of api.objects<T>(collection)) this.#cache.set(keyOf(item), item);
  }

  get(namespace: string | undefined, name: string): T | undefined {
    const found = this.#cache.get(`${namespace ?? ''}/${name}`);
    return found && (wire(found) as T);
  }

  list(namespace?: string): readonly T[] {
    return [...this.#cache.values()]
      .filter((o) => namespace === undefined || (o.metadata.namespace ?? '') === namespace)
      .map((o) => wire(o) as T);
  }

  hold(): void {
    this.#held = true;
  }

  release(): void {
    this.#held = false;
    for (const [type, object] of this.#pending.splice(0)) this.#apply(type, object);
  }

  #apply(type: WatchEventType, object: KubeObject): void {
    if (type === 'DELETED') this.#cache.delete(keyOf(object));
    else this.#cache.set(keyOf(object), object as T);
  }
}

function keyOf(object: KubeObject): string {
  return `${object.metadata.namespace ?? ''}/${object.metadata.name}`;
}

interface Resource {
  readonly plural: string;
  readonly kind: string;
  /** Has a status subresource. */
  readonly status: boolean;
  /** Counts spec changes in metadata.generation. */
  readonly generation: boolean;
  readonly namespaced: boolean;
  readonly custom: boolean;
}

interface Target {
  readonly apiVersion: string;
  readonly resource: Resource;
  readonly namespace: string | undefined;
  readonly name: string | undefined;
  readonly subresource?: string | undefined;
}

interface StoredObject {
  readonly target: Target;
  object: KubeObject;
}

interface Request {
  readonly method: string;
  readonly path: string;
}

const builtIn = (
  plural: string,
  kind: string,
  { status = false, generation = false, namespaced = true } = {},
): Resource => ({ plural, kind, status, generation, namespaced, custom: false });
const WORKLOAD = { status: true, generation: true };

/** The built-in resources the operator and its tests touch; any other built-in path is 404. */
const RESOURCES: Record<string, Resource> = {
  'v1/namespaces': builtIn('namespaces', 'Namespace', { status: true, namespaced: false }),
  'v1/pods': builtIn('pods', 'Pod', { status: true }),
  'v1/configmaps': builtIn('configmaps', 'ConfigMap'),
  'v1/secrets': builtIn('secrets', 'Secret'),
  'v1/services': builtIn('services', 'Service', { status: true }),
  'v1/events': builtIn('events', 'Event'),
  'v1/serviceaccounts': builtIn('serviceaccounts', 'ServiceAccount'),
  'apps/v1/deployments': builtIn('deployments', 'Deployment', WORKLOAD),
  'apps/v1/statefulsets': builtIn('statefulsets', 'StatefulSet', WORKLOAD),
  'apps/v1/daemonsets': builtIn('daemonsets', 'DaemonSet', WORKLOAD),
  'apps/v1/replicasets': builtIn('replicasets', 'ReplicaSet', WORKLOAD),
  'batch/v1/jobs': builtIn('jobs', 'Job', WORKLOAD),
  'coordination.k8s.io/v1/leases': builtIn('leases', 'Lease'),
  // Not built in, but installed where the operator is asked to use it (DatabaseGateway tls.mode CertManager).
  'cert-manager.io/v1/certificates': builtIn('certificates', 'Certificate', {
    status: true,
    generation: true,
  }),
};
const NAMESPACES = { apiVersion: 'v1', resource: RESOURCES['v1/namespaces']! };

/** Our CRDs: namespaced, with a status subresource, as crds/generated/ declares them. */
const CUSTOM_KINDS: Record<string, Record<string, string>> = {
  [API_VERSION]: {
    databaseaccesses: 'DatabaseAccess',
    databasegateways: 'DatabaseGateway',
    guardrails: 'Guardrail',
    maskingpolicies: 'MaskingPolicy',
    approvalrequests: 'ApprovalRequest',
  },
};

function customResource(apiVersion: string, plural: string): Resource | undefined {
  const kind = CUSTOM_KINDS[apiVersion]?.[plural];
  return kind === undefined
    ? undefined
    : { plural, kind, status: true, generation: true, namespaced: true, custom: true };
}

function storeKey(target: Pick<Target, 'apiVersion' | 'resource' | 'namespace' | 'name'>): string {
  return `${collectionKey(target)}|${target.namespace ?? ''}|${target.name ?? ''}`;
}

function collectionKey(target: Pick<Target, 'apiVersion' | 'resource' | 'namespace'>): string {
  return `${target.apiVersion}/${target.resource.plural}@${target.namespace ?? '*'}`;
}

/** The defaults a kube-apiserver 1.31 answers on the non-resource paths the operator reads. */
const DEFAULT_DOCUMENTS: Record<string, unknown> = {
  '/version': { major: '1', minor: '31', gitVersion: 'v1.31.0' },
  '/.well-known/openid-configuration': {
    issuer: 'https://kubernetes.default.svc.cluster.local',
    jwks_uri: 'https://127.0.0.1:6443/openid/v1/jwks',
  },
  '/openid/v1/jwks': { keys: [{ use: 'sig', kty: 'RSA', kid: 'fake', alg: 'RS256', n: 'AQAB', e: 'AQAB' }] },
};

/** As the object would look after a round trip through JSON (what the wire does). */
function wire<T>(value: T): T {
  return value === undefined ? value : (JSON.parse(JSON.stringify(value)) as T);
}

function apiError(request: Request, status: number, reason: string, message: string): KubeApiError {
  return new KubeApiError(request.method, request.path, status, reason, message);
}

function rfc3339(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function setOrDelete(target: object, field: string, value: unknown): void {
  if (value === undefined) delete (target as Record<string, unknown>)[field];
  else (target as Record<string, unknown>)[field] = value;
}

/** Whether anything but metadata and status changed: what bumps metadata.generation. */
function specChanged(before: Record<string, unknown>, after: Record<string, unknown>): boolean {
  const rest = (o: Record<string, unknown>) => {
    const { metadata: _m, status: _s, ...others } = o;
    return others;
  };
  return !isDeepStrictEqual(rest(before), rest(after));
}

function foldStringData(secret: Record<string, unknown>): void {
  const stringData = secret['stringData'] as Record<string, string> | undefined;
  if (!stringData) return;
  const data = (secret['data'] as Record<string, string> | undefined) ?? {};
  for (const [key, value] of Object.entries(stringData)) data[key] = Buffer.from(value).toString('base64');
  secret['data'] = data;
  delete secret['stringData'];
}

/** RFC 7386. */
function mergePatch(target: unknown, patch: unknown): unknown {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) return patch;
  const result: Record<string, unknown> =
    typeof target === 'object' && target !== null && !Array.isArray(target)
      ? { ...(target as Record<string, unknown>) }
      : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = mergePatch(result[key], value);
  }
  return result;
}

type JsonPatchOp = { op: string; path: string; value?: unknown };

/** RFC 6902 add, remove, replace and test; a failed test or a missing path is 422, as on the server. */
function jsonPatch(request: Request, document: unknown, ops: JsonPatchOp[]): unknown {
  const root = { '': document } as Record<string, unknown>;
  for (const op of ops) {
    const tokens = [
      '',
      ...op.path
        .split('/')
        .slice(1)
        .map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~')),
    ];
    const last = tokens.pop()!;
    let parent: unknown = root;
    for (const token of tokens) {
      parent = (parent as Record<string, unknown> | undefined)?.[token];
      if (typeof parent !== 'object' || parent === null)
        throw apiError(request, 422, 'Invalid', `json patch: ${op.path} does not exist`);
    }
    const list = Array.isArray(parent) ? (parent as unknown[]) : undefined;
    const record = parent as Record<string, unknown>;
    const index = list ? (last === '-' ? list.length : Number(last)) : 0;
    const exists = list ? index < list.length : last in record;
    const current = list ? list[index] : record[last];
    switch (op.op) {
      case 'add':
        if (list) list.splice(index, 0, op.value);
        else record[last] = op.value;
        break;
      case 'remove':
      case 'replace':
        if (!exists) throw apiError(request, 422, 'Invalid', `json patch: ${op.path} does not exist`);
        if (list) list.splice(index, 1, ...(op.op === 'replace' ? [op.value] : []));
        else if (op.op === 'replace') record[last] = op.value;
        else delete record[last];
        break;
      case 'test':
        if (!exists || !isDeepStrictEqual(current, op.value))
          throw apiError(request, 422, 'Invalid', `json patch: test of ${op.path} failed`);
        break;
      default:
        throw new Error(`FakeKubeApi does not model the json patch op "${op.op}"`);
    }
  }
  return root[''];
}

type Matcher<T> = (value: T) => boolean;

/** The label selector grammar of the API server: `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`, `!a`. */
function parseLabelSelector(request: Request, selector: string): Matcher<Record<string, string>> {
  const requirements: Matcher<Record<string, string>>[] = [];
  for (const part of splitSelector(selector)) {
    const set = /^([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(part);
    const equality = /^([\w./-]+)\s*(=|==|!=)\s*([\w.-]*)$/.exec(part);
    const exists = /^(!?)([\w./-]+)$/.exec(part);
    if (set) {
      const [, key, op, list] = set as unknown as [string, string, string, string];
      const values = list.split(',').map((v) => v.trim());
      // notin, like !=, also matches objects without the label.
      requirements.push((labels) => (key in labels && values.includes(labels[key]!)) === (op === 'in'));
    } else if (equality) {
      const [, key, op, value] = equality as unknown as [string, string, string, string];
      requirements.push((labels) => (op === '!=' ? labels[key] !== value : labels[key] === value));
    } else if (exists) {
      const [, not, key] = exists as unknown as [string, string, string];
      requirements.push((labels) => key in labels !== (not === '!'));
    } else throw apiError(request, 400, 'BadRequest', `unable to parse requirement: ${JSON.stringify(part)}`);
  }
  return (labels) => requirements.every((r) => r(labels));
}

function parseFieldSelector(request: Request, selector: string): Matcher<KubeObject['metadata']> {
  const requirements: Matcher<KubeObject['metadata']>[] = [];
  for (const part of splitSelector(selector)) {
    const m = /^(metadata\.name|metadata\.namespace)\s*(=|==|!=)\s*(.*)$/.exec(part);
    if (!m) throw apiError(request, 400, 'BadRequest', `field label not supported: ${part.split(/[!=]/)[0]}`);
    const [, field, op, value] = m as unknown as [string, string, string, string];
    const read = (meta: KubeObject['metadata']) =>
      field === 'metadata.name' ? meta.name : (meta.namespace ?? '');
    requirements.push((meta) => (op === '!=' ? read(meta) !== value : read(meta) === value));
  }
  return (meta) => requirements.every((r) => r(meta));
}

/** Splits on the commas between requirements, not those inside `in (...)`. */
function splitSelector(selector: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let current = '';
  for (const char of selector) {
    if (char === '(') depth++;
    if (char === ')') depth--;
    if (char === ',' && depth === 0) {
      parts.push(current.trim());
      current = '';
    } else current += char;
  }
  if (current.trim()) parts.push(current.trim());
  return parts;
}
