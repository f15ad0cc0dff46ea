// `npm run bench`: Gatehouse's PostgreSQL proxy against connecting directly, HAProxy and PgBouncer, all on
// one machine in one run, so that the ratios hold even where the absolute numbers do not travel.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, release, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { exec } from '../harness/exec.ts';
import { runningAsRoot } from '../harness/os-user.ts';
import { psql } from '../harness/pg-env.ts';
import { PG_BIN_DIR, type PostgresInfo, startPostgres } from '../harness/postgres.ts';
import { generateTls } from '../harness/tls.ts';
import { startApprovalsGatehouse, startGatehouse, startGuardedGatehouse } from './gatehouse.ts';
import { checkGoals, formatGoals, type GoalCheck } from './goals.ts';
import { HAPROXY, startHaproxy } from './haproxy.ts';
import {
  formatMysqlTable,
  MYSQLSLAP,
  type MysqlResultRow,
  mysqlGoal,
  runMysqlBench,
  SYSBENCH,
} from './mysql-bench.ts';
import { startNodeRelay } from './node-relay.ts';
import { initPgbench, PGBENCH, runPgbench } from './pgbench.ts';
import { PGBOUNCER, startPgbouncer } from './pgbouncer.ts';
import { rssKb } from './process-usage.ts';
import { formatResultsTable } from './results-table.ts';
import { runMatrix } from './run-matrix.ts';
import { formatStageTable, runStages, type StageRow } from './stages.ts';
import { type ResultRow, summarize } from './summarize.ts';
import { OPTIONAL_TARGETS, TARGET_NAMES, type Target, type TargetName } from './target.ts';
import {
  LARGE_RESULT_SCRIPT,
  MASKED_ROWS_SCRIPT,
  UPDATE_BY_KEY_SCRIPT,
  WORKLOADS,
  type Workload,
} from './workloads.ts';

const USAGE = `usage: node test/bench/main.ts [options]      (npm run bench -- [options])

  --quick           smoke test: 1 round of 3 s per run (about 1.5 minutes in all)
  --duration S      seconds per pgbench run (default 5)
  --rounds N        rounds over all targets and workloads; the report shows medians (default 3)
  --scale N         pgbench -i scale factor (default 10)
  --targets LIST    comma-separated subset of ${TARGET_NAMES.join(',')} (default all but ${OPTIONAL_TARGETS.join(',')})
  --protocols LIST  postgres, mysql or both (default postgres,mysql); MySQL runs mysqlslap point selects
  --workloads LIST  comma-separated prefixes of PostgreSQL workload ids (update-by-key, select-only/prepared...; default all)
  --mysql-workloads LIST  comma-separated parts of MySQL workload ids to run (e.g. update), default all
  --out FILE        where to write the results as JSON (default bench-results.json)
  --collector       instead: the audit collector's benches, ingest records/s and the p50/p95 of each
                    question over --collector-records synthetic records (default 10000000; loading
                    them takes minutes) in a throwaway PostgreSQL (operator/src/collector/*.bench.ts)
  --collector-records N`;

type BenchOptions = {
  collector?: { records: number };
  durationSeconds: number;
  rounds: number;
  warmupSeconds: number;
  scale: number;
  targets: TargetName[];
  protocols: Array<'postgres' | 'mysql'>;
  workloads: readonly Workload[];
  mysqlWorkloads: string[];
  out: string;
};

type Machine = {
  cpus: number;
  cpuModel: string;
  kernel: string;
  node: string;
  loadAverageBefore: number;
  loadAverageAfter: number;
};

class UsageError extends Error {}

const REPO_ROOT = resolve(import.meta.dirname, '../..');
const ENSURE_PACKAGES = 'test/harness/ensure-packages.ts';

const controller = new AbortController();
let interrupts = 0;
const onSignal = (signal: NodeJS.Signals) => {
  interrupts++;
  if (interrupts > 1) process.exit(130);
  log(`\n${signal}: stopping the runs and cleaning up (again to quit at once)`);
  controller.abort();
};
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

