import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { Logger } from 'pino';
import { parseChainLine } from '../audit/chain.ts';
import { readHeadFile } from '../audit/head.ts';
import { keyIdOf, loadSigningKey } from '../audit/signing-key.ts';
import { AuditLogVerifier } from '../audit/verify.ts';
import type { ApprovalBook } from './approval-book.ts';
import { restoreApprovals } from './approval-restore.ts';
import type { ShapeRegistry } from './learned-shapes.ts';

export interface ApprovalLogSource {
  readonly file: string;
  /** The head anchor file (`FILE.head` by default). */
  readonly headFile?: string;
  /** The file's size before this run opened it: what follows is this run's own. */
  readonly before: number;
  /** The key files this proxy holds (`signingKeyFile`, `previousSigningKeyFile`): only their checkpoints vouch for records. */
  readonly keyFiles: readonly (string | undefined)[];
}

/**
 * The `approval` records of earlier runs that the log vouches for, oldest first; or why none are.
 * Read after this run opened the log, so the whole file, torn lines its writer accounted for
 * included, must verify as `gatehouse audit verify` checks it. A record counts only when a checkpoint
 * signed by a key this proxy holds follows it before this run's part: a record after the last such
 * checkpoint is chained but unsigned, and whoever can write the file could have appended it.
 */
export async function approvalRecordsFromLog(
  source: ApprovalLogSource,
): Promise<{ records: Record<string, unknown>[]; unsigned: number } | { refused: string }> {
  if (source.before === 0) return { records: [], unsigned: 0 };
  const trustedKeyIds = await heldKeyIds(source.keyFiles);
  if (trustedKeyIds.length === 0)
    return {
      refused:
        'the audit log is signed with a key made for each run (audit.signingKeyFile is not set), so nothing proves this proxy wrote its earlier records',
    };
  const head = await readHeadFile(source.headFile ?? `${source.file}.head`);
  const size = (await stat(source.file)).size;
  const verifier = new AuditLogVerifier({ allowUnsealed: true, ...(head !== undefined && { head }) });
  const trusted = new Set(trustedKeyIds);
  const records: Record<string, unknown>[] = [];
  let unsigned: Record<string, unknown>[] = [];
  let segmentKey: string | undefined;
  let damage: string | undefined;
  let offset = 0;
  const line = (bytes: Buffer): void => {
    const at = offset;
    offset += bytes.length + 1;
    const text = bytes.toString('utf8');
    // Parsed once, for the verifier and for the approval records.
    const parsed = parseChainLine(text);
    // A torn line is checked on its own bytes: the writer recorded their digest, not the decoded text's.
    if (parsed.ok) verifier.pushLine(text, parsed);
    else verifier.push(bytes);
    if (verifier.firstBad || !parsed.ok) return;
    const record = parsed.record as Record<string, unknown>;
    if (at >= source.before) {
      // This run's own open: a cut or rewritten log found now is not one to restore from.
      if (record['type'] === 'log.recover' && record['damage'] === 'head-mismatch')
        damage =
          'this run found the log does not hold the checkpoint its head anchor names (cut or rewritten)';
      return;
    }
    if (record['type'] === 'log.open')
      segmentKey = typeof record['publicKey'] === 'string' ? keyIdOf(record['publicKey']) : undefined;
    else if (record['type'] === 'approval') unsigned.push(record);
    else if (record['type'] === 'checkpoint' && segmentKey !== undefined && trusted.has(segmentKey)) {
      records.push(...unsigned);
      unsigned = [];
    }
  };
  let carry = Buffer.alloc(0);
  for await (const chunk of createReadStream(source.file, { end: size - 1 })) {
    const data = carry.length > 0 ? Buffer.concat([carry, chunk as Buffer]) : (chunk as Buffer);
    let start = 0;
    for (let newline = data.indexOf(0x0a); newline !== -1; newline = data.indexOf(0x0a, start)) {
      line(data.subarray(start, newline));
      start = newline + 1;
    }
    carry = Buffer.from(data.subarray(start));
  }
  const result = verifier.finish(carry);
  if (!result.ok)
    return {
      refused: `the audit log does not verify: seq ${result.firstBad?.seq}, line ${result.firstBad?.line}: ${result.firstBad?.reason}`,
    };
  if (damage) return { refused: damage };
  return { records, unsigned: unsigned.length };
}

/** Rebuilds the book and the shape registry from the log, or logs why it does not; never throws. */
export async function restoreApprovalsFromLog(
  book: ApprovalBook,
  shapes: ShapeRegistry,
  source: ApprovalLogSource,
  logger: Logger,
  now: number = Date.now(),
): Promise<void> {
  let found: Awaited<ReturnType<typeof approvalRecordsFromLog>>;
  try {
    found = await approvalRecordsFromLog(source);
  } catch (error) {
    found = { refused: `the audit log cannot be read: ${(error as Error).message}` };
  }
  if ('refused' in found) {
    logger.error(
      { file: source.file, problem: found.refused },
      'approvals not restored from the audit log: earlier shape approvals and access requests are not in force',
    );
    return;
  }
  const restored = restoreApprovals(found.records, now);
  book.restore(restored);
  shapes.restore(restored.grants);
  for (const { request, why } of restored.skipped)
    logger.warn({ request, problem: why }, 'approval not restored from the audit log');
  if (found.unsigned > 0)
    logger.warn(
      { records: found.unsigned },
      'approval records after the last signed checkpoint (a crash?) are not restored: nothing signed them',
    );
  if (found.records.length > 0)
    logger.info(
      {
        shapes: restored.shapes.length + restored.grants.length,
        accessRequests: restored.requests.filter((r) => r.access && r.phase === 'Approved').length,
        ended: restored.ended.length,
      },
      'approvals restored from the audit log',
    );
}

/** The size of `file` now (0 when it does not exist yet), taken before this run opens it. */
export async function sizeBeforeOpen(file: string | undefined): Promise<number> {
  if (file === undefined) return 0;
  try {
    const found = await stat(file);
    return found.isFile() ? found.size : 0;
  } catch {
    return 0;
  }
}

/** The ids of the keys this proxy signs with and signed with before, when they are kept in files. */
async function heldKeyIds(files: readonly (string | undefined)[]): Promise<string[]> {
  const ids: string[] = [];
  for (const file of files) if (file !== undefined) ids.push((await loadSigningKey(file)).keyId);
  return ids;
}
