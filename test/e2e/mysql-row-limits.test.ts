import { readFileSync } from 'node:fs';
import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { DEFAULT_GUARDRAIL } from '../../sidecar/src/policy/guardrails/default-guardrails.ts';
import { mysql as mysqlCli } from '../harness/mysql-cli.ts';
import { localUser, policyDocument } from '../support/policy-documents.ts';
import { directMysql, mysqlClient, mysqlProxyConfig } from './support/mysql.ts';
import { comQuery, RawMysqlClient } from './support/mysql-raw-client.ts';
import { type ProxyProcess, startProxyProcess } from './support/proxy-process.ts';

/**
 * Guardrail row limits on MySQL, measured by the database: whatever the WHERE clause looks like, a
 * statement that changes more rows than the limit is rolled back and refused, and nothing changes.
 */

const DATABASE = 'rl';
const ROWS = 3000;
const SCHEMA = `DROP DATABASE IF EXISTS rl; CREATE DATABASE rl; USE rl;
CREATE TABLE t(id int PRIMARY KEY, body varchar(40), x int) ENGINE=InnoDB;
INSERT INTO t SELECT seq, CONCAT('b', seq), seq FROM seq_1_to_${ROWS};
CREATE TABLE victim(id int PRIMARY KEY) ENGINE=InnoDB;
INSERT INTO victim SELECT seq FROM seq_1_to_2000;
CREATE TABLE tr(id int PRIMARY KEY) ENGINE=InnoDB;
INSERT INTO tr VALUES (1), (2);
CREATE TRIGGER tr_empties_victim AFTER DELETE ON tr FOR EACH ROW DELETE FROM victim;
CREATE TABLE parent(id int PRIMARY KEY) ENGINE=InnoDB;
INSERT INTO parent VALUES (1), (2);
CREATE TABLE child(id int PRIMARY KEY, p int, FOREIGN KEY (p) REFERENCES parent(id) ON DELETE CASCADE) ENGINE=InnoDB;
INSERT INTO child SELECT seq, 1 FROM seq_1_to_2500;
CREATE TABLE my(id int PRIMARY KEY) ENGINE=MyISAM;
INSERT INTO my VALUES (1), (2);
CREATE TABLE to_my(id int PRIMARY KEY) ENGINE=InnoDB;
INSERT INTO to_my VALUES (1);
CREATE TRIGGER to_my_writes_my AFTER DELETE ON to_my FOR EACH ROW DELETE FROM my WHERE id = OLD.id;`;

/** Routines that run as the proxy's database user (a definer of its own would need the admin class). */
const ROUTINES = (definer: string) => `USE rl;
CREATE DEFINER = ${definer} PROCEDURE wipe() DELETE FROM t WHERE id > 0;
CREATE DEFINER = ${definer} PROCEDURE wipe_and_commit() BEGIN DELETE FROM t WHERE id = 1; COMMIT; END;
CREATE DEFINER = ${definer} FUNCTION wipe_f() RETURNS int MODIFIES SQL DATA BEGIN DELETE FROM t WHERE id > 0; RETURN 1; END;`;

const server = inject('mariadb');
let proxy: ProxyProcess;
let admin: mysql.Connection;

/** Everything the statements below could change. */
async function snapshot(): Promise<string> {
  const [rows] = await admin.query(
    `SELECT (SELECT CONCAT(COUNT(*), ':', SUM(x), ':', SUM(CRC32(body))) FROM rl.t) AS t,
            (SELECT COUNT(*) FROM rl.victim) AS v, (SELECT COUNT(*) FROM rl.tr) AS tr,
            (SELECT COUNT(*) FROM rl.parent) AS p, (SELECT COUNT(*) FROM rl.child) AS c,
            (SELECT COUNT(*) FROM rl.my) AS m`,
  );
  return JSON.stringify(rows);
}

const client = (user = 'demo') =>
  mysqlClient(proxy.port, { user, password: `${user}-secret`, database: DATABASE, multipleStatements: true });

