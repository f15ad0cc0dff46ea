import { createHmac, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { HmacSha256 } from './hmac-sha256.ts';

function reference(key: Uint8Array, message: Uint8Array): string {
  return createHmac('sha256', key).update(message).digest('hex');
}

describe('HmacSha256', () => {
  it('matches RFC 4231 test case 2', () => {
    const mac = new HmacSha256(Buffer.from('Jefe'));
    expect(Buffer.from(mac.digest(Buffer.from('what do ya want for nothing?'))).toString('hex')).toBe(
      '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843',
    );
  });

  it('matches node:crypto for every message length across block boundaries and for long keys', () => {
    for (const keyLength of [0, 16, 32, 64, 65, 200]) {
      const key = randomBytes(keyLength);
      const mac = new HmacSha256(key);
      for (let length = 0; length <= 300; length++) {
        const message = randomBytes(length);
        expect(Buffer.from(mac.digest(message)).toString('hex')).toBe(reference(key, message));
      }
    }
  });

  it('digests prefix || message[start..end) into a slice of the output', () => {
    const key = randomBytes(32);
    const mac = new HmacSha256(key);
    for (const prefixLength of [0, 1, 5, 63, 64, 70]) {
      const prefix = randomBytes(prefixLength);
      const message = randomBytes(150);
      const out = new Uint8Array(40).fill(0xee);
      mac.digestInto(prefix, message, 7, 140, out, 4);
      const expected = reference(key, Buffer.concat([prefix, message.subarray(7, 140)]));
      expect(Buffer.from(out.subarray(4, 36)).toString('hex')).toBe(expected);
      expect(out[0]).toBe(0xee);
      expect(out[39]).toBe(0xee);
    }
  });
});
