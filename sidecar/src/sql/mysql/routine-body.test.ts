import { beforeAll, describe, expect, it } from 'vitest';
import { reachCode } from '../code-reach.ts';
import { analyzeMysql } from './analyze-mysql.ts';
import { lexMysql } from './lexer.ts';
import { buildMysqlCodeCatalog } from './mysql-code-catalog.ts';
import { loadMysqlParser } from './parser.ts';
import { analyzeMysqlRoutineBody } from './routine-body.ts';
import { DEFAULT_SQL_MODE } from './sql-mode.ts';
import { storedCodeBody } from './stored-code-body.ts';

beforeAll(async () => {
  await loadMysqlParser();
});

const body = (text: string, options: { parameters?: readonly string[]; trigger?: boolean } = {}) =>
  analyzeMysqlRoutineBody(text, DEFAULT_SQL_MODE, analyzeMysql, options);
const kinds = (text: string, options: { parameters?: readonly string[]; trigger?: boolean } = {}) => [
  ...new Set(body(text, options).findings.map((f) => f.kind)),
];

describe('storedCodeBody', () => {
  it.each([
    ['CREATE PROCEDURE p() DELETE FROM v', 'PROCEDURE', 'DELETE', []],
    [
      'CREATE DEFINER=`root`@`%` PROCEDURE db.p(IN a INT, OUT `b` TEXT) MODIFIES SQL DATA SQL SECURITY INVOKER BEGIN END',
      'PROCEDURE',
      'BEGIN',
      ['a', 'b'],
    ],
    [
      'CREATE OR REPLACE FUNCTION f(x INT) RETURNS DECIMAL(10,2) UNSIGNED DETERMINISTIC RETURN x',
      'FUNCTION',
      'RETURN',
      ['x'],
    ],
    [
      "CREATE FUNCTION f() RETURNS VARCHAR(20) CHARSET utf8mb4 COMMENT 'c' NO SQL lbl: BEGIN END",
      'FUNCTION',
      'LBL',
      [],
    ],
    ['CREATE TRIGGER t BEFORE INSERT ON v FOR EACH ROW FOLLOWS other SET NEW.x = 1', 'TRIGGER', 'SET', []],
    ['CREATE EVENT IF NOT EXISTS e ON SCHEDULE EVERY (1) DAY DO DELETE FROM v', 'EVENT', 'DELETE', []],
  ])('%s', (sql, kind, first, parameters) => {
    const tokens = lexMysql(sql, DEFAULT_SQL_MODE).statements[0]!.tokens;
    const found = storedCodeBody(tokens);
    expect(found?.kind).toBe(kind);
    expect(tokens[found!.start]!.value).toBe(first);
    expect(found?.parameters).toEqual(parameters);
  });

  it.each(['CREATE TABLE t (a int)', 'CREATE FUNCTION f RETURNS INT SONAME "udf.so"', 'SELECT 1'])(
    'is undefined for %s',
    (sql) => {
      expect(storedCodeBody(lexMysql(sql, DEFAULT_SQL_MODE).statements[0]!.tokens)).toBeUndefined();
    },
  );
});

describe('analyzeMysqlRoutineBody', () => {
  it.each([
    ['DELETE FROM v', {}, ['delete-without-where']],
    ['BEGIN DELETE FROM v WHERE id = p_id; END', { parameters: ['p_id'] }, []],
    ['BEGIN DECLARE n INT DEFAULT 0; DELETE FROM v WHERE id = n; END', {}, []],
    ['BEGIN DELETE FROM v WHERE id = id; END', {}, ['delete-without-where']],
    ['BEGIN DELETE FROM w WHERE id = OLD.id; END', { trigger: true }, []],
    ['SET NEW.x = UPPER(NEW.x)', { trigger: true }, []],
    [
      'BEGIN IF (SELECT COUNT(*) FROM v) > 0 THEN UPDATE v SET x = 1; END IF; END',
      {},
      ['update-without-where'],
    ],
    ['BEGIN l: LOOP LEAVE l; END LOOP l; REPEAT SET @a = 1; UNTIL 1 END REPEAT; END', {}, []],
    ['BEGIN CASE 1 WHEN 1 THEN DELETE FROM v; ELSE BEGIN END; END CASE; END', {}, ['delete-without-where']],
    [
      "BEGIN DECLARE CONTINUE HANDLER FOR SQLSTATE VALUE '23000', NOT FOUND DELETE FROM v; END",
      {},
      ['delete-without-where'],
    ],
    ['BEGIN DECLARE c CURSOR FOR SELECT id FROM v; OPEN c; FETCH c INTO x; CLOSE c; END', {}, []],
    ['BEGIN PREPARE s FROM @q; EXECUTE s; END', {}, ['dynamic-sql', 'unknown-statement']],
    ['BEGIN FOR i IN 1..3 DO DELETE FROM v WHERE id = i; END FOR; END', {}, ['unknown-statement']],
    ['BEGIN SET GLOBAL general_log = 0; END', {}, []],
    ['RETURN (SELECT MAX(x) FROM v)', {}, []],
  ] as const)('%s → %j', (text, options, expected) => {
    expect(kinds(text, options)).toEqual(expected);
  });

  it('needs admin for a body that sets a server variable, read for a function that reads', () => {
    expect(body('BEGIN SET GLOBAL general_log = 0; END').classes).toContain('admin');
    expect(body('RETURN (SELECT MAX(x) FROM v)').classes).toEqual(['read']);
  });
});

describe('buildMysqlCodeCatalog', () => {
  const catalog = buildMysqlCodeCatalog({
    routines: [
      ['sc', 'gh_del', 'FUNCTION', 'SQL', 'BEGIN DELETE FROM v; RETURN 1; END', 'STRICT_TRANS_TABLES'],
      ['sc', 'ok_add', 'FUNCTION', 'SQL', 'RETURN a + 1', ''],
      ['sc', 'hidden', 'PROCEDURE', 'SQL', null, ''],
    ],
    parameters: [['sc', 'ok_add', 'a']],
    triggers: [['sc', 't_bad', 'sc', 'trig_t', 'DELETE FROM v', '']],
    views: [['sc', 'gh_view', 'select `sc`.`gh_del`() AS `n`']],
  });
  const reached = (sql: string) => [
    ...new Set(
      reachCode(analyzeMysql(sql, { sqlMode: DEFAULT_SQL_MODE }), catalog).facts.findings.map((f) => f.kind),
    ),
  ];

  it.each([
    ['SELECT ok_add(1), UPPER(x), LAST_INSERT_ID() FROM t', []],
    ['SELECT GH_DEL()', ['delete-without-where']],
    ['SELECT `sc`.`gh_del`()', ['delete-without-where']],
    ['SELECT other.gh_del()', ['dynamic-sql']],
    ['CALL hidden()', ['dynamic-sql']],
    ['CALL nowhere()', ['dynamic-sql']],
    ['SELECT not_a_builtin_i_know()', ['dynamic-sql']],
    ['INSERT INTO trig_t VALUES (1)', ['delete-without-where']],
    ['SELECT * FROM gh_view', ['delete-without-where']],
  ])('%s → %j', (sql, expected) => {
    expect(reached(sql)).toEqual(expected);
  });

  it('takes a name a reload found to be no stored routine as the server’s own', () => {
    const after = buildMysqlCodeCatalog(
      { routines: [], parameters: [], triggers: [], views: [] },
      new Set(['not_a_builtin_i_know']),
    );
    expect(after.routine('not_a_builtin_i_know')).toBe('builtin');
    expect(after.routine('db.not_a_builtin_i_know')).toBeUndefined();
  });
});
