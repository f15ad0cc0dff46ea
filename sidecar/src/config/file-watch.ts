import { createHash } from 'node:crypto';
import { type FSWatcher, readFileSync, watch } from 'node:fs';
import { basename, dirname } from 'node:path';

export interface FileWatchOptions {
  /** Quiet time after the last event before the file is read: editors and kubelet write in steps. */
  readonly debounceMs?: number;
  /** A re-read on this interval catches changes that no event reported (some volume types). */
  readonly pollMs?: number;
}

/**
 * Calls `onChange(text)` whenever the content of `path` changes. Watches the directory, not the file:
 * editors replace files by rename and Kubernetes swaps a ConfigMap volume's `..data` symlink, and a
 * watch on the old file would go quiet. Only a real change of content is reported.
 */
export function watchFileContent(
  path: string,
  onChange: (text: string) => void,
  options: FileWatchOptions = {},
): () => void {
  const debounceMs = options.debounceMs ?? 200;
  let lastDigest = digestOf(path);
  let timer: NodeJS.Timeout | undefined;
  const check = () => {
    timer = undefined;
    const text = readOrUndefined(path);
    if (text === undefined) return;
    const digest = createHash('sha256').update(text).digest('hex');
    if (digest === lastDigest) return;
    lastDigest = digest;
    onChange(text);
  };
  const schedule = () => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(check, debounceMs);
  };
  const name = basename(path);
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(dirname(path), { persistent: false }, (_event, file) => {
      // `..data` is the kubelet's symlink swap; any other name in the directory is not ours.
      if (file === null || file === name || file === '..data') schedule();
    });
    watcher.on('error', () => {});
  } catch {
    watcher = undefined;
  }
  const poll = setInterval(check, options.pollMs ?? 30_000);
  poll.unref();
  return () => {
    watcher?.close();
    clearInterval(poll);
    if (timer) clearTimeout(timer);
  };
}

function readOrUndefined(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function digestOf(path: string): string | undefined {
  const text = readOrUndefined(path);
  return text === undefined ? undefined : createHash('sha256').update(text).digest('hex');
}
