import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { helmBinary } from '../helm.ts';
import { kubeBinaries } from './kube-binaries.ts';
import { LATEST_KUBE_VERSION } from './versions.ts';

describe('binaries the preparation step builds', () => {
  let cache: string;
  let saved: string | undefined;
  beforeEach(async () => {
    saved = process.env['XDG_CACHE_HOME'];
    cache = await mkdtemp(join(tmpdir(), 'gatehouse-empty-cache-'));
    process.env['XDG_CACHE_HOME'] = cache;
  });
  afterEach(async () => {
    if (saved === undefined) delete process.env['XDG_CACHE_HOME'];
    else process.env['XDG_CACHE_HOME'] = saved;
    await rm(cache, { recursive: true, force: true });
  });

  // A build inside a test hook outlives the hook's timeout on a fresh machine; a lookup must fail at once instead.
  it('are looked up, never built, by the tests: a missing one names the step that builds it', () => {
    const started = performance.now();
    expect(() => kubeBinaries(LATEST_KUBE_VERSION)).toThrow(/not built .*node test\/harness\/prepare\.ts/);
    expect(() => helmBinary()).toThrow(/helm v3\.\d+\.\d+ is not built/);
    expect(performance.now() - started).toBeLessThan(1_000);
  });
});
