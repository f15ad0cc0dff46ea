/**
 * What analysing MySQL text costs: `node --liftoff-only sidecar/src/sql/mysql/analyze-mysql.bench.ts`.
 * "miss" changes a literal every call so that the text is new (lex + parse + rules); "hit" repeats a text.
 */
import { analyzeMysql } from './analyze-mysql.ts';
import { normalizeMysql } from './normalize-mysql.ts';
import { loadMysqlParser } from './parser.ts';
import { DEFAULT_SQL_MODE } from './sql-mode.ts';

await loadMysqlParser();

const ROUNDS = 20_000;
let literal = 1_000_000;
const WIDE_COLUMNS = Array.from({ length: 40 }, (_, i) => `c.col_${i}`).join(', ');

const MISSES: Record<string, () => string> = {
  'sysbench point select': () => `SELECT c FROM sbtest1 WHERE id=${literal++}`,
  'sysbench update': () => `UPDATE sbtest1 SET k=k+1 WHERE id=${literal++}`,
  'join + IN subquery': () =>
    `SELECT c.id, c.email, o.amount FROM customers c JOIN orders o ON o.customer_id = c.id WHERE o.amount > ${literal++} AND c.id IN (SELECT customer_id FROM orders WHERE amount < 5) ORDER BY o.amount DESC LIMIT 10`,
  'multi-table DELETE + tautology check': () =>
    `DELETE o FROM orders o JOIN customers c ON c.id = o.customer_id WHERE c.notes = 'x${literal++}' OR 1 = 0`,
  'executable comments + stacked': () =>
    `/*!40101 SET NAMES utf8mb4 */; SELECT /*!50000 SQL_NO_CACHE */ id FROM t WHERE id = ${literal++}`,
  'wide select (40 columns, 2 joins)': () =>
    `SELECT ${WIDE_COLUMNS}, IFNULL(c.notes, 'none') AS notes FROM customers c LEFT JOIN orders o ON o.customer_id = c.id WHERE c.id = ${literal++} AND o.amount BETWEEN 1 AND 1000 AND c.email LIKE '%@example.com' ORDER BY c.id`,
};

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function measure(name: string, next: () => string, run: (sql: string) => unknown): void {
  for (let i = 0; i < 2_000; i++) run(next());
  const times: number[] = [];
  let bytes = 0;
  for (let i = 0; i < ROUNDS; i++) {
    const sql = next();
    bytes = Buffer.byteLength(sql);
    const started = process.hrtime.bigint();
    run(sql);
    times.push(Number(process.hrtime.bigint() - started) / 1_000);
  }
  times.sort((a, b) => a - b);
  console.log(
    `${name.padEnd(38)} ${String(bytes).padStart(5)} B  p50 ${percentile(times, 50).toFixed(1).padStart(6)} µs  p99 ${percentile(times, 99).toFixed(1).padStart(6)} µs`,
  );
}

if (!process.execArgv.includes('--liftoff-only'))
  console.log('(run with node --liftoff-only, as Gatehouse does)');
const analyse = (sql: string) => analyzeMysql(sql, { sqlMode: DEFAULT_SQL_MODE });
console.log('analyzeMysql, misses (new text every call):');
for (const [name, next] of Object.entries(MISSES)) measure(name, next, analyse);
console.log('normalizeMysql, misses:');
for (const [name, next] of Object.entries(MISSES))
  measure(name, next, (sql) => normalizeMysql(sql, DEFAULT_SQL_MODE));

console.log('analyzeMysql, hits (same text):');
for (const [name, next] of Object.entries(MISSES)) {
  const text = next();
  measure(name, () => text, analyse);
}
