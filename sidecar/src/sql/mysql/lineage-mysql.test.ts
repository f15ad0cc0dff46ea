import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { createCatalog } from '../lineage/catalog.ts';
import type { ColumnLineage, StatementLineage } from '../lineage/types.ts';
import { analyzeMysql } from './analyze-mysql.ts';
import { mysqlOutputLineage } from './lineage-mysql.ts';
import { loadMysqlParser } from './parser.ts';
import { applyMysqlSessionEffects } from './session.ts';
import { initialMysqlSession, type MysqlSessionState } from './session-state.ts';
import { DEFAULT_SQL_MODE } from './sql-mode.ts';

beforeAll(async () => {
  await loadMysqlParser();
});

/** The red-team schema (schema-mysql.sql), with a view over it. */
const CATALOG = createCatalog({
  searchPath: ['rt'],
  tables: [
    {
      schema: 'rt',
      name: 'customers',
      columns: ['id', 'name', 'email', 'ssn', 'phone', 'card', 'notes'].map((name) => ({ name })),
    },
    {
      schema: 'rt',
      name: 'orders',
      columns: ['id', 'customer_id', 'amount', 'shipped_to'].map((name) => ({ name })),
    },
  ],
  views: [
    {
      schema: 'rt',
      name: 'contacts',
      definition: 'select `c`.`id` AS `id`,`c`.`email` AS `mail` from `rt`.`customers` `c`',
    },
  ],
});
const PII = new Set(['name', 'email', 'ssn', 'phone', 'card']);

/** What a masker does with lineage: PII sources, or untraceable values of a statement reading PII. */
function sensitive(statement: StatementLineage, column: ColumnLineage): boolean {
  const readsPii = statement.readsUnknown || statement.reads.some((r) => r.table === 'customers');
  return (
    column.sources.some((s) => s.table === 'customers' && PII.has(s.column)) || (column.opaque && readsPii)
  );
}

function sensitiveColumns(sql: string, session = initialMysqlSession(DEFAULT_SQL_MODE)): string[][] {
  const result = mysqlOutputLineage(sql, CATALOG, session);
  expect(result.parseError).toBe(false);
  return result.statements.map((s) => (s.columns ?? []).filter((c) => sensitive(s, c)).map((c) => c.name));
}

/** Runs texts in order on one session; returns the sensitive output columns of the last. */
function afterSession(texts: readonly string[]): string[][] {
  let session: MysqlSessionState = initialMysqlSession(DEFAULT_SQL_MODE);
  for (const sql of texts.slice(0, -1)) {
    const facts = analyzeMysql(sql, { sqlMode: session.sqlMode });
    session = applyMysqlSessionEffects(session, facts, mysqlOutputLineage(sql, CATALOG, session));
  }
  return sensitiveColumns(texts[texts.length - 1]!, session);
}

interface RedTeamCase {
  readonly id: string;
  readonly sql: string;
  readonly expect: 'block' | 'mask' | 'allow';
}

const REDTEAM: readonly RedTeamCase[] = readFileSync(
  new URL('../../policy/guardrails/testdata/redteam-mysql.jsonl', import.meta.url),
  'utf8',
)
  .split('\n')
  .filter((line) => line.trim() !== '')
  .map((line) => JSON.parse(line) as RedTeamCase);

describe('MySQL red-team masking cases', () => {
  it.each(REDTEAM.filter((c) => c.expect === 'mask'))('$id: lineage marks PII outputs', ({ sql }) => {
    expect(sensitiveColumns(sql).flat().length).toBeGreaterThan(0);
  });

  it.each(
    REDTEAM.filter((c) => c.expect === 'allow' && !c.sql.startsWith('DELETE') && !c.sql.startsWith('UPDATE')),
  )('$id: no PII output', ({ sql }) => {
    expect(sensitiveColumns(sql).flat()).toEqual([]);
  });

  const evasions = readFileSync(
    new URL('../../../../test/fixtures/mysql-evasion-cases.jsonl', import.meta.url),
    'utf8',
  )
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as RedTeamCase);
  it.each(evasions.filter((c) => c.expect === 'mask'))(
    '$id (parser-choice fixture): lineage marks PII outputs',
    ({ sql }) => {
      expect(sensitiveColumns(sql).flat().length).toBeGreaterThan(0);
    },
  );

  it('marks exactly the PII columns of SELECT *', () => {
    expect(sensitiveColumns('SELECT * FROM customers')).toEqual([['name', 'email', 'ssn', 'phone', 'card']]);
  });
});

