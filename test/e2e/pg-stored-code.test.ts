import { readFileSync } from 'node:fs';
import type pg from 'pg';
import { serialize } from 'pg-protocol';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { DEFAULT_GUARDRAIL } from '../../sidecar/src/policy/guardrails/default-guardrails.ts';
import { localUser, policyDocument } from '../support/policy-documents.ts';
import { freshDatabase, localProxyConfig, pgClient } from './support/clients.ts';
import { type ProxyProcess, startProxyProcess } from './support/proxy-process.ts';
import { RawClient } from './support/raw-client.ts';

/*
 * Guardrails see into stored code: a statement that calls a user function, writes a table with
 * triggers, rules or defaults, or reads a view, is judged by what that code does. The harmful
 * routines below are called in many positions, through both protocols, and the data is checked
 * unchanged in the database after every refusal.
 */

const pgInfo = inject('postgres');
const DATABASE = 'stored_code_guardrails';
let proxy: ProxyProcess;
let admin: pg.Client;

const SCHEMA = `
CREATE TABLE v(id int PRIMARY KEY, x text);
INSERT INTO v SELECT g, 'row ' || g FROM generate_series(1, 50) g;
CREATE TABLE log(msg text);

-- Harmful: each empties or rewrites v, drops it, or runs SQL built at run time.
CREATE FUNCTION gh_d() RETURNS void LANGUAGE sql AS 'DELETE FROM v';
CREATE FUNCTION gh_d_int() RETURNS int LANGUAGE sql AS 'DELETE FROM v RETURNING 1';
CREATE FUNCTION gh_u() RETURNS int LANGUAGE sql AS $$UPDATE v SET x = 'gone'; SELECT 1$$;
CREATE FUNCTION gh_atomic() RETURNS int LANGUAGE sql BEGIN ATOMIC DELETE FROM v; SELECT 1; END;
CREATE FUNCTION gh_pl() RETURNS int LANGUAGE plpgsql AS $$BEGIN DELETE FROM v; RETURN 1; END$$;
CREATE FUNCTION gh_stable_liar() RETURNS int LANGUAGE plpgsql STABLE AS $$BEGIN PERFORM gh_d(); RETURN 1; END$$;
CREATE FUNCTION gh_immutable_liar(int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$BEGIN PERFORM gh_pl(); RETURN $1; END$$;
CREATE FUNCTION gh_drop() RETURNS int LANGUAGE plpgsql AS $$BEGIN DROP TABLE v; RETURN 1; END$$;
CREATE FUNCTION gh_exec(q text) RETURNS int LANGUAGE plpgsql AS $$BEGIN EXECUTE q; RETURN 1; END$$;
CREATE FUNCTION gh_exec_const() RETURNS int LANGUAGE plpgsql AS $$BEGIN EXECUTE 'DELETE FROM v'; RETURN 1; END$$;
CREATE FUNCTION gh_srf() RETURNS SETOF int LANGUAGE plpgsql AS $$BEGIN DELETE FROM v; RETURN QUERY SELECT 1; END$$;
CREATE FUNCTION gh_mid() RETURNS int LANGUAGE plpgsql AS $$BEGIN RETURN gh_pl(); END$$;
CREATE FUNCTION gh_outer() RETURNS int LANGUAGE sql AS 'SELECT gh_mid()';
CREATE FUNCTION gh_python_like() RETURNS int LANGUAGE plpgsql AS $$DECLARE s text := 'DELETE FROM v'; BEGIN EXECUTE s; RETURN 1; END$$;
CREATE FUNCTION gh_overloaded(int) RETURNS int LANGUAGE sql AS 'SELECT $1';
CREATE FUNCTION gh_overloaded(text) RETURNS int LANGUAGE sql AS 'DELETE FROM v RETURNING 1';
CREATE SCHEMA "My Schema";
CREATE FUNCTION "My Schema"."Del V"() RETURNS int LANGUAGE sql AS 'DELETE FROM public.v RETURNING 1';
CREATE SCHEMA shadow;
CREATE FUNCTION shadow.lower(text) RETURNS text LANGUAGE sql AS $$DELETE FROM public.v RETURNING 'x'$$;
CREATE FUNCTION gh_recursive(n int) RETURNS int LANGUAGE plpgsql AS
  $$BEGIN IF n > 0 THEN RETURN gh_recursive(n - 1); END IF; DELETE FROM v; RETURN 0; END$$;
CREATE PROCEDURE gh_p() LANGUAGE plpgsql AS $$BEGIN DELETE FROM v; END$$;
-- Calls a function created only later, directly on the database (see the fast-path tests).
CREATE FUNCTION gh_fp_later() RETURNS int LANGUAGE plpgsql AS $$BEGIN RETURN gh_fp_missing(); END$$;
CREATE FUNCTION gh_fp_narrow() RETURNS int LANGUAGE sql AS 'DELETE FROM v WHERE id = 50 RETURNING 1';
CREATE PROCEDURE gh_p_sql() LANGUAGE sql AS $$UPDATE v SET x = NULL$$;
CREATE FUNCTION gh_op_fn(int, int) RETURNS bool LANGUAGE sql AS 'DELETE FROM v RETURNING true';
CREATE OPERATOR ### (LEFTARG = int, RIGHTARG = int, FUNCTION = gh_op_fn);
CREATE FUNCTION gh_sfunc(int, int) RETURNS int LANGUAGE plpgsql AS $$BEGIN DELETE FROM v; RETURN 0; END$$;
CREATE AGGREGATE gh_agg(int) (SFUNC = gh_sfunc, STYPE = int);
CREATE VIEW gh_view AS SELECT gh_d_int() AS n;
CREATE VIEW gh_view_outer AS SELECT * FROM gh_view;
CREATE TABLE with_default(id int, n int DEFAULT gh_d_int());
CREATE TABLE with_check(id int, n int CHECK (gh_overloaded('x') > 0));
CREATE DOMAIN gh_dom AS int CHECK (gh_overloaded('x') > 0);
CREATE TABLE with_domain(id int, n gh_dom);
CREATE FUNCTION gh_trigger_fn() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN DELETE FROM v; RETURN NEW; END$$;
CREATE TABLE with_trigger(id int);
CREATE TRIGGER empties_v BEFORE INSERT ON with_trigger FOR EACH ROW EXECUTE FUNCTION gh_trigger_fn();
CREATE TABLE parent(id int PRIMARY KEY);
INSERT INTO parent VALUES (1);
CREATE TABLE child(id int REFERENCES parent ON DELETE CASCADE);
INSERT INTO child VALUES (1);
CREATE TRIGGER empties_v_too AFTER DELETE ON child FOR EACH ROW EXECUTE FUNCTION gh_trigger_fn();
CREATE TABLE with_rule(id int);
CREATE RULE empties_v AS ON INSERT TO with_rule DO ALSO DELETE FROM v;

-- Harmless: reads, arithmetic, a trigger that only shapes the new row, a procedure that logs.
CREATE FUNCTION ok_add(int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT $1 + 1';
CREATE FUNCTION ok_count() RETURNS bigint LANGUAGE plpgsql STABLE AS $$BEGIN RETURN (SELECT count(*) FROM v); END$$;
CREATE FUNCTION ok_atomic(int) RETURNS int LANGUAGE sql RETURN $1 * 2;
CREATE FUNCTION ok_outer(int) RETURNS int LANGUAGE sql AS 'SELECT ok_add(ok_atomic($1))';
CREATE PROCEDURE ok_log(m text) LANGUAGE sql AS $$INSERT INTO log VALUES (m)$$;
CREATE FUNCTION ok_upper_fn() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN NEW.msg := upper(NEW.msg); RETURN NEW; END$$;
CREATE TABLE shaped(msg text);
CREATE TRIGGER shapes BEFORE INSERT ON shaped FOR EACH ROW EXECUTE FUNCTION ok_upper_fn();
CREATE VIEW ok_view AS SELECT id, ok_add(id) AS next FROM v;`;

