import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';

/**
 * What the console keeps in the store for someone holding a bearer secret (a session cookie, an
 * OpenID state): rows are found by the secret's SHA-256 and their contents sealed with AES-256-GCM
 * under a key derived from the secret (HKDF-SHA256), so the store holds nothing a reader could
 * present or decrypt. Only a request carrying the secret opens its row. The secrets are 256 random
 * bits, so a plain hash is enough: nothing is guessable to hash.
 */
export interface BearerKeys {
  /** The row's key: SHA-256 of the secret, base64url. */
  readonly lookup: string;
  readonly sealKey: Buffer;
}

const NONCE_BYTES = 12;
const TAG_BYTES = 16;

/** `purpose` separates the keys of different rows, so one secret's key opens only its own kind. */
export function bearerKeys(secret: string, purpose: string): BearerKeys {
  const ikm = Buffer.from(secret, 'utf8');
  return {
    lookup: createHash('sha256').update(ikm).digest('base64url'),
    sealKey: Buffer.from(hkdfSync('sha256', ikm, Buffer.alloc(0), `gatehouse ${purpose} seal`, 32)),
  };
}

/** Another value derived from the secret, for a `purpose` other than sealing (a CSRF token). */
export function derivedToken(secret: string, purpose: string): string {
  return Buffer.from(
    hkdfSync('sha256', Buffer.from(secret, 'utf8'), Buffer.alloc(0), `gatehouse ${purpose}`, 32),
  ).toString('base64url');
}

/**
 * `value` as JSON, sealed: nonce, ciphertext and tag in base64url. `context` (the row's lookup and
 * the field) is authenticated, so a sealed value copied into another row or field does not open.
 */
export function seal(keys: BearerKeys, context: string, value: unknown): string {
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', keys.sealKey, nonce);
  cipher.setAAD(Buffer.from(`${keys.lookup}/${context}`, 'utf8'));
  const body = Buffer.concat([cipher.update(JSON.stringify(value), 'utf8'), cipher.final()]);
  return Buffer.concat([nonce, body, cipher.getAuthTag()]).toString('base64url');
}

/** The value `seal` sealed, or undefined when it does not open with these keys in this context. */
export function unseal(keys: BearerKeys, context: string, sealed: string): unknown {
  const bytes = Buffer.from(sealed, 'base64url');
  if (bytes.length < NONCE_BYTES + TAG_BYTES) return undefined;
  try {
    const decipher = createDecipheriv('aes-256-gcm', keys.sealKey, bytes.subarray(0, NONCE_BYTES));
    decipher.setAAD(Buffer.from(`${keys.lookup}/${context}`, 'utf8'));
    decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES));
    const plain = Buffer.concat([
      decipher.update(bytes.subarray(NONCE_BYTES, bytes.length - TAG_BYTES)),
      decipher.final(),
    ]);
    return JSON.parse(plain.toString('utf8'));
  } catch {
    return undefined;
  }
}