/** [class, sql, sensitive output columns per statement]: our own cases by the README's classes 10–13. */
const CASES: readonly [string, string, string[][]][] = [
  // 10. names instead of lineage
  ['10 alias', 'SELECT email AS notes, notes AS email FROM customers', [['notes']]],
  ['10 alias', 'SELECT c.ssn AS x FROM customers AS c', [['x']]],
  ['10 alias', 'SELECT t.a FROM (SELECT phone AS a FROM customers) AS t', [['a']]],
  ['10 alias', 'SELECT a FROM (SELECT card FROM customers) t (a)', [['a']]],
  ['10 union', 'SELECT notes FROM customers UNION ALL SELECT ssn FROM customers', [['notes']]],
  ['10 union', 'SELECT shipped_to FROM orders UNION SELECT email FROM customers', [['shipped_to']]],
  ['10 cte', 'WITH x AS (SELECT name n FROM customers) SELECT n FROM x', [['n']]],
  [
    '10 cte',
    'WITH RECURSIVE r (v) AS (SELECT email FROM customers UNION SELECT v FROM r) SELECT v FROM r',
    [['v']],
  ],
  ['10 view', 'SELECT mail FROM contacts', [['mail']]],
  ['10 view', 'SELECT * FROM rt.contacts', [['mail']]],
  ['10 subquery', 'SELECT (SELECT ssn FROM customers LIMIT 1) AS s', [['s']]],
  [
    '10 subquery',
    'SELECT o.id, (SELECT c.phone FROM customers c WHERE c.id = o.customer_id) p FROM orders o',
    [['p']],
  ],
  [
    '10 star',
    'SELECT o.*, c.* FROM orders o JOIN customers c ON c.id = o.customer_id',
    [['name', 'email', 'ssn', 'phone', 'card']],
  ],
  ['10 star', 'SELECT c.* FROM customers c', [['name', 'email', 'ssn', 'phone', 'card']]],
  [
    '10 unknown',
    'SELECT * FROM customers JOIN mystery',
    [['name', 'email', 'ssn', 'phone', 'card', '?column?']],
  ],
  ['10 unknown', 'SELECT secret FROM mystery', [['secret']]],
  // 11. expressions and encodings
  ['11 expression', 'SELECT CONCAT(name, " ", phone) AS x FROM customers', [['x']]],
  [
    '11 expression',
    'SELECT HEX(ssn), TO_BASE64(card), MD5(email) FROM customers',
    [['?column?', '?column?', '?column?']],
  ],
  [
    '11 expression',
    'SELECT SUBSTRING(card, 1, 4) AS bin, LEFT(ssn, 3) FROM customers',
    [['bin', '?column?']],
  ],
  ['11 expression', 'SELECT MAX(email), MIN(ssn) FROM customers GROUP BY id', [['?column?', '?column?']]],
  ['11 expression', 'SELECT LAG(phone) OVER (ORDER BY id) FROM customers', [['?column?']]],
  ['11 expression', 'SELECT CASE WHEN id = 1 THEN ssn ELSE notes END AS z FROM customers', [['z']]],
  ['11 expression', 'SELECT my_udf(notes) FROM customers', [['?column?']]],
  ['11 counts', 'SELECT COUNT(ssn), id FROM customers GROUP BY id', [[]]],
  // 12. whole rows and JSON
  ['12 json', 'SELECT JSON_ARRAYAGG(JSON_OBJECT("e", email)) FROM customers', [['?column?']]],
  ['12 json', 'SELECT JSON_EXTRACT(JSON_OBJECT("s", ssn), "$.s") AS s FROM customers', [['s']]],
  ['12 json', 'SELECT ROW(id, name) = ROW(1, "x") AS m FROM customers', [['m']]],
  [
    '12 json',
    "SELECT j.v FROM customers, JSON_TABLE(CONCAT('[\"', email, '\"]'), '$[*]' COLUMNS (v TEXT PATH '$')) j",
    [['v']],
  ],
  // 13. side channels through output
  ['13 oracle', "SELECT ssn LIKE '1%' AS hit FROM customers", [['hit']]],
  ['13 oracle', 'SELECT id FROM customers WHERE ssn = "123"', [[]]],
  // returning paths
  [
    'returning',
    'DELETE FROM customers WHERE id = 1 RETURNING *',
    [['name', 'email', 'ssn', 'phone', 'card']],
  ],
  ['returning', 'INSERT INTO customers (id) VALUES (9) RETURNING email', [['email']]],
  ['multi', 'SELECT id FROM orders; SELECT card FROM customers', [[], ['card']]],
  ['table statement', 'TABLE customers', [['name', 'email', 'ssn', 'phone', 'card']]],
  [
    'table statement',
    'SELECT 1 a, 2 b, 3 c, 4 d, 5 e, 6 f, 7 g UNION TABLE customers',
    [['b', 'c', 'd', 'e', 'f']],
  ],
  ['multi', 'SELECT email FROM customers; SELECT 1', [['email'], []]],
  ['executable comment', 'SELECT id /*!, ssn */ FROM customers', [['ssn']]],
  ['conditional comment', 'SELECT /*!99999 ssn, */ notes FROM customers', [['ssn']]],
  ['conditional comment', 'SELECT notes /*M!, phone */ FROM customers', [['phone']]],
  // Functions of the session depend on no column; LAST_INSERT_ID() returns what LAST_INSERT_ID(x) stored.
  [
    'session',
    'SELECT CONNECTION_ID() a, FOUND_ROWS() b, ROW_COUNT() c, SCHEMA() d, DATABASE() e, VERSION() f, 7 g, ssn FROM customers',
    [['ssn']],
  ],
  ['session', 'SELECT LAST_INSERT_ID() AS id FROM customers', [['id']]],
  // MariaDB's SET STATEMENT ... FOR: the statement's own columns.
  ['set statement', 'SET STATEMENT max_statement_time=1 FOR SELECT id, ssn FROM customers', [['ssn']]],
  // A variable no statement of the session set: a trigger or routine may have.
  ['variable', 'SELECT @set_elsewhere AS v', [['v']]],
  // Both readings have the same columns: each column is traced to both.
  ['conditional comment', 'SELECT /*!40001 SQL_NO_CACHE */ id, email FROM customers', [['email']]],
  ['conditional comment', 'SELECT /*!99999 ssn AS */ notes FROM customers', [['notes']]],
  ['conditional comment', 'SELECT id, /*!99999 ssn, */ notes FROM customers', [['ssn']]],
];

