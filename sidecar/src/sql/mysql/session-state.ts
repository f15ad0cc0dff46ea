import type { Lineage } from '../lineage/types.ts';
import type { MysqlPreparedStatement } from './analyze-mysql.ts';
import type { MysqlSqlMode } from './sql-mode.ts';

/**
 * What one MySQL client session has done that changes how later statements are read and traced.
 * Immutable: `applyMysqlSessionEffects` returns a new state.
 */
export interface MysqlSessionState {
  /** The session's sql_mode; null when it cannot be told (analyzeMysql then requires the text to read the same under every mode). */
  readonly sqlMode: MysqlSqlMode | null;
  /**
   * What each user variable may hold, by lower-cased name. Only ever widened: a later assignment of
   * a constant may be in a statement that failed, which the proxy does not always know.
   */
  readonly userVariables: ReadonlyMap<string, Lineage>;
  /** SQL PREPAREd statements by lower-cased name. */
  readonly prepared: ReadonlyMap<string, MysqlPreparedStatement>;
  /** Open HANDLERs: handler name (lower-cased) to the table it reads. */
  readonly handlers: ReadonlyMap<string, string>;
  /** The default database (USE); null for the one the session connected to (the catalog's searchPath). */
  readonly database: string | null;
}

export function initialMysqlSession(sqlMode: MysqlSqlMode | null): MysqlSessionState {
  return Object.freeze({
    sqlMode,
    userVariables: new Map(),
    prepared: new Map(),
    handlers: new Map(),
    database: null,
  });
}
