import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdir, open, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { UserError } from '../errors.ts';
import { sha256Hex } from './chain.ts';

export interface SigningKey {
  readonly privateKey: KeyObject;
  /** Base64 of the DER SubjectPublicKeyInfo, as written in `log.open`. */
  readonly publicKey: string;
  /** First 16 hex digits of the SHA-256 of the DER public key: a short name for logs. */
  readonly keyId: string;
}

/**
 * Loads the Ed25519 key from a PKCS#8 PEM file, or makes a key for this run only when no file is
 * given (its public key still goes into `log.open`, so checkpoints remain checkable, but anyone who
 * can rewrite the log can also make a key of their own: see log.ts on what pinning adds).
 */
export async function loadSigningKey(file: string | undefined): Promise<SigningKey> {
  let privateKey: KeyObject;
  if (file === undefined) {
    privateKey = generateKeyPairSync('ed25519').privateKey;
  } else {
    let pem: Buffer;
    try {
      pem = await readFile(file);
    } catch (error) {
      throw new UserError(
        `audit signing key ${file}: cannot read it (${(error as NodeJS.ErrnoException).code})`,
      );
    }
    try {
      privateKey = createPrivateKey(pem);
    } catch {
      throw new UserError(`audit signing key ${file}: not a PEM private key`);
    }
    if (privateKey.asymmetricKeyType !== 'ed25519') {
      throw new UserError(
        `audit signing key ${file}: is ${privateKey.asymmetricKeyType ?? 'not an asymmetric key'}, needs ed25519 (openssl genpkey -algorithm ed25519)`,
      );
    }
  }
  const publicKey = createPublicKey(privateKey).export({ type: 'spki', format: 'der' }).toString('base64');
  return { privateKey, publicKey, keyId: keyIdOf(publicKey) };
}

/** The public key as `log.open` writes it, from a PEM public (or private) key; throws when not Ed25519. */
export function publicKeyFromPem(pem: string | Buffer): string {
  const key = createPublicKey(pem);
  if (key.asymmetricKeyType !== 'ed25519') throw new Error(`is ${key.asymmetricKeyType}, not ed25519`);
  return key.export({ type: 'spki', format: 'der' }).toString('base64');
}

/** The short name of a public key as `log.open` writes it (base64 DER SPKI). */
export function keyIdOf(publicKey: string): string {
  return sha256Hex(Buffer.from(publicKey, 'base64')).slice(0, 16);
}

/** The key of a `log.open` record; undefined when it is not an Ed25519 public key. */
export function importPublicKey(base64: string): KeyObject | undefined {
  try {
    const key = createPublicKey({ key: Buffer.from(base64, 'base64'), format: 'der', type: 'spki' });
    return key.asymmetricKeyType === 'ed25519' ? key : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Makes an Ed25519 signing key at `file` (PKCS#8 PEM, readable by its owner only) unless one is
 * there, and its public half beside it as `FILE.pub` (what `audit verify --public-key` takes). A key
 * that stays from run to run keeps one log verifiable across restarts. Returns whether it made one.
 */
export async function ensureSigningKeyFile(file: string): Promise<'made' | 'found'> {
  await mkdir(dirname(file), { recursive: true });
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(file, 'wx', 0o600);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return 'found';
    throw error;
  }
  try {
    await handle.writeFile(privateKey.export({ type: 'pkcs8', format: 'pem' }));
  } finally {
    await handle.close();
  }
  const pub = await open(`${file}.pub`, 'w', 0o644);
  try {
    await pub.writeFile(publicKey.export({ type: 'spki', format: 'pem' }));
  } finally {
    await pub.close();
  }
  return 'made';
}
