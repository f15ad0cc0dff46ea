import { execSync } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startPostgres } from '../../harness/postgres.ts';
import { generateTls } from '../../harness/tls.ts';
import { startGuardedGatehouse } from '../gatehouse.ts';
import { initPgbench } from '../pgbench.ts';

const dir = await mkdtemp(join(tmpdir(), 'memprobe-'));
const server = await startPostgres({ tls: await generateTls(join(dir, 'tls')) });
await initPgbench(server.info, 1);
const target = await startGuardedGatehouse(server.info, dir);
const status = () =>
  execSync(`grep -E 'VmRSS|RssAnon' /proc/${target.pid}/status`).toString().replace(/\s+/g, ' ');
console.log('idle', status());
await new Promise((r) => setTimeout(r, 2000));
console.log('idle+2s', status());
const client = new pg.Client({
  host: target.host,
  port: target.port,
  user: target.login.user,
  password: target.login.password,
  database: server.info.database,
});
await client.connect();
console.log('connected', status());
await client.query('SELECT abalance FROM pgbench_accounts WHERE aid = 1');
console.log('1 select', status());
await client.query('SELECT id, email, ssn, city FROM bench_people WHERE id <= 100');
console.log('masked select', status());
await client.query('UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = 3');
console.log('update', status());
for (let i = 0; i < 200; i++) await client.query(`SELECT abalance FROM pgbench_accounts WHERE aid = ${i}`);
console.log('200 selects', status());
await client.end();
await target.stop();
await server.stop();
