import { createHash, randomBytes } from 'node:crypto';
import {
  chmodSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../errors.ts';

/** What `gatehouse login` keeps for one issuer. The tokens never leave this file but as passwords. */
export interface StoredLogin {
  readonly issuer: string;
  readonly clientId: string;
  readonly scopes: readonly string[];
  readonly accessToken: string;
  readonly refreshToken?: string;
  /** Epoch seconds. */
  readonly expiresAt: number;
  /** From the access token's claims, for messages only (`signed in as`). */
  readonly subject?: string;
  readonly groups?: readonly string[];
}

/**
 * Where a person's Gatehouse settings live: $XDG_CONFIG_HOME/gatehouse, else ~/.config/gatehouse.
 * The client config file (databases) sits here too.
 */
export function configDirectory(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env['XDG_CONFIG_HOME'];
  return xdg ? join(xdg, 'gatehouse') : join(env['HOME'] || homedir(), '.config', 'gatehouse');
}

/**
 * One file per issuer under DIR/tokens, mode 0600 in a directory of mode 0700. A cache file that
 * others can read is refused rather than used: someone may already have copied the tokens.
 */
export class TokenStore {
  readonly directory: string;

  constructor(configDir: string) {
    this.directory = join(configDir, 'tokens');
  }

  fileFor(issuer: string): string {
    return join(
      this.directory,
      `${createHash('sha256').update(normalizeIssuer(issuer)).digest('hex').slice(0, 32)}.json`,
    );
  }

  read(issuer: string): StoredLogin | undefined {
    const file = this.fileFor(issuer);
    let mode: number;
    try {
      mode = statSync(file).mode;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new UserError(`cannot read the token cache ${file}: ${(error as Error).message}`);
    }
    if ((mode & 0o077) !== 0) {
      throw new UserError(
        `the token cache ${file} is readable by others (mode ${(mode & 0o777).toString(8)}): run gatehouse logout --issuer ${issuer} and sign in again`,
      );
    }
    const stored = parseStored(readFileSync(file, 'utf8'), file);
    return normalizeIssuer(stored.issuer) === normalizeIssuer(issuer) ? stored : undefined;
  }

  /** Every issuer signed in to, for `logout` without --issuer and for picking the only one. */
  list(): StoredLogin[] {
    let names: string[];
    try {
      names = readdirSync(this.directory).filter((n) => n.endsWith('.json'));
    } catch {
      return [];
    }
    return names.flatMap((name) => {
      try {
        return [parseStored(readFileSync(join(this.directory, name), 'utf8'), join(this.directory, name))];
      } catch {
        return [];
      }
    });
  }

  write(login: StoredLogin): void {
    this.ensureDirectory();
    const file = this.fileFor(login.issuer);
    // Written whole under a temporary name and renamed, so a reader never sees half a file.
    const temporary = `${file}.${randomBytes(6).toString('hex')}.tmp`;
    writeFileSync(temporary, `${JSON.stringify(login, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
    renameSync(temporary, file);
  }

  /** Returns whether there was anything to remove. */
  remove(issuer: string): boolean {
    const file = this.fileFor(issuer);
    try {
      statSync(file);
    } catch {
      return false;
    }
    rmSync(file, { force: true });
    return true;
  }

  private ensureDirectory(): void {
    mkdirSync(this.directory, { recursive: true, mode: 0o700 });
    // mkdir's mode passes through the umask, and an existing directory keeps its own.
    chmodSync(this.directory, 0o700);
    chmodSync(join(this.directory, '..'), 0o700);
  }
}

/** Issuers compare without a trailing slash, as discovery documents spell them either way. */
export function normalizeIssuer(issuer: string): string {
  return issuer.replace(/\/+$/, '');
}

function parseStored(text: string, file: string): StoredLogin {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new UserError(`the token cache ${file} is not JSON: remove it and sign in again`);
  }
  const v = value as Partial<StoredLogin>;
  if (
    typeof v !== 'object' ||
    v === null ||
    typeof v.issuer !== 'string' ||
    typeof v.clientId !== 'string' ||
    typeof v.accessToken !== 'string' ||
    typeof v.expiresAt !== 'number'
  ) {
    throw new UserError(`the token cache ${file} is not one Gatehouse wrote: remove it and sign in again`);
  }
  return v as StoredLogin;
}
