import { describe, expect, it } from 'vitest';
import { MAX_PACKET_PAYLOAD } from './mysql/constants.ts';
import { packet } from './mysql/packet-io.ts';
import { PacketScanner } from './mysql/packet-scanner.ts';
import { MessageScanner } from './postgres/message-framer.ts';

/**
 * The scanner core through both protocols' headers, without sockets: every way of cutting a stream
 * into chunks must forward the same bytes and hand over the same frames.
 */

/** One protocol's scanner, driven the same way: `replace` answers a wanted frame (undefined: forward it). */
interface Driver {
  readonly name: string;
  readonly stream: Buffer;
  /** The wanted frames, as `describe` names them, in order. */
  readonly wanted: readonly string[];
  /** What the scanner forwards when `replace` is used. */
  readonly replaced: Buffer;
  /** A scanner that forwards wanted frames as they are or, with `replace`, swaps one and drops another. */
  make(replace?: boolean): Scan;
}

interface Scan {
  push(chunk: Buffer): void;
  readonly seen: string[];
  readonly out: Buffer[];
  readonly buffered: number;
}

function pgMessage(type: string, body: string | Buffer): Buffer {
  const b = typeof body === 'string' ? Buffer.from(body, 'latin1') : body;
  const out = Buffer.alloc(5 + b.length);
  out[0] = type.charCodeAt(0);
  out.writeInt32BE(4 + b.length, 1);
  b.copy(out, 5);
  return out;
}

const pg: Driver = {
  name: 'PostgreSQL',
  stream: Buffer.concat([
    pgMessage('T', 'cols'),
    pgMessage('D', 'row one'),
    pgMessage('D', ''),
    pgMessage('C', 'SELECT 2\0'),
    pgMessage('Z', 'I'),
    pgMessage('1', ''),
    pgMessage('E', 'SERROR\0'),
  ]),
  wanted: ['T:cols', 'C:SELECT 2\0', 'Z:I', '1:', 'E:SERROR\0'],
  replaced: Buffer.concat([
    pgMessage('T', 'cols'),
    pgMessage('D', 'row one'),
    pgMessage('D', ''),
    pgMessage('C', 'SELECT 0\0'),
    pgMessage('Z', 'I'),
    pgMessage('1', ''),
  ]),
  make(replace = false) {
    const scanner = new MessageScanner(
      [...'TCZ1E'].map((t) => t.charCodeAt(0)),
      1 << 20,
    );
    const seen: string[] = [];
    const out: Buffer[] = [];
    return {
      seen,
      out,
      get buffered() {
        return scanner.buffered;
      },
      push(chunk) {
        scanner.scan(
          chunk,
          (type, frame) => {
            seen.push(`${String.fromCharCode(type)}:${frame.toString('latin1', 5)}`);
            if (!replace) return frame;
            return type === 67 ? pgMessage('C', 'SELECT 0\0') : type === 69 ? undefined : frame;
          },
          (bytes) => out.push(Buffer.from(bytes)),
        );
      },
    };
  },
};

/** The MySQL packet classifier of these tests: wants OK, EOF, ERR and empty packets. */
const mysqlWants = (first: number) => first === 0x00 || first === 0xfe || first === 0xff || first === -1;

const mysql: Driver = {
  name: 'MySQL',
  stream: Buffer.concat([
    packet(Buffer.from([0x01]), 1),
    packet(Buffer.from('\x03def row'), 2),
    packet(Buffer.alloc(0), 3),
    packet(Buffer.from([0xfe, 0, 0, 2, 0]), 4),
    packet(Buffer.from([0x00, 1, 0, 2, 0, 0, 0]), 5),
    packet(Buffer.from('\xff\x28\x04#42000boom', 'latin1'), 6),
  ]),
  wanted: ['3:', '4:fe00000200', '5:00010002000000', '6:ff2804233432303030626f6f6d'],
  replaced: Buffer.concat([
    packet(Buffer.from([0x01]), 1),
    packet(Buffer.from('\x03def row'), 2),
    packet(Buffer.alloc(0), 3),
    packet(Buffer.from([0xfe, 0, 0, 2, 0]), 4),
    packet(Buffer.from([0x00, 9]), 5),
  ]),
  make(replace = false) {
    const scanner = new PacketScanner(1 << 20);
    const seen: string[] = [];
    const out: Buffer[] = [];
    return {
      seen,
      out,
      get buffered() {
        return scanner.buffered;
      },
      push(chunk) {
        scanner.scan(
          chunk,
          mysqlWants,
          (p) => {
            seen.push(`${p[3]}:${p.toString('hex', 4)}`);
            if (!replace) return p;
            return p[4] === 0x00 ? packet(Buffer.from([0x00, 9]), p[3]!) : p[4] === 0xff ? undefined : p;
          },
          (bytes) => out.push(Buffer.from(bytes)),
        );
      },
    };
  },
};

