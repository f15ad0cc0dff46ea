import { execFileSync } from 'node:child_process';
import { it, inject } from 'vitest';
import { freshDatabase } from '../e2e/support/clients.ts';
import { formatStageTable, measureStages } from './stages.ts';
import { MASKED_ROWS_SETUP } from './workloads.ts';

it('measures', async () => {
  const pg = inject('postgres');
  const admin = await freshDatabase(pg, 'bench_touched');
  const env = { ...process.env, PGHOST: pg.host, PGPORT: String(pg.port), PGUSER: pg.admin.user, PGPASSWORD: pg.admin.password, PGDATABASE: 'bench_touched' };
  execFileSync('/usr/lib/postgresql/15/bin/pgbench', ['-i', '-q', '-s', '1'], { env, stdio: 'ignore' });
  await admin.query(MASKED_ROWS_SETUP);
  await admin.end();
  const rows = await measureStages({ host: pg.host, port: pg.port, database: 'bench_touched', user: pg.admin.user, password: pg.admin.password }, 1, Number(process.env.SECS ?? 1));
  console.log(formatStageTable(rows.filter((r) => r.stage.startsWith('lineage') || r.stage.startsWith('analysis') || r.stage.startsWith('decision'))));
}, 600_000);
