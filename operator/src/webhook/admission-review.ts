import type { V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { DatabaseAccess } from '../workload/database-access.ts';
import { injectPod } from '../workload/inject-pod.ts';
import { selectAccess } from '../workload/select-access.ts';
import type { ServerVersion } from '../workload/server-version.ts';

/** admission.k8s.io/v1 AdmissionReview, the fields a mutating webhook reads and writes. */
export type AdmissionReview = {
  apiVersion: 'admission.k8s.io/v1';
  kind: 'AdmissionReview';
  request?: AdmissionRequest;
  response?: AdmissionResponse;
};

export type AdmissionRequest = {
  uid: string;
  kind: { group: string; version: string; kind: string };
  resource: { group: string; version: string; resource: string };
  subResource?: string;
  name?: string;
  namespace?: string;
  operation: 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';
  object?: unknown;
  /** The object before an UPDATE. */
  oldObject?: unknown;
  /** Who made the API request, as the API server authenticated them. */
  userInfo?: { username?: string; uid?: string; groups?: string[] };
  dryRun?: boolean;
};

export type AdmissionResponse = {
  uid: string;
  allowed: boolean;
  patchType?: 'JSONPatch';
  /** Base64 of the JSON Patch document. */
  patch?: string;
  warnings?: string[];
  /** Why a request is refused; the API server shows `message` to the client. */
  status?: { code: number; reason?: string; message: string };
};

export type AdmissionDeps = {
  /** DatabaseAccesses of a namespace, typically from an informer cache. */
  listAccesses: (namespace: string) => Promise<DatabaseAccess[]> | DatabaseAccess[];
  image: string;
  serverVersion: ServerVersion;
  logger: Pick<Logger, 'info' | 'warn' | 'error' | 'debug'>;
};

/** The API server shows warnings to the user; longer ones are cut by it, so they are cut here, readably. */
const WARNING_MAX = 240;

/**
 * Answers one AdmissionReview for the pod webhook. Always allows: injection is best-effort
 * (`failurePolicy: Ignore` in the same spirit), and a pod left without its sidecar is reported in
 * the DatabaseAccess status, where someone can act on it, instead of failing a rollout. A dry run
 * needs nothing special: answering has no side effect.
 */
export async function handleAdmissionReview(
  review: AdmissionReview,
  deps: AdmissionDeps,
): Promise<AdmissionReview> {
  const request = review.request;
  const answer = (response: Omit<AdmissionResponse, 'uid' | 'allowed'> = {}): AdmissionReview => ({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    response: { uid: request?.uid ?? '', allowed: true, ...response },
  });
  if (request === undefined || !isPodCreate(request)) return answer();

  const pod = structuredClone(request.object) as V1Pod;
  const namespace = request.namespace ?? pod.metadata?.namespace;
  const log = { uid: request.uid, namespace, pod: podName(pod), dryRun: request.dryRun === true };
  if (namespace === undefined) {
    deps.logger.warn(log, 'pod admission request without a namespace: admitted without a sidecar');
    return answer();
  }
  try {
    // The namespace travels beside the object on CREATE; matching needs it, the patch never touches it.
    const named: V1Pod = { ...pod, metadata: { ...pod.metadata, namespace } };
    const selection = selectAccess(named, await deps.listAccesses(namespace));
    if (selection.chosen === undefined) return answer();
    const result = injectPod({
      pod: named,
      access: selection.chosen,
      image: deps.image,
      serverVersion: deps.serverVersion,
    });
    if (result.skipped === 'opted-out') return answer();
    const notes = [...result.conflicts, ...selection.passedOver.map((passed) => passed.reason)];
    deps.logger.info(
      {
        ...log,
        access: selection.chosen.metadata.name,
        ...(result.skipped !== undefined && { skipped: result.skipped }),
        conflicts: notes.length,
      },
      result.skipped === undefined ? 'sidecar injected' : 'sidecar not injected',
    );
    return answer({
      ...(result.patch.length > 0 && {
        patchType: 'JSONPatch',
        patch: Buffer.from(JSON.stringify(result.patch)).toString('base64'),
      }),
      ...(notes.length > 0 && { warnings: notes.map(warning) }),
    });
  } catch (error) {
    deps.logger.error({ ...log, err: error }, 'injection failed: pod admitted without a sidecar');
    return answer();
  }
}

function isPodCreate(request: AdmissionRequest): boolean {
  return (
    request.operation === 'CREATE' &&
    request.kind.group === '' &&
    request.kind.kind === 'Pod' &&
    (request.subResource ?? '') === '' &&
    typeof request.object === 'object' &&
    request.object !== null
  );
}

/** Pods created by controllers have only a generateName when admitted. */
function podName(pod: V1Pod): string | undefined {
  return pod.metadata?.name || (pod.metadata?.generateName ? `${pod.metadata.generateName}*` : undefined);
}

function warning(text: string): string {
  const prefixed = `gatehouse: ${text}`;
  return prefixed.length <= WARNING_MAX ? prefixed : `${prefixed.slice(0, WARNING_MAX - 3)}...`;
}
