import { describe, expect, it } from 'vitest';
import { CommandFramer, HOLD_COMMAND } from './command-framer.ts';
import { ServerStatus } from './constants.ts';
import { PayloadWriter, packet } from './packet-io.ts';
import { PacketScanner } from './packet-scanner.ts';
import { ProtocolError } from './protocol-error.ts';
import { ResponseTracker } from './response-tracker.ts';

/** Splits `bytes` into chunks at random points (seeded). */
function chunks(bytes: Buffer, seed: number, max = 64): Buffer[] {
  let s = seed;
  const next = (n: number) => {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    return s % n;
  };
  const out: Buffer[] = [];
  for (let at = 0; at < bytes.length; ) {
    const n = 1 + next(max);
    out.push(bytes.subarray(at, at + n));
    at += n;
  }
  return out;
}

const okPayload = (status: number, affected = 0) =>
  new PayloadWriter().u8(0).lenenc(affected).lenenc(0).u16(status).u16(0).build();
const terminator = (status: number) =>
  new PayloadWriter().u8(0xfe).lenenc(0).lenenc(0).u16(status).u16(0).build();
const column = (name: string) =>
  new PayloadWriter()
    .lenencBytes('def')
    .lenencBytes('')
    .lenencBytes('')
    .lenencBytes('')
    .lenencBytes(name)
    .lenencBytes(name)
    .build();
const row = (...values: Buffer[]) => {
  const w = new PayloadWriter();
  for (const v of values) w.lenencBytes(v);
  return w.build();
};

/** A multi-statement answer: a result set (one row over 16 MiB), then an OK, then an ERR. */
function serverStream(): { bytes: Buffer; rows: number } {
  const big = Buffer.alloc(17 * 1024 * 1024, 0x62);
  const parts = [
    packet(Buffer.from([2]), 1),
    packet(column('a'), 2),
    packet(column('b'), 3),
    packet(row(Buffer.from('1'), Buffer.from('x')), 4),
    packet(row(Buffer.from('2'), big), 5),
    packet(row(Buffer.from('3'), Buffer.from([0xfe])), 7),
    packet(terminator(ServerStatus.MORE_RESULTS_EXISTS | ServerStatus.AUTOCOMMIT), 8),
    packet(okPayload(ServerStatus.MORE_RESULTS_EXISTS, 5), 9),
    packet(Buffer.concat([Buffer.from([0xff, 0x28, 0x04]), Buffer.from('#42000boom')]), 10),
  ];
  return { bytes: Buffer.concat(parts), rows: 3 };
}

describe('PacketScanner with ResponseTracker', () => {
  it.each([1, 2, 3, 4])('passes every byte unchanged and sees each result end (split %i)', (seed) => {
    const { bytes, rows } = serverStream();
    const scanner = new PacketScanner(1 << 20);
    const tracker = new ResponseTracker('results', true);
    const ends: unknown[] = [];
    const out: Buffer[] = [];
    let read = 0;
    for (const chunk of chunks(bytes, seed, seed === 1 ? 4096 : 1 << 16))
      scanner.scan(
        chunk,
        (first, length) => tracker.classify(first, length),
        (p) => {
          read += p.length;
          const { end } = tracker.read(p.subarray(4));
          if (end) ends.push({ ok: end.ok, rows: end.rows, code: end.errorCode, last: end.last });
          return p;
        },
        (b) => out.push(b),
      );
    expect(Buffer.concat(out).equals(bytes)).toBe(true);
    expect(ends).toEqual([
      { ok: true, rows, code: undefined, last: false },
      { ok: true, rows: 5, code: undefined, last: false },
      { ok: false, rows: undefined, code: 1064, last: true },
    ]);
    expect(tracker.done).toBe(true);
    // Rows and column definitions were never assembled.
    expect(read).toBeLessThan(200);
  });

  it('knows a COM_STMT_PREPARE answer ends after its definitions (with EOF packets)', () => {
    const tracker = new ResponseTracker('prepare', false);
    const stream = [
      new PayloadWriter().u8(0).u32(9).u16(1).u16(2).u8(0).u16(0).build(),
      column('?'),
      column('?'),
      Buffer.from([0xfe, 0, 0, 2, 0]),
      column('a'),
      Buffer.from([0xfe, 0, 0, 2, 0]),
    ];
    let prepared: number | undefined;
    for (const payload of stream) {
      expect(tracker.done).toBe(false);
      if (tracker.classify(payload[0]!, payload.length)) {
        const result = tracker.read(payload);
        if (result.prepared) prepared = result.prepared.statementId;
      }
    }
    expect(prepared).toBe(9);
    expect(tracker.done).toBe(true);
  });
});

describe('CommandFramer', () => {
  it('hands over whole commands, joined across 16 MiB packets, and forwards them as slices', () => {
    const small = packet(Buffer.from('\x03SELECT 1'), 0);
    const hugePayload = Buffer.concat([Buffer.from([0x03]), Buffer.alloc(0xffffff + 10, 0x20)]);
    const huge = packet(hugePayload, 0);
    const stream = Buffer.concat([small, huge, small]);
    for (const seed of [1, 2]) {
      const framer = new CommandFramer(64 * 1024 * 1024);
      const seen: { length: number; lastSeq: number }[] = [];
      const out: Buffer[] = [];
      for (const chunk of chunks(stream, seed, 1 << 20))
        framer.push(
          chunk,
          (frame, payload, lastSeq) => {
            seen.push({ length: payload.length, lastSeq });
            return frame;
          },
          (b) => out.push(b),
        );
      expect(seen).toEqual([
        { length: 9, lastSeq: 0 },
        { length: hugePayload.length, lastSeq: 1 },
        { length: 9, lastSeq: 0 },
      ]);
      expect(Buffer.concat(out).equals(stream)).toBe(true);
    }
  });

  it('refuses a command over the limit', () => {
    const framer = new CommandFramer(1024);
    expect(() =>
      framer.push(
        packet(Buffer.alloc(2000, 3), 0),
        (f) => f,
        () => {},
      ),
    ).toThrow(ProtocolError);
  });
});

describe('CommandFramer HOLD_COMMAND', () => {
  it('keeps the held command and everything after it until resume hands them on, in order', () => {
    const commands = ['SELECT 1', 'SELECT late()', 'SELECT 3'].map((sql) =>
      packet(Buffer.concat([Buffer.from([3]), Buffer.from(sql)]), 0),
    );
    const input = Buffer.concat(commands);
    for (const seed of [1, 2, 3]) {
      const framer = new CommandFramer(1 << 20);
      const out: Buffer[] = [];
      const seen: string[] = [];
      let holdOnce = true;
      const handle = (frame: Buffer, payload: Buffer) => {
        const sql = payload.toString('utf8', 1);
        if (sql === 'SELECT late()' && holdOnce) {
          holdOnce = false;
          return HOLD_COMMAND;
        }
        seen.push(sql);
        return frame;
      };
      for (const part of chunks(input, seed, 7)) framer.push(part, handle, (b) => out.push(Buffer.from(b)));
      expect(framer.holding).toBe(true);
      expect(Buffer.concat(out)).toEqual(commands[0]);
      framer.resume(handle, (b) => out.push(Buffer.from(b)));
      expect(seen).toEqual(['SELECT 1', 'SELECT late()', 'SELECT 3']);
      expect(Buffer.concat(out)).toEqual(input);
    }
  });
});
