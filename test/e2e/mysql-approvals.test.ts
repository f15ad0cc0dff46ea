import { spawn } from 'node:child_process';
import type mysql from 'mysql2/promise';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { withoutMysqlVariables } from '../harness/mariadb.ts';
import { mysql as mysqlCli } from '../harness/mysql-cli.ts';
import { localUser, policyDocument } from '../support/policy-documents.ts';
import { approvalsClient, approvalUsers } from './support/approvals.ts';
import { directMysql, mysqlClient, mysqlProxyConfig } from './support/mysql.ts';
import { RawMysqlClient, rawPacket } from './support/mysql-raw-client.ts';
import { type ProxyProcess, startProxyProcess } from './support/proxy-process.ts';

/**
 * MySQL has no asynchronous notices: a held statement's session waits, then runs it once approved or
 * answers with an error naming the request. Real MariaDB, mysql2, the approvals API as another user.
 */

const server = inject('mariadb');
const DATABASE = 'approvals_e2e';
let proxy: ProxyProcess;
let admin: mysql.Connection;

beforeAll(async () => {
  admin = await directMysql(server);
  await admin.query(`DROP DATABASE IF EXISTS ${DATABASE}`);
  await admin.query(`CREATE DATABASE ${DATABASE}`);
  await admin.query(`CREATE TABLE ${DATABASE}.orders(id int primary key, note text) ENGINE=InnoDB`);
  await admin.query(`GRANT ALL PRIVILEGES ON ${DATABASE}.* TO '${server.users.native.user}'@'%'`);
  const config = mysqlProxyConfig(server, approvalUsers('demo'));
  (config['upstream'] as Record<string, unknown>)['database'] = DATABASE;
  proxy = await startProxyProcess(config, {
    extraDocuments: [
      policyDocument('Guardrail', 'holds', {
        rules: [
          {
            name: 'sweeping',
            kinds: ['truncate', 'delete-without-where', 'update-without-where'],
            action: 'requireApproval',
            approval: { approvers: [{ kind: 'Group', name: 'approvers' }], waitSeconds: 3, ttlSeconds: 60 },
          },
        ],
      }),
      policyDocument('DatabaseAccess', 'demo', {
        subjects: [localUser('demo')],
        allow: ['read', 'write', 'ddl'],
        guardrails: ['holds'],
      }),
    ],
  });
}, 60_000);

afterAll(async () => {
  await proxy?.stop();
  await admin?.end();
});

const seed = async () => {
  await admin.query(`DELETE FROM ${DATABASE}.orders`);
  await admin.query(`INSERT INTO ${DATABASE}.orders VALUES (1,'a'),(2,'b'),(3,'c')`);
};
const count = async () => {
  const [rows] = await admin.query(`SELECT count(*) AS n FROM ${DATABASE}.orders`);
  return Number((rows as { n: number }[])[0]!.n);
};

const notes = async () => {
  const [rows] = await admin.query(`SELECT DISTINCT note FROM ${DATABASE}.orders ORDER BY note`);
  return (rows as { note: string }[]).map((r) => r.note);
};
type Failure = { errno: number; message: string };
const failure = (p: Promise<unknown>) => p.then(() => undefined).catch((e: unknown) => e as Failure);

const { api, pendingFor } = approvalsClient(() => proxy.adminPort);
// Requests a test left Pending (asked anew, never decided) do not linger into the next test.
afterEach(async () => {
  const { body } = await api('/approvals?phase=Pending', 'lead');
  for (const { id } of body as { id: string }[])
    await api(`/approvals/${id}/deny`, 'lead', { reason: 'test over' });
});

/** The Pending request `run` opens for `statement`, not one an earlier test left open. */
const newPending = async (statement: string, run: () => Promise<unknown>) => {
  const { body } = await api('/approvals?phase=Pending', 'lead');
  const before = new Set((body as { id: string }[]).map((r) => r.id));
  const result = run();
  const running = failure(result);
  for (let i = 0; i < 200; i++) {
    const { body: now } = await api('/approvals?phase=Pending', 'lead');
    const found = (now as { id: string; statement: string }[]).find(
      (r) => r.statement === statement && !before.has(r.id),
    );
    if (found) return { id: found.id, running, result };
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`no new Pending request for ${statement}`);
};

