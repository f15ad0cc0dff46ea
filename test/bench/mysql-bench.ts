// The MySQL rows of `npm run bench`: sysbench oltp_point_select (prepared statements) and mysqlslap point
// selects (text protocol), and the same two for one-row updates by key (sysbench oltp_update_non_index,
// mysqlslap UPDATE), against MariaDB directly, through HAProxy and through Gatehouse (audit only, and
// with the full policy, whose row limit makes the proxy count each update's rows), in one run, so that
// the ratios hold.
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { DEFAULT_GUARDRAIL } from '../../sidecar/src/policy/guardrails/default-guardrails.ts';
import { exec } from '../harness/exec.ts';
import { type MariaDbInfo, startMariaDb, withoutMysqlVariables } from '../harness/mariadb.ts';
import type { TlsFiles } from '../harness/tls.ts';
import { startBackground, waitForPort } from './background-process.ts';
import { HAPROXY } from './haproxy.ts';
import { onFreePort } from './listen-retry.ts';
import { cpuTimeMicros, peakRssKb, resetPeakRss } from './process-usage.ts';

export const MYSQLSLAP = '/usr/bin/mysqlslap';
export const SYSBENCH = '/usr/bin/sysbench';
const MAIN = resolve(import.meta.dirname, '../../sidecar/src/main.ts');
const NODE_RELAY_SERVER = join(import.meta.dirname, 'node-relay-server.ts');
const TABLE_ROWS = 100_000;
const DISTINCT_QUERIES = 1000;
const START_TIMEOUT_MS = 30_000;

export const MYSQL_TARGET_NAMES = [
  'direct',
  'haproxy',
  'node-relay',
  'gatehouse',
  'gatehouse-guarded',
] as const;
type MysqlTargetName = (typeof MYSQL_TARGET_NAMES)[number];

type MysqlTarget = {
  name: MysqlTargetName;
  port: number;
  login: { user: string; password: string };
  pid?: number;
  stop(): Promise<void>;
};

export type MysqlResultRow = {
  target: MysqlTargetName;
  workload: string;
  clients: number;
  /** Median queries per second over rounds. */
  qps: number;
  /** Median over rounds of the ratio within a round. */
  ratioVsDirect: number;
  ratioVsHaproxy: number;
  cpuUsPerQuery: number | null;
  peakRssMb: number | null;
  rounds: number;
};

export type MysqlBenchOptions = {
  durationSeconds: number;
  rounds: number;
  /** Run only the workloads whose id contains one of these (all when empty). */
  workloads?: readonly string[];
  signal: AbortSignal;
  log: (line: string) => void;
};

/**
 * Point selects by primary key (sysbench's oltp_point_select query, over mysqlslap's text protocol): a
 * file of DISTINCT_QUERIES different keys that every client runs in turn, so that statement caches keyed
 * by text see what an application's literals give them.
 */
