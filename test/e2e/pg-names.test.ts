import { readFileSync } from 'node:fs';
import pg from 'pg';
import { serialize } from 'pg-protocol';
import type { BackendMessage } from 'pg-protocol/dist/messages.js';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { DEFAULT_GUARDRAIL } from '../../sidecar/src/policy/guardrails/default-guardrails.ts';
import { localUser, policyDocument } from '../support/policy-documents.ts';
import { freshDatabase, localProxyConfig } from './support/clients.ts';
import { type ProxyProcess, startProxyProcess } from './support/proxy-process.ts';
import { RawClient } from './support/raw-client.ts';

/**
 * Every name a message uses was judged (issue 12, class 2): prepared statements and portals made by
 * SQL share their namespaces with protocol ones, so a Bind, Describe or Execute may only name what
 * Gatehouse judged, and a name must never stand for another query than the server's. Hand-made
 * protocol messages and real drivers against the real PostgreSQL 15, for a masked identity.
 */
const pgInfo = inject('postgres');
const DATABASE = 'session_names';
const SSNS = ['123-45-6789', '987-65-4321'];
/** Masked too, and shaped like nothing a value scan would find: only the plan can hide them. */
const NAMES = ['Quorvath', 'Belzinde'];
let proxy: ProxyProcess;

interface Exchange {
  readonly messages: BackendMessage[];
  readonly errors: { code: string; message: string }[];
  /** Every DataRow cell, as text. */
  readonly cells: string[];
}

/** Sends `frames` and collects the answers up to the `readies`-th ReadyForQuery. */
function exchange(raw: RawClient, frames: Buffer[], readies: number): Promise<Exchange> {
  return new Promise((resolve) => {
    const messages: BackendMessage[] = [];
    let ready = 0;
    const off = raw.onMessage((m) => {
      messages.push(m);
      if (m.name === 'readyForQuery' && ++ready === readies) {
        off();
        resolve({
          messages,
          errors: messages
            .filter((x) => x.name === 'error')
            .map((x) => x as unknown as { code: string; message: string }),
          cells: messages
            .filter((x) => x.name === 'dataRow')
            .flatMap((x) => (x as unknown as { fields: (string | null)[] }).fields.map(String)),
        });
      }
    });
    raw.socket.write(Buffer.concat(frames));
  });
}

const q = (sql: string) => serialize.query(sql);
const bindExecute = (statement: string, portal = '') => [
  serialize.bind({ statement, portal }),
  serialize.execute({ portal }),
  serialize.sync(),
];

function expectNoSsn(result: Exchange | string): void {
  const text = typeof result === 'string' ? result : JSON.stringify(result.messages);
  for (const secret of [...SSNS, ...NAMES]) expect(text).not.toContain(secret);
}

async function login(): Promise<RawClient> {
  return RawClient.login(proxy.port, 'demo', 'demo-secret');
}

beforeAll(async () => {
  const admin = await freshDatabase(pgInfo, DATABASE);
  await admin.query(`CREATE TABLE customers(id int, name text, ssn text);
    INSERT INTO customers VALUES (1, '${NAMES[0]}', '${SSNS[0]}'), (2, '${NAMES[1]}', '${SSNS[1]}'); ANALYZE customers;`);
  await admin.end();
  const config = localProxyConfig(pgInfo, {
    masking: { key: { value: 'test-masking-key-0123456789abcdef' } },
  });
  (config['upstream'] as Record<string, unknown>)['database'] = DATABASE;
  proxy = await startProxyProcess(config, {
    extraDocuments: [
      DEFAULT_GUARDRAIL,
      policyDocument('MaskingPolicy', 'pii', {
        autoDetect: true,
        rules: [{ columns: ['customers.ssn', 'customers.name'], method: 'redact' }],
      }),
      policyDocument('DatabaseAccess', 'people', {
        subjects: [localUser('demo')],
        allow: ['read', 'write'],
        guardrails: ['gatehouse-defaults'],
        maskingPolicies: ['pii'],
      }),
    ],
  });
});

afterAll(async () => {
  await proxy?.stop();
});

