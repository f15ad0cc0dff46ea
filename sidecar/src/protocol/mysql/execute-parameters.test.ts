import { describe, expect, it } from 'vitest';
import { type ExecuteParameters, executeParameters } from './execute-parameters.ts';

/** A parameter as a driver binds it: its type byte, its flags byte, and its value (null: NULL). */
type Param = { type: number; flags?: number; value: Buffer | null };

const lenenc = (bytes: Buffer) => Buffer.concat([Buffer.from([bytes.length]), bytes]);
const str = (s: string): Param => ({ type: 0xfd, value: lenenc(Buffer.from(s)) });
const long = (n: number, flags = 0): Param => {
  const value = Buffer.alloc(4);
  value.writeInt32LE(n);
  return { type: 0x03, flags, value };
};
const datetime = (bytes: number[]): Param => ({ type: 0x0c, value: Buffer.from([bytes.length, ...bytes]) });
const time = (bytes: number[]): Param => ({ type: 0x0b, value: Buffer.from([bytes.length, ...bytes]) });
const NULL = (type = 0x06): Param => ({ type, value: null });

/** A COM_STMT_EXECUTE payload of statement 7; `sendTypes` false: the client relies on types bound before. */
function execute(params: Param[], { sendTypes = true, flags = 0 } = {}): Buffer {
  const head = Buffer.alloc(10);
  head[0] = 0x17;
  head.writeUInt32LE(7, 1);
  head[5] = flags;
  head.writeUInt32LE(1, 6);
  if (params.length === 0) return head;
  const nulls = Buffer.alloc((params.length + 7) >> 3);
  params.forEach((p, i) => {
    if (p.value === null) nulls[i >> 3]! |= 1 << (i & 7);
  });
  const types = sendTypes ? Buffer.from(params.flatMap((p) => [p.type, p.flags ?? 0])) : Buffer.alloc(0);
  const values = params.flatMap((p) => (p.value === null ? [] : [p.value]));
  return Buffer.concat([head, nulls, Buffer.from([sendTypes ? 1 : 0]), types, ...values]);
}

const read = (params: Param[], options?: { sendTypes?: boolean; flags?: number }, bound?: number[]) =>
  executeParameters(execute(params, options), params.length, bound);
const hash = (params: Param[]) => (read(params) as ExecuteParameters).hash;

describe('executeParameters', () => {
  it('gives the same values with the same types the same digest, and no other values or types', () => {
    const digests = [
      [str('approved')],
      [str('approve')],
      [str('approved '), long(1)],
      [long(1)],
      [long(1, 0x80)],
      [long(2)],
      [{ type: 0xfe, value: lenenc(Buffer.from('approved')) }],
      [str('')],
      [NULL()],
      [NULL(0xfd)],
      [str('a'), str('b')],
      [str('ab'), str('')],
      [str('a'), NULL()],
      [NULL(), str('a')],
    ].map(hash);
    expect(new Set(digests).size).toBe(digests.length);
    for (const d of digests) expect(d).toMatch(/^[0-9a-f]{64}$/);
    expect(hash([str('approved'), long(-5)])).toBe(hash([str('approved'), long(-5)]));
  });

  it('reads a temporal value the protocol lets a client shorten as its full form', () => {
    const midnight = [0xea, 0x07, 12, 7];
    expect(hash([datetime(midnight)])).toBe(hash([datetime([...midnight, 0, 0, 0])]));
    expect(hash([datetime(midnight)])).toBe(hash([datetime([...midnight, 0, 0, 0, 0, 0, 0, 0])]));
    expect(hash([datetime(midnight)])).not.toBe(hash([datetime([...midnight, 0, 0, 1])]));
    expect(hash([time([])])).toBe(hash([time([0, 0, 0, 0, 0, 0, 0, 0])]));
    expect(hash([time([0, 0, 0, 0, 0, 1, 0, 0])])).not.toBe(hash([time([])]));
    // A DATE and a DATETIME of the same bytes are different parameters.
    expect(hash([{ type: 0x0a, value: Buffer.from([4, ...midnight]) }])).not.toBe(hash([datetime(midnight)]));
  });

  it('an execution that sends no types is read, and sent, with the types bound before', () => {
    const params = [str('x'), long(3, 0x80), NULL()];
    const withTypes = read(params) as ExecuteParameters;
    expect(withTypes.rebound).toBeUndefined();
    const without = read(params, { sendTypes: false }, [...withTypes.types]) as ExecuteParameters;
    expect(without.hash).toBe(withTypes.hash);
    // The server gets the types the digest was made with, whatever it kept from before.
    expect(without.rebound).toEqual(execute(params));
    expect(read(params, { sendTypes: false })).toMatch(
      /relies on parameter types no earlier execution bound/,
    );
  });

  it('refuses what it cannot read rather than guess', () => {
    const cases: [Buffer, number, string][] = [
      [execute([{ type: 0x11, value: Buffer.alloc(4) }]), 1, 'type 0x11'],
      [execute([datetime([1, 2, 3])]), 1, 'temporal parameter of 3 bytes'],
      [Buffer.concat([execute([str('a')]), Buffer.from([0])]), 1, 'bytes after its last parameter'],
      [execute([str('abc')]).subarray(0, 15), 1, 'could not be read'],
      [execute([str('a')], { flags: 0x08 }), 1, 'flags 0x8'],
      [execute([str('a')]), 0, 'parameters its statement does not have'],
      // Two parameters where the server said one: the second type is misread, and refused.
      [execute([str('a'), str('b')]), 1, 'could not be read'],
      [execute([long(1), long(2)]), 1, 'bytes after its last parameter'],
    ];
    for (const [payload, count, problem] of cases)
      expect(executeParameters(payload, count, undefined), problem).toContain(problem);
    const flag = execute([str('a')]);
    flag[11] = 2;
    expect(executeParameters(flag, 1, undefined)).toContain('neither 0 nor 1');
  });

  it('a statement without parameters binds none', () => {
    expect(read([])).toEqual({ hash: '', types: [] });
  });
});
