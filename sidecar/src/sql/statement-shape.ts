import { createHash } from 'node:crypto';
import { parseSync } from 'libpg-query';
import { Lru } from './lru.ts';
import { describeQuery, type QueryText } from './normalize.ts';
import { combineShapes, type TextShape } from './text-shape.ts';

/**
 * A single-statement text's shape: its audit normalisation, every literal value replaced by `$n`.
 * Texts that differ only in literal values (an application's `WHERE id = 42`, pgbench) share a
 * shape, so what does not depend on literal values can be worked out once per shape. Undefined for
 * several statements, text that does not parse, and text that already holds parameters (`$1` and a
 * literal would then share a placeholder). `texts`: the text's audit description, if already made.
 */
export function statementShape(
  sql: string,
  texts: readonly QueryText[] = describeQuery(sql),
): string | undefined {
  if (texts.length !== 1 || /\$\d/.test(sql)) return undefined;
  return texts[0]!.statement ?? undefined;
}

/**
 * What an approval of a PostgreSQL text's shape binds. Not libpg_query's fingerprint, which is made
 * for grouping statistics and so calls `secret.orders` and `orders`, `orders_2024` and `orders_2025`,
 * `EXECUTE a` and `EXECUTE b` alike: here each statement's shape (literals as `$n`) is parsed again
 * and its whole parse tree, positions aside, is digested. Blanks, comments, keyword case and
 * needless quotes do not change it; a schema, a table, a column, a name, a list's length or an added
 * statement does. Null when a shape does not parse again: a utility statement whose literals are
 * part of its grammar (`SET search_path = $1`, `COPY t FROM $1`), so no shape can stand for it.
 */
export function pgTextShape(texts: readonly QueryText[]): TextShape | null {
  if (texts.length === 0 || texts.some((t) => t.statement === null || t.statement === '')) return null;
  const shapes = texts.map((t) => t.statement!);
  const digests: string[] = [];
  for (const shape of shapes) {
    const digest = treeDigest(shape);
    if (digest === null) return null;
    digests.push(digest);
  }
  return combineShapes(digests, shapes);
}

const digests = new Lru<string, string | null>(512);
const POSITIONS = new Set(['location', 'stmt_location', 'stmt_len']);

function treeDigest(shape: string): string | null {
  const known = digests.get(shape);
  if (known !== undefined) return known;
  let digest: string | null;
  try {
    const tree = JSON.stringify(parseSync(shape), (key, value) => (POSITIONS.has(key) ? undefined : value));
    digest = `pg:${createHash('sha256').update(tree).digest('hex').slice(0, 32)}`;
  } catch {
    digest = null;
  }
  if (shape.length <= 4096) digests.set(shape, digest);
  return digest;
}
