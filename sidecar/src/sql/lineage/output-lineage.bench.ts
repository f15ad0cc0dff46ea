/**
 * What tracing lineage costs: `node --liftoff-only sidecar/src/sql/lineage/output-lineage.bench.ts`.
 * "miss" sends a new literal every call, so neither the result nor the parse tree is cached; the
 * parse alone is measured too, since a miss pays for it whatever lineage does.
 */
import { parseSync } from 'libpg-query';
import { loadSqlParser } from '../normalize.ts';
import { createCatalog } from './catalog.ts';
import { outputLineage } from './output-lineage.ts';
import { applySessionEffects, EMPTY_SESSION } from './session.ts';

await loadSqlParser();

const catalog = createCatalog({
  tables: [
    {
      schema: 'public',
      name: 'customers',
      columns: ['id', 'name', 'email', 'ssn', 'phone', 'card', 'notes'].map((name) => ({ name })),
    },
    {
      schema: 'public',
      name: 'orders',
      columns: ['id', 'customer_id', 'amount', 'shipped_to'].map((name) => ({ name })),
    },
    {
      schema: 'public',
      name: 'pgbench_accounts',
      columns: ['aid', 'bid', 'abalance', 'filler'].map((name) => ({ name })),
    },
  ],
  views: [
    {
      schema: 'public',
      name: 'customer_contacts',
      columns: ['id', 'contact', 'who'],
      definition: 'SELECT id, email AS contact, upper(name) AS who FROM customers WHERE ssn IS NOT NULL',
    },
  ],
});

const ROUNDS = 20_000;
let literal = 1_000_000;

// libpg-query's WebAssembly runs slowly until V8 has warmed it up.
for (let i = 0; i < 50_000; i++) outputLineage(`SELECT * FROM warm WHERE up = ${i}`, catalog);

function measure(name: string, call: () => unknown): void {
  for (let i = 0; i < 2_000; i++) call();
  const started = process.hrtime.bigint();
  for (let i = 0; i < ROUNDS; i++) call();
  const micros = Number(process.hrtime.bigint() - started) / 1_000 / ROUNDS;
  console.log(`${name.padEnd(56)} ${micros.toFixed(2).padStart(7)} µs/call`);
}

const TYPICAL: readonly [string, (n: number) => string][] = [
  ['pgbench select', (n) => `SELECT abalance FROM pgbench_accounts WHERE aid = ${n}`],
  ['select * by key', (n) => `SELECT * FROM customers WHERE id = ${n}`],
  [
    'join, order, limit (ORM style)',
    (n) =>
      `SELECT c.id, c.name, c.email, o.amount FROM customers c JOIN orders o ON o.customer_id = c.id WHERE c.id = ${n} ORDER BY o.id LIMIT 10`,
  ],
  ['view', (n) => `SELECT contact, who FROM customer_contacts WHERE id = ${n}`],
  [
    'CTE, aggregate, window',
    (n) =>
      `WITH t AS (SELECT customer_id, sum(amount) AS total FROM orders WHERE amount > ${n} GROUP BY customer_id) SELECT c.name, t.total, rank() OVER (ORDER BY t.total DESC) FROM t JOIN customers c ON c.id = t.customer_id`,
  ],
  ['update returning', (n) => `UPDATE customers SET notes = 'x' WHERE id = ${n} RETURNING id, email`],
  ['whole row to JSON', (n) => `SELECT row_to_json(c) FROM customers c WHERE id = ${n}`],
];

for (const [name, text] of TYPICAL) {
  measure(`${name}: parse only (new literal)`, () => parseSync(text(literal++)));
  measure(`${name}: lineage miss (new literal)`, () => outputLineage(text(literal++), catalog));
  const same = text(42);
  measure(`${name}: lineage hit (same text)`, () => outputLineage(same, catalog));
}

const withPath = applySessionEffects(EMPTY_SESSION, [{ kind: 'search-path', path: ['app', 'public'] }]);
measure('select * by key, session with its own search_path (hit)', () =>
  outputLineage('SELECT * FROM customers WHERE id = 7', catalog, { session: withPath }),
);
const withView = applySessionEffects(EMPTY_SESSION, [
  {
    kind: 'view',
    view: { schema: 'pg_temp', name: 'v', definition: 'SELECT email AS contact FROM customers' },
  },
]);
measure('select * by key, session with a temp view (never cached)', () =>
  outputLineage('SELECT * FROM customers WHERE id = 7', catalog, { session: withView }),
);
