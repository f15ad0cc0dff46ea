import { beforeAll, describe, expect, it } from 'vitest';
import { loadSqlParser } from '../normalize.ts';
import { analyzeStatement, resolveExecutes } from './analyze-statement.ts';
import type { StatementClass } from './statement-facts.ts';

beforeAll(async () => {
  await loadSqlParser();
});

interface ClassCase {
  readonly sql: string;
  readonly classes: readonly StatementClass[];
}

/** The class mapping of statement-catalog.ts, statement by statement. */
const CLASSES: readonly ClassCase[] = [
  { sql: 'SELECT id FROM customers', classes: ['read'] },
  { sql: 'VALUES (1)', classes: ['read'] },
  { sql: 'TABLE customers', classes: ['read'] },
  { sql: 'EXPLAIN SELECT * FROM customers', classes: ['read'] },
  { sql: 'ANALYZE customers', classes: ['write'] },
  { sql: 'ANALYZE', classes: ['write'] },
  { sql: 'VACUUM customers', classes: ['admin'] },
  { sql: 'VACUUM (ANALYZE) customers', classes: ['admin'] },
  { sql: 'EXPLAIN DELETE FROM customers', classes: ['read'] },
  { sql: 'COPY customers TO STDOUT', classes: ['read'] },
  { sql: 'COPY (SELECT id FROM customers) TO STDOUT', classes: ['read'] },
  { sql: 'DECLARE c CURSOR FOR SELECT 1', classes: ['read'] },
  { sql: 'FETCH 10 FROM c', classes: ['read'] },
  { sql: 'CREATE TEMP TABLE scratch (a int)', classes: ['read'] },
  { sql: 'CREATE TEMPORARY VIEW v AS SELECT id FROM customers', classes: ['read'] },
  { sql: 'SELECT * INTO TEMP t2 FROM orders', classes: ['read'] },
  { sql: 'INSERT INTO orders (customer_id, amount) VALUES (1, 2)', classes: ['write'] },
  { sql: 'UPDATE orders SET amount = 0 WHERE id = 1', classes: ['write'] },
  {
    sql: 'DELETE FROM orders WHERE id IN (SELECT o.id FROM orders o WHERE o.amount = 0)',
    classes: ['read', 'write'],
  },
  { sql: 'COPY orders FROM STDIN', classes: ['write'] },
  { sql: 'SELECT * FROM orders FOR UPDATE', classes: ['read', 'write'] },
  { sql: "SELECT nextval('orders_id_seq')", classes: ['read', 'write'] },
  { sql: 'LOCK TABLE orders', classes: ['write'] },
  { sql: 'LOCK TABLE public.orders IN ACCESS SHARE MODE', classes: ['read'] },
  { sql: 'LOCK TABLE orders IN ROW SHARE MODE', classes: ['write'] },
  { sql: 'LOCK TABLE orders IN ACCESS EXCLUSIVE MODE', classes: ['write'] },
  {
    sql: "SELECT set_config(name, 'view, foreign-table', false) FROM pg_settings WHERE name = 'restrict_nonsystem_relation_kind'",
    classes: ['read'],
  },
  {
    sql: "SELECT set_config(name, 'x', false) FROM pg_settings WHERE name = 'role'",
    classes: ['read', 'admin'],
  },
  { sql: 'TRUNCATE orders', classes: ['write'] },
  { sql: 'CREATE TABLE t (a int)', classes: ['ddl'] },
  { sql: 'CREATE INDEX ON orders (amount)', classes: ['ddl'] },
  { sql: 'ALTER TABLE orders ADD COLUMN note text', classes: ['ddl'] },
  { sql: 'DROP VIEW v', classes: ['ddl'] },
  { sql: "COMMENT ON TABLE orders IS 'x'", classes: ['ddl'] },
  { sql: 'CREATE TABLE t2 AS SELECT * FROM orders', classes: ['read', 'ddl'] },
  { sql: 'GRANT SELECT ON orders TO app', classes: ['admin'] },
  { sql: 'CREATE ROLE intruder SUPERUSER', classes: ['admin'] },
  { sql: 'ALTER SYSTEM SET work_mem = 1', classes: ['admin'] },
  { sql: 'VACUUM orders', classes: ['admin'] },
  { sql: 'SET ROLE postgres', classes: ['admin'] },
  { sql: 'SET log_statement = none', classes: ['admin'] },
  { sql: 'CREATE EXTENSION dblink', classes: ['admin'] },
  { sql: 'DROP EXTENSION dblink', classes: ['admin'] },
  // CALL takes the classes of the procedure's body, which the catalog tells (sql/code-reach.ts).
  { sql: 'CALL p()', classes: [] },
  { sql: 'SELECT pg_terminate_backend(123)', classes: ['read', 'admin'] },
  { sql: "COPY orders TO '/tmp/x'", classes: ['read', 'admin'] },
  { sql: 'BEGIN', classes: [] },
  { sql: 'COMMIT', classes: [] },
  { sql: "SET application_name = 'x'", classes: [] },
  { sql: 'SHOW search_path', classes: [] },
  { sql: 'RESET ALL', classes: [] },
  { sql: 'LISTEN jobs', classes: [] },
  { sql: 'DEALLOCATE ALL', classes: [] },
  { sql: 'DISCARD PLANS', classes: [] },
  // What connection pools send when a connection is returned: back to the login identity, allowed.
  { sql: 'DISCARD ALL', classes: [] },
  { sql: 'RESET ROLE', classes: [] },
  { sql: 'RESET SESSION AUTHORIZATION', classes: [] },
  { sql: 'SET ROLE NONE', classes: ['admin'] },
  { sql: 'PREPARE q AS SELECT 1', classes: ['read'] },
  { sql: 'DO $$BEGIN UPDATE orders SET amount = 0 WHERE id = 1; END$$', classes: ['write'] },
  { sql: 'DO $$BEGIN EXECUTE $q$UPDATE orders SET amount = 0 WHERE id = 1$q$; END$$', classes: ['write'] },
  { sql: "DO $$BEGIN EXECUTE 'UPDATE ' || 'orders SET amount = 0'; END$$", classes: ['admin'] },
  { sql: 'DO LANGUAGE plperl $$ 1 $$', classes: ['admin'] },
  { sql: 'SELEC 1', classes: ['read', 'write', 'ddl', 'admin'] },
  { sql: 'PREPARE TRANSACTION $$x$$', classes: ['admin'] },
];

