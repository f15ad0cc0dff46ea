import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { withFileLock } from './file-lock.ts';

let dir: string;
let lockFile: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gatehouse-lock-'));
  lockFile = join(dir, 'build.lock');
});

afterEach(() => rm(dir, { recursive: true, force: true }));

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test('holders take turns and the lock file is gone afterwards', async () => {
  const events: string[] = [];
  const holder = (name: string) =>
    withFileLock(lockFile, { waitMs: 10_000 }, async () => {
      events.push(`${name} in`);
      await sleep(300);
      events.push(`${name} out`);
      return name;
    });
  const results = await Promise.all([holder('a'), holder('b')]);
  expect(results).toEqual(['a', 'b']);
  const [first, second] = events[0] === 'a in' ? ['a', 'b'] : ['b', 'a'];
  expect(events).toEqual([`${first} in`, `${first} out`, `${second} in`, `${second} out`]);
  expect(existsSync(lockFile)).toBe(false);
});

test('a lock left by a process that has died is taken over', async () => {
  const dead = spawnSync('/bin/true');
  await writeFile(lockFile, String(dead.pid));
  const started = Date.now();
  await expect(withFileLock(lockFile, { waitMs: 10_000 }, async () => 'ran')).resolves.toBe('ran');
  expect(Date.now() - started).toBeLessThan(5_000);
});

test('a lock held by a live process makes the waiter give up after waitMs, saying so once', async () => {
  await writeFile(lockFile, String(process.ppid));
  let told = 0;
  const waiting = withFileLock(lockFile, { waitMs: 1_500, onWait: () => told++ }, async () => 'ran');
  await expect(waiting).rejects.toThrow(/still held by another process after 1500 ms/);
  expect(told).toBe(1);
  expect(existsSync(lockFile)).toBe(true);
});

test('a failing holder releases the lock', async () => {
  await expect(
    withFileLock(lockFile, { waitMs: 1_000 }, async () => {
      throw new Error('build failed');
    }),
  ).rejects.toThrow('build failed');
  expect(existsSync(lockFile)).toBe(false);
});
