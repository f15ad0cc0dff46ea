import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { acquireExclusiveLock, LockHeldError, parseOwner, processStartTime } from './exclusive-lock.ts';

let dir: string;
let target: string;
let sleeper: ChildProcess | undefined;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'gatehouse-lock-'));
  target = join(dir, 'audit.jsonl');
});
afterEach(() => {
  sleeper?.kill();
  sleeper = undefined;
  rmSync(dir, { recursive: true, force: true });
});

/** The pid of a process that has exited: a lock it left behind is stale. */
function deadPid(): number {
  return spawnSync(process.execPath, ['-e', '0']).pid!;
}

function liveProcess(): number {
  sleeper = spawn('sleep', ['60'], { stdio: 'ignore' });
  return sleeper.pid!;
}

describe('acquireExclusiveLock', () => {
  it('refuses a second holder, naming the first, until the first releases it', () => {
    const lock = acquireExclusiveLock(target, 'the audit log X');
    expect(JSON.parse(readFileSync(`${target}.lock`, 'utf8'))).toMatchObject({
      pid: process.pid,
      host: hostname(),
    });
    expect(() => acquireExclusiveLock(target, 'the audit log X')).toThrow(
      `the audit log X is in use by process ${process.pid} (another Gatehouse?): stop that process first (if it is gone, delete ${target}.lock)`,
    );
    lock.release();
    expect(existsSync(`${target}.lock`)).toBe(false);
    lock.release();
    acquireExclusiveLock(target, 'the audit log X').release();
  });

  it('refuses while another live process holds it', () => {
    const pid = liveProcess();
    const started = processStartTime(pid);
    writeFileSync(`${target}.lock`, JSON.stringify({ pid, host: hostname(), started }));
    const error = (() => {
      try {
        acquireExclusiveLock(target, 'the database D');
      } catch (caught) {
        return caught;
      }
    })();
    expect(error).toBeInstanceOf(LockHeldError);
    expect((error as LockHeldError).message).toMatch(`the database D is in use by process ${pid} `);
  });

  it('takes over a lock whose owner died', () => {
    writeFileSync(`${target}.lock`, JSON.stringify({ pid: deadPid(), host: hostname() }));
    const lock = acquireExclusiveLock(target, 'X');
    expect(parseOwner(readFileSync(`${target}.lock`, 'utf8'))?.pid).toBe(process.pid);
    lock.release();
  });

  it('takes over a lock whose pid now belongs to a younger process (a restarted container)', () => {
    const started = processStartTime(process.pid);
    if (started === undefined) return; // not Linux: no start times to compare
    writeFileSync(
      `${target}.lock`,
      JSON.stringify({ pid: process.pid, host: hostname(), started: started - 1 }),
    );
    acquireExclusiveLock(target, 'X').release();
  });

  it('respects a lock taken on another host, which it cannot check', () => {
    writeFileSync(`${target}.lock`, JSON.stringify({ pid: deadPid(), host: 'elsewhere' }));
    expect(() => acquireExclusiveLock(target, 'X')).toThrow(/in use by process \d+ on host elsewhere/);
  });

  it('reads the bare pid that earlier versions wrote, and takes over unreadable lock files', () => {
    writeFileSync(`${target}.lock`, `${liveProcess()}\n`);
    expect(() => acquireExclusiveLock(target, 'X')).toThrow(LockHeldError);
    writeFileSync(`${target}.lock`, 'not a lock');
    acquireExclusiveLock(target, 'X').release();
  });

  it('lets errors creating the lock file through', () => {
    expect(() => acquireExclusiveLock(join(dir, 'missing', 'audit.jsonl'), 'X')).toThrow(/ENOENT/);
  });
});
