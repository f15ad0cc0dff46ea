import type { V1Secret } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { ApprovalChange } from '../../../sidecar/src/approvals/approval-book.ts';
import type { ApprovalRequest, ApprovalRule } from '../../../sidecar/src/approvals/approval-request.ts';
import { announceRequests, type DeliveryOptions } from '../../../sidecar/src/approvals/notify-delivery.ts';
import type { GuardrailObject } from '../controllers/database-access-controller.ts';
import type { ObjectCache } from '../runtime/informer.ts';
import { type KubeClient, resourcePath } from '../runtime/kube-api.ts';
import { type ApprovalRequestObject, phaseOf } from './approval-request-object.ts';

/**
 * The notify targets whose URL is in a Secret (`urlSecretRef`), which a sidecar cannot read: the
 * operator sends those. It takes the targets from the Guardrail object itself, never from what the
 * sidecar sent, so a sidecar cannot make the operator read a Secret the Guardrail's author did not
 * name; and it reads the Secret in the Guardrail's namespace. Messages carry the statement's shape,
 * never its text (whose literals may be personal data).
 */
export function secretNotifier(options: {
  readonly api: KubeClient;
  readonly guardrails: ObjectCache<GuardrailObject>;
  readonly logger: Logger;
  readonly delivery?: Omit<DeliveryOptions, 'targets' | 'secretUrl'>;
}): (event: ApprovalChange['event'], object: ApprovalRequestObject) => void {
  const { api, guardrails, logger } = options;
  const announce = announceRequests(logger, {
    ...options.delivery,
    targets: 'urlSecretRef',
    secretUrl: async (ref, rule) => {
      const named = `urlSecretRef ${ref.name}/${ref.key}`;
      let secret: V1Secret | undefined;
      try {
        secret = await api.getOptional<V1Secret>(resourcePath('v1', 'secrets', rule.namespace, ref.name));
      } catch (error) {
        return { problem: `${named} cannot be read (${(error as Error).name})` };
      }
      const data = secret?.data?.[ref.key];
      if (data === undefined) return { problem: `${named} does not exist` };
      return { url: Buffer.from(data, 'base64').toString('utf8') };
    },
  });
  return (event, object) => {
    const namespace = object.metadata.namespace;
    const rules: ApprovalRule[] = [];
    for (const held of object.spec.rules) {
      const guardrailNamespace = held.namespace ?? namespace;
      const guardrail = guardrails.get(guardrailNamespace, held.guardrail);
      const rule = guardrail?.spec.rules?.find((r) => r.name === held.rule);
      const notify = rule?.approval?.notify?.filter((target) => target.urlSecretRef !== undefined) ?? [];
      if (notify.length === 0) continue;
      rules.push({ ...held, namespace: guardrailNamespace, notify });
    }
    if (rules.length === 0) return;
    announce({ event, request: requestOf(object, rules) });
  };
}

/** The object as the notification messages read it: the shape in place of the text. */
function requestOf(object: ApprovalRequestObject, rules: readonly ApprovalRule[]): ApprovalRequest {
  const { spec, status } = object;
  const decision = status?.decision;
  return {
    id: object.metadata.name,
    binding: {
      subject: spec.identity.subject,
      database: spec.database,
      // Never sent: the messages carry the shape only.
      statement: '',
      parametersHash: spec.parametersHash,
    },
    fingerprint: spec.fingerprint ?? null,
    shape: spec.shape ?? null,
    requester: { subject: spec.identity.subject, groups: spec.identity.groups },
    rules,
    impact: spec.impact ?? {},
    requestedAt: Date.parse(spec.requestedAt),
    expiresAt: Date.parse(spec.expiresAt),
    phase: phaseOf(object),
    ...(decision?.by !== undefined && {
      decision: {
        by: decision.by,
        groups: decision.groups ?? [],
        reason: decision.reason,
        at: Date.parse(decision.at ?? spec.requestedAt),
      },
    }),
    decideCommand: `kubectl gatehouse approve ${object.metadata.name} -n ${object.metadata.namespace} --reason "..."`,
  };
}

/** A decision older than this, seen again (a restart lists every object), was announced already. */
const FRESH_DECISION_MS = 60_000;

/**
 * Announces decisions as the informer sees them, once, on the leader only (every replica watches the
 * same objects). Expiry, which has no decision time, is not announced from here.
 */
export function decisionAnnouncer(
  notify: (event: ApprovalChange['event'], object: ApprovalRequestObject) => void,
  isLeader: () => boolean,
  now: () => number = Date.now,
): (object: ApprovalRequestObject) => void {
  const announced = new Map<string, number>();
  return (object) => {
    const phase = phaseOf(object);
    const at = Date.parse(object.status?.decision?.at ?? '');
    if ((phase !== 'Approved' && phase !== 'Denied') || !isLeader()) return;
    if (!Number.isFinite(at) || now() - at > FRESH_DECISION_MS) return;
    const key = `${object.metadata.namespace}/${object.metadata.name}`;
    if (announced.has(key)) return;
    announced.set(key, at);
    for (const [seen, when] of announced) if (now() - when > FRESH_DECISION_MS) announced.delete(seen);
    notify(phase === 'Approved' ? 'approved' : 'denied', object);
  };
}
