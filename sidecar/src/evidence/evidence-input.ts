/**
 * What an evidence pack is built from, whichever store it came from (audit files or the collector):
 * the records of the period, the policy history up to its end, and how each source's chain stood.
 */

/**
 * The record types the sections read, from a file or the collector alike; the rest (statement.start,
 * connection.start and end, checkpoints) are verified with their chain but not carried into the pack.
 */
export const EVIDENCE_TYPES: readonly string[] = [
  'statement',
  'connection.refused',
  'approval',
  'policy.change',
];

/** One audit record, as its line holds it, with where it came from. */
export interface EvidenceRecord {
  /** The audit file, or the collector's `cluster/namespace/pod/database`. */
  readonly source: string;
  readonly seq: number;
  /** ISO 8601, as the record says. */
  readonly time: string;
  readonly type: string;
  /** Whether the chain was verified up to and including this record. */
  readonly verified: boolean;
  readonly fields: Readonly<Record<string, unknown>>;
}

/** A key a source's checkpoints were signed with, and why the verifier trusted it. */
export interface SourceKey {
  readonly keyId: string;
  readonly fromSeq?: number;
  /** `pinned`, `signed` or `first-record` (audit verify); `collector` (as the collector recorded it). */
  readonly trust: string;
  readonly signedBy?: string;
}

/** How one source's chain stood when the pack was built. */
export interface SourceCheck {
  readonly source: string;
  readonly kind: 'file' | 'collector';
  readonly ok: boolean;
  /** One line: `gatehouse audit verify`'s, or the collector's status and reason. */
  readonly summary: string;
  /** Records in the whole source (up to the first bad one, for a file). */
  readonly records: number;
  readonly checkpoints?: number;
  readonly sealed?: boolean;
  readonly lastSeq?: number;
  readonly checkpointSeq?: number | null;
  /** Records the writer could not write, as its `audit.loss` records count them (a file only). */
  readonly lost?: number;
  /** Lines that are not whole audit records (torn or altered), left out of every section. */
  readonly unreadable?: number;
  readonly keys: readonly SourceKey[];
  readonly firstBad?: { readonly seq: number; readonly reason: string };
}

/** `--policy FILE`: the bundle the builder was given as the one in force now. */
export interface CurrentPolicy {
  readonly file: string;
  /** policyDigest of its documents: the digest policy.change records carry. */
  readonly digest: string | undefined;
  readonly documents: readonly unknown[];
}

export interface EvidenceInput {
  /** [from, to): ISO 8601. */
  readonly period: { readonly from: string; readonly to: string };
  /** Every record of EVIDENCE_TYPES in the period, in source order. */
  readonly records: readonly EvidenceRecord[];
  /** policy.change records before the period's end, the period's and those before it. */
  readonly policyHistory: readonly EvidenceRecord[];
  readonly sources: readonly SourceCheck[];
  readonly policy?: CurrentPolicy;
}
