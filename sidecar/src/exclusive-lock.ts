import { linkSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { UserError } from './errors.ts';

/**
 * One writer per file or directory (the audit log, the quickstart's database), across processes.
 * Node has no flock, so the lock is `TARGET.lock`, created atomically (a hard link, which fails if
 * the name exists) and holding the owner's pid, host and process start time. A lock whose owner is
 * gone, or whose pid now belongs to a younger process (a restarted container is pid 1 again), is
 * stale and taken over; one held by a process on another host cannot be checked and is respected.
 */

export interface LockOwner {
  readonly pid: number;
  readonly host: string;
  /** Clock ticks since boot at which the owner started (Linux /proc); absent where unknown. */
  readonly started?: number;
}

export interface ExclusiveLock {
  readonly lockFile: string;
  /** Removes the lock file; safe to call twice. */
  release(): void;
}

/** The target is in use by a live process; the message names it and what to do. */
export class LockHeldError extends UserError {
  readonly owner: LockOwner;
  readonly lockFile: string;
  constructor(what: string, lockFile: string, owner: LockOwner) {
    const where = owner.host === hostname() ? '' : ` on host ${owner.host}`;
    super(
      `${what} is in use by process ${owner.pid}${where} (another Gatehouse?): stop that process first (if it is gone, delete ${lockFile})`,
    );
    this.owner = owner;
    this.lockFile = lockFile;
  }
}

/** Locks released at exit by this thread, should their owner not release them first. */
const held = new Set<string>();
let exitHookInstalled = false;

/**
 * Takes the lock on `target` (a file or directory path) or throws LockHeldError naming the process
 * that holds it. `what` names the target for a person: `the audit log /var/log/gatehouse.jsonl`.
 * Errors creating the lock file itself (a missing directory, no permission) propagate as they are.
 */
export function acquireExclusiveLock(target: string, what: string): ExclusiveLock {
  const lockFile = `${target}.lock`;
  const mine: LockOwner = {
    pid: process.pid,
    host: hostname(),
    ...optional('started', processStartTime(process.pid)),
  };
  const content = `${JSON.stringify(mine)}\n`;
  for (let attempt = 0; ; attempt++) {
    if (create(lockFile, content)) break;
    const found = readLockFile(lockFile);
    if (found === undefined) continue;
    const owner = parseOwner(found);
    if (owner && isAlive(owner)) throw new LockHeldError(what, lockFile, owner);
    // Stale (its owner died) or not a lock this code wrote: take it over.
    if (attempt >= 3)
      throw new UserError(`cannot lock ${what}: ${lockFile} comes back each time it is taken over`);
    // Only the stale lock just read: another process taking it over may have replaced it since.
    if (readLockFile(lockFile) === found) rmSync(lockFile, { force: true });
  }
  held.add(lockFile);
  installExitHook();
  let released = false;
  return {
    lockFile,
    release() {
      if (released) return;
      released = true;
      held.delete(lockFile);
      removeIfMine(lockFile);
    },
  };
}

/** File systems without hard links answer link() with one of these. */
const NO_HARD_LINKS = new Set(['EPERM', 'ENOTSUP', 'ENOSYS', 'EOPNOTSUPP']);

/**
 * Creates the lock file with its content in one step (a hard link to a filled temporary file), so no
 * reader sees it empty; where links are not supported, an exclusive create does nearly as well.
 */
function create(lockFile: string, content: string): boolean {
  const temporary = `${lockFile}.${process.pid}.${Math.random().toString(36).slice(2)}`;
  writeFileSync(temporary, content, { mode: 0o644 });
  try {
    linkSync(temporary, lockFile);
    return true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? '';
    if (code === 'EEXIST') return false;
    if (!NO_HARD_LINKS.has(code)) throw error;
  } finally {
    rmSync(temporary, { force: true });
  }
  try {
    writeFileSync(lockFile, content, { flag: 'wx', mode: 0o644 });
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
}

/** The lock file's text, or undefined when it is gone. */
function readLockFile(lockFile: string): string | undefined {
  try {
    return readFileSync(lockFile, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/** The owner a lock file names; a bare pid is the form earlier versions wrote. */
export function parseOwner(text: string): LockOwner | undefined {
  if (/^\d+\s*$/.test(text)) return { pid: Number.parseInt(text, 10), host: hostname() };
  try {
    const value = JSON.parse(text) as Partial<LockOwner>;
    if (!Number.isSafeInteger(value.pid) || typeof value.host !== 'string') return undefined;
    return {
      pid: value.pid!,
      host: value.host,
      ...optional('started', Number.isSafeInteger(value.started) ? value.started : undefined),
    };
  } catch {
    return undefined;
  }
}

/** Whether the process that wrote the lock still runs; true when it cannot be told (another host). */
function isAlive(owner: LockOwner): boolean {
  if (owner.host !== hostname()) return true;
  try {
    process.kill(owner.pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const started = processStartTime(owner.pid);
  return owner.started === undefined || started === undefined || started === owner.started;
}

/** Field 22 of /proc/PID/stat: when the process started, in clock ticks since boot (Linux only). */
export function processStartTime(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces: count fields after it.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[19]);
    return Number.isSafeInteger(ticks) ? ticks : undefined;
  } catch {
    return undefined;
  }
}

function removeIfMine(lockFile: string): void {
  try {
    const owner = parseOwner(readFileSync(lockFile, 'utf8'));
    if (owner?.pid === process.pid && owner.host === hostname()) rmSync(lockFile, { force: true });
  } catch {
    // Already gone.
  }
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const lockFile of held) removeIfMine(lockFile);
  });
}

function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}
