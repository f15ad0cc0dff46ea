import { readFile } from 'node:fs/promises';
import { type TrustedKey, type VerifyResult, verifyAuditLogFile } from '../audit/verify.ts';
import { UserError } from '../errors.ts';
import { describeFileError, exists, readPublicKeys } from './audit-files.ts';
import { parseCliArgs } from './parse-cli-args.ts';

/** The options of `gatehouse audit verify`, also listed by `gatehouse audit --help`. */
export const AUDIT_VERIFY_USAGE = `  --public-key PEMFILE  pin the signing key (Ed25519 PEM, public or private): the log must start with
                        it, and change keys only to one it signed or one also pinned (repeatable)
  --head HEADFILE       head anchor to check against (default: FILE.head when it exists)
  --allow-unsealed      accept a log that does not end in a seal (one still being written)
  -h, --help            show this text

Prints one line, then for a log that passes one line per signing key saying why it was trusted;
exits 0 when the log is complete and unaltered, 1 when it is not, 2 for a usage error or a file
that cannot be read.`;

const USAGE = `usage: gatehouse audit verify FILE [--public-key PEMFILE]... [--head HEADFILE] [--allow-unsealed]

${AUDIT_VERIFY_USAGE}
`;

interface Output {
  write(text: string): unknown;
}

/**
 * `gatehouse audit verify`: prints one line, then (for a log that passes) one line per signing key
 * saying why it was trusted; returns the exit code: 0 when the log is complete and unaltered, 1 when
 * it is not, 2 for a usage error or a file that cannot be read.
 */
export async function runAuditVerify(
  argv: string[],
  io: { readonly stdout: Output; readonly stderr: Output } = process,
): Promise<number> {
  let file: string;
  let values: { 'public-key'?: string[]; head?: string; 'allow-unsealed'?: boolean; help?: boolean };
  try {
    const parsed = parseCliArgs(
      {
        args: argv,
        strict: true,
        allowPositionals: true,
        options: {
          'public-key': { type: 'string', multiple: true },
          head: { type: 'string' },
          'allow-unsealed': { type: 'boolean' },
          help: { type: 'boolean', short: 'h' },
        },
      },
      'audit verify',
    );
    if (parsed.values.help) {
      io.stdout.write(USAGE);
      return 0;
    }
    if (parsed.positionals.length !== 1)
      throw new UserError('give exactly one log FILE (see gatehouse audit verify --help)');
    file = parsed.positionals[0]!;
    values = parsed.values;
  } catch (error) {
    io.stderr.write(`gatehouse: ${(error as Error).message}\n`);
    return 2;
  }

  let publicKeys: string[];
  try {
    publicKeys = await readPublicKeys(values['public-key'] ?? []);
  } catch (error) {
    io.stderr.write(`${(error as Error).message}\n`);
    return 2;
  }

  const headFile = values.head ?? ((await exists(`${file}.head`)) ? `${file}.head` : undefined);
  let head: string | undefined;
  if (headFile !== undefined) {
    try {
      head = await readFile(headFile, 'utf8');
    } catch (error) {
      io.stderr.write(`head anchor ${headFile}: ${describeFileError(error)}\n`);
      return 2;
    }
  }

  let result: VerifyResult;
  try {
    result = await verifyAuditLogFile(file, { publicKeys, head, allowUnsealed: values['allow-unsealed'] });
  } catch (error) {
    io.stderr.write(`${file}: ${describeFileError(error)}\n`);
    return 2;
  }
  io.stdout.write(`${summarize(result)}\n`);
  // What a passing log proves rests on these keys: say which, and why each was believed.
  if (result.ok) io.stdout.write(`${result.keys.map(describeKey).join('\n')}\n`);
  return result.ok ? 0 : 1;
}

/** Which key was trusted from where, and why: the line an auditor reads before believing the first. */
export function describeKey(key: TrustedKey): string {
  const why =
    key.trust === 'pinned'
      ? 'pinned with --public-key'
      : key.trust === 'signed'
        ? `the change to it is signed by key ${key.signedBy}`
        : 'taken from the log itself (not pinned: this proves the log consistent, not that Gatehouse wrote it; pin it with --public-key)';
  return `  key ${key.keyId} from seq ${key.fromSeq}: ${why}`;
}

export function summarize(result: VerifyResult): string {
  const bad = result.firstBad;
  if (bad) {
    const where = bad.line === 0 ? 'head anchor' : `record seq ${bad.seq} (line ${bad.line})`;
    if (bad.unsealed) return `NOT SEALED: ${bad.reason} (--allow-unsealed accepts a log still being written)`;
    return `TAMPERED: ${where}: ${bad.reason}`;
  }
  const parts = [`ok: ${result.records} records`, `${result.checkpoints} checkpoints`];
  parts.push(
    result.sealed
      ? 'sealed'
      : `not sealed (${result.unsigned} records after the last checkpoint are unsigned)`,
  );
  if (result.head === 'matched') parts.push('head anchor matched');
  const pinned = result.keys[0]?.trust === 'pinned';
  parts.push(pinned ? 'keys pinned' : 'key not pinned');
  if (result.recoveries.length > 0) {
    const list = result.recoveries.map((r) => `seq ${r.seq} ${r.damage}`).join(', ');
    parts.push(`${result.recoveries.length} damage(s) recorded by the writer (${list})`);
  }
  if (result.lost > 0) parts.push(`${result.lost} records lost (recorded by audit.loss)`);
  return parts.join(', ');
}
