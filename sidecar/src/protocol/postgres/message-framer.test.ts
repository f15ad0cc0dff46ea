import { describe, expect, it } from 'vitest';
import { HOLD, MessageFramer, MessageScanner } from './message-framer.ts';
import { ProtocolError } from './protocol-error.ts';

function msg(type: string, body: string | Buffer): Buffer {
  const b = typeof body === 'string' ? Buffer.from(body) : body;
  const out = Buffer.alloc(5 + b.length);
  out[0] = type.charCodeAt(0);
  out.writeInt32BE(4 + b.length, 1);
  b.copy(out, 5);
  return out;
}

/** Deterministic pseudo-random splits, so a failure reproduces. */
function splitRandomly(data: Buffer, seed: number): Buffer[] {
  let state = seed;
  const next = () => {
    state = (state * 1103515245 + 12345) & 0x7fffffff;
    return state;
  };
  const parts: Buffer[] = [];
  let offset = 0;
  while (offset < data.length) {
    const n = 1 + (next() % 17);
    parts.push(data.subarray(offset, offset + n));
    offset += n;
  }
  return parts;
}

const stream = Buffer.concat([
  msg('T', 'row description'),
  msg('D', 'a'.repeat(40)),
  msg('D', ''),
  msg('C', 'SELECT 2\0'),
  msg('Z', 'I'),
  msg('D', 'b'.repeat(100)),
  msg('E', 'SERROR\0C42601\0\0'),
]);

describe('MessageFramer', () => {
  it('yields the same messages and forwards the same bytes whatever the chunking', () => {
    for (let seed = 1; seed < 200; seed++) {
      const framer = new MessageFramer(1 << 20);
      const seen: string[] = [];
      const out: Buffer[] = [];
      for (const part of splitRandomly(stream, seed)) {
        framer.push(
          part,
          (type, frame) => {
            seen.push(`${String.fromCharCode(type)}:${frame.length}`);
            return frame;
          },
          (bytes) => out.push(Buffer.from(bytes)),
        );
      }
      expect(seen).toEqual(['T:20', 'D:45', 'D:5', 'C:14', 'Z:6', 'D:105', 'E:20']);
      expect(Buffer.concat(out).equals(stream)).toBe(true);
      expect(framer.buffered).toBe(0);
    }
  });

  it('forwards a chunk of unchanged messages as one slice, and replaces or drops in place', () => {
    const framer = new MessageFramer(1 << 20);
    const out: Buffer[] = [];
    framer.push(
      stream,
      (_type, frame) => frame,
      (bytes) => out.push(bytes),
    );
    expect(out).toHaveLength(1);
    out.length = 0;
    framer.push(
      stream,
      (type, frame) => (type === 67 ? msg('C', 'X\0') : type === 69 ? undefined : frame),
      (b) => out.push(b),
    );
    const expected = Buffer.concat([
      msg('T', 'row description'),
      msg('D', 'a'.repeat(40)),
      msg('D', ''),
      msg('C', 'X\0'),
      msg('Z', 'I'),
      msg('D', 'b'.repeat(100)),
    ]);
    expect(Buffer.concat(out).equals(expected)).toBe(true);
    // Runs before and after the replacement, and the replacement itself.
    expect(out).toHaveLength(3);
  });

  it('assembles a large message from many chunks without quadratic copying', () => {
    const big = msg('d', Buffer.alloc(8 << 20, 7));
    const framer = new MessageFramer(64 << 20);
    let got: Buffer | undefined;
    const started = performance.now();
    for (let i = 0; i < big.length; i += 1000) {
      framer.push(
        big.subarray(i, i + 1000),
        (_t, frame) => frame,
        (bytes) => {
          got = bytes;
        },
      );
    }
    expect(got?.equals(big)).toBe(true);
    // 8 MiB in 1000-byte pieces: re-concatenating on every piece would copy ~35 GB.
    expect(performance.now() - started).toBeLessThan(5000);
  });

  it('rejects lengths below 4 and messages over the limit', () => {
    const bad = Buffer.from([81, 0, 0, 0, 3]);
    const keep = (_t: number, f: Buffer) => f;
    expect(() => new MessageFramer(1024).push(bad, keep, () => {})).toThrow(ProtocolError);
    const big = Buffer.from([81, 0, 0, 8, 0]);
    expect(() => new MessageFramer(1024).push(big, keep, () => {})).toThrow(/exceeds the limit/);
  });
});