/** The first statement record that matches, waiting for the audit log to be written. */
async function auditRecord(
  matches: (r: Record<string, unknown>) => boolean,
): Promise<Record<string, unknown> | undefined> {
  for (let i = 0; i < 50; i++) {
    const found = readFileSync(proxy.auditFile!, 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .find((r) => r['type'] === 'statement' && matches(r));
    if (found) return found;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return undefined;
}

type Failure = { errno?: number; sqlMessage?: string } | undefined;
const failure = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: unknown) => e as Failure,
  );

beforeAll(async () => {
  admin = await directMysql(server);
  await admin.query(SCHEMA);
  await admin.query(`GRANT ALL PRIVILEGES ON rl.* TO '${server.users.native.user}'@'%'`);
  await admin.query(ROUTINES(`'${server.users.native.user}'@'%'`));
  const config = mysqlProxyConfig(server);
  (config['upstream'] as Record<string, unknown>)['database'] = DATABASE;
  // "limit" is under a row limit only, without the syntactic rules that catch some spellings first.
  const local = (config['identity'] as { local: { users: unknown[] } }).local;
  local.users.push(
    { name: 'limit', password: 'limit-secret' },
    { name: 'warned', password: 'warned-secret' },
    { name: 'dry', password: 'dry-secret' },
  );
  proxy = await startProxyProcess(config, {
    extraDocuments: [
      DEFAULT_GUARDRAIL,
      policyDocument('Guardrail', 'per-minute', {
        mode: 'enforce',
        rules: [{ name: 'minute', maxAffectedRowsPerMinute: 50, action: 'block' }],
      }),
      policyDocument('DatabaseAccess', 'demo', {
        subjects: [localUser('demo')],
        allow: ['read', 'write'],
        guardrails: ['gatehouse-defaults'],
      }),
      policyDocument('Guardrail', 'rows-only', {
        mode: 'enforce',
        rules: [{ name: 'rows', maxAffectedRows: 1000, action: 'block' }],
      }),
      policyDocument('DatabaseAccess', 'limit', {
        subjects: [localUser('limit')],
        allow: ['read', 'write'],
        guardrails: ['rows-only'],
      }),
      policyDocument('Guardrail', 'warn-rows', {
        mode: 'enforce',
        rules: [{ name: 'rows', maxAffectedRows: 10, action: 'warn' }],
      }),
      policyDocument('Guardrail', 'dry-rows', {
        mode: 'dryRun',
        rules: [{ name: 'rows', maxAffectedRows: 10, action: 'block' }],
      }),
      policyDocument('DatabaseAccess', 'dry', {
        subjects: [localUser('dry')],
        allow: ['read', 'write'],
        guardrails: ['dry-rows'],
      }),
      policyDocument('DatabaseAccess', 'warned', {
        subjects: [localUser('warned')],
        allow: ['read', 'write'],
        guardrails: ['warn-rows'],
      }),
      policyDocument('DatabaseAccess', 'admins', {
        subjects: [localUser('admin')],
        allow: ['read', 'write'],
        guardrails: ['per-minute'],
      }),
    ],
  });
});

afterAll(async () => {
  await proxy?.stop();
  await admin?.end();
});

/** Spellings of "every row of t" that no syntactic rule tells from a narrow filter. */
const EVERY_ROW: readonly string[] = [
  'DELETE FROM t WHERE id != -1',
  'DELETE FROM t WHERE id <> -1',
  'DELETE FROM t WHERE id NOT IN (-1)',
  'DELETE FROM t WHERE NOT (id = -1)',
  'DELETE FROM t WHERE id > 0',
  'DELETE FROM t WHERE NOT (x <=> NULL)',
  'DELETE FROM t WHERE x IS NOT NULL',
  'DELETE FROM t WHERE id = 1 OR id <> 1',
  "DELETE FROM t WHERE body LIKE '%'",
  "DELETE FROM t WHERE body REGEXP ''",
  'DELETE FROM t WHERE id BETWEEN -1000000 AND 1000000',
  'DELETE FROM t WHERE id IN (SELECT id FROM (SELECT id FROM t) s)',
  'DELETE FROM t WHERE 1 ORDER BY id LIMIT 100000',
  'DELETE FROM t WHERE COALESCE(id, 0) = id',
  'DELETE t FROM t JOIN t t2 ON t.id = t2.id',
  'DELETE FROM t WHERE id > 1 RETURNING id',
  'REPLACE INTO t SELECT * FROM t',
  'INSERT INTO t SELECT * FROM t s ON DUPLICATE KEY UPDATE x = t.x + 1',
  'UPDATE t SET x = -x WHERE id > 0',
  "UPDATE t SET body = CONCAT(body, '!') WHERE body LIKE 'b%'",
  'UPDATE t t1 JOIN t t2 ON t1.id = t2.id SET t1.x = t2.x + 1',
];

