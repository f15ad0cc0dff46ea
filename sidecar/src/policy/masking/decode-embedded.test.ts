import { randomInt } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { decodeBase64Text, decodeHexText } from './decode-embedded.ts';

function textByte(byte: number): boolean {
  return byte >= 0x20 ? byte !== 0x7f : byte === 0x09 || byte === 0x0a || byte === 0x0d;
}

/** What the decoders promise, spelled with a fatal TextDecoder. */
function reference(bytes: Uint8Array): string | null {
  if (bytes.length < 4 || !bytes.every(textByte)) return null;
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return null;
  }
}

/** Bytes that are often UTF-8 and often almost: sequences cut short, overlong, surrogates, a BOM. */
function randomBytes(): Uint8Array {
  const pieces: number[][] = [];
  if (randomInt(4) === 0) pieces.push([0xef, 0xbb, 0xbf]);
  for (let n = randomInt(1, 8); n > 0; n--) {
    const choices = [
      [randomInt(0x20, 0x7f)],
      [0xc3, 0xa9],
      [0xe2, 0x82, 0xac],
      [0xf0, 0x9f, 0x98, 0x80],
      [0xc3],
      [0xe2, 0x82],
      [0xc0, 0xaf],
      [0xed, 0xa0, 0x80],
      [0xf4, 0x90, 0x80, 0x80],
      [randomInt(0x80, 0x100)],
      [randomInt(0, 0x20)],
    ];
    pieces.push(choices[randomInt(choices.length)]!);
  }
  return Uint8Array.from(pieces.flat());
}

describe('decoding embedded text', () => {
  it('accepts exactly the UTF-8 text a fatal TextDecoder accepts, in base64 and hex', () => {
    for (let n = 0; n < 20_000; n++) {
      const bytes = randomBytes();
      const expected = reference(bytes);
      const base64 = Buffer.from(bytes).toString('base64');
      const hex = Buffer.from(bytes).toString('hex');
      expect([hex, decodeBase64Text(base64, 0, base64.length)]).toEqual([hex, expected]);
      expect([hex, decodeHexText(hex, 0, hex.length)]).toEqual([hex, expected]);
    }
  });
});
