import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { localUser, policyDocument } from '../support/policy-documents.ts';
import { directMysql, mysqlClient, mysqlProxyConfig } from './support/mysql.ts';
import { type ProxyProcess, startProxyProcess } from './support/proxy-process.ts';

/**
 * MySQL's side of data touched: a statement record names the tables its statement read or wrote, and
 * every record of a session carries the purpose and run id its connection attributes declared.
 */

const server = inject('mariadb');
const DATABASE = 'touched_my';
let proxy: ProxyProcess;

beforeAll(async () => {
  const admin = await directMysql(server);
  await admin.query(`DROP DATABASE IF EXISTS ${DATABASE}; CREATE DATABASE ${DATABASE}; USE ${DATABASE};
    CREATE TABLE customers(id int, plan text, ssn text);
    CREATE TABLE visits(id int);
    INSERT INTO customers VALUES (1, 'gold', '123-45-6789');`);
  await admin.query(`GRANT ALL PRIVILEGES ON ${DATABASE}.* TO '${server.users.native.user}'@'%'`);
  await admin.end();
  const config = mysqlProxyConfig(server);
  (config['upstream'] as Record<string, unknown>)['database'] = DATABASE;
  proxy = await startProxyProcess(config, {
    extraDocuments: [
      policyDocument('MaskingPolicy', 'ssn', { rules: [{ columns: ['customers.ssn'], method: 'redact' }] }),
      policyDocument('DatabaseAccess', 'demo', {
        subjects: [localUser('demo')],
        allow: ['read', 'write'],
        maskingPolicies: ['ssn'],
      }),
    ],
  });
}, 60_000);

afterAll(async () => {
  await proxy?.stop();
});

function statementRecords(): Record<string, unknown>[] {
  return readFileSync(proxy.auditFile!, 'utf8')
    .trimEnd()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .filter((r) => r.type === 'statement');
}

describe('MySQL data touched', () => {
  it('names the tables and carries the declared purpose and run id', async () => {
    const client = await mysqlClient(proxy.port, {
      database: DATABASE,
      connectAttributes: { 'gatehouse.purpose': 'train\nchurn', 'gatehouse.run_id': 'run-9' },
    });
    const [rows] = await client.query('SELECT plan, ssn FROM customers');
    expect(JSON.stringify(rows)).not.toContain('123-45-6789');
    await client.query('INSERT INTO visits SELECT id FROM customers');
    await client.end();
    let records: Record<string, unknown>[] = [];
    for (let i = 0; i < 100 && records.length < 2; i++) {
      records = statementRecords().filter((r) => r.purpose !== undefined);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const of = (prefix: string) => records.find((r) => String(r.statement).startsWith(prefix));
    expect(of('SELECT plan')).toMatchObject({
      purpose: 'trainchurn',
      runId: 'run-9',
      tablesRead: [expect.stringMatching(/customers$/)],
    });
    expect(of('INSERT INTO visits')).toMatchObject({
      tablesRead: [expect.stringMatching(/customers$/)],
      tablesWritten: [expect.stringMatching(/visits$/)],
    });
  });
});
