import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Per-transaction latencies in microseconds, sorted, from pgbench's --log files: one file per thread,
 * named PREFIX.PID and PREFIX.PID.THREAD. The third field of each line is the latency; the files are
 * removed once read.
 */
export async function readLatencyLog(dir: string, prefix: string): Promise<Float64Array> {
  const files = (await readdir(dir)).filter((name) => name.startsWith(`${prefix}.`));
  const chunks: Float64Array[] = [];
  for (const name of files) {
    const path = join(dir, name);
    const lines = (await readFile(path, 'utf8')).split('\n');
    const latencies = new Float64Array(lines.length);
    let count = 0;
    for (const line of lines) {
      const latency = Number(line.split(' ', 3)[2]);
      // Failed and skipped transactions carry a word instead of a number; they are counted apart.
      if (line !== '' && Number.isFinite(latency)) latencies[count++] = latency;
    }
    chunks.push(latencies.subarray(0, count));
    await rm(path);
  }
  const all = new Float64Array(chunks.reduce((sum, chunk) => sum + chunk.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    all.set(chunk, offset);
    offset += chunk.length;
  }
  return all.sort();
}

/** Nearest-rank percentile (0 < p <= 100) of sorted values. */
export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}
