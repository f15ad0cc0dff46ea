import type {
  ApprovalRequestPhase,
  ApprovalRequestSpecValue,
  ApprovalRequestStatusValue,
} from '../../../crds/approval-request.ts';
import { API_VERSION } from '../../../crds/common.ts';
import type { Decidable } from '../../../sidecar/src/approvals/decision-refusal.ts';
import { type KubeObject, resourcePath } from '../runtime/kube-api.ts';

/** An ApprovalRequest as the API server stores it. */
export type ApprovalRequestObject = KubeObject & {
  metadata: KubeObject['metadata'] & { name: string; namespace: string };
  spec: ApprovalRequestSpecValue;
  status?: ApprovalRequestStatusValue;
};

export const APPROVAL_REQUESTS = 'approvalrequests';

/** The REST path of a namespace's ApprovalRequests, or of one, or of its status subresource. */
export function approvalRequestPath(namespace?: string, name?: string, status = false): string {
  return resourcePath(API_VERSION, APPROVAL_REQUESTS, namespace, name) + (status ? '/status' : '');
}

/** A request the operator has not yet marked is Pending. */
export function phaseOf(object: ApprovalRequestObject): ApprovalRequestPhase {
  return object.status?.phase ?? 'Pending';
}

/** The object as the shared decision rules read it (the same function a standalone proxy uses). */
export function decidable(object: ApprovalRequestObject): Decidable {
  return {
    id: object.metadata.name,
    phase: phaseOf(object),
    requester: { subject: object.spec.identity.subject },
    // ServiceAccount approvers without a namespace are in the Guardrail's, which is the request's.
    rules: object.spec.rules.map((rule) => ({
      ...rule,
      namespace: rule.namespace ?? object.metadata.namespace,
    })),
  };
}

/**
 * Until when the request counts: a Pending one until its expiry, an Approved one for its rules'
 * shortest TTL from the decision (an approval is usable that long once given).
 */
export function usableUntil(object: ApprovalRequestObject): number {
  const decidedAt = object.status?.decision?.at;
  if (phaseOf(object) === 'Approved' && decidedAt !== undefined) {
    const ttl = Math.min(...object.spec.rules.map((r) => r.ttlSeconds));
    return Date.parse(decidedAt) + ttl * 1000;
  }
  return Date.parse(object.spec.expiresAt);
}