describe('MySQL: a statement held for approval', () => {
  it('waits, and runs once another user approves it', async () => {
    await seed();
    const c = await mysqlClient(proxy.port, { database: DATABASE });
    const running = c.query('DELETE FROM orders');
    const { id } = await pendingFor('DELETE FROM orders');
    expect(await count()).toBe(3);
    // The requester sees the request, and may not decide it.
    expect(await api(`/approvals/${id}/approve`, 'demo', { reason: 'mine' })).toMatchObject({
      status: 403,
      body: { problem: 'not-an-approver' },
    });
    expect((await api(`/approvals/${id}/approve`, 'lead', { reason: 'ok' })).status).toBe(200);
    const [result] = await running;
    expect((result as mysql.ResultSetHeader).affectedRows).toBe(3);
    expect(await count()).toBe(0);
    await c.end();
  });

  it('answers a denial with an error naming the request, and the session goes on', async () => {
    await seed();
    const c = await mysqlClient(proxy.port, { database: DATABASE });
    const running = c
      .query('TRUNCATE TABLE orders')
      .catch((e: unknown) => e as { errno: number; message: string });
    const { id } = await pendingFor('TRUNCATE TABLE orders');
    await api(`/approvals/${id}/deny`, 'lead', { reason: 'keep them' });
    const error = (await running) as { errno: number; message: string };
    expect(error.errno).toBe(1142);
    expect(error.message).toContain(`request ${id} was denied by local:lead: keep them`);
    expect(await count()).toBe(3);
    const [rows] = await c.query('SELECT 1 AS one');
    expect(rows).toEqual([{ one: 1 }]);
    await c.end();
  });

  it('says the request is still pending after waitSeconds; approved later, the identical text runs once', async () => {
    await seed();
    const c = await mysqlClient(proxy.port, { database: DATABASE });
    const first = (await c.query('DELETE FROM orders').catch((e: unknown) => e)) as { message: string };
    expect(first.message).toMatch(/is still pending after 3 s/);
    const id = /request (ar-[0-9a-f]+)/.exec(first.message)![1]!;
    await api(`/approvals/${id}/approve`, 'lead', { reason: 'later' });
    const [again] = await c.query('DELETE FROM orders');
    expect((again as mysql.ResultSetHeader).affectedRows).toBe(3);
    await c.end();
  }, 20_000);
});