describe('analyzeStatement: classes', () => {
  it.each(CLASSES)('$sql needs $classes', ({ sql, classes }) => {
    expect(analyzeStatement(sql).classes).toEqual(classes);
  });
});

describe('analyzeStatement: facts', () => {
  it('normalises identifiers as PostgreSQL does and keeps schema qualification', () => {
    const facts = analyzeStatement(
      'SELECT * FROM "Public"."Customers" c JOIN ORDERS o ON o.customer_id = c.id',
    );
    expect(facts.tablesRead).toEqual(['Public.Customers', 'orders']);
    expect(analyzeStatement('DROP TABLE U&"\\0063ustomers"').statements[0]?.objects).toEqual(['customers']);
    expect(analyzeStatement('DROP TABLE U&"!0063ustomers" UESCAPE \'!\'').statements[0]?.objects).toEqual([
      'customers',
    ]);
  });

  it('lists tables read and written, CTE names excluded, and columns where their table is plain', () => {
    const facts = analyzeStatement(
      'WITH recent AS (SELECT customer_id FROM orders WHERE amount > 5) ' +
        'UPDATE customers SET notes = email WHERE id IN (SELECT customer_id FROM recent)',
    );
    expect(facts.tablesRead).toEqual(['orders']);
    expect(facts.tablesWritten).toEqual(['customers']);
    const update = facts.statements.at(-1)!;
    expect(update.columnsWritten).toEqual(['customers.notes']);
    expect(update.columnsRead).toEqual(expect.arrayContaining(['orders.amount', 'customers.email']));
    expect(
      analyzeStatement('INSERT INTO orders (customer_id, amount) VALUES (1, 2)').statements[0]
        ?.columnsWritten,
    ).toEqual(['orders.customer_id', 'orders.amount']);
  });

  it('names functions without pg_catalog, and with any other schema', () => {
    const facts = analyzeStatement(
      'SELECT pg_catalog.lower(name), app.mask(ssn), "pg_read_file"(\'x\') FROM customers',
    );
    expect(facts.functions).toEqual(['lower', 'app.mask', 'pg_read_file']);
  });

  it('reports every statement of a text, nested ones before the statement holding them', () => {
    const facts = analyzeStatement(
      'SELECT 1; EXPLAIN (ANALYZE) WITH d AS (DELETE FROM orders WHERE id = 1 RETURNING *) SELECT * FROM d',
    );
    expect(facts.statementCount).toBe(2);
    expect(facts.statements.map((s) => [s.command, s.topLevel, s.via])).toEqual([
      ['SELECT', 0, []],
      ['DELETE', 1, ['EXPLAIN ANALYZE', 'SELECT']],
      ['SELECT', 1, ['EXPLAIN ANALYZE']],
      ['EXPLAIN ANALYZE', 1, []],
    ]);
  });

  it('analyses DO and PL/pgSQL function bodies, including EXECUTE of constant strings', () => {
    const facts = analyzeStatement(`CREATE FUNCTION f(n int) RETURNS void LANGUAGE plpgsql AS $f$
      DECLARE c CURSOR FOR SELECT ssn FROM customers; r record;
      BEGIN
        n := (SELECT count(*) FROM orders);
        IF pg_catalog.lower('x') = 'x' THEN DELETE FROM orders WHERE id = n; END IF;
        EXECUTE 'TRUNCATE customers';
        FOR r IN SELECT * FROM t LOOP PERFORM 1; END LOOP;
      END $f$`);
    expect(facts.statements.map((s) => `${s.via.join('>')}|${s.summary}`)).toEqual([
      'CREATE FUNCTION|SELECT',
      'CREATE FUNCTION|DELETE FROM orders',
      'CREATE FUNCTION>EXECUTE|TRUNCATE customers',
      'CREATE FUNCTION|SELECT',
      'CREATE FUNCTION|SELECT',
      '|CREATE FUNCTION f',
    ]);
    expect(facts.tablesRead).toEqual(expect.arrayContaining(['customers', 'orders', 't']));
    expect(facts.findings.map((f) => f.kind)).toEqual(['truncate']);
  });

  it('analyses SQL-language function bodies, quoted or BEGIN ATOMIC', () => {
    for (const sql of [
      "CREATE FUNCTION f() RETURNS void LANGUAGE sql AS 'DELETE FROM orders'",
      'CREATE FUNCTION f() RETURNS void LANGUAGE sql BEGIN ATOMIC DELETE FROM orders; END',
    ]) {
      expect(analyzeStatement(sql).findings.map((f) => f.kind)).toEqual(['delete-without-where']);
    }
  });

  it('treats code it cannot see into as dynamic SQL that needs admin', () => {
    for (const sql of [
      "DO $$BEGIN EXECUTE format('DELETE FROM %I', 'orders'); END$$",
      'DO $$BEGIN undeclared := 1; END$$',
      "CREATE FUNCTION f() RETURNS int LANGUAGE plpython3u AS 'return 1'",
      "SELECT query_to_xml(current_setting('x'), true, false, '')",
    ]) {
      const facts = analyzeStatement(sql);
      expect([sql, facts.findings.map((f) => f.kind)]).toEqual([
        sql,
        expect.arrayContaining(['dynamic-sql']),
      ]);
      expect(facts.classes).toContain('admin');
    }
  });

  it('gives text that does not parse one unknown statement needing every class', () => {
    const facts = analyzeStatement('DROP TABLE customers; SELEC 1');
    expect(facts.parsed).toBe(false);
    expect(facts.statements.map((s) => s.kind)).toEqual(['unknown']);
    expect(facts.findings.map((f) => f.kind)).toEqual(['unknown-statement']);
    expect(facts.classes).toEqual(['read', 'write', 'ddl', 'admin']);
  });

  it('treats an empty text as no statements', () => {
    const facts = analyzeStatement(' ;; -- nothing\n');
    expect(facts.parsed).toBe(true);
    expect(facts.statementCount).toBe(0);
    expect(facts.statements).toEqual([]);
    expect(facts.findings).toEqual([]);
  });

  it('caches by text and returns frozen facts', () => {
    const sql = 'SELECT id FROM orders WHERE id = 99';
    const first = analyzeStatement(sql);
    expect(analyzeStatement(sql)).toBe(first);
    expect(Object.isFrozen(first)).toBe(true);
    expect(Object.isFrozen(first.statements[0])).toBe(true);
  });

  it('keeps literal values out of every message', () => {
    const facts = analyzeStatement(
      "COPY customers TO PROGRAM 'curl secret-host'; SELECT set_config('role', 'topsecret', false), pg_read_file('/etc/shadow')",
    );
    const text = JSON.stringify(facts);
    for (const secret of ['secret-host', 'topsecret', '/etc/shadow']) expect(text).not.toContain(secret);
  });
});

