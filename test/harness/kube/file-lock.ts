import { readFile, unlink, writeFile } from 'node:fs/promises';

export type FileLockOptions = {
  waitMs: number;
  /** Called once when the lock is busy, so a long wait is not silent. */
  onWait?: () => void;
};

const POLL_MS = 1_000;

/**
 * Runs fn while holding a lock file that records our process id, so that processes on this
 * machine take turns. A lock whose process has died is taken over. Two waiters that take over
 * the same dead lock at once may both run fn, so fn must stay correct when that happens; the
 * lock only saves duplicate work.
 */
export async function withFileLock<T>(
  lockFile: string,
  options: FileLockOptions,
  fn: () => Promise<T>,
): Promise<T> {
  const deadline = Date.now() + options.waitMs;
  let told = false;
  while (!(await tryLock(lockFile))) {
    if (Date.now() > deadline) {
      throw new Error(`${lockFile}: still held by another process after ${options.waitMs} ms`);
    }
    if (!told) {
      told = true;
      options.onWait?.();
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  try {
    return await fn();
  } finally {
    await unlink(lockFile).catch(() => {});
  }
}

async function tryLock(lockFile: string): Promise<boolean> {
  try {
    await writeFile(lockFile, String(process.pid), { flag: 'wx' });
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  const holder = Number.parseInt(await readFile(lockFile, 'utf8').catch(() => ''), 10);
  // An empty file is a lock being written right now, not a dead one.
  if (Number.isInteger(holder) && !isAlive(holder)) await unlink(lockFile).catch(() => {});
  return false;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
