import pg from 'pg';
import { serialize } from 'pg-protocol';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { DEFAULT_GUARDRAIL } from '../../sidecar/src/policy/guardrails/default-guardrails.ts';
import { localUser, policyDocument } from '../support/policy-documents.ts';
import { freshDatabase, localProxyConfig, psql } from './support/clients.ts';
import { type ProxyProcess, startProxyProcess } from './support/proxy-process.ts';
import { RawClient } from './support/raw-client.ts';

/**
 * The analyser reads what the server reads (issue 12, class 1): however a session comes to have
 * standard_conforming_strings off or a client_encoding Gatehouse does not read, a text the server
 * would read differently is refused, against the real PostgreSQL 15.
 */
const pgInfo = inject('postgres');
const DATABASE = 'server_reading';
const ROWS = 20;
/** One string to the analyser (`x = 'a\'`, then `AND id = 1`); `OR true` to a server with standard_conforming_strings off. */
const ATTACK = "DELETE FROM v WHERE x = 'a\\' AND id = 1 -- ' OR true OR x = 'z'";
let proxy: ProxyProcess;
let admin: pg.Client;

async function rowCount(): Promise<number> {
  return Number((await admin.query('SELECT count(*) AS n FROM v')).rows[0].n);
}

async function client(user = 'demo', options?: string): Promise<pg.Client> {
  const c = new pg.Client({
    host: '127.0.0.1',
    port: proxy.port,
    database: DATABASE,
    user,
    password: `${user}-secret`,
    ...(options && { options }),
  });
  c.on('error', () => {});
  await c.connect();
  return c;
}

const extended = (text: string) => ({ text, queryMode: 'extended' }) as pg.QueryConfig;
const failure = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: unknown) => e as { code?: string; message?: string },
  );

beforeAll(async () => {
  admin = await freshDatabase(pgInfo, DATABASE);
  await admin.query('CREATE TABLE v(id int PRIMARY KEY, x text)');
  await admin.query(`INSERT INTO v SELECT g, 'row ' || g FROM generate_series(1, ${ROWS}) g`);
  await admin.query(
    `CREATE FUNCTION scs_off() RETURNS void LANGUAGE plpgsql AS $$ BEGIN PERFORM set_config('standard_conforming_strings', 'off', false); END $$`,
  );
  const config = localProxyConfig(pgInfo);
  (config['upstream'] as Record<string, unknown>)['database'] = DATABASE;
  proxy = await startProxyProcess(config, {
    extraDocuments: [
      DEFAULT_GUARDRAIL,
      policyDocument('DatabaseAccess', 'demo', {
        subjects: [localUser('demo')],
        allow: ['read', 'write'],
        guardrails: ['gatehouse-defaults'],
      }),
      policyDocument('DatabaseAccess', 'admin', {
        subjects: [localUser('admin')],
        allow: ['read', 'write', 'ddl', 'admin'],
      }),
    ],
  });
});

beforeEach(async () => {
  // A failing case must not hide the next one.
  await admin.query(
    `INSERT INTO v SELECT g, 'row ' || g FROM generate_series(1, ${ROWS}) g ON CONFLICT DO NOTHING`,
  );
});

afterAll(async () => {
  await proxy?.stop();
  await admin?.query(`ALTER DATABASE ${DATABASE} RESET ALL`).catch(() => {});
  await admin?.end();
});

