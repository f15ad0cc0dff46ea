import { mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { projectFile } from '../../../test/support/kubelet-volume.ts';
import { watchFileContent } from './file-watch.ts';

const stops: Array<() => void> = [];
afterEach(() => {
  for (const stop of stops.splice(0)) stop();
});

function collect(path: string): string[] {
  const seen: string[] = [];
  stops.push(watchFileContent(path, (text) => seen.push(text), { debounceMs: 50, pollMs: 60_000 }));
  return seen;
}

const settle = () => new Promise((r) => setTimeout(r, 400));

describe('watchFileContent', () => {
  it('reports an edit in place and a replacement by rename, once each', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-watch-'));
    const file = join(dir, 'gatehouse.yaml');
    writeFileSync(file, 'v1');
    const seen = collect(file);
    writeFileSync(file, 'v2');
    await settle();
    writeFileSync(join(dir, 'tmp'), 'v3');
    renameSync(join(dir, 'tmp'), file);
    await settle();
    expect(seen).toEqual(['v2', 'v3']);
  });

  it('ignores a write that leaves the content as it was', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-watch-'));
    const file = join(dir, 'gatehouse.yaml');
    writeFileSync(file, 'same');
    const seen = collect(file);
    writeFileSync(file, 'same');
    await settle();
    expect(seen).toEqual([]);
  });

  it("follows a ConfigMap volume's ..data symlink swap", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-watch-'));
    await projectFile(dir, 'gatehouse.yaml', 'bundle-1');
    const seen = collect(join(dir, 'gatehouse.yaml'));
    await projectFile(dir, 'gatehouse.yaml', 'bundle-2');
    await settle();
    expect(seen).toEqual(['bundle-2']);
  });
});
