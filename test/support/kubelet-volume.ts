import { mkdir, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Writes `content` as `name` in `directory` the way kubelet's atomic writer updates a projected or
 * ConfigMap volume: a new timestamped directory, a `..data_tmp` symlink renamed over `..data`,
 * `name` → `..data/name`, the previous directory removed.
 */
export async function projectFile(directory: string, name: string, content: string): Promise<void> {
  const stamp = `..${new Date().toISOString().replace(/[-:.]/g, '_')}.${process.hrtime.bigint()}`;
  await mkdir(join(directory, stamp));
  await writeFile(join(directory, stamp, name), content, { mode: 0o600 });
  const previous = await readlink(join(directory, '..data')).catch(() => undefined);
  await symlink(stamp, join(directory, '..data_tmp'));
  await rename(join(directory, '..data_tmp'), join(directory, '..data'));
  if (previous === undefined) await symlink(`..data/${name}`, join(directory, name));
  else await rm(join(directory, previous), { recursive: true });
}
