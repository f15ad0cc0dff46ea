/**
 * Follows frame boundaries in a server's byte stream for both protocols. Frames the protocol does not
 * want go out as runs of the chunk they came in, uncopied and unassembled, however they are split.
 * Wanted frames that lie within one chunk are handed over as views of it; only a wanted frame that
 * spans chunks is assembled, once. A wanted frame over the size limit is refused, however it is
 * chunked. A header split across chunks is held back until the frame can be classified.
 *
 * Each protocol supplies the header: how many bytes carry the frame's length, how many a frame needs
 * to be classified, the whole frame's length, whether it is wanted and how a handler receives it.
 * `wants` is called exactly once per frame, in stream order, so it may keep state (MySQL's
 * continuation packets). The methods are on the subclass rather than passed in so that the per-frame
 * calls cost no closure and stay monomorphic within one scanner.
 */
export abstract class FrameScanner<Handler> {
  /** Bytes from a frame's start that hold its length. */
  private readonly lengthBytes: number;
  /** Bytes from a frame's start it takes to classify it (all of it, when it is shorter). */
  private readonly peekBytes: number;
  private readonly maxFrameBytes: number;
  /** A header split across chunks, as far as it has come. */
  private readonly header: Buffer;
  private headerFill = 0;
  /** Bytes of the frame that need to be in `header` before it can be classified. */
  private headerNeeded = 0;
  /** Bytes of an unwanted frame still to pass. */
  private skipRemaining = 0;
  /** A wanted frame that spans chunks, being assembled. */
  private collecting: Buffer | undefined;
  private collectFill = 0;

  constructor(format: { lengthBytes: number; peekBytes: number }, maxFrameBytes: number) {
    this.lengthBytes = format.lengthBytes;
    this.peekBytes = format.peekBytes;
    this.header = Buffer.alloc(format.peekBytes);
    this.maxFrameBytes = maxFrameBytes;
  }

  /** The whole length, header included, of the frame at `offset` (`lengthBytes` of it are there); throws if invalid. */
  protected abstract frameLength(data: Buffer, offset: number): number;

  /** Whether the frame at `offset` is handed over (min(peekBytes, length) of it are in `data`). */
  protected abstract wants(data: Buffer, offset: number, length: number): boolean;

  /** Hands a wanted frame to `handle`; returns what goes out in its place (the frame itself, other bytes, nothing). */
  protected abstract deliver(handle: Handler, frame: Buffer): Buffer | undefined;

  /** The error for a wanted frame over the size limit. */
  protected abstract tooLarge(length: number, limit: number): Error;

  /** Bytes held back: a split header or a wanted frame being assembled. */
  get buffered(): number {
    return this.headerFill + (this.collecting ? this.collectFill : 0);
  }

  /** Scans `chunk`, calling `output` with the bytes to forward, in order, and `handle` for wanted frames. */
  protected scanFrames(chunk: Buffer, handle: Handler, output: (bytes: Buffer) => void): void {
    let offset = 0;
    let runStart = 0;
    const end = chunk.length;
    while (offset < end) {
      if (this.skipRemaining > 0) {
        const n = Math.min(this.skipRemaining, end - offset);
        this.skipRemaining -= n;
        offset += n;
        continue;
      }
      const collecting = this.collecting;
      if (collecting !== undefined) {
        const n = Math.min(collecting.length - this.collectFill, end - offset);
        chunk.copy(collecting, this.collectFill, offset, offset + n);
        this.collectFill += n;
        offset += n;
        runStart = offset;
        if (this.collectFill === collecting.length) {
          this.collecting = undefined;
          const out = this.deliver(handle, collecting);
          if (out) output(out);
        }
        continue;
      }
      if (this.headerFill === 0 && end - offset >= this.peekBytes) {
        const length = this.frameLength(chunk, offset);
        const frameEnd = offset + length;
        if (!this.wants(chunk, offset, length)) {
          if (frameEnd <= end) offset = frameEnd;
          else {
            this.skipRemaining = frameEnd - end;
            offset = end;
          }
          continue;
        }
        if (frameEnd <= end) {
          // The limit holds however the stream is chunked, not only for frames that are assembled.
          if (length > this.maxFrameBytes) throw this.tooLarge(length, this.maxFrameBytes);
          const frame = chunk.subarray(offset, frameEnd);
          const out = this.deliver(handle, frame);
          if (out !== frame) {
            if (offset > runStart) output(chunk.subarray(runStart, offset));
            if (out) output(out);
            runStart = frameEnd;
          }
          offset = frameEnd;
          continue;
        }
        if (offset > runStart) output(chunk.subarray(runStart, offset));
        this.startCollecting(length, chunk.subarray(offset, end));
        offset = end;
        runStart = end;
        continue;
      }
      // The header straddles chunks: hold its bytes back until the frame can be classified.
      if (this.headerFill === 0) {
        if (offset > runStart) output(chunk.subarray(runStart, offset));
        this.headerNeeded = this.lengthBytes;
      }
      const n = Math.min(this.headerNeeded - this.headerFill, end - offset);
      chunk.copy(this.header, this.headerFill, offset, offset + n);
      this.headerFill += n;
      offset += n;
      runStart = offset;
      if (this.headerFill < this.headerNeeded) continue;
      const length = this.frameLength(this.header, 0);
      const needed = Math.min(this.peekBytes, length);
      if (this.headerFill < needed) {
        this.headerNeeded = needed;
        continue;
      }
      const got = this.headerFill;
      this.headerFill = 0;
      const start = this.header.subarray(0, got);
      if (!this.wants(this.header, 0, length)) {
        output(Buffer.from(start));
        this.skipRemaining = length - got;
        continue;
      }
      this.startCollecting(length, start);
      if (this.collectFill === length) {
        const frame = this.collecting!;
        this.collecting = undefined;
        const out = this.deliver(handle, frame);
        if (out) output(out);
      }
    }
    if (end > runStart) output(chunk.subarray(runStart, end));
  }

  private startCollecting(length: number, start: Buffer): void {
    if (length > this.maxFrameBytes) throw this.tooLarge(length, this.maxFrameBytes);
    const frame = Buffer.allocUnsafe(length);
    start.copy(frame, 0);
    this.collecting = frame;
    this.collectFill = start.length;
  }
}
