import { open, readFile, rename } from 'node:fs/promises';

/**
 * The head anchor (`FILE.head`): the latest checkpoint line, copied byte for byte, and where it sits
 * in the log. A log cut before that checkpoint no longer holds it, which the verifier and the next
 * writer detect. The offset is only a hint for the writer's quick check; the verifier ignores it.
 */
export interface HeadAnchor {
  readonly offset: number;
  readonly checkpoint: string;
}

export function formatHead(anchor: HeadAnchor): string {
  return `${JSON.stringify({ version: 1, offset: anchor.offset, checkpoint: anchor.checkpoint })}\n`;
}

/** The anchor in a head file's text, or why it is not one. */
export function parseHead(text: string): HeadAnchor | { readonly invalid: string } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { invalid: 'not JSON' };
  }
  const anchor = value as { version?: unknown; offset?: unknown; checkpoint?: unknown } | null;
  if (
    anchor?.version !== 1 ||
    !Number.isSafeInteger(anchor.offset) ||
    (anchor.offset as number) < 0 ||
    typeof anchor.checkpoint !== 'string'
  ) {
    return { invalid: 'not a version 1 head anchor (version, offset, checkpoint)' };
  }
  return { offset: anchor.offset as number, checkpoint: anchor.checkpoint };
}

/** Undefined when there is no head file yet; errors other than ENOENT propagate. */
export async function readHeadFile(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/**
 * Replaces the head file atomically (write a temporary file, flush it, rename it over the old one),
 * so a crash leaves either the previous anchor or the new one, never a torn file.
 */
export async function writeHeadFile(path: string, anchor: HeadAnchor): Promise<void> {
  const temporary = `${path}.tmp`;
  const handle = await open(temporary, 'w', 0o644);
  try {
    await handle.writeFile(formatHead(anchor));
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temporary, path);
}
