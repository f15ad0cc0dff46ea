import type { Logger } from 'pino';
import type { ApprovalBook, ApprovalChange } from './approval-book.ts';
import { type ApprovalRequest, AUTO_APPROVER } from './approval-request.ts';
import type { OperatorClient } from './operator-client.ts';
import type { ApprovalRequestView, NewApprovalRequestValue } from './operator-protocol.ts';

/** How long one poll waits at the operator for a decision (its endpoint allows up to 30 s). */
const POLL_WAIT_SECONDS = 25;
const RETRY_MIN_MS = 250;
const RETRY_MAX_MS = 5000;
/** A call about a request is given up after this long; a Pending one is polled for as long as it waits. */
const GIVE_UP_MS = 60_000;

/**
 * Decides a sidecar's held statements through the operator. The sessions keep waiting on the
 * proxy's own ApprovalBook exactly as in a standalone proxy; this keeps the book and the operator's
 * ApprovalRequest objects in step: each new request is sent to the operator, its decision is polled
 * for and applied to the book, and a withdrawal or an execution is reported back.
 *
 * A decision is applied through the book's own admission (ApprovalBook.decide), with the decider the
 * operator's webhook stamped from the API server's userInfo: a decider the sidecar's policy does not
 * admit leaves the statement held. Without the operator nothing is approved: the request stays
 * Pending here and the statement is refused when its wait ends (fail closed).
 */
export class OperatorSync {
  readonly #book: ApprovalBook;
  readonly #client: OperatorClient;
  readonly #logger: Pick<Logger, 'info' | 'warn' | 'debug'>;
  /** Calls about one request run in order: it is created before it is withdrawn or executed. */
  readonly #chains = new Map<string, Promise<void>>();
  readonly #stopped = new AbortController();
  readonly #unsubscribe: () => void;

  constructor(book: ApprovalBook, client: OperatorClient, logger: Pick<Logger, 'info' | 'warn' | 'debug'>) {
    this.#book = book;
    this.#client = client;
    this.#logger = logger;
    this.#unsubscribe = book.onChange((change) => this.#onChange(change));
  }

  /** Stops polling and reporting (the proxy is shutting down). */
  stop(): void {
    this.#unsubscribe();
    this.#stopped.abort();
  }

  /** Resolves when every call queued so far has been made (for tests and shutdown). */
  async settled(): Promise<void> {
    while (this.#chains.size > 0) await Promise.allSettled([...this.#chains.values()]);
  }

  #onChange({ event, request }: ApprovalChange): void {
    if (event === 'requested')
      // After the events of the same turn: an automatic approval (and its use) follows at once.
      this.#then(request.id, () => this.#publish(request.id));
    else if (event === 'withdrawn') this.#then(request.id, () => this.#report('withdraw', request.id));
    else if (event === 'executed') this.#then(request.id, () => this.#report('executed', request.id));
  }

