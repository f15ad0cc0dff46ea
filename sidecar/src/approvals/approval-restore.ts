import type { ApprovalDecision, ApprovalRequest, ApprovalRule, ShapeGrant } from './approval-request.ts';

/**
 * What the `approval` records of an earlier run leave in force, rebuilt at start (docs/approvals.md,
 * "After a restart"). The records hold a statement's shape and its parameters' hash, never its text,
 * so an approval of an exact text cannot be rebuilt: it is ended as Expired. What the records hold
 * whole is rebuilt: approvals of a shape until `shapeUntil`, approved access requests until `until`,
 * and shapes approved in one go. Requests still Pending are ended as Withdrawn: the sessions that
 * waited on them ended with the proxy, as when a session ends while it waits.
 */
export interface RestoredApprovals {
  /** Requests put back into the book as they are, without a record: each is a shape's grantor or an exemption in force. */
  readonly requests: readonly ApprovalRequest[];
  /** Requests the earlier run left open, ended now: put back in their new phase, and recorded. */
  readonly ended: readonly { readonly event: 'withdrawn' | 'expired'; readonly request: ApprovalRequest }[];
  /** Shape approvals given on a request (`--for`) still standing. */
  readonly shapes: readonly {
    readonly subject: string;
    readonly database: string;
    readonly fingerprint: string;
    readonly until: number;
    readonly requestId: string;
  }[];
  /** Shapes approved in one go (`approve-shapes`) still standing. */
  readonly grants: readonly ShapeGrant[];
  /** Every denial recorded, by requester, for `noDenialForHours`: a restart must not forget one. */
  readonly denials: readonly { readonly subject: string; readonly at: number }[];
  /** Records not used, and why: for the log (ids and reasons only, never statements). */
  readonly skipped: readonly { readonly request: string; readonly why: string }[];
}

type Phase = ApprovalRequest['phase'];
const EVENTS: Record<string, Phase> = {
  approved: 'Approved',
  denied: 'Denied',
  expired: 'Expired',
  executed: 'Executed',
  withdrawn: 'Withdrawn',
};

/**
 * Rebuilds from `records` (the `approval` audit records, oldest first, as parsed from the log lines;
 * each with its `time`) what stands at `now`. A request any of whose records does not parse is left
 * out whole: what cannot be read is not restored.
 */
export function restoreApprovals(
  records: readonly Record<string, unknown>[],
  now: number,
): RestoredApprovals {
  const requests = new Map<string, ApprovalRequest>();
  const grants = new Map<string, ShapeGrant>();
  const bad = new Map<string, string>();
  const denials: { subject: string; at: number }[] = [];
  for (const record of records) {
    // Counted even for a request left out: another denial only makes auto-approval stricter.
    const deniedAt = typeof record['time'] === 'string' ? Date.parse(record['time']) : Number.NaN;
    if (record['event'] === 'denied' && typeof record['subject'] === 'string' && !Number.isNaN(deniedAt))
      denials.push({ subject: record['subject'], at: deniedAt });
    const id = typeof record['request'] === 'string' ? record['request'] : undefined;
    if (id === undefined) {
      bad.set('?', 'an approval record without a request id');
      continue;
    }
    if (bad.has(id)) continue;
    const why = apply(requests, grants, id, record);
    if (why !== undefined) {
      bad.set(id, why);
      requests.delete(id);
      grants.delete(id);
    }
  }
  const kept: ApprovalRequest[] = [];
  const ended: { event: 'withdrawn' | 'expired'; request: ApprovalRequest }[] = [];
  const shapes: RestoredApprovals['shapes'][number][] = [];
  const skipped = [...bad].map(([request, why]) => ({ request, why }));
  for (const request of requests.values()) {
    const shapeUntil = request.decision?.shapeUntil;
    const shapeStands = shapeUntil !== undefined && shapeUntil > now && request.fingerprint !== null;
    if (shapeStands)
      shapes.push({
        subject: request.binding.subject,
        database: request.binding.database,
        fingerprint: request.fingerprint!,
        until: shapeUntil,
        requestId: request.id,
      });
    if (request.phase === 'Pending')
      ended.push({ event: 'withdrawn', request: { ...request, phase: 'Withdrawn' } });
    else if (request.phase === 'Approved' && (request.access === undefined || request.expiresAt <= now)) {
      // An exact text's approval cannot be claimed again (its text is not in the log); an exemption past its end is over.
      if (request.access === undefined)
        skipped.push({
          request: request.id,
          why: 'an unused approval of an exact text: the text is not in the log',
        });
      ended.push({ event: 'expired', request: { ...request, phase: 'Expired' } });
    } else if (request.phase === 'Approved' || shapeStands) kept.push(request);
  }
  return {
    requests: kept,
    ended,
    shapes,
    grants: [...grants.values()].filter((g) => g.until > now),
    denials,
    skipped,
  };
}

