import { createHash } from 'node:crypto';
import type { NotifyTargetSpec } from '../../../crds/guardrail.ts';
import type { ShapeRule } from '../policy/gates/policy-hooks.ts';
import type { SubjectSpec } from '../policy/subject-matches.ts';

/**
 * What an approval releases: this identity's exact statement text with exactly these parameters, on
 * this database. Nothing else (another text, other parameters, another database or identity) matches.
 */
export interface StatementBinding {
  readonly subject: string;
  readonly database: string;
  readonly statement: string;
  /** `parametersHash` of the bound parameter values; '' for a statement sent without parameters. */
  readonly parametersHash: string;
}

/** A statement's shape (its fingerprint: literals as placeholders) for one identity on one database. */
export interface ShapeBinding {
  readonly subject: string;
  readonly database: string;
  readonly fingerprint: string;
}

export const APPROVAL_PHASES = ['Pending', 'Approved', 'Denied', 'Expired', 'Executed', 'Withdrawn'] as const;
export type ApprovalPhase = (typeof APPROVAL_PHASES)[number];

/** What the approver is shown of what the statement would do; each part only when it was measured. */
export interface ApprovalImpact {
  /** Rows the statement changed under a rolled-back savepoint on the requester's own connection. */
  readonly affectedRows?: number;
  /** Why a statement that changes rows was not measured (the session's transaction had failed...). */
  readonly notMeasured?: string;
  /** The planner's estimate of the rows it reads or changes. */
  readonly estimatedRows?: number;
  /** Objects that depend on a DDL statement's target. */
  readonly dependents?: readonly string[];
  /** Masked or sensitive columns the statement reads or writes (`table.column`). */
  readonly sensitiveColumns?: readonly string[];
  /** Tables the statement names. */
  readonly tables?: readonly string[];
}

/** What an access request asks for: clear values of these columns, for this long once approved. */
export interface AccessAsk {
  /** `table.column` or `schema.table.column`, exact names. */
  readonly columns: readonly string[];
  readonly forSeconds: number;
  /** The requester's token issuer (undefined for local users): the exemption is bound to it too. */
  readonly issuer?: string;
}

/** A rule that held the statement, and what it says about deciding. */
export interface ApprovalRule {
  /** The Guardrail's name, or the MaskingPolicy's for an access request (`rule` is then `accessRequests`). */
  readonly guardrail: string;
  /** Set for an access request's rule: the document is a MaskingPolicy, not a Guardrail. */
  readonly kind?: 'MaskingPolicy';
  readonly rule: string;
  /** The Guardrail's namespace: ServiceAccount approvers without a namespace are in it. */
  readonly namespace?: string;
  readonly approvers: readonly SubjectSpec[];
  readonly allowSelfApproval: boolean;
  /** Where a new request is announced. */
  readonly notify?: readonly NotifyTargetSpec[];
  readonly waitSeconds: number;
  readonly ttlSeconds: number;
}

export interface ApprovalDecision {
  /** The approver's subject, or `gatehouse:auto-approve` for a rule's condition. */
  readonly by: string;
  readonly groups: readonly string[];
  readonly reason: string;
  readonly at: number;
  /** The auto-approval condition that decided, when no person did. */
  readonly condition?: string;
  /** When the approver approved the statement's shape for a period rather than this statement. */
  readonly shapeUntil?: number;
}

export interface ApprovalRequest {
  readonly id: string;
  readonly binding: StatementBinding;
  readonly fingerprint: string | null;
  /**
   * The statement with literals as placeholders and comments removed (null when it could not be
   * parsed): what leaves the proxy in notifications, where the text's values must not.
   */
  readonly shape: string | null;
  readonly requester: { readonly subject: string; readonly groups: readonly string[] };
  /**
   * Every requireApproval rule the statement matched (at least one). A decider must be an approver of
   * each; the shortest wait and TTL apply.
   */
  readonly rules: readonly ApprovalRule[];
  /** What the requester said the statement or access is for, when they said. */
  readonly reason?: string;
  readonly impact: ApprovalImpact;
  readonly requestedAt: number;
  /** A Pending request expires then; an Approved one may be used until then. */
  readonly expiresAt: number;
  readonly phase: ApprovalPhase;
  readonly decision?: ApprovalDecision;
  readonly executedAt?: number;
  /** What an approver runs to decide it, when not the standalone `gatehouse approvals approve ID`. */
  readonly decideCommand?: string;
  /** Set for a request for clear access to masked columns rather than for a statement. */
  readonly access?: AccessAsk;
}

export const AUTO_APPROVER = 'gatehouse:auto-approve';

export function waitSecondsOf(rules: readonly ApprovalRule[]): number {
  return Math.min(...rules.map((r) => r.waitSeconds));
}

export function ttlSecondsOf(rules: readonly ApprovalRule[]): number {
  return Math.min(...rules.map((r) => r.ttlSeconds));
}

/** `rule drops of Guardrail admin-approvals and rule x of Guardrail y`, for messages. */
export function describeRules(rules: readonly ApprovalRule[]): string {
  return rules
    .map((r) =>
      r.kind === 'MaskingPolicy'
        ? `accessRequests of MaskingPolicy ${r.guardrail}`
        : `rule ${r.rule} of Guardrail ${r.guardrail}`,
    )
    .join(' and ');
}

/**
 * A digest of bound parameter values and their format codes, so that an approval of one set of
 * parameters releases no other. Lengths are part of the digest: no two different lists hash alike
 * by shifting bytes between values, and NULL differs from the empty value.
 */
export function parametersHash(values: readonly (Buffer | null)[], formats: readonly number[] = []): string {
  if (values.length === 0) return '';
  const hash = createHash('sha256');
  const header = Buffer.alloc(8);
  header.writeUInt32BE(values.length, 0);
  header.writeUInt32BE(formats.length, 4);
  hash.update(header);
  for (const format of formats) hash.update(Buffer.from([format & 0xff, (format >> 8) & 0xff]));
  for (const value of values) {
    const length = Buffer.alloc(4);
    length.writeInt32BE(value === null ? -1 : value.length, 0);
    hash.update(length);
    if (value !== null) hash.update(value);
  }
  return hash.digest('hex');
}

/** One key per binding; the parts are length-delimited by JSON, so no two bindings share a key. */
export function bindingKey(binding: StatementBinding): string {
  return createHash('sha256')
    .update(JSON.stringify([binding.subject, binding.database, binding.statement, binding.parametersHash]))
    .digest('hex');
}

export function shapeKey(shape: ShapeBinding): string {
  return JSON.stringify([shape.subject, shape.database, shape.fingerprint]);
}

/** Shapes approved in one go: each stands for its identity on its database until `until`. */
export interface ShapeGrant {
  readonly id: string;
  readonly subject: string;
  readonly database: string;
  readonly fingerprint: string;
  readonly shape: string;
  readonly rules: readonly ShapeRule[];
  readonly by: string;
  readonly reason: string;
  readonly at: number;
  readonly until: number;
}
