import { createHash } from 'node:crypto';
import { Lru } from '../lru.ts';
import { joinTokens, lexMysql, type MysqlToken } from './lexer.ts';
import { type MysqlSqlMode, sqlModeKey } from './sql-mode.ts';

/** What the audit log may say about MySQL text. */
export interface MysqlQueryText {
  /**
   * The statements, `; `-separated, with every literal (strings, numbers, hex and bit values, with
   * their charset introducers) replaced by `?` and comments removed (executable comments unwrapped);
   * null when the text cannot be read safely. The raw text is never returned.
   */
  readonly statement: string | null;
  /** SHA-256 (hex, 32 chars) of the normalised text: equal for texts that differ only in literal values. */
  readonly fingerprint: string | null;
}

const UNREADABLE: MysqlQueryText = Object.freeze({ statement: null, fingerprint: null });
const LITERALS = new Set<MysqlToken['type']>(['string', 'number', 'hex', 'bit']);

const CACHE_ENTRIES = 512;
const MAX_CACHED_CHARS = 4096;
const cache = new Lru<string, MysqlQueryText>(CACHE_ENTRIES);

/** Normalises MySQL text for the audit, read under `sqlMode` (so the literals found are the server's). */
export function normalizeMysql(sql: string, sqlMode: MysqlSqlMode): MysqlQueryText {
  const key = sqlModeKey(sqlMode) + sql;
  const cached = cache.get(key);
  if (cached) return cached;
  const described = describe(sql, sqlMode);
  if (sql.length <= MAX_CACHED_CHARS) cache.set(key, described);
  return described;
}

function describe(sql: string, sqlMode: MysqlSqlMode): MysqlQueryText {
  const lexed = lexMysql(sql, sqlMode);
  if (lexed.error !== null) return UNREADABLE;
  const statement = lexed.statements.map((s) => normalizeTokens(s.tokens)).join('; ');
  const fingerprint = createHash('sha256')
    .update(statement.replace(/\(\s*\?(?:\s*,\s*\?)*\s*\)/g, '(?)'))
    .digest('hex')
    .slice(0, 32);
  return Object.freeze({ statement, fingerprint });
}

function normalizeTokens(tokens: readonly MysqlToken[]): string {
  return joinTokens(tokens.map((t) => (LITERALS.has(t.type) ? { canonical: '?', spaced: t.spaced } : t)));
}