describe('prepared statements and cursors', () => {
  it('reports the body of PREPARE, and remembers it by name for the session', () => {
    const facts = analyzeStatement('PREPARE wipe(int) AS DELETE FROM customers');
    expect(facts.findings.map((f) => f.kind)).toEqual(['delete-without-where']);
    expect(facts.prepared.map((p) => p.name)).toEqual(['wipe']);
    expect(facts.prepared[0]?.facts.findings.map((f) => f.kind)).toEqual(['delete-without-where']);
  });

  it('judges EXECUTE by a PREPARE of the same text, else leaves it unresolved and unknown', () => {
    const same = analyzeStatement('PREPARE p AS UPDATE orders SET amount = 0; EXECUTE p');
    expect(same.unresolvedExecutes).toEqual([]);
    expect(same.findings.filter((f) => f.kind === 'update-without-where')).toHaveLength(2);

    const alone = analyzeStatement('EXECUTE p');
    expect(alone.unresolvedExecutes).toEqual(['p']);
    expect(alone.findings.map((f) => f.kind)).toEqual(['unknown-statement']);
  });

  it('resolves EXECUTE against what the session stored', () => {
    const stored = analyzeStatement('PREPARE p AS DELETE FROM orders').prepared[0]!.facts;
    const resolved = resolveExecutes(analyzeStatement('EXPLAIN ANALYZE EXECUTE p'), (name) =>
      name === 'p' ? stored : undefined,
    );
    expect(resolved.unresolvedExecutes).toEqual([]);
    expect(resolved.findings.map((f) => f.kind)).toEqual(['delete-without-where']);
    expect(resolved.statements[resolved.findings[0]!.statement]?.via).toEqual(['EXPLAIN ANALYZE', 'EXECUTE']);
    expect(resolved.classes).toEqual(['read', 'write']);

    const unknown = resolveExecutes(analyzeStatement('EXECUTE q'), () => undefined);
    expect(unknown.unresolvedExecutes).toEqual(['q']);
    expect(unknown.findings.map((f) => f.kind)).toEqual(['unknown-statement']);
  });

  it('records DEALLOCATE and DISCARD ALL, and the query of each declared cursor', () => {
    expect(analyzeStatement('DEALLOCATE p; DEALLOCATE ALL').deallocated).toEqual(['p', '*']);
    const facts = analyzeStatement(
      'BEGIN; DECLARE cur CURSOR FOR SELECT email FROM customers; FETCH 1 FROM cur',
    );
    expect(facts.cursors).toHaveLength(1);
    const cursor = facts.cursors[0]!;
    expect(cursor.name).toBe('cur');
    expect(facts.statements[cursor.query]?.columnsRead).toEqual(['customers.email']);
  });
});
