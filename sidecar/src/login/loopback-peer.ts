import { readFile } from 'node:fs/promises';

/**
 * The user id that owns the other end of a loopback TCP connection, from the kernel's socket table
 * (/proc/net/tcp); undefined where there is no such table (not Linux) or the entry is gone. A
 * tunnel hands out its user's identity to whoever connects, so it lets in only that user's programs.
 */
export async function loopbackPeerUid(peerPort: number, ownPort: number): Promise<number | undefined> {
  let table: string;
  try {
    table = await readFile('/proc/net/tcp', 'utf8');
  } catch {
    return undefined;
  }
  // The peer's socket: local 127.0.0.1:peerPort, remote 127.0.0.1:ownPort (addresses in host byte order).
  const local = `0100007F:${hexPort(peerPort)}`;
  const remote = `0100007F:${hexPort(ownPort)}`;
  for (const line of table.split('\n').slice(1)) {
    const columns = line.trim().split(/\s+/);
    if (columns[1] === local && columns[2] === remote) return Number(columns[7]);
  }
  return undefined;
}

/** Whether the table can be read at all, so a missing entry can be told from a missing table. */
export async function canSeeLoopbackPeers(): Promise<boolean> {
  try {
    await readFile('/proc/net/tcp', 'utf8');
    return true;
  } catch {
    return false;
  }
}

function hexPort(port: number): string {
  return port.toString(16).toUpperCase().padStart(4, '0');
}
