import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { parseChainLine } from '../audit/chain.ts';
import { verifyAuditLogFile } from '../audit/verify.ts';
import { exists } from '../cli/audit-files.ts';
import { summarize } from '../cli/audit-verify.ts';
import { EVIDENCE_TYPES, type EvidenceRecord, type SourceCheck } from './evidence-input.ts';

export interface FileSource {
  readonly check: SourceCheck;
  /** Records in [from, to). */
  readonly records: EvidenceRecord[];
  /** policy.change records before `to`. */
  readonly policyHistory: EvidenceRecord[];
}

/**
 * One audit file as evidence: verified first as `gatehouse audit verify` does (its FILE.head when
 * there is one, the pinned keys), then read. A file that fails verification is still read: its
 * records before the first bad one count as verified, those after it are marked unverified, and
 * its check says why; nothing is dropped without a count.
 */
export async function readAuditFileSource(
  file: string,
  options: { publicKeys: readonly string[]; allowUnsealed: boolean; from: number; to: number },
): Promise<FileSource> {
  const head = (await exists(`${file}.head`)) ? await readFile(`${file}.head`, 'utf8') : undefined;
  const result = await verifyAuditLogFile(file, {
    publicKeys: options.publicKeys,
    head,
    allowUnsealed: options.allowUnsealed,
  });
  const goodUpTo = result.firstBad ? result.firstBad.seq - 1 : Number.POSITIVE_INFINITY;
  const records: EvidenceRecord[] = [];
  const policyHistory: EvidenceRecord[] = [];
  let unreadable = 0;
  const lines = createInterface({ input: createReadStream(file), crlfDelay: Number.POSITIVE_INFINITY });
  for await (const line of lines) {
    if (line === '') continue;
    const parsed = parseChainLine(line);
    if (!parsed.ok) {
      unreadable++;
      continue;
    }
    const { record } = parsed;
    if (!EVIDENCE_TYPES.includes(record.type)) continue;
    const time = Date.parse(String(record['time']));
    if (!(time < options.to)) continue;
    const evidence: EvidenceRecord = {
      source: file,
      seq: record.seq,
      time: String(record['time']),
      type: record.type,
      verified: record.seq <= goodUpTo,
      fields: record,
    };
    if (record.type === 'policy.change') policyHistory.push(evidence);
    if (time >= options.from) records.push(evidence);
  }
  return {
    check: {
      source: file,
      kind: 'file',
      ok: result.ok,
      summary: summarize(result),
      records: result.records,
      checkpoints: result.checkpoints,
      sealed: result.sealed,
      lost: result.lost,
      unreadable,
      keys: result.keys.map((k) => ({
        keyId: k.keyId,
        fromSeq: k.fromSeq,
        trust: k.trust,
        ...(k.signedBy !== undefined && { signedBy: k.signedBy }),
      })),
      ...(result.firstBad && { firstBad: { seq: result.firstBad.seq, reason: result.firstBad.reason } }),
    },
    records,
    policyHistory,
  };
}