/** What a refused statement could have changed: v's rows and the table itself. */
async function state(): Promise<string> {
  const { rows } = await admin.query(
    `SELECT count(*)::int AS n, md5(string_agg(id || ':' || coalesce(x, '~'), ',' ORDER BY id)) AS sum FROM v`,
  );
  return JSON.stringify(rows[0]);
}

async function client(user = 'demo'): Promise<pg.Client> {
  const c = await pgClient(proxy.port, user, `${user}-secret`, DATABASE);
  c.on('error', () => {});
  return c;
}

const extended = (text: string) => ({ text, queryMode: 'extended' }) as pg.QueryConfig;

async function outcome(
  c: pg.Client,
  query: string | pg.QueryConfig,
): Promise<{ code?: string; message?: string }> {
  return c.query(query).then(
    () => ({ code: 'ok' }),
    (e: { code?: string; message?: string }) => e,
  );
}

beforeAll(async () => {
  admin = await freshDatabase(pgInfo, DATABASE);
  await admin.query(SCHEMA);
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
      policyDocument('DatabaseAccess', 'owner', {
        subjects: [localUser('admin')],
        allow: ['read', 'write', 'ddl'],
      }),
    ],
  });
});

afterAll(async () => {
  await proxy?.stop();
  await admin?.end();
});

