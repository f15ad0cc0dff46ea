import { beforeAll, describe, expect, it } from 'vitest';
import { API_VERSION } from '../../../../crds/common.ts';
import type { GuardrailRuleKind } from '../../../../crds/guardrail.ts';
import type { Identity } from '../../identity/identity.ts';
import { withStoredCode } from '../../policy/gates/stored-code.ts';
import { decide } from '../../policy/guardrails/decide.ts';
import { DEFAULT_GUARDRAIL } from '../../policy/guardrails/default-guardrails.ts';
import { loadPolicyDocuments } from '../../policy/load-policy.ts';
import { analyzeMysql } from './analyze-mysql.ts';
import { buildMysqlCodeCatalog } from './mysql-code-catalog.ts';
import { loadMysqlParser } from './parser.ts';
import { applyMysqlSessionEffects, resolveMysqlExecutes } from './session.ts';
import { initialMysqlSession } from './session-state.ts';
import { DEFAULT_SQL_MODE, parseSqlMode } from './sql-mode.ts';

beforeAll(async () => {
  await loadMysqlParser();
});

const ALICE: Identity = { subject: 'local:alice', groups: [], method: 'local' };
const EVERYTHING = loadPolicyDocuments(
  [
    DEFAULT_GUARDRAIL,
    {
      apiVersion: API_VERSION,
      kind: 'DatabaseAccess',
      metadata: { name: 'app' },
      spec: {
        subjects: [{ kind: 'User', name: 'local:alice' }],
        allow: ['read', 'write', 'ddl', 'admin'],
        guardrails: ['gatehouse-defaults'],
      },
    },
  ],
  'test',
);
const READ_WRITE = loadPolicyDocuments(
  [
    DEFAULT_GUARDRAIL,
    {
      apiVersion: API_VERSION,
      kind: 'DatabaseAccess',
      metadata: { name: 'app' },
      spec: {
        subjects: [{ kind: 'User', name: 'local:alice' }],
        allow: ['read', 'write'],
        guardrails: ['gatehouse-defaults'],
      },
    },
  ],
  'test',
);

/** A server with no stored code: facts as the gate judges them, with the (absent) code they reach. */
const NO_STORED_CODE = buildMysqlCodeCatalog({ routines: [], parameters: [], triggers: [], views: [] });
const facts = (sql: string, mode = DEFAULT_SQL_MODE) => analyzeMysql(sql, { sqlMode: mode });
const judged = (sql: string) => withStoredCode(facts(sql), NO_STORED_CODE).facts;

