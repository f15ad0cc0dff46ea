import { randomBytes } from 'node:crypto';
import type { Identity } from '../identity/identity.ts';
import type { AccessExemption } from '../policy/masking/masking-for.ts';
import { accessRequest, type OpenAccessRequest } from './access-request.ts';
import {
  type ApprovalImpact,
  type ApprovalRequest,
  type ApprovalRule,
  AUTO_APPROVER,
  bindingKey,
  type ShapeBinding,
  type StatementBinding,
  shapeKey,
  ttlSecondsOf,
} from './approval-request.ts';
import type { RestoredApprovals } from './approval-restore.ts';
import { type DecisionRefusal, decisionRefusal } from './decision-refusal.ts';

/** The longest an approver may approve a statement's shape for (30 days). */
export const MAX_SHAPE_APPROVAL_SECONDS = 30 * 24 * 3600;
/** Finished requests kept for `list`, `show` and the denial history, oldest dropped first. */
const MAX_FINISHED = 10_000;
/** The longest denial history a condition may ask about (`noDenialForHours` ≤ 720). */
const DENIAL_MEMORY_MS = 720 * 3600 * 1000;

export type ApprovalEvent = 'requested' | 'approved' | 'denied' | 'expired' | 'executed' | 'withdrawn';

export interface ApprovalChange {
  readonly event: ApprovalEvent;
  readonly request: ApprovalRequest;
}

export type { DecisionRefusal } from './decision-refusal.ts';

export interface OpenRequest {
  readonly binding: StatementBinding;
  readonly fingerprint: string | null;
  readonly shape: string | null;
  readonly requester: Identity;
  readonly rules: readonly ApprovalRule[];
  readonly impact: ApprovalImpact;
  readonly reason?: string;
}

/** What lets a held statement run now: an approval of it, or of its shape for its identity. */
export type Release =
  | { readonly by: 'statement'; readonly request: ApprovalRequest }
  | { readonly by: 'shape'; readonly request: ApprovalRequest; readonly until: number };

/**
 * The approval requests of one proxy (standalone) or one operator (Kubernetes), as a state machine
 * over a clock: no timers, no sockets. A request is Pending until a person or a condition decides it
 * or its TTL passes; an approval is used once, by the identical statement, within the TTL.
 *
 *   Pending ─approve─▶ Approved ─claim─▶ Executed
 *      │                  └─ttl──▶ Expired
 *      ├─deny──▶ Denied
 *      ├─ttl───▶ Expired
 *      └─withdraw (the requester's cancel) ─▶ Withdrawn
 */
export class ApprovalBook {
  private readonly requests = new Map<string, ApprovalRequest>();
  /** Pending or Approved request id by binding key: at most one live request per binding. */
  private readonly live = new Map<string, string>();
  private readonly shapes = new Map<string, { until: number; requestId: string }>();
  private readonly denials = new Map<string, number[]>();
  private readonly listeners = new Set<(change: ApprovalChange) => void>();
  private readonly now: () => number;
  private readonly newId: () => string;
  private readonly decideCommand: ((request: Pick<ApprovalRequest, 'id' | 'rules'>) => string) | undefined;
  #accessVersion = 0;

  constructor(
    options: {
      now?: () => number;
      newId?: () => string;
      /** How approvers decide, for the held notice (in Kubernetes: kubectl gatehouse approve). */
      decideCommand?: (request: Pick<ApprovalRequest, 'id' | 'rules'>) => string;
    } = {},
  ) {
    this.now = options.now ?? Date.now;
    this.newId = options.newId ?? (() => `ar-${randomBytes(8).toString('hex')}`);
    this.decideCommand = options.decideCommand;
  }

