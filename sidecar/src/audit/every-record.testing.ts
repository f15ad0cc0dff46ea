/**
 * A real audit log holding every record type the writer makes, for the OCSF and export tests: every
 * event type of events.ts through the real writer, then a torn line (log.recover) and a loss
 * (audit.loss) made the way they happen.
 */
import { generateKeyPairSync } from 'node:crypto';
import { appendFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { policyChangeEvent } from '../policy/policy-diff.ts';
import type { ApprovalAuditEvent, AuditEvent } from './events.ts';
import { openAuditLog } from './log.ts';
import { collectingLogger, sessionContext } from './testing.ts';

const guardrail = (action: string, extra: object[] = []) => ({
  apiVersion: 'gatehouse.dev/v1alpha1',
  kind: 'Guardrail',
  metadata: { name: 'defaults' },
  spec: { rules: [{ name: 'destructive', kinds: ['drop'], action }, ...extra] },
});

const approval = (event: ApprovalAuditEvent['event']): ApprovalAuditEvent => ({
  type: 'approval',
  event,
  request: 'req-1',
  subject: 'local:admin',
  database: 'shop',
  statement: 'DROP TABLE orders',
  fingerprint: 'ab12cd34ef56ab78',
  parametersHash: 'e3b0c442',
  rules: ['admin-approvals/drop-and-truncate'],
  ...((event === 'approved' || event === 'denied') && { by: 'local:lead', reason: 'change ticket 42' }),
});

/** Every AuditEvent variant, with each statement outcome. */
export const EVERY_EVENT: readonly AuditEvent[] = [
  policyChangeEvent(undefined, [guardrail('block')], 'gatehouse.yaml', undefined),
  { type: 'connection.start', context: sessionContext, tls: true },
  {
    type: 'statement.start',
    context: sessionContext,
    via: 'simple',
    statement: 'SELECT email FROM customers WHERE id = $1',
    fingerprint: '348bee4e67e86ca6',
  },
  {
    type: 'statement',
    context: sessionContext,
    via: 'simple',
    statement: 'SELECT email FROM customers WHERE id = $1',
    fingerprint: '348bee4e67e86ca6',
    outcome: 'ok',
    command: 'SELECT',
    rows: 1,
    durationMs: 0.42,
    masked: ['email <- public.customers.email (email by name): tokenize'],
  },
  {
    type: 'statement',
    context: sessionContext,
    via: 'extended',
    statement: 'INSERT INTO orders (id) VALUES ($1)',
    fingerprint: '1111222233334444',
    outcome: 'error',
    durationMs: 1.5,
    sqlstate: '23505',
  },
  {
    type: 'statement',
    context: sessionContext,
    via: 'simple',
    statement: 'DROP TABLE orders',
    fingerprint: 'ab12cd34ef56ab78',
    outcome: 'refused',
    durationMs: 0.1,
    sqlstate: '42501',
    reason: 'guardrail defaults/destructive',
  },
  {
    type: 'statement',
    context: sessionContext,
    via: 'simple',
    statement: null,
    fingerprint: null,
    outcome: 'refused',
    durationMs: 0.1,
    sqlstate: '42601',
    reason: 'statement could not be parsed',
  },
  ...(['requested', 'approved', 'denied', 'expired', 'executed', 'withdrawn'] as const).map(approval),
  {
    type: 'connection.refused',
    client: { address: '10.1.2.9', port: 51000 },
    protocol: 'postgres',
    user: 'mallory',
    database: 'shop',
    sqlstate: '28P01',
    reason: 'token signature invalid',
  },
  {
    type: 'connection.refused',
    client: { address: '::1', port: 51001 },
    protocol: 'mysql',
    user: 'eve',
    database: 'shop',
    sqlstate: '28000',
    errno: 1045,
    reason: 'unknown user',
  },
  { type: 'connection.end', context: sessionContext, durationMs: 1234, statements: 4, reason: 'client' },
  policyChangeEvent(
    [guardrail('block')],
    [guardrail('warn', [{ name: 'evasive', kinds: ['multi-statement'], action: 'block' }])],
    'gatehouse.yaml',
    'alice@example.com',
  ),
];

/** Writes the log into `dir`; returns its path. It is sealed, and continued once after a torn line. */
export async function writeEveryRecordLog(dir: string): Promise<string> {
  const file = join(dir, 'every-record.jsonl');
  // One key across both runs, so that the log verifies whole.
  const signingKeyFile = join(dir, 'every-record-key.pem');
  const { privateKey } = generateKeyPairSync('ed25519');
  await writeFile(signingKeyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }));
  const options = {
    file,
    stdout: false,
    signingKeyFile,
    checkpointEveryRecords: 1000,
    checkpointIntervalMs: 60_000,
    logger: collectingLogger().logger,
  };
  const first = await openAuditLog(options);
  for (const event of EVERY_EVENT) first.record(event);
  await first.close();
  // A crash in the middle of a write: the next writer records the torn line (log.recover).
  await appendFile(file, '{"seq":99,"prev":"tor');
  // Too little room for what waits for the disk: records are lost and the loss written (audit.loss).
  const second = await openAuditLog({ ...options, maxPendingBytes: 1 });
  for (let i = 0; i < 3; i++) second.record(EVERY_EVENT[1]!);
  await second.close();
  return file;
}
