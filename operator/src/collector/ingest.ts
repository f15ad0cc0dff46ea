import { leadingSeq, parseChainLine } from '../../../sidecar/src/audit/chain.ts';
import { keyIdOf } from '../../../sidecar/src/audit/signing-key.ts';
import { AuditLogVerifier, type VerifierState } from '../../../sidecar/src/audit/verify.ts';
import { extractColumns, type RecordColumns } from './extract.ts';

/**
 * The collector's check of one source's records as they arrive, pure: chain state in, batch in,
 * rows to store and the new chain state out. The chain itself is checked by the same verifier as
 * `gatehouse audit verify` (resumed from the stored state), so both say the same of the same log.
 *
 * Nothing is dropped: a record after a gap, a break or a foreign key is stored with `verified`
 * false and the source keeps the first damage as its status. The only lines not stored are resent
 * records whose hash matches the one already stored (duplicates), and torn lines at the very end
 * of a batch (the shipper sends them again with the record that follows them).
 */

export type SourceStatus = 'ok' | 'gap' | 'broken' | 'foreign-key';

export interface ChainState {
  readonly status: SourceStatus;
  readonly reason: string | undefined;
  /** The highest seq stored; 0 for none. */
  readonly lastSeq: number;
  readonly lastHash: string | undefined;
  readonly checkpointSeq: number | undefined;
  readonly checkpointTime: string | undefined;
  /** Where the verifier stands; undefined once the chain is damaged (later records are kept unverified). */
  readonly verifier: VerifierState | undefined;
}

export const NEW_CHAIN: ChainState = {
  status: 'ok',
  reason: undefined,
  lastSeq: 0,
  lastHash: undefined,
  checkpointSeq: undefined,
  checkpointTime: undefined,
  verifier: undefined,
};

export interface IngestRow extends RecordColumns {
  readonly seq: number;
  readonly hash: string | undefined;
  /** The line exactly as the source wrote it. */
  readonly line: string;
  readonly verified: boolean;
}

export interface IngestResult {
  readonly rows: IngestRow[];
  readonly state: ChainState;
  /** Resent records already stored with the same hash. */
  readonly duplicates: number;
}

/** The seqs of a batch's records at or below `lastSeq`, whose stored hashes `ingest` needs. */
export function resentSeqs(lastSeq: number, lines: readonly string[]): number[] {
  const seqs: number[] = [];
  for (const line of lines) {
    const seq = leadingSeq(line);
    if (seq !== undefined && seq <= lastSeq) seqs.push(seq);
  }
  return seqs;
}

/**
 * Checks `lines` (one source's, in its order) against `chain`. `stored` holds the hash of every
 * stored record that `resentSeqs` named; `logKeyId` is the key the source says its log began with,
 * so a log that opens with another key is foreign from its first record.
 */
export function ingest(
  chain: ChainState,
  lines: readonly string[],
  stored: ReadonlyMap<number, string>,
  logKeyId: string,
  receivedAt: Date,
): IngestResult {
  let state = chain;
  const firstBatch = chain.lastSeq === 0 && chain.verifier === undefined && chain.status === 'ok';
  const verifier =
    firstBatch || chain.verifier
      ? new AuditLogVerifier({ allowUnsealed: true, ...(chain.verifier && { resume: chain.verifier }) })
      : undefined;
  let verifying = verifier !== undefined;
  const rows: IngestRow[] = [];
  let duplicates = 0;
  let torn: string[] = [];

  const damage = (status: SourceStatus, reason: string) => {
    if (state.status === 'ok') state = { ...state, status, reason };
    verifying = false;
  };

  for (const line of lines) {
    const parsed = parseChainLine(line);
    if (!parsed.ok && parsed.torn) {
      torn.push(line);
      continue;
    }
    const seq = parsed.ok ? parsed.record.seq : (parsed.record?.seq ?? state.lastSeq + 1);
    const hash = parsed.ok ? parsed.hash : undefined;
    if (seq <= state.lastSeq) {
      // Torn lines before a resent record were stored with it the first time.
      torn = [];
      const known = stored.get(seq);
      if (known !== undefined && known === hash) {
        duplicates++;
        continue;
      }
      damage(
        'broken',
        known === undefined
          ? `seq ${seq} arrived after seq ${state.lastSeq}: out of order, or a record the store no longer holds`
          : `seq ${seq} was sent again with other content than the record stored`,
      );
      rows.push(row(seq, hash, line, false, receivedAt));
      continue;
    }
    for (const tornLine of torn) {
      if (verifying) verifier!.pushLine(tornLine);
      rows.push({ ...tornRow(seq, tornLine, receivedAt), verified: verifying && !verifier!.firstBad });
    }
    torn = [];
    if (
      verifying &&
      parsed.ok &&
      parsed.record.type === 'log.open' &&
      verifier!.state().publicKey === undefined
    ) {
      const publicKey = parsed.record['publicKey'];
      const keyId = typeof publicKey === 'string' ? keyIdOf(publicKey) : undefined;
      if (keyId !== logKeyId)
        damage(
          'foreign-key',
          `the log opens with key ${keyId ?? '(none)'}, not the source's key ${logKeyId}`,
        );
    }
    if (verifying) {
      verifier!.pushLine(line, parsed);
      const bad = verifier!.firstBad;
      if (bad) damage(statusOf(bad.kind), `seq ${bad.seq}: ${bad.reason}`);
    }
    const verified = verifying;
    rows.push(row(seq, hash, line, verified, receivedAt, parsed.ok ? parsed.record : undefined));
    if (verified && parsed.ok && parsed.record.type === 'checkpoint') {
      state = { ...state, checkpointSeq: seq, checkpointTime: stringOr(parsed.record['time']) };
    }
    state = { ...state, lastSeq: seq, lastHash: hash };
  }
  state = { ...state, verifier: verifying ? verifier!.state() : undefined };
  return { rows, state, duplicates };
}

function statusOf(kind: 'gap' | 'break' | 'foreign-key' | undefined): SourceStatus {
  return kind === 'gap' ? 'gap' : kind === 'foreign-key' ? 'foreign-key' : 'broken';
}

function row(
  seq: number,
  hash: string | undefined,
  line: string,
  verified: boolean,
  receivedAt: Date,
  record?: Record<string, unknown>,
): IngestRow {
  return { seq, hash, line, verified, ...extractColumns(record, receivedAt) };
}

/** A torn line is kept where it was, before the record that follows it, under that record's seq. */
function tornRow(seq: number, line: string, receivedAt: Date): Omit<IngestRow, 'verified'> {
  return { seq, hash: undefined, line, ...extractColumns(undefined, receivedAt), type: 'torn' };
}

function stringOr(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}
