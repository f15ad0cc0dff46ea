import { describe, expect, it } from 'vitest';
import { type ClientFramer, HOLD } from './client-framer.ts';
import { CommandFramer } from './mysql/command-framer.ts';
import { MAX_PACKET_PAYLOAD } from './mysql/constants.ts';
import { packet } from './mysql/packet-io.ts';
import { ProtocolError as MysqlProtocolError } from './mysql/protocol-error.ts';
import { MessageFramer } from './postgres/message-framer.ts';
import { ProtocolError as PgProtocolError } from './postgres/protocol-error.ts';

/** What a test's handler sees of a frame, whatever the protocol: its name and its raw bytes. */
type Seen = (name: string, frame: Buffer) => Buffer | undefined | typeof HOLD;

interface Protocol {
  name: string;
  framer(limit: number): ClientFramer<never>;
  /** The protocol's handler, calling `seen` with the frame's name (its text) and its bytes. */
  handler(seen: Seen): never;
  frame(text: string): Buffer;
  /** A header announcing a frame of `bytes` bytes, and the error class a bad frame raises. */
  header(bytes: number): Buffer;
  error: new (...args: never[]) => Error;
}

function pgMessage(type: string, body: string): Buffer {
  const b = Buffer.from(body);
  const out = Buffer.alloc(5 + b.length);
  out[0] = type.charCodeAt(0);
  out.writeInt32BE(4 + b.length, 1);
  b.copy(out, 5);
  return out;
}

const postgres: Protocol = {
  name: 'postgres',
  framer: (limit) => new MessageFramer(limit) as unknown as ClientFramer<never>,
  handler: (seen) =>
    ((_type: number, frame: Buffer) => seen(frame.toString('latin1', 5), frame)) as unknown as never,
  frame: (text) => pgMessage('Q', text),
  header: (bytes) => {
    const h = Buffer.alloc(5);
    h[0] = 0x51;
    h.writeInt32BE(bytes - 1, 1);
    return h;
  },
  error: PgProtocolError,
};

const mysql: Protocol = {
  name: 'mysql',
  framer: (limit) => new CommandFramer(limit) as unknown as ClientFramer<never>,
  handler: (seen) =>
    ((frame: Buffer, payload: Buffer) => seen(payload.toString('latin1', 1), frame)) as unknown as never,
  frame: (text) => packet(Buffer.from(`\x03${text}`, 'latin1'), 0),
  header: (bytes) => {
    const h = Buffer.alloc(4);
    h.writeUIntLE(bytes - 4, 0, 3);
    return h;
  },
  error: MysqlProtocolError,
};

const TEXTS = ['SELECT 1', '', 'SELECT late()', 'x', 'SELECT 4 FROM t WHERE a = $1'];

/** The stream whole, cut at every position, byte by byte, and (`pairs`) cut at every pair of positions. */
function* everyCut(stream: Buffer, pairs = true): Generator<Buffer[]> {
  yield [stream];
  for (let i = 1; i < stream.length; i++) yield [stream.subarray(0, i), stream.subarray(i)];
  yield Array.from(stream, (_, i) => stream.subarray(i, i + 1));
  if (!pairs) return;
  for (let i = 1; i < stream.length; i++)
    for (let j = i + 1; j < stream.length; j++)
      yield [stream.subarray(0, i), stream.subarray(i, j), stream.subarray(j)];
}

/** Feeds `chunks`, copying what goes out (the framer may hand out views of its own buffers). */
function feed(framer: ClientFramer<never>, chunks: Buffer[], handle: never, out: Buffer[]): void {
  for (const chunk of chunks) framer.push(chunk, handle, (b) => out.push(Buffer.from(b)));
}

