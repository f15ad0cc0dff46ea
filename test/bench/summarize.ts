import type { Cell, Sample } from './run-matrix.ts';
import type { TargetName } from './target.ts';

/** One line of the report: one target on one workload, as medians over the rounds. */
export type ResultRow = {
  target: TargetName;
  workload: string;
  protocol: string;
  clients: number;
  /** Rounds that produced a result. */
  rounds: number;
  tps: number;
  rowsPerSecond: number;
  /** Median over rounds of this target's TPS divided by direct's TPS in the same round. */
  ratioVsDirect: number;
  /** The same against HAProxy. */
  ratioVsHaproxy: number;
  /** The same against the bare Node relay (the floor for a proxy in Node) and against PgBouncer. */
  ratioVsNodeRelay: number;
  ratioVsPgbouncer: number;
  p50Us: number;
  p99Us: number;
  /** Median over rounds of this target's p50 minus direct's p50 in the same round. */
  p50OverDirectUs: number;
  cpuUsPerTx: number | null;
  /** The highest peak over the rounds. */
  peakRssMb: number | null;
  errors: string[];
};

/**
 * Medians over rounds (the highest peak for memory). Comparisons pair the runs of one round, which ran
 * seconds apart: when other work on the machine comes and goes between rounds, it moves both sides alike.
 */
export function summarize(cells: readonly Cell[]): ResultRow[] {
  const samplesOf = (target: TargetName, workload: string) =>
    cells.find((c) => c.target === target && c.workload.id === workload)?.samples ?? [];
  return cells.map((cell): ResultRow => {
    const { samples, workload } = cell;
    const tps = median(samples.map((s) => s.tps));
    const cpu = samples.flatMap((s) => (s.cpuUsPerTx === undefined ? [] : [s.cpuUsPerTx]));
    const peaks = samples.flatMap((s) => (s.peakRssKb === undefined ? [] : [s.peakRssKb]));
    const direct = samplesOf('direct', workload.id);
    return {
      target: cell.target,
      workload: workload.id,
      protocol: workload.protocol,
      clients: workload.clients,
      rounds: samples.length,
      tps,
      rowsPerSecond: tps * workload.rowsPerTransaction,
      ratioVsDirect: pairedMedian(samples, direct, (mine, theirs) => mine.tps / theirs.tps),
      ratioVsHaproxy: pairedMedian(
        samples,
        samplesOf('haproxy', workload.id),
        (mine, theirs) => mine.tps / theirs.tps,
      ),
      ratioVsNodeRelay: pairedMedian(
        samples,
        samplesOf('node-relay', workload.id),
        (mine, theirs) => mine.tps / theirs.tps,
      ),
      ratioVsPgbouncer: pairedMedian(
        samples,
        samplesOf('pgbouncer', workload.id),
        (mine, theirs) => mine.tps / theirs.tps,
      ),
      p50Us: median(samples.map((s) => s.p50Us)),
      p99Us: median(samples.map((s) => s.p99Us)),
      p50OverDirectUs: pairedMedian(samples, direct, (mine, theirs) => mine.p50Us - theirs.p50Us),
      cpuUsPerTx: cpu.length === 0 ? null : median(cpu),
      peakRssMb: peaks.length === 0 ? null : Math.max(...peaks) / 1024,
      errors: cell.errors,
    };
  });
}

function pairedMedian(
  mine: readonly Sample[],
  theirs: readonly Sample[],
  compare: (mine: Sample, theirs: Sample) => number,
): number {
  return median(
    mine.flatMap((sample) => {
      const other = theirs.find((t) => t.round === sample.round);
      return other === undefined ? [] : [compare(sample, other)];
    }),
  );
}

function median(values: number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}
