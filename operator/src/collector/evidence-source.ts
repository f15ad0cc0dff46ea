import { parseChainLine } from '../../../sidecar/src/audit/chain.ts';
import {
  EVIDENCE_TYPES,
  type EvidenceRecord,
  type SourceCheck,
} from '../../../sidecar/src/evidence/evidence-input.ts';
import { CollectorClient, sourceName } from './collector-client.ts';
import type { CollectorCa } from './collector-http.ts';

export interface CollectorEvidence {
  readonly sources: SourceCheck[];
  readonly records: EvidenceRecord[];
  readonly policyHistory: EvidenceRecord[];
}

/**
 * The collector's store as evidence, through its API with a reader's credentials: every source and
 * how its chain stands (the collector verifies each chain as records arrive), the period's records,
 * and the policy changes before the period's end. Each line is checked against its own hash again.
 */
export async function readCollectorEvidence(
  server: string,
  authorization: string,
  period: { from: Date; to: Date },
  ca?: CollectorCa,
): Promise<CollectorEvidence> {
  const collector = new CollectorClient(server, authorization, ca);
  const sources = await collector.sources();
  // By seq: the period's policy changes are read twice (with the period, and with the history).
  const unreadable = new Map<string, Set<number>>();
  const read = async (query: URLSearchParams): Promise<EvidenceRecord[]> => {
    const found: EvidenceRecord[] = [];
    for await (const item of collector.records(query)) {
      const source = sourceName(item.source);
      const parsed = parseChainLine(item.line);
      if (!parsed.ok) {
        unreadable.set(source, (unreadable.get(source) ?? new Set()).add(item.seq));
        continue;
      }
      found.push({
        source,
        seq: parsed.record.seq,
        time: String(parsed.record['time']),
        type: parsed.record.type,
        verified: item.verified,
        fields: parsed.record,
      });
    }
    // Pages come newest first; sections read each source in chain order.
    return found.sort((a, b) => (a.source === b.source ? a.seq - b.seq : a.source < b.source ? -1 : 1));
  };
  const records = await read(
    new URLSearchParams({
      type: EVIDENCE_TYPES.join(','),
      since: period.from.toISOString(),
      until: period.to.toISOString(),
      limit: '1000',
    }),
  );
  const policyHistory = await read(
    new URLSearchParams({ type: 'policy.change', until: period.to.toISOString(), limit: '1000' }),
  );
  // Counted over the whole log, as gatehouse audit verify counts a file's.
  const lost = new Map<string, number>();
  for (const loss of await read(new URLSearchParams({ type: 'audit.loss', limit: '1000' }))) {
    const count = loss.fields['lost'];
    if (typeof count === 'number') lost.set(loss.source, (lost.get(loss.source) ?? 0) + count);
  }
  return {
    sources: sources.map(
      (s): SourceCheck => ({
        source: sourceName(s),
        kind: 'collector',
        ok: s.status === 'ok',
        summary: `collector: ${s.status}${s.reason ? `: ${s.reason}` : ''}; last seq ${s.lastSeq}, last checkpoint seq ${s.checkpointSeq ?? 'none'}`,
        records: s.records,
        lastSeq: s.lastSeq,
        checkpointSeq: s.checkpointSeq,
        lost: lost.get(sourceName(s)) ?? 0,
        unreadable: unreadable.get(sourceName(s))?.size ?? 0,
        keys: [{ keyId: s.logKeyId, fromSeq: 1, trust: 'collector' }],
      }),
    ),
    records,
    policyHistory,
  };
}
