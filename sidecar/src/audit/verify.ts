import type { KeyObject } from 'node:crypto';
import { createReadStream } from 'node:fs';
import {
  checkpointSignatureValid,
  GENESIS,
  keyChangeSignatureValid,
  type ParsedLine,
  type ParsedRecord,
  parseChainLine,
  sha256Hex,
} from './chain.ts';
import { type HeadAnchor, parseHead } from './head.ts';
import { importPublicKey, keyIdOf } from './signing-key.ts';

export interface VerifyOptions {
  /**
   * Pin the signing key: base64 DER SPKI, as `publicKeyFromPem` returns it. The log's first key must
   * be it, and every later key it or signed over by the key before it.
   */
  readonly publicKey?: string;
  /** More keys to pin the same way (a log whose key was changed without the previous key's signature). */
  readonly publicKeys?: readonly string[];
  /** The text of the head anchor file: the log must hold the checkpoint it names. */
  readonly head?: string;
  /** Accept a log that does not end in a seal (one still being written). */
  readonly allowUnsealed?: boolean;
  /**
   * Continue a chain checked earlier (by another process, or before a restart) from the state that
   * `AuditLogVerifier.state()` gave then, so a log arriving in pieces is checked once, in order.
   */
  readonly resume?: VerifierState;
}

/** Where a verifier stands in a chain: plain data, so it can be stored and resumed elsewhere. */
export interface VerifierState {
  readonly expectedSeq: number;
  readonly prev: string;
  /** The key of the last log.open (base64 DER SPKI); undefined before the first. */
  readonly publicKey: string | undefined;
  readonly sealed: boolean;
  readonly unsigned: number;
  readonly torn: readonly Torn[];
  readonly awaitingRecovery: readonly Torn[];
}

/** What kind of damage stopped the chain: records missing, a record not what was written, or a key not trusted. */
export type ChainDamage = 'gap' | 'break' | 'foreign-key';

/** A key whose checkpoints the verifier accepted, from the `log.open` that brought it in. */
export interface TrustedKey {
  readonly keyId: string;
  readonly fromSeq: number;
  /**
   * Why it was trusted: `pinned` (given to verify), `signed` (the key before it signed the change, in
   * its log.open), or `first-record` (the key of the log's first record, taken on its word: this
   * proves the log consistent, not who wrote it).
   */
  readonly trust: 'pinned' | 'signed' | 'first-record';
  /** For `signed`: the key that signed the change. */
  readonly signedBy?: string;
}

export interface VerifyResult {
  readonly ok: boolean;
  /** Whole records read (up to the first bad one). */
  readonly records: number;
  readonly checkpoints: number;
  /** The log ends in a seal: a final checkpoint written on close. */
  readonly sealed: boolean;
  /** Records after the last checkpoint: chained, but not yet covered by a signature. */
  readonly unsigned: number;
  /** Damage that a writer found when it continued the log, and recorded. */
  readonly recoveries: readonly { readonly seq: number; readonly damage: string }[];
  /** Records that could not be written, as noted by `audit.loss` records. */
  readonly lost: number;
  /** Whether the head anchor was given and its checkpoint found. */
  readonly head: 'matched' | 'none';
  /** The signing keys, in the order the log brought them in, and why each was trusted. */
  readonly keys: readonly TrustedKey[];
  readonly firstBad?: {
    readonly seq: number;
    readonly line: number;
    readonly reason: string;
    /** True when the only problem is the missing seal: a cut, a crash, or a log still being written. */
    readonly unsealed?: boolean;
    readonly kind?: ChainDamage;
  };
}

export interface Torn {
  readonly line: number;
  readonly seq: number;
  readonly sha256: string;
  readonly reason: string;
}

/**
 * Checks a log line by line, in one pass and constant memory, so that logs larger than memory can
 * be verified: feed it each line's bytes (without the newline), then call `finish`.
 */
export class AuditLogVerifier {
  readonly #pinned: ReadonlySet<string>;
  readonly #allowUnsealed: boolean;
  readonly #head: HeadAnchor | undefined;
  readonly #headSeq: number | undefined;
  #headMatched = false;

