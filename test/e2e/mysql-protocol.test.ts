import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { API_VERSION } from '../../crds/common.ts';
import { mysql as mysqlCli } from '../harness/mysql-cli.ts';
import { localUser, policyDocument } from '../support/policy-documents.ts';
import { directMysql, mysqlClient, mysqlProxyConfig } from './support/mysql.ts';
import { type ProxyProcess, startProxyProcess } from './support/proxy-process.ts';

const server = inject('mariadb');
const tls = inject('tls');
let proxy: ProxyProcess;

const demo = { user: 'demo', password: 'demo-secret' };

beforeAll(async () => {
  const admin = await directMysql(server);
  await admin.query(
    `DROP TABLE IF EXISTS proto_items;
     CREATE TABLE proto_items(id int primary key, name varchar(50), price decimal(10,2), born datetime(3), blob_col longblob, f double);
     INSERT INTO proto_items VALUES (1,'apple',1.50,'2024-01-02 03:04:05.678',x'00ff',1.25),(2,NULL,NULL,NULL,NULL,NULL),(3,'cherry',3.00,'1999-12-31 23:59:59.000',x'',-0.5);
     SET GLOBAL max_allowed_packet = 64*1024*1024;`,
  );
  await admin.end();
  proxy = await startProxyProcess(
    mysqlProxyConfig(server, { clientTls: { certFile: tls.certFile, keyFile: tls.keyFile } }),
  );
});

afterAll(async () => {
  await proxy?.stop();
});

describe('mysql2 through the proxy', () => {
  it('runs text queries, multi-statements and multi-results', async () => {
    const c = await mysqlClient(proxy.port, { multipleStatements: true });
    try {
      const [rows] = await c.query('SELECT id, name, price FROM proto_items ORDER BY id');
      expect(rows).toEqual([
        { id: 1, name: 'apple', price: '1.50' },
        { id: 2, name: null, price: null },
        { id: 3, name: 'cherry', price: '3.00' },
      ]);
      const [results] = await c.query('SELECT 1 AS a; SELECT 2 AS b; DO 1');
      expect((results as unknown[]).length).toBe(3);
      expect((results as unknown[][])[0]).toEqual([{ a: 1 }]);
      expect((results as unknown[][])[1]).toEqual([{ b: 2 }]);
    } finally {
      await c.end();
    }
  });

  it('runs prepared statements with binary rows of every common type', async () => {
    const c = await mysqlClient(proxy.port, { dateStrings: true });
    try {
      const sql = 'SELECT id, name, price, born, blob_col, f FROM proto_items WHERE id >= ? ORDER BY id';
      const [rows] = await c.execute(sql, [1]);
      // The binary rows reach the driver exactly as the server sent them.
      const direct = await mysql.createConnection({
        host: server.host,
        port: server.port,
        user: server.admin.user,
        password: server.admin.password,
        database: server.database,
        dateStrings: true,
      });
      const [expected] = await direct.execute(sql, [1]);
      await direct.end();
      expect(rows).toEqual(expected);
      expect((rows as unknown[]).length).toBe(3);
      expect((rows as { blob_col: Buffer | null }[])[0]!.blob_col).toEqual(Buffer.from([0, 255]));
      const [insert] = await c.execute('INSERT INTO proto_items(id, name) VALUES (?, ?)', [10, 'ten']);
      expect((insert as { affectedRows: number }).affectedRows).toBe(1);
      const [deleted] = await c.execute('DELETE FROM proto_items WHERE id = ?', [10]);
      expect((deleted as { affectedRows: number }).affectedRows).toBe(1);
      // A statement prepared once and executed again, then closed.
      const statement = await c.prepare('SELECT name FROM proto_items WHERE id = ?');
      expect((await statement.execute([3]))[0]).toEqual([{ name: 'cherry' }]);
      expect((await statement.execute([1]))[0]).toEqual([{ name: 'apple' }]);
      await statement.close();
      await c.ping();
    } finally {
      await c.end();
    }
  });

  it('relays values larger than one 16 MiB packet both ways', async () => {
    const c = await mysqlClient(proxy.port);
    try {
      const big = Buffer.alloc(17 * 1024 * 1024, 0x61);
      big[big.length - 1] = 0x7a;
      await c.execute('INSERT INTO proto_items(id, blob_col) VALUES (?, ?)', [100, big]);
      const [text] = await c.query('SELECT blob_col, LENGTH(blob_col) AS n FROM proto_items WHERE id = 100');
      const row = (text as { blob_col: Buffer; n: number }[])[0]!;
      expect(row.n).toBe(big.length);
      expect(row.blob_col.equals(big)).toBe(true);
      const [binary] = await c.execute('SELECT blob_col FROM proto_items WHERE id = ?', [100]);
      expect((binary as { blob_col: Buffer }[])[0]!.blob_col.equals(big)).toBe(true);
      await c.query('DELETE FROM proto_items WHERE id = 100');
    } finally {
      await c.end();
    }
  });

  it('connects over TLS to the proxy', async () => {
    const c = await mysqlClient(proxy.port, { ssl: { ca: readFileSync(tls.caFile, 'utf8') } });
    try {
      expect((await c.query('SELECT 1 AS one'))[0]).toEqual([{ one: 1 }]);
    } finally {
      await c.end();
    }
  });

  it('tags the upstream session with the identity', async () => {
    const c = await mysqlClient(proxy.port);
    try {
      const [rows] = await c.query('SELECT @gatehouse_identity AS who');
      expect(rows).toEqual([{ who: 'local:demo' }]);
      // COM_RESET_CONNECTION drops user variables; the proxy sets the tag again.
      await new Promise<void>((resolve, reject) =>
        (c as unknown as { connection: { reset(cb: (e: unknown) => void): void } }).connection.reset((e) =>
          e ? reject(e) : resolve(),
        ),
      );
      const [after] = await c.query('SELECT @gatehouse_identity AS who');
      expect(after).toEqual([{ who: 'local:demo' }]);
    } finally {
      await c.end();
    }
  });

  it('refuses a wrong password with error 1045 and COM_CHANGE_USER with 1227, keeping the session', async () => {
    const error = await mysqlClient(proxy.port, { password: 'wrong' }).then(
      () => undefined,
      (e: { errno?: number; message?: string }) => e,
    );
    expect(error?.errno).toBe(1045);
    expect(error?.message).toMatch(/Gatehouse/);
    const c = await mysqlClient(proxy.port);
    try {
      const refused = await c.changeUser({ user: 'admin', password: 'admin-secret' }).then(
        () => undefined,
        (e: { errno?: number }) => e,
      );
      expect(refused?.errno).toBe(1227);
    } finally {
      c.destroy();
    }
  });
});