describe('MessageScanner', () => {
  it('forwards every byte unchanged and reports wanted messages whatever the chunking', () => {
    for (let seed = 1; seed < 300; seed++) {
      const scanner = new MessageScanner(
        ['C', 'Z', 'E', 'T'].map((t) => t.charCodeAt(0)),
        1 << 20,
      );
      const out: Buffer[] = [];
      const seen: string[] = [];
      for (const part of splitRandomly(stream, seed)) {
        scanner.scan(
          part,
          (type, frame) => {
            seen.push(`${String.fromCharCode(type)}:${frame.toString('latin1', 5)}`);
            return frame;
          },
          (bytes) => out.push(Buffer.from(bytes)),
        );
      }
      expect(Buffer.concat(out).equals(stream)).toBe(true);
      expect(seen).toEqual(['T:row description', 'C:SELECT 2\0', 'Z:I', 'E:SERROR\0C42601\0\0']);
    }
  });

  it('replaces and drops wanted messages in place, keeping the rest in order', () => {
    for (let seed = 1; seed < 300; seed++) {
      const scanner = new MessageScanner(
        ['C', 'E'].map((t) => t.charCodeAt(0)),
        1 << 20,
      );
      const out: Buffer[] = [];
      for (const part of splitRandomly(stream, seed)) {
        scanner.scan(
          part,
          (type) => (type === 67 ? msg('C', 'SELECT 0\0') : undefined),
          (bytes) => out.push(Buffer.from(bytes)),
        );
      }
      const expected = Buffer.concat([
        msg('T', 'row description'),
        msg('D', 'a'.repeat(40)),
        msg('D', ''),
        msg('C', 'SELECT 0\0'),
        msg('Z', 'I'),
        msg('D', 'b'.repeat(100)),
      ]);
      expect(Buffer.concat(out).equals(expected)).toBe(true);
    }
  });

  it('starts and stops assembling a type between messages, as a handler asks', () => {
    for (let seed = 1; seed < 200; seed++) {
      const scanner = new MessageScanner(
        ['T', 'C'].map((t) => t.charCodeAt(0)),
        1 << 20,
      );
      const out: Buffer[] = [];
      const rows: string[] = [];
      for (const part of splitRandomly(stream, seed)) {
        scanner.scan(
          part,
          (type, frame) => {
            if (type === 84) scanner.want(68, true);
            if (type === 67) scanner.want(68, false);
            if (type === 68) {
              rows.push(frame.toString('latin1', 5));
              return msg('D', 'masked');
            }
            return frame;
          },
          (bytes) => out.push(Buffer.from(bytes)),
        );
      }
      // Rows between RowDescription and CommandComplete are rewritten; the one after passes as it came.
      expect(rows).toEqual(['a'.repeat(40), '']);
      const expected = Buffer.concat([
        msg('T', 'row description'),
        msg('D', 'masked'),
        msg('D', 'masked'),
        msg('C', 'SELECT 2\0'),
        msg('Z', 'I'),
        msg('D', 'b'.repeat(100)),
        msg('E', 'SERROR\0C42601\0\0'),
      ]);
      expect(Buffer.concat(out).equals(expected)).toBe(true);
    }
  });

  it('passes a large uninspected row through without assembling it', () => {
    const scanner = new MessageScanner([67], 1024);
    const row = msg('D', Buffer.alloc(1 << 20, 1));
    let forwarded = 0;
    for (const part of [row.subarray(0, 3), row.subarray(3, 70000), row.subarray(70000)]) {
      scanner.scan(
        part,
        (_t, f) => f,
        (bytes) => {
          forwarded += bytes.length;
        },
      );
    }
    expect(forwarded).toBe(row.length);
  });
});

describe('MessageFramer HOLD', () => {
  it('keeps the held message and everything after it, in order, until resume hands them on', () => {
    const input = Buffer.concat([msg('Q', 'one\0'), msg('Q', 'two\0'), msg('S', ''), msg('Q', 'three\0')]);
    for (const seed of [1, 2, 3, 4, 5]) {
      const framer = new MessageFramer(1 << 20);
      const out: Buffer[] = [];
      const seen: string[] = [];
      let holdOnce = true;
      const handle = (type: number, frame: Buffer) => {
        if (type === 81 && frame.toString('latin1', 5, 8) === 'two' && holdOnce) {
          holdOnce = false;
          return HOLD;
        }
        seen.push(String.fromCharCode(type));
        return frame;
      };
      for (const part of splitRandomly(input, seed))
        framer.push(part, handle, (b) => out.push(Buffer.from(b)));
      expect(framer.holding).toBe(true);
      expect(Buffer.concat(out)).toEqual(msg('Q', 'one\0'));
      framer.resume(handle, (b) => out.push(Buffer.from(b)));
      expect(framer.holding).toBe(false);
      expect(seen).toEqual(['Q', 'Q', 'S', 'Q']);
      expect(Buffer.concat(out)).toEqual(input);
    }
  });
});
