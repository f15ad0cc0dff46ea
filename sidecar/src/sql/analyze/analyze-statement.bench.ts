/**
 * What analysing a statement costs: `node --liftoff-only sidecar/src/sql/analyze/analyze-statement.bench.ts`.
 * "miss" changes a literal every call so that the text is new (parse + walk); "hit" repeats a text.
 */
import { loadSqlParser } from '../normalize.ts';
import { analyzeStatement } from './analyze-statement.ts';

await loadSqlParser();

const ROUNDS = 20_000;
let literal = 1_000_000;

const WIDE_COLUMNS = Array.from({ length: 40 }, (_, i) => `c.col_${i}`).join(', ');

const MISSES: Record<string, () => string> = {
  'pgbench select': () => `SELECT abalance FROM pgbench_accounts WHERE aid = ${literal++}`,
  'pgbench update': () => `UPDATE pgbench_accounts SET abalance = abalance + ${literal++} WHERE aid = 7`,
  'join + IN subquery': () =>
    `SELECT c.id, c.email, o.amount FROM customers c JOIN orders o ON o.customer_id = c.id WHERE o.amount > ${literal++} AND c.id IN (SELECT customer_id FROM orders WHERE amount < 5) ORDER BY o.amount DESC LIMIT 10`,
  'CTE with DELETE + tautology check': () =>
    `WITH gone AS (DELETE FROM orders o WHERE EXISTS (SELECT 1 FROM customers c WHERE c.id = o.customer_id AND c.notes = 'x${literal++}') RETURNING *) SELECT count(*) FROM gone`,
  'DO block (PL/pgSQL)': () =>
    `DO $$DECLARE n int := ${literal++}; BEGIN IF n > 0 THEN UPDATE orders SET amount = amount + 1 WHERE id = n; END IF; END$$`,
  'wide select (40 columns, 2 joins)': () =>
    `SELECT ${WIDE_COLUMNS}, coalesce(c.notes, 'none') AS notes FROM customers c LEFT JOIN orders o ON o.customer_id = c.id WHERE c.id = ${literal++} AND o.amount BETWEEN 1 AND 1000 AND c.email LIKE '%@example.com' ORDER BY c.id`,
};

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function measure(name: string, next: () => string): void {
  for (let i = 0; i < 2_000; i++) analyzeStatement(next());
  const times: number[] = [];
  let bytes = 0;
  for (let i = 0; i < ROUNDS; i++) {
    const sql = next();
    bytes = Buffer.byteLength(sql);
    const started = process.hrtime.bigint();
    analyzeStatement(sql);
    times.push(Number(process.hrtime.bigint() - started) / 1_000);
  }
  times.sort((a, b) => a - b);
  const mean = times.reduce((a, b) => a + b, 0) / times.length;
  console.log(
    `${name.padEnd(36)} ${String(bytes).padStart(5)} B  mean ${mean.toFixed(1).padStart(6)} µs  p50 ${percentile(times, 50).toFixed(1).padStart(6)} µs  p99 ${percentile(times, 99).toFixed(1).padStart(6)} µs`,
  );
}

if (!process.execArgv.includes('--liftoff-only'))
  console.log('(run with node --liftoff-only, as Gatehouse does)');
console.log('misses (new text every call):');
for (const [name, next] of Object.entries(MISSES)) measure(name, next);

const repeated = MISSES['join + IN subquery']!();
analyzeStatement(repeated);
const started = process.hrtime.bigint();
for (let i = 0; i < 1_000_000; i++) analyzeStatement(repeated);
console.log(
  `hit (same text)                      mean ${(Number(process.hrtime.bigint() - started) / 1e3 / 1e6).toFixed(3)} µs`,
);