describe('TLS towards the database', () => {
  it('verifies the server certificate and encrypts the upstream session', async () => {
    const config = mysqlProxyConfig(server);
    (config['upstream'] as Record<string, unknown>)['tls'] = { mode: 'verify-full', caFile: server.caFile };
    const tlsProxy = await startProxyProcess(config);
    try {
      const c = await mysqlClient(tlsProxy.port);
      const [rows] = await c.query("SHOW SESSION STATUS LIKE 'Ssl_version'");
      expect((rows as { Value: string }[])[0]!.Value).toMatch(/^TLS/);
      await c.end();
    } finally {
      await tlsProxy.stop();
    }
  });
});

describe('capabilities', () => {
  it('refuses a client that asks for compression it was not offered, with error 1235', async () => {
    const socket = connect({ host: '127.0.0.1', port: proxy.port });
    const received: Buffer[] = [];
    socket.on('data', (d: Buffer) => received.push(d));
    await new Promise((r) => socket.once('data', r));
    const greeting = received[0]!.subarray(4);
    const versionEnd = greeting.indexOf(0, 1);
    const offered = greeting.readUInt16LE(versionEnd + 1 + 4 + 9);
    expect(offered & 32).toBe(0);
    const response = Buffer.concat([
      Buffer.from(Uint32Array.of(0x200 | 0x8000 | 0x80000 | 32).buffer),
      Buffer.from(Uint32Array.of(1 << 24).buffer),
      Buffer.from([45]),
      Buffer.alloc(23),
      Buffer.from('demo\0'),
      Buffer.from([0]),
      Buffer.from('mysql_clear_password\0'),
    ]);
    const header = Buffer.from([response.length, 0, 0, 1]);
    socket.write(Buffer.concat([header, response]));
    await new Promise((r) => socket.once('close', r));
    const answer = Buffer.concat(received.slice(1));
    expect(answer[4]).toBe(0xff);
    expect(answer.readUInt16LE(5)).toBe(1235);
  });
});