describe('mysqlOutputLineage', () => {
  it.each(CASES)('%s: %s', (_class, sql, expected) => {
    expect(sensitiveColumns(sql)).toEqual(expected);
  });

  it('reads conditional comments both ways: the columns may be either reading', () => {
    const lineage = mysqlOutputLineage(
      'SELECT /*!99999 id, */ notes FROM customers',
      CATALOG,
      initialMysqlSession(DEFAULT_SQL_MODE),
    );
    expect(lineage.statements[0]!.exact).toBe(false);
    // mariadb-dump's SELECT reads the same columns either way: told apart, so only email is masked.
    const dump = mysqlOutputLineage(
      'SELECT /*!40001 SQL_NO_CACHE */ `id`, `email` FROM `customers`',
      CATALOG,
      initialMysqlSession(DEFAULT_SQL_MODE),
    );
    expect(dump.statements[0]!.exact).toBe(true);
    expect(dump.statements[0]!.columns!.map((c) => c.sources.map((s) => s.column))).toEqual([
      ['id'],
      ['email'],
    ]);
  });

  it('keeps predicates apart from outputs', () => {
    const lineage = mysqlOutputLineage(
      'SELECT id FROM customers WHERE ssn LIKE "1%" ORDER BY email',
      CATALOG,
      initialMysqlSession(DEFAULT_SQL_MODE),
    );
    const columns = lineage.statements[0]!.predicates.sources.map((s) => s.column).sort();
    expect(columns).toEqual(['email', 'ssn']);
  });

  it('records writes of UPDATE and INSERT ... SELECT', () => {
    const update = mysqlOutputLineage(
      'UPDATE customers SET notes = ssn WHERE id = 1',
      CATALOG,
      initialMysqlSession(DEFAULT_SQL_MODE),
    );
    expect(
      update.statements[0]!.writes.map((w) => [
        w.target.kind === 'column' && w.target.column.column,
        w.sources.map((s) => s.column),
      ]),
    ).toEqual([['notes', ['ssn']]]);
    const insert = mysqlOutputLineage(
      'INSERT INTO orders (shipped_to) SELECT email FROM customers',
      CATALOG,
      initialMysqlSession(DEFAULT_SQL_MODE),
    );
    expect(insert.statements[0]!.writes[0]!.sources.map((s) => s.column)).toEqual(['email']);
  });

  it('records what SET stores in system variables as writes (session functions read them back)', () => {
    const set = mysqlOutputLineage(
      "SET SESSION timestamp = (SELECT LENGTH(card) FROM customers LIMIT 1), @@session.pseudo_thread_id = 7, sql_mode = 'ANSI', autocommit = ON, @v = 1",
      CATALOG,
      initialMysqlSession(DEFAULT_SQL_MODE),
    );
    const statement = set.statements[0]!;
    expect(
      statement.writes.map((w) => [
        w.target.kind === 'function' && w.target.name,
        w.sources.map((s) => s.column),
        w.opaque,
      ]),
    ).toEqual([
      ['@@timestamp', ['card'], false],
      ['@@pseudo_thread_id', [], false],
      ['@@sql_mode', [], false],
      ['@@autocommit', [], true],
    ]);
    expect(statement.userVariables.map((v) => v.name)).toEqual(['v']);
    const scoped = mysqlOutputLineage(
      'SET STATEMENT timestamp = (SELECT LENGTH(card) FROM customers LIMIT 1) FOR SELECT NOW() AS t',
      CATALOG,
      initialMysqlSession(DEFAULT_SQL_MODE),
    ).statements[0]!;
    expect(
      scoped.writes.map((w) => [
        w.target.kind === 'function' && w.target.name,
        w.sources.map((s) => s.column),
      ]),
    ).toEqual([['@@timestamp', ['card']]]);
    expect(scoped.columns?.map((c) => c.name)).toEqual(['t']);
  });

  it('refuses text that cannot be read', () => {
    expect(mysqlOutputLineage("SELECT 'x", CATALOG, initialMysqlSession(DEFAULT_SQL_MODE)).parseError).toBe(
      true,
    );
    expect(
      mysqlOutputLineage('SELECT FROM WHERE', CATALOG, initialMysqlSession(DEFAULT_SQL_MODE)).parseError,
    ).toBe(true);
  });
});

