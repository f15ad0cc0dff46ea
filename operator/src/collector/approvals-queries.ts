import type { SqlClient } from './store-driver.ts';

/** The approval phases as the proxies' `approval` records tell them (docs/approvals.md, Phases). */
export type ApprovalPhase = 'Pending' | 'Approved' | 'Denied' | 'Expired' | 'Executed' | 'Withdrawn';

const PHASE_OF: Record<string, ApprovalPhase> = {
  requested: 'Pending',
  approved: 'Approved',
  denied: 'Denied',
  expired: 'Expired',
  executed: 'Executed',
  withdrawn: 'Withdrawn',
};
export const APPROVAL_PHASES = Object.values(PHASE_OF);

export interface ApprovalFilter {
  readonly phase?: ApprovalPhase;
  readonly subject?: string;
  readonly database?: string;
  readonly since?: Date;
  readonly until?: Date;
}

export interface ApprovalView {
  readonly request: string;
  readonly source: { readonly cluster: string; readonly namespace: string; readonly pod: string };
  /** As of the latest record the collector holds: a proxy that went away leaves its requests Pending. */
  readonly phase: ApprovalPhase;
  readonly requester: string;
  readonly database: string | null;
  readonly statement: string | null;
  readonly rules: readonly string[];
  /** An access request: the columns it asks to see in clear, and for how long. */
  readonly columns: readonly string[];
  readonly forSeconds: number | null;
  readonly requestedAt: string | null;
  readonly updatedAt: string;
  readonly decision: { readonly by: string; readonly reason: string | null } | null;
}

/** The records folded per request: at most this many `approval` records of the period are read. */
export const APPROVAL_RECORDS = 10_000;
const DEFAULT_PERIOD_MS = 86_400_000;

/**
 * Approval requests as the proxies' audit records tell them, newest request first: each request's
 * records (requested, then approved, denied, ...) folded into its phase. Over the last day unless
 * `since` says otherwise; a request whose `requested` record is older than `since` is not shown.
 */
export async function queryApprovals(
  db: SqlClient,
  filter: ApprovalFilter,
): Promise<{ items: ApprovalView[] }> {
  const params: unknown[] = [filter.since ?? new Date(Date.now() - DEFAULT_PERIOD_MS)];
  const where = ["r.type = 'approval'", 'r.time >= $1'];
  if (filter.until !== undefined) {
    params.push(filter.until);
    where.push(`r.time < $${params.length}`);
  }
  const rows = await db.query(
    `SELECT r.source_id, r.time, r.line, s.cluster, s.namespace, s.pod
     FROM records r JOIN sources s ON s.id = r.source_id
     WHERE ${where.join(' AND ')}
     ORDER BY r.time, r.source_id, r.seq LIMIT ${APPROVAL_RECORDS}`,
    params,
  );
  const requests = new Map<string, ApprovalView>();
  for (const row of rows) {
    let record: Record<string, unknown>;
    try {
      record = JSON.parse(String(row['line'])) as Record<string, unknown>;
    } catch {
      continue;
    }
    const id = text(record['request']);
    const phase = PHASE_OF[String(record['event'])];
    if (!id || !phase) continue;
    const key = `${String(row['source_id'])}/${id}`;
    const time = new Date(row['time'] as string).toISOString();
    const known = requests.get(key);
    if (!known && phase !== 'Pending' && record['event'] !== 'approved') continue;
    const by = text(record['by']);
    requests.set(key, {
      request: id,
      source: {
        cluster: String(row['cluster']),
        namespace: String(row['namespace']),
        pod: String(row['pod']),
      },
      phase,
      requester: text(record['subject']) ?? known?.requester ?? '',
      database: text(record['database']) ?? known?.database ?? null,
      statement: text(record['statement']) ?? known?.statement ?? null,
      rules: strings(record['rules']) ?? known?.rules ?? [],
      columns: strings(record['columns']) ?? known?.columns ?? [],
      forSeconds:
        typeof record['forSeconds'] === 'number' ? record['forSeconds'] : (known?.forSeconds ?? null),
      requestedAt: known?.requestedAt ?? (phase === 'Pending' ? time : null),
      updatedAt: time,
      decision: by ? { by, reason: text(record['reason']) ?? null } : (known?.decision ?? null),
    });
  }
  const items = [...requests.values()]
    .filter(
      (r) =>
        (filter.phase === undefined || r.phase === filter.phase) &&
        (filter.subject === undefined || r.requester === filter.subject) &&
        (filter.database === undefined || r.database === filter.database),
    )
    .reverse();
  return { items };
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function strings(value: unknown): string[] | undefined {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : undefined;
}
