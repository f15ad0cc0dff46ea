import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { Logger } from 'pino';
import { credentialsOf } from '../identity/authorization-header.ts';
import { AuthError, type Authenticator, type Identity } from '../identity/identity.ts';
import type { PolicySource } from '../policy/sources.ts';
import { anySubjectMatches } from '../policy/subject-matches.ts';
import { accessRequestRoutes } from './access-requests-api.ts';
import type { ApprovalBook, DecisionRefusal } from './approval-book.ts';
import { APPROVAL_PHASES, type ApprovalPhase, type ApprovalRequest } from './approval-request.ts';
import { view } from './approval-view.ts';
import type { ShapeRegistry } from './learned-shapes.ts';
import { learnedShapesRoutes } from './learned-shapes-api.ts';

/** The longest reason kept; a decision's reason is for people and audit records, not for documents. */
const MAX_REASON = 1000;

/**
 * The approvals API of a standalone proxy, under `/approvals` on its admin endpoint:
 *
 *   GET  /approvals[?phase=Pending]   the requests the caller may decide or made, newest first
 *   GET  /approvals/ID                one of them
 *   POST /approvals/ID/approve        {"reason": "...", "shapeForSeconds": N?}
 *   POST /approvals/ID/deny           {"reason": "..."}
 *   POST /approvals/access-requests   {"database", "columns", "forSeconds", "reason"}: asks for clear
 *                                     access to masked columns as the caller (access-requests-api.ts)
 *
 * Every call names its caller as a database client would: `Authorization: Bearer JWT` in token mode,
 * `Authorization: Basic` with a local user's name and password in local mode. Who decided is that
 * identity, never a field of the body. Errors are JSON `{"problem", "message"}`.
 */
export function approvalsApi(options: {
  book: ApprovalBook;
  authenticator: Authenticator;
  logger: Logger;
  /** The shapes unknown-shape rules learned, approved in one go (see learned-shapes-api.ts). */
  shapes?: ShapeRegistry;
  /** The policy in force, for requests of clear access to masked columns (access-requests-api.ts). */
  policy?: PolicySource;
}): Hono<{ Variables: { caller: Identity } }> {
  const { book, authenticator, logger } = options;
  const app = new Hono<{ Variables: { caller: Identity } }>();

  app.onError((error, c) => {
    logger.error({ err: error.message }, 'approvals API failed');
    return problem(c, 500, 'internal', 'the approvals API failed; see the proxy log');
  });
  app.notFound((c) =>
    problem(
      c,
      404,
      'not-found',
      'no such route: try GET /approvals, GET /approvals/ID, POST /approvals/ID/approve or /deny',
    ),
  );

  app.use(
    '*',
    bodyLimit({ maxSize: 16 * 1024, onError: (c) => problem(c, 413, 'invalid', 'the body is over 16 KiB') }),
  );
  app.use('*', async (c, next) => {
    const credentials = credentialsOf(c.req.header('authorization'));
    if (!credentials) {
      c.header('www-authenticate', 'Basic realm="gatehouse", Bearer');
      return problem(
        c,
        401,
        'unauthenticated',
        'send Authorization: Bearer TOKEN, or Basic with a local user',
      );
    }
    try {
      c.set('caller', await authenticator.authenticate(credentials));
    } catch (error) {
      if (!(error instanceof AuthError)) throw error;
      c.header('www-authenticate', 'Basic realm="gatehouse", Bearer');
      return problem(c, 401, 'unauthenticated', error.message);
    }
    await next();
  });

  app.get('/approvals', (c) => {
    const phase = c.req.query('phase');
    if (phase !== undefined && !(APPROVAL_PHASES as readonly string[]).includes(phase))
      return problem(c, 400, 'invalid', `phase must be one of ${APPROVAL_PHASES.join(', ')}`);
    const caller = c.get('caller');
    const visible = book
      .list(phase === undefined ? {} : { phase: phase as ApprovalPhase })
      .filter((request) => maysee(request, caller));
    return c.json(visible.map(view));
  });

  if (options.shapes) learnedShapesRoutes(app, options.shapes, logger);
  if (options.policy) accessRequestRoutes(app, book, options.policy, logger);

  app.get('/approvals/:id', (c) => {
    const request = book.get(c.req.param('id'));
    // A request the caller may not see answers as one that does not exist.
    if (!request || !maysee(request, c.get('caller')))
      return problem(c, 404, 'not-found', `there is no approval request ${c.req.param('id')}`);
    return c.json(view(request));
  });

  for (const verdict of ['approve', 'deny'] as const) {
    app.post(`/approvals/:id/${verdict}`, async (c) => {
      const body = await c.req.json().catch(() => undefined);
      const parsed = decisionBody(body, verdict);
      if (typeof parsed === 'string') return problem(c, 400, 'invalid', parsed);
      const caller = c.get('caller');
      const id = c.req.param('id');
      const request = book.get(id);
      if (!request || !maysee(request, caller))
        return problem(c, 404, 'not-found', `there is no approval request ${id}`);
      const decided = book.decide(id, caller, verdict, parsed.reason, {
        ...(parsed.shapeForSeconds !== undefined && { shapeForSeconds: parsed.shapeForSeconds }),
      });
      if ('problem' in decided) {
        logger.warn({ request: id, by: caller.subject, problem: decided.problem }, `${verdict} refused`);
        return problem(c, STATUS_OF[decided.problem], decided.problem, decided.message);
      }
      logger.info(
        { request: id, by: caller.subject, phase: decided.phase },
        `request ${verdict === 'approve' ? 'approved' : 'denied'}`,
      );
      return c.json(view(decided));
    });
  }
  return app;
}

const STATUS_OF: Record<DecisionRefusal['problem'], ContentfulStatusCode> = {
  'not-found': 404,
  'not-pending': 409,
  'not-an-approver': 403,
  'self-approval': 403,
  invalid: 400,
};

/** The requester sees their own requests; an approver of one of its rules sees it (deciding needs all). */
function maysee(request: ApprovalRequest, caller: Identity): boolean {
  return (
    caller.subject === request.requester.subject ||
    request.rules.some((rule) => anySubjectMatches(rule.approvers, caller, rule.namespace))
  );
}

function decisionBody(
  body: unknown,
  verdict: 'approve' | 'deny',
): { reason: string; shapeForSeconds?: number } | string {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    return 'the body must be a JSON object with a reason';
  const { reason, shapeForSeconds, ...rest } = body as Record<string, unknown>;
  const unknown = Object.keys(rest);
  if (unknown.length > 0) return `unknown field ${unknown[0]}: the body takes reason and shapeForSeconds`;
  if (typeof reason !== 'string' || reason.trim() === '')
    return 'reason is required: say why, for the audit log';
  if (reason.length > MAX_REASON) return `reason is over ${MAX_REASON} characters`;
  if (shapeForSeconds !== undefined) {
    if (verdict === 'deny') return 'shapeForSeconds is for approvals only';
    if (typeof shapeForSeconds !== 'number') return 'shapeForSeconds must be a number of seconds';
    return { reason: reason.trim(), shapeForSeconds };
  }
  return { reason: reason.trim() };
}

function problem(
  c: { json: (body: unknown, status: ContentfulStatusCode) => Response },
  status: ContentfulStatusCode,
  kind: string,
  message: string,
): Response {
  return c.json({ problem: kind, message }, status);
}
