import type { ResultRow } from './summarize.ts';

const COLUMNS: Array<{ title: string; value(row: ResultRow): string }> = [
  { title: 'target', value: (r) => r.target },
  { title: 'workload', value: (r) => r.workload },
  { title: 'clients', value: (r) => String(r.clients) },
  { title: 'TPS', value: (r) => fixed(r.tps, r.tps < 100 ? 1 : 0) },
  { title: 'vs direct', value: (r) => percent(r.ratioVsDirect) },
  { title: 'vs haproxy', value: (r) => percent(r.ratioVsHaproxy) },
  { title: 'p50 µs', value: (r) => fixed(r.p50Us, 0) },
  { title: 'p99 µs', value: (r) => fixed(r.p99Us, 0) },
  { title: 'proxy CPU µs/tx', value: (r) => (r.cpuUsPerTx === null ? '-' : fixed(r.cpuUsPerTx, 1)) },
  { title: 'peak RSS MB', value: (r) => (r.peakRssMb === null ? '-' : fixed(r.peakRssMb, 1)) },
];

/** A plain-text table, numbers right-aligned, a blank line between workloads. */
export function formatResultsTable(rows: readonly ResultRow[]): string {
  const cells = rows.map((row) => COLUMNS.map((column) => column.value(row)));
  const widths = COLUMNS.map((column, i) =>
    Math.max(column.title.length, ...cells.map((line) => line[i]!.length)),
  );
  const align = (values: string[]) =>
    values.map((value, i) => (i < 2 ? value.padEnd(widths[i]!) : value.padStart(widths[i]!))).join('  ');
  const lines = [align(COLUMNS.map((column) => column.title)), widths.map((w) => '-'.repeat(w)).join('  ')];
  cells.forEach((line, i) => {
    if (i > 0 && rows[i]!.workload !== rows[i - 1]!.workload) lines.push('');
    lines.push(align(line).trimEnd());
  });
  return lines.join('\n');
}

function fixed(value: number, digits: number): string {
  return Number.isFinite(value) ? value.toFixed(digits) : 'n/a';
}

function percent(ratio: number): string {
  return Number.isFinite(ratio) ? `${(ratio * 100).toFixed(1)}%` : 'n/a';
}
