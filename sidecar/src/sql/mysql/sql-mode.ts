/**
 * The parts of MySQL's `sql_mode` that change how text is tokenised. Other modes change what
 * statements do, not what they are, so the analysis ignores them.
 */
export interface MysqlSqlMode {
  /** `"x"` is an identifier, not a string. */
  readonly ansiQuotes: boolean;
  /** A backslash in a string is an ordinary character. */
  readonly noBackslashEscapes: boolean;
}

export const DEFAULT_SQL_MODE: MysqlSqlMode = Object.freeze({ ansiQuotes: false, noBackslashEscapes: false });

/** Every combination, for text whose mode cannot be known: it is read the same under all of them, or not at all. */
export const EVERY_SQL_MODE: readonly MysqlSqlMode[] = Object.freeze(
  [false, true].flatMap((ansiQuotes) =>
    [false, true].map((noBackslashEscapes) => Object.freeze({ ansiQuotes, noBackslashEscapes })),
  ),
);

/** Combination modes (MySQL and MariaDB) that include ANSI_QUOTES. */
const ANSI_QUOTES_MODES = new Set(['ANSI_QUOTES', 'ANSI', 'DB2', 'MAXDB', 'MSSQL', 'ORACLE', 'POSTGRESQL']);

/** The value of `sql_mode` as the server takes it: a comma-separated list, case-insensitive. */
export function parseSqlMode(value: string): MysqlSqlMode {
  const names = value.split(',').map((name) => name.trim().toUpperCase());
  return modeOf(
    names.some((name) => ANSI_QUOTES_MODES.has(name)),
    names.includes('NO_BACKSLASH_ESCAPES'),
  );
}

export function modeOf(ansiQuotes: boolean, noBackslashEscapes: boolean): MysqlSqlMode {
  return EVERY_SQL_MODE[(ansiQuotes ? 2 : 0) + (noBackslashEscapes ? 1 : 0)]!;
}

/** A short key for caches. */
export function sqlModeKey(mode: MysqlSqlMode): string {
  return (mode.ansiQuotes ? 'A' : 'a') + (mode.noBackslashEscapes ? 'B' : 'b');
}

/**
 * Modes that change how statements are parsed in ways the analysis does not follow: `||` as
 * concatenation rather than OR, NOT binding tighter than BETWEEN or LIKE. The combination modes
 * include PIPES_AS_CONCAT. (IGNORE_SPACE, which clients such as mysql2 ask for at connection, only
 * lets `count (x)` be the call the analysis already reads it as.)
 */
const UNREADABLE_MODES = new Set([
  'PIPES_AS_CONCAT',
  'HIGH_NOT_PRECEDENCE',
  'ANSI',
  'DB2',
  'MAXDB',
  'MSSQL',
  'ORACLE',
  'POSTGRESQL',
]);

/** The first mode in an sql_mode value that Gatehouse cannot read statements under, if any. */
export function unreadableSqlMode(value: string): string | undefined {
  return value
    .split(',')
    .map((name) => name.trim().toUpperCase())
    .find((name) => UNREADABLE_MODES.has(name));
}