describe('a protocol message naming a statement made by SQL PREPARE is refused', () => {
  it.each([
    ['PREPARE sp AS SELECT ssn FROM customers', 'sp'],
    ['prepare SP as select ssn from customers', 'sp'],
    ['PREPARE "Sp" AS SELECT ssn FROM customers', 'Sp'],
    ['PREPARE sp(int) AS SELECT ssn FROM customers WHERE id <> $1', 'sp'],
    ['/* c */ PREPARE sp AS SELECT name, ssn FROM customers', 'sp'],
    ['PREPARE sp AS SELECT * FROM customers', 'sp'],
  ])('%s, then Bind/Execute of %s', async (prepare, name) => {
    const raw = await login();
    try {
      const made = await exchange(raw, [q(prepare)], 1);
      expect(made.errors).toEqual([]);
      const values = prepare.includes('$1') ? ['0'] : [];
      for (const portal of ['', 'p1']) {
        const run = await exchange(
          raw,
          [
            serialize.bind({ statement: name, portal, values }),
            serialize.execute({ portal }),
            serialize.sync(),
          ],
          1,
        );
        expectNoSsn(run);
        expect(run.errors[0]?.code).toBe('26000');
        expect(run.errors[0]?.message).toMatch(/SQL PREPARE; run it with EXECUTE/);
      }
      const described = await exchange(raw, [serialize.describe({ type: 'S', name }), serialize.sync()], 1);
      expect(described.errors[0]?.code).toBe('26000');
      // EXECUTE is judged by what it runs: masked.
      const executed = await exchange(raw, [q(`EXECUTE "${name}"${values.length ? '(0)' : ''}`)], 1);
      expect(executed.errors).toEqual([]);
      expect(executed.cells.length).toBeGreaterThan(0);
      expectNoSsn(executed);
    } finally {
      raw.close();
    }
  });

  it('in a transaction, and after the name is reused with DEALLOCATE', async () => {
    const raw = await login();
    try {
      await exchange(raw, [q('BEGIN; PREPARE sp AS SELECT ssn FROM customers')], 1);
      const inTx = await exchange(raw, bindExecute('sp'), 1);
      expect(inTx.errors[0]?.code).toBe('26000');
      expectNoSsn(inTx);
      await exchange(raw, [q('ROLLBACK')], 1);
      // PREPARE is not transactional: sp is still there, and still refused.
      expect((await exchange(raw, bindExecute('sp'), 1)).errors[0]?.code).toBe('26000');
      await exchange(raw, [q('DEALLOCATE sp')], 1);
      const reused = await exchange(
        raw,
        [serialize.parse({ name: 'sp', text: 'SELECT ssn FROM customers' }), ...bindExecute('sp')],
        1,
      );
      expect(reused.errors).toEqual([]);
      expect(reused.cells.length).toBe(2);
      expectNoSsn(reused);
    } finally {
      raw.close();
    }
  });
});

