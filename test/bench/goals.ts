import type { ResultRow } from './summarize.ts';
import type { TargetName } from './target.ts';

/** One of the project's performance goals, checked against one workload. */
export type GoalCheck = {
  goal: string;
  workload: string;
  /** undefined when a needed figure is missing (a target did not run). */
  met: boolean | undefined;
  measured: string;
};

/** Memory right after start and at its peak under load, per target, in MB. */
export type MemoryFigures = Partial<Record<TargetName, { idleMb?: number; peakMb?: number }>>;

/**
 * The project's goals for the PostgreSQL proxy, each compared within the same round (see summarize):
 *
 * - at 8 clients, audit-only Gatehouse keeps 95% of a bare Node relay's throughput and the full policy
 *   85% (the relay is the floor for any proxy written in Node on the machine);
 * - a 100-row select with masked columns (one tokenized) under the full policy keeps 60% of HAProxy's;
 * - a large result streams at 2 M rows/s under the full policy;
 * - at 1 client, each adds at most 60 µs (prepared) or 90 µs (simple) to the median over direct;
 * - under 80 MB resident when idle, and within 40 MB of that under load;
 * - and beyond: the full policy at PgBouncer's throughput.
 */
export function checkGoals(rows: readonly ResultRow[], memory: MemoryFigures = {}): GoalCheck[] {
  const checks: GoalCheck[] = [];
  const find = (target: TargetName, workload: string) =>
    rows.find((r) => r.target === target && r.workload === workload);
  const share = (value: number | undefined) =>
    value !== undefined && Number.isFinite(value) ? `${(value * 100).toFixed(1)}%` : 'not measured';
  const verdict = (value: number | undefined, ok: (v: number) => boolean) =>
    value !== undefined && Number.isFinite(value) ? ok(value) : undefined;

  const ratioTo = (target: TargetName, base: 'node-relay' | 'pgbouncer', workload: string) => {
    const mine = find(target, workload);
    return base === 'node-relay' ? mine?.ratioVsNodeRelay : mine?.ratioVsPgbouncer;
  };

  for (const workload of ['select-only/simple/8', 'select-only/prepared/8']) {
    for (const [target, floor] of [
      ['gatehouse', 0.95],
      ['gatehouse-guarded', 0.85],
    ] as const) {
      const r = ratioTo(target, 'node-relay', workload);
      checks.push({
        goal: `${target} TPS >= ${floor * 100}% of node-relay`,
        workload,
        met: verdict(r, (v) => v >= floor),
        measured: share(r),
      });
    }
    const bouncer = ratioTo('gatehouse-guarded', 'pgbouncer', workload);
    checks.push({
      goal: 'gatehouse-guarded TPS >= pgbouncer',
      workload,
      met: verdict(bouncer, (v) => v >= 1),
      measured: share(bouncer),
    });
  }

  const masked = find('gatehouse-guarded', 'masked-rows/simple/8')?.ratioVsHaproxy;
  checks.push({
    goal: 'gatehouse-guarded TPS >= 60% of haproxy',
    workload: 'masked-rows/simple/8',
    met: verdict(masked, (v) => v >= 0.6),
    measured: share(masked),
  });

  const large = find('gatehouse-guarded', 'large-result/simple/1')?.rowsPerSecond;
  checks.push({
    goal: 'gatehouse-guarded >= 2 M rows/s',
    workload: 'large-result/simple/1',
    met: verdict(large, (v) => v >= 2_000_000),
    measured:
      large !== undefined && Number.isFinite(large) ? `${(large / 1e6).toFixed(2)} M/s` : 'not measured',
  });

  for (const [workload, allowance] of [
    ['select-only/prepared/1', 60],
    ['select-only/simple/1', 90],
  ] as const) {
    for (const target of ['gatehouse', 'gatehouse-guarded'] as const) {
      const extra = find(target, workload)?.p50OverDirectUs;
      checks.push({
        goal: `${target} p50 <= direct p50 + ${allowance} µs`,
        workload,
        met: verdict(extra, (v) => v <= allowance),
        measured:
          extra !== undefined && Number.isFinite(extra)
            ? `${extra >= 0 ? '+' : ''}${extra.toFixed(0)} µs`
            : 'not measured',
      });
    }
  }

  for (const target of ['gatehouse', 'gatehouse-guarded'] as const) {
    const { idleMb, peakMb } = memory[target] ?? {};
    checks.push({
      goal: `${target} idle RSS < 80 MB`,
      workload: 'idle',
      met: verdict(idleMb, (v) => v < 80),
      measured: idleMb === undefined ? 'not measured' : `${idleMb.toFixed(0)} MB`,
    });
    const growth = idleMb === undefined || peakMb === undefined ? undefined : peakMb - idleMb;
    checks.push({
      goal: `${target} RSS under load <= idle + 40 MB`,
      workload: 'all workloads',
      met: verdict(growth, (v) => v <= 40),
      measured: growth === undefined ? 'not measured' : `+${growth.toFixed(0)} MB`,
    });
  }
  return checks;
}

export function formatGoals(checks: readonly GoalCheck[]): string {
  const verdict = (met: boolean | undefined) =>
    met === undefined ? 'NOT MEASURED' : met ? 'MET' : 'NOT MET';
  const width = Math.max(...checks.map((c) => c.goal.length));
  return checks
    .map(
      (c) =>
        `${c.goal.padEnd(width)}  ${c.workload.padEnd(22)} ${c.measured.padStart(12)}  ${verdict(c.met)}`,
    )
    .join('\n');
}
