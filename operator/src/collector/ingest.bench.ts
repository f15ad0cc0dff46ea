/**
 * Collector ingest, records per second: `node operator/src/collector/ingest.bench.ts [RECORDS]`.
 * A real signed audit log of RECORDS records (statements, as a proxy writes them) is cut into
 * batches of 1000 (the shipper's default) and ingested: first the chain check alone (pure, no
 * database), then into a throwaway PostgreSQL 15 (one source, then four sources at once, as four
 * proxies would send), then into PGlite.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { openAuditLog } from '../../../sidecar/src/audit/log.ts';
import { statementEvent } from '../../../sidecar/src/audit/testing.ts';
import { startPostgres } from '../../../test/harness/postgres.ts';
import { generateTls } from '../../../test/harness/tls.ts';
import { ingest, NEW_CHAIN } from './ingest.ts';
import { CollectorStore, type SourceKey } from './store.ts';
import { openDriver } from './store-driver.ts';

const RECORDS = Number(process.argv[2] ?? 200_000);
const BATCH = 1000;
const dir = await mkdtemp(join(tmpdir(), 'gatehouse-ingest-bench-'));

try {
  const file = join(dir, 'audit.jsonl');
  const log = await openAuditLog({
    file,
    stdout: false,
    checkpointEveryRecords: 1000,
    checkpointIntervalMs: 10_000,
    logger: pino({ level: 'silent' }),
  });
  for (let i = 0; i < RECORDS; i++) {
    log.record(statementEvent(i));
    if (i % 500 === 0) await new Promise((resolve) => setImmediate(resolve));
  }
  await log.close();
  const lines = (await readFile(file, 'utf8')).trimEnd().split('\n');
  const keyId = String(JSON.parse(lines[0]!).keyId);
  const batches: string[][] = [];
  for (let i = 0; i < lines.length; i += BATCH) batches.push(lines.slice(i, i + BATCH));
  const bytes = lines.reduce((n, l) => n + l.length + 1, 0);
  console.log(
    `${lines.length} records, ${(bytes / lines.length).toFixed(0)} bytes each, batches of ${BATCH}`,
  );

  let started = now();
  let state = NEW_CHAIN;
  for (const batch of batches) state = ingest(state, batch, new Map(), keyId, new Date()).state;
  if (state.status !== 'ok') throw new Error(`chain check failed: ${state.reason}`);
  report('chain check and columns only (no database)', lines.length, started);

  const postgres = await startPostgres({ tls: await generateTls(join(dir, 'tls')) });
  try {
    const { host, port, admin } = postgres.info;
    const url = `postgres://${admin.user}:${encodeURIComponent(admin.password)}@${host}:${port}/${postgres.info.database}`;
    const store = await CollectorStore.open(await openDriver(url, 8));
    const source = (pod: string): SourceKey => ({
      cluster: 'bench',
      namespace: 'bench',
      pod,
      database: 'app',
      logKeyId: keyId,
    });

    const postmaster = Number(
      (await readFile(join(postgres.info.dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0],
    );
    started = now();
    let serverCpu = await postgresCpuSeconds(postmaster);
    for (const batch of batches) await store.ingest(source('one'), batch);
    report(
      'PostgreSQL, one source',
      lines.length,
      started,
      (await postgresCpuSeconds(postmaster)) - serverCpu,
    );

    started = now();
    serverCpu = await postgresCpuSeconds(postmaster);
    await Promise.all(
      ['a', 'b', 'c', 'd'].map(async (pod) => {
        for (const batch of batches) await store.ingest(source(pod), batch);
      }),
    );
    report(
      'PostgreSQL, four sources at once',
      lines.length * 4,
      started,
      (await postgresCpuSeconds(postmaster)) - serverCpu,
    );
    const sources = await store.sources();
    if (sources.some((s) => s.status !== 'ok' || s.lastSeq !== lines.length))
      throw new Error('a source is not whole');
    await store.close();
  } finally {
    await postgres.stop();
  }

  const small = batches.slice(0, Math.min(batches.length, 50));
  const pglite = await CollectorStore.open(await openDriver('pglite:memory'));
  started = now();
  for (const batch of small)
    await pglite.ingest(
      { cluster: 'bench', namespace: 'bench', pod: 'lite', database: 'app', logKeyId: keyId },
      batch,
    );
  report(
    'PGlite (quickstart), one source',
    small.reduce((n, b) => n + b.length, 0),
    started,
  );
  await pglite.close();
} finally {
  await rm(dir, { recursive: true, force: true });
}

/** Wall time, and this process's CPU time: on a shared machine the wall time says as much about the neighbours. */
function now(): { wall: number; cpu: NodeJS.CpuUsage } {
  return { wall: performance.now(), cpu: process.cpuUsage() };
}

/** CPU seconds used so far by a PostgreSQL server: its postmaster and every process it started. */
async function postgresCpuSeconds(postmaster: number): Promise<number> {
  const ticks = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());
  let total = 0;
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    // Fields after the command name (which may hold spaces): state is 3rd, ppid 4th, utime 14th, stime 15th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(pid) !== postmaster && Number(fields[1]) !== postmaster) continue;
    total += (Number(fields[11]) + Number(fields[12])) / ticks;
  }
  return total;
}

function report(
  what: string,
  records: number,
  started: { wall: number; cpu: NodeJS.CpuUsage },
  serverCpuSeconds?: number,
): void {
  const seconds = (performance.now() - started.wall) / 1000;
  const used = process.cpuUsage(started.cpu);
  const cpuSeconds = (used.user + used.system) / 1e6;
  console.log(
    `${what}: ${Math.round(records / seconds).toLocaleString('en')} records/s wall (${records} in ${seconds.toFixed(2)} s), ` +
      `${Math.round(records / cpuSeconds).toLocaleString('en')} records per collector CPU-second` +
      (serverCpuSeconds === undefined
        ? ''
        : `, ${Math.round(records / serverCpuSeconds).toLocaleString('en')} per PostgreSQL CPU-second`) +
      ` (load average ${loadavg()[0]!.toFixed(1)})`,
  );
}
