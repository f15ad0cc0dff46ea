import type { ResultRow } from './summarize.ts';

/** One of the project's performance goals, checked against one workload. */
export type GoalCheck = {
  goal: string;
  workload: string;
  /** undefined when a needed figure is missing (a target did not run). */
  met: boolean | undefined;
  measured: string;
};

const THROUGHPUT_SHARE = 0.85;
/** With the full policy path (guardrails and masking), the goal is 80%. */
const GUARDED_THROUGHPUT_SHARE = 0.8;
const LATENCY_ALLOWANCE_US = 100;

/**
 * The project's goals: at 8 clients Gatehouse keeps at least 85% of HAProxy's throughput; at 1 client its
 * median latency is within 100 µs of connecting directly. Each is checked for both protocols, comparing
 * the runs of the same round (see summarize).
 */
export function checkGoals(rows: readonly ResultRow[]): GoalCheck[] {
  const checks: GoalCheck[] = [];
  const workloads = new Map(rows.map((r) => [r.workload, r.clients]));
  for (const [workload, clients] of workloads) {
    if (!workload.startsWith('select-only/')) continue;
    const row = rows.find((r) => r.target === 'gatehouse' && r.workload === workload);
    if (clients === 8) {
      const share = row?.ratioVsHaproxy ?? Number.NaN;
      checks.push({
        goal: `gatehouse TPS >= ${THROUGHPUT_SHARE * 100}% of haproxy`,
        workload,
        met: Number.isFinite(share) ? share >= THROUGHPUT_SHARE : undefined,
        measured: Number.isFinite(share) ? `${(share * 100).toFixed(1)}%` : 'not measured',
      });
      const guarded =
        rows.find((r) => r.target === 'gatehouse-guarded' && r.workload === workload)?.ratioVsHaproxy ??
        Number.NaN;
      checks.push({
        goal: `gatehouse-guarded TPS >= ${GUARDED_THROUGHPUT_SHARE * 100}% of haproxy`,
        workload,
        met: Number.isFinite(guarded) ? guarded >= GUARDED_THROUGHPUT_SHARE : undefined,
        measured: Number.isFinite(guarded) ? `${(guarded * 100).toFixed(1)}%` : 'not measured',
      });
    } else if (clients === 1) {
      const extra = row?.p50OverDirectUs ?? Number.NaN;
      checks.push({
        goal: `gatehouse p50 <= direct p50 + ${LATENCY_ALLOWANCE_US} µs`,
        workload,
        met: Number.isFinite(extra) ? extra <= LATENCY_ALLOWANCE_US : undefined,
        measured: Number.isFinite(extra) ? `${extra >= 0 ? '+' : ''}${extra.toFixed(0)} µs` : 'not measured',
      });
    }
  }
  return checks;
}

export function formatGoals(checks: readonly GoalCheck[]): string {
  const verdict = (met: boolean | undefined) =>
    met === undefined ? 'NOT MEASURED' : met ? 'met' : 'NOT MET';
  const width = Math.max(...checks.map((c) => c.goal.length));
  return checks
    .map(
      (c) =>
        `${c.goal.padEnd(width)}  ${c.workload.padEnd(22)} ${c.measured.padStart(12)}  ${verdict(c.met)}`,
    )
    .join('\n');
}
