import type { Context, Hono } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { Logger } from 'pino';
import type { Identity } from '../identity/identity.ts';
import type { DecisionRefusal } from './approval-book.ts';
import type { ShapeGrant } from './approval-request.ts';
import type { LearnedShape, ShapeRegistry } from './learned-shapes.ts';

const MAX_REASON = 1000;
const MAX_FINGERPRINTS = 1000;

/**
 * The learned shapes of `unknown-shape` rules, on the approvals API (registered before
 * `/approvals/:id`, which would otherwise take `learned` for a request id):
 *
 *   GET  /approvals/learned?identity=SUBJECT[&database=D]   the shapes met for it, newest first
 *   POST /approvals/learned/approve   {"identity", "database"?, "fingerprints"?, "forSeconds", "reason"}
 *
 * Approving is all or none: the caller must be an approver of every rule that met each shape.
 */
export function learnedShapesRoutes(
  app: Hono<{ Variables: { caller: Identity } }>,
  shapes: ShapeRegistry,
  logger: Logger,
): void {
  app.get('/approvals/learned', (c) => {
    const identity = c.req.query('identity');
    if (!identity) return problem(c, 400, 'invalid', 'identity is required: ?identity=SUBJECT');
    const database = c.req.query('database');
    const caller = c.get('caller');
    const found = shapes
      .list({ subject: identity, ...(database !== undefined && { database }) })
      .filter((s) => shapes.maySee(s, caller));
    return c.json(found.map(learnedView));
  });

  app.post('/approvals/learned/approve', async (c) => {
    const parsed = approveBody(await c.req.json().catch(() => undefined));
    if (typeof parsed === 'string') return problem(c, 400, 'invalid', parsed);
    const caller = c.get('caller');
    const granted = shapes.approve(caller, parsed);
    if ('problem' in granted) {
      logger.warn(
        { identity: parsed.subject, by: caller.subject, problem: granted.problem },
        'approve-shapes refused',
      );
      return problem(c, STATUS_OF[granted.problem], granted.problem, granted.message);
    }
    logger.info(
      { identity: parsed.subject, by: caller.subject, shapes: granted.length },
      'learned shapes approved',
    );
    return c.json(granted.map(grantView));
  });
}

const STATUS_OF: Record<DecisionRefusal['problem'], ContentfulStatusCode> = {
  'not-found': 404,
  'not-pending': 409,
  'not-an-approver': 403,
  'self-approval': 403,
  invalid: 400,
};

function approveBody(body: unknown) {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    return 'the body must be a JSON object with identity, forSeconds and reason';
  const { identity, database, fingerprints, forSeconds, reason, ...rest } = body as Record<string, unknown>;
  const unknown = Object.keys(rest);
  if (unknown.length > 0)
    return `unknown field ${unknown[0]}: the body takes identity, database, fingerprints, forSeconds and reason`;
  if (typeof identity !== 'string' || identity === '') return 'identity is required: whose shapes';
  if (database !== undefined && typeof database !== 'string') return 'database must be a string';
  if (
    fingerprints !== undefined &&
    (!Array.isArray(fingerprints) ||
      fingerprints.length === 0 ||
      fingerprints.length > MAX_FINGERPRINTS ||
      fingerprints.some((f) => typeof f !== 'string'))
  )
    return `fingerprints must be a list of 1 to ${MAX_FINGERPRINTS} fingerprints; leave it out for every learned shape`;
  if (typeof forSeconds !== 'number') return 'forSeconds is required: how long the approval stands';
  if (typeof reason !== 'string' || reason.trim() === '')
    return 'reason is required: say why, for the audit log';
  if (reason.length > MAX_REASON) return `reason is over ${MAX_REASON} characters`;
  return {
    subject: identity,
    ...(database !== undefined && { database: database as string }),
    ...(fingerprints !== undefined && { fingerprints: fingerprints as string[] }),
    forSeconds,
    reason: reason.trim(),
  };
}

const iso = (ms: number) => new Date(ms).toISOString();

export function learnedView(shape: LearnedShape & { approvedUntil?: number }) {
  return {
    identity: shape.subject,
    database: shape.database,
    fingerprint: shape.fingerprint,
    shape: shape.shape,
    rules: shape.rules.map((r) => ({ guardrail: r.guardrail, name: r.rule })),
    count: shape.count,
    firstSeen: iso(shape.firstSeen),
    lastSeen: iso(shape.lastSeen),
    ...(shape.approvedUntil !== undefined && { approvedUntil: iso(shape.approvedUntil) }),
  };
}

function grantView(grant: ShapeGrant) {
  return {
    id: grant.id,
    identity: grant.subject,
    database: grant.database,
    fingerprint: grant.fingerprint,
    shape: grant.shape,
    by: grant.by,
    reason: grant.reason,
    at: iso(grant.at),
    until: iso(grant.until),
  };
}

function problem(c: Context, status: ContentfulStatusCode, kind: string, message: string): Response {
  return c.json({ problem: kind, message }, status);
}
