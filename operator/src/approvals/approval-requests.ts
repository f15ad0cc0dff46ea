import type { Logger } from 'pino';
import { API_VERSION } from '../../../crds/common.ts';
import { AUTO_APPROVER } from '../../../sidecar/src/approvals/approval-request.ts';
import type {
  ApprovalRequestView,
  NewApprovalRequestValue,
  RestoreAnswer,
  RestoreApprovalsValue,
  RestoredRequestView,
} from '../../../sidecar/src/approvals/operator-protocol.ts';
import type { ObjectCache } from '../runtime/informer.ts';
import { isConflict, KubeApiError, type KubeClient, objectKey } from '../runtime/kube-api.ts';
import { LABEL_MANAGED_BY, MANAGED_BY } from '../sidecar-layout.ts';
import {
  type ApprovalRequestObject,
  approvalRequestPath,
  phaseOf,
  usableUntil,
} from './approval-request-object.ts';
import type { SidecarCaller } from './sidecar-auth.ts';

/** Finished requests are deleted this long after they were made (the audit log keeps the record). */
export const FINISHED_RETENTION_MS = 7 * 24 * 3600 * 1000;

/**
 * The operator's side of approvals: it writes ApprovalRequest objects for sidecars (which have no
 * API credentials), tells them the decisions, and expires what no one decided or used. A sidecar
 * sees only the requests it made (its namespace, its service account): another's are not found.
 * Every phase change is a JSON patch that tests the phase it leaves, so an expiry and a decision
 * arriving together cannot both win.
 */
export class ApprovalRequests {
  readonly #api: KubeClient;
  readonly #cache: ObjectCache<ApprovalRequestObject>;
  readonly #logger: Pick<Logger, 'info' | 'warn'>;
  readonly #now: () => number;
  readonly #waiters = new Map<string, Set<() => void>>();
  readonly #announce: ((object: ApprovalRequestObject) => void) | undefined;

  constructor(options: {
    api: KubeClient;
    cache: ObjectCache<ApprovalRequestObject>;
    logger: Pick<Logger, 'info' | 'warn'>;
    now?: () => number;
    /** Announces a new Pending request to the notify targets the operator serves (secret URLs). */
    announce?: (object: ApprovalRequestObject) => void;
  }) {
    this.#api = options.api;
    this.#cache = options.cache;
    this.#logger = options.logger;
    this.#now = options.now ?? Date.now;
    this.#announce = options.announce;
  }

