/**
 * Audit records written per second: `node sidecar/src/audit/log.bench.ts`.
 * First records nobody waits for (a statement's outcome): the producer yields to the event loop every
 * 500 records, as a busy proxy would between packets. Then statements as sessions send them: each
 * waits for its `statement.start` record to be written (group commit) before its outcome record.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { openAuditLog } from './log.ts';
import { statementEvent, statementStartEvent } from './testing.ts';

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
for (const syncEachWrite of [false, true]) {
  for (const sessions of [1, 16, 256]) {
    const log = await openAuditLog({
      file: join(dir, `gated-${sessions}-${syncEachWrite}.jsonl`),
      stdout: false,
      checkpointEveryRecords: 1000,
      checkpointIntervalMs: 1000,
      logger: pino({ level: 'silent' }),
      syncEachWrite,
    });
    const perSession = Math.ceil((syncEachWrite ? 2_000 : 40_000) / sessions);
    let waited = 0n;
    const session = async (): Promise<void> => {
      for (let i = 0; i < perSession; i++) {
        const before = process.hrtime.bigint();
        if (!(await log.recordBefore(statementStartEvent(i)))) throw new Error(`lost: ${log.failure}`);
        waited += process.hrtime.bigint() - before;
        log.record(statementEvent(i));
      }
    };
    const started = process.hrtime.bigint();
    await Promise.all(Array.from({ length: sessions }, session));
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    await log.close();
    const statements = perSession * sessions;
    console.log(
      `sessions ${String(sessions).padStart(3)}${syncEachWrite ? ', fdatasync' : ''}: ` +
        `${Math.round(statements / seconds).toLocaleString('en')} statements/s (2 records each), ` +
        `wait for the record ${(Number(waited) / 1000 / statements).toFixed(1)} µs/statement`,
    );
  }
}
await rm(dir, { recursive: true, force: true });
