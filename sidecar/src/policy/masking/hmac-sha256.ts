import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';

/*
 * HMAC-SHA-256 for the masking hot path, from @noble/hashes (audited, pure JavaScript). node:crypto's
 * createHmac costs about 16 µs per call on Node 24 here (OpenSSL 3 fetches the algorithm for every
 * object it creates); a noble HMAC keyed once and cloned per value costs about a microsecond.
 * hmac-sha256.test.ts checks it against node:crypto.
 */

/** The part of noble's HMAC object used here; its own generic types do not survive _cloneInto. */
interface Mac {
  update(data: Uint8Array): Mac;
  digestInto(out: Uint8Array): void;
  _cloneInto(to?: Mac): Mac;
}

/** An HMAC-SHA-256 key with its pad blocks already absorbed. */
export class HmacSha256 {
  readonly #keyed: Mac;
  #scratch: Mac | undefined;
  readonly #digest = new Uint8Array(32);

  constructor(key: Uint8Array) {
    this.#keyed = hmac.create(sha256, key) as unknown as Mac;
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
    const mac = this.#keyed._cloneInto(this.#scratch);
    this.#scratch = mac;
    if (prefixLength > 0) mac.update(prefix.subarray(0, prefixLength));
    mac.update(message.subarray(start, end));
    mac.digestInto(this.#digest);
    out.set(this.#digest, outOffset);
  }

  /** HMAC(key, message) as a new 32-byte array. */
  digest(message: Uint8Array): Uint8Array {
    const out = new Uint8Array(32);
    this.digestInto(EMPTY, 0, message, 0, message.length, out, 0);
    return out;
  }
}

const EMPTY = new Uint8Array(0);