  #line = 0;
  #expectedSeq = 1;
  #prev = GENESIS;
  #key: KeyObject | undefined;
  #publicKey: string | undefined;
  readonly #keys: TrustedKey[] = [];
  #started = false;
  #sealed = false;
  #records = 0;
  #checkpoints = 0;
  #unsigned = 0;
  #lost = 0;
  readonly #recoveries: { seq: number; damage: string }[] = [];
  /** Torn lines since the last record: each must be accounted for by a log.recover after the next log.open. */
  #torn: Torn[] = [];
  #awaitingRecovery: Torn[] = [];
  #firstBad: VerifyResult['firstBad'];
  /** Set when the problem of the record being checked is a key that is not trusted. */
  #untrusted = false;

  constructor(options: VerifyOptions = {}) {
    this.#pinned = new Set([
      ...(options.publicKey === undefined ? [] : [options.publicKey]),
      ...(options.publicKeys ?? []),
    ]);
    const resume = options.resume;
    if (resume) {
      this.#expectedSeq = resume.expectedSeq;
      this.#prev = resume.prev;
      this.#publicKey = resume.publicKey;
      this.#key = resume.publicKey === undefined ? undefined : importPublicKey(resume.publicKey);
      this.#started = resume.publicKey !== undefined;
      this.#sealed = resume.sealed;
      this.#unsigned = resume.unsigned;
      this.#torn = [...resume.torn];
      this.#awaitingRecovery = [...resume.awaitingRecovery];
    }
    this.#allowUnsealed = options.allowUnsealed ?? false;
    if (options.head !== undefined) {
      const head = parseHead(options.head);
      const checkpoint = 'invalid' in head ? undefined : parseChainLine(head.checkpoint);
      if ('invalid' in head || !checkpoint?.ok || checkpoint.record.type !== 'checkpoint') {
        this.#firstBad = { seq: 0, line: 0, reason: 'the head anchor is not a valid anchor of a checkpoint' };
      } else {
        this.#head = head;
        this.#headSeq = checkpoint.record.seq;
      }
    }
  }

  /** Where the chain stands now, for `VerifyOptions.resume`. */
  state(): VerifierState {
    return {
      expectedSeq: this.#expectedSeq,
      prev: this.#prev,
      publicKey: this.#publicKey,
      sealed: this.#sealed,
      unsigned: this.#unsigned,
      torn: [...this.#torn],
      awaitingRecovery: [...this.#awaitingRecovery],
    };
  }

  /** The first damage found so far, if any (what `finish` will report). */
  get firstBad(): VerifyResult['firstBad'] {
    return this.#firstBad;
  }

  push(bytes: Uint8Array): void {
    if (this.#firstBad) return;
    const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
    this.#accept(text, parseChainLine(text), bytes);
  }

  /**
   * `push` for a line already decoded, and parsed by `parseChainLine(text)` by a caller that needs
   * its fields too (the collector), so it is parsed once.
   */
  pushLine(text: string, parsed: ParsedLine = parseChainLine(text)): void {
    if (this.#firstBad) return;
    this.#accept(text, parsed, Buffer.from(text, 'utf8'));
  }

  #accept(text: string, parsed: ParsedLine, bytes: Uint8Array): void {
    this.#line++;
    if (!parsed.ok && !parsed.torn) {
      this.#firstBad = {
        seq: parsed.record?.seq ?? this.#expectedSeq,
        line: this.#line,
        reason: parsed.reason,
        kind: 'break',
      };
      return;
    }
    if (!parsed.ok) {
      // A crash can leave a torn line; the writer that continues the log records it, so a torn line
      // is accepted only when such a record accounts for it.
      this.#torn.push({
        line: this.#line,
        seq: this.#expectedSeq,
        sha256: sha256Hex(bytes),
        reason: parsed.reason,
      });
      return;
    }
    this.#check(parsed.record, parsed.hash, parsed.sig, text);
  }

  #check(record: ParsedRecord, hash: string, sig: string | undefined, text: string): void {
    const unaccounted = this.#torn[0] ?? this.#awaitingRecovery[0];
    if (unaccounted && record.type !== (this.#torn.length > 0 ? 'log.open' : 'log.recover')) {
      this.#firstBad = unaccountedFor(unaccounted);
      return;
    }
    this.#untrusted = false;
    const problem = this.#problem(record, hash, sig, text);
    if (problem) {
      const kind = this.#untrusted ? 'foreign-key' : record.seq > this.#expectedSeq ? 'gap' : 'break';
      this.#firstBad = { seq: record.seq, line: this.#line, reason: problem, kind };
      return;
    }
    this.#sealed = record.type === 'checkpoint' && record['final'] === true;
    this.#unsigned = record.type === 'checkpoint' ? 0 : this.#unsigned + 1;
    this.#prev = hash;
    this.#expectedSeq = record.seq + 1;
    this.#records++;
  }

  /** What is wrong with a well-formed record in its place in the chain, if anything. */
  #problem(record: ParsedRecord, hash: string, sig: string | undefined, text: string): string | undefined {
    const seq = record.seq;
    if (seq !== this.#expectedSeq) {
      return seq > this.#expectedSeq
        ? `seq ${seq} follows seq ${this.#expectedSeq - 1}: ${seq - this.#expectedSeq} record(s) removed`
        : `seq ${seq} follows seq ${this.#expectedSeq - 1}: a record inserted, repeated or moved`;
    }
    if (record.prev !== this.#prev) {
      return 'prev does not match the hash of the record before it: a record was changed, removed or moved';
    }
    if (!this.#started && record.type !== 'log.open') return 'the log does not start with a log.open record';
    if (this.#sealed && record.type !== 'log.open') return `a ${record.type} record follows the seal`;
    if (this.#headSeq === seq) {
      if (text !== this.#head!.checkpoint) return 'differs from the checkpoint that the head anchor holds';
      this.#headMatched = true;
    }
    switch (record.type) {
      case 'log.open':
        return this.#open(record);
      case 'log.recover':
        return this.#recover(record);
      case 'checkpoint':
        if (sig === undefined || !checkpointSignatureValid(seq, hash, sig, this.#key!)) {
          return 'checkpoint signature does not verify with the key of the log.open before it';
        }
        this.#checkpoints++;
        return undefined;
      case 'audit.loss':
        this.#lost += typeof record['lost'] === 'number' ? record['lost'] : 0;
        return undefined;
      default:
        return undefined;
    }
  }

  #open(record: ParsedRecord): string | undefined {
    const publicKey = record['publicKey'];
    const key = typeof publicKey === 'string' ? importPublicKey(publicKey) : undefined;
    if (!key || typeof publicKey !== 'string') return 'log.open carries no Ed25519 public key';
    const previous = !this.#started ? undefined : this.#sealed ? 'sealed' : 'unsealed';
    if (record['resume'] !== previous) {
      return `log.open says the log before it was ${record['resume'] ?? 'empty'}, but it was ${previous ?? 'empty'}`;
    }
    if (publicKey !== this.#publicKey) {
      const problem = this.#trust(record, publicKey);
      if (problem) return problem;
    }
    this.#key = key;
    this.#publicKey = publicKey;
    this.#started = true;
    this.#awaitingRecovery = this.#torn;
    this.#torn = [];
    return undefined;
  }

  /**
   * Takes a new signing key into trust, or says why not. The first key is the pinned one, or (with no
   * pin) the log's own word; every later one is pinned or signed over by the key before it, since
   * anyone who can write the file can start a `log.open` with a key of their own.
   */
  #trust(record: ParsedRecord, publicKey: string): string | undefined {
    const keyId = keyIdOf(publicKey);
    const pinned = this.#pinned.has(publicKey);
    if (this.#publicKey === undefined) {
      if (this.#pinned.size > 0 && !pinned) {
        this.#untrusted = true;
        return 'log.open carries a public key other than the pinned one';
      }
      this.#keys.push({ keyId, fromSeq: record.seq, trust: pinned ? 'pinned' : 'first-record' });
      return undefined;
    }
    const previousId = keyIdOf(this.#publicKey);
    const sig = record['keyChange'];
    if (
      typeof sig === 'string' &&
      keyChangeSignatureValid(record.seq, record.prev, publicKey, sig, this.#key!)
    ) {
      this.#keys.push({ keyId, fromSeq: record.seq, trust: 'signed', signedBy: previousId });
      return undefined;
    }
    if (pinned) {
      this.#keys.push({ keyId, fromSeq: record.seq, trust: 'pinned' });
      return undefined;
    }
    this.#untrusted = true;
    return (
      `log.open changes the signing key from ${previousId} to ${keyId} without ${sig === undefined ? 'a' : 'a valid'} signature by ${previousId}: ` +
      'anyone who can write the file could have written everything from here (pin the new key with --public-key if the change was legitimate)'
    );
  }

  #recover(record: ParsedRecord): string | undefined {
    const damage = String(record['damage']);
    if (damage === 'torn-line') {
      const expected = this.#awaitingRecovery.shift();
      if (!expected || record['sha256'] !== expected.sha256) {
        return 'log.recover names a torn line that is not the one before this log.open';
      }
    }
    this.#recoveries.push({ seq: record.seq, damage });
    return undefined;
  }

  /** `partial`: bytes after the last newline, if any (a line cut before its end). */
  finish(partial?: Uint8Array): VerifyResult {
    if (!this.#firstBad) this.#finalChecks(partial);
    return {
      ok: this.#firstBad === undefined,
      records: this.#records,
      checkpoints: this.#checkpoints,
      sealed: this.#sealed,
      unsigned: this.#unsigned,
      recoveries: this.#recoveries,
      lost: this.#lost,
      head: this.#headMatched ? 'matched' : 'none',
      keys: this.#keys,
      ...(this.#firstBad ? { firstBad: this.#firstBad } : {}),
    };
  }

  #finalChecks(partial: Uint8Array | undefined): void {
    const next = { seq: this.#expectedSeq, line: this.#line + 1 };
    const unaccounted = this.#torn[0] ?? this.#awaitingRecovery[0];
    if (unaccounted) {
      this.#firstBad = unaccountedFor(unaccounted);
    } else if (partial && partial.length > 0) {
      this.#firstBad = { ...next, reason: 'the last line is cut before its end' };
    } else if (this.#records === 0) {
      this.#firstBad = { ...next, reason: 'the log is empty: it does not start with a log.open record' };
    } else if (this.#headSeq !== undefined && !this.#headMatched) {
      this.#firstBad = {
        ...next,
        reason: `the log ends at seq ${this.#expectedSeq - 1}, but its head anchor holds checkpoint seq ${this.#headSeq}: the log was cut`,
      };
    } else if (!this.#sealed && !this.#allowUnsealed) {
      this.#firstBad = {
        ...next,
        reason: `the log ends at seq ${this.#expectedSeq - 1} without a seal: it was cut, or its writer crashed or is still running`,
        unsealed: true,
      };
    }
  }
}

function unaccountedFor(line: Torn): NonNullable<VerifyResult['firstBad']> {
  return {
    seq: line.seq,
    line: line.line,
    reason: `${line.reason}, and no log.recover record accounts for it`,
  };
}

/** Verifies a whole log held in memory. */
export function verifyAuditLog(log: string | Uint8Array, options: VerifyOptions = {}): VerifyResult {
  const bytes =
    typeof log === 'string'
      ? Buffer.from(log, 'utf8')
      : Buffer.from(log.buffer, log.byteOffset, log.byteLength);
  const verifier = new AuditLogVerifier(options);
  let start = 0;
  for (let newline = bytes.indexOf(0x0a); newline !== -1; newline = bytes.indexOf(0x0a, start)) {
    verifier.push(bytes.subarray(start, newline));
    start = newline + 1;
  }
  return verifier.finish(bytes.subarray(start));
}

/** Verifies a log file by streaming it. Rejects when the file cannot be read. */
export async function verifyAuditLogFile(path: string, options: VerifyOptions = {}): Promise<VerifyResult> {
  const verifier = new AuditLogVerifier(options);
  let carry: Buffer = Buffer.alloc(0);
  for await (const chunk of createReadStream(path)) {
    const data: Buffer = carry.length > 0 ? Buffer.concat([carry, chunk as Buffer]) : (chunk as Buffer);
    let start = 0;
    for (let newline = data.indexOf(0x0a); newline !== -1; newline = data.indexOf(0x0a, start)) {
      verifier.push(data.subarray(start, newline));
      start = newline + 1;
    }
    carry = Buffer.from(data.subarray(start));
  }
  return verifier.finish(carry);
}