describe('a statement changing every row is rolled back and refused, however it is spelled', () => {
  for (const user of ['limit', 'demo'])
    for (const via of ['query', 'execute'] as const)
      for (const inTransaction of [false, true])
        it(`${user}: ${via}, ${inTransaction ? 'in a transaction' : 'autocommit'}`, async () => {
          const before = await snapshot();
          const c = await client(user);
          // demo is under the built-in guardrail, whose syntactic rules refuse some spellings first.
          const why =
            user === 'limit'
              ? /updated or deleted \d{4} rows, over the limit of 1000 \(maxAffectedRows\)/
              : /maxAffectedRows|without-where/;
          try {
            if (inTransaction) await c.query('START TRANSACTION');
            for (const sql of EVERY_ROW) {
              const error = await failure(via === 'query' ? c.query(sql) : c.execute(sql));
              expect(error?.errno, sql).toBe(1142);
              expect(error?.sqlMessage, `${sql}: ${error?.sqlMessage}`).toMatch(why);
            }
            // A LIKE bound to '%' is no different.
            const bound = await failure(c.execute('DELETE FROM t WHERE body LIKE ?', ['%']));
            expect(bound?.errno).toBe(1142);
            const [[state]] = (await c.query('SELECT @@in_transaction AS open')) as unknown as [
              [{ open: number }],
            ];
            expect(state?.open).toBe(inTransaction ? 1 : 0);
            if (inTransaction) await c.query('COMMIT');
          } finally {
            await c.end();
          }
          expect(await snapshot()).toBe(before);
        });

  it('the mysql command-line client gets the refusal too', async () => {
    const before = await snapshot();
    for (const sql of ['DELETE FROM t WHERE id > 0', 'UPDATE t SET x = x + 1 WHERE id != -1']) {
      const run = await mysqlCli(['-e', sql], {
        server,
        database: DATABASE,
        login: { user: 'limit', password: 'limit-secret' },
        port: proxy.port,
      });
      expect(run.stderr).toMatch(/ERROR 1142 .*maxAffectedRows/);
    }
    expect(await snapshot()).toBe(before);
  });
});

describe('what the database does beyond the statement counts or is refused', () => {
  it('counts the rows a trigger deletes from another table', async () => {
    const before = await snapshot();
    const c = await client('limit');
    try {
      const error = await failure(c.query('DELETE FROM tr WHERE id = 1'));
      expect(error?.errno).toBe(1142);
      expect(error?.sqlMessage, error?.sqlMessage).toMatch(/updated or deleted 2001 rows/);
    } finally {
      await c.end();
    }
    expect(await snapshot()).toBe(before);
  });

  it('refuses a one-row delete whose foreign keys cascade, which the counters cannot see', async () => {
    const before = await snapshot();
    const c = await client();
    try {
      for (const run of [
        () => c.query('DELETE FROM parent WHERE id = 1'),
        () => c.execute('DELETE FROM parent WHERE id = ?', [1]),
      ]) {
        const error = await failure(run());
        expect(error?.errno).toBe(1142);
        expect(error?.sqlMessage).toMatch(/CASCADE/);
      }
    } finally {
      await c.end();
    }
    expect(await snapshot()).toBe(before);
  });

  it('lets plain inserts into a parent of cascading foreign keys through: they cascade to nothing', async () => {
    const c = await client();
    try {
      await c.query('INSERT INTO parent (id) VALUES (900001)');
      await c.execute('INSERT INTO parent (id) VALUES (?)', [900002]);
      const upsert = await failure(
        c.query('INSERT INTO parent (id) VALUES (900001) ON DUPLICATE KEY UPDATE id = 900003'),
      );
      expect(upsert?.sqlMessage).toMatch(/CASCADE/);
    } finally {
      await admin.query('DELETE FROM rl.parent WHERE id >= 900001');
      await c.end();
    }
  });

  it('refuses writes to a non-transactional (MyISAM) table', async () => {
    const before = await snapshot();
    const c = await client();
    try {
      const error = await failure(c.query('DELETE FROM my WHERE id = 1'));
      expect(error?.errno).toBe(1142);
      expect(error?.sqlMessage).toMatch(/not transactional/);
    } finally {
      await c.end();
    }
    expect(await snapshot()).toBe(before);
  });

  it('refuses a write with COMMIT in the same text, which would keep rows before they are counted', async () => {
    const before = await snapshot();
    const c = await client();
    try {
      const error = await failure(c.query('START TRANSACTION; DELETE FROM t WHERE id = 1; COMMIT'));
      expect(error?.errno).toBe(1142);
    } finally {
      await c.end();
    }
    expect(await snapshot()).toBe(before);
  });
});

