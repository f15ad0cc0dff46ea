/**
 * What describing a statement costs: `node sidecar/src/sql/normalize.bench.ts`.
 * "miss" sends a new literal every call, as pgbench does; "hit" repeats one text.
 */
import { describeQuery, describeStatement, loadSqlParser } from './normalize.ts';

await loadSqlParser();

const ROUNDS = 50_000;
let literal = 1_000_000;

// libpg-query's WebAssembly runs slowly until V8 has tiered it up, which takes some 50k calls.
for (let i = 0; i < 100_000; i++) describeQuery(`SELECT * FROM warm WHERE up = ${i}`);

function measure(name: string, call: () => unknown): void {
  for (let i = 0; i < 2_000; i++) call();
  const started = process.hrtime.bigint();
  for (let i = 0; i < ROUNDS; i++) call();
  const micros = Number(process.hrtime.bigint() - started) / 1_000 / ROUNDS;
  console.log(`${name.padEnd(48)} ${micros.toFixed(2).padStart(7)} µs/call`);
}

measure('select, new literal (miss, normalized text known)', () =>
  describeQuery(`SELECT abalance FROM pgbench_accounts WHERE aid = ${literal++};`),
);
measure('update, new literal (miss, normalized text known)', () =>
  describeQuery(`UPDATE pgbench_accounts SET abalance = abalance + ${literal++} WHERE aid = 7;`),
);
measure('select, new column each call (full miss)', () =>
  describeQuery(`SELECT c${literal++} FROM pgbench_accounts WHERE aid = 5`),
);
measure('same text (hit)', () => describeQuery('SELECT abalance FROM pgbench_accounts WHERE aid = 12345;'));
measure('extended Parse text (hit)', () => describeStatement('SELECT abalance FROM t WHERE aid = $1'));
measure('three statements, new literals (miss)', () =>
  describeQuery(
    `BEGIN; UPDATE pgbench_tellers SET tbalance = tbalance + ${literal++} WHERE tid = 3; COMMIT;`,
  ),
);
measure('DDL with literals left by normalize (full miss)', () =>
  describeQuery(`CREATE TABLE t${literal++} (a text DEFAULT 'x', b int CHECK (b > 5))`),
);
