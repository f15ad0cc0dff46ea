import { HmacSha256 } from './hmac-sha256.ts';

/**
 * The keys behind `hash` and `tokenize`, derived from the configured secret so that the two
 * methods never share a key: hash = HMAC-SHA-256(HMAC-SHA-256(secret, HASH_LABEL), value).
 */
export interface MaskingKey {
  readonly hash: HmacSha256;
  readonly tokenize: HmacSha256;
}

export const HASH_LABEL = 'gatehouse masking hash v1';
export const TOKENIZE_LABEL = 'gatehouse masking tokenize v1';

/** At least 128 bits: shorter secrets make tokens of short values guessable offline. */
export const MIN_SECRET_BYTES = 16;

export function createMaskingKey(secret: Uint8Array): MaskingKey {
  if (secret.length < MIN_SECRET_BYTES) {
    throw new RangeError(`a masking key needs at least ${MIN_SECRET_BYTES} bytes, got ${secret.length}`);
  }
  const root = new HmacSha256(secret);
  return {
    hash: new HmacSha256(root.digest(Buffer.from(HASH_LABEL))),
    tokenize: new HmacSha256(root.digest(Buffer.from(TOKENIZE_LABEL))),
  };
}