describe.each([postgres, mysql])('ClientFramer ($name)', (p) => {
  const frames = TEXTS.map((t) => p.frame(t));
  const stream = Buffer.concat(frames);

  it('hands over every frame once, in order, and forwards the stream unchanged, cut anywhere', () => {
    for (const chunks of everyCut(stream)) {
      const framer = p.framer(1 << 20);
      const seen: string[] = [];
      const out: Buffer[] = [];
      feed(
        framer,
        chunks,
        p.handler((name, frame) => {
          seen.push(name);
          return frame;
        }),
        out,
      );
      expect(seen).toEqual(TEXTS);
      expect(Buffer.concat(out).equals(stream)).toBe(true);
      expect(framer.buffered).toBe(0);
      expect(framer.holding).toBe(false);
    }
  });

  it('forwards several frames in one chunk as one slice of it, and replaces or drops in place', () => {
    const framer = p.framer(1 << 20);
    const out: Buffer[] = [];
    framer.push(
      stream,
      p.handler((_, frame) => frame),
      (b) => out.push(b),
    );
    expect(out).toHaveLength(1);
    expect(out[0]!.buffer).toBe(stream.buffer);
    out.length = 0;
    const replacement = Buffer.from('replaced');
    framer.push(
      stream,
      p.handler((name, frame) => (name === 'x' ? replacement : name === '' ? undefined : frame)),
      (b) => out.push(b),
    );
    // The run before the dropped frame, the run up to the replaced one, the replacement, the rest.
    expect(out).toHaveLength(4);
    expect(Buffer.concat(out)).toEqual(Buffer.concat([frames[0]!, frames[2]!, replacement, frames[4]!]));
  });

  it('holds at every frame, however the stream is cut, and resume hands the held frame over again', () => {
    for (const [holdAt, holdText] of TEXTS.entries()) {
      for (const chunks of everyCut(stream, false)) {
        const framer = p.framer(1 << 20);
        const seen: string[] = [];
        const out: Buffer[] = [];
        let holds = 0;
        const handle = p.handler((name, frame) => {
          if (name === holdText && holds < 2) {
            // Held twice, as a statement is that waits for the catalog and then for an approval.
            holds++;
            return HOLD;
          }
          seen.push(name);
          return frame;
        });
        feed(framer, chunks, handle, out);
        expect(framer.holding).toBe(true);
        expect(seen).toEqual(TEXTS.slice(0, holdAt));
        expect(Buffer.concat(out)).toEqual(Buffer.concat(frames.slice(0, holdAt)));
        // Everything from the held frame on is kept, including what arrived while holding.
        expect(framer.buffered).toBe(stream.length - Buffer.concat(frames.slice(0, holdAt)).length);
        framer.resume(handle, (b) => out.push(Buffer.from(b)));
        expect(framer.holding).toBe(true);
        expect(seen).toEqual(TEXTS.slice(0, holdAt));
        framer.resume(handle, (b) => out.push(Buffer.from(b)));
        expect(framer.holding).toBe(false);
        expect(seen).toEqual(TEXTS);
        expect(Buffer.concat(out).equals(stream)).toBe(true);
        expect(framer.buffered).toBe(0);
      }
    }
  });

  it('keeps a partial frame across a hold and completes it after resume', () => {
    const cut = stream.length - 3;
    const framer = p.framer(1 << 20);
    const seen: string[] = [];
    const out: Buffer[] = [];
    let held = false;
    const handle = p.handler((name, frame) => {
      if (name === 'x' && !held) {
        held = true;
        return HOLD;
      }
      seen.push(name);
      return frame;
    });
    feed(framer, [stream.subarray(0, cut)], handle, out);
    framer.resume(handle, (b) => out.push(Buffer.from(b)));
    expect(framer.holding).toBe(false);
    expect(seen).toEqual(TEXTS.slice(0, 4));
    expect(framer.buffered).toBe(frames[4]!.length - 3);
    feed(framer, [stream.subarray(cut)], handle, out);
    expect(seen).toEqual(TEXTS);
    expect(Buffer.concat(out).equals(stream)).toBe(true);
  });

  it('refuses a frame over the limit as soon as its header says so, however it is cut', () => {
    const header = p.header(2048);
    for (let at = 1; at <= header.length; at++) {
      const framer = p.framer(1024);
      const handle = p.handler((_, f) => f);
      const push = () => {
        framer.push(header.subarray(0, at), handle, () => {});
        framer.push(header.subarray(at), handle, () => {});
      };
      expect(push).toThrow(p.error);
    }
    // Under the limit it is only waited for.
    const framer = p.framer(4096);
    framer.push(
      p.header(2048),
      p.handler((_, f) => f),
      () => {},
    );
    expect(framer.buffered).toBe(p.header(2048).length);
  });
});

describe('ClientFramer (postgres) lengths', () => {
  it('refuses a length field below 4, however it is cut', () => {
    const bad = Buffer.from([0x51, 0, 0, 0, 3]);
    for (let at = 0; at < bad.length; at++) {
      const framer = new MessageFramer(1024);
      const push = () => {
        framer.push(
          bad.subarray(0, at),
          (_t, f) => f,
          () => {},
        );
        framer.push(
          bad.subarray(at),
          (_t, f) => f,
          () => {},
        );
      };
      expect(push).toThrow(/invalid message length 3/);
    }
  });
});

describe('ClientFramer (mysql) commands over 16 MiB', () => {
  it('joins continuation packets, whichever packet boundary a cut falls near, and holds them whole', () => {
    const payload = Buffer.concat([Buffer.from([3]), Buffer.alloc(MAX_PACKET_PAYLOAD + 5, 0x20)]);
    const big = packet(payload, 0);
    const small = packet(Buffer.from('\x03SELECT 1'), 0);
    const stream = Buffer.concat([small, big, small]);
    const boundary = small.length + 4 + MAX_PACKET_PAYLOAD;
    for (const cut of [
      small.length + 2,
      boundary - 1,
      boundary,
      boundary + 2,
      boundary + 4,
      stream.length - 1,
    ]) {
      const framer = new CommandFramer(64 << 20);
      const seen: { length: number; lastSeq: number }[] = [];
      const out: Buffer[] = [];
      let held = false;
      const handle = (frame: Buffer, p: Buffer, lastSeq: number) => {
        if (p.length > 100 && !held) {
          held = true;
          return HOLD;
        }
        seen.push({ length: p.length, lastSeq });
        return frame;
      };
      framer.push(stream.subarray(0, cut), handle, (b) => out.push(Buffer.from(b)));
      framer.push(stream.subarray(cut), handle, (b) => out.push(Buffer.from(b)));
      expect(framer.holding).toBe(true);
      framer.resume(handle, (b) => out.push(Buffer.from(b)));
      expect(seen).toEqual([
        { length: 9, lastSeq: 0 },
        { length: payload.length, lastSeq: 1 },
        { length: 9, lastSeq: 0 },
      ]);
      expect(Buffer.concat(out).equals(stream)).toBe(true);
    }
  });
});
