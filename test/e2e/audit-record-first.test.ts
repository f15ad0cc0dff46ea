import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, inject, it } from 'vitest';
import { canMount, fillDisk, withSmallDisk } from '../../sidecar/src/audit/testing.ts';
import { directClient, localProxyConfig, pgClient } from './support/clients.ts';
import { directMysql, mysqlClient, mysqlProxyConfig } from './support/mysql.ts';
import { comQuery, RawMysqlClient } from './support/mysql-raw-client.ts';
import { MAIN, startProxyProcess } from './support/proxy-process.ts';

/**
 * No statement runs without its record: with the audit log on a small tmpfs that fills up, the
 * first statement whose record cannot be written is refused, nothing that reached the database lacks
 * its `statement.start` record (checked against the database's own rows), the loss is written into
 * the log, and statements run again within a second of space returning.
 */

const run = promisify(execFile);
const pgInfo = inject('postgres');
const mariadb = inject('mariadb');

/** One protocol's way of inserting a row through the proxy and of reading what the database holds. */
interface Driver {
  readonly table: string;
  /** Inserts id through the proxy (text or prepared by the parity of id); the error code when refused. */
  insert(id: number): Promise<string | undefined>;
  /** The ids the database holds, read directly. */
  rows(): Promise<number[]>;
  close(): Promise<void>;
}

