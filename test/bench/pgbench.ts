import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { exec } from '../harness/exec.ts';
import { pgEnv } from '../harness/pg-env.ts';
import { PG_BIN_DIR, type PostgresInfo, withoutPgVariables } from '../harness/postgres.ts';
import { percentile, readLatencyLog } from './latency-log.ts';
import type { Target } from './target.ts';
import { MASKED_ROWS_SETUP, type Workload } from './workloads.ts';

export const PGBENCH = join(PG_BIN_DIR, 'pgbench');

export type PgbenchRun = {
  /** pgbench's own figure, without the time spent connecting. */
  tps: number;
  transactions: number;
  p50Us: number;
  p99Us: number;
};

export type PgbenchRunOptions = {
  durationSeconds: number;
  /** Where the per-transaction logs go (and are removed from once read). */
  logDir: string;
  /** A unique stem for this run's log files. */
  logName: string;
  /** Folder of the custom scripts: `<script>.sql` for every workload but select-only. */
  scriptDir: string;
  signal: AbortSignal;
};

/** pgbench -i against the server itself; -q keeps its progress to one line every 5 s. */
export async function initPgbench(server: PostgresInfo, scale: number): Promise<void> {
  await exec(PGBENCH, ['-i', '-q', '-s', String(scale)], {
    env: clientEnv(server, {}),
    timeoutMs: 600_000,
  });
  await exec(join(PG_BIN_DIR, 'psql'), ['-v', 'ON_ERROR_STOP=1', '-q', '-c', MASKED_ROWS_SETUP], {
    env: clientEnv(server, {}),
    timeoutMs: 60_000,
  });
}

/** One timed pgbench run against one target, with every transaction's latency logged. */
export async function runPgbench(
  server: PostgresInfo,
  target: Target,
  workload: Workload,
  options: PgbenchRunOptions,
): Promise<PgbenchRun> {
  const args = [
    '--no-vacuum',
    `--time=${options.durationSeconds}`,
    `--client=${workload.clients}`,
    `--jobs=${workload.threads}`,
    `--protocol=${workload.protocol}`,
    ...(workload.script === 'select-only'
      ? ['--select-only']
      : [`--file=${join(options.scriptDir, `${workload.script}.sql`)}`]),
    '--log',
    `--log-prefix=${join(options.logDir, options.logName)}`,
  ];
  const env = clientEnv(server, { host: target.host, port: target.port, login: target.login });
  const output = await runProgram(PGBENCH, args, env, options.signal, (options.durationSeconds + 60) * 1000);
  const tps = Number(/^tps = ([\d.]+) \(without initial connection time\)/m.exec(output)?.[1]);
  const transactions = Number(/^number of transactions actually processed: (\d+)/m.exec(output)?.[1]);
  const failed = Number(/^number of failed transactions: (\d+)/m.exec(output)?.[1] ?? 0);
  if (!Number.isFinite(tps) || !Number.isFinite(transactions)) {
    throw new Error(`pgbench printed no result:\n${output.trim()}`);
  }
  if (failed > 0) throw new Error(`pgbench: ${failed} of the transactions failed`);
  const latencies = await readLatencyLog(options.logDir, options.logName);
  return { tps, transactions, p50Us: percentile(latencies, 50), p99Us: percentile(latencies, 99) };
}

function clientEnv(server: PostgresInfo, connection: Parameters<typeof pgEnv>[1]): NodeJS.ProcessEnv {
  return { ...withoutPgVariables(process.env), ...pgEnv(server, { ...connection, sslmode: 'disable' }) };
}

/** Runs a program to its end and resolves with its stdout; the abort signal kills it (Ctrl-C). */
function runProgram(
  file: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  signal: AbortSignal,
  timeoutMs: number,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env, signal, timeout: timeoutMs, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.once('error', (error) => {
      reject(signal.aborted ? new Error('interrupted') : new Error(`${file}: ${error.message}`));
    });
    child.once('close', (code, killedBy) => {
      if (code === 0) resolve(stdout);
      else {
        const how = killedBy === null ? `exit code ${code}` : `signal ${killedBy}`;
        const tail = (stderr.trim() || stdout.trim()).split('\n').slice(-10).join('\n');
        reject(new Error(`pgbench failed with ${how}: ${tail}`));
      }
    });
  });
}
