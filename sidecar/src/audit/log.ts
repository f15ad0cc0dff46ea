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
 * - Without a pinned key (`signingKeyFile` plus `verify --public-key`) the key is made afresh at
 *   each start, and someone who can rewrite the log can rewrite all of it with a key of their own.
 *   With a pinned key they cannot forge checkpoints unless they can also read the key file, which
 *   an attacker in the same pod usually can.
 * So the anchor that survives a compromised host is off the host: every record, checkpoints
 * included, also goes to stdout through pino for an external collector, and a copy of the
 * checkpoints kept elsewhere proves what the file held up to each of them.
 *
 * One writer at a time: the file is locked (`FILE.lock`, see exclusive-lock.ts) before anything is
 * written, so a second process given the same file refuses to start instead of forking the chain.
 *
 * Writes are batched and asynchronous; memory waiting for the disk is bounded. When that bound is
 * reached or a write fails, `healthy` turns false (the proxy then refuses statements), every record
 * that could not be written is counted and logged, and the count is written into the chain as an
 * `audit.loss` record once the disk catches up (a failed write stops the file for good, since a
 * partial write may have left a torn line; the next start records that as damage).
 */

import { type FileHandle, open, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { UserError } from '../errors.ts';
import { acquireExclusiveLock, type ExclusiveLock, LockHeldError } from '../exclusive-lock.ts';
import { chainLine, chainSignedLine, GENESIS, parseChainLine, sha256Hex } from './chain.ts';
import type { AuditEvent, AuditSink } from './events.ts';
import { type HeadAnchor, parseHead, readHeadFile, writeHeadFile } from './head.ts';
import { auditFields } from './record.ts';
import { loadSigningKey, type SigningKey } from './signing-key.ts';
import { readLogTail } from './tail.ts';

export interface AuditLogOptions {
  /** JSON-lines file to append to; a chain already in it is continued. */
  readonly file?: string;
  /** Also log every record through `logger` at info level, as `{ audit: record }`. */
  readonly stdout: boolean;
  /** PKCS#8 PEM Ed25519 private key; without it a key is made for this run only. */
  readonly signingKeyFile?: string;
  readonly checkpointEveryRecords: number;
  readonly checkpointIntervalMs: number;
  readonly logger: Logger;
  /** Where the head anchor goes; `FILE.head` by default. Only regular files get one. */
  readonly headFile?: string;
  /** Bytes that may wait for the disk (queued plus being written) before records are refused; 8 MiB by default. */
  readonly maxPendingBytes?: number;
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
/** How long a record may wait in memory for others to share its write. */
const BATCH_DELAY_MS = 5;
/** A batch this large is written at once. */
const BATCH_BYTES = 64 * 1024;

export async function openAuditLog(options: AuditLogOptions): Promise<AuditLog> {
  if (options.file === undefined && !options.stdout) {
    throw new UserError('audit: no destination: give a file, stdout, or both');
  }
  for (const name of ['checkpointEveryRecords', 'checkpointIntervalMs'] as const) {
    if (!Number.isSafeInteger(options[name]) || options[name] < 1) {
      throw new UserError(`audit: ${name} must be a positive integer`);
    }
  }
  const log = new ChainedAuditLog(options, await loadSigningKey(options.signingKeyFile));
  await log.start();
  return log;
}

interface Recovery {
  readonly damage: 'torn-line' | 'head-mismatch';
  readonly [field: string]: unknown;
}

class ChainedAuditLog implements AuditLog {
  readonly #options: AuditLogOptions;
  readonly #key: SigningKey;
  readonly #logger: Logger;
  readonly #maxPendingBytes: number;

  #seq = 0;
  #prev = GENESIS;
  #sinceCheckpoint = 0;

  #handle: FileHandle | undefined;
  /** Held while the file is open: a second writer would fork the chain (verify: TAMPERED). */
  #lock: ExclusiveLock | undefined;
  #headFile: string | undefined;
  /** File offset just after everything queued so far: where the next line will land. */
  #fileEnd = 0;
  #pending: string[] = [];
  #pendingRecords = 0;
  #pendingBytes = 0;
  #inFlightBytes = 0;
  /** The latest checkpoint queued but not yet written. */
  #unanchored: HeadAnchor | undefined;
  /** The latest checkpoint written but not yet synced and copied to the head file. */
  #toAnchor: HeadAnchor | undefined;
  #draining: Promise<void> | undefined;
  #anchoring: Promise<void> | undefined;

  #failure: string | undefined;
  #writeFailed = false;
  #overflowing = false;
  #lostUnrecorded = 0;
  #lost = 0;
  #written = 0;
  #closed = false;
  #closing: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: AuditLogOptions, key: SigningKey) {
    this.#options = options;
    this.#key = key;
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
    return this.#written;
  }

  get lost(): number {
    return this.#lost;
  }

  async start(): Promise<void> {
    const file = this.#options.file;
    let resume: 'sealed' | 'unsealed' | undefined;
    const recoveries: Recovery[] = [];
    if (file !== undefined) {
      try {
        this.#lock = await lockUnlessSpecial(file);
        const found = await this.#openFile(file, recoveries);
        resume = found.resume;
        if (found.terminatePartialLine) this.#queue('', 0);
      } catch (error) {
        await this.#handle?.close().catch(() => undefined);
        this.#handle = undefined;
        if (error instanceof LockHeldError) throw error;
        this.#failWrites(`audit file ${file}: ${describeError(error)}`, 0);
        return;
      }
    }
    this.#append({
      type: 'log.open',
      version: 1,
      keyId: this.#key.keyId,
      publicKey: this.#key.publicKey,
      host: hostname(),
      pid: process.pid,
      resume,
    });
    for (const recovery of recoveries) this.#append({ type: 'log.recover', ...recovery });
    // Signs the point where this run continues the chain and anchors the head to it at once.
    this.#checkpoint(false);
    this.#timer = setInterval(() => {
      if (this.#sinceCheckpoint > 0 && !this.#writeFailed) this.#checkpoint(false);
    }, this.#options.checkpointIntervalMs);
    this.#timer.unref();
    await this.flush();
  }

  /** Opens the file and finds where its chain continues; reports damage instead of hiding it. */
  async #openFile(
    file: string,
    recoveries: Recovery[],
  ): Promise<{ resume: 'sealed' | 'unsealed' | undefined; terminatePartialLine: boolean }> {
    const handle = await open(file, 'a+', 0o640);
    this.#handle = handle;
    const stat = await handle.stat();
    if (!stat.isFile()) return { resume: undefined, terminatePartialLine: false };
    this.#headFile = this.#options.headFile ?? `${file}.head`;
    this.#fileEnd = stat.size;
    const tail = stat.size === 0 ? { last: undefined, damaged: [] } : await readLogTail(handle, stat.size);
    if (tail.last) {
      this.#seq = tail.last.record.seq;
      this.#prev = tail.last.hash;
    } else if (tail.damaged.length > 1 || tail.damaged[0]?.terminated) {
      // Only a crash during the very first write leaves a log without a whole record, and it leaves
      // one line without its newline: anything else is some other file.
      throw new Error('it holds no audit record: not an audit log');
    }
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
    return { resume, terminatePartialLine: lastLine !== undefined && !lastLine.terminated };
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
    const fields = auditFields(event);
    if (this.#closed || this.#writeFailed) {
      this.#lose(fields, this.#closed ? 'the audit log is closed' : this.#failure);
      return;
    }
    if (this.#pendingBytes + this.#inFlightBytes >= this.#maxPendingBytes) {
      this.#overflow();
      this.#lose(fields, this.#failure);
      return;
    }
    this.#append(fields);
    if (++this.#sinceCheckpoint >= this.#options.checkpointEveryRecords) this.#checkpoint(false);
  }

  async flush(): Promise<void> {
    while (this.#draining || this.#anchoring) {
      await this.#draining;
      await this.#anchoring;
    }
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    if (!this.#writeFailed) {
      this.#recordLoss();
      this.#checkpoint(true);
    }
    await this.flush();
    try {
      await this.#handle?.close();
    } catch (error) {
      this.#failWrites(`audit file ${this.#options.file}: ${describeError(error)}`, 0);
    }
    this.#lock?.release();
    if (this.#lost > 0) {
      this.#logger.error(
        { lost: this.#lost, failure: this.#failure },
        'audit records were lost while this log was open',
      );
    }
  }

  #append(typeFields: Record<string, unknown>): void {
    const fields: Record<string, unknown> = {
      seq: ++this.#seq,
      prev: this.#prev,
      time: new Date().toISOString(),
      ...typeFields,
    };
    const { line, hash } = chainLine(fields);
    this.#prev = hash;
    this.#queue(line, 1);
    if (this.#options.stdout) this.#logger.info({ audit: fields });
  }

  #checkpoint(final: boolean): void {
    const fields = {
      seq: ++this.#seq,
      prev: this.#prev,
      time: new Date().toISOString(),
      type: 'checkpoint',
      keyId: this.#key.keyId,
      lost: this.#lost,
      final: final || undefined,
    };
    const offset = this.#fileEnd;
    const { line, hash } = chainSignedLine(fields, this.#key.privateKey);
    this.#prev = hash;
    this.#sinceCheckpoint = 0;
    if (this.#queue(line, 1) && this.#headFile !== undefined) this.#unanchored = { offset, checkpoint: line };
    if (this.#options.stdout) this.#logger.info({ audit: fields });
  }

  /** Puts a line (or, with records = 0, the newline that ends a torn line) in the next batch. */
  #queue(line: string, records: number): boolean {
    if (this.#handle === undefined || this.#writeFailed) return false;
    const bytes = Buffer.byteLength(line) + 1;
    this.#pending.push(line);
    this.#pendingRecords += records;
    this.#pendingBytes += bytes;
    this.#fileEnd += bytes;
    this.#draining ??= this.#drain();
    return true;
  }

  async #drain(): Promise<void> {
    // Gather a few milliseconds of records into one write: a write per statement costs a thread-pool
    // round trip (futex wake-ups, context switches) that showed up as a third of the proxy's cost.
    const handle = this.#handle!;
    while (this.#pending.length > 0 && !this.#writeFailed) {
      if (this.#pendingBytes < BATCH_BYTES && !this.#closing) {
        await new Promise((resolve) => setTimeout(resolve, BATCH_DELAY_MS));
      }
      const batch = this.#pending;
      const records = this.#pendingRecords;
      const anchor = this.#unanchored;
      this.#inFlightBytes = this.#pendingBytes;
      this.#pending = [];
      this.#pendingRecords = 0;
      this.#pendingBytes = 0;
      this.#unanchored = undefined;
      try {
        await writeAll(handle, Buffer.from(`${batch.join('\n')}\n`, 'utf8'));
        this.#written += records;
        if (anchor) {
          this.#toAnchor = anchor;
          this.#anchoring ??= this.#anchor(handle);
        }
      } catch (error) {
        this.#failWrites(
          `audit file ${this.#options.file}: ${describeError(error)}`,
          records + this.#pendingRecords,
        );
      } finally {
        this.#inFlightBytes = 0;
      }
      if (this.#overflowing && this.#pendingBytes <= this.#maxPendingBytes / 2 && !this.#writeFailed) {
        this.#overflowing = false;
        this.#failure = undefined;
        this.#recordLoss();
        this.#logger.warn({ lost: this.#lost }, 'audit writes caught up with the proxy');
      }
    }
    this.#draining = undefined;
  }

  /**
   * Syncs the log, then copies the checkpoint into the head file, so the anchor never names a
   * checkpoint that a power cut could take back out of the log. Runs beside the appends, which need
   * not wait for the disk to sync; checkpoints written meanwhile replace the one waiting.
   */
  async #anchor(handle: FileHandle): Promise<void> {
    while (this.#toAnchor && !this.#writeFailed) {
      const anchor = this.#toAnchor;
      this.#toAnchor = undefined;
      try {
        await handle.datasync();
        await writeHeadFile(this.#headFile!, anchor);
      } catch (error) {
        this.#failWrites(`audit head ${this.#headFile}: ${describeError(error)}`, 0);
      }
    }
    this.#anchoring = undefined;
  }

  /** Writes into the chain how many records were lost since the last such note. */
  #recordLoss(): void {
    if (this.#lostUnrecorded === 0) return;
    this.#append({
      type: 'audit.loss',
      lost: this.#lostUnrecorded,
      reason: 'the audit file could not keep up',
    });
    this.#lostUnrecorded = 0;
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

  /** A failed write may have left a torn line, so the file takes nothing more from this run. */
  #failWrites(failure: string, lostRecords: number): void {
    this.#writeFailed = true;
    this.#failure = failure;
    this.#lost += lostRecords;
    this.#pending = [];
    this.#pendingRecords = 0;
    this.#pendingBytes = 0;
    this.#unanchored = undefined;
    this.#toAnchor = undefined;
    this.#logger.error(
      { failure, lost: lostRecords },
      'audit file write failed: no further records will be written to it',
    );
  }

  #lose(fields: Record<string, unknown>, why: string | undefined): void {
    this.#lost++;
    this.#lostUnrecorded++;
    this.#logger.error(
      { auditNotWritten: fields, failure: why },
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

function describeError(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  const message = error instanceof Error ? error.message : String(error);
  return code && !message.startsWith(code) ? `${code}: ${message}` : message;
}