describe('user variables and handlers across the session', () => {
  it.each([
    [['SET @v = (SELECT ssn FROM customers LIMIT 1)', 'SELECT @v AS harmless'], [['harmless']]],
    [['SELECT @e := email FROM customers', 'SELECT UPPER(@e)'], [['?column?']]],
    [['SELECT ssn INTO @s FROM customers LIMIT 1', 'SELECT CONCAT("x", @s) AS y'], [['y']]],
    [['SELECT card, phone INTO @a, @b FROM customers LIMIT 1', 'SELECT @b'], [['@b']]],
    [['SET @v = (SELECT email FROM customers LIMIT 1); SELECT @v'], [[], ['@v']]],
    [['SET @n = 1', 'SELECT @n'], [[]]],
    [['DO @d := (SELECT card FROM customers LIMIT 1)', 'SELECT @d'], [['@d']]],
    [['SHOW FULL PROCESSLIST'], [['?column?']]],
    [['HANDLER customers OPEN AS h', 'HANDLER h READ FIRST'], [['name', 'email', 'ssn', 'phone', 'card']]],
    [['HANDLER mystery OPEN', 'HANDLER mystery READ NEXT'], [['?column?']]],
    [["PREPARE p FROM 'SELECT phone FROM customers'", 'EXECUTE p'], [['phone']]],
    [['EXECUTE unseen'], [['?column?']]],
    [['CALL report()'], [['?column?']]],
  ] as const)('%j', (texts, expected) => {
    expect(afterSession(texts)).toEqual(expected);
  });

  it('resolves unqualified tables in the database USE chose', () => {
    const twoDatabases = createCatalog({
      searchPath: ['rt'],
      tables: [
        { schema: 'rt', name: 'people', columns: [{ name: 'nickname' }] },
        { schema: 'hr', name: 'people', columns: [{ name: 'ssn' }] },
      ],
    });
    const sources = (sql: string, session: MysqlSessionState) =>
      mysqlOutputLineage(sql, twoDatabases, session).statements.map((s) =>
        (s.columns ?? []).flatMap((c) => c.sources.map((x) => `${x.schema}.${x.table}.${x.column}`)),
      );
    let session = initialMysqlSession(DEFAULT_SQL_MODE);
    expect(sources('SELECT * FROM people', session)).toEqual([['rt.people.nickname']]);
    expect(sources('USE hr; SELECT * FROM people', session)).toEqual([[], ['hr.people.ssn']]);
    session = applyMysqlSessionEffects(session, analyzeMysql('USE hr', { sqlMode: DEFAULT_SQL_MODE }));
    expect(session.database).toBe('hr');
    expect(sources('SELECT * FROM people', session)).toEqual([['hr.people.ssn']]);
  });

  it('a variable assigned without lineage is untraceable wherever it is read', () => {
    let session = initialMysqlSession(DEFAULT_SQL_MODE);
    session = applyMysqlSessionEffects(
      session,
      analyzeMysql('SET @v = (SELECT ssn FROM customers)', { sqlMode: DEFAULT_SQL_MODE }),
    );
    const lineage = mysqlOutputLineage('SELECT @v', CATALOG, session);
    expect(lineage.statements[0]!.readsUnknown).toBe(true);
    expect(lineage.statements[0]!.columns![0]!.opaque).toBe(true);
  });
});