/** [class, sql, the finding that must refuse it] — our own cases, by the red-team README's classes. */
const BLOCKED: readonly [string, string, GuardrailRuleKind][] = [
  // 1. keyword matching: case, comments as spaces, executable comments, quoting, modifiers
  ['1 keywords', 'dRoP/**/TaBlE customers', 'drop'],
  ['1 keywords', 'DROP /*!TABLE*/ customers', 'drop'],
  ['1 keywords', 'SELECT 1 /*!50000 ; DROP TABLE customers */', 'drop'],
  ['1 keywords', '/*M!100100 TRUNCATE customers */', 'truncate'],
  ['1 keywords', 'DROP TABLE `cust``omers`', 'drop'],
  ['1 conditional', 'DELETE FROM customers /*!99999 WHERE id = 1 */', 'delete-without-where'],
  ['1 conditional', 'DELETE FROM customers /*M!100000 WHERE id = 1 */', 'delete-without-where'],
  ['1 conditional', 'DROP /*!99999 TEMPORARY */ TABLE customers', 'drop'],
  ['1 conditional', 'UPDATE customers SET notes = 1 /*M! WHERE id = 2 */', 'update-without-where'],
  ['1 keywords', 'UPDATE LOW_PRIORITY IGNORE customers SET ssn = NULL', 'update-without-where'],
  ['1 keywords', 'DELETE QUICK FROM `rt`.`customers`', 'delete-without-where'],
  ['1 keywords', 'TRUNCATE TABLE rt.customers', 'truncate'],
  // 2. lexer mismatch: -- needing a space, #, backslashes, sql_mode
  ['2 lexer', 'SELECT 1 --1\n; DROP TABLE customers', 'drop'],
  ['2 lexer', 'SELECT "it\\"s"; DROP TABLE customers; #"', 'drop'],
  ['2 lexer', "SELECT '/*'; DROP TABLE customers; -- */", 'drop'],
  ['2 lexer', 'SET sql_mode=\'ANSI_QUOTES\'; SELECT "a;"; DROP TABLE customers', 'drop'],
  [
    '2 lexer',
    'SET @@session.sql_mode = CONCAT(@@sql_mode, ",ANSI_QUOTES"); SELECT "a;"; DROP TABLE customers',
    'drop',
  ],
  [
    '2 lexer',
    'SET @@session.sql_mode = REPLACE(@@sql_mode, "ANSI_QUOTES", ""); SELECT 1',
    'unknown-statement',
  ],
  ['2 lexer', "SELECT 'unterminated", 'unknown-statement'],
  ['2 lexer', 'SELECT 1 /* unterminated', 'unknown-statement'],
  ['2 lexer', 'SET NAMES gbk', 'unknown-statement'],
  ['2 lexer', "SET CHARACTER SET 'sjis'", 'unknown-statement'],
  ['2 lexer', 'SET character_set_client = big5', 'unknown-statement'],
  ['2 lexer', 'SET @@session.character_set_client = @cs', 'unknown-statement'],
  // 3. several statements
  ['3 stacked', 'SELECT 1; DELETE FROM orders WHERE id = 1', 'multi-statement'],
  ['3 stacked', 'SELECT * FROM orders;UPDATE orders SET amount = 0 WHERE id = 2', 'multi-statement'],
  ['3 stacked', 'SELECT 1;\nINSERT INTO orders VALUES (3, 1, 1, "x")', 'multi-statement'],
  ['3 stacked', 'SELECT 1 # comment\n; CREATE TABLE t2 (a int)', 'multi-statement'],
  ['3 stacked', 'SHOW TABLES; DROP VIEW v', 'drop'],
  // 4. DML hidden in other statements
  ['4 hidden', 'ANALYZE DELETE FROM customers', 'delete-without-where'],
  ['4 hidden', 'EXPLAIN ANALYZE UPDATE customers SET ssn = NULL', 'update-without-where'],
  ['4 hidden', "PREPARE s FROM 'DELETE FROM customers'", 'delete-without-where'],
  ['4 hidden', 'SET STATEMENT max_statement_time=1 FOR DELETE FROM customers', 'delete-without-where'],
  ['4 hidden', 'EXECUTE never_prepared', 'unknown-statement'],
  ['4 hidden', 'REPLACE INTO customers SELECT * FROM customers; DELETE FROM orders', 'delete-without-where'],
  // 5. tautological WHERE
  ['5 where', 'DELETE FROM customers WHERE 1', 'delete-without-where'],
  ['5 where', 'DELETE FROM customers WHERE true', 'delete-without-where'],
  ['5 where', "DELETE FROM customers WHERE 'a' = 'a'", 'delete-without-where'],
  ['5 where', 'DELETE FROM customers WHERE id = 1 OR 1', 'delete-without-where'],
  ['5 where', 'DELETE FROM customers WHERE id = 1 || 1', 'delete-without-where'],
  ['5 where', 'DELETE FROM customers WHERE id = 2 XOR 1', 'delete-without-where'],
  ['5 where', 'DELETE FROM customers WHERE id = id && 1', 'delete-without-where'],
  ['5 where', 'DELETE FROM customers WHERE id LIKE 1 = 0', 'delete-without-where'],
  ['5 where', 'DELETE FROM customers WHERE id IN (1) = 0', 'delete-without-where'],
  ['5 where', 'DELETE FROM customers WHERE !0', 'unknown-statement'],
  ['5 where', 'DELETE FROM customers WHERE NOT 0', 'delete-without-where'],
  ['5 where', 'DELETE FROM customers WHERE id IS NOT NULL OR 1', 'delete-without-where'],
  ['5 where', 'UPDATE customers SET notes = 1 WHERE c.id = c.id', 'update-without-where'],
  ['5 where', 'UPDATE customers SET notes = 1 WHERE 1 = 1 LIMIT 1', 'update-without-where'],
  ['5 where', 'DELETE FROM customers ORDER BY id LIMIT 1', 'delete-without-where'],
  ['5 where', 'DELETE FROM customers WHERE EXISTS (SELECT 1)', 'delete-without-where'],
  ['5 where', "DELETE FROM customers WHERE email LIKE '%'", 'delete-without-where'],
  ['5 where', "DELETE FROM customers WHERE email LIKE CONCAT('%', '')", 'delete-without-where'],
  ['5 where', 'DELETE FROM customers WHERE id', 'delete-without-where'],
  ['5 where', 'DELETE FROM customers WHERE id <=> id', 'delete-without-where'],
  ['5 where', 'DELETE FROM customers WHERE id IN (id, 1)', 'delete-without-where'],
  ['5 where', 'DELETE FROM customers WHERE @a = @a', 'delete-without-where'],
  ['5 where', 'DELETE FROM customers WHERE id = 1 OR id = id', 'delete-without-where'],
  ['5 where', 'DELETE FROM customers WHERE id IN (SELECT id FROM customers)', 'delete-without-where'],
  ['5 where', 'DELETE customers FROM customers, orders WHERE orders.id = 1', 'delete-without-where'],
  ['5 where', 'DELETE c FROM customers c JOIN orders o ON c.id = c.id', 'delete-without-where'],
  ['5 where', 'UPDATE customers c JOIN orders o ON 1 = 1 SET c.notes = o.amount', 'update-without-where'],
  ['5 where', 'UPDATE customers c, orders o SET c.notes = o.amount', 'update-without-where'],
  ['5 where', 'UPDATE orders SET amount = 0 ORDER BY id DESC LIMIT 10', 'update-without-where'],
  // 6. dynamic SQL and stored code
  ['6 dynamic', 'SET @s = CONCAT("DROP ", "TABLE customers"); PREPARE st FROM @s; EXECUTE st', 'dynamic-sql'],
  ['6 dynamic', 'CALL purge_everything()', 'dynamic-sql'],
  // Stored code is judged by its body when it is created (and again where it runs).
  ['6 dynamic', 'CREATE PROCEDURE p() BEGIN DELETE FROM customers; END', 'delete-without-where'],
  [
    '6 dynamic',
    'CREATE TRIGGER t BEFORE INSERT ON orders FOR EACH ROW DELETE FROM customers',
    'delete-without-where',
  ],
  ['6 dynamic', 'CREATE EVENT e ON SCHEDULE EVERY 1 DAY DO DELETE FROM customers', 'delete-without-where'],
  ['6 dynamic', 'CREATE PROCEDURE p() BEGIN PREPARE s FROM @q; EXECUTE s; END', 'dynamic-sql'],
  [
    '6 dynamic',
    'CREATE PROCEDURE p() BEGIN FOR i IN 1..3 DO DELETE FROM customers WHERE id = i; END FOR; END',
    'unknown-statement',
  ],
  ['6 dynamic', 'BEGIN NOT ATOMIC DELETE FROM customers WHERE id = 1; END', 'dynamic-sql'],
  ['6 dynamic', "BINLOG 'AAAA'", 'dynamic-sql'],
  ['6 dynamic', "EXECUTE IMMEDIATE 'TRUNCATE customers'", 'truncate'],
  ['6 dynamic', "EXECUTE IMMEDIATE CONCAT('DROP TABLE ', 'customers')", 'dynamic-sql'],
  ['6 dynamic', "SET GLOBAL init_connect = 'DELETE FROM customers'", 'dynamic-sql'],
  ['9 files', "SET GLOBAL general_log_file = '/var/www/shell.php'", 'file-access'],
  // 7. protocol paths: texts of COM_STMT_PREPARE, whose ? are bound later to any value
  ['7 prepared', 'DELETE FROM customers WHERE ? = ?', 'delete-without-where'],
  ['7 prepared', 'DELETE FROM customers WHERE id = ? OR ?', 'delete-without-where'],
  ['7 prepared', 'UPDATE customers SET ssn = ? WHERE id = id + ?', 'update-without-where'],
  ['7 prepared', 'UPDATE customers SET ssn = ? WHERE ? IS NOT NULL', 'update-without-where'],
  ['7 prepared', 'DELETE FROM customers WHERE email LIKE ? OR 1', 'delete-without-where'],
  // 8. identity and privileges
  ['8 identity', 'SET ROLE admin', 'identity-change'],
  ['8 identity', 'SET DEFAULT ROLE ALL TO alice', 'identity-change'],
  ['8 identity', "SET PASSWORD FOR root = PASSWORD('x')", 'identity-change'],
  ['8 identity', "GRANT ALL ON *.* TO 'alice'@'%'", 'grant'],
  ['8 identity', "REVOKE SELECT ON rt.* FROM 'bob'", 'grant'],
  ['8 identity', "CREATE USER 'eve'@'%' IDENTIFIED BY 'pw'", 'grant'],
  ['8 identity', "ALTER USER 'alice' IDENTIFIED BY 'pw'", 'grant'],
  ['8 identity', "RENAME USER 'a' TO 'b'", 'grant'],
  ['8 identity', "DROP USER 'bob'", 'drop'],
  // 9. files and programs
  ['9 files', "SELECT * FROM customers INTO OUTFILE '/tmp/c.csv'", 'file-access'],
  ['9 files', "SELECT ssn FROM customers INTO DUMPFILE '/tmp/x'", 'file-access'],
  ['9 files', "LOAD DATA INFILE '/etc/passwd' INTO TABLE orders", 'file-access'],
  ['9 files', "LOAD DATA LOCAL INFILE 'x.csv' INTO TABLE orders", 'file-access'],
  ['9 files', "LOAD XML INFILE '/tmp/x.xml' INTO TABLE orders", 'file-access'],
  ['9 files', "SELECT load_file ('/etc/shadow')", 'file-access'],
  ['9 files', "SELECT /*!LOAD_FILE*/('/etc/passwd')", 'file-access'],
  ['9 files', "INSTALL SONAME 'ha_connect'", 'file-access'],
  ['9 files', "CREATE TABLE f (a text) ENGINE=CONNECT TABLE_TYPE=DOS FILE_NAME='/etc/passwd'", 'file-access'],
  // DDL
  ['ddl', 'ALTER TABLE customers DROP COLUMN ssn', 'drop'],
  ['ddl', 'ALTER TABLE customers ADD COLUMN x int', 'alter'],
  ['ddl', 'RENAME TABLE customers TO old_customers', 'alter'],
  ['ddl', 'DROP DATABASE rt', 'drop'],
];

