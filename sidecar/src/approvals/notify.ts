import type { Logger } from 'pino';
import type { NotifyTargetSpec } from '../../../crds/guardrail.ts';
import type { ApprovalChange } from './approval-book.ts';
import { type ApprovalRequest, describeRules } from './approval-request.ts';

/** A delivery that takes longer is abandoned (and logged): announcing never holds anything up. */
const DELIVERY_TIMEOUT_MS = 5_000;

/**
 * The announcement of a new request. Only the statement's shape (literals as placeholders) leaves
 * the proxy: the text's values may be personal data, and chat channels and webhooks are not where
 * they may go. The approver sees the text itself through `gatehouse approvals show`.
 */
export function slackMessage(request: ApprovalRequest): { text: string; blocks: unknown[] } {
  const shape = request.shape ?? '(a statement Gatehouse could not parse; see the request)';
  const impact = impactLine(request);
  const text = `Approval needed: ${request.requester.subject} wants to run a statement on ${request.binding.database} (${describeRules(request.rules)}), request ${request.id}`;
  return {
    text,
    blocks: [
      {
        type: 'section',
        text: {
          type: 'mrkdwn',
          text: `*Approval needed* for \`${request.requester.subject}\` on \`${request.binding.database}\``,
        },
      },
      { type: 'section', text: { type: 'mrkdwn', text: `\`\`\`${shape.replaceAll('```', "'''")}\`\`\`` } },
      {
        type: 'context',
        elements: [
          {
            type: 'mrkdwn',
            text: `${describeRules(request.rules)}${impact ? ` · ${impact}` : ''} · expires ${new Date(request.expiresAt).toISOString()}`,
          },
        ],
      },
      {
        type: 'section',
        text: {
          type: 'mrkdwn',
          text: `Decide: \`gatehouse approvals approve ${request.id} --reason "…"\` or \`deny\``,
        },
      },
    ],
  };
}

/** The request as a generic webhook receives it: the API's view with the shape in place of the text. */
export function webhookMessage(request: ApprovalRequest): Record<string, unknown> {
  return {
    type: 'gatehouse.approval.requested',
    request: {
      id: request.id,
      phase: request.phase,
      requester: request.requester,
      database: request.binding.database,
      shape: request.shape,
      fingerprint: request.fingerprint,
      rules: request.rules.map((rule) => ({ guardrail: rule.guardrail, name: rule.rule })),
      impact: request.impact,
      requestedAt: new Date(request.requestedAt).toISOString(),
      expiresAt: new Date(request.expiresAt).toISOString(),
    },
  };
}

function impactLine(request: ApprovalRequest): string {
  const { affectedRows, notMeasured, estimatedRows, tables, dependents, sensitiveColumns } = request.impact;
  const parts: string[] = [];
  if (affectedRows !== undefined) parts.push(`${affectedRows} rows measured`);
  if (notMeasured !== undefined) parts.push(`rows not measured: ${notMeasured}`);
  if (estimatedRows !== undefined) parts.push(`about ${estimatedRows} rows planned`);
  if (tables?.length) parts.push(`tables ${tables.join(', ')}`);
  if (dependents?.length) parts.push(`depended on by ${dependents.join(', ')}`);
  if (sensitiveColumns?.length) parts.push(`sensitive columns ${sensitiveColumns.join(', ')}`);
  return parts.join(' · ');
}

/**
 * Announces each new request to its rules' targets, in the background. Targets that name a Secret
 * are the operator's to send; a standalone proxy skips them (and says so once).
 */
export function announceRequests(
  logger: Logger,
  send: typeof fetch = fetch,
): (change: ApprovalChange) => void {
  const warned = new Set<string>();
  return ({ event, request }) => {
    if (event !== 'requested') return;
    for (const rule of request.rules) {
      for (const target of rule.notify ?? []) {
        if (target.url === undefined) {
          const key = `${rule.guardrail}/${rule.rule}`;
          if (!warned.has(key))
            logger.warn(
              { guardrail: rule.guardrail, rule: rule.rule },
              'a notify target with urlSecretRef is sent by the operator; a standalone proxy needs url',
            );
          warned.add(key);
          continue;
        }
        void deliver(target as NotifyTargetSpec & { url: string }, request, logger, send);
      }
    }
  };
}

async function deliver(
  target: NotifyTargetSpec & { url: string },
  request: ApprovalRequest,
  logger: Logger,
  send: typeof fetch,
): Promise<void> {
  const body = target.type === 'slack' ? slackMessage(request) : webhookMessage(request);
  // The URL is a credential (an incoming webhook's path is its secret): only its origin is logged.
  const where = new URL(target.url).origin;
  try {
    const response = await send(target.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(DELIVERY_TIMEOUT_MS),
    });
    if (!response.ok)
      logger.warn(
        { request: request.id, target: where, status: response.status },
        'approval notification refused',
      );
    else logger.debug({ request: request.id, target: where }, 'approval notification sent');
  } catch (error) {
    logger.warn(
      { request: request.id, target: where, err: (error as Error).message },
      'approval notification failed',
    );
  }
}