describe('a protocol message naming a cursor made by SQL DECLARE is refused', () => {
  it.each([
    'DECLARE cc CURSOR FOR SELECT ssn FROM customers',
    'declare CC no scroll cursor without hold for select ssn from customers',
    'DECLARE cc BINARY CURSOR FOR SELECT ssn FROM customers',
    'DECLARE cc SCROLL CURSOR WITH HOLD FOR SELECT ssn FROM customers',
  ])('BEGIN; %s, then Execute of cc', async (declare) => {
    const raw = await login();
    try {
      await exchange(raw, [q(`BEGIN; ${declare}`)], 1);
      const run = await exchange(raw, [serialize.execute({ portal: 'cc' }), serialize.sync()], 1);
      expectNoSsn(run);
      expect(run.errors[0]?.code).toBe('34000');
      expect(run.errors[0]?.message).toMatch(/SQL DECLARE; read it with FETCH/);
      await exchange(raw, [q('ROLLBACK; BEGIN'), q(declare)], 2);
      const described = await exchange(
        raw,
        [serialize.describe({ type: 'P', name: 'cc' }), serialize.sync()],
        1,
      );
      expect(described.errors[0]?.code).toBe('34000');
      const fetched = await exchange(raw, [q('ROLLBACK; BEGIN'), q(declare), q('FETCH ALL FROM cc')], 3);
      expect(fetched.cells.length).toBe(2);
      expectNoSsn(fetched);
      await exchange(raw, [q('ROLLBACK')], 1);
    } finally {
      raw.close();
    }
  });

  it('a WITH HOLD cursor that survives COMMIT is still refused to Execute', async () => {
    const raw = await login();
    try {
      await exchange(
        raw,
        [q('BEGIN; DECLARE held CURSOR WITH HOLD FOR SELECT ssn FROM customers; COMMIT')],
        1,
      );
      const run = await exchange(raw, [serialize.execute({ portal: 'held' }), serialize.sync()], 1);
      expect(run.errors[0]?.code).toBe('34000');
      expectNoSsn(run);
      const fetched = await exchange(raw, [q('FETCH ALL FROM held')], 1);
      expect(fetched.cells.length).toBe(2);
      expectNoSsn(fetched);
    } finally {
      raw.close();
    }
  });

  it('a portal of its own is gone after COMMIT, and so refused', async () => {
    const raw = await login();
    try {
      const bound = await exchange(
        raw,
        [
          q('BEGIN'),
          serialize.parse({ name: 'own', text: 'SELECT ssn FROM customers' }),
          serialize.bind({ statement: 'own', portal: 'mine' }),
          serialize.execute({ portal: 'mine', rows: 1 }),
          serialize.sync(),
        ],
        2,
      );
      expect(bound.errors).toEqual([]);
      await exchange(raw, [q('COMMIT')], 1);
      const after = await exchange(raw, [serialize.execute({ portal: 'mine' }), serialize.sync()], 1);
      expect(after.errors[0]?.code).toBe('34000');
      expectNoSsn(after);
    } finally {
      raw.close();
    }
  });

  it('a name Gatehouse never saw is refused, whatever message uses it', async () => {
    const raw = await login();
    try {
      for (const frames of [
        bindExecute('nobody'),
        [serialize.execute({ portal: 'nowhere' }), serialize.sync()],
        [serialize.describe({ type: 'S', name: 'nobody' }), serialize.sync()],
        [serialize.describe({ type: 'P', name: 'nowhere' }), serialize.sync()],
        // The unnamed statement and portal are dropped by every simple Query.
        [
          serialize.parse({ text: 'SELECT ssn FROM customers' }),
          serialize.sync(),
          q('SELECT 1'),
          ...bindExecute(''),
        ],
      ]) {
        const result = await exchange(
          raw,
          frames,
          frames.filter((f) => f[0] === 0x53 || f[0] === 0x51).length,
        );
        expect(result.errors.map((e) => e.message).join()).toMatch(/Gatehouse/);
        expectNoSsn(result);
      }
      expect(readFileSync(proxy.auditFile!, 'utf8')).toMatch(/Bind of a statement Gatehouse did not judge/);
    } finally {
      raw.close();
    }
  });
});

