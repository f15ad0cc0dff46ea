import { compress } from './sha256-compress.ts';

/*
 * HMAC-SHA-256 (RFC 2104, FIPS 180-4) for the masking hot path, written for short messages: the key's
 * inner and outer pad blocks are compressed once, so a value of up to 55 bytes costs two compressions
 * and no allocation. node:crypto's createHmac costs about 13 µs per call on Node 24 here (OpenSSL 3
 * fetches the algorithm for every object it creates), a keyed @noble/hashes HMAC cloned per value
 * about 1 µs; this about half of that (two compressions of about 0.2 µs). WebAssembly does no better:
 * V8 already turns the shift-or pairs into rotate instructions. hmac-sha256.test.ts checks it against
 * node:crypto for every length around the block boundaries and for RFC 4231's vectors.
 */

const INITIAL = new Int32Array([
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
]);

/** The block being compressed, shared: nothing here yields, so one array serves every key. */
const W = new Int32Array(16);

/** The state after a key block XORed with pad (0x36 inner, 0x5c outer). */
function padState(key: Uint8Array, pad: number): Int32Array {
  const state = INITIAL.slice();
  for (let i = 0; i < 16; i++) {
    let word = 0;
    for (let j = 0; j < 4; j++) word = (word << 8) | ((key[4 * i + j] ?? 0) ^ pad);
    W[i] = word;
  }
  compress(state, W);
  return state;
}

/** HMAC-SHA-256 keys longer than a block are hashed first (RFC 2104). */
function blockKey(key: Uint8Array): Uint8Array {
  if (key.length <= 64) return key;
  const state = INITIAL.slice();
  const digest = new Uint8Array(32);
  hashInto(state, 0, key, 0, 0, key, 0, key.length);
  writeState(state, digest, 0);
  return digest;
}

const working = new Int32Array(8);

/**
 * Continues the hash in `state` (which has absorbed `already` bytes, a multiple of 64) over
 * a[aStart..aEnd) || b[bStart..bEnd), and pads it: the digest is left in `state`.
 */
function hashInto(
  state: Int32Array,
  already: number,
  a: Uint8Array,
  aStart: number,
  aEnd: number,
  b: Uint8Array,
  bStart: number,
  bEnd: number,
): void {
  const total = already + (aEnd - aStart) + (bEnd - bStart);
  let filled = 0;
  let word = 0;
  for (let i = aStart; i < aEnd; i++) {
    word = (word << 8) | a[i]!;
    if ((++filled & 3) === 0) {
      W[(filled >> 2) - 1] = word;
      if (filled === 64) {
        compress(state, W);
        filled = 0;
      }
    }
  }
  for (let i = bStart; i < bEnd; i++) {
    word = (word << 8) | b[i]!;
    if ((++filled & 3) === 0) {
      W[(filled >> 2) - 1] = word;
      if (filled === 64) {
        compress(state, W);
        filled = 0;
      }
    }
  }
  // The 0x80 marker, zeros, and the length in bits as a 64-bit big-endian number.
  word = (word << 8) | 0x80;
  filled++;
  while ((filled & 3) !== 0) {
    word <<= 8;
    filled++;
  }
  W[(filled >> 2) - 1] = word;
  if (filled > 56) {
    for (let i = filled >> 2; i < 16; i++) W[i] = 0;
    compress(state, W);
    filled = 0;
  }
  for (let i = filled >> 2; i < 14; i++) W[i] = 0;
  const bits = total * 8;
  W[14] = Math.floor(bits / 0x100000000) | 0;
  W[15] = bits | 0;
  compress(state, W);
}

function writeState(state: Int32Array, out: Uint8Array, offset: number): void {
  for (let i = 0; i < 8; i++) {
    const word = state[i]!;
    out[offset + 4 * i] = word >>> 24;
    out[offset + 4 * i + 1] = word >>> 16;
    out[offset + 4 * i + 2] = word >>> 8;
    out[offset + 4 * i + 3] = word;
  }
}

/** An HMAC-SHA-256 key with its pad blocks already absorbed. */
export class HmacSha256 {
  readonly #inner: Int32Array;
  readonly #outer: Int32Array;

  constructor(key: Uint8Array) {
    const block = blockKey(key);
    this.#inner = padState(block, 0x36);
    this.#outer = padState(block, 0x5c);
  }

  /**
   * Writes HMAC(key, prefix[0..prefixLength) || message[start..end)) into out[outOffset..+32).
   * The prefix lets callers separate domains or count blocks without concatenating buffers.
   */
  digestInto(
    prefix: Uint8Array,
    prefixLength: number,
    message: Uint8Array,
    start: number,
    end: number,
    out: Uint8Array,
    outOffset: number,
  ): void {
    const inner = this.#inner;
    for (let i = 0; i < 8; i++) working[i] = inner[i]!;
    hashInto(working, 64, prefix, 0, prefixLength, message, start, end);
    // The outer hash's only block: the inner digest, the marker, and the length of pad + digest.
    for (let i = 0; i < 8; i++) W[i] = working[i]!;
    W[8] = 0x80000000 | 0;
    for (let i = 9; i < 15; i++) W[i] = 0;
    W[15] = (64 + 32) * 8;
    const outer = this.#outer;
    for (let i = 0; i < 8; i++) working[i] = outer[i]!;
    compress(working, W);
    writeState(working, out, outOffset);
  }

  /** HMAC(key, message) as a new 32-byte array. */
  digest(message: Uint8Array): Uint8Array {
    const out = new Uint8Array(32);
    this.digestInto(EMPTY, 0, message, 0, message.length, out, 0);
    return out;
  }
}

const EMPTY = new Uint8Array(0);