/** Calls that run a harmful body, as an expression `f` may be placed in a statement. */
const HARMFUL_CALLS = [
  'gh_d_int()',
  'gh_u()',
  'gh_atomic()',
  'gh_pl()',
  'gh_stable_liar()',
  'gh_immutable_liar(1)',
  'gh_drop()',
  "gh_exec('DELETE FROM v')",
  'gh_exec_const()',
  'gh_outer()',
  'gh_python_like()',
  'gh_overloaded(1)',
  '"My Schema"."Del V"()',
  '"My Schema"."Del V" ( )',
  'public.gh_pl()',
  'PUBLIC.GH_PL()',
  '"gh_pl"()',
  'gh_recursive(3)',
  'pg_catalog.abs(gh_d_int())',
];

/** Places for an expression: select list, WHERE, FROM, CTE, VALUES, subqueries, CASE, ORDER BY... */
const POSITIONS: readonly ((f: string) => string)[] = [
  (f) => `SELECT ${f}`,
  (f) => `SELECT 1 WHERE ${f} IS NOT NULL`,
  (f) => `SELECT * FROM ${f} AS t`,
  (f) => `SELECT * FROM v, LATERAL (SELECT ${f}) AS l LIMIT 1`,
  (f) => `WITH a AS (SELECT ${f} AS n) SELECT n FROM a`,
  (f) => `VALUES (${f})`,
  (f) => `SELECT (SELECT ${f})`,
  (f) => `SELECT CASE WHEN true THEN ${f} END`,
  (f) => `SELECT coalesce(NULL, ${f})`,
  (f) => `SELECT id FROM v ORDER BY ${f} LIMIT 1`,
  (f) => `SELECT count(*) FROM v GROUP BY ${f}`,
  (f) => `INSERT INTO log SELECT (${f})::text`,
  (f) => `UPDATE log SET msg = (${f})::text WHERE msg = 'none'`,
  (f) => `SELECT ARRAY[${f}]`,
  (f) => `SELECT 1 FROM v WHERE id IN (SELECT ${f}) LIMIT 1`,
];