/** The stream cut at the given offsets. */
function cut(stream: Buffer, at: readonly number[]): Buffer[] {
  const parts: Buffer[] = [];
  let from = 0;
  for (const to of [...at, stream.length]) {
    parts.push(stream.subarray(from, to));
    from = to;
  }
  return parts;
}

function run(driver: Driver, parts: readonly Buffer[], replace = false): Scan {
  const scan = driver.make(replace);
  for (const part of parts) scan.push(part);
  return scan;
}

describe.each([pg, mysql])('FrameScanner ($name header)', (driver) => {
  const { stream } = driver;

  it('forwards every byte and hands over every wanted frame, cut once at any byte', () => {
    for (let at = 0; at <= stream.length; at++) {
      const scan = run(driver, cut(stream, [at]));
      expect(Buffer.concat(scan.out).equals(stream), `cut at ${at}`).toBe(true);
      expect(scan.seen, `cut at ${at}`).toEqual(driver.wanted);
      expect(scan.buffered).toBe(0);
    }
  });

  it('does the same cut twice at any two bytes (a header in three pieces)', () => {
    for (let a = 1; a < stream.length; a++)
      for (let b = a; b < stream.length; b++) {
        const scan = run(driver, cut(stream, [a, b]));
        expect(Buffer.concat(scan.out).equals(stream), `cut at ${a}, ${b}`).toBe(true);
        expect(scan.seen, `cut at ${a}, ${b}`).toEqual(driver.wanted);
      }
  });

  it('does the same in chunks of every size', () => {
    for (let size = 1; size <= stream.length; size++) {
      const at = [];
      for (let i = size; i < stream.length; i += size) at.push(i);
      const scan = run(driver, cut(stream, at));
      expect(Buffer.concat(scan.out).equals(stream), `chunks of ${size}`).toBe(true);
      expect(scan.seen, `chunks of ${size}`).toEqual(driver.wanted);
    }
  });

  it('forwards a chunk of many frames, none changed, as the chunk itself', () => {
    const scan = run(driver, [stream]);
    expect(scan.out).toHaveLength(1);
    expect(scan.out[0]!.equals(stream)).toBe(true);
  });

  it('holds back nothing while a stream ends mid-frame, and the rest completes it', () => {
    for (let at = 1; at < stream.length; at++) {
      const scan = driver.make();
      scan.push(stream.subarray(0, at));
      expect(scan.buffered, `cut at ${at}`).toBeLessThanOrEqual(at);
      scan.push(stream.subarray(at));
      expect(scan.buffered).toBe(0);
    }
  });
});

describe.each([pg, mysql])('FrameScanner replacing frames ($name header)', (driver) => {
  it('replaces and drops in place, keeping the rest in order, cut at any byte', () => {
    for (let at = 0; at <= driver.stream.length; at++) {
      const scan = run(driver, cut(driver.stream, [at]), true);
      expect(Buffer.concat(scan.out).equals(driver.replaced), `cut at ${at}`).toBe(true);
    }
  });

  it('sends the unchanged runs of a chunk around a replacement as slices of it', () => {
    const scan = run(driver, [driver.stream], true);
    // The run before the replacement and the replacement; then, in PostgreSQL's stream, the run
    // between it and the dropped frame.
    expect(scan.out).toHaveLength(driver === pg ? 3 : 2);
  });
});

