import type { Identity } from '../identity/identity.ts';
import type { Policy } from '../policy/load-policy.ts';
import { applyingMaskingPolicies } from '../policy/masking/masking-for.ts';
import { ACCESS_PENDING_SECONDS, DEFAULT_MAX_ACCESS_SECONDS } from './access-limits.ts';
import type { AccessAsk, ApprovalRequest, ApprovalRule } from './approval-request.ts';

/** The most columns one request may name. */
const MAX_COLUMNS = 100;
/** Exact names only: a request names the columns it needs, never a pattern that may cover more. */
const COLUMN = /^[^.\s*?]+(\.[^.\s*?]+){1,2}$/;

/** A request for clear access, as the API's body or the CLI's options give it. */
export interface AccessAskInput {
  readonly database: string;
  readonly columns: readonly string[];
  readonly forSeconds: number;
  readonly reason: string;
}

/** The body of POST /access-requests, checked; a string says what is wrong with it. */
export function accessAskInput(body: unknown): AccessAskInput | string {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    return 'the body must be a JSON object with database, columns, forSeconds and reason';
  const { database, columns, forSeconds, reason, ...rest } = body as Record<string, unknown>;
  const unknown = Object.keys(rest);
  if (unknown.length > 0)
    return `unknown field ${unknown[0]}: the body takes database, columns, forSeconds and reason`;
  if (typeof database !== 'string' || database === '') return 'database is required';
  if (!Array.isArray(columns) || columns.length === 0) return 'columns is required: table.column, ...';
  if (columns.length > MAX_COLUMNS) return `at most ${MAX_COLUMNS} columns per request`;
  for (const column of columns)
    if (typeof column !== 'string' || !COLUMN.test(column))
      return `column ${JSON.stringify(column)} is not table.column or schema.table.column (exact names, no wildcards)`;
  if (typeof forSeconds !== 'number' || !Number.isInteger(forSeconds) || forSeconds < 1)
    return 'forSeconds must be a whole number of seconds, at least 1';
  if (typeof reason !== 'string' || reason.trim() === '')
    return 'reason is required: say why you need the values';
  if (reason.length > 1000) return 'reason is over 1000 characters';
  return { database, columns: [...new Set(columns as string[])], forSeconds, reason: reason.trim() };
}

/**
 * The rules that decide a request: one per MaskingPolicy in force for the requester on the database,
 * each with its approvers. Masking policies add up, so every one of them must take access requests
 * (any of them may mask the columns) and a decider must be an approver of each; the shortest
 * maxDurationSeconds bounds the request. A string says why the request cannot be made.
 */
export function accessRules(
  requester: Identity,
  policy: Policy | undefined,
  ask: AccessAskInput,
  now: number = Date.now(),
): ApprovalRule[] | string {
  const applying = policy ? applyingMaskingPolicies(requester, policy, ask.database, now) : [];
  if (applying.length === 0)
    return `no MaskingPolicy masks values for ${requester.subject} on database "${ask.database}": there is nothing to request`;
  const closed = applying.filter((masking) => masking.spec.accessRequests === undefined);
  if (closed.length > 0)
    return `MaskingPolicy ${closed.map((m) => m.metadata.name).join(', ')} masks ${ask.columns.join(', ')} for ${requester.subject} on database "${ask.database}" and takes no access requests (it has no spec.accessRequests)`;
  const longest = Math.min(
    ...applying.map((m) => m.spec.accessRequests!.maxDurationSeconds ?? DEFAULT_MAX_ACCESS_SECONDS),
  );
  if (ask.forSeconds > longest)
    return `${ask.forSeconds} s is longer than the ${longest} s MaskingPolicy ${applying.map((m) => m.metadata.name).join(', ')} allow (accessRequests.maxDurationSeconds)`;
  return applying.map((masking) => {
    const access = masking.spec.accessRequests!;
    return {
      guardrail: masking.metadata.name,
      kind: 'MaskingPolicy',
      rule: 'accessRequests',
      ...(masking.metadata.namespace !== undefined && { namespace: masking.metadata.namespace }),
      approvers: access.approvers,
      allowSelfApproval: access.allowSelfApproval === true,
      waitSeconds: 1,
      ttlSeconds: ask.forSeconds,
    };
  });
}

/** A request for clear access to masked columns (`gatehouse request-access`). */
export interface OpenAccessRequest {
  readonly requester: Identity;
  readonly database: string;
  readonly access: AccessAsk;
  /** One per MaskingPolicy in force for the requester, each with its approvers; ttlSeconds = forSeconds. */
  readonly rules: readonly ApprovalRule[];
  readonly reason: string;
}

/**
 * The Pending request for `input`. Its binding's parametersHash (`access:ID`) is unlike any statement's,
 * so it releases no statement; approved, it lasts forSeconds from the decision (the rules' ttlSeconds).
 */
export function accessRequest(input: OpenAccessRequest, id: string, now: number): ApprovalRequest {
  const { columns, forSeconds } = input.access;
  return {
    id,
    binding: {
      subject: input.requester.subject,
      database: input.database,
      statement: `ACCESS ${columns.join(', ')} FOR ${forSeconds}s`,
      parametersHash: `access:${id}`,
    },
    fingerprint: null,
    shape: null,
    requester: { subject: input.requester.subject, groups: [...input.requester.groups] },
    rules: input.rules,
    reason: input.reason,
    impact: { sensitiveColumns: [...columns] },
    requestedAt: now,
    expiresAt: now + ACCESS_PENDING_SECONDS * 1000,
    phase: 'Pending',
    access: input.access,
  };
}

/** What `openOnRefusal` needs of the ApprovalBook. */
interface AccessBook {
  list(filter: { phase: 'Pending' }): readonly ApprovalRequest[];
  openAccess(input: OpenAccessRequest): ApprovalRequest;
}

/**
 * For a statement refused because it needs clear values of masked `columns`: the Pending access request
 * for them, opened now when every MaskingPolicy in force for the identity sets
 * `accessRequests.openOnRefusalSeconds` (the shortest applies), or the one already open for the same
 * identity, database and columns (a client that retries does not open more). Undefined otherwise.
 */
export function openOnRefusal(
  book: AccessBook,
  policy: Policy | undefined,
  identity: Identity,
  database: string,
  columns: readonly string[],
  now: number = Date.now(),
): ApprovalRequest | undefined {
  if (!policy || columns.length === 0) return undefined;
  const applying = applyingMaskingPolicies(identity, policy, database, now);
  const seconds = applying.map((m) => m.spec.accessRequests?.openOnRefusalSeconds);
  if (applying.length === 0 || seconds.some((s) => s === undefined)) return undefined;
  const wanted = [...new Set(columns)].sort();
  const open = book
    .list({ phase: 'Pending' })
    .find(
      (r) =>
        r.access !== undefined &&
        r.binding.subject === identity.subject &&
        r.access.issuer === identity.issuer &&
        r.binding.database === database &&
        r.access.columns.join('\u0000') === wanted.join('\u0000'),
    );
  if (open) return open;
  const ask: AccessAskInput = {
    database,
    columns: wanted,
    forSeconds: Math.min(...(seconds as number[])),
    reason: 'opened by Gatehouse: a statement was refused because it needs these columns in clear',
  };
  const rules = accessRules(identity, policy, ask, now);
  if (typeof rules === 'string') return undefined;
  return book.openAccess({
    requester: identity,
    database,
    access: {
      columns: wanted,
      forSeconds: ask.forSeconds,
      ...(identity.issuer !== undefined && { issuer: identity.issuer }),
    },
    rules,
    reason: ask.reason,
  });
}
