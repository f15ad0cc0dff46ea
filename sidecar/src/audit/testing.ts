/** Helpers for the audit tests and benchmark: real events, a real pino logger that keeps its lines. */
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { closeSync, openSync, writeSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino, { type Logger } from 'pino';
import type { AuditEvent, SessionContext, StatementEvent, StatementStartEvent } from './events.ts';
import { openAuditLog } from './log.ts';

export const sessionContext: SessionContext = {
  session: '01JTESTSESSION',
  identity: {
    subject: 'system:serviceaccount:shop:orders',
    groups: ['system:serviceaccounts', 'system:serviceaccounts:shop'],
    method: 'token',
    namespace: 'shop',
    serviceAccount: 'orders',
    pod: 'orders-7d9f-abcde',
  },
  client: { address: '10.1.2.3', port: 40312 },
  database: 'shop',
  protocol: 'postgres',
};

export function statementEvent(rows: number): StatementEvent {
  return {
    type: 'statement',
    context: sessionContext,
    statement: 'SELECT abalance FROM pgbench_accounts WHERE aid = $1',
    fingerprint: '348bee4e67e86ca6',
    via: 'simple',
    outcome: 'ok',
    command: 'SELECT',
    rows,
    durationMs: 0.42,
  };
}

export function statementStartEvent(n: number): StatementStartEvent {
  return {
    type: 'statement.start',
    context: sessionContext,
    statement: `INSERT INTO filled (id) VALUES ($${(n % 9) + 1})`,
    fingerprint: null,
    via: 'simple',
  };
}

/** Whether this process may mount file systems (root): the small-disk tests need it. */
export const canMount = process.getuid?.() === 0;

/**
 * Runs `body` with a directory on a tmpfs of `size` (e.g. '256k'): a real small disk that fills up.
 * Needs root; unmounted afterwards.
 */
export async function withSmallDisk<T>(size: string, body: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'gatehouse-small-disk-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0777`, 'tmpfs', dir]);
  try {
    return await body(dir);
  } finally {
    execFileSync('umount', ['-l', dir]);
    await rm(dir, { recursive: true, force: true });
  }
}

/** Fills the file system of `file` to the last block; returns how many bytes it took. */
export function fillDisk(file: string): number {
  const fd = openSync(file, 'w');
  const block = Buffer.alloc(4096, 0x2e);
  let total = 0;
  try {
    for (;;) total += writeSync(fd, block);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
  } finally {
    closeSync(fd);
  }
  return total;
}

/** A pino logger writing to an array of parsed lines. */
export function collectingLogger(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  return { logger, lines };
}

/**
 * Writes a real, sealed audit log (by default of ten statements) signed with a fresh Ed25519 key (checkpoints every
 * four records) into `dir`; returns the log and the key files.
 */
export async function writeSignedLog(
  dir: string,
  events: readonly AuditEvent[] = Array.from({ length: 10 }, (_, i) => statementEvent(i)),
): Promise<{ file: string; keyFile: string; publicKeyPem: string }> {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const keyFile = join(dir, 'signing.pem');
  await writeFile(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }));
  const file = join(dir, 'audit.jsonl');
  const log = await openAuditLog({
    file,
    stdout: false,
    signingKeyFile: keyFile,
    checkpointEveryRecords: 4,
    checkpointIntervalMs: 60_000,
    logger: collectingLogger().logger,
  });
  for (const event of events) log.record(event);
  await log.close();
  return { file, keyFile, publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString() };
}