describe('a name never stands for another query than the server runs', () => {
  it('SQL PREPARE of a name a protocol Parse made is refused, and EXECUTE stays masked', async () => {
    const raw = await login();
    try {
      await exchange(
        raw,
        [serialize.parse({ name: 'p', text: 'SELECT name FROM customers' }), serialize.sync()],
        1,
      );
      const clash = await exchange(raw, [q("PREPARE p AS SELECT 'x' AS name")], 1);
      expect(clash.errors[0]?.code).toBe('42P05');
      const executed = await exchange(raw, [q('EXECUTE p')], 1);
      expectNoSsn(executed);
    } finally {
      raw.close();
    }
  });

  it('a second SQL PREPARE of a name is refused, and EXECUTE runs the first, masked', async () => {
    const raw = await login();
    try {
      await exchange(raw, [q('PREPARE p AS SELECT name FROM customers')], 1);
      expect((await exchange(raw, [q("PREPARE p AS SELECT 'x' AS name")], 1)).errors[0]?.code).toBe('42P05');
      expectNoSsn(await exchange(raw, [q('EXECUTE p')], 1));
    } finally {
      raw.close();
    }
  });

  it('a DEALLOCATE the server never ran does not free the name', async () => {
    const raw = await login();
    try {
      await exchange(raw, [q('PREPARE p AS SELECT name FROM customers')], 1);
      const failed = await exchange(raw, [q('SELECT 1/0; DEALLOCATE p')], 1);
      expect(failed.errors[0]?.code).toBe('22012');
      expect((await exchange(raw, [q("PREPARE p AS SELECT 'x' AS name")], 1)).errors[0]?.code).toBe('42P05');
      expectNoSsn(await exchange(raw, [q('EXECUTE p')], 1));
      // Once the server has run it, the name is free again.
      await exchange(raw, [q('DEALLOCATE p')], 1);
      const again = await exchange(raw, [q("PREPARE p AS SELECT 'x' AS v"), q('EXECUTE p')], 2);
      expect(again.errors).toEqual([]);
      expect(again.cells).toEqual(['x']);
    } finally {
      raw.close();
    }
  });

  it('a second WITH HOLD DECLARE of a name is refused, and FETCH reads the first, masked', async () => {
    const raw = await login();
    try {
      await exchange(raw, [q('DECLARE c CURSOR WITH HOLD FOR SELECT name FROM customers')], 1);
      const clash = await exchange(raw, [q("DECLARE c CURSOR WITH HOLD FOR SELECT 'x' AS name")], 1);
      expect(clash.errors[0]?.code).toBe('42P03');
      const fetched = await exchange(raw, [q('FETCH ALL FROM c')], 1);
      expect(fetched.cells.length).toBe(2);
      expectNoSsn(fetched);
      await exchange(raw, [q('CLOSE c')], 1);
      const again = await exchange(
        raw,
        [q("DECLARE c CURSOR WITH HOLD FOR SELECT 'x' AS v"), q('FETCH ALL FROM c')],
        2,
      );
      expect(again.errors).toEqual([]);
      expect(again.cells).toEqual(['x']);
    } finally {
      raw.close();
    }
  });

  it('a refused Parse keeps what the name stood for', async () => {
    const raw = await login();
    try {
      await exchange(
        raw,
        [serialize.parse({ name: 's', text: 'SELECT name FROM customers' }), serialize.sync()],
        1,
      );
      const refused = await exchange(
        raw,
        [serialize.parse({ name: 's', text: 'DROP TABLE customers' }), serialize.sync()],
        1,
      );
      expect(refused.errors[0]?.code).toBe('42501');
      const run = await exchange(raw, bindExecute('s'), 1);
      expect(run.cells.length).toBe(2);
      expectNoSsn(run);
    } finally {
      raw.close();
    }
  });

  it('a second Parse of a name, which the server refuses, keeps the first', async () => {
    const raw = await login();
    try {
      await exchange(
        raw,
        [serialize.parse({ name: 's', text: 'SELECT name FROM customers' }), serialize.sync()],
        1,
      );
      const twice = await exchange(
        raw,
        [serialize.parse({ name: 's', text: "SELECT 'x' AS name" }), serialize.sync()],
        1,
      );
      expect(twice.errors[0]?.code).toBe('42P05');
      const run = await exchange(raw, bindExecute('s'), 1);
      expect(run.cells.length).toBe(2);
      expectNoSsn(run);
    } finally {
      raw.close();
    }
  });

  it('a Close the server skipped keeps the name', async () => {
    const raw = await login();
    try {
      await exchange(raw, [q('PREPARE p AS SELECT name FROM customers')], 1);
      const skipped = await exchange(
        raw,
        [
          serialize.parse({ text: 'SELECT 1/0' }),
          serialize.bind({}),
          serialize.execute({}),
          serialize.close({ type: 'S', name: 'p' }),
          serialize.sync(),
        ],
        1,
      );
      expect(skipped.errors[0]?.code).toBe('22012');
      expect((await exchange(raw, [q("PREPARE p AS SELECT 'x' AS name")], 1)).errors[0]?.code).toBe('42P05');
      expectNoSsn(await exchange(raw, [q('EXECUTE p')], 1));
    } finally {
      raw.close();
    }
  });

  it('SQL FETCH of a portal bound through the protocol is refused', async () => {
    const raw = await login();
    try {
      // An implicit transaction block: the server drops c at its end.
      await exchange(raw, [q("DECLARE c CURSOR FOR SELECT 'x' AS v; FETCH 1 FROM c")], 1);
      const bound = await exchange(
        raw,
        [
          q('BEGIN'),
          serialize.parse({ name: 'n', text: 'SELECT name FROM customers' }),
          serialize.bind({ statement: 'n', portal: 'c' }),
          serialize.sync(),
        ],
        2,
      );
      expect(bound.errors).toEqual([]);
      const fetched = await exchange(raw, [q('FETCH ALL FROM c')], 1);
      expect(fetched.errors[0]?.code).toBe('34000');
      expectNoSsn(fetched);
      await exchange(raw, [q('ROLLBACK')], 1);
    } finally {
      raw.close();
    }
  });

  it('a DECLARE sent by Parse makes its name again each time it runs', async () => {
    const raw = await login();
    try {
      const declare = 'DECLARE c CURSOR WITH HOLD FOR SELECT name FROM customers';
      await exchange(raw, [serialize.parse({ name: 'd', text: declare }), ...bindExecute('d')], 1);
      await exchange(raw, [q('CLOSE c')], 1);
      const again = await exchange(raw, bindExecute('d'), 1);
      expect(again.errors).toEqual([]);
      const clash = await exchange(raw, [q("DECLARE c CURSOR WITH HOLD FOR SELECT 'x' AS name")], 1);
      expect(clash.errors[0]?.code).toBe('42P03');
      const fetched = await exchange(raw, [q('FETCH ALL FROM c')], 1);
      expect(fetched.cells.length).toBe(2);
      expectNoSsn(fetched);
    } finally {
      raw.close();
    }
  });

  it('DISCARD ALL frees every name, protocol and SQL', async () => {
    const raw = await login();
    try {
      await exchange(
        raw,
        [q('PREPARE a AS SELECT 1'), serialize.parse({ name: 'b', text: 'SELECT 2' }), serialize.sync()],
        2,
      );
      await exchange(raw, [q('DISCARD ALL')], 1);
      const again = await exchange(
        raw,
        [
          q('PREPARE b AS SELECT 3'),
          serialize.parse({ name: 'a', text: 'SELECT 4' }),
          ...bindExecute('a'),
          q('EXECUTE b'),
        ],
        3,
      );
      expect(again.errors).toEqual([]);
      expect(again.cells).toEqual(['4', '3']);
    } finally {
      raw.close();
    }
  });
});