describe('statements that reach the rows another way', () => {
  const cases: readonly [string, string, RegExp][] = [
    ['a procedure', 'CALL wipe()', /updated or deleted 3000 rows/],
    ['a function in a SELECT', 'SELECT wipe_f() AS done', /updated or deleted 3000 rows/],
    [
      'two statements in one text',
      'DELETE FROM t WHERE id <= 600; DELETE FROM t WHERE id > 2400',
      /1200 rows/,
    ],
    ['an SQL PREPARE', "PREPARE s FROM 'DELETE FROM t WHERE id > 0'; EXECUTE s", /3000 rows/],
    ['a procedure that commits', 'CALL wipe_and_commit()', /(ends or commits|ends) the transaction/],
    ['a trigger writing a MyISAM table', 'DELETE FROM to_my WHERE id = 1', /not transactional/],
  ];
  it.each(cases)('%s', async (_name, sql, why) => {
    const before = await snapshot();
    const [[toMy]] = (await admin.query('SELECT COUNT(*) AS n FROM rl.to_my')) as unknown as [
      [{ n: number }],
    ];
    const c = await client('limit');
    try {
      const error = await failure(c.query(sql));
      expect(error?.errno, error?.sqlMessage).toBe(1142);
      expect(error?.sqlMessage).toMatch(why);
    } finally {
      await c.end();
    }
    expect(await snapshot()).toBe(before);
    const [[after]] = (await admin.query('SELECT COUNT(*) AS n FROM rl.to_my')) as unknown as [
      [{ n: number }],
    ];
    expect(after?.n).toBe(toMy?.n);
  });

  it('with autocommit off, the statement is rolled back to its savepoint and the transaction goes on', async () => {
    const before = await snapshot();
    const c = await client('limit');
    try {
      await c.query('SET autocommit = 0');
      await c.query('UPDATE t SET x = 0 WHERE id = 9');
      expect((await failure(c.query('DELETE FROM t WHERE id > 0')))?.errno).toBe(1142);
      const [[row]] = (await c.query('SELECT x FROM t WHERE id = 9')) as unknown as [[{ x: number }]];
      expect(row?.x).toBe(0);
      await c.query('ROLLBACK');
    } finally {
      await c.end();
    }
    expect(await snapshot()).toBe(before);
  });

  it('pipelined commands wait for the count: the next one sees the rows rolled back', async () => {
    const before = await snapshot();
    const raw = await RawMysqlClient.login(proxy.port, 'limit', 'limit-secret');
    try {
      raw.socket.write(
        Buffer.concat([comQuery('DELETE FROM t WHERE id > 0'), comQuery('SELECT COUNT(*) FROM t')]),
      );
      const refused = await raw.next();
      expect(refused.payload[0]).toBe(0xff);
      expect(refused.payload.readUInt16LE(1)).toBe(1142);
      expect((await raw.next()).payload[0]).toBe(1);
      await raw.next();
      expect((await raw.next()).payload.toString('utf8', 1)).toBe(String(ROWS));
    } finally {
      raw.close();
    }
    expect(await snapshot()).toBe(before);
  });

  it('a table created outside the proxy is looked up; a MyISAM one is refused, an InnoDB one counted', async () => {
    await admin.query(
      'CREATE TABLE rl.later_my(id int PRIMARY KEY) ENGINE=MyISAM; INSERT INTO rl.later_my VALUES (1)',
    );
    await admin.query(
      'CREATE TABLE rl.later_inno(id int PRIMARY KEY) ENGINE=InnoDB; INSERT INTO rl.later_inno VALUES (1), (2)',
    );
    const c = await client('limit');
    try {
      expect((await failure(c.query('DELETE FROM later_my WHERE id = 1')))?.sqlMessage).toMatch(
        /not transactional/,
      );
      const [done] = (await c.query('DELETE FROM later_inno WHERE id = 1')) as unknown as [
        { affectedRows: number },
      ];
      expect(done.affectedRows).toBe(1);
    } finally {
      await c.end();
    }
    const [[my]] = (await admin.query('SELECT COUNT(*) AS n FROM rl.later_my')) as unknown as [
      [{ n: number }],
    ];
    expect(my?.n).toBe(1);
  });

  it('a warn limit measures and records, and lets the statement run', async () => {
    const c = await client('warned');
    try {
      const [changed] = (await c.query('UPDATE t SET x = -x WHERE id <= 20')) as unknown as [
        { affectedRows: number },
      ];
      expect(changed.affectedRows).toBe(20);
    } finally {
      await c.query('UPDATE t SET x = -x WHERE id <= 20');
      await c.end();
    }
    const record = await auditRecord(
      (r) =>
        r['outcome'] === 'ok' && String(r['reason']).includes('warning: warn-rows/rows: 20 rows over 10'),
    );
    expect(record?.['rowsChanged']).toBe(20);
  });

  it('a dryRun guardrail measures and records what it would have refused', async () => {
    const c = await client('dry');
    try {
      const [changed] = (await c.execute('UPDATE t SET x = -x WHERE id <= ?', [30])) as unknown as [
        { affectedRows: number },
      ];
      expect(changed.affectedRows).toBe(30);
      // What it cannot count runs too, with a note.
      await c.query('DELETE FROM my WHERE id = 99');
    } finally {
      await c.query('UPDATE t SET x = -x WHERE id <= 30');
      await c.end();
    }
    const record = await auditRecord(
      (r) =>
        r['outcome'] === 'ok' &&
        String(r['reason']).includes('dry run: dry-rows/rows would block: 30 rows over 10'),
    );
    expect(record?.['rowsChanged']).toBe(30);
    expect(
      await auditRecord(
        (r) =>
          r['outcome'] === 'ok' &&
          String(r['reason']).includes('row limit not measured') &&
          String(r['reason']).includes('not transactional'),
      ),
    ).toBeDefined();
  });
});

