/**
 * The tamper-evident audit log: JSON lines chained by SHA-256 (see chain.ts), with Ed25519-signed
 * checkpoints every N records or T milliseconds, a seal (a final checkpoint) on close, and a head
 * anchor file holding the latest checkpoint.
 *
 * Threat model, honestly:
 * - Someone who edits, removes, inserts or reorders records in the file, or cuts it, is detected by
 *   `gatehouse audit verify`: the chain breaks, a signature fails, the log stops before the
 *   checkpoint its head anchor names, or it ends without a seal.
 * - Records written after the last checkpoint are chained but not yet signed: within that window
 *   (at most N records or T ms) whoever can write the file can drop or rewrite the newest records.
 * - Someone who can rewrite both the log and its head file can cut the log back to any earlier
 *   checkpoint and copy that checkpoint into the head; the cut then looks like a crash after that
 *   checkpoint (the log ends without a seal: verify fails, but cannot tell a cut from a crash).
 * - A `log.open` that changes the signing key must carry a signature by the previous key (made when
 *   `previousSigningKeyFile` names it), or verify rejects the log from there unless the new key is
 *   pinned: so nobody can splice a key of their own into the middle of a log. A key made afresh at
 *   each start (no `signingKeyFile`) cannot sign for the next one: such a log verifies only up to
 *   its first restart. A log rewritten whole from its first record with a key of one's own is caught
 *   only by pinning the key (`verify --public-key`); an attacker who can read the key file (in the
 *   same pod, usually) can forge anything.
 * So the anchor that survives a compromised host is off the host: every record, checkpoints
 * included, also goes to stdout through pino for an external collector, and a copy of the
 * checkpoints kept elsewhere proves what the file held up to each of them.
 *
 * One writer at a time: the file is locked (`FILE.lock`, see exclusive-lock.ts) before anything is
 * written, so a second process given the same file refuses to start instead of forking the chain.
 *
 * Writes are group commits: records wait in memory until the write before them ends (statements
 * wait for theirs: `recordBefore`), so many sessions' records share one write; records nobody waits
 * for wait up to BATCH_DELAY_MS for company. Memory waiting for the disk is bounded. When a write
 * fails (ENOSPC), everything from the failed write on is lost: its waiters learn it at once, `healthy`
 * turns false (the proxy then refuses statements), the file is cut back to its last whole record,
 * and every REPAIR_INTERVAL_MS the log tries to write an `audit.loss` record counting what was lost;
 * once that write succeeds, the log is healthy again.
 */