  /** Called for every change the informer sees: wakes the sidecars waiting on that request. */
  changed(object: ApprovalRequestObject): void {
    const key = objectKey(object.metadata.namespace, object.metadata.name);
    for (const wake of this.#waiters.get(key) ?? []) wake();
  }

  /** Creates the request (or finds the caller's own with that id), and marks it Pending or auto-approved. */
  async create(
    caller: SidecarCaller,
    input: NewApprovalRequestValue,
  ): Promise<{ view: ApprovalRequestView; created: boolean } | undefined> {
    const now = this.#now();
    const ttlSeconds = Math.min(...input.rules.map((r) => r.ttlSeconds));
    const { id, autoApproved, ...about } = input;
    const object: ApprovalRequestObject = {
      apiVersion: API_VERSION,
      kind: 'ApprovalRequest',
      metadata: { name: id, namespace: caller.namespace, labels: { [LABEL_MANAGED_BY]: MANAGED_BY } },
      spec: {
        ...about,
        requestedBy: caller.username,
        ...(caller.pod && { requestedByPod: { ...caller.pod } }),
        requestedAt: new Date(now).toISOString(),
        expiresAt: new Date(now + ttlSeconds * 1000).toISOString(),
      },
    };
    try {
      await this.#api.create(approvalRequestPath(caller.namespace), object);
    } catch (error) {
      if (!isConflict(error)) throw error;
      const existing = await this.#find(caller, id);
      return existing && { view: viewOf(existing, now), created: false };
    }
    const status = autoApproved
      ? {
          phase: 'Approved' as const,
          decision: {
            verdict: 'approve' as const,
            reason: `auto-approved by condition ${autoApproved.condition}`,
            by: AUTO_APPROVER,
            groups: [],
            at: new Date(now).toISOString(),
            condition: autoApproved.condition,
          },
        }
      : { phase: 'Pending' as const };
    const written = await this.#api.patch<ApprovalRequestObject>(
      approvalRequestPath(caller.namespace, id, true),
      { status },
      'merge',
    );
    this.#logger.info(
      { request: id, namespace: caller.namespace, sidecar: caller.username, phase: status.phase },
      'approval request created',
    );
    if (status.phase === 'Pending') this.#announce?.(written);
    return { view: viewOf(written, now), created: true };
  }

  /** The caller's request, once it is no longer Pending or after `waitMs`; undefined when it is not theirs. */
  async view(caller: SidecarCaller, id: string, waitMs: number): Promise<ApprovalRequestView | undefined> {
    const found = await this.#find(caller, id);
    if (!found || waitMs <= 0 || viewOf(found, this.#now()).phase !== 'Pending')
      return found && viewOf(found, this.#now());
    const key = objectKey(caller.namespace, id);
    await new Promise<void>((resolve) => {
      const waiters = this.#waiters.get(key) ?? new Set();
      this.#waiters.set(key, waiters);
      const done = () => {
        clearTimeout(timer);
        waiters.delete(wake);
        if (waiters.size === 0) this.#waiters.delete(key);
        resolve();
      };
      const wake = () => {
        const current = this.#cache.get(caller.namespace, id);
        if (current && phaseOf(current) !== 'Pending') done();
      };
      const timer = setTimeout(done, waitMs);
      waiters.add(wake);
      // A decision that landed between the read above and now.
      wake();
    });
    const latest = await this.#find(caller, id);
    return latest && viewOf(latest, this.#now());
  }

  /** The requester gave up: Pending becomes Withdrawn. */
  withdraw(caller: SidecarCaller, id: string): Promise<ApprovalRequestView | undefined> {
    return this.#move(caller, id, 'Pending', { phase: 'Withdrawn' });
  }

  /** The approved statement ran: Approved becomes Executed. */
  executed(caller: SidecarCaller, id: string): Promise<ApprovalRequestView | undefined> {
    return this.#move(caller, id, 'Approved', {
      phase: 'Executed',
      executedAt: new Date(this.#now()).toISOString(),
    });
  }

  /**
   * A sidecar starts (again): what of its service account's requests on the database still stands
   * after their sessions ended (shapes approved for a period, approved access requests, denials), and
   * its earlier process's requests ended, since the sessions that waited on them are gone: Pending
   * ones Withdrawn, unused approvals of an exact text Expired. An earlier process is the caller's own
   * pod's, or a pod that no longer exists; a sibling pod that still runs keeps its requests.
   */
  async restore(caller: SidecarCaller, input: RestoreApprovalsValue): Promise<RestoreAnswer> {
    const now = this.#now();
    const keep = new Set(input.keep);
    const gone = new Map<string, Promise<boolean>>();
    const standing: RestoredRequestView[] = [];
    const ended: RestoredRequestView[] = [];
    const denials: { subject: string; at: string }[] = [];
    for (const object of this.#cache.list()) {
      const { spec, metadata } = object;
      if (
        metadata.namespace !== caller.namespace ||
        spec.requestedBy !== caller.username ||
        spec.database !== input.database
      )
        continue;
      const view = viewOf(object, now);
      const decision = object.status?.decision;
      if (view.phase === 'Denied' && decision?.at)
        denials.push({ subject: spec.identity.subject, at: decision.at });
      const accessStands = spec.access !== undefined && view.phase === 'Approved';
      if (accessStands || shapeStands(object, now)) standing.push(restoredView(object, view.phase));
      const endable = view.phase === 'Pending' || (view.phase === 'Approved' && spec.access === undefined);
      if (!endable || keep.has(metadata.name) || !(await this.#earlierProcess(caller, object, gone)))
        continue;
      const to =
        view.phase === 'Pending'
          ? { phase: 'Withdrawn', message: 'the sidecar whose session waited on it started again' }
          : {
              phase: 'Expired',
              message: 'approved, but the session that waited on it ended with its sidecar',
            };
      try {
        await this.#patchPhase(metadata.namespace, metadata.name, view.phase, to);
      } catch (error) {
        // Decided or expired meanwhile: it is not this start's to end.
        if (error instanceof KubeApiError && error.status === 422) continue;
        throw error;
      }
      ended.push(restoredView(object, to.phase as RestoredRequestView['phase']));
    }
    this.#logger.info(
      {
        namespace: caller.namespace,
        sidecar: caller.username,
        standing: standing.length,
        ended: ended.length,
      },
      'approvals restored for a starting sidecar',
    );
    return { standing, ended, denials };
  }

  /** Whether the request was made by an earlier process: of the caller's pod, or of a pod now gone. */
  async #earlierProcess(
    caller: SidecarCaller,
    object: ApprovalRequestObject,
    gone: Map<string, Promise<boolean>>,
  ): Promise<boolean> {
    const pod = object.spec.requestedByPod;
    // Neither token is pod-bound: nothing tells the service account's pods apart.
    if (!pod) return caller.pod === undefined;
    if (pod.uid === caller.pod?.uid) return true;
    let found = gone.get(pod.uid);
    if (!found) {
      found = this.#api
        .getOptional<{ metadata: { uid?: string } }>(
          `/api/v1/namespaces/${object.metadata.namespace}/pods/${pod.name}`,
        )
        .then((current) => current?.metadata.uid !== pod.uid);
      gone.set(pod.uid, found);
    }
    return found;
  }

  /** One pass over the cache: expires what its time passed, deletes what finished long ago. */
  async sweep(): Promise<void> {
    const now = this.#now();
    for (const object of this.#cache.list()) {
      const phase = phaseOf(object);
      const { namespace, name } = object.metadata;
      try {
        if ((phase === 'Pending' || phase === 'Approved') && now >= usableUntil(object)) {
          await this.#patchPhase(namespace, name, phase, {
            phase: 'Expired',
            message: phase === 'Pending' ? 'no one decided it in time' : 'approved but not used in time',
          });
          this.#logger.info({ request: name, namespace, was: phase }, 'approval request expired');
        } else if (
          phase !== 'Pending' &&
          phase !== 'Approved' &&
          now - Date.parse(object.spec.requestedAt) > FINISHED_RETENTION_MS
        ) {
          await this.#api.delete(approvalRequestPath(namespace, name));
        }
      } catch (error) {
        this.#logger.warn({ request: name, namespace, err: String(error) }, 'approval request sweep failed');
      }
    }
  }

  async #move(
    caller: SidecarCaller,
    id: string,
    from: 'Pending' | 'Approved',
    to: Record<string, string>,
  ): Promise<ApprovalRequestView | undefined> {
    const found = await this.#find(caller, id);
    if (!found) return undefined;
    if (phaseOf(found) === from) {
      try {
        await this.#patchPhase(caller.namespace, id, from, to);
      } catch (error) {
        // The phase moved meanwhile (decided, expired): report what it is now.
        if (!(error instanceof KubeApiError && error.status === 422)) throw error;
      }
    }
    const latest = await this.#find(caller, id);
    return latest && viewOf(latest, this.#now());
  }

  #patchPhase(namespace: string, name: string, from: string, to: Record<string, string>): Promise<unknown> {
    return this.#api.patch(
      approvalRequestPath(namespace, name, true),
      [
        { op: 'test', path: '/status/phase', value: from },
        ...Object.entries(to).map(([field, value]) => ({ op: 'add', path: `/status/${field}`, value })),
      ],
      'json',
    );
  }

  /** The caller's own request, from the cache or (just created, not yet seen there) the API. */
  async #find(caller: SidecarCaller, id: string): Promise<ApprovalRequestObject | undefined> {
    const object =
      this.#cache.get(caller.namespace, id) ??
      (await this.#api.getOptional<ApprovalRequestObject>(approvalRequestPath(caller.namespace, id)));
    return object?.spec.requestedBy === caller.username ? object : undefined;
  }
}

