/**
 * Audit records written per second: `node sidecar/src/audit/log.bench.ts`.
 * The producer yields to the event loop every 500 records, as a busy proxy would between packets.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { openAuditLog } from './log.ts';
import { statementEvent } from './testing.ts';

const RECORDS = 200_000;
const dir = await mkdtemp(join(tmpdir(), 'gatehouse-audit-bench-'));

for (const stdout of [false, true]) {
  const logger = pino({ level: 'info' }, pino.destination({ dest: '/dev/null', sync: false }));
  const log = await openAuditLog({
    file: join(dir, `audit-${stdout}.jsonl`),
    stdout,
    checkpointEveryRecords: 1000,
    checkpointIntervalMs: 1000,
    logger,
  });
  let inRecord = 0n;
  const started = process.hrtime.bigint();
  for (let i = 0; i < RECORDS; i++) {
    const before = process.hrtime.bigint();
    log.record(statementEvent(i));
    inRecord += process.hrtime.bigint() - before;
    if (i % 500 === 499) await new Promise((resolve) => setImmediate(resolve));
  }
  await log.close();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (!log.healthy || log.lost > 0) throw new Error(`bench log unhealthy: ${log.failure}, lost ${log.lost}`);
  console.log(
    `stdout ${stdout ? 'on ' : 'off'}: ${Math.round(RECORDS / seconds).toLocaleString('en')} records/s, ` +
      `record() ${(Number(inRecord) / 1000 / RECORDS).toFixed(2)} µs/call`,
  );
}
await rm(dir, { recursive: true, force: true });
