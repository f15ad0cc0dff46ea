import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';

const CLOCK_TICKS_PER_SECOND = clockTicks();

/** User plus system CPU time of a process and all its threads so far, in microseconds (clock-tick resolution). */
export function cpuTimeMicros(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name in field 2 may hold spaces and parentheses; the fields after its last ')' are fixed.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks * 1_000_000) / CLOCK_TICKS_PER_SECOND;
}

/** Peak resident set size (VmHWM) in kB since the process started or since resetPeakRss. */
export function peakRssKb(pid: number): number {
  return statusKb(pid, 'VmHWM');
}

/** Resident set size (VmRSS) in kB now. */
export function rssKb(pid: number): number {
  return statusKb(pid, 'VmRSS');
}

function statusKb(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN);
}

/**
 * Sets the peak back to the current RSS (clear_refs value 5), so that each run reports its own peak.
 * Needs to own the process or be root; where not allowed the peak stays the one since the process started.
 */
export function resetPeakRss(pid: number): void {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
  } catch {
    // A cumulative peak is still a true upper bound.
  }
}

function clockTicks(): number {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
}