describe('the limit holds across a transaction and across transactions', () => {
  it('two half-table deletes in one transaction: the second is refused, the first stays for the client to decide', async () => {
    const before = await snapshot();
    const c = await client();
    try {
      await c.query('START TRANSACTION');
      const [first] = (await c.query('DELETE FROM t WHERE id <= 700')) as unknown as [
        { affectedRows: number },
      ];
      expect(first.affectedRows).toBe(700);
      const error = await failure(c.query('DELETE FROM t WHERE id > 2300'));
      expect(error?.errno).toBe(1142);
      expect(error?.sqlMessage).toMatch(/its transaction updated or deleted 1400 rows/);
      const [[count]] = (await c.query('SELECT COUNT(*) AS n FROM t')) as unknown as [[{ n: number }]];
      expect(count?.n).toBe(ROWS - 700);
      // A small one still fits: 700 + 100.
      const [third] = (await c.execute(
        'DELETE FROM t WHERE id > ? AND id <= ?',
        [2900, 3000],
      )) as unknown as [{ affectedRows: number }];
      expect(third.affectedRows).toBe(100);
      await c.query('ROLLBACK');
    } finally {
      await c.end();
    }
    expect(await snapshot()).toBe(before);
  });

  it('maxAffectedRowsPerMinute stops the same change spread over many transactions', async () => {
    const c = await client('admin');
    try {
      for (let i = 0; i < 5; i++) {
        const [result] = (await c.execute('UPDATE t SET x = x + 1 WHERE id > ? AND id <= ?', [
          i * 10,
          i * 10 + 10,
        ])) as unknown as [{ affectedRows: number }];
        expect(result.affectedRows).toBe(10);
      }
      const before = await snapshot();
      const error = await failure(c.execute('UPDATE t SET x = x + 1 WHERE id > ? AND id <= ?', [50, 60]));
      expect(error?.errno).toBe(1142);
      expect(error?.sqlMessage).toMatch(/60 rows in the last minute, over the limit of 50/);
      expect(await snapshot()).toBe(before);
    } finally {
      await c.query('UPDATE t SET x = id WHERE id <= 50').catch(() => undefined);
      await c.end();
    }
    await admin.query('UPDATE rl.t SET x = id WHERE id <= 60');
  });
});

