import { beforeAll, describe, expect, it } from 'vitest';
import { API_VERSION } from '../../../../crds/common.ts';
import { ApprovalBook } from '../../approvals/approval-book.ts';
import { ShapeRegistry } from '../../approvals/learned-shapes.ts';
import { createCatalog } from '../../sql/lineage/catalog.ts';
import { loadMysqlParser } from '../../sql/mysql/parser.ts';
import { loadPolicyDocuments } from '../load-policy.ts';
import { createMysqlGate } from './mysql-gate.ts';

const identity = { subject: 'local:demo', groups: [], method: 'local' as const };
const gate = (sqlMode: string | null = '') =>
  createMysqlGate({ policy: () => undefined, identity, database: 'app', sqlMode, code: () => undefined });

beforeAll(async () => {
  await loadMysqlParser();
});

describe('MysqlGate.localInfiles', () => {
  it.each([
    ["LOAD DATA LOCAL INFILE '/tmp/a.csv' INTO TABLE t", ['/tmp/a.csv']],
    ["load data low_priority local infile 'x\\'y.csv' into table t", ["x'y.csv"]],
    ["/*!LOAD DATA LOCAL INFILE 'c.csv' INTO TABLE t */", ['c.csv']],
    ["LOAD DATA INFILE '/srv/a.csv' INTO TABLE t", []],
    ["SELECT 'LOAD DATA LOCAL INFILE x'", []],
    [
      "LOAD XML LOCAL INFILE 'a.xml' INTO TABLE t; LOAD DATA LOCAL INFILE 'b.csv' INTO TABLE u",
      ['a.xml', 'b.csv'],
    ],
  ])('%s names %j', (sql, files) => {
    expect(gate().localInfiles(sql)).toEqual(files);
  });

  it('allows no upload when the sql_mode cannot be told, or the text cannot be read', () => {
    expect(gate(null).localInfiles("LOAD DATA LOCAL INFILE 'a' INTO TABLE t")).toEqual([]);
    expect(gate().localInfiles("LOAD DATA LOCAL INFILE 'unterminated")).toEqual([]);
  });

  it('reads the file name as the server does under NO_BACKSLASH_ESCAPES', () => {
    expect(
      gate('NO_BACKSLASH_ESCAPES').localInfiles("LOAD DATA LOCAL INFILE 'C:\\new.csv' INTO TABLE t"),
    ).toEqual(['C:\\new.csv']);
  });
});

describe('MysqlGate with an unknown-shape rule', () => {
  it('refuses a shape nobody approved, learns it, and runs the texts of its shape once approved', () => {
    const shapes = new ShapeRegistry(new ApprovalBook());
    const policy = loadPolicyDocuments(
      [
        {
          apiVersion: API_VERSION,
          kind: 'Guardrail',
          metadata: { name: 'agents' },
          spec: {
            rules: [
              {
                name: 'closed-world',
                kinds: ['unknown-shape'],
                action: 'block',
                approval: { approvers: [{ kind: 'Group', name: 'approvers' }] },
              },
            ],
          },
        },
        {
          apiVersion: API_VERSION,
          kind: 'DatabaseAccess',
          metadata: { name: 'app' },
          spec: {
            subjects: [{ kind: 'User', name: 'local:demo' }],
            allow: ['read', 'write'],
            guardrails: ['agents'],
          },
        },
      ],
      'test',
    );
    const mysql = createMysqlGate({
      policy: () => policy,
      identity,
      database: 'app',
      sqlMode: '',
      // A catalog with no triggers or views: without one, every table may run unseen code.
      code: () => ({ routine: () => 'builtin', operator: () => [], onWrite: () => [], onRead: () => [] }),
      hooks: { shapes },
    });
    const moment = { idle: true, outdated: false, refreshed: true };
    const check = (sql: string) => mysql.check(sql, undefined, moment).outcome;
    expect(check('SELECT id FROM orders WHERE id = 1')).toBe('refuse');
    expect(shapes.list().map((s) => s.shape)).toEqual(['SELECT id FROM orders WHERE id = ?']);
    shapes.approve(
      { subject: 'local:lead', groups: ['approvers'], method: 'local' },
      { subject: 'local:demo', forSeconds: 60, reason: 'seen' },
    );
    expect(check('SELECT id FROM orders WHERE id = 42 /* again */')).toBe('allow');
    for (const other of [
      'SELECT id FROM secret.orders WHERE id = 1',
      'SELECT id FROM Orders WHERE id = 1',
      'SELECT id FROM orders WHERE id = 1 OR 1 = 1',
      'SELECT id FROM orders WHERE id = 1; DELETE FROM orders',
    ])
      expect(check(other), other).toBe('refuse');
  });
});

describe('MysqlGate records the source columns an identity that sees clear values read', () => {
  const policy = loadPolicyDocuments(
    [
      {
        apiVersion: API_VERSION,
        kind: 'DatabaseAccess',
        metadata: { name: 'app' },
        spec: { subjects: [{ kind: 'User', name: 'local:demo' }], allow: ['read', 'write'] },
      },
    ],
    'test',
  );
  const catalog = createCatalog({
    tables: [{ schema: 'app', name: 'customers', columns: ['id', 'plan', 'ssn'].map((name) => ({ name })) }],
    searchPath: ['app'],
  });
  const check = (columnLineage: boolean, sql: string) =>
    createMysqlGate({
      policy: () => policy,
      identity,
      database: 'app',
      sqlMode: '',
      code: () => ({ routine: () => 'builtin', operator: () => [], onWrite: () => [], onRead: () => [] }),
      catalog: () => catalog,
      columnLineage,
    }).check(sql, undefined, { idle: true, outdated: false, refreshed: false });

  it('with audit.columnLineage, by its source column or as unknown; without it, tables only', () => {
    const on = check(true, 'SELECT s FROM (SELECT ssn AS s FROM customers) q');
    expect(on.outcome === 'allow' && on.touched).toEqual([
      { tablesRead: ['customers'], columns: { 'app.customers.ssn': 'clear' } },
    ]);
    // A relation the catalog does not hold: which columns, unknown.
    const unknown = check(true, 'SELECT * FROM customer_view');
    expect(unknown.outcome === 'allow' && unknown.touched?.[0]?.columns).toEqual({
      'app.customer_view.*': 'unknown',
    });
    // Texts of one shape share one trace (per session).
    const gate = createMysqlGate({
      policy: () => policy,
      identity,
      database: 'app',
      sqlMode: '',
      code: () => ({ routine: () => 'builtin', operator: () => [], onWrite: () => [], onRead: () => [] }),
      catalog: () => catalog,
      columnLineage: true,
    });
    const idle = { idle: true, outdated: false, refreshed: false };
    const [a, b] = [1, 2].map((id) =>
      gate.check(`SELECT ssn FROM customers WHERE id = ${id}`, undefined, idle),
    );
    expect(a!.outcome === 'allow' && a!.touched?.[0]).toEqual({
      tablesRead: ['customers'],
      columns: { 'app.customers.ssn': 'clear' },
    });
    expect(a!.outcome === 'allow' && b!.outcome === 'allow' && a!.touched?.[0] === b!.touched?.[0]).toBe(
      true,
    );
    const off = check(false, 'SELECT ssn FROM customers');
    expect(off.outcome === 'allow' && off.touched).toEqual([{ tablesRead: ['customers'] }]);
  });
});