describe('the mysql command-line client through the proxy', () => {
  it('runs statements over TLS to the proxy', async () => {
    const result = await mysqlCli(
      [
        '--skip-column-names',
        '-e',
        "SELECT name FROM proto_items WHERE id = 1; SHOW STATUS LIKE 'Ssl_cipher'",
      ],
      {
        server,
        login: demo,
        port: proxy.port,
        ssl: 'verify',
        caFile: tls.caFile,
      },
    );
    expect(result.stderr).toBe('');
    expect(result.stdout).toContain('apple');
  });

  it('works when the client asks for compression, which the proxy does not offer', async () => {
    const result = await mysqlCli(['--compress', '--skip-column-names', '-e', 'SELECT 40 + 2'], {
      server,
      login: demo,
      port: proxy.port,
    });
    expect(result.stdout.trim()).toBe('42');
  });

  it('refuses a client character set whose multibyte characters can hide a backslash', async () => {
    const result = await mysqlCli(['--default-character-set=gbk', '-e', 'SELECT 1'], {
      server,
      login: demo,
      port: proxy.port,
    });
    expect(result.stderr).toMatch(/ERROR 1115/);
  });

  it('refuses LOAD DATA LOCAL INFILE when no policy allows it', async () => {
    const result = await mysqlCli(
      ['--local-infile=1', '-e', "LOAD DATA LOCAL INFILE '/etc/hostname' INTO TABLE proto_items"],
      { server, login: demo, port: proxy.port },
    );
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/ERROR 1227 .*LOAD DATA LOCAL needs a policy that allows it/);
  });

  it('relays LOAD DATA LOCAL INFILE when a policy allows it, and the file reaches the table', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-infile-'));
    const file = join(dir, 'items.tsv');
    writeFileSync(file, '101\tdamson\n102\telderberry\n');
    const config = mysqlProxyConfig(server);
    const allowing = await startProxyProcess(config, {
      extraDocuments: [
        policyDocument('Guardrail', 'no-drop', {
          rules: [{ name: 'drop', kinds: ['drop'], action: 'block' }],
        }),
        {
          apiVersion: API_VERSION,
          kind: 'DatabaseAccess',
          metadata: { name: 'loader' },
          // Loading a client file needs write and admin (file access), with no guardrail blocking it.
          spec: {
            subjects: [localUser('demo')],
            allow: ['read', 'write', 'admin'],
            guardrails: ['no-drop'],
          },
        },
      ],
    });
    try {
      const result = await mysqlCli(
        [
          '--local-infile=1',
          '-e',
          `LOAD DATA LOCAL INFILE '${file}' INTO TABLE proto_items (id, name); SELECT name FROM proto_items WHERE id > 100 ORDER BY id`,
        ],
        { server, login: demo, port: allowing.port },
      );
      expect(result.stderr).toBe('');
      expect(result.stdout).toContain('damson');
      expect(result.stdout).toContain('elderberry');
    } finally {
      await allowing.stop();
      const admin = await directMysql(server);
      await admin.query('DELETE FROM proto_items WHERE id > 100');
      await admin.end();
    }
  });
});

describe('audit', () => {
  it('records each statement with protocol mysql and no literal values', async () => {
    const c = await mysqlClient(proxy.port);
    try {
      await c.query("SELECT id FROM proto_items WHERE name = 'secret-literal-7781' OR id = 424242");
      await c.execute('SELECT id FROM proto_items WHERE name = ?', ['secret-param-5512']);
    } finally {
      await c.end();
    }
    await new Promise((r) => setTimeout(r, 300));
    const text = readFileSync(proxy.auditFile!, 'utf8');
    expect(text).not.toContain('secret-literal-7781');
    expect(text).not.toContain('424242');
    expect(text).not.toContain('secret-param-5512');
    const records = text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type?: string; event?: { type?: string } } & Record<string, unknown>);
    const statements = records.filter(
      (r) => r['type'] === 'statement' && String(r['statement']).includes('proto_items WHERE name'),
    );
    expect(statements).toEqual([
      expect.objectContaining({
        protocol: 'mysql',
        subject: 'local:demo',
        via: 'text',
        outcome: 'ok',
        command: 'SELECT',
        rows: 0,
        statement: 'SELECT id FROM proto_items WHERE name = ? OR id = ?',
      }),
      expect.objectContaining({
        via: 'prepared',
        outcome: 'ok',
        command: 'SELECT',
        statement: 'SELECT id FROM proto_items WHERE name = ?',
      }),
    ]);
  });
});
