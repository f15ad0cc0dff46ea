import { hash } from 'node:crypto';

/*
 * HMAC-SHA-256 (RFC 2104 over FIPS 180-4) for the masking hot path. node:crypto's createHmac costs
 * tens of microseconds per call on Node 24 (OpenSSL 3 fetches the algorithm for every object it
 * creates); here the key's inner and outer pad blocks are compressed once, so a short value costs two
 * compressions and no allocation. hmac-sha256.test.ts checks it against node:crypto.
 */

/** The first 32 bits of the fractional parts of the cube roots of the first 64 primes (FIPS 180-4, 4.2.2). */
const ROUND_CONSTANTS = firstPrimes(64).map((p) => fractionBits(Math.cbrt(p)));
/** The same for the square roots of the first 8 primes (FIPS 180-4, 5.3.3). */
const INITIAL_STATE = firstPrimes(8).map((p) => fractionBits(Math.sqrt(p)));

function firstPrimes(count: number): number[] {
  const primes: number[] = [];
  for (let n = 2; primes.length < count; n++) if (primes.every((p) => n % p !== 0)) primes.push(n);
  return primes;
}

function fractionBits(x: number): number {
  return Math.floor((x - Math.floor(x)) * 2 ** 32) | 0;
}

const K = Int32Array.from(ROUND_CONSTANTS);
const schedule = new Int32Array(64);

/** One SHA-256 compression of the 64 bytes at block[offset...] into state. */
function compress(state: Int32Array, block: Uint8Array, offset: number): void {
  const w = schedule;
  for (let i = 0; i < 16; i++) {
    const j = offset + i * 4;
    w[i] = (block[j]! << 24) | (block[j + 1]! << 16) | (block[j + 2]! << 8) | block[j + 3]!;
  }
  for (let i = 16; i < 64; i++) {
    const x = w[i - 15]!;
    const y = w[i - 2]!;
    const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
    const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
    w[i] = (w[i - 16]! + s0 + w[i - 7]! + s1) | 0;
  }
  let a = state[0]!;
  let b = state[1]!;
  let c = state[2]!;
  let d = state[3]!;
  let e = state[4]!;
  let f = state[5]!;
  let g = state[6]!;
  let h = state[7]!;
  for (let i = 0; i < 64; i++) {
    const s1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
    const t1 = (h + s1 + ((e & f) ^ (~e & g)) + K[i]! + w[i]!) | 0;
    const s0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
    const t2 = (s0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
    h = g;
    g = f;
    f = e;
    e = (d + t1) | 0;
    d = c;
    c = b;
    b = a;
    a = (t1 + t2) | 0;
  }
  state[0] = (state[0]! + a) | 0;
  state[1] = (state[1]! + b) | 0;
  state[2] = (state[2]! + c) | 0;
  state[3] = (state[3]! + d) | 0;
  state[4] = (state[4]! + e) | 0;
  state[5] = (state[5]! + f) | 0;
  state[6] = (state[6]! + g) | 0;
  state[7] = (state[7]! + h) | 0;
}

// Scratch space: the masker runs on one thread and never re-enters a digest.
const block = new Uint8Array(64);
const working = new Int32Array(8);

function writeState(state: Int32Array, out: Uint8Array, offset: number): void {
  for (let i = 0; i < 8; i++) {
    const v = state[i]!;
    out[offset + i * 4] = v >>> 24;
    out[offset + i * 4 + 1] = v >>> 16;
    out[offset + i * 4 + 2] = v >>> 8;
    out[offset + i * 4 + 3] = v;
  }
}

/**
 * Hashes `prefix` (bytes 0..prefixLength) then `message` (bytes start..end), continuing from a state
 * that has already absorbed one 64-byte block, and leaves the digest in `working`.
 */
function finishFrom(
  initial: Int32Array,
  prefix: Uint8Array,
  prefixLength: number,
  message: Uint8Array,
  start: number,
  end: number,
): void {
  working.set(initial);
  let filled = 0;
  for (let i = 0; i < prefixLength; i++) {
    block[filled++] = prefix[i]!;
    if (filled === 64) {
      compress(working, block, 0);
      filled = 0;
    }
  }
  let i = start;
  if (filled === 0) {
    for (; i + 64 <= end; i += 64) compress(working, message, i);
  }
  for (; i < end; i++) {
    block[filled++] = message[i]!;
    if (filled === 64) {
      compress(working, block, 0);
      filled = 0;
    }
  }
  const bitLength = (64 + prefixLength + end - start) * 8;
  block[filled++] = 0x80;
  if (filled > 56) {
    block.fill(0, filled);
    compress(working, block, 0);
    filled = 0;
  }
  block.fill(0, filled, 56);
  const high = Math.floor(bitLength / 2 ** 32);
  block[56] = high >>> 24;
  block[57] = high >>> 16;
  block[58] = high >>> 8;
  block[59] = high;
  block[60] = bitLength >>> 24;
  block[61] = bitLength >>> 16;
  block[62] = bitLength >>> 8;
  block[63] = bitLength;
  compress(working, block, 0);
}

const innerDigest = new Uint8Array(32);
const EMPTY = new Uint8Array(0);

/** An HMAC-SHA-256 key with its pad blocks already absorbed. */
export class HmacSha256 {
  readonly #inner = Int32Array.from(INITIAL_STATE);
  readonly #outer = Int32Array.from(INITIAL_STATE);

  constructor(key: Uint8Array) {
    const padded = new Uint8Array(64);
    // RFC 2104: a key longer than a block is replaced by its hash.
    padded.set(key.length > 64 ? hash('sha256', key, 'buffer') : key);
    const pad = new Uint8Array(64);
    for (let i = 0; i < 64; i++) pad[i] = padded[i]! ^ 0x36;
    compress(this.#inner, pad, 0);
    for (let i = 0; i < 64; i++) pad[i] = padded[i]! ^ 0x5c;
    compress(this.#outer, pad, 0);
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
    finishFrom(this.#inner, prefix, prefixLength, message, start, end);
    writeState(working, innerDigest, 0);
    finishFrom(this.#outer, EMPTY, 0, innerDigest, 0, 32);
    writeState(working, out, outOffset);
  }

  /** HMAC(key, message) as a new 32-byte array. */
  digest(message: Uint8Array): Uint8Array {
    const out = new Uint8Array(32);
    this.digestInto(EMPTY, 0, message, 0, message.length, out, 0);
    return out;
  }
}