/** [class, sql]: must run for a subject allowed read and write. */
const ALLOWED: readonly [string, string][] = [
  ['fp literal', "SELECT 'DROP TABLE customers' AS s"],
  ['fp literal', 'SELECT \'-- ; DROP\', "# ; TRUNCATE x"'],
  ['fp literal', "SELECT 'a\\\\'; "],
  ['fp literal', "SELECT 'a\\'; DROP TABLE customers; -- '"],
  ['fp comment', 'SELECT 1 -- ; DROP TABLE customers'],
  ['fp comment', 'SELECT 1 # ; DROP TABLE customers'],
  ['fp comment', 'SELECT 1 /* ; DROP TABLE customers */'],
  ['fp comment', 'SELECT /*+ MAX_EXECUTION_TIME(1000) */ id FROM orders'],
  ['fp comment', 'DELETE FROM orders /*!WHERE id = 1 */'],
  ['fp comment', '/*!40101 SET NAMES utf8mb4 */; /*!40014 SET FOREIGN_KEY_CHECKS = 0 */'],
  ['fp comment', 'DELETE FROM orders WHERE id = 1 /*!50000 AND amount > 0 */'],
  ['fp where', 'DELETE FROM orders WHERE id = 7'],
  ['fp where', 'UPDATE orders SET amount = amount + 1 WHERE customer_id IN (1, 2)'],
  ['fp where', "DELETE FROM orders WHERE shipped_to LIKE '1 %' LIMIT 10"],
  ['fp where', 'DELETE FROM orders WHERE id BETWEEN 1 AND 3'],
  ['fp where', 'UPDATE orders o SET o.amount = 0 WHERE o.id = 1 OR o.id = 2'],
  ['fp where', 'DELETE o FROM orders o JOIN customers c ON o.customer_id = c.id WHERE c.id = 2'],
  ['fp where', 'DELETE FROM orders WHERE NOT (id <> 3)'],
  ['fp where', 'DELETE FROM orders WHERE id = ?'],
  ['fp where', 'DELETE FROM orders WHERE id = 1 OR 0'],
  ['fp where', 'DELETE FROM orders WHERE id = 1 && amount > 2'],
  ['fp where', 'DELETE FROM orders WHERE id = 1 || id = 2'],
  ['fp where', 'DELETE FROM orders WHERE shipped_to LIKE ?'],
  [
    'fp where',
    'INSERT INTO orders (id, amount) VALUES (9, 1) ON DUPLICATE KEY UPDATE amount = VALUES(amount)',
  ],
  // A change and its COMMIT in one text cannot be counted before it commits: under the defaults' row
  // limit it is refused (row-limits.test.ts); a read between BEGIN and COMMIT is not.
  ['fp stacked', 'BEGIN; SELECT amount FROM orders WHERE id = 1; COMMIT'],
  ['fp stacked', 'SELECT 1; SELECT 2'],
  ['fp session', 'SET NAMES utf8mb4; SET @x = 1; SELECT @x'],
  ['fp session', 'SET SESSION sql_mode = "ANSI_QUOTES"'],
  ['fp prepare', "PREPARE s FROM 'SELECT id FROM orders WHERE id = ?'"],
  ['fp prepare', "EXECUTE IMMEDIATE 'SELECT id FROM orders WHERE id = ?' USING 1"],
  ['fp prepare', "SET @q = 'SELECT 1'; PREPARE s FROM @q; EXECUTE s; DEALLOCATE PREPARE s"],
  ['fp handler', 'HANDLER orders OPEN'],
  ['fp prepared', 'UPDATE customers SET notes = ? WHERE id IN (?, ?)'],
  ['fp prepared', 'SELECT * FROM customers WHERE id = ? LIMIT ?'],
  ['fp prepared', 'INSERT INTO orders (id, amount) VALUES (?, ?)'],
  ['fp show', 'SHOW WARNINGS'],
  ['fp show', 'DESCRIBE orders'],
  ['fp temp', 'CREATE TEMPORARY TABLE scratch (a int)'],
  ['fp maintenance', 'CHECK TABLE orders'],
  ['fp grammar', 'SELECT * FROM orders LOCK IN SHARE MODE'],
  ['fp grammar', 'SELECT customer_id, SUM(amount) FROM orders GROUP BY customer_id WITH ROLLUP'],
  ['fp grammar', 'SELECT id MOD 2, id DIV 2, id XOR 1 FROM orders'],
  ['fp grammar', 'UPDATE orders o, customers c SET o.amount = 0 WHERE o.customer_id = c.id AND c.id = 1'],
  [
    'fp grammar',
    'SELECT SQL_CALC_FOUND_ROWS STRAIGHT_JOIN o.id FROM orders o USE INDEX (PRIMARY) LIMIT ?, ?',
  ],
  [
    'fp grammar',
    "SELECT doc->>'$.a', NOW() - INTERVAL 1 DAY FROM orders WHERE MATCH(shipped_to) AGAINST ('x')",
  ],
  ['fp grammar', 'INSERT IGNORE INTO orders VALUES ROW(1, 1, 1, ?), ROW(2, 2, 2, ?)'],
  ['fp grammar', 'SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED; SET autocommit = 0'],
  ['fp grammar', 'SET NAMES utf8mb4 COLLATE utf8mb4_unicode_ci'],
  ['fp grammar', "SET NAMES 'latin1'; SET CHARACTER SET utf8mb4; SET character_set_results = NULL"],
  ['fp grammar', "SHOW VARIABLES LIKE 'version%'"],
];

