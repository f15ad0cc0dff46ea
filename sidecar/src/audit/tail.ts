import type { FileHandle } from 'node:fs/promises';
import { type ParsedRecord, parseChainLine } from './chain.ts';

/** A torn line at the end of a log: what a crash leaves of an interrupted write. */
export interface DamagedLine {
  readonly bytes: Buffer;
  readonly offset: number;
  /** False for a last line without its newline. */
  readonly terminated: boolean;
}

export interface LogTail {
  /** The last line that is a whole audit record; undefined when the log holds none. */
  readonly last: { readonly record: ParsedRecord; readonly hash: string } | undefined;
  /** The `keyId` of the last record that names one (a checkpoint or log.open): the key that signed last. */
  readonly lastKeyId: string | undefined;
  /** Torn lines after it, oldest first. */
  readonly damaged: readonly DamagedLine[];
}

const CHUNK = 64 * 1024;
/** More torn lines than any crash leaves: such a file was damaged on purpose, or is not our log. */
const MAX_DAMAGED_LINES = 16;
const MAX_LINE_BYTES = 64 * 1024 * 1024;

/**
 * Finds where a chain continues: the last whole record of the log and whatever follows it, reading
 * backwards from the end so that opening a large log costs what its last lines cost.
 * Throws when no record can be found within the limits.
 */
export async function readLogTail(handle: FileHandle, size: number): Promise<LogTail> {
  const damaged: DamagedLine[] = [];
  let last: LogTail['last'];
  for await (const line of linesFromEnd(handle, size)) {
    if (line.bytes.length === 0 && !line.terminated) continue;
    const parsed = parseChainLine(line.bytes.toString('utf8'));
    if (last) {
      // Past the last record, only its key is sought: every run checkpoints right after its log.open.
      if (parsed.ok && typeof parsed.record['keyId'] === 'string')
        return { last, lastKeyId: parsed.record['keyId'], damaged };
      continue;
    }
    if (parsed.ok) {
      last = { record: parsed.record, hash: parsed.hash };
      if (typeof parsed.record['keyId'] === 'string')
        return { last, lastKeyId: parsed.record['keyId'], damaged };
      continue;
    }
    // Only a torn line is a crash's doing; a whole line that fails its checks was altered, and
    // continuing after it would bless it.
    if (!parsed.torn)
      throw new Error(`its line at byte ${line.offset} is not a valid audit record: ${parsed.reason}`);
    damaged.unshift(line);
    if (damaged.length > MAX_DAMAGED_LINES) {
      throw new Error(
        `its last ${damaged.length} lines are not JSON: not an audit log, or damaged on purpose`,
      );
    }
  }
  return { last, lastKeyId: undefined, damaged };
}

async function* linesFromEnd(handle: FileHandle, size: number): AsyncGenerator<DamagedLine> {
  let start = size;
  let buffered = Buffer.alloc(0);
  let terminated = false;
  for (;;) {
    const newline = buffered.lastIndexOf(0x0a);
    if (newline !== -1) {
      yield { bytes: buffered.subarray(newline + 1), offset: start + newline + 1, terminated };
      terminated = true;
      buffered = buffered.subarray(0, newline);
      continue;
    }
    if (start === 0) {
      if (buffered.length > 0 || terminated) yield { bytes: buffered, offset: 0, terminated };
      return;
    }
    if (buffered.length > MAX_LINE_BYTES)
      throw new Error(`a line at its end is longer than ${MAX_LINE_BYTES} bytes`);
    const from = Math.max(0, start - CHUNK);
    const chunk = Buffer.alloc(start - from);
    const { bytesRead } = await handle.read(chunk, 0, chunk.length, from);
    if (bytesRead !== chunk.length) throw new Error('it shrank while being read');
    buffered = Buffer.concat([chunk, buffered]);
    start = from;
  }
}
