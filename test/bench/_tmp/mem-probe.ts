// Temporary: where does the proxy's memory go under each bench workload? Not committed.
import { execSync } from 'node:child_process';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startPostgres } from '../../harness/postgres.ts';
import { generateTls } from '../../harness/tls.ts';
import { startGatehouse, startGuardedGatehouse } from '../gatehouse.ts';
import { initPgbench, runPgbench } from '../pgbench.ts';
import { LARGE_RESULT_SCRIPT, MASKED_ROWS_SCRIPT, UPDATE_BY_KEY_SCRIPT, WORKLOADS } from '../workloads.ts';

const which = process.argv[2] ?? 'gatehouse-guarded';
const seconds = Number(process.argv[3] ?? 8);
const only = process.argv[4];
const dir = await mkdtemp(join(tmpdir(), 'memprobe-'));
const scriptDir = join(dir, 'scripts');
await mkdir(scriptDir);
await writeFile(join(scriptDir, 'large-result.sql'), LARGE_RESULT_SCRIPT);
await writeFile(join(scriptDir, 'masked-rows.sql'), MASKED_ROWS_SCRIPT);
await writeFile(join(scriptDir, 'update-by-key.sql'), UPDATE_BY_KEY_SCRIPT);
const pg = await startPostgres({
  tls: await generateTls(join(dir, 'tls')),
  settings: { shared_buffers: "'256MB'" },
});
await initPgbench(pg.info, 10);
const target =
  which === 'gatehouse' ? await startGatehouse(pg.info, dir) : await startGuardedGatehouse(pg.info, dir);
const pid = target.pid!;
const ports = execSync(`ss -ltnpH | grep pid=${pid}, | awk '{print $4}'`).toString().trim().split('\n');
const adminPort = ports.map((p) => Number(p.split(':').pop())).find((p) => p !== target.port);
async function sample() {
  const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
  const get = (re: RegExp) => {
    let sum = 0;
    for (const line of text.split('\n')) if (re.test(line)) sum += Number(line.split(' ').pop());
    return sum / 1048576;
  };
  const status = execSync(`grep -E 'VmRSS|VmHWM|RssAnon|RssFile' /proc/${pid}/status`)
    .toString()
    .replace(/\s+/g, ' ');
  return {
    status,
    heapTotal: get(/^gatehouse_process_nodejs_heap_size_total_bytes /).toFixed(1),
    heapUsed: get(/^gatehouse_process_nodejs_heap_size_used_bytes /).toFixed(1),
    external: get(/^gatehouse_process_nodejs_external_memory_bytes /).toFixed(1),
    old: get(/^gatehouse_process_nodejs_heap_space_size_total_bytes\{space="old"/).toFixed(1),
    young: get(/^gatehouse_process_nodejs_heap_space_size_total_bytes\{space="new"/).toFixed(1),
    code: get(/^gatehouse_process_nodejs_heap_space_size_total_bytes\{space="code"/).toFixed(1),
    lo: get(/^gatehouse_process_nodejs_heap_space_size_total_bytes\{space="large_object"/).toFixed(1),
  };
}
function cpuMs() {
  const f = execSync(`cat /proc/${pid}/stat`).toString().split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
}
console.log('start', await sample());
for (const workload of WORKLOADS) {
  if (only && !workload.id.startsWith(only)) continue;
  let peak = 0;
  const timer = setInterval(async () => {
    const s = await sample();
    const rss = Number(/VmRSS:\s*(\d+)/.exec(s.status)?.[1]) / 1024;
    if (rss > peak) {
      peak = rss;
      console.log('  ', workload.id, 'rss', rss.toFixed(1), JSON.stringify(s));
    }
  }, 500);
  const cpu0 = cpuMs();
  const run = await runPgbench(pg.info, target, workload, {
    durationSeconds: seconds,
    logDir: dir,
    logName: workload.id.replaceAll('/', '-'),
    scriptDir,
    signal: new AbortController().signal,
  });
  clearInterval(timer);
  const cpuUs = ((cpuMs() - cpu0) * 1000) / run.transactions;
  console.log(
    workload.id,
    'tps',
    run.tps.toFixed(0),
    'cpuUs/tx',
    cpuUs.toFixed(0),
    'after',
    JSON.stringify(await sample()),
  );
}
await target.stop();
await pg.stop();
