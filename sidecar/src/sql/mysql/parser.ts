import { init, parse } from '@guanmingchiu/sqlparser-ts';
import { Lru } from '../lru.ts';
import { lexMysql } from './lexer.ts';
import { mayOverflowParser } from './parser-depth.ts';
import { DEFAULT_SQL_MODE } from './sql-mode.ts';

/** A node of datafusion-sqlparser's AST as JSON: enum variants are single-key objects. */
export type MysqlAst = Record<string, unknown>;

let loaded = false;

/*
 * analyzeMysql and mysqlOutputLineage parse the same statements one after the other: the second
 * parse is a hit. Trees are shared, so nothing may change them. At most 2 x CACHE_ENTRIES trees of
 * statements up to MAX_CACHED_CHARS.
 */
const CACHE_ENTRIES = 256;
const MAX_CACHED_CHARS = 4096;
const cache = new Lru<string, MysqlAst | 'rejected'>(CACHE_ENTRIES);

/** Loads the MySQL parser's WebAssembly module. Call once at startup, before analysing MySQL text. */
export async function loadMysqlParser(): Promise<void> {
  if (loaded) return;
  await init();
  loaded = true;
}

/**
 * Parses one canonical statement (lexer.ts) with the MySQL dialect; null when the parser rejects it,
 * it is not exactly one statement, or its operator chains are long enough to break the parser
 * (parser-depth.ts).
 */
export function parseMysqlStatement(canonical: string): MysqlAst | null {
  if (!loaded) throw new Error('loadMysqlParser() must finish before MySQL text is analysed');
  const cached = cache.get(canonical);
  if (cached !== undefined) return cached === 'rejected' ? null : cached;
  const ast = parseUncached(canonical);
  if (canonical.length <= MAX_CACHED_CHARS) cache.set(canonical, ast ?? 'rejected');
  return ast;
}

function parseUncached(canonical: string): MysqlAst | null {
  // Canonical text is in the default sql_mode's spelling, so it lexes the same way again.
  const lexed = lexMysql(canonical, DEFAULT_SQL_MODE);
  if (lexed.error !== null || lexed.statements.length !== 1) return null;
  if (mayOverflowParser(lexed.statements[0]!.tokens)) return null;
  try {
    const statements = parse(canonical, 'mysql') as unknown as MysqlAst[];
    return statements.length === 1 ? statements[0]! : null;
  } catch (error) {
    if (error instanceof Error) return null;
    throw error;
  }
}
