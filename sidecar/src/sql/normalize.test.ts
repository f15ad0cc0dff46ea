import { beforeAll, describe, expect, it } from 'vitest';
import { describeQuery, describeStatement, loadSqlParser } from './normalize.ts';

beforeAll(async () => {
  await loadSqlParser();
});

const FINGERPRINT = /^[0-9a-f]{16}$/;

describe('describeQuery', () => {
  it('replaces the literal of a pgbench statement and fingerprints it', () => {
    const [one, ...rest] = describeQuery('SELECT abalance FROM pgbench_accounts WHERE aid = 12345;');
    expect(rest).toEqual([]);
    expect(one?.statement).toBe('SELECT abalance FROM pgbench_accounts WHERE aid = $1');
    expect(one?.fingerprint).toMatch(FINGERPRINT);
  });

  it('gives statements that differ only in literals the same text and fingerprint', () => {
    const a = describeQuery("UPDATE t SET v = 'x' WHERE id = 1");
    const b = describeQuery("UPDATE t SET v = 'yy' WHERE id = 22");
    expect(b).toEqual(a);
    expect(describeQuery('UPDATE t SET w = 1 WHERE id = 1')[0]?.fingerprint).not.toBe(a[0]?.fingerprint);
  });

  it('splits several statements without being fooled by quotes, dollar quotes or comments', () => {
    const described = describeQuery(
      "select 'a;b' from t; /* ; */ select $$x;y$$, $tag$;$tag$; -- c;\nselect E'\\';x' ;;",
    );
    expect(described.map((d) => d.statement)).toEqual(['select $1 from t', 'select $1, $2', 'select $1']);
    for (const d of described) expect(d.fingerprint).toMatch(FINGERPRINT);
  });

  it('keeps a BEGIN ATOMIC function body, whose semicolons end nothing, in one statement', () => {
    const described = describeQuery(
      'CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT 2; END; SELECT 3',
    );
    expect(described.map((d) => d.statement)).toEqual([
      'CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT $1; SELECT $2; END',
      'SELECT $1',
    ]);
  });

  it('splits text with multi-byte characters at the right places', () => {
    const described = describeQuery("select 'é' as \"名前\"; select 'ü'");
    expect(described.map((d) => d.statement)).toEqual(['select $1 as "名前"', 'select $1']);
  });

  it('treats a semicolon inside a literal or comment as no split', () => {
    expect(describeQuery("select ';' -- ;").map((d) => d.statement)).toEqual(['select $1']);
  });

  it('gives a single entry of nulls for text that does not parse, never the raw text', () => {
    for (const sql of [
      'select * from',
      "select 'secret-unterminated",
      'select 1e9x',
      "select 1; select from where 'secret'",
      "select U&'\\zz'",
    ]) {
      expect(describeQuery(sql)).toEqual([{ statement: null, fingerprint: null }]);
    }
  });

  it('gives no entries for an empty query', () => {
    for (const sql of ['', '  ', ' ; ;; ', '-- only a comment', '/* c */ ;'])
      expect(describeQuery(sql)).toEqual([]);
  });

  it('returns the cached description for a repeated text', () => {
    const sql = 'select * from accounts where id = 77';
    expect(describeQuery(sql)).toBe(describeQuery(sql));
  });
});

describe('no literal ever appears', () => {
  // Each text carries SECRET, 424242 or 0xBEEF in a literal or a comment: none may reach the output.
  const texts = [
    "SELECT * FROM users WHERE email = 'SECRET@example.com' AND pin = 424242",
    "INSERT INTO t (a, b) VALUES (424242, 'SECRET'), (1, E'SECRET\\n')",
    "SELECT N'SECRET', B'1010', X'BEEF', U&'SECR\\0045T', 4.24242e5, 0xBEEF, -424242",
    'SELECT $q$SECRET$q$, $$SECRET;$$',
    '/* SECRET */ SELECT 1 -- 424242',
    "SELECT 1 /* trace='SECRET' */; SELECT 2 -- SECRET",
    "COPY t FROM '/SECRET/path'",
    "COMMENT ON TABLE t IS 'SECRET'",
    "CREATE TABLE t (a varchar(10) DEFAULT 'SECRET', b int CHECK (b > 424242))",
    "CREATE VIEW v AS SELECT * FROM t WHERE a = 'SECRET'",
    "CREATE INDEX i ON t (a) WHERE b = 'SECRET'",
    "ALTER SYSTEM SET work_mem = '424242kB'",
    "CREATE SERVER s FOREIGN DATA WRAPPER w OPTIONS (host 'SECRET.example.com')",
    "CREATE USER MAPPING FOR bob SERVER s OPTIONS (password 'SECRET')",
    "ALTER USER bob PASSWORD 'SECRET'",
    'CREATE SEQUENCE s START 424242',
    "CREATE TYPE mood AS ENUM ('SECRET')",
    "DO $$BEGIN RAISE NOTICE 'SECRET'; END$$",
    "CREATE FUNCTION f() RETURNS text LANGUAGE sql AS $body$ SELECT 'SECRET' $body$",
    'PREPARE p AS SELECT $1 + 424242; EXECUTE p(424242)',
    "SET application_name = 'SECRET'",
    "SELECT set_config('x', 'SECRET', false)",
    "NOTIFY ch, 'SECRET'",
    'SELECT * FROM t LIMIT 424242 OFFSET 424242',
    "SELECT 'SECRET'::text, CAST('424242' AS int), interval '424242 days'",
  ];

  it.each(texts)('%s', (sql) => {
    const described = [...describeQuery(sql), describeStatement(sql)];
    for (const d of described) {
      expect(d.statement).not.toBeNull();
      expect(d.statement).not.toMatch(/SECRET|424242|BEEF|SECR/i);
    }
  });
});

describe('describeStatement', () => {
  it('keeps the parameters of an extended-protocol statement', () => {
    expect(describeStatement('SELECT * FROM t WHERE id = $1 AND v = 5')).toEqual({
      statement: 'SELECT * FROM t WHERE id = $1 AND v = $2',
      fingerprint: expect.stringMatching(FINGERPRINT),
    });
  });

  it('describes an empty Parse as an empty statement without a fingerprint', () => {
    expect(describeStatement('')).toEqual({ statement: '', fingerprint: null });
  });

  it('gives nulls for text that does not parse', () => {
    expect(describeStatement("SELECT 'secret")).toEqual({ statement: null, fingerprint: null });
  });
});