/** What the test saw of one run, for checks shared by both protocols. */
async function fillAndFree(
  driver: Driver,
  auditFile: string,
  disk: string,
  refusedCode: string,
): Promise<void> {
  let id = 0;
  for (; id < 3; id++) expect(await driver.insert(id)).toBeUndefined();
  const filler = join(disk, 'filler');
  fillDisk(filler);

  const succeeded = [0, 1, 2];
  let refusedAt: number | undefined;
  for (; id < 2000 && refusedAt === undefined; id++) {
    const code = await driver.insert(id);
    if (code === undefined) succeeded.push(id);
    else {
      expect(code).toBe(refusedCode);
      refusedAt = id;
    }
  }
  expect(refusedAt).toBeDefined();
  // Refused from that statement on, in both of the protocol's ways of sending one, until the log has
  // written its loss down (which it may do at once when the loss record fits where the failed write did not).
  for (let more = 0; more < 2; more++, id++) {
    const code = await driver.insert(id);
    if (code === undefined) succeeded.push(id);
    else expect(code).toBe(refusedCode);
  }
  expect(await driver.rows()).toEqual(succeeded);

  await unlink(filler);
  const freed = performance.now();
  let resumedAfterMs: number | undefined;
  while (resumedAfterMs === undefined && performance.now() - freed < 5000) {
    const code = await driver.insert(id);
    if (code === undefined) {
      succeeded.push(id);
      resumedAfterMs = performance.now() - freed;
    } else await new Promise((resolve) => setTimeout(resolve, 20));
    id++;
  }
  expect(resumedAfterMs).toBeLessThan(1000);
  expect(await driver.insert(id)).toBeUndefined();
  succeeded.push(id);

  // The database holds exactly the rows of the statements that succeeded, and every statement that
  // reached it has its record: as many statement.start records for the table as rows.
  const rows = await driver.rows();
  expect(rows).toEqual(succeeded);
  const records = readFileSync(auditFile, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  const starts = records.filter(
    (r) => r['type'] === 'statement.start' && String(r['statement']).includes(driver.table),
  );
  expect(starts).toHaveLength(rows.length);
  // Every loss is written down (more than one note when the disk fills again right after a repair).
  const loss = records.filter((r) => r['type'] === 'audit.loss');
  expect(loss.length).toBeGreaterThanOrEqual(1);
  const lost = (type: string) =>
    loss.reduce((sum, r) => sum + ((r['byType'] as Record<string, number>)[type] ?? 0), 0);
  // Which records the failed write held depends on timing (a statement's start, or an earlier outcome
  // record, after which statements are refused before their start is written): some were lost, counted.
  expect(loss.reduce((sum, r) => sum + (r['lost'] as number), 0)).toBeGreaterThanOrEqual(1);
  expect(lost('statement.start') + lost('statement')).toBeGreaterThanOrEqual(1);
  for (const note of loss) expect(String(note['reason'])).toMatch(/ENOSPC/);
}

describe.skipIf(!canMount)('the audit disk fills up (tmpfs, as root)', () => {
  it('PostgreSQL: refuses from the first statement whose record is lost, and resumes within a second', async () => {
    await withSmallDisk('256k', async (disk) => {
      const auditFile = join(disk, 'audit.jsonl');
      const direct = await directClient(pgInfo);
      const table = 'gh_audit_disk_full';
      await direct.query(`DROP TABLE IF EXISTS ${table}; CREATE TABLE ${table} (id int PRIMARY KEY)`);
      await direct.query(`GRANT ALL ON ${table} TO PUBLIC`);
      const proxy = await startProxyProcess(
        localProxyConfig(pgInfo, {
          audit: { file: auditFile, stdout: false, checkpointEveryRecords: 100_000 },
        }),
      );
      const client = await pgClient(proxy.port);
      client.on('error', () => {});
      const driver: Driver = {
        table,
        async insert(id) {
          try {
            if (id % 2 === 0) await client.query(`INSERT INTO ${table} VALUES (${id})`);
            else await client.query(`INSERT INTO ${table} VALUES ($1)`, [id]);
            return undefined;
          } catch (error) {
            return (error as { code?: string }).code ?? String(error);
          }
        },
        async rows() {
          const result = await direct.query<{ id: number }>(`SELECT id FROM ${table} ORDER BY id`);
          return result.rows.map((row) => row.id);
        },
        async close() {
          await client.end();
          await direct.query(`DROP TABLE ${table}`);
          await direct.end();
        },
      };
      try {
        await fillAndFree(driver, auditFile, disk, '58030');
      } finally {
        await driver.close();
        expect(await proxy.stop()).toBe(0);
      }
      const verified = await run(process.execPath, [MAIN, 'audit', 'verify', auditFile]);
      expect(verified.stdout).toMatch(/^ok.*sealed.*records lost \(recorded by audit\.loss\)/);
    });
  }, 60_000);

  it('MySQL: refuses from the first statement whose record is lost, and resumes within a second', async () => {
    await withSmallDisk('256k', async (disk) => {
      const auditFile = join(disk, 'audit.jsonl');
      const direct = await directMysql(mariadb);
      const table = 'gh_audit_disk_full';
      await direct.query(
        `DROP TABLE IF EXISTS ${table}; CREATE TABLE ${table} (id int PRIMARY KEY) ENGINE=InnoDB`,
      );
      const proxy = await startProxyProcess(
        mysqlProxyConfig(mariadb, {
          audit: { file: auditFile, stdout: false, checkpointEveryRecords: 100_000 },
        }),
      );
      const client = await mysqlClient(proxy.port, { database: mariadb.database });
      const driver: Driver = {
        table,
        async insert(id) {
          try {
            if (id % 2 === 0) await client.query(`INSERT INTO ${table} VALUES (${id})`);
            else await client.execute(`INSERT INTO ${table} VALUES (?)`, [id]);
            return undefined;
          } catch (error) {
            return String((error as { errno?: number }).errno ?? error);
          }
        },
        async rows() {
          const [rows] = await direct.query(`SELECT id FROM ${table} ORDER BY id`);
          return (rows as { id: number }[]).map((row) => row.id);
        },
        async close() {
          await client.end();
          await direct.query(`DROP TABLE ${table}`);
          await direct.end();
        },
      };
      try {
        await fillAndFree(driver, auditFile, disk, '1026');
      } finally {
        await driver.close();
        expect(await proxy.stop()).toBe(0);
      }
      const verified = await run(process.execPath, [MAIN, 'audit', 'verify', auditFile]);
      expect(verified.stdout).toMatch(/^ok.*sealed.*records lost \(recorded by audit\.loss\)/);
    });
  }, 60_000);
});

/** Polls `rows` until it returns something, for up to two seconds. */
async function eventually<T>(rows: () => Promise<T[]>): Promise<T[]> {
  for (let i = 0; i < 100; i++) {
    const found = await rows();
    if (found.length > 0) return found;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return [];
}

describe('a statement held for its record', () => {
  it('PostgreSQL: still runs when the client hangs up right after sending it', async () => {
    const direct = await directClient(pgInfo);
    const table = 'gh_audit_hangup';
    await direct.query(`DROP TABLE IF EXISTS ${table}; CREATE TABLE ${table} (id int PRIMARY KEY)`);
    await direct.query(`GRANT ALL ON ${table} TO PUBLIC`);
    const proxy = await startProxyProcess(localProxyConfig(pgInfo));
    try {
      const client = await pgClient(proxy.port);
      client.on('error', () => {});
      // node-postgres sends Query, then Terminate and FIN at once, without waiting for the answer.
      void client.query(`INSERT INTO ${table} VALUES (1)`).catch(() => undefined);
      await client.end();
      const rows = await eventually(async () => (await direct.query(`SELECT id FROM ${table}`)).rows);
      expect(rows).toEqual([{ id: 1 }]);
    } finally {
      await proxy.stop();
      await direct.query(`DROP TABLE ${table}`);
      await direct.end();
    }
  });

  it('MySQL: still runs when the client hangs up right after sending it', async () => {
    const direct = await directMysql(mariadb);
    const table = 'gh_audit_hangup';
    await direct.query(
      `DROP TABLE IF EXISTS ${table}; CREATE TABLE ${table} (id int PRIMARY KEY) ENGINE=InnoDB`,
    );
    const proxy = await startProxyProcess(mysqlProxyConfig(mariadb));
    try {
      const raw = await RawMysqlClient.login(proxy.port, 'demo', 'demo-secret');
      raw.socket.write(comQuery(`INSERT INTO ${table} VALUES (1)`));
      raw.close();
      const rows = await eventually(
        async () => (await direct.query(`SELECT id FROM ${table}`))[0] as unknown[],
      );
      expect(rows).toEqual([{ id: 1 }]);
    } finally {
      await proxy.stop();
      await direct.query(`DROP TABLE ${table}`);
      await direct.end();
    }
  });
});
