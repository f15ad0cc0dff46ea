import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { type MariaDbInfo, type MariaDbServer, startMariaDb } from './mariadb.ts';
import { type PostgresInfo, type PostgresServer, startPostgres } from './postgres.ts';
import { generateTls, type TlsFiles } from './tls.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    postgres: PostgresInfo;
    mariadb: MariaDbInfo;
    /** The CA (with its key, to issue more certificates) and the server certificate both servers use. */
    tls: TlsFiles;
  }
}

/** Starts one PostgreSQL and one MariaDB for the whole run; tests reach them with inject('postgres') and inject('mariadb'). */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const started = performance.now();
  const tlsDir = await mkdtemp(join(tmpdir(), 'gatehouse-tls-'));
  const tls = await generateTls(tlsDir);
  const [postgres, mariadb] = await Promise.allSettled([startPostgres({ tls }), startMariaDb({ tls })]);
  const teardown = () => stopAll(tlsDir, [postgres, mariadb]);
  if (postgres.status === 'rejected' || mariadb.status === 'rejected') {
    await teardown();
    const reasons = [postgres, mariadb]
      .filter((result) => result.status === 'rejected')
      .map((result) => result.reason);
    throw reasons.length === 1
      ? reasons[0]
      : new AggregateError(reasons, 'PostgreSQL and MariaDB both failed to start');
  }
  project.provide('postgres', postgres.value.info);
  project.provide('mariadb', mariadb.value.info);
  project.provide('tls', tls);
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  process.stderr.write(
    `test harness: PostgreSQL on port ${postgres.value.info.port} and MariaDB on port ${mariadb.value.info.port} ready in ${seconds} s\n`,
  );
  return teardown;
}

async function stopAll(
  tlsDir: string,
  servers: Array<PromiseSettledResult<PostgresServer | MariaDbServer>>,
): Promise<void> {
  const stops = servers.flatMap((result) => (result.status === 'fulfilled' ? [result.value.stop()] : []));
  const results = await Promise.allSettled(stops);
  await rm(tlsDir, { recursive: true, force: true });
  const failures = results.filter((result) => result.status === 'rejected').map((result) => result.reason);
  if (failures.length > 0) throw new AggregateError(failures, 'stopping the test servers failed');
}
