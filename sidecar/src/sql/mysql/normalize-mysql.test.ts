import { describe, expect, it } from 'vitest';
import { normalizeMysql } from './normalize-mysql.ts';
import { DEFAULT_SQL_MODE, parseSqlMode } from './sql-mode.ts';

const SECRET = 'S3cr3tValue';

describe('normalizeMysql', () => {
  it.each([
    [`SELECT * FROM customers WHERE ssn = '${SECRET}'`, 'SELECT * FROM customers WHERE ssn = ?'],
    [`SELECT "${SECRET}", 42, 4.2e1, -7`, 'SELECT ?, ?, ?, -?'],
    [
      `SELECT X'${Buffer.from(SECRET).toString('hex')}', 0x${Buffer.from(SECRET).toString('hex')}, B'0101', 0b11`,
      'SELECT ?, ?, ?, ?',
    ],
    [`SELECT _utf8mb4'${SECRET}', N'${SECRET}', _latin1 X'41'`, 'SELECT ?, ?, _latin1 ?'],
    [`SELECT 1 /* ${SECRET} */ -- ${SECRET}\n # ${SECRET}`, 'SELECT ?'],
    [`SELECT 1 /*!50000 , '${SECRET}' */`, 'SELECT ? , ?'],
    [`SELECT 1 /*M!100000 , '${SECRET}' */`, 'SELECT ? , ?'],
    [`SELECT /*+ SET_VAR(x='${SECRET}') */ 1`, 'SELECT ?'],
    [`CREATE USER 'u'@'%' IDENTIFIED BY '${SECRET}'`, 'CREATE USER ?@? IDENTIFIED BY ?'],
    [
      `ALTER TABLE t ADD COLUMN c int DEFAULT 5 COMMENT '${SECRET}'`,
      'ALTER TABLE t ADD COLUMN c int DEFAULT ? COMMENT ?',
    ],
    [`SET @p = '${SECRET}'; PREPARE s FROM 'SELECT ''${SECRET}'''`, 'SET @p = ?; PREPARE s FROM ?'],
    [`SELECT 'it\\'s ${SECRET}'`, 'SELECT ?'],
    [`INSERT INTO t VALUES (1, 'a'), (2, '${SECRET}')`, 'INSERT INTO t VALUES (?, ?), (?, ?)'],
    ['SELECT `weird``name` FROM `db`.`t`', 'SELECT `weird``name` FROM `db`.`t`'],
  ])('%s', (sql, normalized) => {
    const described = normalizeMysql(sql, DEFAULT_SQL_MODE);
    expect(described.statement).toBe(normalized);
    expect(described.statement).not.toContain(SECRET);
  });

  it('reads literals as the session does: ANSI_QUOTES makes "x" a name', () => {
    expect(normalizeMysql('SELECT "col" FROM t', parseSqlMode('ANSI_QUOTES')).statement).toBe(
      'SELECT `col` FROM t',
    );
    expect(normalizeMysql('SELECT "col" FROM t', DEFAULT_SQL_MODE).statement).toBe('SELECT ? FROM t');
  });

  it('NO_BACKSLASH_ESCAPES moves where a literal ends', () => {
    const sql = `SELECT '\\', '${SECRET}'`;
    expect(normalizeMysql(sql, parseSqlMode('NO_BACKSLASH_ESCAPES')).statement).toBe('SELECT ?, ?');
    // Read with escapes, the second quote is escaped and the last one opens a literal never closed.
    expect(normalizeMysql(sql, DEFAULT_SQL_MODE).statement).toBe(null);
  });

  it('never returns text it cannot read', () => {
    expect(normalizeMysql(`SELECT '${SECRET}`, DEFAULT_SQL_MODE)).toEqual({
      statement: null,
      fingerprint: null,
    });
    expect(normalizeMysql(`SELECT 1 /* ${SECRET}`, DEFAULT_SQL_MODE)).toEqual({
      statement: null,
      fingerprint: null,
    });
  });

  it('fingerprints ignore literal values and list lengths', () => {
    const a = normalizeMysql('SELECT * FROM t WHERE id IN (1, 2, 3)', DEFAULT_SQL_MODE).fingerprint;
    const b = normalizeMysql("SELECT * FROM t WHERE id IN ('x')", DEFAULT_SQL_MODE).fingerprint;
    const c = normalizeMysql('SELECT * FROM u WHERE id IN (1)', DEFAULT_SQL_MODE).fingerprint;
    expect(a).toMatch(/^[0-9a-f]{32}$/);
    expect(a).toBe(b);
    expect(a).not.toBe(c);
  });
});