describe('calls of harmful user functions are refused in every position, and nothing changes', () => {
  const cases = HARMFUL_CALLS.flatMap((f) => POSITIONS.map((place) => place(f)));
  it.each(cases.map((sql) => [sql]))('%s', async (sql) => {
    const before = await state();
    const c = await client();
    try {
      const simple = await outcome(c, sql);
      expect(simple.code, `simple: ${simple.message}`).toBe('42501');
      expect(simple.message).toMatch(/^Gatehouse/);
      const ext = await outcome(c, extended(sql));
      expect(ext.code, `extended: ${ext.message}`).toBe('42501');
      expect((await c.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    } finally {
      await c.end();
    }
    expect(await state()).toBe(before);
  });
});

describe('other ways to reach stored code are refused too', () => {
  it.each([
    ['SELECT gh_d()'],
    ['CALL gh_p()'],
    ['CALL public.gh_p_sql()'],
    ['SELECT 1 ### 2'],
    ['SELECT 1 OPERATOR(public.###) 2'],
    ['SELECT gh_agg(id) FROM v'],
    ['SELECT * FROM gh_view'],
    ['SELECT * FROM gh_view_outer'],
    ['SELECT * FROM gh_srf()'],
    ['INSERT INTO with_default(id) VALUES (1)'],
    ['INSERT INTO with_default VALUES (1, DEFAULT)'],
    ['INSERT INTO with_check VALUES (1, 1)'],
    ['INSERT INTO with_domain VALUES (1, 1)'],
    ['SELECT 1::gh_dom'],
    ['SELECT CAST(1 AS public.gh_dom)'],
    ["SELECT '1'::text::gh_dom"],
    ['INSERT INTO with_trigger VALUES (1)'],
    ['INSERT INTO with_rule VALUES (1)'],
    // The cascade deletes from child, whose trigger empties v.
    ['DELETE FROM parent WHERE id = 1'],
    ['EXPLAIN ANALYZE SELECT gh_pl()'],
    // Planning folds an IMMUTABLE function with constant arguments: plain EXPLAIN runs it.
    ['EXPLAIN SELECT gh_immutable_liar(1)'],
    ['EXPLAIN SELECT * FROM gh_view'],
    ['PREPARE p1 AS SELECT gh_pl(); EXECUTE p1'],
    ['BEGIN; DECLARE c1 CURSOR FOR SELECT gh_pl(); FETCH c1; COMMIT'],
    ['COPY (SELECT gh_pl()) TO STDOUT'],
    ['DO $$BEGIN PERFORM gh_pl(); END$$'],
    ['SELECT no_such_function_anywhere()'],
  ])('%s', async (sql) => {
    const before = await state();
    const c = await client();
    try {
      const result = await outcome(c, sql);
      expect(result.code, result.message).toBe('42501');
    } finally {
      await c.end();
    }
    expect(await state()).toBe(before);
  });

  it('judges a shadowing function chosen by search_path, and the name of a built-in it shadows', async () => {
    const before = await state();
    const c = await client();
    try {
      await c.query('SET search_path = shadow, public, pg_catalog');
      expect((await outcome(c, "SELECT lower('A')")).code).toBe('42501');
      await c.query('RESET search_path');
      // Which overload the server picks is its business: any candidate that is harmful refuses the call.
      expect((await outcome(c, "SELECT lower('A')")).code).toBe('42501');
      expect((await outcome(c, "SELECT shadow.lower('A')")).code).toBe('42501');
      // The built-in, named as such, is judged as before.
      expect((await c.query("SELECT pg_catalog.upper('a') AS u")).rows).toEqual([{ u: 'A' }]);
    } finally {
      await c.end();
    }
    expect(await state()).toBe(before);
  });
});

describe('harmless user code runs', () => {
  it('allows functions whose bodies only read or compute, and reports the code they ran in the audit record', async () => {
    const c = await client();
    try {
      expect((await c.query('SELECT ok_add(1) AS n')).rows).toEqual([{ n: 2 }]);
      expect((await c.query(extended('SELECT ok_outer(2) AS n'))).rows).toEqual([{ n: 5 }]);
      expect((await c.query('SELECT ok_count() AS n')).rows).toEqual([{ n: '50' }]);
      expect((await c.query('SELECT ok_atomic(id) AS n FROM v WHERE id = 3')).rows).toEqual([{ n: 6 }]);
      expect((await c.query('SELECT next FROM ok_view WHERE id = 1')).rows).toEqual([{ next: 2 }]);
      await c.query("CALL ok_log('hello')");
      await c.query("INSERT INTO shaped VALUES ('quiet')");
      expect((await c.query('SELECT msg FROM shaped')).rows).toEqual([{ msg: 'QUIET' }]);
      expect((await c.query("SELECT upper('x') AS u, now() IS NOT NULL AS t")).rows).toEqual([
        { u: 'X', t: true },
      ]);
    } finally {
      await c.end();
    }
    await expect
      .poll(() => readFileSync(proxy.auditFile!, 'utf8'))
      .toMatch(
        /"statement":"INSERT INTO shaped VALUES \(\$1\)".*"reason":"runs trigger shapes on public.shaped, function public.ok_upper_fn"/,
      );
    const log = readFileSync(proxy.auditFile!, 'utf8');
    expect(log).toMatch(
      /"reason":"[^"]*runs function public.ok_outer, function public.ok_add, function public.ok_atomic/,
    );
  });

  it('reports the triggers and rules of a refused write in its audit record', async () => {
    const c = await client();
    try {
      await outcome(c, 'INSERT INTO with_trigger VALUES (7)');
    } finally {
      await c.end();
    }
    await expect
      .poll(() => readFileSync(proxy.auditFile!, 'utf8'))
      .toMatch(
        /"statement":"INSERT INTO with_trigger VALUES \(\$1\)".*"outcome":"refused".*runs trigger empties_v on public.with_trigger, function public.gh_trigger_fn/,
      );
  });
});

describe('routines created directly on the database', () => {
  it('reloads the catalog before judging a routine it does not know, then judges its body', async () => {
    const c = await client();
    try {
      // The session's catalog predates these functions.
      expect((await c.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
      await admin.query(`CREATE FUNCTION late_ok(int) RETURNS int LANGUAGE sql AS 'SELECT $1 * 10'`);
      await admin.query(`CREATE FUNCTION late_bad() RETURNS int LANGUAGE sql AS 'DELETE FROM v RETURNING 1'`);
      const before = await state();
      expect((await c.query('SELECT late_ok(4) AS n')).rows).toEqual([{ n: 40 }]);
      expect((await outcome(c, 'SELECT late_bad()')).code).toBe('42501');
      expect((await outcome(c, extended('SELECT late_bad()'))).code).toBe('42501');
      expect(await state()).toBe(before);
      // A function replaced directly with a harmful body is judged by the new body once the catalog
      // is reloaded; until then by the old one, which the catalog refresh interval bounds.
    } finally {
      await c.end();
    }
  });
});

describe('code changed through the proxy', () => {
  it("judges another session's next write by a trigger created a moment before", async () => {
    const owner = await client('admin');
    const demo = await client();
    try {
      await owner.query('CREATE TABLE tt(id int)');
      expect((await demo.query('INSERT INTO tt VALUES (1)')).rowCount).toBe(1);
      await owner.query(
        'CREATE FUNCTION drops_scratch() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN DROP TABLE IF EXISTS scratch_x; RETURN NEW; END$$',
      );
      await owner.query(
        'CREATE TRIGGER drops AFTER INSERT ON tt FOR EACH ROW EXECUTE FUNCTION drops_scratch()',
      );
      // demo may not run DDL: the trigger's DROP needs it, so the INSERT is refused.
      const refused = await outcome(demo, 'INSERT INTO tt VALUES (2)');
      expect(refused.code).toBe('42501');
      expect(refused.message).toMatch(/does not allow ddl/);
      expect((await admin.query('SELECT count(*)::int AS n FROM tt')).rows).toEqual([{ n: 1 }]);
    } finally {
      await owner.end();
      await demo.end();
    }
  });

  it('judges code created earlier in the same transaction, which no catalog reload can show yet', async () => {
    const owner = await client('admin');
    try {
      await owner.query('BEGIN');
      await owner.query("CREATE FUNCTION tx_helper(int) RETURNS int LANGUAGE sql AS 'SELECT $1 + 100'");
      expect((await owner.query('SELECT tx_helper(1) AS n')).rows).toEqual([{ n: 101 }]);
      await owner.query('ROLLBACK');
    } finally {
      await owner.end();
    }
  });
});

describe('fast-path function calls', () => {
  /** A FunctionCall message: the function by OID, text arguments, a text result. */
  function functionCall(oid: number, args: readonly string[]): Buffer {
    const parts = [Buffer.alloc(4), Buffer.from([0, 0]), Buffer.alloc(2)];
    parts[0]!.writeUInt32BE(oid);
    parts[2]!.writeUInt16BE(args.length);
    for (const arg of args) {
      const length = Buffer.alloc(4);
      length.writeInt32BE(Buffer.byteLength(arg));
      parts.push(length, Buffer.from(arg));
    }
    parts.push(Buffer.from([0, 0]));
    const body = Buffer.concat(parts);
    const head = Buffer.alloc(5);
    head[0] = 'F'.charCodeAt(0);
    head.writeInt32BE(4 + body.length, 1);
    return Buffer.concat([head, body]);
  }

  async function login(): Promise<RawClient> {
    const client = await RawClient.connect(proxy.port);
    const ready = client.waitFor('readyForQuery');
    client.onMessage((m) => {
      if (m.name === 'authenticationCleartextPassword')
        client.socket.write(serialize.password('demo-secret'));
    });
    client.socket.write(serialize.startup({ user: 'demo', database: DATABASE }));
    await ready;
    return client;
  }

  const oid = async (signature: string) =>
    Number((await admin.query(`SELECT '${signature}'::regprocedure::oid AS oid`)).rows[0].oid);

  it('judges the function an OID names like a call of it, and refuses OIDs the catalog does not know', async () => {
    const before = await state();
    const client = await login();
    try {
      const answers: string[] = [];
      for (const [target, args] of [
        [await oid('gh_d_int()'), []],
        [await oid('ok_add(int)'), ['41']],
        [999_999_999, []],
      ] as const) {
        let answer = 'ran';
        const off = client.onMessage((m) => {
          // pg-protocol does not know FunctionCallResponse ('V'): it reports it as an error without a code.
          const code = (m as { code?: string }).code;
          if (m.name === 'error' && code !== undefined) answer = `error ${code}`;
        });
        const ready = client.waitFor('readyForQuery', false);
        client.socket.write(functionCall(target, args));
        await ready;
        off();
        answers.push(answer);
      }
      expect(answers).toEqual(['error 42501', 'ran', 'error 42501']);
    } finally {
      client.socket.end(serialize.end());
    }
    expect(await state()).toBe(before);
  });

  /** Sends one FunctionCall and says how it ended: `ran` or `error CODE: message`. */
  async function callOnce(client: RawClient, target: number, args: readonly string[] = []): Promise<string> {
    let answer = 'ran';
    const off = client.onMessage((m) => {
      const { code, message } = m as { code?: string; message?: string };
      if (m.name === 'error' && code !== undefined) answer = `error ${code}: ${message}`;
    });
    const ready = client.waitFor('readyForQuery', false);
    client.socket.write(functionCall(target, args));
    await ready;
    off();
    return answer;
  }

  it('waits for the catalog when the function calls one it does not know yet, then judges it', async () => {
    const before = await state();
    const client = await login();
    try {
      // The session is under way with the catalog it has ...
      expect(await callOnce(client, await oid('ok_add(int)'), ['1'])).toBe('ran');
      // ... when a function is created directly on the database, behind the proxy's catalog.
      await admin.query(
        `CREATE FUNCTION gh_fp_missing() RETURNS int LANGUAGE sql AS 'DELETE FROM v RETURNING 1'`,
      );
      expect(await callOnce(client, await oid('gh_fp_later()'))).toMatch(/^error 42501: .*gh_fp_missing/);
    } finally {
      client.socket.end(serialize.end());
      await admin.query('DROP FUNCTION IF EXISTS gh_fp_missing()');
    }
    expect(await state()).toBe(before);
  });

  it('refuses a fast-path call under a row limit: its changes could not be counted', async () => {
    const before = await state();
    const client = await login();
    try {
      expect(await callOnce(client, await oid('gh_fp_narrow()'))).toMatch(
        /^error 42501: .*row limit.*cannot be counted; call it with SELECT/,
      );
    } finally {
      client.socket.end(serialize.end());
    }
    expect(await state()).toBe(before);
  });
});
