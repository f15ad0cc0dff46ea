import type { Logger } from 'pino';
import type { AdmissionReview } from '../webhook/admission-review.ts';
import type { ApprovalRequestObject } from './approval-request-object.ts';
import { stampDecision } from './stamp-decision.ts';

export const APPROVAL_DECISIONS_PATH = '/approval-decisions';

/**
 * Answers the AdmissionReview of an UPDATE of `approvalrequests/status`: refuses what stampDecision
 * refuses, and otherwise patches the status it stamped. Anything it cannot read is refused: this
 * webhook fails closed (`failurePolicy: Fail`), so an unreadable request must not pass as a decision.
 */
export function reviewDecision(
  review: AdmissionReview,
  deps: {
    operatorUser: () => string | undefined;
    now?: () => Date;
    logger: Pick<Logger, 'info' | 'warn'>;
  },
): AdmissionReview {
  const request = review.request;
  const uid = request?.uid ?? '';
  const answer = (response: Record<string, unknown>): AdmissionReview => ({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    response: { uid, allowed: false, ...response },
  });
  const refuse = (message: string) =>
    answer({ allowed: false, status: { code: 403, reason: 'Forbidden', message } });
  if (
    request?.operation !== 'UPDATE' ||
    request.subResource !== 'status' ||
    request.resource.resource !== 'approvalrequests' ||
    !isObject(request.object) ||
    !isObject(request.oldObject) ||
    typeof request.userInfo?.username !== 'string'
  )
    return refuse(
      'gatehouse: this webhook admits only updates of approvalrequests/status by an authenticated user',
    );
  const old = request.oldObject as unknown as ApprovalRequestObject;
  const next = request.object as unknown as ApprovalRequestObject;
  const user = { username: request.userInfo.username, groups: request.userInfo.groups ?? [] };
  const result = stampDecision({
    old,
    next,
    user,
    operatorUser: deps.operatorUser(),
    now: deps.now?.() ?? new Date(),
  });
  const log = { request: old.metadata?.name, namespace: request.namespace, user: user.username };
  if (!result.allowed) {
    deps.logger.warn({ ...log, refused: result.message }, 'approval decision refused');
    return refuse(`gatehouse: ${result.message}`);
  }
  if (result.status === undefined) return answer({ allowed: true });
  deps.logger.info({ ...log, phase: result.status.phase }, 'approval decision stamped');
  const patch = [{ op: 'replace', path: '/status', value: result.status }];
  return answer({
    allowed: true,
    patchType: 'JSONPatch',
    patch: Buffer.from(JSON.stringify(patch)).toString('base64'),
  });
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}
