import type { Logger } from 'pino';
import type { AdmissionReview } from '../webhook/admission-review.ts';
import { type PolicyObjectView, stampPolicyChange } from './stamp-policy-change.ts';

export const POLICY_CHANGES_PATH = '/policy-changes';

/** The kinds whose changes the sidecars' policy.change records attribute. */
export const STAMPED_RESOURCES = ['databaseaccesses', 'guardrails', 'maskingpolicies'] as const;

/**
 * Answers the AdmissionReview of a CREATE or UPDATE of a DatabaseAccess, Guardrail or MaskingPolicy
 * with the patch that stamps who changed it. The webhook fails closed (`failurePolicy: Fail`): a
 * request it cannot read is refused, because admitting it would keep whatever the client wrote into
 * the annotation. A dry run is answered the same way; answering has no side effect.
 */
export function reviewPolicyChange(
  review: AdmissionReview,
  deps: { logger: Pick<Logger, 'debug' | 'warn'> },
): AdmissionReview {
  const request = review.request;
  const uid = request?.uid ?? '';
  const answer = (response: Record<string, unknown>): AdmissionReview => ({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    response: { uid, allowed: false, ...response },
  });
  const operation = request?.operation;
  const username = request?.userInfo?.username;
  if (
    (operation !== 'CREATE' && operation !== 'UPDATE') ||
    (request?.subResource ?? '') !== '' ||
    !(STAMPED_RESOURCES as readonly string[]).includes(request?.resource?.resource ?? '') ||
    !isObject(request?.object) ||
    (operation === 'UPDATE' && !isObject(request?.oldObject)) ||
    typeof username !== 'string' ||
    username === ''
  ) {
    deps.logger.warn(
      { operation, resource: request?.resource?.resource, subResource: request?.subResource },
      'policy change webhook: refused a request it does not stamp',
    );
    return answer({
      status: {
        code: 403,
        reason: 'Forbidden',
        message: `gatehouse: this webhook stamps only creates and updates of ${STAMPED_RESOURCES.join(', ')} by an authenticated user`,
      },
    });
  }
  const patch = stampPolicyChange({
    operation,
    object: request.object as PolicyObjectView,
    ...(operation === 'UPDATE' && { oldObject: request.oldObject as PolicyObjectView }),
    username,
  });
  if (patch.length === 0) return answer({ allowed: true });
  deps.logger.debug(
    { resource: request.resource.resource, namespace: request.namespace, name: request.name, user: username },
    'policy change stamped',
  );
  return answer({
    allowed: true,
    patchType: 'JSONPatch',
    patch: Buffer.from(JSON.stringify(patch)).toString('base64'),
  });
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}