describe('MySQL: a prepared statement held for approval', () => {
  it('prepares, then each execution waits for an approval of its own parameters', async () => {
    await seed();
    const c = await mysqlClient(proxy.port, { database: DATABASE });
    const update = (note: string) => c.execute('UPDATE orders SET note = ?', [note]);
    const first = update('approved');
    const request = await pendingFor('UPDATE orders SET note = ?');
    const shown = await api(`/approvals/${request.id}`, 'lead');
    expect(shown.body.parametersHash).toMatch(/^[0-9a-f]{64}$/);
    expect(await notes()).toEqual(['a', 'b', 'c']);
    expect((await api(`/approvals/${request.id}/approve`, 'lead', { reason: 'ok' })).status).toBe(200);
    const [result] = await first;
    expect((result as mysql.ResultSetHeader).affectedRows).toBe(3);
    expect(await notes()).toEqual(['approved']);

    // The same prepared statement with other parameters asks anew; denied, it does not run.
    const other = failure(update('sneaky'));
    const second = await pendingFor('UPDATE orders SET note = ?');
    expect(second.id).not.toBe(request.id);
    expect((await api(`/approvals/${second.id}`, 'lead')).body.parametersHash).not.toBe(
      shown.body.parametersHash,
    );
    await api(`/approvals/${second.id}/deny`, 'lead', { reason: 'no' });
    const refused = (await other)!;
    expect(refused.errno).toBe(1142);
    expect(refused.message).toContain(`request ${second.id} was denied by local:lead: no`);
    expect(await notes()).toEqual(['approved']);
    // The session and its prepared statements go on.
    const [rows] = await c.execute('SELECT ? AS n', [7]);
    expect(rows).toEqual([{ n: 7 }]);
    await c.end();
  });

  it('an approval for some parameters releases no others; approved late, the same parameters run once within the TTL', async () => {
    await seed();
    const c = await mysqlClient(proxy.port, { database: DATABASE });
    const pending = (await failure(c.execute('UPDATE orders SET note = ?', ['late'])))!;
    expect(pending.message).toMatch(/is still pending after 3 s/);
    const id = /request (ar-[0-9a-f]+)/.exec(pending.message)![1]!;
    expect((await api(`/approvals/${id}/approve`, 'lead', { reason: 'later' })).status).toBe(200);
    // Other parameters (a number where a string was approved, another string) are other requests.
    for (const other of [
      c.execute('UPDATE orders SET note = ?', ['late2']),
      c.execute('UPDATE orders SET note = ?', [7]),
    ]) {
      const error = (await failure(other))!;
      expect(error.message).toMatch(/is still pending after 3 s/);
      expect(error.message).not.toContain(id);
    }
    expect(await notes()).toEqual(['a', 'b', 'c']);
    // The approved parameters: released at once, once.
    const [done] = await c.execute('UPDATE orders SET note = ?', ['late']);
    expect((done as mysql.ResultSetHeader).affectedRows).toBe(3);
    expect(await notes()).toEqual(['late']);
    const again = (await failure(c.execute('UPDATE orders SET note = ?', ['late'])))!;
    expect(again.message).toMatch(/is still pending after 3 s/);
    expect(again.message).not.toContain(id);
    const { body } = await api(`/approvals/${id}`, 'lead');
    expect(body.phase).toBe('Executed');
    await c.end();
  }, 30_000);

  it('a KILL QUERY from another connection withdraws the request, and the held session goes on', async () => {
    await seed();
    const victim = await mysqlClient(proxy.port, { database: DATABASE });
    const killer = await mysqlClient(proxy.port, { database: DATABASE });
    const held: [string, () => Promise<unknown>][] = [
      ['DELETE FROM orders', () => victim.query('DELETE FROM orders')],
      ['UPDATE orders SET note = ?', () => victim.execute('UPDATE orders SET note = ?', ['killed'])],
    ];
    for (const [text, run] of held) {
      const started = Date.now();
      const { id, running } = await newPending(text, run);
      const request = { id };
      await killer.query(`KILL QUERY ${victim.threadId}`);
      const error = (await running)!;
      expect(error.errno).toBe(1142);
      expect(error.message).toContain(`request ${request.id} was withdrawn`);
      expect(Date.now() - started).toBeLessThan(2500);
      expect((await api(`/approvals/${request.id}`, 'lead')).body.phase).toBe('Withdrawn');
      const [rows] = await victim.query('SELECT count(*) AS n FROM orders');
      expect(rows).toEqual([{ n: 3 }]);
    }
    await victim.end();
    await killer.end();
  });

  it("the mysql client's Ctrl-C (a KILL QUERY on a connection of its own) withdraws the request", async () => {
    await seed();
    const child = spawn(
      '/usr/bin/mysql',
      [
        '--no-defaults',
        '--protocol=TCP',
        '--host=127.0.0.1',
        `--port=${proxy.port}`,
        '--user=demo',
        '--skip-ssl',
        DATABASE,
      ],
      {
        env: { ...withoutMysqlVariables(process.env), MYSQL_PWD: 'demo-secret' },
        stdio: ['pipe', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
    const { id } = await newPending('DELETE FROM orders', async () =>
      child.stdin.write('DELETE FROM orders;\n'),
    );
    child.kill('SIGINT');
    for (let i = 0; i < 100 && !stderr.includes('withdrawn'); i++)
      await new Promise((r) => setTimeout(r, 20));
    expect(stderr).toContain(`request ${id} was withdrawn`);
    expect((await api(`/approvals/${id}`, 'lead')).body.phase).toBe('Withdrawn');
    child.stdin.end();
    await closed;
    expect(await count()).toBe(3);
  });
});

describe('MySQL: a prepared statement held for approval, byte by byte', () => {
  const SQL = 'UPDATE orders SET note = ?';
  /** COM_STMT_EXECUTE of `id` with one string; without types, the client relies on those bound before. */
  const execute = (id: number, note: string, sendTypes: boolean) => {
    const head = Buffer.alloc(10);
    head[0] = 0x17;
    head.writeUInt32LE(id, 1);
    head.writeUInt32LE(1, 6);
    const types = sendTypes ? [1, 0xfd, 0] : [0];
    return rawPacket(Buffer.concat([head, Buffer.from([0, ...types, note.length]), Buffer.from(note)]), 0);
  };
  const answer = async (raw: RawMysqlClient) => {
    const { payload } = await raw.next();
    return payload[0] === 0xff
      ? { errno: payload.readUInt16LE(1), message: payload.toString('utf8', 9) }
      : { ok: payload[0] === 0 };
  };

  it('an execution that sends no types is bound to the types sent before, and the server reads them', async () => {
    await seed();
    const raw = await RawMysqlClient.login(proxy.port, 'demo', 'demo-secret');
    await raw.query(`USE ${DATABASE}`);
    raw.socket.write(rawPacket(Buffer.concat([Buffer.from([0x16]), Buffer.from(SQL)]), 0));
    const prepared = await raw.next();
    expect(prepared.payload[0]).toBe(0);
    const id = prepared.payload.readUInt32LE(1);
    expect(prepared.payload.readUInt16LE(7)).toBe(1);
    await raw.next(); // the parameter's definition (DEPRECATE_EOF: no EOF after it)

    const approveNext = async (sent: Buffer) => {
      const { id: request, result } = await newPending(SQL, async () => {
        raw.socket.write(sent);
        return await answer(raw);
      });
      await api(`/approvals/${request}/approve`, 'lead', { reason: 'ok' });
      return { request, answered: await result };
    };
    const typed = await approveNext(execute(id, 'raw1', true));
    expect(typed.answered).toEqual({ ok: true });
    expect(await notes()).toEqual(['raw1']);
    // The same value without types: the same parameters, so the same digest; it runs as approved.
    await admin.query(`UPDATE ${DATABASE}.orders SET note = 'x'`);
    const untyped = await approveNext(execute(id, 'raw1', false));
    expect(untyped.answered).toEqual({ ok: true });
    const digest = async (request: string) =>
      (await api(`/approvals/${request}`, 'lead')).body.parametersHash;
    expect(await digest(untyped.request)).toBe(await digest(typed.request));
    expect(await notes()).toEqual(['raw1']);

    // Values sent apart are not in the execution: it is refused at once, never held.
    const longData = Buffer.alloc(7);
    longData[0] = 0x18;
    longData.writeUInt32LE(id, 1);
    raw.socket.write(rawPacket(Buffer.concat([longData, Buffer.from('raw2')]), 0));
    raw.socket.write(execute(id, '', false));
    expect(await answer(raw)).toMatchObject({
      errno: 1235,
      message: expect.stringContaining('COM_STMT_SEND_LONG_DATA'),
    });
    const reset = Buffer.alloc(5);
    reset[0] = 0x1a;
    reset.writeUInt32LE(id, 1);
    raw.socket.write(rawPacket(reset, 0));
    expect(await answer(raw)).toEqual({ ok: true });
    const denied = await newPending(SQL, async () => {
      raw.socket.write(execute(id, 'raw2', false));
      return await answer(raw);
    });
    await api(`/approvals/${denied.id}/deny`, 'lead', { reason: 'no' });
    expect(await denied.result).toMatchObject({ errno: 1142 });
    expect(await notes()).toEqual(['raw1']);
    raw.close();
  });
});

describe('MySQL: a text of several statements held for approval', () => {
  it('is held whole, and nothing of it runs until the whole text is approved', async () => {
    await seed();
    const c = await mysqlClient(proxy.port, { database: DATABASE, multipleStatements: true });
    const text = "INSERT INTO orders VALUES (4,'d'); DELETE FROM orders";
    const denied = failure(c.query(text));
    const first = await pendingFor(text);
    // The statement that needs no approval did not run ahead of the one that does.
    expect(await count()).toBe(3);
    await api(`/approvals/${first.id}/deny`, 'lead', { reason: 'no' });
    expect((await denied)!.errno).toBe(1142);
    expect(await count()).toBe(3);

    const approved = c.query(text);
    const second = await pendingFor(text);
    expect(second.id).not.toBe(first.id);
    await api(`/approvals/${second.id}/approve`, 'lead', { reason: 'ok' });
    const [results] = await approved;
    expect((results as mysql.ResultSetHeader[]).map((r) => r.affectedRows)).toEqual([1, 4]);
    expect(await count()).toBe(0);
    await c.end();
  });

  it('an approval of the whole text releases none of its statements apart, nor another text', async () => {
    await seed();
    const c = await mysqlClient(proxy.port, { database: DATABASE, multipleStatements: true });
    const text = 'DELETE FROM orders; SELECT 1';
    const late = (await failure(c.query(text)))!;
    const id = /request (ar-[0-9a-f]+)/.exec(late.message)![1]!;
    await api(`/approvals/${id}/approve`, 'lead', { reason: 'the pair' });
    for (const other of [
      'DELETE FROM orders',
      'DELETE FROM orders; SELECT 2',
      'SELECT 1; DELETE FROM orders',
    ]) {
      const error = (await failure(c.query(other)))!;
      expect(error.message).toMatch(/is still pending after 3 s/);
      expect(error.message).not.toContain(id);
    }
    expect(await count()).toBe(3);
    await c.query(text);
    expect(await count()).toBe(0);
    await c.end();
  }, 30_000);

  it('the mysql client: a text sent whole (DELIMITER) waits, and runs once approved', async () => {
    await seed();
    const text = "UPDATE orders SET note = 'cli'; SELECT count(*) AS n FROM orders";
    const cli = mysqlCli([], {
      server,
      login: { user: 'demo', password: 'demo-secret' },
      port: proxy.port,
      database: DATABASE,
      input: `DELIMITER //\n${text}//\n`,
      timeoutMs: 20_000,
    });
    const { id } = await pendingFor(text);
    expect(await notes()).toEqual(['a', 'b', 'c']);
    await api(`/approvals/${id}/approve`, 'lead', { reason: 'ok' });
    const result = await cli;
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('n\n3');
    expect(await notes()).toEqual(['cli']);
  });
});
