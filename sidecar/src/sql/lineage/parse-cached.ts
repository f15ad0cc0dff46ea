import type { RawStmt } from 'libpg-query';
import { Lru } from '../lru.ts';
import { parseTree } from '../parse-tree.ts';

/*
 * View definitions are parsed every time a statement reads the view, so their parse trees are cached
 * by text. Client statements are not: their results are cached instead, and keeping the trees of
 * texts that never repeat (new literals) costs more in garbage collection than it saves. Trees are
 * never modified after parsing. Texts longer than MAX_CACHED_CHARS are parsed but not kept.
 */
const CACHE_ENTRIES = 512;
const MAX_CACHED_CHARS = 8192;
const trees = new Lru<string, readonly RawStmt[] | null>(CACHE_ENTRIES);

/** The statements of a text, or null when it cannot be parsed. Needs `loadSqlParser()` to have finished. */
export function parseCached(sql: string): readonly RawStmt[] | null {
  const cached = trees.get(sql);
  if (cached !== undefined) return cached;
  const stmts = parse(sql);
  if (sql.length <= MAX_CACHED_CHARS) trees.set(sql, stmts);
  return stmts;
}

/** Like parseCached, without keeping the tree (beyond the last one, which analysis shares). */
export function parse(sql: string): readonly RawStmt[] | null {
  const result = parseTree(sql);
  return typeof result === 'string' ? null : result;
}
