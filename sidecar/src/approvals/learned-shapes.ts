import { randomBytes } from 'node:crypto';
import type { Identity } from '../identity/identity.ts';
import type { ShapeRule, ShapeSeen, ShapeSource } from '../policy/gates/policy-hooks.ts';
import { anySubjectMatches } from '../policy/subject-matches.ts';
import { type ApprovalBook, type DecisionRefusal, MAX_SHAPE_APPROVAL_SECONDS } from './approval-book.ts';
import { type ShapeBinding, type ShapeGrant, shapeKey } from './approval-request.ts';

/** Shapes kept at most; past it, new ones are not recorded (they still hold or refuse as the rule says). */
const MAX_LEARNED = 10_000;

/** A shape `unknown-shape` rules met for one identity on one database, for a person to approve. */
export interface LearnedShape {
  readonly subject: string;
  readonly database: string;
  readonly fingerprint: string;
  /** The statements with literals as placeholders: never a value. */
  readonly shape: string;
  /** The rules that met it; whoever approves it must be an approver of each. */
  readonly rules: readonly ShapeRule[];
  readonly count: number;
  readonly firstSeen: number;
  readonly lastSeen: number;
}

export interface ApproveShapes {
  readonly subject: string;
  /** Only this database's shapes; without it, every database's. */
  readonly database?: string;
  /** Only these fingerprints; without it, every shape learned for the subject. */
  readonly fingerprints?: readonly string[];
  readonly forSeconds: number;
  readonly reason: string;
}

/**
 * The closed world of `unknown-shape` rules: which shapes people approved for an identity (on a
 * request with `--for`, kept by the ApprovalBook, or here in one go from what the rules learned), and
 * the shapes the rules met that nobody approved. In memory: at start, the grants still standing are
 * rebuilt from the audit log (approval-restore.ts); the shapes learned are not in it.
 */
export class ShapeRegistry implements ShapeSource {
  private readonly learned = new Map<string, LearnedShape>();
  private readonly grants = new Map<string, ShapeGrant>();
  private readonly now: () => number;
  private readonly newId: () => string;
  private readonly onGrant: (grant: ShapeGrant) => void;
  private readonly book: ApprovalBook;

  constructor(
    book: ApprovalBook,
    options: { now?: () => number; newId?: () => string; onGrant?: (grant: ShapeGrant) => void } = {},
  ) {
    this.book = book;
    this.now = options.now ?? Date.now;
    this.newId = options.newId ?? (() => `sa-${randomBytes(8).toString('hex')}`);
    this.onGrant = options.onGrant ?? (() => {});
  }

  approved(subject: string, database: string, fingerprint: string): boolean {
    return this.approvedUntil({ subject, database, fingerprint }) !== undefined;
  }

  seen(seen: ShapeSeen): void {
    const key = shapeKey(seen);
    const now = this.now();
    const known = this.learned.get(key);
    if (!known && this.learned.size >= MAX_LEARNED) return;
    const sameRule = (r: ShapeRule) => r.guardrail === seen.rule.guardrail && r.rule === seen.rule.rule;
    this.learned.set(key, {
      subject: seen.subject,
      database: seen.database,
      fingerprint: seen.fingerprint,
      shape: seen.shape,
      // The rule as it is now: a reload may have changed its approvers.
      rules: [...(known?.rules.filter((r) => !sameRule(r)) ?? []), seen.rule],
      count: (known?.count ?? 0) + 1,
      firstSeen: known?.firstSeen ?? now,
      lastSeen: now,
    });
  }

  /** What was learned, most recently seen first, with when an approval of each ends (if one stands). */
  list(filter: { subject?: string; database?: string } = {}): (LearnedShape & { approvedUntil?: number })[] {
    return [...this.learned.values()]
      .filter(
        (s) =>
          (filter.subject === undefined || s.subject === filter.subject) &&
          (filter.database === undefined || s.database === filter.database),
      )
      .sort((a, b) => b.lastSeen - a.lastSeen)
      .map((s) => {
        const until = this.approvedUntil(s);
        return until === undefined ? s : { ...s, approvedUntil: until };
      });
  }

  /** Whether `caller` may see a learned shape: its identity, or an approver of one of its rules. */
  maySee(shape: LearnedShape, caller: Identity): boolean {
    return (
      caller.subject === shape.subject ||
      shape.rules.some((r) => r.approval && anySubjectMatches(r.approval.approvers, caller, r.namespace))
    );
  }

  /**
   * Approves learned shapes of one identity in one go, all or none: the decider must be an approver
   * of every rule that met each of them, and not the identity itself unless each rule allows it.
   */
  approve(decider: Identity, input: ApproveShapes): ShapeGrant[] | DecisionRefusal {
    const { forSeconds } = input;
    if (!Number.isInteger(forSeconds) || forSeconds < 1 || forSeconds > MAX_SHAPE_APPROVAL_SECONDS)
      return {
        problem: 'invalid',
        message: `a shape is approved for 1 second to ${MAX_SHAPE_APPROVAL_SECONDS / 86400} days`,
      };
    const mine = this.list({
      subject: input.subject,
      ...(input.database !== undefined && { database: input.database }),
    });
    const wanted = input.fingerprints;
    const chosen = wanted ? mine.filter((s) => wanted.includes(s.fingerprint)) : mine;
    const missing = wanted?.filter((f) => !chosen.some((s) => s.fingerprint === f)) ?? [];
    if (missing.length > 0)
      return {
        problem: 'not-found',
        message: `no shape ${missing[0]} was learned for ${input.subject}${input.database ? ` on ${input.database}` : ''}`,
      };
    if (chosen.length === 0)
      return { problem: 'not-found', message: `no shape was learned for ${input.subject}` };
    for (const shape of chosen) {
      for (const rule of shape.rules) {
        const named = `rule ${rule.rule} of Guardrail ${rule.guardrail}`;
        if (!rule.approval || !anySubjectMatches(rule.approval.approvers, decider, rule.namespace))
          return {
            problem: 'not-an-approver',
            message: rule.approval
              ? `${decider.subject} is not an approver of ${named}`
              : `${named} names no approvers (approval.approvers), so nobody can approve its shapes`,
          };
        if (decider.subject === shape.subject && rule.approval.allowSelfApproval !== true)
          return {
            problem: 'self-approval',
            message: `${decider.subject} may not approve its own shapes (${named} does not allow self-approval)`,
          };
      }
    }
    const at = this.now();
    const grants = chosen.map(
      (shape): ShapeGrant => ({
        id: this.newId(),
        subject: shape.subject,
        database: shape.database,
        fingerprint: shape.fingerprint,
        shape: shape.shape,
        rules: shape.rules,
        by: decider.subject,
        reason: input.reason,
        at,
        until: at + forSeconds * 1000,
      }),
    );
    for (const grant of grants) {
      this.grants.set(shapeKey(grant), grant);
      this.onGrant(grant);
    }
    return grants;
  }

  /** Puts back shapes approved in one go by an earlier run (approval-restore.ts), without a record. */
  restore(grants: readonly ShapeGrant[]): void {
    for (const grant of grants) this.grants.set(shapeKey(grant), grant);
  }

  private approvedUntil(shape: ShapeBinding): number | undefined {
    const key = shapeKey(shape);
    const grant = this.grants.get(key);
    if (grant && this.now() >= grant.until) this.grants.delete(key);
    else if (grant) return grant.until;
    return this.book.shapeApprovedUntil(shape);
  }
}