  #then(id: string, step: () => Promise<void>): void {
    const next = (this.#chains.get(id) ?? Promise.resolve()).then(step, step).finally(() => {
      if (this.#chains.get(id) === next) this.#chains.delete(id);
    });
    this.#chains.set(id, next);
  }

  async #publish(id: string): Promise<void> {
    const request = this.#book.get(id);
    if (!request) return;
    const created = await this.#retrying(`create ${id}`, id, (signal) =>
      this.#client.create(newRequest(request), signal),
    );
    if (!created) return;
    this.#logger.info({ request: id, namespace: created.namespace }, 'approval request sent to the operator');
    this.#poll(id);
  }

  /** Polls for the decision while the request is Pending here; runs beside the request's other calls. */
  #poll(id: string): void {
    void (async () => {
      while (this.#book.get(id)?.phase === 'Pending' && !this.#stopped.signal.aborted) {
        const view = await this.#retrying(
          `poll ${id}`,
          id,
          (signal) => this.#client.get(id, POLL_WAIT_SECONDS, signal),
          () => this.#book.get(id)?.phase === 'Pending',
        );
        if (!view || view.phase === 'Pending') continue;
        this.#apply(view);
        return;
      }
    })();
  }

  #apply(view: ApprovalRequestView): void {
    const decision = view.decision;
    if ((view.phase !== 'Approved' && view.phase !== 'Denied') || !decision?.by) {
      this.#logger.info({ request: view.id, phase: view.phase }, 'approval request ended at the operator');
      return;
    }
    const decided = this.#book.decide(
      view.id,
      { subject: decision.by, groups: decision.groups ?? [], method: 'token' },
      view.phase === 'Approved' ? 'approve' : 'deny',
      decision.reason,
      decision.shapeForSeconds !== undefined ? { shapeForSeconds: decision.shapeForSeconds } : {},
    );
    if ('problem' in decided)
      this.#logger.warn(
        { request: view.id, by: decision.by, problem: decided.problem },
        `the operator's decision was not applied: ${decided.message}`,
      );
  }

  async #report(what: 'withdraw' | 'executed', id: string): Promise<void> {
    await this.#retrying(`${what} ${id}`, id, (signal) => this.#client[what](id, signal));
  }

  /**
   * The call, retried with backoff while `matters()` and for at most GIVE_UP_MS; undefined when it
   * stopped mattering, the proxy stopped, or it was given up (the operator's expiry then finishes
   * what could not be reported).
   */
  async #retrying<T>(
    what: string,
    id: string,
    call: (signal: AbortSignal) => Promise<T>,
    matters: () => boolean = () => true,
  ): Promise<T | undefined> {
    const giveUpAt = Date.now() + GIVE_UP_MS;
    for (let delay = RETRY_MIN_MS; ; delay = Math.min(delay * 2, RETRY_MAX_MS)) {
      try {
        return await call(this.#stopped.signal);
      } catch (error) {
        if (this.#stopped.signal.aborted || !matters()) return undefined;
        if (Date.now() + delay > giveUpAt) {
          this.#logger.warn({ request: id, err: String(error) }, `approvals: ${what} failed; given up`);
          return undefined;
        }
        this.#logger.warn({ request: id, err: String(error), retryInMs: delay }, `approvals: ${what} failed`);
        await new Promise((resolve) => setTimeout(resolve, delay).unref());
      }
    }
  }
}

/** What the operator is told of a new request: the binding, the rules, and what is known of its impact. */
function newRequest(request: ApprovalRequest): NewApprovalRequestValue {
  const { decision } = request;
  return {
    id: request.id,
    identity: { subject: request.requester.subject, groups: [...request.requester.groups] },
    database: request.binding.database,
    statement: request.binding.statement,
    parametersHash: request.binding.parametersHash,
    ...(request.fingerprint !== null && { fingerprint: request.fingerprint }),
    ...(request.shape !== null && { shape: request.shape }),
    rules: request.rules.map((rule) => ({
      guardrail: rule.guardrail,
      rule: rule.rule,
      ...(rule.namespace !== undefined && { namespace: rule.namespace }),
      approvers: rule.approvers.map((a) => ({ ...a })),
      allowSelfApproval: rule.allowSelfApproval,
      waitSeconds: rule.waitSeconds,
      ttlSeconds: rule.ttlSeconds,
    })),
    impact: {
      ...(request.impact.affectedRows !== undefined && { affectedRows: request.impact.affectedRows }),
      ...(request.impact.estimatedRows !== undefined && { estimatedRows: request.impact.estimatedRows }),
      ...(request.impact.dependents && { dependents: [...request.impact.dependents] }),
      ...(request.impact.sensitiveColumns && { sensitiveColumns: [...request.impact.sensitiveColumns] }),
      ...(request.impact.tables && { tables: [...request.impact.tables] }),
    },
    ...(request.access && {
      access: {
        columns: [...request.access.columns],
        forSeconds: request.access.forSeconds,
        ...(request.access.issuer !== undefined && { issuer: request.access.issuer }),
      },
    }),
    ...(decision?.by === AUTO_APPROVER &&
      decision.condition !== undefined && { autoApproved: { condition: decision.condition } }),
  };
}
