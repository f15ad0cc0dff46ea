import { beforeAll, describe, expect, it } from 'vitest';
import { createCatalog } from '../../sql/lineage/catalog.ts';
import { outputLineage } from '../../sql/lineage/output-lineage.ts';
import { loadSqlParser } from '../../sql/normalize.ts';
import { statementShape } from '../../sql/statement-shape.ts';
import type { MaskingSettings } from './masking-for.ts';
import { sensitiveColumns } from './sensitive-columns.ts';
import { planStatementMasking } from './statement-mask-plan.ts';

const catalog = createCatalog({
  tables: [
    {
      schema: 'public',
      name: 'customers',
      columns: ['id', 'name', 'email', 'ssn', 'phone', 'card', 'notes'].map((name) => ({ name })),
    },
    { schema: 'public', name: 'orders', columns: ['id', 'customer_id', 'amount'].map((name) => ({ name })) },
    { schema: 'public', name: 'accounts', columns: ['id', 'contact'].map((name) => ({ name })) },
    {
      schema: 'pg_catalog',
      name: 'pg_stats',
      columns: ['tablename', 'attname', 'most_common_vals'].map((name) => ({ name })),
    },
    {
      schema: 'pg_catalog',
      name: 'pg_stat_activity',
      columns: ['pid', 'usename', 'state', 'query'].map((name) => ({ name })),
    },
    {
      schema: 'pg_catalog',
      name: 'pg_authid',
      columns: ['rolname', 'rolpassword'].map((name) => ({ name })),
    },
    {
      schema: 'information_schema',
      name: 'columns',
      columns: ['table_name', 'column_name', 'column_default'].map((name) => ({ name })),
    },
  ],
  views: [
    {
      schema: 'public',
      name: 'contacts',
      columns: ['who'],
      definition: 'SELECT email AS who FROM customers',
    },
  ],
});

const settings = (overrides: Partial<MaskingSettings> = {}): MaskingSettings => ({
  autoDetect: true,
  rules: [],
  allowPredicatesOnMasked: false,
  policies: ['pii'],
  exemptions: [],
  ...overrides,
});

const AUTO = settings();
/** contact holds emails, which only value sampling can tell. */
const SAMPLES = new Map([['public\u0000accounts\u0000contact', 'email' as const]]);

function plan(sql: string, s: MaskingSettings = AUTO) {
  const lineage = outputLineage(sql, catalog);
  const sensitivity = sensitiveColumns(catalog, s, SAMPLES);
  return lineage.statements.map((statement) => planStatementMasking(statement, sensitivity, s));
}

/** Per output column: the method, `-` for clean. */
function methods(sql: string, s?: MaskingSettings): string[] {
  const [first] = plan(sql, s);
  if (first?.refusal) return [`refused: ${first.refusal}`];
  const count = outputLineage(sql, catalog).statements[0]?.columns?.length ?? 0;
  return Array.from({ length: count }, (_, i) => first?.columns[i]?.method ?? '-');
}

beforeAll(async () => {
  await loadSqlParser();
});

