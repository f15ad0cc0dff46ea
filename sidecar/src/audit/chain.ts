import { hash as digest, type KeyObject, sign, verify } from 'node:crypto';

/**
 * The line format shared by the writer and the verifier.
 *
 * A record is one line: the canonical JSON of its fields (JSON.stringify, keys in the writer's
 * order, no whitespace), with `"hash"` appended as the last key: the hex SHA-256 of the line as it
 * was before `hash` was added (its body). Each record's `prev` is the previous record's `hash`, and
 * the first record's is GENESIS, so changing, removing, inserting or reordering any record breaks
 * the chain at that point. A checkpoint line also appends `"sig"`: an Ed25519 signature over its seq
 * and hash, and since its hash covers its `prev`, the signature covers every record before it.
 */
export const GENESIS = '0'.repeat(64);

export interface ChainedLine {
  readonly line: string;
  readonly hash: string;
}

export function sha256Hex(data: string | Uint8Array): string {
  // One-shot: half the cost of a createHash object for a record-sized input.
  return digest('sha256', data, 'hex');
}

/** Serializes a record; `fields` gains its `hash` as the last key, so it prints like its line. */
export function chainLine(fields: Record<string, unknown>): ChainedLine {
  const body = JSON.stringify(fields);
  const hash = sha256Hex(body);
  fields['hash'] = hash;
  return { line: `${body.slice(0, -1)},"hash":"${hash}"}`, hash };
}

/**
 * The line of a record whose fields after `seq` and `prev` are already JSON text (`"time":...`, no
 * braces): the same bytes `chainLine` makes of the same fields, without serialising them again.
 */
export function chainText(seq: number, prev: string, text: string): ChainedLine {
  const body = `{"seq":${seq},"prev":"${prev}",${text}}`;
  const hash = sha256Hex(body);
  return { line: `${body.slice(0, -1)},"hash":"${hash}"}`, hash };
}

/** `chainText` for a checkpoint: signed like `chainSignedLine`. */
export function chainSignedText(
  seq: number,
  prev: string,
  text: string,
  key: KeyObject,
): ChainedLine & { sig: string } {
  const body = `{"seq":${seq},"prev":"${prev}",${text}}`;
  const hash = sha256Hex(body);
  const sig = sign(null, checkpointMessage(seq, hash), key).toString('base64');
  return { line: `${body.slice(0, -1)},"hash":"${hash}","sig":"${sig}"}`, hash, sig };
}

/** Bytes of `chainText`'s line (plus `"sig"` for a checkpoint), known before it is hashed or signed. */
export function chainTextBytes(seq: number, text: string, signed: boolean): number {
  // {"seq": ,"prev":" <64> ", ,"hash":" <64> "} and, signed, ,"sig":" <88: 64 bytes in base64> "
  return 157 + String(seq).length + Buffer.byteLength(text) + (signed ? 97 : 0);
}

/** Serializes and signs a checkpoint; `fields` gains `hash` and `sig`. */
export function chainSignedLine(
  fields: Record<string, unknown> & { seq: number },
  key: KeyObject,
): ChainedLine {
  const body = JSON.stringify(fields);
  const hash = sha256Hex(body);
  const sig = sign(null, checkpointMessage(fields.seq, hash), key).toString('base64');
  fields['hash'] = hash;
  fields['sig'] = sig;
  return { line: `${body.slice(0, -1)},"hash":"${hash}","sig":"${sig}"}`, hash };
}

/** Domain-separated, so a checkpoint signature means nothing anywhere else. */
function checkpointMessage(seq: number, hash: string): Buffer {
  return Buffer.from(`gatehouse.audit.checkpoint.v1\n${seq}\n${hash}`, 'utf8');
}

export function checkpointSignatureValid(seq: number, hash: string, sig: string, key: KeyObject): boolean {
  try {
    return verify(null, checkpointMessage(seq, hash), key, Buffer.from(sig, 'base64'));
  } catch {
    return false;
  }
}

/**
 * A `log.open` that changes the signing key carries this: the previous key's signature over the new
 * public key at this place in the chain (its seq and prev), so it cannot be moved to another log or
 * place, and nobody without the previous key can hand the log over to a key of their own.
 */
export function keyChangeSignature(
  seq: number,
  prev: string,
  publicKey: string,
  previousKey: KeyObject,
): string {
  return sign(null, keyChangeMessage(seq, prev, publicKey), previousKey).toString('base64');
}

export function keyChangeSignatureValid(
  seq: number,
  prev: string,
  publicKey: string,
  sig: string,
  previousKey: KeyObject,
): boolean {
  try {
    return verify(null, keyChangeMessage(seq, prev, publicKey), previousKey, Buffer.from(sig, 'base64'));
  } catch {
    return false;
  }
}

function keyChangeMessage(seq: number, prev: string, publicKey: string): Buffer {
  return Buffer.from(`gatehouse.audit.key-change.v1\n${seq}\n${prev}\n${publicKey}`, 'utf8');
}

export interface ParsedRecord {
  readonly seq: number;
  readonly prev: string;
  readonly type: string;
  readonly [field: string]: unknown;
}

export type ParsedLine =
  | {
      readonly ok: true;
      readonly record: ParsedRecord;
      readonly hash: string;
      readonly sig: string | undefined;
    }
  | {
      readonly ok: false;
      readonly reason: string;
      /** Not JSON at all: what a write cut short by a crash leaves (a prefix of a line never parses). */
      readonly torn: boolean;
      readonly record?: ParsedRecord;
    };

/**
 * Reads one line and checks it against its own hash. A line whose bytes are not exactly what the
 * writer would have produced for its fields (other key order, spacing, escapes) is rejected, so
 * the hash always covers the bytes on disk.
 */
export function parseChainLine(line: string): ParsedLine {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return { ok: false, reason: 'not a JSON line', torn: true };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, reason: 'not a JSON object', torn: false };
  }
  const { hash, sig, ...body } = value as Record<string, unknown>;
  if (
    !Number.isSafeInteger(body['seq']) ||
    typeof body['prev'] !== 'string' ||
    typeof body['type'] !== 'string' ||
    typeof hash !== 'string'
  ) {
    return { ok: false, reason: 'not an audit record (seq, prev, type or hash missing)', torn: false };
  }
  const record = body as ParsedRecord;
  if (sig !== undefined && typeof sig !== 'string')
    return { ok: false, reason: 'sig is not a string', torn: false, record };
  const bodyText = JSON.stringify(body);
  const canonical = `${bodyText.slice(0, -1)},"hash":${JSON.stringify(hash)}${sig === undefined ? '' : `,"sig":${JSON.stringify(sig)}`}}`;
  if (canonical !== line)
    return { ok: false, reason: 'not in canonical form (bytes were edited)', torn: false, record };
  if (sha256Hex(bodyText) !== hash)
    return { ok: false, reason: "hash does not match the record's content", torn: false, record };
  return { ok: true, record, hash, sig };
}

/** The seq of a record line, read from its first bytes (every record starts `{"seq":N,`) without parsing it. */
export function leadingSeq(line: string): number | undefined {
  const match = /^\{"seq":(\d{1,15}),/.exec(line);
  return match ? Number(match[1]) : undefined;
}
