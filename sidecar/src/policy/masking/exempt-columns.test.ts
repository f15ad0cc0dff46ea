import { beforeAll, describe, expect, it } from 'vitest';
import { createCatalog } from '../../sql/lineage/catalog.ts';
import { outputLineage } from '../../sql/lineage/output-lineage.ts';
import { loadSqlParser } from '../../sql/normalize.ts';
import type { MaskingSettings } from './masking-for.ts';
import { sensitiveColumns } from './sensitive-columns.ts';
import { planStatementMasking, type StatementMaskPlan } from './statement-mask-plan.ts';

const catalog = createCatalog({
  tables: [
    {
      schema: 'public',
      name: 'customers',
      columns: ['id', 'name', 'email', 'ssn', 'phone', 'notes'].map((name) => ({ name })),
    },
    { schema: 'public', name: 'orders', columns: ['id', 'customer_id', 'amount'].map((name) => ({ name })) },
    { schema: 'other', name: 'customers', columns: ['id', 'email'].map((name) => ({ name })) },
  ],
  views: [],
});

const settings = (exemptColumns: string[], overrides: Partial<MaskingSettings> = {}): MaskingSettings => ({
  autoDetect: true,
  rules: [],
  allowPredicatesOnMasked: false,
  policies: ['pii'],
  exemptions: exemptColumns.length > 0 ? [{ request: 'ar-1', columns: exemptColumns, until: Infinity }] : [],
  ...overrides,
});

const EMAIL = settings(['customers.email']);

function planOf(sql: string, s: MaskingSettings = EMAIL): StatementMaskPlan {
  const [statement] = outputLineage(sql, catalog).statements;
  return planStatementMasking(statement!, sensitiveColumns(catalog, s), s);
}

/** Per output column: `clear` for an exempt pass-through, the method, or `-` for clean. */
function shown(sql: string, s?: MaskingSettings): string[] {
  const plan = planOf(sql, s);
  if (plan.refusal) return ['refused'];
  const count = outputLineage(sql, catalog).statements[0]?.columns?.length ?? 0;
  return Array.from({ length: count }, (_, i) =>
    plan.exempt?.[i] !== undefined
      ? 'clear'
      : (plan.columns[i]?.method ?? (i >= plan.columns.length && plan.rest ? plan.rest.method : '-')),
  );
}

beforeAll(async () => {
  await loadSqlParser();
});