describe('planStatementMasking', () => {
  it.each([
    ['SELECT id, email, notes FROM customers', ['-', 'redact', '-']],
    ['SELECT email AS e, ssn AS s FROM customers', ['redact', 'redact']],
    ['SELECT e FROM customers AS c(i, n, e)', ['redact']],
    ['SELECT lower(email) FROM customers', ['redact']],
    ['SELECT id, notes FROM customers UNION ALL SELECT id, ssn FROM customers', ['-', 'redact']],
    ['SELECT who FROM contacts', ['redact']],
    ['SELECT contact FROM accounts', ['redact']],
    ['SELECT row_to_json(c) FROM customers c', ['redact']],
    ['SELECT count(*) FROM customers', ['-']],
    ['SELECT amount FROM orders', ['-']],
    ['SELECT most_common_vals FROM pg_stats', ['redact']],
    ['SELECT attname FROM pg_stats', ['-']],
    // Other sessions' statement texts and credentials are data; names and defaults are metadata.
    ['SELECT pid, usename, state, query FROM pg_stat_activity', ['-', '-', '-', 'redact']],
    ['SELECT rolname, rolpassword FROM pg_authid', ['-', 'redact']],
    ['SELECT table_name, column_name, column_default FROM information_schema.columns', ['-', '-', '-']],
  ])('%s → %j', (sql, expected) => {
    expect(methods(sql)).toEqual(expected);
  });

  it('keeps a rule’s method for passed-through values and its kind for partial masks', () => {
    const s = settings({
      rules: [{ source: 'pii/rules[0]', columns: ['customers.card'], kinds: [], method: 'partial' }],
    });
    const [p] = plan('SELECT card FROM customers', s);
    expect(p?.columns[0]).toMatchObject({ method: 'partial', kind: 'card' });
    // Derived from the column, the value no longer has the layout partial assumes: redact instead.
    expect(methods("SELECT card || '' FROM customers", s)).toEqual(['redact']);
  });

  it('keeps keyed methods for derived values, so joins on tokens still work', () => {
    const s = settings({ rules: [{ source: 'r', columns: [], kinds: ['email'], method: 'tokenize' }] });
    expect(methods('SELECT email, lower(email) FROM customers', s)).toEqual(['tokenize', 'tokenize']);
  });

  it('masks nothing when autoDetect is off and no rule matches', () => {
    expect(methods('SELECT email FROM customers', settings({ autoDetect: false }))).toEqual(['-']);
  });

  it.each([
    ["SELECT id FROM customers WHERE ssn LIKE '1%'", /filters.*public\.customers\.ssn/],
    ['SELECT id FROM customers ORDER BY email', /public\.customers\.email/],
    ['SELECT o.id FROM orders o JOIN customers c ON c.phone = o.id::text', /public\.customers\.phone/],
    ['UPDATE customers SET notes = ssn WHERE id = 1', /copy masked values into public\.customers\.notes/],
    [
      "SELECT set_config('application_name', email, false) FROM customers",
      /pass masked values to set_config/,
    ],
    ['COPY customers TO STDOUT (FORMAT csv)', /COPY would send/],
    ['COPY customers TO STDOUT CSV', /COPY would send/],
    ['COPY customers TO STDOUT BINARY', /COPY would send/],
    ["COPY customers TO STDOUT (DELIMITER ',')", /COPY would send/],
    ["COPY customers TO STDOUT WITH NULL AS 'x'", /COPY would send/],
    ['COPY customers (id, email) TO STDOUT (HEADER)', /COPY would send/],
    ['COPY (SELECT * FROM customers c CROSS JOIN unknown_table u) TO STDOUT', /COPY would send/],
    ['CREATE TABLE t AS SELECT email AS x FROM customers', /copy masked values into public\.t\.x/],
  ])('refuses %s', (sql, reason) => {
    expect(plan(sql)[0]?.refusal).toMatch(reason);
  });

  it('masks COPY TO STDOUT in the plain text format like a SELECT of the same columns', () => {
    const typed = createCatalog({
      tables: [
        {
          schema: 'public',
          name: 'customers',
          columns: [
            { name: 'id', typeOid: 23 },
            { name: 'email', typeOid: 25 },
            { name: 'ssn', typeOid: 1043 },
          ],
        },
      ],
    });
    const planOf = (sql: string) => {
      const [lineage] = outputLineage(sql, typed).statements;
      return planStatementMasking(lineage!, sensitiveColumns(typed, AUTO, new Map()), AUTO);
    };
    for (const sql of [
      'COPY public.customers (id, email, ssn) TO stdout;',
      'COPY customers TO STDOUT',
      'COPY customers TO STDOUT (FORMAT text)',
    ]) {
      const copy = planOf(sql);
      expect(copy.refusal).toBeUndefined();
      expect(copy.columns.map((c) => c?.method ?? '-')).toEqual(['-', 'redact', 'redact']);
      expect(copy.copyTypes).toEqual([23, 25, 1043]);
    }
    expect(planOf('COPY customers (ssn, id) TO STDOUT').copyTypes).toEqual([1043, 23]);
    // A query's column types are not in the catalog: masked cells of unknown type become NULL.
    expect(planOf('COPY (SELECT email, id FROM customers) TO STDOUT').copyTypes).toEqual([
      undefined,
      undefined,
    ]);
    expect(planOf('SELECT email FROM customers').copyTypes).toBeUndefined();
  });

  it('allows predicates over masked columns when the policy says so, and same-method copies', () => {
    expect(
      plan("SELECT id FROM customers WHERE ssn LIKE '1%'", settings({ allowPredicatesOnMasked: true }))[0]
        ?.refusal,
    ).toBeUndefined();
    expect(plan('UPDATE customers SET email = lower(email) WHERE id = 1')[0]?.refusal).toBeUndefined();
    expect(plan('COPY (SELECT id, notes FROM customers) TO STDOUT')[0]?.refusal).toBeUndefined();
  });

  it('masks untraceable columns of statements that read sensitive tables, not of others', () => {
    expect(methods('SELECT u.v, c.id FROM customers c CROSS JOIN unknown_table u')).toEqual(['redact', '-']);
    // Unknown functions may store their arguments anywhere: masked values must not reach them.
    expect(methods('SELECT mystery(email) FROM customers')).toEqual([
      'refused: it would pass masked values to mystery()',
    ]);
    // An unknown function may read any table, so what it returns is masked wherever masking applies.
    expect(methods('SELECT mystery(amount) FROM orders')).toEqual(['redact']);
    expect(methods('SELECT abs(amount) FROM orders')).toEqual(['-']);
    expect(plan('SELECT * FROM unknown_table')[0]?.rest).toMatchObject({ method: 'redact' });
  });

  it('shares lineage between texts of one shape only where no literal changes it', () => {
    const refusal = (sql: string) => {
      const [statement] = outputLineage(sql, catalog, { shape: statementShape(sql)! }).statements;
      return planStatementMasking(statement!, sensitiveColumns(catalog, AUTO, SAMPLES), AUTO).refusal;
    };
    // ORDER BY 2 names id, ORDER BY 1 names email: the same shape, different predicates.
    expect(statementShape('SELECT email, id FROM customers ORDER BY 2')).toBe(
      statementShape('SELECT email, id FROM customers ORDER BY 1'),
    );
    expect(refusal('SELECT email, id FROM customers ORDER BY 2')).toBeUndefined();
    expect(refusal('SELECT email, id FROM customers ORDER BY 1')).toMatch(/public\.customers\.email/);
    expect(refusal('SELECT id FROM customers GROUP BY id, 1 HAVING count(*) > 0')).toBeUndefined();
    // A plain select by key is shared: the second text is answered from the first one's result.
    const first = outputLineage('SELECT email FROM customers WHERE id = 1', catalog, {
      shape: statementShape('SELECT email FROM customers WHERE id = 1')!,
    });
    const second = outputLineage('SELECT email FROM customers WHERE id = 2', catalog, {
      shape: statementShape('SELECT email FROM customers WHERE id = 2')!,
    });
    expect(second).toBe(first);
  });

  it('lists masked columns with their reasons', () => {
    expect(plan('SELECT email AS e, id FROM customers')[0]?.masked).toEqual([
      'e <- public.customers.email (email by name): redact',
    ]);
  });
});
