/**
 * Whether a recorded statement is privileged, from its command tag or leading keywords. A record does
 * not carry the class the proxy's analysis gave the statement, so this reads the text as written
 * (literals already replaced by placeholders): it names DDL and administration by their keywords and
 * claims nothing about statements whose text could not be parsed (null).
 */
export type Privilege = 'ddl' | 'admin';

const DDL = new Set([
  'CREATE',
  'ALTER',
  'DROP',
  'TRUNCATE',
  'COMMENT',
  'RENAME',
  'GRANT',
  'REVOKE',
  'IMPORT',
]);
const ADMIN = new Set([
  'VACUUM',
  'ANALYZE',
  'REINDEX',
  'CLUSTER',
  'CHECKPOINT',
  'LOAD',
  'DO',
  'CALL',
  'KILL',
  'SHUTDOWN',
  'FLUSH',
  'INSTALL',
  'UNINSTALL',
  'OPTIMIZE',
  'REPAIR',
  'REFRESH',
  'LOCK',
  'SECURITY',
]);
/** SET and RESET are admin only when they change who the session is. */
const IDENTITY_SETTING = /^(SET|RESET)\s+(SESSION\s+AUTHORIZATION|(SESSION\s+|LOCAL\s+)?ROLE)\b/i;

export function statementPrivilege(statement: string | null, command: string | null): Privilege | undefined {
  const words = (statement ?? '').trimStart();
  if (IDENTITY_SETTING.test(words)) return 'admin';
  const keyword = (/^[A-Za-z]+/.exec(words)?.[0] ?? command?.split(/\s/)[0] ?? '').toUpperCase();
  if (DDL.has(keyword)) return 'ddl';
  if (ADMIN.has(keyword)) return 'admin';
  return undefined;
}