/** Whether the request approved its statement's shape for a period that has not ended. */
function shapeStands(object: ApprovalRequestObject, now: number): boolean {
  const decision = object.status?.decision;
  if (decision?.verdict !== 'approve' || decision.shapeForSeconds === undefined || !decision.at) return false;
  if (object.spec.fingerprint === undefined || phaseOf(object) === 'Denied') return false;
  return Date.parse(decision.at) + decision.shapeForSeconds * 1000 > now;
}

/** What a starting sidecar is told of a request: all but who asked (it is the caller). */
function restoredView(
  object: ApprovalRequestObject,
  phase: RestoredRequestView['phase'],
): RestoredRequestView {
  const { requestedBy: _by, requestedByPod: _pod, ...spec } = object.spec;
  return {
    id: object.metadata.name,
    phase,
    spec,
    ...(object.status?.decision && { decision: object.status.decision }),
    ...(object.spec.access && phase === 'Approved' && { until: new Date(usableUntil(object)).toISOString() }),
  };
}

/** What the sidecar is told; a Pending request past its expiry is already Expired to it. */
function viewOf(object: ApprovalRequestObject, now: number): ApprovalRequestView {
  const phase = phaseOf(object);
  const expired = (phase === 'Pending' || phase === 'Approved') && now >= usableUntil(object);
  return {
    id: object.metadata.name,
    namespace: object.metadata.namespace,
    phase: expired ? 'Expired' : phase,
    ...(object.status?.decision && { decision: object.status.decision }),
  };
}
