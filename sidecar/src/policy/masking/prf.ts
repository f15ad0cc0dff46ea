import type { HmacSha256 } from './hmac-sha256.ts';

/*
 * A keyed pseudo-random stream per value: block 0 is HMAC(key, tag || value), block i > 0 is
 * HMAC(key, 0xff || i || block 0). The tag separates uses of one key (a whole value, an email's
 * local part, its domain, a date) so their streams are independent.
 */

export const TAG_VALUE = 0;
export const TAG_EMAIL_LOCAL = 1;
export const TAG_EMAIL_DOMAIN = 2;
export const TAG_DATE = 3;

let input = Buffer.allocUnsafe(1024);
let stream = new Uint8Array(256);
const tagBytes = new Uint8Array(5);
/** The tag alone, the prefix of block 0. */
const tagByte = tagBytes.subarray(0, 1);

function ensureStream(length: number): void {
  const rounded = Math.ceil(length / 32) * 32;
  if (stream.length < rounded) stream = new Uint8Array(Math.max(rounded, stream.length * 2));
}

function expand(mac: HmacSha256, length: number): Uint8Array {
  for (let block = 1; block * 32 < length; block++) {
    tagBytes[0] = 0xff;
    tagBytes[1] = block >>> 24;
    tagBytes[2] = block >>> 16;
    tagBytes[3] = block >>> 8;
    tagBytes[4] = block;
    mac.digestInto(tagBytes, stream, 0, 32, stream, block * 32);
  }
  return stream;
}

/**
 * At least `length` pseudo-random bytes for (key, tag, UTF-8 of text). The array is shared and
 * overwritten by the next call.
 */
export function prf(mac: HmacSha256, tag: number, text: string, length: number): Uint8Array {
  if (input.length < text.length * 3) input = Buffer.allocUnsafe(text.length * 3);
  const byteLength = input.write(text, 0, 'utf8');
  return prfOfBytes(mac, tag, input, 0, byteLength, length);
}

/** The same stream as prf, for a value already in bytes[start..end). */
export function prfOfBytes(
  mac: HmacSha256,
  tag: number,
  bytes: Uint8Array,
  start: number,
  end: number,
  length: number,
): Uint8Array {
  ensureStream(Math.max(length, 32));
  tagBytes[0] = tag;
  mac.digestInto(tagByte, bytes, start, end, stream, 0);
  return expand(mac, length);
}

/** HMAC(key, UTF-8 of text), into out[0..32). */
export function macOfText(mac: HmacSha256, text: string, out: Uint8Array): void {
  if (input.length < text.length * 3) input = Buffer.allocUnsafe(text.length * 3);
  const byteLength = input.write(text, 0, 'utf8');
  mac.digestInto(EMPTY, input, 0, byteLength, out, 0);
}

const EMPTY = new Uint8Array(0);