async function main(argv: string[]): Promise<number> {
  const options = parseOptions(argv);
  if (options === undefined) {
    console.log(USAGE);
    return 0;
  }
  if (options.collector) return runCollectorBenches(options.collector.records);
  const signal = controller.signal;
  ensurePrograms(options.targets);
  const started = new Date();
  const loadBefore = loadavg()[0]!;
  const cleanups: Array<() => Promise<void>> = [];
  const failures: string[] = [];
  try {
    const dir = await mkdtemp(join(tmpdir(), 'gatehouse-bench-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    // Servers that drop root (PgBouncer) still read their own files below it.
    await chmod(dir, 0o755);
    const logDir = join(dir, 'logs');
    await mkdir(logDir);
    const scriptDir = join(dir, 'scripts');
    await mkdir(scriptDir);
    await writeFile(join(scriptDir, 'large-result.sql'), LARGE_RESULT_SCRIPT);
    await writeFile(join(scriptDir, 'masked-rows.sql'), MASKED_ROWS_SCRIPT);
    await writeFile(join(scriptDir, 'update-by-key.sql'), UPDATE_BY_KEY_SCRIPT);

    const mysql = options.protocols.includes('mysql')
      ? await runMysqlBench(join(dir, 'mysql'), await generateTls(join(dir, 'mysql-tls')), {
          durationSeconds: options.durationSeconds,
          rounds: options.rounds,
          workloads: options.mysqlWorkloads,
          signal,
          log,
        })
      : undefined;
    if (mysql) failures.push(...mysql.failures);
    if (!options.protocols.includes('postgres')) {
      if (mysql) printMysqlReport(mysql.rows, mysql.version);
      const out = resolve(options.out);
      await writeFile(out, `${JSON.stringify({ startedAt: started.toISOString(), mysql }, null, 2)}\n`);
      console.log(`\nresults written to ${out}`);
      return failures.length === 0 ? 0 : 1;
    }

    log('starting PostgreSQL 15 and loading pgbench data ...');
    const postgres = await startPostgres({
      tls: await generateTls(join(dir, 'tls')),
      // Scale 10 is about 160 MB: all of it in shared buffers, so no run waits on the page cache.
      settings: { shared_buffers: "'256MB'" },
    });
    cleanups.push(() => postgres.stop());
    signal.throwIfAborted();
    await initPgbench(postgres.info, options.scale);
    signal.throwIfAborted();

    const targets: Target[] = [];
    /** Each proxy's memory before any client came, beside its peaks under load. */
    const startRssMb: Partial<Record<TargetName, number>> = {};
    for (const name of options.targets) {
      try {
        const target = await startTarget(name, postgres.info, dir);
        cleanups.push(() => target.stop());
        if (target.pid !== undefined) startRssMb[name] = rssKb(target.pid) / 1024;
        signal.throwIfAborted();
        await warmUp(postgres.info, target, { ...options, logDir, scriptDir, signal });
        targets.push(target);
      } catch (error) {
        signal.throwIfAborted();
        const message = (error as Error).message;
        failures.push(`${name}: ${message}`);
        log(`${name}: NOT MEASURED: ${message}`);
      }
    }
    if (targets.length === 0) throw new Error('no target could be started');

    log(
      `running ${options.rounds} round(s) x ${options.workloads.length} workloads x ${targets.length} targets, ` +
        `${options.durationSeconds} s each ...`,
    );
    const cells = await runMatrix(postgres.info, targets, options.workloads, {
      rounds: options.rounds,
      durationSeconds: options.durationSeconds,
      logDir,
      scriptDir,
      signal,
      progress: log,
    });
    const rows = summarize(cells);
    log('measuring the cost of each stage of a statement, in process ...');
    let stages: StageRow[] = [];
    try {
      stages = await runStages(postgres.info, options.scale, options.durationSeconds >= 5 ? 1 : 0.25);
    } catch (error) {
      signal.throwIfAborted();
      failures.push(`stages: ${(error as Error).message}`);
    }
    const memory = Object.fromEntries(
      options.targets.map((name) => {
        const peaks = rows.filter((r) => r.target === name && r.peakRssMb !== null).map((r) => r.peakRssMb!);
        return [
          name,
          { idleMb: startRssMb[name], peakMb: peaks.length > 0 ? Math.max(...peaks) : undefined },
        ];
      }),
    );
    const goals = checkGoals(rows, memory);
    for (const row of rows) failures.push(...row.errors.map((e) => `${row.target} ${row.workload} ${e}`));

    const machine: Machine = {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? 'unknown',
      kernel: release(),
      node: process.version,
      loadAverageBefore: loadBefore,
      loadAverageAfter: loadavg()[0]!,
    };
    printReport(options, machine, rows, startRssMb, goals, failures, stages);
    if (mysql) printMysqlReport(mysql.rows, mysql.version);

    const out = resolve(options.out);
    const report = {
      startedAt: started.toISOString(),
      finishedAt: new Date().toISOString(),
      machine,
      versions: await versions(postgres.info, options.targets),
      settings: { ...options, out: undefined },
      results: rows,
      startRssMb,
      samples: cells.map((c) => ({ target: c.target, workload: c.workload.id, samples: c.samples })),
      goals,
      stages,
      failures,
      ...(mysql && { mysql: { ...mysql, goal: mysqlGoal(mysql.rows) } }),
    };
    await writeFile(out, `${JSON.stringify(report, null, 2)}\n`);
    console.log(`\nresults written to ${out}`);
    return failures.length === 0 ? 0 : 1;
  } finally {
    for (const cleanup of cleanups.reverse()) {
      await cleanup().catch((error: unknown) => log(`cleanup: ${(error as Error).message}`));
    }
  }
}

const FLAGS = {
  quick: { type: 'boolean' },
  duration: { type: 'string' },
  rounds: { type: 'string' },
  scale: { type: 'string' },
  targets: { type: 'string' },
  protocols: { type: 'string' },
  workloads: { type: 'string' },
  'mysql-workloads': { type: 'string' },
  out: { type: 'string' },
  collector: { type: 'boolean' },
  'collector-records': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

function parseOptions(argv: string[]): BenchOptions | undefined {
  let values: ReturnType<typeof parseArgs<{ options: typeof FLAGS; strict: true }>>['values'];
  try {
    values = parseArgs({ args: argv, strict: true, options: FLAGS }).values;
  } catch (error) {
    throw new UsageError((error as Error).message.split('\n')[0] ?? 'invalid arguments');
  }
  if (values.help) return undefined;
  const targets = (values.targets ?? TARGET_NAMES.filter((t) => !OPTIONAL_TARGETS.includes(t)).join(','))
    .split(',')
    .map((t) => t.trim());
  const unknown = targets.filter((t) => !(TARGET_NAMES as readonly string[]).includes(t));
  if (unknown.length > 0) throw new UsageError(`unknown target(s): ${unknown.join(', ')}`);
  const protocols = (values.protocols ?? 'postgres,mysql').split(',').map((p) => p.trim());
  const unknownProtocols = protocols.filter((p) => p !== 'postgres' && p !== 'mysql');
  if (unknownProtocols.length > 0)
    throw new UsageError(`unknown protocol(s): ${unknownProtocols.join(', ')}`);
  const prefixes = values.workloads?.split(',').map((w) => w.trim());
  const workloads = prefixes ? WORKLOADS.filter((w) => prefixes.some((p) => w.id.startsWith(p))) : WORKLOADS;
  if (workloads.length === 0) throw new UsageError(`no workload id starts with ${values.workloads}`);
  const quick = values.quick === true;
  return {
    ...(values.collector && {
      collector: { records: positiveInteger('--collector-records', values['collector-records'], 10_000_000) },
    }),
    durationSeconds: positiveInteger('--duration', values.duration, quick ? 3 : 5),
    rounds: positiveInteger('--rounds', values.rounds, quick ? 1 : 3),
    warmupSeconds: quick ? 1 : 2,
    scale: positiveInteger('--scale', values.scale, 10),
    targets: TARGET_NAMES.filter((name) => targets.includes(name)),
    protocols: (['postgres', 'mysql'] as const).filter((p) => protocols.includes(p)),
    workloads,
    mysqlWorkloads: (values['mysql-workloads'] ?? '')
      .split(',')
      .map((w) => w.trim())
      .filter(Boolean),
    out: values.out ?? 'bench-results.json',
  };
}

/** The collector's own benches, each a script of its own (runnable alone), one after the other. */
function runCollectorBenches(records: number): number {
  let failed = 0;
  for (const [script, args] of [
    ['operator/src/collector/ingest.bench.ts', []],
    ['operator/src/collector/query.bench.ts', ['--records', String(records)]],
  ] as const) {
    log(`node ${script} ${args.join(' ')}`);
    const run = spawnSync(process.execPath, [join(REPO_ROOT, script), ...args], { stdio: 'inherit' });
    if (run.status !== 0) failed++;
  }
  return failed === 0 ? 0 : 1;
}

function positiveInteger(flag: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const number = Number(value);
  if (!Number.isInteger(number) || number < 1) throw new UsageError(`${flag} wants a positive whole number`);
  return number;
}

/** The Debian programs the run needs; installed through the harness when we may, named when we may not. */
function ensurePrograms(targets: readonly TargetName[]): void {
  const needed = [
    join(PG_BIN_DIR, 'initdb'),
    join(PG_BIN_DIR, 'pg_ctl'),
    PGBENCH,
    '/usr/bin/psql',
    '/usr/bin/openssl',
    ...(targets.includes('haproxy') ? [HAPROXY] : []),
    ...(targets.includes('pgbouncer') ? [PGBOUNCER] : []),
    '/usr/sbin/mariadbd',
    MYSQLSLAP,
    SYSBENCH,
  ];
  const missing = () => needed.filter((program) => !existsSync(program));
  if (missing().length === 0) return;
  if (runningAsRoot()) {
    log(`missing ${missing().join(', ')}: installing the Debian packages (${ENSURE_PACKAGES}) ...`);
    spawnSync(process.execPath, [join(REPO_ROOT, ENSURE_PACKAGES)], { stdio: 'inherit' });
  }
  if (missing().length > 0) {
    throw new Error(
      `missing ${missing().join(', ')}: run \`node ${ENSURE_PACKAGES}\` as root to install them`,
    );
  }
}

function printReport(
  options: BenchOptions,
  machine: Machine,
  rows: readonly ResultRow[],
  startRssMb: Partial<Record<TargetName, number>>,
  goals: readonly GoalCheck[],
  failures: readonly string[],
  stages: readonly StageRow[],
): void {
  console.log(
    `\nGatehouse PostgreSQL proxy benchmark: medians of ${options.rounds} round(s) of ${options.durationSeconds} s`,
  );
  console.log(
    `${machine.cpus} CPUs (${machine.cpuModel}), Linux ${machine.kernel}, Node ${machine.node}; load average ` +
      `${machine.loadAverageBefore.toFixed(1)} before, ${machine.loadAverageAfter.toFixed(1)} after ` +
      '(the benchmark alone keeps 2 to 3 busy; more means other work shared the CPUs)\n',
  );
  console.log(formatResultsTable(rows));
  console.log(
    '\nvs direct / vs haproxy: median over rounds of the TPS ratio within a round (runs seconds apart), so it can\n' +
      'differ from the ratio of the median TPS shown. Proxy CPU: utime+stime of the proxy process per transaction.',
  );
  const large = rows.filter((r) => r.workload.startsWith('large-result/') && r.rounds > 0);
  if (large.length > 0) {
    const rates = large.map((r) => `${r.target} ${(r.rowsPerSecond / 1e6).toFixed(2)} M`);
    console.log(`\nlarge result, rows/s: ${rates.join(', ')}`);
  }
  const idle = Object.entries(startRssMb).map(([name, mb]) => `${name} ${mb.toFixed(1)} MB`);
  if (idle.length > 0) console.log(`\nproxy RSS right after start, before any client: ${idle.join(', ')}`);
  if (stages.length > 0) {
    console.log(
      '\nCost of each stage of a statement, measured in one process on the real functions (test/bench/stages.ts):\n' +
        `${formatStageTable(stages)}\n` +
        `p50 and p99 over batches of 8 calls; calls/s on one core. Analysis and lineage hits are what pgbench's\n` +
        'texts pay after the first of their shape; misses are texts of a new shape.',
    );
  }
  console.log(`\nThe project's goals:\n${formatGoals(goals)}`);
  if (failures.length > 0)
    console.log(`\nFailures:\n${failures.map((f) => `- ${f.split('\n')[0]}`).join('\n')}`);
}

function printMysqlReport(rows: readonly MysqlResultRow[], version: string): void {
  console.log(
    `\nGatehouse MySQL proxy benchmark (MariaDB ${version}): sysbench oltp_point_select (prepared) and mysqlslap point selects (text)\n`,
  );
  console.log(formatMysqlTable(rows));
  const goal = mysqlGoal(rows);
  const verdict = goal.met === undefined ? 'not measured' : goal.met ? 'met' : 'NOT met';
  console.log(
    `\nThe project's goal: gatehouse-guarded >= 80% of haproxy, oltp_point_select at 8 clients: ${goal.measured} (${verdict})`,
  );
}

function startTarget(name: TargetName, server: PostgresInfo, dir: string): Promise<Target> {
  if (name === 'direct') {
    return Promise.resolve({
      name,
      host: server.host,
      port: server.port,
      login: server.admin,
      stop: async () => {},
    });
  }
  const start = {
    haproxy: startHaproxy,
    pgbouncer: startPgbouncer,
    'node-relay': startNodeRelay,
    gatehouse: startGatehouse,
    'gatehouse-guarded': startGuardedGatehouse,
    'gatehouse-approvals': startApprovalsGatehouse,
  }[name];
  const targetDir = join(dir, name);
  return mkdir(targetDir, { mode: 0o755 }).then(() => start(server, targetDir));
}

/**
 * A short unmeasured run per target: it proves that pgbench gets through (a broken target is reported
 * before the matrix starts) and lets Node's JIT compile the hot paths before anything is measured.
 */
async function warmUp(
  server: PostgresInfo,
  target: Target,
  options: BenchOptions & { logDir: string; scriptDir: string; signal: AbortSignal },
): Promise<void> {
  const workload = WORKLOADS.find((w) => w.protocol === 'prepared' && w.clients > 1) ?? WORKLOADS[0]!;
  await runPgbench(server, target, workload, {
    ...options,
    durationSeconds: options.warmupSeconds,
    logName: `warmup-${target.name}`,
  });
}

async function versions(
  server: PostgresInfo,
  targets: readonly TargetName[],
): Promise<Record<string, string>> {
  const firstLine = async (file: string, args: string[]) =>
    (await exec(file, args, { allowFailure: true })).stdout.split('\n')[0]?.trim() ?? '';
  const postgres = await psql(['-At', '-c', 'SELECT version()'], { server, sslmode: 'disable' });
  return {
    postgres: postgres.stdout.trim(),
    pgbench: await firstLine(PGBENCH, ['--version']),
    ...(targets.includes('haproxy') && { haproxy: await firstLine(HAPROXY, ['-v']) }),
    ...(targets.includes('pgbouncer') && { pgbouncer: await firstLine(PGBOUNCER, ['-V']) }),
  };
}

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  if (controller.signal.aborted) {
    log('bench: interrupted; every process and temporary directory it started is gone');
    process.exitCode = 130;
  } else if (error instanceof UsageError) {
    log(`bench: ${error.message}\n\n${USAGE}`);
    process.exitCode = 2;
  } else {
    log(`bench failed: ${(error as Error).message}`);
    process.exitCode = 1;
  }
}