describe('analyzeMysql with the default guardrails', () => {
  it.each(BLOCKED)('%s: %s is refused for %s', (_class, sql, kind) => {
    const f = judged(sql);
    expect(f.findings.map((x) => x.kind)).toContain(kind);
    const decision = decide(f, ALICE, EVERYTHING, { database: 'rt' });
    expect(decision.outcome).toBe('refuse');
    expect(decision.outcome === 'refuse' && decision.policyKind).toBe('Guardrail');
  });

  it.each(ALLOWED)('%s: %s is allowed', (_class, sql) => {
    const f = judged(sql);
    expect(f.findings).toEqual([]);
    expect(decide(f, ALICE, READ_WRITE, { database: 'rt' }).outcome).toBe('allow');
  });
});

describe('statement facts', () => {
  it.each([
    ['SELECT a.x, b.y FROM `db`.`t` a JOIN u b ON a.id = b.id', ['db.t', 'u'], [], ['select']],
    ['INSERT INTO t (a, b) SELECT c, d FROM u', ['u'], ['t'], ['insert']],
    ['REPLACE INTO t VALUES (1)', [], ['t'], ['insert']],
    ['UPDATE t JOIN u ON t.id = u.id SET t.a = u.b WHERE u.c = 1', ['t', 'u'], ['t'], ['update']],
    ['DELETE t1 FROM t1 JOIN t2 ON t1.id = t2.id WHERE t2.x = 1', ['t1', 't2'], ['t1'], ['delete']],
    ['DELETE FROM t1 USING t1 JOIN t2 ON t1.id = t2.id WHERE t2.x = 1', ['t1', 't2'], ['t1'], ['delete']],
    ['WITH q AS (SELECT * FROM t) SELECT * FROM q', ['t'], [], ['select']],
    ['HANDLER t READ FIRST', ['t'], [], ['fetch']],
  ] as const)('%s', (sql, read, written, kinds) => {
    const f = facts(sql);
    expect(f.parsed).toBe(true);
    expect([...f.tablesRead].sort()).toEqual([...read].sort());
    expect(f.tablesWritten).toEqual(written);
    expect(f.kinds).toEqual(kinds);
  });

  it('names columns read and written, and functions', () => {
    const f = facts('UPDATE customers SET notes = UPPER(email) WHERE id = 1');
    expect(f.statements[0]!.columnsWritten).toEqual(['customers.notes']);
    expect(f.statements[0]!.columnsRead).toEqual(expect.arrayContaining(['customers.email', 'customers.id']));
    expect(f.functions).toEqual(['upper']);
    expect(f.statements[0]!.where).toBe('effective');
  });

  it('plain EXPLAIN runs nothing: the statement it plans is not judged for its writes', () => {
    for (const sql of [
      'EXPLAIN DELETE FROM customers',
      'EXPLAIN UPDATE customers SET notes = NULL',
      'DESCRIBE DELETE FROM customers',
      'EXPLAIN FORMAT=JSON DELETE FROM customers',
    ]) {
      expect(
        facts(sql).findings.map((f) => f.kind),
        sql,
      ).toEqual([]);
      expect(facts(sql).classes, sql).toEqual(['read']);
    }
    expect(facts('EXPLAIN ANALYZE DELETE FROM customers').findings.map((f) => f.kind)).toContain(
      'delete-without-where',
    );
    expect(facts('ANALYZE DELETE FROM customers').findings.map((f) => f.kind)).toContain(
      'delete-without-where',
    );
  });

  it('classes follow the statement', () => {
    expect(facts('SELECT 1').classes).toEqual(['read']);
    expect(facts('SELECT * FROM t FOR UPDATE').classes).toEqual(['read', 'write']);
    expect(facts('CREATE TABLE t (a int)').classes).toEqual(['ddl']);
    expect(facts('CREATE DATABASE d').classes).toEqual(['admin']);
    expect(facts('SET GLOBAL max_connections = 10').classes).toEqual(['admin']);
    expect(facts('SET sql_log_bin = 0').classes).toEqual(['admin']);
    expect(facts('START TRANSACTION').classes).toEqual([]);
  });

  it.each([
    // mariadb-dump's lock: READ locks are reads.
    [
      'LOCK TABLES `customers` READ /*!32311 LOCAL */,`orders` READ /*!32311 LOCAL */',
      ['read'],
      ['customers', 'orders'],
    ],
    ['LOCK TABLE t AS x READ, u y READ LOCAL NOWAIT', ['read'], ['t', 'u']],
    ['LOCK TABLES t READ, u WRITE', ['write'], ['t', 'u']],
    ['LOCK TABLES t LOW_PRIORITY WRITE', ['write'], ['t']],
    ['LOCK TABLES t WRITE CONCURRENT WAIT 3', ['write'], ['t']],
    // Not read to its end: a write, as any lock was before.
    ['LOCK TABLES t READ garbage', ['write'], ['t']],
    ['LOCK TABLES t', ['write'], ['t']],
  ])('%s needs %j', (sql, classes, tables) => {
    const analysed = facts(sql);
    expect(analysed.classes).toEqual(classes);
    expect(analysed.tablesRead).toEqual(tables);
    expect(facts('not sql at all').classes).toEqual(['read', 'write', 'ddl', 'admin']);
  });

  it('flags SHOW WARNINGS, SHOW ERRORS and GET DIAGNOSTICS as side channels', () => {
    expect(facts('SHOW WARNINGS').sideChannels).toEqual(['diagnostics']);
    expect(facts('SHOW COUNT(*) ERRORS').sideChannels).toEqual(['diagnostics']);
    expect(facts('GET DIAGNOSTICS CONDITION 1 @m = MESSAGE_TEXT').sideChannels).toEqual(['diagnostics']);
    expect(facts('SHOW FULL PROCESSLIST').sideChannels).toEqual(['processlist']);
    expect(facts('SHOW TABLES').sideChannels).toEqual([]);
    expect(
      facts('SELECT EXTRACTVALUE(1, CONCAT(0x7e, (SELECT ssn FROM customers LIMIT 1)))').sideChannels,
    ).toEqual(['error-text']);
  });

  it('caches by sql_mode and text, and freezes', () => {
    const a = facts('SELECT "x"');
    expect(facts('SELECT "x"')).toBe(a);
    expect(Object.isFrozen(a)).toBe(true);
    const ansi = facts('SELECT "x"', parseSqlMode('ANSI'));
    expect(ansi).not.toBe(a);
  });

  it('reads text under an unknown sql_mode only when every mode reads it the same', () => {
    expect(analyzeMysql('SELECT id FROM orders', { sqlMode: null }).parsed).toBe(true);
    const f = analyzeMysql("SELECT '\\'; DROP TABLE customers; -- '", { sqlMode: null });
    expect(f.findings.map((x) => x.kind)).toContain('unknown-statement');
  });
});