describe('exempt columns (approved access requests)', () => {
  it('shows an exempt column in clear where it passes through unchanged, and names the request', () => {
    expect(shown('SELECT id, email, ssn FROM customers')).toEqual(['-', 'clear', 'redact']);
    const plan = planOf('SELECT email FROM customers');
    expect(plan.exemptions).toEqual(['ar-1']);
    expect(plan.masked).toEqual([]);
  });

  it('changes nothing without an exemption', () => {
    expect(shown('SELECT email FROM customers', settings([]))).toEqual(['redact']);
    expect(planOf('SELECT email FROM customers', settings([]))?.exemptions).toBeUndefined();
  });

  it.each([
    'SELECT email FROM customers',
    'SELECT c.email AS contact FROM customers c',
    'SELECT x.e FROM (SELECT email AS e FROM customers) x',
    'WITH x AS (SELECT email FROM customers) SELECT email FROM x',
    'SELECT email FROM customers WHERE email LIKE $1',
    'SELECT email FROM customers ORDER BY email',
    'SELECT DISTINCT email FROM customers',
    'SELECT c.email FROM customers c JOIN orders o ON o.customer_id = c.id',
    'SELECT email FROM public.customers',
  ])('clear: %s', (sql) => {
    expect(shown(sql)).toEqual(['clear']);
  });

  it.each([
    'SELECT lower(email) FROM customers',
    'SELECT email || name FROM customers',
    "SELECT email || '' FROM customers",
    'SELECT email::varchar(3) FROM customers',
    'SELECT upper(email)::text AS email FROM customers',
    'SELECT coalesce(ssn, email) FROM customers',
    'SELECT coalesce(email, ssn) AS email FROM customers',
    'SELECT greatest(email, ssn) FROM customers',
    'SELECT CASE WHEN id > 0 THEN email ELSE ssn END FROM customers',
    'SELECT concat(email, phone) FROM customers',
    'SELECT email FROM customers UNION ALL SELECT ssn FROM customers',
    'SELECT ssn FROM customers UNION ALL SELECT email FROM customers',
    'SELECT ssn AS email FROM customers',
    'SELECT x.email FROM (SELECT ssn AS email FROM customers) x',
    'WITH c AS (SELECT ssn AS email FROM customers) SELECT email FROM c',
    'SELECT (SELECT ssn FROM customers LIMIT 1) AS email FROM customers',
    'SELECT row_to_json(c) FROM customers c',
    'SELECT c FROM customers c',
    'SELECT array_agg(email) FROM customers',
    'SELECT unnest(ARRAY[email, ssn]) FROM customers',
    'SELECT e FROM customers, LATERAL (VALUES (email), (ssn)) v(e)',
    'SELECT email FROM other.customers UNION ALL SELECT ssn FROM customers',
  ])('still masked or refused: %s', (sql) => {
    const [column] = shown(sql);
    expect(column).not.toBe('clear');
    expect(column).not.toBe('-');
  });

  it.each([
    "SELECT email FROM customers WHERE ssn LIKE '1%'",
    'SELECT email FROM customers ORDER BY ssn',
    'SELECT email FROM customers WHERE email = ssn',
    'SELECT a.email FROM customers a JOIN customers b ON a.email = b.ssn',
    'SELECT email FROM customers WHERE id IN (SELECT id FROM customers WHERE ssn = $1)',
    'SELECT email FROM customers UNION SELECT ssn FROM customers',
    'SELECT email FROM customers INTERSECT SELECT phone FROM customers',
    'SELECT email, count(*) FROM customers GROUP BY email, ssn',
    "SELECT email FROM customers WHERE CASE WHEN ssn LIKE '1%' THEN true END",
  ])('refused, a non-exempt column decides rows: %s', (sql) => {
    expect(planOf(sql).refusal).toBeDefined();
  });

  it.each([
    'UPDATE customers SET notes = email',
    'INSERT INTO orders (id, customer_id, amount) SELECT 1, 1, length(email) FROM customers',
    "UPDATE customers SET notes = email || '' WHERE id = 1",
  ])('writes still treat an exempt column as masked: %s', (sql) => {
    expect(planOf(sql).refusal).toMatch(/copy masked values/);
  });

  it('predicates over an exempt column are allowed for its identity only', () => {
    expect(planOf("SELECT id FROM customers WHERE email = 'a@b.c'").refusal).toBeUndefined();
    expect(planOf("SELECT id FROM customers WHERE email = 'a@b.c'", settings([])).refusal).toBeDefined();
  });

  it('matches exact names: schema-qualified requests clear only that schema', () => {
    const s = settings(['public.customers.email']);
    expect(shown('SELECT email FROM public.customers', s)).toEqual(['clear']);
    expect(shown('SELECT email FROM other.customers', s)).toEqual(['redact']);
    expect(shown('SELECT email FROM customers', settings(['customers.mail']))).toEqual(['redact']);
    expect(shown('SELECT email FROM customers', settings(['Customers.Email']))).toEqual(['redact']);
  });

  it('keeps a column masked by a rule in clear when exempt, but only passed through', () => {
    const s = settings(['customers.phone'], {
      rules: [{ source: 'pii/rules[0]', columns: ['customers.phone'], kinds: [], method: 'tokenize' }],
    });
    expect(shown('SELECT phone, lower(phone) FROM customers', s)).toEqual(['clear', 'tokenize']);
  });

  it('names the masked columns a refused statement needs, less exempt ones', () => {
    expect(planOf("SELECT email FROM customers WHERE ssn LIKE '1%' AND email = 'a'").needs).toEqual([
      'public.customers.ssn',
    ]);
    expect(planOf('SELECT email FROM customers UNION SELECT ssn FROM customers').needs).toEqual([
      'public.customers.ssn',
    ]);
    expect(planOf('UPDATE customers SET notes = ssn').needs).toBeUndefined();
  });
});