import { writeSync } from 'node:fs';
import { type FileHandle, open, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { UserError } from '../errors.ts';
import { acquireExclusiveLock, type ExclusiveLock, LockHeldError } from '../exclusive-lock.ts';
import {
  chainSignedText,
  chainText,
  chainTextBytes,
  GENESIS,
  keyChangeSignature,
  parseChainLine,
  sha256Hex,
} from './chain.ts';
import type { AuditEvent, AuditSink } from './events.ts';
import { type HeadAnchor, parseHead, readHeadFile, writeHeadFile } from './head.ts';
import { auditFields, auditText } from './record.ts';
import { loadSigningKey, type SigningKey } from './signing-key.ts';
import { readLogTail } from './tail.ts';

export interface AuditLogOptions {
  /** JSON-lines file to append to; a chain already in it is continued. */
  readonly file?: string;
  /** Also log every record through `logger` at info level, as `{ audit: record }`, once it is written. */
  readonly stdout: boolean;
  /** PKCS#8 PEM Ed25519 private key; without it a key is made for this run only. */
  readonly signingKeyFile?: string;
  /** The key that signed the log so far, when `signingKeyFile` replaces it: it signs the change. */
  readonly previousSigningKeyFile?: string;
  readonly checkpointEveryRecords: number;
  readonly checkpointIntervalMs: number;
  readonly logger: Logger;
  /** Where the head anchor goes; `FILE.head` by default. Only regular files get one. */
  readonly headFile?: string;
  /** Bytes that may wait for the disk (queued plus being written) before records are refused; 8 MiB by default. */
  readonly maxPendingBytes?: number;
  /** fdatasync after every write, before its waiters go on: survives power loss, costs a disk flush per write. */
  readonly syncEachWrite?: boolean;
  /** Called with each record's line once it is written (in order): for a sink that ships copies. */
  readonly onWritten?: (line: string) => void;
}

export interface AuditLog extends AuditSink {
  /** Records (of every type) written to the file so far. */
  readonly written: number;
  /** Records that could not be written since the log was opened. */
  readonly lost: number;
  /** Resolves once everything recorded so far has been written (or has failed to be). */
  flush(): Promise<void>;
}

const DEFAULT_MAX_PENDING_BYTES = 8 * 1024 * 1024;
/** How long a record nobody waits for may wait in memory for others to share its write. */
const BATCH_DELAY_MS = 5;
/** A batch this large is written at once. */
const BATCH_BYTES = 64 * 1024;
/** A synchronous write slower than this means the disk pushes back (dirty-page throttling, a slow volume). */
const SLOW_SYNC_WRITE_MS = 10;
/** How long writes then go through the thread pool before one is tried on the spot again. */
const SLOW_DISK_BACKOFF_MS = 5000;

/** Records taken for one write, and where the chain and the file stand once they are written. */
interface Batch {
  readonly lines: readonly Queued[];
  readonly anchor: HeadAnchor | undefined;
  readonly end: ChainPoint;
}
/** How often a log whose write failed tries again (by writing its `audit.loss` record). */
export const REPAIR_INTERVAL_MS = 200;

export async function openAuditLog(options: AuditLogOptions): Promise<AuditLog> {
  if (options.file === undefined && !options.stdout) {
    throw new UserError('audit: no destination: give a file, stdout, or both');
  }
  for (const name of ['checkpointEveryRecords', 'checkpointIntervalMs'] as const) {
    if (!Number.isSafeInteger(options[name]) || options[name] < 1) {
      throw new UserError(`audit: ${name} must be a positive integer`);
    }
  }
  const key = await loadSigningKey(options.signingKeyFile);
  const previous =
    options.previousSigningKeyFile === undefined
      ? undefined
      : await loadSigningKey(options.previousSigningKeyFile);
  const log = new ChainedAuditLog(options, key, previous);
  await log.start();
  return log;
}

interface Recovery {
  readonly damage: 'torn-line' | 'head-mismatch';
  readonly [field: string]: unknown;
}

/**
 * A record waiting for the disk. Its place (`seq`) is given when it is recorded, its `prev` and hash
 * when its batch is taken for a write (`#chainRecord`): hashing happens once per batch, at the end of
 * the event loop's turn, off the path of the statement that recorded it; the chain is the same.
 */
interface Queued {
  readonly seq: number;
  /** Its fields after seq and prev as JSON text without braces (`"time":...,"type":...`). */
  readonly text: string;
  /** The line, once chained; '' for the newline that ends a torn line. */
  line: string | undefined;
  /** The record's type; undefined for the newline that ends a torn line. */
  readonly type: string | undefined;
  /** A checkpoint: signed when chained. */
  readonly signed: boolean;
  /** With stdout on, its fields for the stdout copy made once it is written; they gain prev and hash when chained. */
  readonly fields: Record<string, unknown> | undefined;
  /** Told whether the line was written, for a statement that waits for its record. */
  readonly accepted: ((written: boolean) => void) | undefined;
}

/** Where the chain stands after some line: to continue from it when what follows is lost. */
interface ChainPoint {
  readonly seq: number;
  readonly prev: string;
  readonly offset: number;
}

class ChainedAuditLog implements AuditLog {
  readonly #options: AuditLogOptions;
  readonly #key: SigningKey;
  readonly #previousKey: SigningKey | undefined;
  readonly #logger: Logger;
  readonly #maxPendingBytes: number;

  /** The last place given to a record. */
  #seq = 0;
  /** The hash of the last record chained: records queued since have their place but not yet their prev. */
  #prev = GENESIS;
  #sinceCheckpoint = 0;

  #handle: FileHandle | undefined;
  /** Held while the file is open: a second writer would fork the chain (verify: TAMPERED). */
  #lock: ExclusiveLock | undefined;
  /** A regular file, which can be cut back to its last whole record after a failed write. */
  #regular = false;
  #headFile: string | undefined;
  /** File offset just after everything queued so far: where the next line will land. */
  #fileEnd = 0;
  /** The chain just after the last line written. */
  #written: ChainPoint = { seq: 0, prev: GENESIS, offset: 0 };
  #pending: Queued[] = [];
  #pendingBytes = 0;
  /** Queued lines whose writer waits for them: they are written without the batching delay. */
  #pendingWaiters = 0;
  #inFlightBytes = 0;
  /** The latest checkpoint queued but not yet written, and where it lands. */
  #unanchored: { readonly offset: number; readonly record: Queued } | undefined;
  /** The latest checkpoint written but not yet synced and copied to the head file. */
  #toAnchor: HeadAnchor | undefined;
  #writing: Promise<void> | undefined;
  #anchoring: Promise<void> | undefined;
  #batchTimer: NodeJS.Timeout | undefined;
  #batchImmediate: NodeJS.Immediate | undefined;

  #failure: string | undefined;
  /** A write failed: nothing is written until the loss is (see #repair). */
  #broken = false;
  /** The file cannot be written at all (could not be opened, or is no regular file and a write failed). */
  #dead = false;
  #repairTimer: NodeJS.Timeout | undefined;
  #repairing: Promise<void> | undefined;
  #overflowing = false;
  #lost = 0;
  /** Losses not yet written down in an `audit.loss` record: how many of each type, and since when. */
  #unrecordedLoss = new Map<string, number>();
  #unrecordedSince: string | undefined;
  #unrecordedReason: string | undefined;
  #writtenRecords = 0;
  #closed = false;
  #closing: Promise<void> | undefined;
  #checkpointTimer: NodeJS.Timeout | undefined;
  /** Until when (performance.now()) records are written through the thread pool: see #canWriteNow. */
  #slowDiskUntil = 0;
  #slowDiskLogged = Number.NEGATIVE_INFINITY;

  constructor(options: AuditLogOptions, key: SigningKey, previousKey: SigningKey | undefined) {
    this.#options = options;
    this.#key = key;
    this.#previousKey = previousKey;
    this.#logger = options.logger;
    this.#maxPendingBytes = options.maxPendingBytes ?? DEFAULT_MAX_PENDING_BYTES;
  }

  get healthy(): boolean {
    return this.#failure === undefined;
  }

  get failure(): string | undefined {
    return this.#failure;
  }

  get written(): number {
    return this.#writtenRecords;
  }

  get lost(): number {
    return this.#lost;
  }

  async start(): Promise<void> {
    const file = this.#options.file;
    let resume: 'sealed' | 'unsealed' | undefined;
    let lastKeyId: string | undefined;
    const recoveries: Recovery[] = [];
    if (file !== undefined) {
      try {
        this.#lock = await lockUnlessSpecial(file);
        const found = await this.#openFile(file, recoveries);
        resume = found.resume;
        lastKeyId = found.lastKeyId;
        if (found.terminatePartialLine) {
          this.#queue({
            seq: 0,
            text: '',
            line: '',
            type: undefined,
            signed: false,
            fields: undefined,
            accepted: undefined,
          });
        }
      } catch (error) {
        await this.#handle?.close().catch(() => undefined);
        this.#handle = undefined;
        if (error instanceof LockHeldError) throw error;
        this.#die(`audit file ${file}: ${describeError(error)}`);
        return;
      }
    }
    this.#appendFields(this.#openFields(resume, lastKeyId));
    for (const recovery of recoveries) this.#appendFields({ type: 'log.recover', ...recovery });
    // Signs the point where this run continues the chain and anchors the head to it at once.
    this.#checkpoint(false);
    this.#checkpointTimer = setInterval(() => {
      if (this.#sinceCheckpoint > 0 && !this.#broken && !this.#dead) this.#checkpoint(false);
    }, this.#options.checkpointIntervalMs);
    this.#checkpointTimer.unref();
    await this.flush();
  }

  /**
   * The `log.open` fields. A log signed so far by another key gets a signature of the change by that
   * key when this run has it; without one, verify trusts the records from here only if this key is pinned.
   */
  #openFields(
    resume: 'sealed' | 'unsealed' | undefined,
    lastKeyId: string | undefined,
  ): Record<string, unknown> {
    const fields: Record<string, unknown> = {
      type: 'log.open',
      version: 1,
      keyId: this.#key.keyId,
      publicKey: this.#key.publicKey,
      host: hostname(),
      pid: process.pid,
      resume,
    };
    if (lastKeyId === undefined || lastKeyId === this.#key.keyId) return fields;
    const previous = this.#previousKey;
    if (previous?.keyId === lastKeyId) {
      fields['previousKeyId'] = previous.keyId;
      fields['keyChange'] = keyChangeSignature(
        this.#seq + 1,
        this.#prev,
        this.#key.publicKey,
        previous.privateKey,
      );
      this.#logger.info(
        { previousKeyId: previous.keyId, keyId: this.#key.keyId },
        'audit signing key changed: the previous key signs the change',
      );
    } else {
      this.#logger.warn(
        { file: this.#options.file, previousKeyId: lastKeyId, keyId: this.#key.keyId },
        this.#options.signingKeyFile === undefined
          ? 'audit log continues with a key made for this run only: verify rejects it from here unless that key is pinned; configure audit.signingKeyFile'
          : 'audit log continues with a new signing key that the previous key did not sign (set audit.previousSigningKeyFile): verify rejects it from here unless the new key is pinned',
      );
    }
    return fields;
  }

  /** Opens the file and finds where its chain continues; reports damage instead of hiding it. */
  async #openFile(
    file: string,
    recoveries: Recovery[],
  ): Promise<{
    resume: 'sealed' | 'unsealed' | undefined;
    lastKeyId: string | undefined;
    terminatePartialLine: boolean;
  }> {
    const handle = await open(file, 'a+', 0o640);
    this.#handle = handle;
    const stat = await handle.stat();
    if (!stat.isFile()) return { resume: undefined, lastKeyId: undefined, terminatePartialLine: false };
    this.#regular = true;
    this.#headFile = this.#options.headFile ?? `${file}.head`;
    this.#fileEnd = stat.size;
    const tail =
      stat.size === 0
        ? { last: undefined, lastKeyId: undefined, damaged: [] }
        : await readLogTail(handle, stat.size);
    if (tail.last) {
      this.#seq = tail.last.record.seq;
      this.#prev = tail.last.hash;
    } else if (tail.damaged.length > 1 || tail.damaged[0]?.terminated) {
      // Only a crash during the very first write leaves a log without a whole record, and it leaves
      // one line without its newline: anything else is some other file.
      throw new Error('it holds no audit record: not an audit log');
    }
    this.#written = { seq: this.#seq, prev: this.#prev, offset: stat.size };
    for (const line of tail.damaged) {
      recoveries.push({
        damage: 'torn-line',
        offset: line.offset,
        bytes: line.bytes.length,
        sha256: sha256Hex(line.bytes),
      });
      this.#logger.error(
        { file, offset: line.offset, bytes: line.bytes.length },
        'audit file ends in a torn line (crash during a write?): recording it as damage',
      );
    }
    const mismatch = await this.#checkHead(handle, stat.size);
    if (mismatch) {
      recoveries.push({ damage: 'head-mismatch', detail: mismatch });
      this.#logger.error(
        { file, headFile: this.#headFile, problem: mismatch },
        'audit file does not hold the checkpoint its head anchor names: recording it as damage',
      );
    }
    const last = tail.last?.record;
    const resume =
      last === undefined
        ? undefined
        : last.type === 'checkpoint' && last['final'] === true
          ? 'sealed'
          : 'unsealed';
    const lastLine = tail.damaged.at(-1);
    return {
      resume,
      lastKeyId: tail.lastKeyId,
      terminatePartialLine: lastLine !== undefined && !lastLine.terminated,
    };
  }

  /** Why the log does not hold the checkpoint named by its head anchor, or undefined when it does. */
  async #checkHead(handle: FileHandle, size: number): Promise<string | undefined> {
    const text = await readHeadFile(this.#headFile!);
    if (text === undefined) return undefined;
    const anchor = parseHead(text);
    if ('invalid' in anchor) return `head anchor is ${anchor.invalid}`;
    const parsed = parseChainLine(anchor.checkpoint);
    const seq = parsed.ok ? parsed.record.seq : 'unknown';
    const expected = Buffer.from(anchor.checkpoint, 'utf8');
    if (anchor.offset + expected.length > size) {
      return `head anchor names checkpoint seq ${seq} at byte ${anchor.offset}, but the log has only ${size} bytes: it was cut`;
    }
    const found = Buffer.alloc(expected.length);
    await handle.read(found, 0, found.length, anchor.offset);
    if (!found.equals(expected)) {
      return `head anchor names checkpoint seq ${seq} at byte ${anchor.offset}, but the log holds other bytes there: it was rewritten`;
    }
    return undefined;
  }

  record(event: AuditEvent): void {
    if (this.#refuses(event)) return;
    this.#appendEvent(event, undefined);
    if (++this.#sinceCheckpoint >= this.#options.checkpointEveryRecords) this.#checkpoint(false);
  }

  recordBefore(event: AuditEvent): Promise<boolean> | boolean {
    if (this.#options.file === undefined) {
      this.record(event);
      return true;
    }
    if (this.#refuses(event)) return false;
    const accepted = new Promise<boolean>((resolve) => this.#appendEvent(event, resolve));
    if (++this.#sinceCheckpoint >= this.#options.checkpointEveryRecords) this.#checkpoint(false);
    return accepted;
  }

  /**
   * Whether the next batch is written synchronously, at the end of the event loop's turn that queued
   * it: the statements waiting for it then go to the database in that turn, instead of after a
   * thread-pool round trip (which halved a busy proxy's throughput), and every record of the turn
   * still shares one write. Only for regular files, only without a disk flush per write (that stays off the event loop), and
   * not while the disk is slow: a write that stalled sends the next ones to the thread pool for a
   * while, so a congested disk delays statements without freezing the proxy's other work.
   */
  #canWriteNow(): boolean {
    return (
      this.#handle !== undefined &&
      // A pipe or a device may block for as long as its reader likes: only regular files.
      this.#regular &&
      this.#writing === undefined &&
      !this.#broken &&
      !this.#dead &&
      !this.#options.syncEachWrite &&
      performance.now() >= this.#slowDiskUntil
    );
  }

  /** Writes everything queued now, synchronously. */
  #writeNow(): void {
    const batch = this.#takeBatch();
    const started = performance.now();
    let failure: unknown;
    try {
      const data = Buffer.from(`${batch.lines.map((q) => q.line).join('\n')}\n`, 'utf8');
      let offset = 0;
      while (offset < data.length) offset += writeSync(this.#handle!.fd, data, offset, data.length - offset);
    } catch (error) {
      failure = error;
    }
    const took = performance.now() - started;
    if (took > SLOW_SYNC_WRITE_MS) {
      const now = performance.now();
      this.#slowDiskUntil = now + SLOW_DISK_BACKOFF_MS;
      // Once a minute at most: a disk that stays slow would otherwise fill the log with this line.
      if (now - this.#slowDiskLogged >= 60_000) {
        this.#slowDiskLogged = now;
        this.#logger.warn(
          { writeMs: Math.round(took), backoffMs: SLOW_DISK_BACKOFF_MS },
          'audit write stalled: writing through the thread pool for a while',
        );
      }
    }
    this.#endBatch(batch, failure);
  }

  /** Loses the record when the log takes none now; true when it did. */
  #refuses(event: AuditEvent): boolean {
    if (this.#closed || this.#broken || this.#dead) {
      this.#lose(auditFields(event), this.#closed ? 'the audit log is closed' : this.#failure);
      return true;
    }
    if (this.#pendingBytes + this.#inFlightBytes >= this.#maxPendingBytes) {
      this.#overflow();
      this.#lose(auditFields(event), this.#failure);
      return true;
    }
    return false;
  }

  async flush(): Promise<void> {
    for (;;) {
      if (this.#writing) await this.#writing;
      else if (this.#repairing) await this.#repairing;
      else if (this.#anchoring) await this.#anchoring;
      else if (this.#pending.length > 0 && !this.#broken && !this.#dead) this.#startWrite();
      else return;
    }
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#checkpointTimer);
    await this.flush();
    // One last try to write down what was lost; the seal follows only a log that is whole.
    if (this.#broken) await this.#repair();
    clearInterval(this.#repairTimer);
    if (!this.#broken && !this.#dead) {
      this.#recordLoss();
      this.#checkpoint(true);
    }
    await this.flush();
    try {
      await this.#handle?.close();
    } catch (error) {
      this.#die(`audit file ${this.#options.file}: ${describeError(error)}`);
    }
    this.#lock?.release();
    if (this.#lost > 0) {
      this.#logger.error(
        { lost: this.#lost, failure: this.#failure },
        'audit records were lost while this log was open',
      );
    }
  }

  /**
   * Gives a record its place in the chain (seq) and its time; its fields are serialised now, its prev
   * and hash come when its batch is taken (#chainRecord). `text` is its type's fields as JSON text.
   */
  #place(
    type: string,
    text: string,
    signed: boolean,
    typeFields: (() => Record<string, unknown>) | undefined,
    accepted: ((written: boolean) => void) | undefined,
  ): Queued {
    const seq = ++this.#seq;
    const time = isoNow();
    return {
      seq,
      text: `"time":"${time}",${text}`,
      line: undefined,
      type,
      signed,
      // Only the stdout copy needs them as an object: pino serialises them again.
      fields: this.#options.stdout ? { seq, prev: '', time, ...typeFields?.() } : undefined,
      accepted,
    };
  }

  /** Hashes (and for a checkpoint signs) a placed record after the last one chained. */
  #chainRecord(record: Queued): void {
    if (record.signed) {
      const { line, hash, sig } = chainSignedText(record.seq, this.#prev, record.text, this.#key.privateKey);
      record.line = line;
      if (record.fields) Object.assign(record.fields, { prev: this.#prev, hash, sig });
      this.#prev = hash;
    } else {
      const { line, hash } = chainText(record.seq, this.#prev, record.text);
      record.line = line;
      if (record.fields) Object.assign(record.fields, { prev: this.#prev, hash });
      this.#prev = hash;
    }
  }

  #appendEvent(event: AuditEvent, accepted: ((written: boolean) => void) | undefined): void {
    this.#append(this.#place(event.type, auditText(event), false, () => auditFields(event), accepted));
  }

  #appendFields(typeFields: Record<string, unknown>): void {
    this.#append(this.#placeFields(typeFields));
  }

  #placeFields(typeFields: Record<string, unknown>): Queued {
    const text = JSON.stringify(typeFields).slice(1, -1);
    return this.#place(String(typeFields['type']), text, false, () => typeFields, undefined);
  }

  #append(record: Queued): void {
    if (this.#queue(record)) return;
    // No file: stdout is the only destination, and takes the record at once.
    this.#chainRecord(record);
    this.#copy(record);
    record.accepted?.(true);
  }

  /** Hands a written record to its copies: stdout (through pino) and `onWritten`. */
  #copy(record: Queued): void {
    if (record.fields) this.#logger.info({ audit: record.fields });
    if (record.type !== undefined && record.line) this.#options.onWritten?.(record.line);
  }

  #checkpointRecord(final: boolean): Queued {
    this.#sinceCheckpoint = 0;
    const typeFields = {
      type: 'checkpoint',
      keyId: this.#key.keyId,
      lost: this.#lost,
      final: final || undefined,
    };
    return this.#place(
      'checkpoint',
      JSON.stringify(typeFields).slice(1, -1),
      true,
      () => typeFields,
      undefined,
    );
  }

  #checkpoint(final: boolean): void {
    const offset = this.#fileEnd;
    const record = this.#checkpointRecord(final);
    if (this.#queue(record)) {
      if (this.#headFile !== undefined) this.#unanchored = { offset, record };
    } else {
      this.#chainRecord(record);
      this.#copy(record);
    }
  }

  /** Puts a record (or, with no type, the newline that ends a torn line) in the next write. */
  #queue(record: Queued): boolean {
    if (this.#handle === undefined) return false;
    const bytes = record.type === undefined ? 1 : chainTextBytes(record.seq, record.text, record.signed) + 1;
    this.#pending.push(record);
    this.#pendingBytes += bytes;
    if (record.accepted) this.#pendingWaiters++;
    this.#fileEnd += bytes;
    this.#schedule();
    return true;
  }

  /**
   * Group commit: a line someone waits for goes out as soon as the write before it has ended (after
   * the other events of this turn of the event loop, which join it); others wait a few milliseconds
   * for company, since a write per record costs a thread-pool round trip each.
   */
  #schedule(): void {
    if (this.#writing || this.#broken || this.#dead || this.#pending.length === 0) return;
    if (this.#pendingWaiters > 0 || this.#pendingBytes >= BATCH_BYTES || this.#closed) {
      if (this.#batchImmediate === undefined) this.#batchImmediate = setImmediate(this.#startWrite);
    } else {
      this.#batchTimer ??= setTimeout(this.#startWrite, BATCH_DELAY_MS);
    }
  }

  readonly #startWrite = (): void => {
    clearTimeout(this.#batchTimer);
    clearImmediate(this.#batchImmediate);
    this.#batchTimer = undefined;
    this.#batchImmediate = undefined;
    if (this.#writing || this.#broken || this.#dead || this.#pending.length === 0) return;
    if (this.#canWriteNow()) this.#writeNow();
    else this.#writing = this.#writeBatch();
  };

  async #writeBatch(): Promise<void> {
    const batch = this.#takeBatch();
    let failure: unknown;
    try {
      await writeAll(this.#handle!, Buffer.from(`${batch.lines.map((q) => q.line).join('\n')}\n`, 'utf8'));
      if (this.#options.syncEachWrite) await this.#handle!.datasync();
    } catch (error) {
      failure = error;
    }
    this.#endBatch(batch, failure);
    this.#writing = undefined;
    this.#schedule();
  }

  /**
   * Takes what is queued for one write, chained, with the chain point the file reaches once it is
   * written. Every record queued has its place, so after chaining them `#seq` and `#prev` agree.
   */
  #takeBatch(): Batch {
    for (const record of this.#pending) if (record.line === undefined) this.#chainRecord(record);
    const unanchored = this.#unanchored;
    const batch: Batch = {
      lines: this.#pending,
      anchor: unanchored && { offset: unanchored.offset, checkpoint: unanchored.record.line! },
      end: { seq: this.#seq, prev: this.#prev, offset: this.#fileEnd },
    };
    clearTimeout(this.#batchTimer);
    clearImmediate(this.#batchImmediate);
    this.#batchTimer = undefined;
    this.#batchImmediate = undefined;
    this.#inFlightBytes = this.#pendingBytes;
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#pendingWaiters = 0;
    this.#unanchored = undefined;
    return batch;
  }

  #endBatch(batch: Batch, failure: unknown): void {
    this.#inFlightBytes = 0;
    if (failure === undefined) {
      this.#written = batch.end;
      for (const queued of batch.lines) {
        if (queued.type !== undefined) this.#writtenRecords++;
        this.#copy(queued);
        queued.accepted?.(true);
      }
      if (batch.anchor) {
        this.#toAnchor = batch.anchor;
        this.#anchoring ??= this.#anchor(this.#handle!);
      }
    } else {
      this.#break(`audit file ${this.#options.file}: ${describeError(failure)}`, batch.lines);
    }
    if (this.#overflowing && this.#pendingBytes <= this.#maxPendingBytes / 2 && !this.#broken) {
      this.#overflowing = false;
      this.#failure = undefined;
      this.#recordLoss();
      this.#logger.warn({ lost: this.#lost }, 'audit writes caught up with the proxy');
    }
  }

  /**
   * Syncs the log, then copies the checkpoint into the head file, so the anchor never names a
   * checkpoint that a power cut could take back out of the log. Runs beside the appends, which need
   * not wait for the disk to sync; checkpoints written meanwhile replace the one waiting. A head that
   * cannot be written stays at an older checkpoint, which the log still holds: nothing is lost.
   */
  async #anchor(handle: FileHandle): Promise<void> {
    while (this.#toAnchor && !this.#dead) {
      const anchor = this.#toAnchor;
      this.#toAnchor = undefined;
      try {
        await handle.datasync();
        await writeHeadFile(this.#headFile!, anchor);
      } catch (error) {
        this.#logger.error(
          { headFile: this.#headFile, err: describeError(error) },
          'audit head anchor not updated: it names an older checkpoint until the next one is written',
        );
        break;
      }
    }
    this.#anchoring = undefined;
  }

  /**
   * A write failed: it and everything queued after it are lost (their waiters hear it now), and the
   * chain continues from the last line written. The file is cut back there before the next write,
   * since the failed one may have left part of a line.
   */
  #break(failure: string, batch: readonly Queued[]): void {
    const lost = [...batch, ...this.#pending];
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#pendingWaiters = 0;
    this.#unanchored = undefined;
    this.#seq = this.#written.seq;
    this.#prev = this.#written.prev;
    this.#fileEnd = this.#written.offset;
    this.#failure = failure;
    this.#logger.error(
      { failure, lost: lost.filter((q) => q.type !== undefined).length },
      this.#regular
        ? 'audit file write failed: refusing records until the loss can be written down'
        : 'audit file write failed: no further records will be written to it',
    );
    if (this.#regular) {
      this.#broken = true;
      this.#repairTimer ??= setInterval(() => void this.#repair(), REPAIR_INTERVAL_MS);
      this.#repairTimer.unref();
      // At once: the first try cuts the file back, even when it cannot write yet.
      void this.#repair();
    } else this.#dead = true;
    for (const queued of lost) {
      if (queued.type !== undefined) this.#lose(JSON.parse(`{${queued.text}}`), failure);
      queued.accepted?.(false);
    }
  }

  /** Cuts the file back to its last whole record and writes down the loss; healthy again when that works. */
  #repair(): Promise<void> {
    this.#repairing ??= (async () => {
      const handle = this.#handle!;
      const from = this.#written;
      const loss = this.#lossFields();
      const taken = this.#unrecordedLoss;
      const takenSince = this.#unrecordedSince;
      const takenReason = this.#unrecordedReason;
      // Records lost while this write is on its way are counted for the next note.
      this.#unrecordedLoss = new Map();
      this.#unrecordedSince = undefined;
      this.#unrecordedReason = undefined;
      // Nothing is queued while the log is broken: these two follow the last record written.
      const noted = loss && this.#placeFields(loss);
      if (noted) this.#chainRecord(noted);
      const offset = from.offset + (noted ? Buffer.byteLength(noted.line!) + 1 : 0);
      const sealed = this.#checkpointRecord(false);
      this.#chainRecord(sealed);
      try {
        await handle.truncate(from.offset);
        const lines = noted ? `${noted.line}\n${sealed.line}\n` : `${sealed.line}\n`;
        await writeAll(handle, Buffer.from(lines, 'utf8'));
      } catch {
        // The failed write may have left part of a line: cut it off again.
        await handle.truncate(from.offset).catch(() => undefined);
        this.#seq = from.seq;
        this.#prev = from.prev;
        for (const [type, count] of this.#unrecordedLoss) taken.set(type, (taken.get(type) ?? 0) + count);
        this.#unrecordedLoss = taken;
        this.#unrecordedSince = takenSince ?? this.#unrecordedSince;
        this.#unrecordedReason = takenReason ?? this.#unrecordedReason;
        return;
      }
      this.#written = {
        seq: this.#seq,
        prev: this.#prev,
        offset: offset + Buffer.byteLength(sealed.line!) + 1,
      };
      this.#fileEnd = this.#written.offset;
      this.#writtenRecords += noted ? 2 : 1;
      if (noted) this.#copy(noted);
      this.#copy(sealed);
      this.#broken = false;
      this.#failure = undefined;
      clearInterval(this.#repairTimer);
      this.#repairTimer = undefined;
      this.#recordLoss();
      this.#logger.warn(
        { lost: this.#lost },
        'audit file writable again: the loss is written down, records are taken again',
      );
      if (this.#headFile !== undefined) {
        this.#toAnchor = { offset, checkpoint: sealed.line! };
        this.#anchoring ??= this.#anchor(handle);
      }
    })().finally(() => {
      this.#repairing = undefined;
    });
    return this.#repairing;
  }

  /** The fields of an `audit.loss` record for the losses not yet written down; undefined when none. */
  #lossFields(): Record<string, unknown> | undefined {
    if (this.#unrecordedLoss.size === 0) return undefined;
    let lost = 0;
    for (const count of this.#unrecordedLoss.values()) lost += count;
    return {
      type: 'audit.loss',
      lost,
      byType: Object.fromEntries(this.#unrecordedLoss),
      since: this.#unrecordedSince,
      reason: this.#unrecordedReason ?? 'the audit file could not keep up',
    };
  }

  /** Writes into the chain how many records were lost since the last such note. */
  #recordLoss(): void {
    const fields = this.#lossFields();
    if (!fields) return;
    this.#appendFields(fields);
    this.#unrecordedLoss = new Map();
    this.#unrecordedSince = undefined;
    this.#unrecordedReason = undefined;
  }

  #overflow(): void {
    if (this.#overflowing) return;
    this.#overflowing = true;
    this.#failure = `audit file ${this.#options.file}: ${this.#pendingBytes + this.#inFlightBytes} bytes wait for the disk (limit ${this.#maxPendingBytes}): it is slower than the proxy`;
    this.#logger.error(
      { failure: this.#failure },
      'audit log cannot keep up: refusing records until it does',
    );
  }

  /** The file cannot be written at all: every record from now on is lost. */
  #die(failure: string): void {
    this.#dead = true;
    this.#failure = failure;
    this.#logger.error({ failure }, 'audit file cannot be written: no further records will be written to it');
  }

  #lose(fields: Record<string, unknown>, why: string | undefined): void {
    const type = String(fields['type']);
    this.#lost++;
    this.#unrecordedLoss.set(type, (this.#unrecordedLoss.get(type) ?? 0) + 1);
    this.#unrecordedSince ??= new Date().toISOString();
    this.#unrecordedReason ??= why;
    // The record's place in the chain went to a later one: only its content is worth logging.
    const { seq: _seq, prev: _prev, hash: _hash, sig: _sig, ...content } = fields;
    this.#logger.error(
      { auditNotWritten: content, failure: why },
      'audit record not written to the audit file',
    );
  }
}

/**
 * Locks a regular file (or one still to be created) against a second writer; a device or pipe
 * (/dev/stdout, a FIFO to a collector) is not a chain another run could fork.
 */
async function lockUnlessSpecial(file: string): Promise<ExclusiveLock | undefined> {
  try {
    if (!(await stat(file)).isFile()) return undefined;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  return acquireExclusiveLock(file, `the audit log ${file}`);
}

async function writeAll(handle: FileHandle, data: Buffer): Promise<void> {
  let offset = 0;
  while (offset < data.length) {
    const { bytesWritten } = await handle.write(data, offset, data.length - offset);
    offset += bytesWritten;
  }
}

/** The time of a record; records of one millisecond share its text. */
let isoMs = Number.NaN;
let isoText = '';
function isoNow(): string {
  const now = Date.now();
  if (now !== isoMs) {
    isoMs = now;
    isoText = new Date(now).toISOString();
  }
  return isoText;
}

function describeError(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  const message = error instanceof Error ? error.message : String(error);
  return code && !message.startsWith(code) ? `${code}: ${message}` : message;
}
