import type { RawStmt } from 'libpg-query';
import { Lru } from '../lru.ts';
import type { Catalog } from './catalog.ts';
import { parse } from './parse-cached.ts';
import { applySessionEffects, EMPTY_SESSION, type SessionState } from './session.ts';
import { type AnalysedStatement, analyseStatement, type StatementInput } from './statement-lineage.ts';
import type { LineageResult, StatementLineage } from './types.ts';

export interface LineageOptions {
  /** What the client's session has done so far (temporary views, cursors, search_path, ...). */
  readonly session?: SessionState;
  /** How deep views over views are expanded; deeper ones are opaque. */
  readonly maxViewDepth?: number;
  /**
   * The text's shape (statementShape): a SELECT or INSERT whose lineage no literal value can change
   * is then cached by shape, so texts that differ only in literals are traced once.
   */
  readonly shape?: string;
}

const DEFAULT_MAX_VIEW_DEPTH = 16;

/*
 * Results are cached by text per Catalog object (a refreshed catalog is a new object, whose cache
 * starts empty), and only for sessions that resolve names as a fresh session does or differ from one
 * only in search_path, which then is part of the key. Texts longer than MAX_CACHED_CHARS are not
 * cached; each cache holds at most 2 x CACHE_ENTRIES results.
 */
const CACHE_ENTRIES = 1024;
const MAX_CACHED_CHARS = 4096;
const caches = new WeakMap<Catalog, Lru<string, LineageResult>>();

/** Keys of results cached by shape start with a byte no SQL text starts with. */
const SHAPE_KEY = '\u0001';
/** Functions whose lineage depends on a literal argument: the setting they name. */
const SETTING_FUNCTIONS = /\b(set_config|current_setting)\b/i;

/**
 * Whether the lineage of a statement cannot change with its literal values: a plain SELECT or INSERT,
 * no setting functions, and no constant in ORDER BY, GROUP BY or DISTINCT ON (a position, `ORDER BY 2`,
 * names an output column).
 */
function shapeSafe(raw: RawStmt, shape: string): boolean {
  const node = raw.stmt as Record<string, unknown> | undefined;
  if (!node || !('SelectStmt' in node || 'InsertStmt' in node)) return false;
  if (SETTING_FUNCTIONS.test(shape)) return false;
  return !hasConstantSortKey(node);
}

function hasConstantSortKey(value: unknown): boolean {
  if (Array.isArray(value)) return value.some(hasConstantSortKey);
  if (typeof value !== 'object' || value === null) return false;
  for (const [key, child] of Object.entries(value)) {
    // Any constant inside these clauses (grouping sets included) may be a position: not shape-safe.
    if (key === 'sortClause' || key === 'groupClause' || key === 'distinctClause') {
      if (JSON.stringify(child).includes('"A_Const"')) return true;
    } else if (hasConstantSortKey(child)) return true;
  }
  return false;
}

const UNPARSEABLE: LineageResult = Object.freeze({ statements: Object.freeze([]), parseError: true });

/**
 * For every statement of `sql`: the lineage of each output column, the predicates, the writes and
 * the session effects. Statements are analysed in order, each seeing the session effects of the ones
 * before it (a CREATE TEMP VIEW, then a SELECT from it). Needs `loadSqlParser()` to have finished.
 */
export function outputLineage(sql: string, catalog: Catalog, options: LineageOptions = {}): LineageResult {
  const session = options.session ?? EMPTY_SESSION;
  const maxViewDepth = options.maxViewDepth ?? DEFAULT_MAX_VIEW_DEPTH;
  const prefix =
    maxViewDepth === DEFAULT_MAX_VIEW_DEPTH && sql.length <= MAX_CACHED_CHARS ? cachePrefix(session) : null;
  let cache: Lru<string, LineageResult> | undefined;
  if (prefix !== null) {
    cache = caches.get(catalog);
    if (!cache) {
      cache = new Lru(CACHE_ENTRIES);
      caches.set(catalog, cache);
    }
    const hit =
      cache.get(prefix + sql) ??
      (options.shape === undefined ? undefined : cache.get(SHAPE_KEY + prefix + options.shape));
    if (hit) return hit;
  }
  const stmts = parse(sql);
  if (stmts === null) return UNPARSEABLE;
  let current = session;
  let usedSession = false;
  const statements: StatementLineage[] = [];
  const bytes = stmts.length > 1 ? Buffer.from(sql, 'utf8') : undefined;
  for (const raw of stmts) {
    if (!raw.stmt) continue;
    const text = bytes ? statementText(bytes, raw) : sql;
    const analysed = analyseGuarded({ node: raw.stmt, text }, catalog, current, maxViewDepth);
    statements.push(analysed.lineage);
    usedSession ||= analysed.usedSession;
    if (analysed.lineage.effects.length > 0) current = applySessionEffects(current, analysed.lineage.effects);
  }
  const result: LineageResult = Object.freeze({ statements: Object.freeze(statements), parseError: false });
  if (cache && !usedSession) {
    cache.set(prefix + sql, result);
    if (options.shape !== undefined && stmts.length === 1 && shapeSafe(stmts[0]!, options.shape))
      cache.set(SHAPE_KEY + prefix + options.shape, result);
  }
  return result;
}

/**
 * The analysis bounds its own nesting, but a statement can still be large enough to exhaust the
 * stack somewhere else; then nothing about it is known, which is said, not thrown.
 */
function analyseGuarded(
  input: StatementInput,
  catalog: Catalog,
  session: SessionState,
  maxViewDepth: number,
): AnalysedStatement {
  try {
    return analyseStatement(input, catalog, session, maxViewDepth);
  } catch (error) {
    if (!(error instanceof RangeError)) throw error;
    return { lineage: untraceable(input), usedSession: true };
  }
}

function untraceable(input: StatementInput): StatementLineage {
  const opaque = { sources: [], wholeRows: [], transformed: true, opaque: true };
  return {
    kind: Object.keys(input.node)[0] ?? 'Unknown',
    columns: [{ name: '?column?', ...opaque }],
    exact: false,
    reads: [],
    readsUnknown: true,
    predicates: opaque,
    writes: [],
    effects: [{ kind: 'forget-cursors' }],
  };
}

/**
 * The part of the cache key that stands for the session: empty for a session that resolves names
 * as a fresh one does; its search paths when only they differ; null when results must not be cached.
 */
function cachePrefix(session: SessionState): string | null {
  if (session.views.size > 0 || session.settings.size > 0 || session.anySetting || session.routines.size > 0)
    return null;
  return session.searchPaths.length === 0 ? '' : JSON.stringify(session.searchPaths) + '\u0000';
}

/** One statement's own text; statement locations count UTF-8 bytes. */
function statementText(bytes: Buffer, raw: RawStmt): string {
  const start = raw.stmt_location ?? 0;
  const end = raw.stmt_len ? start + raw.stmt_len : bytes.length;
  return bytes.toString('utf8', start, end);
}