  /** Calls `listener` after every change (audit records, notifications, waiting sessions). */
  onChange(listener: (change: ApprovalChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get(id: string): ApprovalRequest | undefined {
    this.sweep();
    return this.requests.get(id);
  }

  /** Newest first. */
  list(filter: { phase?: ApprovalRequest['phase'] } = {}): ApprovalRequest[] {
    this.sweep();
    return [...this.requests.values()]
      .filter((r) => filter.phase === undefined || r.phase === filter.phase)
      .sort((a, b) => b.requestedAt - a.requestedAt);
  }

  /**
   * What releases this statement now, if anything: an Approved request bound to it (which becomes
   * Executed: an approval is used once), or an unexpired approval of its shape for this identity.
   */
  claim(binding: StatementBinding, fingerprint: string | null): Release | undefined {
    this.sweep();
    const id = this.live.get(bindingKey(binding));
    const request = id === undefined ? undefined : this.requests.get(id);
    if (request?.phase === 'Approved') {
      const executed = this.update(request, { phase: 'Executed', executedAt: this.now() }, 'executed');
      this.live.delete(bindingKey(binding));
      return { by: 'statement', request: executed };
    }
    if (fingerprint === null) return undefined;
    const shape = this.shapes.get(
      shapeKey({ subject: binding.subject, database: binding.database, fingerprint }),
    );
    const approvedBy = shape && this.requests.get(shape.requestId);
    if (shape && approvedBy) return { by: 'shape', request: approvedBy, until: shape.until };
    return undefined;
  }

  /** When a person's approval of this shape for its identity on a request (`--for`) ends, if one stands. */
  shapeApprovedUntil(shape: ShapeBinding): number | undefined {
    const found = this.shapes.get(shapeKey(shape));
    return found !== undefined && this.now() < found.until ? found.until : undefined;
  }

  /** Whether `claim` would release this statement now, without claiming anything. */
  releases(binding: StatementBinding, fingerprint: string | null): boolean {
    this.sweep();
    const id = this.live.get(bindingKey(binding));
    if (id !== undefined && this.requests.get(id)?.phase === 'Approved') return true;
    if (fingerprint === null) return false;
    const shape = this.shapes.get(
      shapeKey({ subject: binding.subject, database: binding.database, fingerprint }),
    );
    return shape !== undefined && this.requests.has(shape.requestId);
  }

  /**
   * The Pending request for this statement: the one already open for the identical binding (a
   * client that sends the statement again while it waits joins it), or a new one.
   */
  open(input: OpenRequest): { request: ApprovalRequest; created: boolean } {
    this.sweep();
    const key = bindingKey(input.binding);
    const existing = this.live.get(key);
    const found = existing === undefined ? undefined : this.requests.get(existing);
    if (found?.phase === 'Pending') return { request: found, created: false };
    const now = this.now();
    const id = this.newId();
    const request: ApprovalRequest = {
      id,
      binding: input.binding,
      fingerprint: input.fingerprint,
      shape: input.shape,
      requester: { subject: input.requester.subject, groups: [...input.requester.groups] },
      rules: input.rules,
      ...(input.reason !== undefined && { reason: input.reason }),
      impact: input.impact,
      requestedAt: now,
      expiresAt: now + ttlSecondsOf(input.rules) * 1000,
      phase: 'Pending',
      ...(this.decideCommand && { decideCommand: this.decideCommand({ id, rules: input.rules }) }),
    };
    this.requests.set(request.id, request);
    this.live.set(key, request.id);
    this.emit('requested', request);
    this.forget();
    return { request, created: true };
  }

  /**
   * A new Pending request for clear access to masked columns. It releases no statement (its binding's
   * parametersHash is unlike any statement's); approved, it is an exemption until the approval's end.
   */
  openAccess(input: OpenAccessRequest): ApprovalRequest {
    this.sweep();
    const now = this.now();
    const id = this.newId();
    const request = accessRequest(input, id, now);
    this.requests.set(id, request);
    this.emit('requested', request);
    this.forget();
    return request;
  }

  /** Changes whenever an access request is approved or its approval ends: sessions work their masking out again. */
  get accessVersion(): number {
    return this.#accessVersion;
  }

  /**
   * The approved access requests of exactly this identity (subject and issuer) on exactly this
   * database that have not ended: what its sessions see in clear.
   */
  accessExemptions(identity: Identity, database: string): AccessExemption[] {
    const now = this.now();
    const found: AccessExemption[] = [];
    for (const request of this.requests.values()) {
      const { access } = request;
      if (
        access !== undefined &&
        request.phase === 'Approved' &&
        now < request.expiresAt &&
        request.binding.subject === identity.subject &&
        request.binding.database === database &&
        access.issuer === identity.issuer
      )
        found.push({ request: request.id, columns: access.columns, until: request.expiresAt });
    }
    return found;
  }

  /** Why `decider` may not decide request `id`, or undefined when they may. */
  mayDecide(id: string, decider: Identity): DecisionRefusal | undefined {
    const request = this.get(id);
    if (!request) return { problem: 'not-found', message: `there is no approval request ${id}` };
    return decisionRefusal(request, decider);
  }

  /**
   * A person's decision. `shapeForSeconds` approves the statement's shape for the requester for that
   * long as well (a recurring statement approved once); it needs the statement's fingerprint.
   */
  decide(
    id: string,
    decider: Identity,
    verdict: 'approve' | 'deny',
    reason: string,
    options: { shapeForSeconds?: number } = {},
  ): ApprovalRequest | DecisionRefusal {
    const refused = this.mayDecide(id, decider);
    if (refused) return refused;
    const request = this.requests.get(id)!;
    const { shapeForSeconds } = options;
    if (shapeForSeconds !== undefined) {
      if (verdict !== 'approve') return { problem: 'invalid', message: 'only an approval can cover a shape' };
      if (request.fingerprint === null)
        return {
          problem: 'invalid',
          message: `request ${id} has no shape to approve (its text has no fingerprint)`,
        };
      if (
        !Number.isInteger(shapeForSeconds) ||
        shapeForSeconds < 1 ||
        shapeForSeconds > MAX_SHAPE_APPROVAL_SECONDS
      )
        return {
          problem: 'invalid',
          message: `a shape is approved for 1 second to ${MAX_SHAPE_APPROVAL_SECONDS / 86400} days`,
        };
    }
    const now = this.now();
    const shapeUntil = shapeForSeconds === undefined ? undefined : now + shapeForSeconds * 1000;
    return this.settle(request, verdict, {
      by: decider.subject,
      groups: [...decider.groups],
      reason,
      at: now,
      ...(shapeUntil !== undefined && { shapeUntil }),
    });
  }

  /** A rule's condition approved the request without a person. */
  approveAutomatically(id: string, condition: string): ApprovalRequest | DecisionRefusal {
    const request = this.get(id);
    if (!request) return { problem: 'not-found', message: `there is no approval request ${id}` };
    if (request.phase !== 'Pending')
      return { problem: 'not-pending', message: `request ${id} is ${request.phase}, not Pending` };
    return this.settle(request, 'approve', {
      by: AUTO_APPROVER,
      groups: [],
      reason: `auto-approved by condition ${condition}`,
      at: this.now(),
      condition,
    });
  }

  /** The requester gave up (a CancelRequest, or the session ended) before anyone decided. */
  withdraw(id: string): ApprovalRequest | undefined {
    const request = this.get(id);
    if (request?.phase !== 'Pending') return undefined;
    this.live.delete(bindingKey(request.binding));
    return this.update(request, { phase: 'Withdrawn' }, 'withdrawn');
  }

  /**
   * Puts back what an earlier run left in force (approval-restore.ts), before any session: the
   * requests silently, the ones it ends with their record. None is live: no exact text is released.
   */
  restore(restored: Pick<RestoredApprovals, 'requests' | 'ended' | 'shapes' | 'denials'>): void {
    const since = this.now() - DENIAL_MEMORY_MS;
    for (const { subject, at } of restored.denials)
      if (at > since) this.denials.set(subject, [...(this.denials.get(subject) ?? []), at]);
    for (const request of restored.requests) this.requests.set(request.id, request);
    for (const { request } of restored.ended) this.requests.set(request.id, request);
    for (const { requestId, until, ...shape } of restored.shapes)
      this.shapes.set(shapeKey(shape), { until, requestId });
    for (const change of restored.ended) this.emit(change.event, change.request);
    this.#accessVersion++;
  }

  /** Whether a request of `subject` was denied at or after `since` (epoch ms). */
  deniedSince(subject: string, since: number): boolean {
    return (this.denials.get(subject) ?? []).some((at) => at >= since);
  }

  /** Expires what its TTL passed: Pending requests no one decided, and Approved ones no one used. */
  sweep(): void {
    const now = this.now();
    for (const request of this.requests.values()) {
      if ((request.phase === 'Pending' || request.phase === 'Approved') && now >= request.expiresAt) {
        this.live.delete(bindingKey(request.binding));
        this.update(request, { phase: 'Expired' }, 'expired');
      }
    }
    for (const [key, shape] of this.shapes) if (now >= shape.until) this.shapes.delete(key);
  }

  private settle(
    request: ApprovalRequest,
    verdict: 'approve' | 'deny',
    decision: ApprovalRequest['decision'] & object,
  ): ApprovalRequest {
    if (verdict === 'deny') {
      this.live.delete(bindingKey(request.binding));
      const list = this.denials.get(request.requester.subject) ?? [];
      list.push(decision.at);
      this.denials.set(
        request.requester.subject,
        list.filter((at) => at > decision.at - DENIAL_MEMORY_MS),
      );
      return this.update(request, { phase: 'Denied', decision }, 'denied');
    }
    // An approval is usable for the rule's TTL from the moment it is given.
    const approved = this.update(
      request,
      { phase: 'Approved', decision, expiresAt: decision.at + ttlSecondsOf(request.rules) * 1000 },
      'approved',
    );
    if (decision.shapeUntil !== undefined && request.fingerprint !== null) {
      const shape: ShapeBinding = {
        subject: request.binding.subject,
        database: request.binding.database,
        fingerprint: request.fingerprint,
      };
      this.shapes.set(shapeKey(shape), { until: decision.shapeUntil, requestId: request.id });
    }
    return approved;
  }

  private update(
    request: ApprovalRequest,
    change: Partial<ApprovalRequest>,
    event: ApprovalEvent,
  ): ApprovalRequest {
    const next: ApprovalRequest = { ...request, ...change };
    this.requests.set(next.id, next);
    // Only an exemption starting or ending changes what sessions see.
    if (next.access !== undefined && (next.phase === 'Approved' || request.phase === 'Approved'))
      this.#accessVersion++;
    this.emit(event, next);
    return next;
  }

  private emit(event: ApprovalEvent, request: ApprovalRequest): void {
    for (const listener of this.listeners) listener({ event, request });
  }

  /** Drops the oldest finished requests beyond MAX_FINISHED; live ones and shape grants' are kept. */
  private forget(): void {
    if (this.requests.size <= MAX_FINISHED) return;
    const granting = new Set([...this.shapes.values()].map((s) => s.requestId));
    for (const [id, request] of this.requests) {
      if (this.requests.size <= MAX_FINISHED) break;
      if (request.phase === 'Pending' || request.phase === 'Approved' || granting.has(id)) continue;
      this.requests.delete(id);
    }
  }
}
