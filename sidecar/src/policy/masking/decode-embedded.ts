import { isUtf8 } from 'node:buffer';

/*
 * Decoders for text hidden in base64 or hex (`encode(convert_to(ssn, 'UTF8'), 'base64')`, bytea
 * output). Both give up at the first byte that cannot be text, so the random bytes behind ordinary
 * ids, hashes and UUIDs cost a few steps and no allocation.
 */

const BASE64_VALUES = new Int8Array(128).fill(-1);
for (let i = 0; i < 64; i++) {
  BASE64_VALUES['ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'.charCodeAt(i)] = i;
}
BASE64_VALUES[45] = 62; // '-' in the URL-safe alphabet
BASE64_VALUES[95] = 63; // '_'

let scratch = Buffer.allocUnsafe(256);

/** Text keeps tab, newline, carriage return and everything from space up, except DEL. */
function textByte(byte: number): boolean {
  return byte >= 0x20 ? byte !== 0x7f : byte === 0x09 || byte === 0x0a || byte === 0x0d;
}

function ensureScratch(bytes: number): void {
  if (scratch.length < bytes) scratch = Buffer.allocUnsafe(Math.max(bytes, scratch.length * 2));
}

function asText(length: number, sawHighByte: boolean): string | null {
  if (length < 4) return null;
  if (!sawHighByte) return scratch.toString('latin1', 0, length);
  // Checked before decoding, not by a fatal TextDecoder: its exception cost about 6 µs per mixed-case
  // id or SKU (`SKU-000123` reads as base64). A byte order mark is dropped, as TextDecoder drops it.
  if (!isUtf8(scratch.subarray(0, length))) return null;
  const bom = scratch[0] === 0xef && scratch[1] === 0xbb && scratch[2] === 0xbf ? 3 : 0;
  return scratch.toString('utf8', bom, length);
}

/**
 * The text that base64 (standard or URL-safe; line breaks and padding allowed) in
 * text[start..end) encodes, or null when it decodes to something other than UTF-8 text.
 */
export function decodeBase64Text(text: string, start: number, end: number): string | null {
  ensureScratch(Math.ceil(((end - start) * 3) / 4));
  let length = 0;
  let acc = 0;
  let bits = 0;
  let sawHighByte = false;
  for (let i = start; i < end; i++) {
    const code = text.charCodeAt(i);
    if (code === 61) break; // '=' padding
    if (code === 10 || code === 13) continue;
    const value = code < 128 ? BASE64_VALUES[code]! : -1;
    if (value < 0) return null;
    acc = ((acc << 6) | value) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      const byte = (acc >> bits) & 0xff;
      if (!textByte(byte)) return null;
      if (byte >= 0x80) sawHighByte = true;
      scratch[length++] = byte;
    }
  }
  return asText(length, sawHighByte);
}

function hexValue(code: number): number {
  if (code >= 48 && code <= 57) return code - 48;
  const lower = code | 0x20;
  if (lower >= 97 && lower <= 102) return lower - 87;
  return -1;
}

/** The text that the hex digits in text[start..end) encode, or null when it is not UTF-8 text. */
export function decodeHexText(text: string, start: number, end: number): string | null {
  if ((end - start) % 2 !== 0) return null;
  ensureScratch((end - start) / 2);
  let length = 0;
  let sawHighByte = false;
  for (let i = start; i < end; i += 2) {
    const high = hexValue(text.charCodeAt(i));
    const low = hexValue(text.charCodeAt(i + 1));
    if (high < 0 || low < 0) return null;
    const byte = (high << 4) | low;
    if (!textByte(byte)) return null;
    if (byte >= 0x80) sawHighByte = true;
    scratch[length++] = byte;
  }
  return asText(length, sawHighByte);
}
