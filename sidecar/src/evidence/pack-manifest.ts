import { type KeyObject, sign, verify } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { sha256Hex } from '../audit/chain.ts';
import { importPublicKey, keyIdOf, type SigningKey } from '../audit/signing-key.ts';

export const MANIFEST_FILE = 'manifest.json';
const FORMAT = 'gatehouse.evidence-pack.v1';

export interface ManifestEntry {
  readonly name: string;
  readonly sha256: string;
  readonly bytes: number;
}

/** manifest.json but its signature: what the signature covers, byte for byte as JSON.stringify writes it. */
export interface ManifestBody {
  readonly format: string;
  readonly builtAt: string;
  readonly period: { readonly from: string; readonly to: string };
  readonly files: readonly ManifestEntry[];
  readonly signer: {
    /** Base64 DER SPKI, as the audit log's `log.open` writes a key. */
    readonly publicKey: string;
    readonly keyId: string;
    /** `key-file` (--signing-key) or `made-for-this-pack` (no key given: proves the pack unaltered since, not who built it). */
    readonly key: 'key-file' | 'made-for-this-pack';
  };
}

/**
 * The text of manifest.json for `files` (every other file of the pack), signed with the same kind of
 * Ed25519 key (and key file) that signs audit checkpoints. Entries are sorted by name.
 */
export function signedManifest(
  files: ReadonlyMap<string, string | Uint8Array>,
  meta: { builtAt: string; period: { from: string; to: string }; keyFromFile: boolean },
  key: SigningKey,
): string {
  const entries = [...files.entries()]
    .map(([name, content]) => ({ name, sha256: sha256Hex(content), bytes: Buffer.byteLength(content) }))
    .sort((a, b) => (a.name < b.name ? -1 : 1));
  const body: ManifestBody = {
    format: FORMAT,
    builtAt: meta.builtAt,
    period: meta.period,
    files: entries,
    signer: {
      publicKey: key.publicKey,
      keyId: key.keyId,
      key: meta.keyFromFile ? 'key-file' : 'made-for-this-pack',
    },
  };
  const signature = sign(null, manifestMessage(JSON.stringify(body)), key.privateKey).toString('base64');
  return `${JSON.stringify({ ...body, signature }, null, 2)}\n`;
}

/** Domain-separated, so the signature means nothing as a checkpoint's, nor a checkpoint's as this. */
function manifestMessage(bodyJson: string): Buffer {
  return Buffer.from(`gatehouse.evidence.manifest.v1\n${sha256Hex(bodyJson)}`, 'utf8');
}

export interface PackVerification {
  readonly ok: boolean;
  /** One line each: the signature, a digest, a missing or extra file. */
  readonly problems: readonly string[];
  readonly files: number;
  readonly keyId: string | undefined;
  /** The manifest's key was the one given to verify (--key). */
  readonly pinned: boolean;
  readonly signerKey: ManifestBody['signer']['key'] | undefined;
}

/**
 * Checks a pack directory: manifest.json parses and its signature verifies (with `pinnedKey`, base64
 * SPKI, when given: the manifest must name that key), every file it lists has its digest, and the
 * directory holds no file it does not list and lacks none it does.
 */
export async function verifyPack(dir: string, pinnedKey?: string): Promise<PackVerification> {
  const problems: string[] = [];
  const fail = (problem: string, body?: Partial<ManifestBody>): PackVerification => ({
    ok: false,
    problems: [...problems, problem],
    files: body?.files?.length ?? 0,
    keyId: body?.signer?.keyId,
    pinned: false,
    signerKey: body?.signer?.key,
  });
  let text: string;
  try {
    text = await readFile(join(dir, MANIFEST_FILE), 'utf8');
  } catch (error) {
    return fail(
      `${MANIFEST_FILE}: cannot read it (${(error as NodeJS.ErrnoException).code ?? String(error)})`,
    );
  }
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return fail(`${MANIFEST_FILE}: not JSON`);
  }
  const { signature, ...rest } = parsed;
  const body = rest as unknown as ManifestBody;
  if (body.format !== FORMAT || !Array.isArray(body.files) || typeof body.signer?.publicKey !== 'string')
    return fail(`${MANIFEST_FILE}: not a ${FORMAT} manifest`);
  const key: KeyObject | undefined = importPublicKey(body.signer.publicKey);
  if (!key) return fail(`${MANIFEST_FILE}: signer.publicKey is not an Ed25519 public key`, body);
  if (keyIdOf(body.signer.publicKey) !== body.signer.keyId)
    problems.push(`${MANIFEST_FILE}: signer.keyId does not name signer.publicKey`);
  const pinned = pinnedKey !== undefined && pinnedKey === body.signer.publicKey;
  if (pinnedKey !== undefined && !pinned)
    problems.push(
      `${MANIFEST_FILE}: signed by key ${body.signer.keyId}, not by the key given with --key (${keyIdOf(pinnedKey)})`,
    );
  let signatureValid = false;
  try {
    signatureValid =
      typeof signature === 'string' &&
      verify(null, manifestMessage(JSON.stringify(body)), key, Buffer.from(signature, 'base64'));
  } catch {
    signatureValid = false;
  }
  if (!signatureValid)
    problems.push(
      `${MANIFEST_FILE}: the signature does not verify (the manifest was altered, or signed by another key)`,
    );

  const listed = new Set<string>();
  for (const entry of body.files) {
    const name = typeof entry?.name === 'string' ? entry.name : '';
    // A manifest names files of the pack's own folder; a path elsewhere is not one it may vouch for.
    if (!/^[\w.-]+$/.test(name) || name === MANIFEST_FILE || name.startsWith('..')) {
      problems.push(`${MANIFEST_FILE}: lists ${JSON.stringify(name)}, which is not a file name of the pack`);
      continue;
    }
    listed.add(name);
    let content: Buffer;
    try {
      content = await readFile(join(dir, name));
    } catch {
      problems.push(`${name}: missing (the manifest lists it)`);
      continue;
    }
    if (sha256Hex(content) !== entry.sha256)
      problems.push(`${name}: SHA-256 differs from the manifest's (the file was altered)`);
  }
  for (const found of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (found.isDirectory()) continue;
    const name = relative(dir, join(found.parentPath, found.name));
    if (name === MANIFEST_FILE || listed.has(name)) continue;
    problems.push(`${name}: not listed in the manifest (an added file)`);
  }
  return {
    ok: problems.length === 0,
    problems,
    files: listed.size,
    keyId: body.signer.keyId,
    pinned,
    signerKey: body.signer.key,
  };
}
