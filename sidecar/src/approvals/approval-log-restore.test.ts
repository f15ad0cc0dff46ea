import { generateKeyPairSync } from 'node:crypto';
import { appendFile, copyFile, mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { chainLine, parseChainLine } from '../audit/chain.ts';
import { type AuditLog, openAuditLog } from '../audit/log.ts';
import { collectingLogger } from '../audit/testing.ts';
import type { Identity } from '../identity/identity.ts';
import { approvalAuditEvent } from './approval-audit.ts';
import { ApprovalBook } from './approval-book.ts';
import { restoreApprovalsFromLog, sizeBeforeOpen } from './approval-log-restore.ts';
import type { StatementBinding } from './approval-request.ts';
import { ShapeRegistry } from './learned-shapes.ts';

/**
 * Restoring through the real audit log: a shape approval written by one run is in force in the next
 * only when the whole log verifies and a checkpoint signed by a key the proxy holds covers the record.
 */

const admin: Identity = { subject: 'local:admin', groups: [], method: 'local' };
const lead: Identity = { subject: 'local:lead', groups: ['approvers'], method: 'local' };
const drop: StatementBinding = {
  subject: admin.subject,
  database: 'shop',
  statement: 'DROP TABLE t',
  parametersHash: '',
};
let dir: string;
let keyFile: string;
let file: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gatehouse-restore-'));
  keyFile = join(dir, 'signing.pem');
  await writeFile(
    keyFile,
    generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }),
  );
  file = join(dir, 'audit.jsonl');
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function openLog(path = file, signingKeyFile: string | null = keyFile): Promise<AuditLog> {
  return openAuditLog({
    file: path,
    stdout: false,
    ...(signingKeyFile !== null && { signingKeyFile }),
    checkpointEveryRecords: 1000,
    checkpointIntervalMs: 60_000,
    logger: collectingLogger().logger,
  });
}

/** A first run: `admin`'s DROP approved with its shape for an hour; the log left open for the caller. */
async function firstRun(path = file, signingKeyFile: string | null = keyFile): Promise<AuditLog> {
  const log = await openLog(path, signingKeyFile);
  const book = new ApprovalBook();
  book.onChange((change) => log.record(approvalAuditEvent(change)));
  const { request } = book.open({
    binding: drop,
    fingerprint: 'fp-drop',
    shape: 'DROP TABLE t',
    requester: admin,
    rules: [
      {
        guardrail: 'g',
        rule: 'drops',
        approvers: [{ kind: 'Group', name: 'approvers' }],
        allowSelfApproval: false,
        waitSeconds: 1,
        ttlSeconds: 60,
      },
    ],
    impact: {},
  });
  book.decide(request.id, lead, 'approve', 'release', { shapeForSeconds: 3600 });
  book.claim(drop, 'fp-drop');
  await log.flush();
  return log;
}

/** A second run on `path`: whether the shape approval is in force, and what it logged. */
async function secondRun(path = file, signingKeyFile: string | null = keyFile) {
  const before = await sizeBeforeOpen(path);
  const log = await openLog(path, signingKeyFile);
  const book = new ApprovalBook();
  const shapes = new ShapeRegistry(book);
  const { logger, lines } = collectingLogger();
  await restoreApprovalsFromLog(
    book,
    shapes,
    { file: path, before, keyFiles: [signingKeyFile ?? undefined] },
    logger,
  );
  await log.close();
  return { released: book.claim(drop, 'fp-drop')?.by, messages: lines.map((l) => String(l['msg'])), lines };
}

describe('restoreApprovalsFromLog', () => {
  it('restores a shape approval from a sealed log signed by the proxy key', async () => {
    await (await firstRun()).close();
    const run = await secondRun();
    expect(run.released).toBe('shape');
    expect(run.messages).toContain('approvals restored from the audit log');
  });

  it('restores from a log a crash left with a torn line, which the next run accounts for', async () => {
    await (await firstRun()).close();
    // Cut inside a two-byte character: the writer records the digest of the bytes as they are.
    const torn = Buffer.from('{"seq":99,"note":"é', 'utf8');
    await appendFile(file, torn.subarray(0, torn.length - 1));
    const run = await secondRun();
    expect(run.released).toBe('shape');
  });

  it('restores nothing from a log whose record was changed', async () => {
    await (await firstRun()).close();
    const text = await readFile(file, 'utf8');
    await writeFile(file, text.replace(/"shapeUntil":"\d{4}/, '"shapeUntil":"2099'));
    expect(await readFile(file, 'utf8')).not.toBe(text);
    const run = await secondRun();
    expect(run.released).toBeUndefined();
    expect(
      run.lines.find(
        (l) =>
          l['msg'] ===
          'approvals not restored from the audit log: earlier shape approvals and access requests are not in force',
      )?.['problem'],
    ).toMatch(/does not verify/);
  });

  it('restores nothing from a log signed with a key made for each run', async () => {
    await (await firstRun(file, null)).close();
    const run = await secondRun(file, null);
    expect(run.released).toBeUndefined();
    expect(run.lines.at(-1)?.['problem']).toMatch(/signingKeyFile is not set/);
  });

  it('restores nothing from a log signed with a key the proxy does not hold', async () => {
    await (await firstRun()).close();
    const other = join(dir, 'other.pem');
    await writeFile(
      other,
      generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }),
    );
    const run = await secondRun(file, other);
    expect(run.released).toBeUndefined();
  });

  it('leaves out records no signed checkpoint covers: a crash before one, or a record appended', async () => {
    const log = await firstRun();
    // What a crash leaves: the records written, no checkpoint after them, no seal.
    const crashed = join(dir, 'crashed.jsonl');
    await copyFile(file, crashed);
    await log.close();
    const crashedText = await readFile(crashed, 'utf8');
    const run = await secondRun(crashed);
    expect(run.released).toBeUndefined();
    expect(run.messages).toContain(
      'approval records after the last signed checkpoint (a crash?) are not restored: nothing signed them',
    );
    // Someone who can write the file appends a well-chained request and approval of its own.
    const forged = join(dir, 'forged.jsonl');
    const lines = crashedText.trim().split('\n');
    const parsed = lines.map((l) => parseChainLine(l)).flatMap((p) => (p.ok ? [p] : []));
    let { seq } = parsed.at(-1)!.record;
    let prev = parsed.at(-1)!.hash;
    for (const event of ['requested', 'approved']) {
      const { hash: _, ...fields } = parsed.find((p) => p.record['event'] === event)!.record;
      const chained = chainLine({ ...fields, seq: ++seq, prev, request: 'ar-forged' });
      lines.push(chained.line);
      prev = chained.hash;
    }
    await writeFile(forged, `${lines.join('\n')}\n`);
    const appended = await secondRun(forged);
    expect(appended.released).toBeUndefined();
    expect(appended.messages).toContain(
      'approval records after the last signed checkpoint (a crash?) are not restored: nothing signed them',
    );
  });

  it('restores nothing from a log cut back before the checkpoint its head anchor names', async () => {
    const log = await firstRun();
    const cutAt = (await readFile(file)).length;
    await log.close();
    await truncate(file, cutAt);
    const run = await secondRun();
    expect(run.released).toBeUndefined();
    expect(run.lines.at(-1)?.['problem']).toMatch(/head anchor|does not verify/);
  });
});
