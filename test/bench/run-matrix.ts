import type { PostgresInfo } from '../harness/postgres.ts';
import { type PgbenchRun, runPgbench } from './pgbench.ts';
import { cpuTimeMicros, peakRssKb, resetPeakRss } from './process-usage.ts';
import type { Target, TargetName } from './target.ts';
import type { Workload } from './workloads.ts';

export type Sample = PgbenchRun & {
  round: number;
  /** Proxy CPU time (user + system) per transaction; absent for direct. */
  cpuUsPerTx?: number;
  /** The proxy's peak RSS during this run (since it started where the peak cannot be reset: not root). */
  peakRssKb?: number;
};

export type Cell = { target: TargetName; workload: Workload; samples: Sample[]; errors: string[] };

export type MatrixOptions = {
  rounds: number;
  durationSeconds: number;
  logDir: string;
  scriptDir: string;
  signal: AbortSignal;
  progress(line: string): void;
};

/**
 * Runs every workload against every target, round after round. Within a round the targets take turns on
 * the same workload, so that a ratio compares runs seconds apart, not minutes: on a shared 2-core machine
 * background noise drifts, and it drifts alike for neighbours.
 */
export async function runMatrix(
  server: PostgresInfo,
  targets: readonly Target[],
  workloads: readonly Workload[],
  options: MatrixOptions,
): Promise<Cell[]> {
  const cells = workloads.flatMap((workload) =>
    targets.map((target): Cell => ({ target: target.name, workload, samples: [], errors: [] })),
  );
  let runNumber = 0;
  for (let round = 1; round <= options.rounds; round++) {
    for (const workload of workloads) {
      for (const target of targets) {
        const cell = cells.find((c) => c.workload === workload && c.target === target.name)!;
        const label = `round ${round}/${options.rounds}  ${workload.id.padEnd(22)} ${target.name.padEnd(9)}`;
        try {
          const sample = await measure(server, target, workload, round, `run-${++runNumber}`, options);
          cell.samples.push(sample);
          options.progress(`${label} ${sample.tps.toFixed(0).padStart(7)} tps`);
        } catch (error) {
          options.signal.throwIfAborted();
          const message = (error as Error).message;
          cell.errors.push(`round ${round}: ${message}`);
          options.progress(`${label} FAILED: ${message.split('\n')[0]}`);
        }
      }
    }
  }
  return cells;
}

async function measure(
  server: PostgresInfo,
  target: Target,
  workload: Workload,
  round: number,
  logName: string,
  options: MatrixOptions,
): Promise<Sample> {
  const pid = target.pid;
  let cpuBefore = 0;
  if (pid !== undefined) {
    resetPeakRss(pid);
    cpuBefore = cpuTimeMicros(pid);
  }
  const run = await runPgbench(server, target, workload, { ...options, logName });
  if (pid === undefined) return { ...run, round };
  return {
    ...run,
    round,
    cpuUsPerTx: (cpuTimeMicros(pid) - cpuBefore) / run.transactions,
    peakRssKb: peakRssKb(pid),
  };
}
