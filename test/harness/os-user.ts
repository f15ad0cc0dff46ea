import { readFile } from 'node:fs/promises';

export type OsUser = { name: string; uid: number; gid: number };

/** Looks a system account up in /etc/passwd, where Debian's packages create postgres and mysql. */
export async function osUser(name: string): Promise<OsUser> {
  const passwd = await readFile('/etc/passwd', 'utf8');
  for (const line of passwd.split('\n')) {
    const [user, , uid, gid] = line.split(':');
    if (user === name && uid !== undefined && gid !== undefined) {
      return { name, uid: Number(uid), gid: Number(gid) };
    }
  }
  throw new Error(
    `no OS user '${name}': is its Debian package installed? Run node test/harness/ensure-packages.ts`,
  );
}

export function runningAsRoot(): boolean {
  return process.getuid?.() === 0;
}
