import { sha256 } from '@noble/hashes/sha2.js';

/*
 * HMAC-SHA-256 (RFC 2104) for the masking hot path, over @noble/hashes' SHA-256 (audited, pure
 * JavaScript). node:crypto costs about 1 µs a call here whatever the length (createHmac several µs,
 * even the one-shot crypto.hash about 0.9 µs), while the two SHA-256 blocks of a short value's HMAC
 * cost about 0.5 µs in noble. The key's pad blocks are absorbed once, into an inner and an outer
 * hash state, and each value clones them into two hash objects kept for the purpose. noble's own
 * HMAC object does the same but spends about a third again on each call (a DataView and a subarray
 * per intermediate digest); here each digest is written into its hash's own block buffer, which
 * noble writes without a new DataView. hmac-sha256.test.ts checks it against node:crypto.
 */

/** The part of noble's SHA-256 object used here; its generic types do not survive _cloneInto. */
interface Sha256 {
  update(data: Uint8Array): Sha256;
  digestInto(out: Uint8Array): void;
  _cloneInto(to?: Sha256): Sha256;
}

const BLOCK = 64;
const DIGEST = 32;

/** Where a hash object writes its digest, and the digest's bytes there. */
interface DigestSlot {
  readonly target: Uint8Array;
  readonly digest: Uint8Array;
}

/*
 * noble's block buffer is a protected field: if a later version renames it, digests go to an array
 * of their own (a DataView more per call) rather than anywhere unchecked.
 */
function digestSlot(hash: Sha256): DigestSlot {
  const buffer = (hash as unknown as { buffer?: unknown }).buffer;
  if (buffer instanceof Uint8Array && buffer.length === BLOCK) {
    return { target: buffer, digest: buffer.subarray(0, DIGEST) };
  }
  const own = new Uint8Array(DIGEST);
  return { target: own, digest: own };
}

/** An HMAC-SHA-256 key with its pad blocks already absorbed. */
export class HmacSha256 {
  readonly #inner: Sha256;
  readonly #outer: Sha256;
  readonly #innerWork: Sha256;
  readonly #outerWork: Sha256;
  readonly #innerSlot: DigestSlot;
  readonly #outerSlot: DigestSlot;

  constructor(key: Uint8Array) {
    const pad = new Uint8Array(BLOCK);
    pad.set(key.length > BLOCK ? sha256(key) : key);
    for (let i = 0; i < BLOCK; i++) pad[i]! ^= 0x36;
    this.#inner = sha256.create().update(pad) as unknown as Sha256;
    for (let i = 0; i < BLOCK; i++) pad[i]! ^= 0x36 ^ 0x5c;
    this.#outer = sha256.create().update(pad) as unknown as Sha256;
    pad.fill(0);
    this.#innerWork = this.#inner._cloneInto();
    this.#outerWork = this.#outer._cloneInto();
    this.#innerSlot = digestSlot(this.#innerWork);
    this.#outerSlot = digestSlot(this.#outerWork);
  }

  /**
   * Writes HMAC(key, prefix || message[start..end)) into out[outOffset..+32). The prefix lets
   * callers separate domains or count blocks without concatenating buffers; an empty one is skipped.
   */
  digestInto(
    prefix: Uint8Array,
    message: Uint8Array,
    start: number,
    end: number,
    out: Uint8Array,
    outOffset: number,
  ): void {
    const inner = this.#inner._cloneInto(this.#innerWork);
    if (prefix.length > 0) inner.update(prefix);
    inner.update(start === 0 && end === message.length ? message : message.subarray(start, end));
    inner.digestInto(this.#innerSlot.target);
    const outer = this.#outer._cloneInto(this.#outerWork);
    outer.update(this.#innerSlot.digest);
    outer.digestInto(this.#outerSlot.target);
    out.set(this.#outerSlot.digest, outOffset);
  }

  /** HMAC(key, message) as a new 32-byte array. */
  digest(message: Uint8Array): Uint8Array {
    const out = new Uint8Array(DIGEST);
    this.digestInto(EMPTY, message, 0, message.length, out, 0);
    return out;
  }
}

const EMPTY = new Uint8Array(0);
