import { type FileHandle, open } from 'node:fs/promises';
import type { Logger } from 'pino';
import { leadingSeq } from './chain.ts';
import { type CollectorTarget, postBatch, RefusedBatch, type SourceMetadata } from './ship-post.ts';

/**
 * Ships the local audit log to the collector. The file is the buffer: the shipper reads it from the
 * first record the collector does not hold (it asks at start, and every answer says), so a collector
 * that is down, restarted or replaced delays records and loses none. It never touches the writer:
 * statements wait for the file, never for the network.
 *
 * Batches end after a whole record: a torn line a crash left is sent with the record after it, so
 * a batch answered "up to seq N" never leaves half of what it carried unaccounted for.
 */
export interface ShipperOptions {
  readonly file: string;
  readonly target: CollectorTarget;
  readonly source: Omit<SourceMetadata, 'logKeyId'>;
  readonly logger: Logger;
  /** Most records per batch (default 1000) and most bytes (default 4 MiB). */
  readonly batchRecords?: number;
  readonly batchBytes?: number;
  /** How often to look for new records when the last look found none (default 250 ms). */
  readonly pollMs?: number;
  /** First and longest wait between failed attempts (defaults 250 ms and 30 s). */
  readonly retryMinMs?: number;
  readonly retryMaxMs?: number;
}

export interface AuditShipper {
  /** The highest seq the collector acknowledged so far. */
  readonly acknowledged: number;
  /** Ships what the file holds now (within `withinMs`), then stops. */
  stop(withinMs?: number): Promise<void>;
}

const READ_CHUNK = 256 * 1024;

export function startShipper(options: ShipperOptions): AuditShipper {
  const shipper = new Shipper(options);
  void shipper.run();
  return shipper;
}

class Shipper implements AuditShipper {
  readonly #options: ShipperOptions;
  readonly #logger: Logger;
  #acknowledged = -1;
  /** Byte offset just after the last record the collector holds, once known. */
  #offset = 0;
  #source: SourceMetadata | undefined;
  #stopping = false;
  #deadline = Number.POSITIVE_INFINITY;
  #wake: (() => void) | undefined;
  #done: Promise<void> = Promise.resolve();
  readonly #abort = new AbortController();

  constructor(options: ShipperOptions) {
    this.#options = options;
    this.#logger = options.logger.child({ component: 'audit-shipper' });
  }