describe('a session that turns standard_conforming_strings off', () => {
  const SPELLINGS = [
    'SET standard_conforming_strings = off',
    'SET standard_conforming_strings TO off',
    "SET standard_conforming_strings = 'off'",
    'SET SESSION standard_conforming_strings = false',
    "SET session standard_conforming_strings TO 'false'",
    'SET standard_conforming_strings = 0',
    'SET standard_conforming_strings = no',
    'SET "standard_conforming_strings" = of',
    'SET STANDARD_CONFORMING_STRINGS = OFF',
    'BEGIN; SET LOCAL standard_conforming_strings = off',
    "SELECT set_config('standard_conforming_strings', 'off', false)",
    "SELECT pg_catalog.set_config('standard_conforming_strings', 'false', false)",
    "SELECT 1 FROM (SELECT set_config('standard_conforming_strings', 'off', false)) s",
    "WITH s AS (SELECT set_config('standard_conforming_strings', 'off', false)) SELECT * FROM s",
    "SELECT set_config(U&'standard\\005fconforming_strings', 'off', false)",
    "SELECT (SELECT set_config('standard_conforming_strings', 'off', false)) AS s",
  ];

  it.each(SPELLINGS)(
    '%s is refused, and the attack after it deletes nothing (simple protocol)',
    async (set) => {
      const c = await client();
      try {
        const error = await failure(c.query(set));
        expect(error?.code).toBe('42501');
        expect(error?.message).toMatch(/standard_conforming_strings/);
        if (set.startsWith('BEGIN')) await c.query('ROLLBACK');
        const shown = await c.query('SHOW standard_conforming_strings');
        expect(shown.rows[0].standard_conforming_strings).toBe('on');
        await c.query(ATTACK);
      } finally {
        await c.end();
      }
      expect(await rowCount()).toBe(ROWS);
    },
  );

  it.each(SPELLINGS.filter((s) => !s.startsWith('BEGIN')))(
    '%s is refused (extended protocol)',
    async (set) => {
      const c = await client();
      try {
        const error = await failure(c.query(extended(set)));
        expect(error?.code).toBe('42501');
        await c.query(extended(ATTACK));
      } finally {
        await c.end();
      }
      expect(await rowCount()).toBe(ROWS);
    },
  );

  it('is followed when a function the proxy cannot read turns it off: the server reports it', async () => {
    const c = await client('admin');
    try {
      await c.query('SELECT scs_off()');
      expect((await c.query('SHOW standard_conforming_strings')).rows[0].standard_conforming_strings).toBe(
        'off',
      );
      for (const q of [ATTACK, extended(ATTACK)]) {
        const error = await failure(c.query(q));
        expect(error?.code).toBe('42501');
        expect(error?.message).toMatch(/standard_conforming_strings is not on/);
      }
      // Texts both readings agree on still run.
      expect((await c.query("SELECT E'a\\'b' AS s, 'plain' AS p, $$a\\b$$ AS d")).rows).toEqual([
        { s: "a'b", p: 'plain', d: 'a\\b' },
      ]);
      // RESET returns to the startup value, which the server reports again.
      await c.query('RESET standard_conforming_strings');
      await c.query("SELECT 'a\\b' AS s");
    } finally {
      await c.end();
    }
    expect(await rowCount()).toBe(ROWS);
  });

  it('is followed when it is turned off in a transaction that is then rolled back', async () => {
    const c = await client('admin');
    try {
      await c.query('BEGIN');
      await c.query('SELECT scs_off()');
      expect((await failure(c.query(ATTACK)))?.code).toBe('42501');
      await c.query('ROLLBACK');
      // The server restored it and said so.
      expect((await c.query("SELECT 'a\\b' AS s")).rows).toEqual([{ s: 'a\\b' }]);
    } finally {
      await c.end();
    }
  });

  it('refuses a text pipelined behind a statement that may change the reading', async () => {
    const raw = await RawClient.login(proxy.port, 'admin', 'admin-secret');
    const errors: string[] = [];
    raw.onMessage((m) => {
      if (m.name === 'error') errors.push((m as unknown as { message: string }).message);
    });
    try {
      let ready = 0;
      const both = new Promise<void>((resolve) =>
        raw.onMessage((m) => {
          if (m.name === 'readyForQuery' && ++ready === 2) resolve();
        }),
      );
      raw.socket.write(Buffer.concat([serialize.query('SELECT scs_off()'), serialize.query(ATTACK)]));
      await both;
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatch(/before an earlier statement finished/);
    } finally {
      raw.close();
    }
    expect(await rowCount()).toBe(ROWS);
  });
});

describe('without any policy (audit only)', () => {
  it('turning standard_conforming_strings off is refused, and so is the attack after a function did', async () => {
    const config = localProxyConfig(pgInfo);
    (config['upstream'] as Record<string, unknown>)['database'] = DATABASE;
    const bare = await startProxyProcess(config);
    try {
      const c = new pg.Client({
        host: '127.0.0.1',
        port: bare.port,
        database: DATABASE,
        user: 'demo',
        password: 'demo-secret',
      });
      c.on('error', () => {});
      await c.connect();
      try {
        expect((await failure(c.query('SET standard_conforming_strings = off')))?.code).toBe('42501');
        await c.query('SELECT scs_off()');
        expect((await failure(c.query(ATTACK)))?.code).toBe('42501');
      } finally {
        await c.end();
      }
    } finally {
      await bare.stop();
    }
    expect(await rowCount()).toBe(ROWS);
  });
});

