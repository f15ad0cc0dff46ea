import { createHash, createHmac, pbkdf2, randomBytes, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';

const pbkdf2Async = promisify(pbkdf2);

/** The only mechanism we speak; `-PLUS` (channel binding) is left to a later version. */
export const SCRAM_SHA_256 = 'SCRAM-SHA-256';

/** No channel binding: the gs2 header `n,,`, which the client-final message echoes as `c=biws`. */
const GS2_HEADER = 'n,,';

/** A SCRAM exchange that went wrong: a malformed server message, or a server that failed to prove itself. */
export class ScramError extends Error {
  override readonly name = 'ScramError';
}

/** The client's state between its first message and the server's first reply. */
export interface ScramClientFirst {
  readonly clientNonce: string;
  readonly clientFirstBare: string;
  /** What goes in the SASLInitialResponse. */
  readonly message: string;
}

/** The client's proof, and the signature the server must show to prove it knows the password too. */
export interface ScramClientFinal {
  /** What goes in the SASLResponse. */
  readonly message: string;
  readonly expectedServerSignature: Buffer;
}

/**
 * Starts an exchange (RFC 5802 section 3). PostgreSQL ignores the user name here and takes the one
 * from the startup message, so it is empty unless a test vector needs it.
 */
export function scramClientFirst(
  options: { username?: string; clientNonce?: string } = {},
): ScramClientFirst {
  const clientNonce = options.clientNonce ?? randomBytes(18).toString('base64');
  const clientFirstBare = `n=${escapeSaslName(options.username ?? '')},r=${clientNonce}`;
  return { clientNonce, clientFirstBare, message: GS2_HEADER + clientFirstBare };
}

/** Answers the server-first message with the client proof. Async because PBKDF2 runs off the event loop. */
export async function scramClientFinal(
  first: ScramClientFirst,
  serverFirstMessage: string,
  password: string,
): Promise<ScramClientFinal> {
  const { nonce, salt, iterations } = parseServerFirst(serverFirstMessage, first.clientNonce);
  const saltedPassword = await pbkdf2Async(saslPrep(password), salt, iterations, 32, 'sha256');
  const clientKey = hmac(saltedPassword, 'Client Key');
  const storedKey = createHash('sha256').update(clientKey).digest();
  const clientFinalWithoutProof = `c=${Buffer.from(GS2_HEADER).toString('base64')},r=${nonce}`;
  const authMessage = `${first.clientFirstBare},${serverFirstMessage},${clientFinalWithoutProof}`;
  const clientSignature = hmac(storedKey, authMessage);
  const proof = Buffer.alloc(clientKey.length);
  for (let i = 0; i < proof.length; i++) proof[i] = clientKey[i]! ^ clientSignature[i]!;
  return {
    message: `${clientFinalWithoutProof},p=${proof.toString('base64')}`,
    expectedServerSignature: hmac(hmac(saltedPassword, 'Server Key'), authMessage),
  };
}

/** Throws unless the server-final message carries exactly the signature we expect. */
export function verifyScramServerFinal(serverFinalMessage: string, expectedServerSignature: Buffer): void {
  const attributes = parseAttributes(serverFinalMessage);
  const error = attributes.get('e');
  if (error !== undefined) throw new ScramError(`server rejected the SCRAM exchange: ${error}`);
  const verifier = attributes.get('v');
  if (verifier === undefined) throw new ScramError('server-final message has no verifier');
  const signature = Buffer.from(verifier, 'base64');
  if (
    signature.length !== expectedServerSignature.length ||
    !timingSafeEqual(signature, expectedServerSignature)
  ) {
    throw new ScramError('server signature does not match: the server does not know the password');
  }
}

function parseServerFirst(
  message: string,
  clientNonce: string,
): { nonce: string; salt: Buffer; iterations: number } {
  const attributes = parseAttributes(message);
  if (attributes.has('m')) throw new ScramError('server-first message requires an unsupported extension');
  const nonce = attributes.get('r');
  const saltText = attributes.get('s');
  const iterationsText = attributes.get('i');
  if (nonce === undefined || saltText === undefined || iterationsText === undefined) {
    throw new ScramError('server-first message lacks a nonce, salt or iteration count');
  }
  // The server must extend our nonce, not replace it: otherwise a replayed exchange would pass.
  if (!nonce.startsWith(clientNonce) || nonce.length === clientNonce.length) {
    throw new ScramError('server nonce does not extend the client nonce');
  }
  const salt = Buffer.from(saltText, 'base64');
  if (salt.length === 0) throw new ScramError('server-first message has an empty salt');
  if (!/^[1-9][0-9]{0,9}$/.test(iterationsText) || Number(iterationsText) > 0x7fffffff) {
    throw new ScramError('server-first message has an invalid iteration count');
  }
  return { nonce, salt, iterations: Number(iterationsText) };
}

function parseAttributes(message: string): Map<string, string> {
  const attributes = new Map<string, string>();
  for (const part of message.split(',')) {
    if (!/^[a-zA-Z]=/.test(part)) throw new ScramError('malformed SCRAM message');
    attributes.set(part[0]!, part.slice(2));
  }
  return attributes;
}

function hmac(key: Buffer, text: string): Buffer {
  return createHmac('sha256', key).update(text).digest();
}

function escapeSaslName(name: string): string {
  return name.replaceAll('=', '=3D').replaceAll(',', '=2C');
}

const NON_ASCII_SPACE = /[\u00a0\u1680\u2000-\u200b\u202f\u205f\u3000]/gu;
// biome-ignore lint/suspicious/noMisleadingCharacterClass: code points from RFC 3454 table B.1, matched singly.
const MAPPED_TO_NOTHING = /[\u00ad\u034f\u1806\u180b-\u180d\u200b-\u200d\u2060\ufe00-\ufe0f\ufeff]/gu;
// RFC 4013 section 2.3 (tables C.1.2 to C.9 of RFC 3454), with unassigned code points judged by the
// Unicode version Node ships rather than 3.2.
const PROHIBITED =
  // biome-ignore lint/suspicious/noMisleadingCharacterClass: code points from RFC 3454 tables, matched singly.
  /[\u00a0\u1680\u2000-\u200f\u2028-\u202f\u205f-\u2063\u206a-\u206f\u3000\u0000-\u001f\u007f-\u009f\u0340\u0341\u06dd\u070f\u180e\u2ff0-\u2ffb\ufdd0-\ufdef\ufeff\ufff9-\ufffd\p{Co}\p{Cs}\p{Cn}\u{1d173}-\u{1d17a}\u{e0001}\u{e0020}-\u{e007f}]/u;

/**
 * SASLprep (RFC 4013) as PostgreSQL applies it to passwords: ASCII passes unchanged, anything that
 * fails the profile is used as given. Without this, a non-ASCII password that the server normalised
 * when it was set would never match. The bidirectional-text rule is not checked.
 */
export function saslPrep(password: string): string {
  if (/^[\u0000-\u007f]*$/.test(password)) return password;
  const prepared = password.replace(NON_ASCII_SPACE, ' ').replace(MAPPED_TO_NOTHING, '').normalize('NFKC');
  if (prepared.length === 0 || PROHIBITED.test(prepared)) return password;
  return prepared;
}