  get acknowledged(): number {
    return Math.max(0, this.#acknowledged);
  }

  async stop(withinMs = 2000): Promise<void> {
    this.#stopping = true;
    this.#deadline = Date.now() + withinMs;
    const timer = setTimeout(() => this.#abort.abort(), withinMs);
    this.#wake?.();
    await this.#done;
    clearTimeout(timer);
  }

  run(): Promise<void> {
    this.#done = this.#loop().catch((error: Error) =>
      this.#logger.error({ err: error.message }, 'the audit shipper stopped'),
    );
    return this.#done;
  }

  async #loop(): Promise<void> {
    let failures = 0;
    while (!(this.#stopping && Date.now() >= this.#deadline)) {
      let shipped: boolean;
      try {
        shipped = await this.#shipOnce();
        if (failures > 0)
          this.#logger.info({ acknowledged: this.#acknowledged }, 'the collector answers again');
        failures = 0;
      } catch (error) {
        if (this.#abort.signal.aborted) return;
        failures++;
        const refused = error instanceof RefusedBatch;
        const wait = refused
          ? this.#retryMax
          : Math.min(this.#retryMax, (this.#options.retryMinMs ?? 250) * 2 ** (failures - 1));
        // Once per outage at warn, and every failure when it is a refusal an operator must fix.
        if (failures === 1 || refused)
          this.#logger.warn(
            { err: (error as Error).message, retryInMs: wait },
            'cannot ship audit records; they wait in the file',
          );
        if (this.#stopping) return;
        await this.#sleep(wait * (0.75 + Math.random() / 2));
        continue;
      }
      if (!shipped) {
        if (this.#stopping) return;
        await this.#sleep(this.#options.pollMs ?? 250);
      }
    }
  }

  get #retryMax(): number {
    return this.#options.retryMaxMs ?? 30_000;
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.#wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  /** Sends one batch; false when there was nothing to send. */
  async #shipOnce(): Promise<boolean> {
    const handle = await open(this.#options.file, 'r');
    try {
      if (!this.#source) {
        const logKeyId = await firstKeyId(handle);
        if (logKeyId === undefined) return false;
        this.#source = { ...this.#options.source, logKeyId };
      }
      if (this.#acknowledged < 0) {
        const answer = await postBatch(this.#options.target, this.#source, [], this.#abort.signal);
        this.#acknowledged = answer.acknowledged;
        this.#offset = 0;
        this.#logger.info({ acknowledged: answer.acknowledged }, 'shipping audit records to the collector');
      }
      const batch = await this.#readBatch(handle);
      if (batch.lines.length === 0) {
        this.#offset = batch.end;
        return false;
      }
      const answer = await postBatch(this.#options.target, this.#source, batch.lines, this.#abort.signal);
      if (answer.acknowledged >= batch.lastSeq) {
        this.#offset = batch.end;
      } else {
        // The collector holds less than it was just sent (its store was replaced): start over from its answer.
        this.#offset = 0;
      }
      this.#acknowledged = answer.acknowledged;
      return true;
    } finally {
      await handle.close();
    }
  }

  /**
   * The next lines after `#offset` whose records the collector does not hold, up to the batch
   * limits, ending after a whole record; `end` is the offset after the last line taken (or skipped).
   */
  async #readBatch(handle: FileHandle): Promise<Batch> {
    const maxRecords = this.#options.batchRecords ?? 1000;
    const maxBytes = this.#options.batchBytes ?? 4 * 1024 * 1024;
    const lines: string[] = [];
    /** Per record taken: where its lines begin in `lines`, and the batch as it stood before it. */
    const taken: { from: number; lastSeq: number; end: number }[] = [];
    let pending: string[] = [];
    let bytes = 0;
    let lastSeq = this.#acknowledged;
    let position = this.#offset;
    let end = this.#offset;
    let carry = Buffer.alloc(0);
    const buffer = Buffer.alloc(READ_CHUNK);
    reading: for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, READ_CHUNK, position);
      if (bytesRead === 0) break;
      position += bytesRead;
      const data =
        carry.length > 0
          ? Buffer.concat([carry, buffer.subarray(0, bytesRead)])
          : buffer.subarray(0, bytesRead);
      let start = 0;
      let lineEnd = position - data.length;
      for (let newline = data.indexOf(0x0a); newline !== -1; newline = data.indexOf(0x0a, start)) {
        const line = data.subarray(start, newline).toString('utf8');
        lineEnd += newline + 1 - start;
        start = newline + 1;
        const seq = leadingSeq(line);
        if (seq === undefined) {
          pending.push(line);
          continue;
        }
        if (seq <= this.#acknowledged) {
          pending = [];
          end = lineEnd;
          continue;
        }
        const added = pending.reduce((n, l) => n + l.length, 0) + line.length;
        const full = lines.length + pending.length + 1 >= maxRecords || bytes + added >= maxBytes;
        // A batch must end in a whole record, so the line that would end one is checked (see below).
        if (full && !isJson(line)) {
          pending.push(line);
          continue;
        }
        taken.push({ from: lines.length, lastSeq, end });
        lines.push(...pending, line);
        bytes += added;
        pending = [];
        lastSeq = seq;
        end = lineEnd;
        if (full) break reading;
      }
      carry = Buffer.from(data.subarray(start));
    }
    // A crash can leave a line cut after its `{"seq":N,`: it looks like a record but is torn. A batch
    // must end in a whole record (see above), so one that ends in such a line gives it back.
    while (taken.length > 0 && !isJson(lines[lines.length - 1]!)) {
      const last = taken.pop()!;
      lines.length = last.from;
      lastSeq = last.lastSeq;
      end = last.end;
    }
    return { lines, lastSeq, end };
  }
}

interface Batch {
  readonly lines: string[];
  readonly lastSeq: number;
  /** The file offset after the last line taken or skipped. */
  readonly end: number;
}

function isJson(line: string): boolean {
  try {
    JSON.parse(line);
    return true;
  } catch {
    return false;
  }
}

/** The keyId of the log's first record (its log.open): with the pod, it names the log to the collector. */
async function firstKeyId(handle: FileHandle): Promise<string | undefined> {
  const buffer = Buffer.alloc(4096);
  const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
  const text = buffer.subarray(0, bytesRead).toString('utf8');
  const newline = text.indexOf('\n');
  if (newline < 0) return undefined;
  const match = /"keyId":"([0-9a-f]+)"/.exec(text.slice(0, newline));
  return match?.[1];
}
