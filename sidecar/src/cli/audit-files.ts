import { access, readFile } from 'node:fs/promises';
import { publicKeyFromPem } from '../audit/signing-key.ts';
import { UserError } from '../errors.ts';

/** The pinned keys of `--public-key` files, for `audit verify` and `audit export` alike. */
export async function readPublicKeys(files: readonly string[]): Promise<string[]> {
  const keys: string[] = [];
  for (const file of files) {
    try {
      keys.push(publicKeyFromPem(await readFile(file)));
    } catch (error) {
      throw new UserError(`public key ${file}: ${describeFileError(error)}`);
    }
  }
  return keys;
}

export async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

/** A file error as one line: its code, then the message when the message does not start with it. */
export function describeFileError(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  const message = error instanceof Error ? error.message : String(error);
  return code && !message.startsWith(code) ? `${code}: ${message}` : message;
}