describe('MySQL session effects', () => {
  it('tracks sql_mode across messages', () => {
    let session = initialMysqlSession(DEFAULT_SQL_MODE);
    const set = facts("SET sql_mode = 'NO_BACKSLASH_ESCAPES'");
    session = applyMysqlSessionEffects(session, set);
    expect(session.sqlMode).toEqual({ ansiQuotes: false, noBackslashEscapes: true });
    const next = analyzeMysql("SELECT '\\'; DROP TABLE customers; -- '", { sqlMode: session.sqlMode });
    expect(next.findings.map((x) => x.kind)).toContain('drop');
    session = applyMysqlSessionEffects(session, facts('SET sql_mode = DEFAULT'));
    expect(session.sqlMode).toBe(null);
  });

  it('ignores GLOBAL sql_mode and reads @@session.sql_mode', () => {
    expect(facts("SET GLOBAL sql_mode = 'ANSI'").sqlModeAfter).toBeUndefined();
    expect(facts("SET @@SESSION.sql_mode = 'ANSI'").sqlModeAfter).toEqual(parseSqlMode('ANSI'));
    expect(facts("SET @@sql_mode := 'ANSI_QUOTES,NO_BACKSLASH_ESCAPES'").sqlModeAfter).toEqual({
      ansiQuotes: true,
      noBackslashEscapes: true,
    });
  });

  it('judges EXECUTE of a statement prepared in an earlier message by what it prepared', () => {
    let session = initialMysqlSession(DEFAULT_SQL_MODE);
    session = applyMysqlSessionEffects(session, facts("PREPARE wipe FROM 'TRUNCATE customers'"));
    const execute = facts('EXECUTE wipe');
    expect(execute.unresolvedExecutes).toEqual(['wipe']);
    const resolved = resolveMysqlExecutes(execute, session);
    expect(resolved.findings.map((x) => x.kind)).toEqual(['truncate']);
    session = applyMysqlSessionEffects(session, facts('DEALLOCATE PREPARE wipe'));
    expect(resolveMysqlExecutes(execute, session).findings.map((x) => x.kind)).toEqual(['unknown-statement']);
  });
});