describe('FrameScanner size limit', () => {
  it('refuses a wanted PostgreSQL message over the limit, however it is cut', () => {
    const big = pgMessage('C', Buffer.alloc(100, 0x41));
    for (let at = 0; at <= big.length; at++) {
      const scanner = new MessageScanner([67], 64);
      const push = () => {
        for (const part of cut(big, [at]))
          scanner.scan(
            part,
            (_t, f) => f,
            () => {},
          );
      };
      expect(push, `cut at ${at}`).toThrow(/server message of 105 bytes exceeds the limit of 64/);
    }
  });

  it('refuses a wanted MySQL packet over the limit, however it is cut', () => {
    const big = packet(Buffer.concat([Buffer.from([0xff]), Buffer.alloc(100, 0x41)]), 1);
    for (let at = 0; at <= big.length; at++) {
      const scanner = new PacketScanner(64);
      const push = () => {
        for (const part of cut(big, [at]))
          scanner.scan(
            part,
            mysqlWants,
            (p) => p,
            () => {},
          );
      };
      expect(push, `cut at ${at}`).toThrow(/server packet of 105 bytes exceeds the limit of 64/);
    }
  });

  it('passes frames it does not want whatever their size', () => {
    const row = pgMessage('D', Buffer.alloc(1000, 1));
    const scanner = new MessageScanner([67], 64);
    let forwarded = 0;
    for (const part of cut(row, [3, 500]))
      scanner.scan(
        part,
        (_t, f) => f,
        (b) => {
          forwarded += b.length;
        },
      );
    expect(forwarded).toBe(row.length);
  });

  it('refuses a PostgreSQL length below 4 wherever the header is cut', () => {
    const bad = Buffer.concat([pgMessage('Z', 'I'), Buffer.from([68, 0, 0, 0, 3])]);
    for (let at = 0; at <= bad.length; at++) {
      const scanner = new MessageScanner([90], 1024);
      const push = () => {
        for (const part of cut(bad, [at]))
          scanner.scan(
            part,
            (_t, f) => f,
            () => {},
          );
      };
      expect(push, `cut at ${at}`).toThrow(/invalid message length 3 from server/);
    }
  });
});

describe('FrameScanner MySQL continuation packets', () => {
  /** A payload of `size` bytes, which `packet` splits as a server does (full packets, then the rest). */
  function longPayload(first: number, size: number, seq: number): Buffer {
    const payload = Buffer.alloc(size, 0xff); // every continuation starts with what looks like an ERR
    payload[0] = first;
    return packet(payload, seq);
  }

  const cases = [
    { what: 'a row of 16 MiB and 10 bytes', size: MAX_PACKET_PAYLOAD + 10 },
    { what: 'a row of exactly 16 MiB - 1 (an empty packet ends it)', size: MAX_PACKET_PAYLOAD },
    { what: 'a row of two full packets and 3 bytes', size: 2 * MAX_PACKET_PAYLOAD + 3 },
  ];

  it.each(cases)('never classifies the packets that continue $what', ({ size }) => {
    const row = longPayload(0x01, size, 2);
    const stream = Buffer.concat([row, packet(Buffer.from([0xfe, 0, 0, 2, 0]), 9)]);
    // Cut around each packet header of the row and of the EOF after it.
    const headers: number[] = [];
    for (let at = 0; at < stream.length; ) {
      headers.push(at);
      at += 4 + stream.readUIntLE(at, 3);
    }
    const cuts = new Set<number>();
    for (const h of headers)
      for (let d = -1; d <= 6; d++) if (h + d > 0 && h + d < stream.length) cuts.add(h + d);
    for (const at of cuts) {
      const classified: number[] = [];
      const scanner = new PacketScanner(1 << 20);
      let forwarded = 0;
      for (const part of cut(stream, [at]))
        scanner.scan(
          part,
          (first, length) => {
            classified.push(first === -1 ? -1 : length);
            return mysqlWants(first);
          },
          (p) => p,
          (b) => {
            forwarded += b.length;
          },
        );
      // The row's first packet, then the EOF; nothing between them.
      expect(classified, `cut at ${at}`).toEqual([Math.min(size, MAX_PACKET_PAYLOAD), 5]);
      expect(forwarded).toBe(stream.length);
      expect(scanner.buffered).toBe(0);
    }
  });
});