describe('narrow statements run as before', () => {
  it('updates and deletes by key, autocommit and in a transaction, text and prepared', async () => {
    const c = await client();
    try {
      const [u] = (await c.query('UPDATE t SET x = 7 WHERE id = 5')) as unknown as [{ affectedRows: number }];
      expect(u.affectedRows).toBe(1);
      const [[direct]] = (await admin.query('SELECT x FROM rl.t WHERE id = 5')) as unknown as [
        [{ x: number }],
      ];
      expect(direct?.x).toBe(7);
      const [[open]] = (await c.query('SELECT @@in_transaction AS open')) as unknown as [[{ open: number }]];
      expect(open?.open).toBe(0);
      const [e] = (await c.execute('UPDATE t SET x = ? WHERE id = ?', [5, 5])) as unknown as [
        { affectedRows: number },
      ];
      expect(e.affectedRows).toBe(1);
      const [returned] = (await c.query('DELETE FROM t WHERE id = 6 RETURNING id, body')) as unknown as [
        unknown[],
      ];
      expect(returned).toEqual([{ id: 6, body: 'b6' }]);
      await c.query("INSERT INTO t VALUES (6, 'b6', 6)");
      await c.query('START TRANSACTION');
      await c.execute('DELETE FROM t WHERE id = ?', [7]);
      await c.query("INSERT INTO t VALUES (7, 'b7', 7)");
      await c.query('COMMIT');
      const [[after]] = (await admin.query('SELECT COUNT(*) AS n FROM rl.t')) as unknown as [[{ n: number }]];
      expect(after?.n).toBe(ROWS);
    } finally {
      await c.end();
    }
  });

  it('audits the count, and never the proxy own statements', async () => {
    const c = await client('limit');
    try {
      await c.query('UPDATE t SET x = 5 WHERE id = 5');
      await failure(c.query('DELETE FROM t WHERE id > 0'));
    } finally {
      await c.end();
    }
    const read = () =>
      readFileSync(proxy.auditFile!, 'utf8')
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as Record<string, unknown>)
        .filter((r) => r['type'] === 'statement' || r['type'] === 'statement.start');
    const refusedOf = (records: Record<string, unknown>[]) =>
      records.find(
        (r) =>
          r['outcome'] === 'refused' &&
          String(r['reason']).includes('rows-only: rows; 3000 rows in the transaction'),
      );
    let records = read();
    for (let i = 0; i < 50 && !refusedOf(records); i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      records = read();
    }
    expect(JSON.stringify(records)).not.toMatch(/SESSION_STATUS|gatehouse row limit/i);
    const refused = refusedOf(records);
    expect(refused?.['rowsChanged']).toBe(ROWS);
    const ok = records.find(
      (r) => r['outcome'] === 'ok' && r['statement'] === 'UPDATE t SET x = ? WHERE id = ?',
    );
    expect(ok?.['rowsChanged']).toBe(1);
  });
});
