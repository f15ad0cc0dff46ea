import type { Context, Hono } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { Logger } from 'pino';
import type { Identity } from '../identity/identity.ts';
import type { PolicySource } from '../policy/sources.ts';
import { accessAskInput, accessRules } from './access-request.ts';
import type { ApprovalBook } from './approval-book.ts';
import { view } from './approval-view.ts';

/**
 * Requests for clear access to masked columns, on the approvals API:
 *
 *   POST /approvals/access-requests   {"database", "columns": ["customers.email"], "forSeconds", "reason"}
 *
 * The requester is the caller, authenticated as for every approvals call; the request is decided
 * with POST /approvals/ID/approve or /deny by an approver of every MaskingPolicy in force for the
 * requester (access-request.ts). Answers 201 with the request as GET /approvals/ID shows it.
 */
export function accessRequestRoutes(
  app: Hono<{ Variables: { caller: Identity } }>,
  book: ApprovalBook,
  policy: PolicySource,
  logger: Logger,
): void {
  app.post('/approvals/access-requests', async (c) => {
    const ask = accessAskInput(await c.req.json().catch(() => undefined));
    if (typeof ask === 'string') return problem(c, 400, 'invalid', ask);
    const caller = c.get('caller');
    const rules = accessRules(caller, policy(), ask);
    if (typeof rules === 'string') {
      logger.warn({ by: caller.subject, database: ask.database }, 'access request refused');
      return problem(c, 403, 'not-requestable', rules);
    }
    const request = book.openAccess({
      requester: caller,
      database: ask.database,
      access: {
        columns: ask.columns,
        forSeconds: ask.forSeconds,
        ...(caller.issuer !== undefined && { issuer: caller.issuer }),
      },
      rules,
      reason: ask.reason,
    });
    logger.info(
      { request: request.id, by: caller.subject, database: ask.database, columns: ask.columns },
      'access requested',
    );
    return c.json(view(request), 201);
  });
}

function problem(c: Context, status: ContentfulStatusCode, kind: string, message: string): Response {
  return c.json({ problem: kind, message }, status);
}
