import { createHash } from 'node:crypto';
import type { QueryText } from './normalize.ts';

/** A text's shape as an approval binds it: see pgTextShape and textShape. */
export interface TextShape {
  readonly fingerprint: string;
  /** The statements with literals as placeholders: what a person approves. */
  readonly shape: string;
}

/**
 * What an approval of a MySQL text's shape binds: the fingerprints of its statements (digests of
 * their token normalisation, identifiers and schemas included), and the statements with literals as
 * placeholders. Null when some statement has none (unreadable text, an empty one).
 */
export function textShape(texts: readonly QueryText[]): TextShape | null {
  if (texts.length === 0 || texts.some((t) => t.fingerprint === null || t.statement === null)) return null;
  return combineShapes(
    texts.map((t) => t.fingerprint!),
    texts.map((t) => t.statement!),
  );
}

/** One shape of several statements' fingerprints and shapes. */
export function combineShapes(fingerprints: readonly string[], shapes: readonly string[]): TextShape {
  const shape = shapes.join('; ');
  if (fingerprints.length === 1) return { fingerprint: fingerprints[0]!, shape };
  // Several statements: one digest over all of them, so an approved first never stands for more.
  const digest = createHash('sha256').update(JSON.stringify(fingerprints)).digest('hex').slice(0, 32);
  return { fingerprint: `multi:${digest}`, shape };
}
