/**
 * Audit records written per second: `node sidecar/src/audit/log.bench.ts`.
 * First what one record costs by step (serialise its fields, hash its line, write it with 15 others
 * in one write), then the log as a whole.
 * First records nobody waits for (a statement's outcome): the producer yields to the event loop every
 * 500 records, as a busy proxy would between packets. Then statements as sessions send them: each
 * waits for its `statement.start` record to be written (group commit) before its outcome record.
 */

import { closeSync, openSync, writeSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { chainText, GENESIS } from './chain.ts';
import { openAuditLog } from './log.ts';
import { auditText } from './record.ts';
import { statementEvent, statementStartEvent } from './testing.ts';

const RECORDS = 200_000;
const dir = await mkdtemp(join(tmpdir(), 'gatehouse-audit-bench-'));

/**
 * µs per call of `step`: the fastest of 15 rounds, since other work on a shared machine only ever
 * adds time (the medians of the whole-log figures below are the other side).
 */
function perCall(step: (i: number) => void, calls = 20_000): number {
  let best = Number.POSITIVE_INFINITY;
  for (let round = 0; round < 16; round++) {
    const started = process.hrtime.bigint();
    for (let i = 0; i < calls; i++) step(i);
    // Round 0 warms up.
    if (round > 0) best = Math.min(best, Number(process.hrtime.bigint() - started) / 1000 / calls);
  }
  return best;
}
const time = `"time":"${new Date().toISOString()}",`;
const start = statementStartEvent(1);
const outcome = statementEvent(1);
const startText = time + auditText(start);
const outcomeText = time + auditText(outcome);
const line = chainText(1, GENESIS, outcomeText).line;
const writeFile = join(dir, 'write.jsonl');
const fd = openSync(writeFile, 'w');
const batch = Buffer.from(`${Array(16).fill(line).join('\n')}\n`);
const steps = {
  'serialise statement.start': perCall(() => void auditText(start)),
  'serialise statement': perCall(() => void auditText(outcome)),
  'hash statement.start': perCall((i) => void chainText(i, GENESIS, startText)),
  'hash statement': perCall((i) => void chainText(i, GENESIS, outcomeText)),
  // Kept small: a bench that fills the page cache slows the log runs after it.
  'write (16 records a write)': perCall(() => void writeSync(fd, batch), 200) / 16,
};
closeSync(fd);
await rm(writeFile);
for (const [step, us] of Object.entries(steps)) {
  console.log(
    `${step.padEnd(27)} ${us.toFixed(2)} µs/record, ${Math.round(1e6 / us).toLocaleString('en')} records/s`,
  );
}

for (const stdout of [false, true]) {
  const logger = pino({ level: 'info' }, pino.destination({ dest: '/dev/null', sync: false }));
  const log = await openAuditLog({
    file: join(dir, `audit-${stdout}.jsonl`),
    stdout,
    checkpointEveryRecords: 1000,
    checkpointIntervalMs: 1000,
    logger,
    // This producer never waits for the disk: on a busy machine a stalled write would otherwise
    // send it over the default bound, and records would be refused instead of measured.
    maxPendingBytes: 256 * 1024 * 1024,
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