describe('writes carry what they copy, in every INSERT form', () => {
  /** The writes of a text whose value carries PII (a customers source, or untraceable in a PII read). */
  function piiWrites(sql: string): string[] {
    const result = mysqlOutputLineage(sql, CATALOG, initialMysqlSession(DEFAULT_SQL_MODE));
    expect(result.parseError, sql).toBe(false);
    return result.statements.flatMap((s) =>
      s.writes
        .filter((w) => w.target.kind === 'column' && sensitive(s, { name: '', ...w }))
        .map((w) => (w.target.kind === 'column' ? `${w.target.column.table}.${w.target.column.column}` : '')),
    );
  }

  const VALUES_OF = [
    '(SELECT email FROM customers WHERE id = 1)',
    "(SELECT CONCAT_WS('-', c.ssn, c.name) FROM customers AS c LIMIT 1)",
    "CONCAT('a@b.', (SELECT ssn FROM customers LIMIT 1))",
    '(SELECT MAX(card) FROM customers)',
    'LOWER((SELECT `phone` FROM rt.customers ORDER BY id LIMIT 1))',
  ];
  const FORMS: readonly ((value: string) => [sql: string, target: string])[] = [
    (v) => [`INSERT INTO orders (id, shipped_to) VALUES (1, ${v})`, 'orders.shipped_to'],
    (v) => [`INSERT INTO orders (id, shipped_to) VALUES (1, 'x'), (2, ${v})`, 'orders.shipped_to'],
    (v) => [`INSERT INTO orders VALUES (1, 2, 3, ${v})`, 'orders.shipped_to'],
    (v) => [`INSERT INTO orders (id, shipped_to) VALUES ROW(1, ${v})`, 'orders.shipped_to'],
    (v) => [`INSERT INTO orders SET id = 1, shipped_to = ${v}`, 'orders.shipped_to'],
    (v) => [`REPLACE INTO orders SET id = 1, shipped_to = ${v}`, 'orders.shipped_to'],
    (v) => [`REPLACE INTO orders (id, shipped_to) VALUES (1, ${v})`, 'orders.shipped_to'],
    (v) => [
      `INSERT INTO orders (id, shipped_to) VALUES (1, 'x') ON DUPLICATE KEY UPDATE shipped_to = ${v}`,
      'orders.shipped_to',
    ],
    (v) => [`INSERT INTO fresh (a) VALUES (${v})`, 'fresh.a'],
    (v) => [`INSERT INTO fresh VALUES (${v})`, 'fresh.*'],
    (v) => [`INSERT INTO orders (id, not_in_catalog) VALUES (1, ${v})`, 'orders.not_in_catalog'],
  ];

  for (const form of FORMS)
    for (const value of VALUES_OF) {
      const [sql, target] = form(value);
      it(`${sql} writes PII into ${target}`, () => {
        expect(piiWrites(sql)).toContain(target);
      });
    }

  it('ON DUPLICATE KEY UPDATE sees the row and VALUES(): a column copied into another carries its own data', () => {
    expect(
      piiWrites(
        "INSERT INTO customers (id, email) VALUES (1, 'x@y.z') ON DUPLICATE KEY UPDATE notes = CONCAT('a@b.', VALUES(ssn))",
      ),
    ).toContain('customers.notes');
    expect(piiWrites('INSERT INTO customers (id) VALUES (1) ON DUPLICATE KEY UPDATE notes = name')).toContain(
      'customers.notes',
    );
  });

  it('leaves clean values clean', () => {
    expect(piiWrites("INSERT INTO orders (id, shipped_to) VALUES (1, 'x'), (2, CONCAT('a', 'b'))")).toEqual(
      [],
    );
    expect(piiWrites("INSERT INTO orders SET id = 1, shipped_to = 'x'")).toEqual([]);
  });

  it('traces a VALUES statement of its own', () => {
    expect(sensitiveColumns('VALUES ROW((SELECT ssn FROM customers LIMIT 1), 1)')).toEqual([['column_0']]);
  });
});