export async function runMysqlBench(
  dir: string,
  tls: TlsFiles,
  options: MysqlBenchOptions,
): Promise<{ rows: MysqlResultRow[]; version: string; failures: string[] }> {
  const failures: string[] = [];
  const cleanups: Array<() => Promise<void>> = [];
  try {
    await mkdir(dir, { recursive: true, mode: 0o755 });
    options.log('starting MariaDB and loading sbtest1 ...');
    const mariadb = await startMariaDb({ tls });
    cleanups.push(() => mariadb.stop());
    const server = mariadb.info;
    await sysbench(
      { name: 'direct', port: server.port, login: server.users.native, stop: async () => {} },
      'prepare',
      1,
      0,
    );
    const queryFile = join(dir, 'point-select.sql');
    let seed = 42;
    const lines: string[] = [];
    for (let i = 0; i < DISTINCT_QUERIES; i++) {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      lines.push(`SELECT c FROM sbtest1 WHERE id=${1 + (seed % TABLE_ROWS)};`);
    }
    await writeFile(queryFile, `${lines.join('\n')}\n`);
    // One row each, by key, autocommit: under the row limit each runs in a transaction of the proxy's own.
    const updateFile = join(dir, 'update.sql');
    await writeFile(
      updateFile,
      `${lines.map((line) => line.replace(/^SELECT c FROM sbtest1 WHERE/, 'UPDATE sbtest1 SET k = k + 1 WHERE')).join('\n')}\n`,
    );

    const targets: MysqlTarget[] = [];
    for (const name of MYSQL_TARGET_NAMES) {
      try {
        const target = await startTarget(name, server, dir);
        cleanups.push(() => target.stop());
        targets.push(target);
      } catch (error) {
        failures.push(`mysql ${name}: ${(error as Error).message}`);
        options.log(`mysql ${name}: NOT MEASURED: ${(error as Error).message}`);
      }
    }
    const every = [
      ...[1, 8].map((clients) => ({
        id: `oltp_point_select/prepared/${clients}`,
        clients,
        tool: 'sysbench' as const,
        test: 'oltp_point_select',
        file: queryFile,
      })),
      ...[1, 8].map((clients) => ({
        id: `point-select/text/${clients}`,
        clients,
        tool: 'mysqlslap' as const,
        test: '',
        file: queryFile,
      })),
      ...[1, 8].map((clients) => ({
        id: `oltp_update_non_index/prepared/${clients}`,
        clients,
        tool: 'sysbench' as const,
        test: 'oltp_update_non_index',
        file: queryFile,
      })),
      ...[1, 8].map((clients) => ({
        id: `update-by-key/text/${clients}`,
        clients,
        tool: 'mysqlslap' as const,
        test: '',
        file: updateFile,
      })),
    ];
    const chosen = options.workloads ?? [];
    const workloads = every.filter((w) => chosen.length === 0 || chosen.some((c) => w.id.includes(c)));
    // Warm-up: proves each target works and lets V8 compile the proxy's hot paths; each target's probe
    // sets its mysqlslap query count, so that every run lasts about the run's duration (a guarded write
    // can be several times slower than a direct one).
    const counts = new Map<string, number>();
    for (const target of targets) await sysbench(target, 'run', 8, 1);
    for (const workload of workloads.filter((w) => w.tool === 'mysqlslap')) {
      for (const target of targets) {
        const probe = await mysqlslap(target, workload.file, workload.clients, 2000 * workload.clients);
        counts.set(`${target.name}|${workload.id}`, Math.round(probe.qps * options.durationSeconds));
      }
    }
    const samples = new Map<string, { qps: number; cpuUs: number | null; peakKb: number | null }[]>();
    for (let round = 0; round < options.rounds; round++) {
      for (const workload of workloads) {
        for (const target of targets) {
          options.signal.throwIfAborted();
          if (target.pid !== undefined) resetPeakRss(target.pid);
          const cpuBefore = target.pid === undefined ? 0 : cpuTimeMicros(target.pid);
          const result =
            workload.tool === 'sysbench'
              ? await sysbench(target, 'run', workload.clients, options.durationSeconds, workload.test)
              : await mysqlslap(
                  target,
                  workload.file,
                  workload.clients,
                  counts.get(`${target.name}|${workload.id}`) ?? 10_000,
                );
          const cpuUs =
            target.pid === undefined ? null : (cpuTimeMicros(target.pid) - cpuBefore) / result.queries;
          const peakKb = target.pid === undefined ? null : peakRssKb(target.pid);
          const key = `${target.name}|${workload.id}`;
          samples.set(key, [...(samples.get(key) ?? []), { qps: result.qps, cpuUs, peakKb }]);
          options.log(
            `mysql round ${round + 1} ${workload.id} ${target.name}: ${result.qps.toFixed(0)} queries/s`,
          );
        }
      }
    }
    const rows: MysqlResultRow[] = [];
    for (const workload of workloads) {
      for (const target of targets) {
        const own = samples.get(`${target.name}|${workload.id}`) ?? [];
        const direct = samples.get(`direct|${workload.id}`) ?? [];
        const haproxy = samples.get(`haproxy|${workload.id}`) ?? [];
        const cpu = own.map((s) => s.cpuUs).filter((v): v is number => v !== null);
        const peaks = own.map((s) => s.peakKb).filter((v): v is number => v !== null);
        rows.push({
          target: target.name,
          workload: workload.id,
          clients: workload.clients,
          qps: median(own.map((s) => s.qps)),
          ratioVsDirect: median(own.map((s, i) => s.qps / (direct[i]?.qps ?? Number.NaN))),
          ratioVsHaproxy: median(own.map((s, i) => s.qps / (haproxy[i]?.qps ?? Number.NaN))),
          cpuUsPerQuery: cpu.length > 0 ? median(cpu) : null,
          peakRssMb: peaks.length > 0 ? Math.max(...peaks) / 1024 : null,
          rounds: own.length,
        });
      }
    }
    return { rows, version: server.version, failures };
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
  }
}