describe('drivers keep working', () => {
  it('node-postgres named statements, reused', async () => {
    const c = new pg.Client({
      host: '127.0.0.1',
      port: proxy.port,
      database: DATABASE,
      user: 'demo',
      password: 'demo-secret',
    });
    await c.connect();
    try {
      for (let i = 0; i < 3; i++) {
        const r = await c.query({
          name: 'by-id',
          text: 'SELECT id, ssn FROM customers WHERE id = $1',
          values: [1],
        });
        expect(r.rows).toHaveLength(1);
        expectNoSsn(JSON.stringify(r.rows));
      }
      await c.query('BEGIN');
      await c.query('DECLARE k CURSOR FOR SELECT ssn FROM customers');
      const fetched = await c.query('FETCH 10 FROM k');
      expect(fetched.rows).toHaveLength(2);
      expectNoSsn(JSON.stringify(fetched.rows));
      await c.query('COMMIT');
    } finally {
      await c.end();
    }
  });

  it('postgres.js prepared statements, pipelined', async () => {
    const sql = postgres({
      host: '127.0.0.1',
      port: proxy.port,
      database: DATABASE,
      user: 'demo',
      password: 'demo-secret',
      prepare: true,
      onnotice: () => {},
    });
    try {
      const results = await Promise.all(
        [1, 2, 1, 2].map((id) => sql`SELECT id, ssn FROM customers WHERE id = ${id}`),
      );
      expect(results.map((r) => r.length)).toEqual([1, 1, 1, 1]);
      expectNoSsn(JSON.stringify(results));
    } finally {
      await sql.end();
    }
  });
});