describe('a session that starts with standard_conforming_strings off', () => {
  it.each([
    '-c standard_conforming_strings=off',
    '-cstandard_conforming_strings=false',
    '--standard_conforming_strings=off',
    '--standard-conforming-strings=0',
  ])('through options %s', async (options) => {
    const c = await client('demo', options);
    try {
      expect((await c.query('SHOW standard_conforming_strings')).rows[0].standard_conforming_strings).toBe(
        'off',
      );
      expect((await failure(c.query(ATTACK)))?.code).toBe('42501');
      expect((await failure(c.query(extended(ATTACK))))?.code).toBe('42501');
      expect((await c.query('SELECT count(*)::int AS n FROM v WHERE id = 1')).rows).toEqual([{ n: 1 }]);
    } finally {
      await c.end();
    }
    expect(await rowCount()).toBe(ROWS);
  });

  it('through a startup parameter of its own', async () => {
    const raw = await RawClient.connect(proxy.port);
    const errors: string[] = [];
    raw.onMessage((m) => {
      if (m.name === 'authenticationCleartextPassword') raw.socket.write(serialize.password('demo-secret'));
      if (m.name === 'error') errors.push((m as unknown as { message: string }).message);
    });
    try {
      const ready = raw.waitFor('readyForQuery');
      raw.socket.write(
        serialize.startup({ user: 'demo', database: DATABASE, standard_conforming_strings: 'off' }),
      );
      await ready;
      const answered = raw.waitFor('readyForQuery', false);
      raw.query(ATTACK);
      await answered;
      expect(errors.join('\n')).toMatch(/standard_conforming_strings is not on/);
    } finally {
      raw.close();
    }
    expect(await rowCount()).toBe(ROWS);
  });

  it('through PGOPTIONS with psql', async () => {
    const result = await psql(
      `host=127.0.0.1 port=${proxy.port} dbname=${DATABASE} user=demo password=demo-secret sslmode=disable`,
      ['-c', ATTACK],
      { env: { PGOPTIONS: '-c standard_conforming_strings=off' } },
    );
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/standard_conforming_strings is not on/);
    expect(await rowCount()).toBe(ROWS);
  });

  it.each([
    `ALTER DATABASE ${DATABASE} SET standard_conforming_strings = off`,
    `ALTER ROLE ${pgInfo.admin.user} IN DATABASE ${DATABASE} SET standard_conforming_strings = off`,
  ])('through a default the database applies silently: %s', async (alter) => {
    await admin.query(alter);
    try {
      const c = await client();
      try {
        expect((await c.query('SHOW standard_conforming_strings')).rows[0].standard_conforming_strings).toBe(
          'off',
        );
        expect((await failure(c.query(ATTACK)))?.code).toBe('42501');
        expect((await failure(c.query(extended(ATTACK))))?.code).toBe('42501');
        // Setting it on makes backslash strings readable again.
        await c.query('SET standard_conforming_strings = on');
        expect((await c.query("SELECT 'a\\b' AS s")).rows).toEqual([{ s: 'a\\b' }]);
        // DISCARD ALL and RESET return to the database's default, which the server reports.
        await c.query('DISCARD ALL');
        expect((await failure(c.query(ATTACK)))?.code).toBe('42501');
      } finally {
        await c.end();
      }
    } finally {
      await admin.query(`ALTER DATABASE ${DATABASE} RESET ALL`);
      await admin.query(`ALTER ROLE ${pgInfo.admin.user} IN DATABASE ${DATABASE} RESET ALL`);
    }
    expect(await rowCount()).toBe(ROWS);
  });

  it.each([
    `ALTER DATABASE ${DATABASE} SET standard_conforming_strings = off`,
    `ALTER ROLE demo SET standard_conforming_strings TO off`,
    'ALTER SYSTEM SET standard_conforming_strings = off',
  ])('the proxy refuses %s even for an identity that may run it', async (sql) => {
    const c = await client('admin');
    try {
      const error = await failure(c.query(sql));
      expect(error?.code).toBe('42501');
      expect(error?.message).toMatch(/standard_conforming_strings/);
    } finally {
      await c.end();
    }
  });
});

describe('client encodings Gatehouse does not read', () => {
  it.each(['SJIS', 'BIG5', 'GBK', 'LATIN1'])('with %s only ASCII texts run', async (encoding) => {
    const c = await client();
    try {
      await c.query(`SET client_encoding = '${encoding}'`);
      expect((await c.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
      const error = await failure(c.query("SELECT 'caf\u00e9' AS s"));
      expect(error?.code).toBe('42501');
      expect(error?.message).toMatch(new RegExp(`client_encoding ${encoding}`));
    } finally {
      await c.end();
    }
  });

  it('a multibyte character that swallows a backslash in SJIS deletes nothing', async () => {
    const raw = await RawClient.login(proxy.port, 'demo', 'demo-secret');
    const errors: string[] = [];
    raw.onMessage((m) => {
      if (m.name === 'error') errors.push((m as unknown as { message: string }).message);
    });
    try {
      const set = raw.waitFor('readyForQuery');
      raw.query("SET client_encoding = 'SJIS'");
      await set;
      // 0x95 0x5C is one SJIS character: the server sees E'<char>' OR true --'.
      const sql = Buffer.concat([
        Buffer.from("DELETE FROM v WHERE x = E'"),
        Buffer.from([0x95, 0x5c]),
        Buffer.from("' OR true --'"),
      ]);
      const body = Buffer.concat([sql, Buffer.from([0])]);
      const frame = Buffer.alloc(5);
      frame.write('Q');
      frame.writeInt32BE(4 + body.length, 1);
      const answered = raw.waitFor('readyForQuery', false);
      raw.socket.write(Buffer.concat([frame, body]));
      await answered;
      expect(errors.join('\n')).toMatch(/Gatehouse/);
    } finally {
      raw.close();
    }
    expect(await rowCount()).toBe(ROWS);
  });
});