export function formatMysqlTable(rows: readonly MysqlResultRow[]): string {
  const header = [
    'target',
    'workload',
    'clients',
    'queries/s',
    'vs direct',
    'vs haproxy',
    'proxy CPU µs/q',
    'peak RSS MB',
  ];
  const cells = rows.map((r) => [
    r.target,
    r.workload,
    String(r.clients),
    Number.isFinite(r.qps) ? r.qps.toFixed(0) : 'n/a',
    percent(r.ratioVsDirect),
    percent(r.ratioVsHaproxy),
    r.cpuUsPerQuery === null ? '-' : r.cpuUsPerQuery.toFixed(1),
    r.peakRssMb === null ? '-' : r.peakRssMb.toFixed(1),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const align = (values: string[]) =>
    values
      .map((v, i) => (i < 2 ? v.padEnd(widths[i]!) : v.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  const lines = [align(header), widths.map((w) => '-'.repeat(w)).join('  ')];
  cells.forEach((c, i) => {
    if (i > 0 && rows[i]!.workload !== rows[i - 1]!.workload) lines.push('');
    lines.push(align(c));
  });
  return lines.join('\n');
}

/** The project's MySQL goal: sysbench oltp_point_select through Gatehouse with the full policy keeps at least 80% of HAProxy's throughput at 8 threads. */
export function mysqlGoal(rows: readonly MysqlResultRow[]): { met: boolean | undefined; measured: string } {
  const share = rows.find(
    (r) => r.target === 'gatehouse-guarded' && r.clients === 8 && r.workload.startsWith('oltp_point_select/'),
  )?.ratioVsHaproxy;
  if (share === undefined || !Number.isFinite(share)) return { met: undefined, measured: 'not measured' };
  return { met: share >= 0.8, measured: `${(share * 100).toFixed(1)}%` };
}

async function mysqlslap(
  target: MysqlTarget,
  queryFile: string,
  clients: number,
  queries: number,
): Promise<{ qps: number; queries: number }> {
  const result = await exec(
    MYSQLSLAP,
    [
      '--no-defaults',
      '--protocol=TCP',
      '--host=127.0.0.1',
      `--port=${target.port}`,
      `--user=${target.login.user}`,
      '--create-schema=app',
      `--query=${queryFile}`,
      '--delimiter=;',
      `--concurrency=${clients}`,
      '--iterations=1',
      `--number-of-queries=${queries}`,
    ],
    { env: { ...withoutMysqlVariables(process.env), MYSQL_PWD: target.login.password }, allowFailure: true },
  );
  const seconds = Number(/Average number of seconds to run all queries: ([\d.]+)/.exec(result.stdout)?.[1]);
  if (result.code !== 0 || !Number.isFinite(seconds) || seconds <= 0)
    throw new Error(`mysqlslap through ${target.name} failed: ${(result.stderr || result.stdout).trim()}`);
  return { qps: queries / seconds, queries };
}

/**
 * sysbench's oltp_point_select (a prepared primary-key lookup per query; `prepare` loads sbtest1) or
 * oltp_update_non_index (a prepared one-row UPDATE by key per query, autocommit).
 */
async function sysbench(
  target: MysqlTarget,
  command: 'prepare' | 'run',
  threads: number,
  seconds: number,
  test = 'oltp_point_select',
): Promise<{ qps: number; queries: number }> {
  const result = await exec(
    SYSBENCH,
    [
      test,
      '--db-driver=mysql',
      '--mysql-host=127.0.0.1',
      `--mysql-port=${target.port}`,
      `--mysql-user=${target.login.user}`,
      `--mysql-password=${target.login.password}`,
      '--mysql-db=app',
      '--mysql-ssl=off',
      '--tables=1',
      `--table-size=${TABLE_ROWS}`,
      `--threads=${threads}`,
      ...(command === 'run' ? [`--time=${seconds}`] : []),
      command,
    ],
    { env: withoutMysqlVariables(process.env), allowFailure: true },
  );
  if (command === 'prepare') {
    if (result.code !== 0) throw new Error(`sysbench prepare failed: ${result.stderr || result.stdout}`);
    return { qps: 0, queries: 0 };
  }
  const match = /queries:\s+(\d+)\s+\(([\d.]+) per sec/.exec(result.stdout);
  if (result.code !== 0 || !match)
    throw new Error(`sysbench through ${target.name} failed: ${(result.stderr || result.stdout).trim()}`);
  return { queries: Number(match[1]), qps: Number(match[2]) };
}

function startTarget(name: MysqlTargetName, server: MariaDbInfo, dir: string): Promise<MysqlTarget> {
  if (name === 'direct')
    return Promise.resolve({ name, port: server.port, login: server.users.native, stop: async () => {} });
  if (name === 'haproxy') return startHaproxy(server, dir);
  if (name === 'node-relay') return startNodeRelay(server, dir);
  return startGatehouse(name, server, dir);
}

function startHaproxy(server: MariaDbInfo, dir: string): Promise<MysqlTarget> {
  return onFreePort(async (port) => {
    const configFile = join(dir, 'haproxy-mysql.cfg');
    await writeFile(
      configFile,
      `global\n  nbthread 1\n  maxconn 2000\n\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 1h\n  timeout server 1h\n\nfrontend mysql\n  bind 127.0.0.1:${port}\n  default_backend mysql\n\nbackend mysql\n  server db ${server.host}:${server.port}\n`,
    );
    const haproxy = startBackground('haproxy-mysql', HAPROXY, ['-db', '-f', configFile], { cwd: dir });
    try {
      await waitForPort(haproxy, port);
    } catch (error) {
      await haproxy.stop();
      throw error;
    }
    return {
      name: 'haproxy',
      port,
      login: server.users.native,
      pid: haproxy.pid,
      stop: () => haproxy.stop(),
    };
  });
}

/** A bare Node.js byte relay (`pipe()`): the floor for any proxy written for Node on this machine. */
function startNodeRelay(server: MariaDbInfo, dir: string): Promise<MysqlTarget> {
  return onFreePort(async (port) => {
    const relay = startBackground(
      'node-relay-mysql',
      process.execPath,
      [NODE_RELAY_SERVER, String(port), server.host, String(server.port)],
      { cwd: dir },
    );
    try {
      await waitForPort(relay, port);
    } catch (error) {
      await relay.stop();
      throw error;
    }
    return { name: 'node-relay', port, login: server.users.native, pid: relay.pid, stop: () => relay.stop() };
  });
}

async function startGatehouse(
  name: 'gatehouse' | 'gatehouse-guarded',
  server: MariaDbInfo,
  dir: string,
): Promise<MysqlTarget> {
  const login = { user: 'bench', password: randomBytes(18).toString('base64url') };
  const config = {
    listen: '127.0.0.1:0',
    admin: { listen: '127.0.0.1:0' },
    upstream: {
      protocol: 'mysql',
      host: server.host,
      port: server.port,
      database: server.database,
      user: server.users.native.user,
      password: { value: server.users.native.password },
      tls: { mode: 'disable' },
    },
    identity: { mode: 'local', local: { users: [{ name: login.user, password: login.password }] } },
    audit: { file: join(dir, `${name}-mysql-audit.jsonl`), stdout: false },
  };
  const policy =
    name === 'gatehouse-guarded'
      ? [
          DEFAULT_GUARDRAIL,
          {
            apiVersion: 'gatehouse.dev/v1alpha1',
            kind: 'DatabaseAccess',
            metadata: { name: 'bench' },
            spec: {
              subjects: [{ kind: 'User', name: `local:${login.user}` }],
              allow: ['read', 'write'],
              guardrails: [DEFAULT_GUARDRAIL.metadata.name],
            },
          },
        ]
      : [];
  const configFile = join(dir, `${name}-mysql.yaml`);
  await writeFile(configFile, [config, ...policy].map((d) => stringify(d)).join('---\n'), { mode: 0o600 });
  let onListening: (port: number) => void = () => {};
  const listening = new Promise<number>((resolveListening) => {
    onListening = resolveListening;
  });
  const gatehouse = startBackground(
    `${name}-mysql`,
    process.execPath,
    ['--liftoff-only', '--max-semi-space-size=8', MAIN, 'proxy', '--config', configFile],
    {
      cwd: dir,
      onLine(line) {
        if (!line.includes('gatehouse proxy listening')) return;
        onListening(Number((JSON.parse(line) as { listen?: string }).listen?.split(':').pop()));
      },
    },
  );
  let timer: NodeJS.Timeout | undefined;
  try {
    const port = await Promise.race([
      listening,
      gatehouse.exited.then((how) => {
        throw new Error(`gatehouse exited (${how}) before listening: ${gatehouse.likelyCause()}`);
      }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('gatehouse did not listen in time')), START_TIMEOUT_MS);
      }),
    ]);
    return { name, port, login, pid: gatehouse.pid, stop: () => gatehouse.stop() };
  } catch (error) {
    await gatehouse.stop();
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

function median(values: readonly number[]): number {
  const finite = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (finite.length === 0) return Number.NaN;
  const mid = Math.floor(finite.length / 2);
  return finite.length % 2 === 1 ? finite[mid]! : (finite[mid - 1]! + finite[mid]!) / 2;
}

function percent(ratio: number): string {
  return Number.isFinite(ratio) ? `${(ratio * 100).toFixed(1)}%` : 'n/a';
}