/** Applies one record; a string says why it does not parse. */
function apply(
  requests: Map<string, ApprovalRequest>,
  grants: Map<string, ShapeGrant>,
  id: string,
  record: Record<string, unknown>,
): string | undefined {
  const at = typeof record['time'] === 'string' ? Date.parse(record['time']) : Number.NaN;
  const { event, subject, database, fingerprint, parametersHash, statement } = record;
  const rules = ruleNames(record['rules']);
  if (
    Number.isNaN(at) ||
    typeof subject !== 'string' ||
    typeof database !== 'string' ||
    typeof parametersHash !== 'string' ||
    (fingerprint !== null && typeof fingerprint !== 'string') ||
    (statement !== null && typeof statement !== 'string') ||
    rules === undefined
  )
    return 'a record lacks its time, subject, database, fingerprint, statement, parametersHash or rules';
  const known = requests.get(id);
  if (event === 'requested') {
    if (known || grants.has(id)) return 'requested twice';
    const access = accessOf(record);
    if (typeof access === 'string') return access;
    requests.set(id, {
      id,
      binding: {
        subject,
        database,
        // The text is not in the log: the shape stands in for display; the book never binds this request again.
        statement: statement ?? '',
        parametersHash,
      },
      fingerprint,
      shape: statement,
      requester: { subject, groups: [] },
      rules,
      impact: access ? { sensitiveColumns: [...access.columns] } : {},
      requestedAt: at,
      expiresAt: at,
      phase: 'Pending',
      ...(access && { access }),
    });
    return undefined;
  }
  const phase = typeof event === 'string' ? EVENTS[event] : undefined;
  if (phase === undefined) return `unknown event ${JSON.stringify(event)}`;
  const shapeUntil = isoTime(record['shapeUntil']);
  if (shapeUntil === null) return 'shapeUntil is not a time';
  if (!known) {
    // Shapes approved in one go have no request before them.
    if (
      phase !== 'Approved' ||
      shapeUntil === undefined ||
      typeof fingerprint !== 'string' ||
      statement === null
    )
      return `${String(event)} without a request before it`;
    if (grants.has(id)) return 'approved twice';
    const decision = decisionOf(record, at);
    if (typeof decision === 'string') return decision;
    grants.set(id, {
      id,
      subject,
      database,
      fingerprint,
      shape: statement,
      rules: rules.map(({ guardrail, rule }) => ({ guardrail, rule })),
      by: decision.by,
      reason: decision.reason,
      at,
      until: shapeUntil,
    });
    return undefined;
  }
  if (
    subject !== known.binding.subject ||
    database !== known.binding.database ||
    fingerprint !== known.fingerprint
  )
    return 'its records disagree on the subject, database or fingerprint';
  const next = nextState(known, phase, record, at, shapeUntil);
  if (typeof next === 'string') return next;
  requests.set(id, next);
  return undefined;
}

function nextState(
  known: ApprovalRequest,
  phase: Phase,
  record: Record<string, unknown>,
  at: number,
  shapeUntil: number | undefined,
): ApprovalRequest | string {
  const from = known.phase;
  const allowed =
    (from === 'Pending' && phase !== 'Executed') ||
    (from === 'Approved' && (phase === 'Executed' || phase === 'Expired'));
  if (!allowed) return `${phase} after ${from}`;
  if (phase === 'Executed') return { ...known, phase, executedAt: at };
  if (phase !== 'Approved' && phase !== 'Denied') return { ...known, phase };
  const decision = decisionOf(record, at);
  if (typeof decision === 'string') return decision;
  if (phase === 'Denied') return { ...known, phase, decision };
  if (known.access) {
    const until = isoTime(record['until']);
    if (until === undefined || until === null) return 'an approved access request without its until';
    return { ...known, phase, decision, expiresAt: until };
  }
  return { ...known, phase, decision: { ...decision, ...(shapeUntil !== undefined && { shapeUntil }) } };
}

function decisionOf(record: Record<string, unknown>, at: number): ApprovalDecision | string {
  const { by, reason, condition } = record;
  if (typeof by !== 'string' || typeof reason !== 'string') return 'a decision without by and reason';
  if (condition !== undefined && typeof condition !== 'string') return 'condition is not a string';
  return { by, groups: [], reason, at, ...(condition !== undefined && { condition }) };
}

/** An access request's ask; undefined for a statement's request; a string when it does not parse. */
function accessOf(record: Record<string, unknown>): ApprovalRequest['access'] | string | undefined {
  const { columns, forSeconds, issuer } = record;
  if (columns === undefined && forSeconds === undefined) return undefined;
  if (!Array.isArray(columns) || !columns.every((c) => typeof c === 'string') || columns.length === 0)
    return 'an access request without its columns';
  if (typeof forSeconds !== 'number' || !Number.isInteger(forSeconds) || forSeconds < 1)
    return 'an access request without its forSeconds';
  // Records written before the issuer was recorded cannot say whose token it was: not restored.
  if (issuer !== null && typeof issuer !== 'string') return 'an access request without its issuer';
  return { columns: [...columns], forSeconds, ...(typeof issuer === 'string' && { issuer }) };
}

/** `guardrail/rule` names as the rules of a restored request: no approvers, so nobody decides it again. */
function ruleNames(value: unknown): ApprovalRule[] | undefined {
  if (!Array.isArray(value) || value.length === 0) return undefined;
  const rules: ApprovalRule[] = [];
  for (const name of value) {
    const slash = typeof name === 'string' ? name.indexOf('/') : -1;
    if (slash < 1) return undefined;
    const rule = (name as string).slice(slash + 1);
    rules.push({
      guardrail: (name as string).slice(0, slash),
      ...(rule === 'accessRequests' && { kind: 'MaskingPolicy' as const }),
      rule,
      approvers: [],
      allowSelfApproval: false,
      waitSeconds: 1,
      ttlSeconds: 1,
    });
  }
  return rules;
}

/** Epoch ms of an ISO time; undefined when absent, null when not a time. */
function isoTime(value: unknown): number | undefined | null {
  if (value === undefined) return undefined;
  const ms = typeof value === 'string' ? Date.parse(value) : Number.NaN;
  return Number.isNaN(ms) ? null : ms;
}
