import { beforeAll, describe, expect, it } from 'vitest';
import { analyzeMysql } from '../../sql/mysql/analyze-mysql.ts';
import { loadMysqlParser } from '../../sql/mysql/parser.ts';
import { dependentsQuery, explainRows, measureMysqlImpact, mysqlImpactPlan } from './held-impact.ts';
import type { BoundParameters, MysqlAnswer } from './impact-link.ts';
import { PayloadWriter } from './packet-io.ts';
import { buildTableCatalog } from './row-measure.ts';

beforeAll(async () => {
  await loadMysqlParser();
});

const CATALOG = buildTableCatalog(
  [
    ['app', 't', 'YES'],
    ['app', 'parent', 'YES'],
    ['app', 'my', 'NO'],
  ],
  [['app', 'parent']],
);
const plan = (sql: string, mariadb = true) =>
  mysqlImpactPlan(sql, analyzeMysql(sql, { sqlMode: null }), CATALOG, 'app', mariadb);

/** A text-protocol row of these values (null as NULL). */
function row(...values: (string | null)[]): Buffer {
  const w = new PayloadWriter();
  for (const v of values) {
    if (v === null) w.u8(0xfb);
    else w.u8(v.length).bytes(Buffer.from(v, 'latin1'));
  }
  return w.build();
}

describe('mysqlImpactPlan', () => {
  it('measures rows on MariaDB, and says why not elsewhere', () => {
    expect(plan('DELETE FROM t')).toEqual({ measure: 'rows', explain: true });
    expect(plan('DELETE FROM t', false)).toMatchObject({
      measure: 'impossible',
      reason: /max_execution_time/,
    });
    expect(plan('DELETE FROM my')).toMatchObject({ measure: 'impossible', reason: /not transactional/ });
    expect(plan('DELETE FROM parent')).toMatchObject({ measure: 'impossible', reason: /CASCADE/ });
    expect(plan('DROP TABLE t')).toMatchObject({ measure: 'dependents' });
    expect(plan('UPDATE t SET a = (@n := @n + 1)')).toMatchObject({
      measure: 'impossible',
      reason: /user variables/,
    });
    expect(plan("DELETE FROM t WHERE a = 'ann@example.com'")).toEqual({ measure: 'rows', explain: true });
  });
});

describe('explainRows', () => {
  it("reads MariaDB's rows column", () => {
    expect(explainRows([row('1', 'SIMPLE', 't', 'ALL', null, null, null, null, '42', '')])).toBe(42);
    expect(explainRows([row('1', 'SIMPLE', 't', 'ALL', null, null, null, null, null, '')])).toBeUndefined();
    expect(explainRows([])).toBeUndefined();
  });

  it('reads it from a binary row, as a prepared EXPLAIN returns it', () => {
    const longlong = { type: 8, charset: 63 };
    const string = { type: 253, charset: 33 };
    const columns = [longlong, ...Array.from({ length: 9 }, () => string)];
    // Header, null bitmap (columns offset by 2 bits: possible_keys, key, key_len, ref are NULL), values.
    const bitmap = Buffer.from([(1 << 6) | (1 << 7), 0b11]);
    const w = new PayloadWriter()
      .u8(0)
      .bytes(bitmap)
      .bytes(Buffer.from([1, 0, 0, 0, 0, 0, 0, 0]));
    for (const v of ['SIMPLE', 't', 'ALL', '42', '']) w.lenencBytes(v);
    expect(explainRows([w.build()], columns)).toBe(42);
    expect(explainRows([Buffer.from([0, 0])], columns)).toBeUndefined();
    const asNumber = [...columns.slice(0, 8), longlong, string];
    const n = new PayloadWriter()
      .u8(0)
      .bytes(bitmap)
      .bytes(Buffer.from([1, 0, 0, 0, 0, 0, 0, 0]));
    for (const v of ['SIMPLE', 't', 'ALL']) n.lenencBytes(v);
    n.bytes(Buffer.from([9, 0, 0, 0, 0, 0, 0, 0])).lenencBytes('');
    expect(explainRows([n.build()], asNumber)).toBe(9);
  });
});

describe('measureMysqlImpact', () => {
  function fake(answers: Record<string, Partial<MysqlAnswer>>, inTransaction: boolean) {
    const sent: string[] = [];
    return {
      sent,
      link: {
        async run(sql: string): Promise<MysqlAnswer> {
          sent.push(sql);
          const key = Object.keys(answers).find((k) => sql.startsWith(k));
          return { ok: true, rows: [], inTransaction, ...(key ? answers[key] : {}) };
        },
        async runBound(sql: string, parameters: BoundParameters): Promise<MysqlAnswer> {
          return this.run(`bound(${parameters.block.toString('hex')}) ${sql}`);
        },
      },
    };
  }

  it('bounds the statement and rolls back its own transaction', async () => {
    let counter = 0;
    const { link, sent } = fake({}, false);
    const counting = {
      runBound: link.runBound,
      async run(sql: string): Promise<MysqlAnswer> {
        if (sql.startsWith('SELECT CAST')) {
          sent.push(sql);
          counter += 3;
          return { ok: true, rows: [row(String(counter))], inTransaction: true };
        }
        const a = await link.run(sql);
        return { ...a, inTransaction: sql !== 'ROLLBACK' };
      },
    };
    const result = await measureMysqlImpact(
      counting,
      { measure: 'rows', explain: true },
      'DELETE FROM t;',
      false,
      'app',
    );
    expect(result).toEqual({ measured: { affectedRows: 3 }, intact: true });
    expect(sent[0]).toBe('START TRANSACTION');
    expect(sent).toContain(
      'SET STATEMENT max_statement_time=3, innodb_lock_wait_timeout=3 FOR DELETE FROM t',
    );
    expect(sent.at(-1)).toBe('ROLLBACK');
  });

  it("runs a prepared statement's EXPLAIN and itself with its bound parameters, the rest as text", async () => {
    const { link, sent } = fake({}, false);
    const parameters = { count: 1, block: Buffer.from([0, 1, 3, 0, 7, 0, 0, 0]) };
    const result = await measureMysqlImpact(
      {
        run: (sql) => link.run(sql).then((a) => ({ ...a, inTransaction: sql !== 'ROLLBACK' })),
        runBound: link.runBound.bind(link),
      },
      { measure: 'rows', explain: true },
      'DELETE FROM t WHERE id = ?',
      false,
      'app',
      parameters,
    );
    expect(result.intact).toBe(true);
    const bound = 'bound(0001030007000000)';
    expect(sent).toEqual([
      'START TRANSACTION',
      `${bound} SET STATEMENT max_statement_time=3, innodb_lock_wait_timeout=3 FOR EXPLAIN DELETE FROM t WHERE id = ?`,
      expect.stringMatching(/^SELECT CAST/),
      `${bound} SET STATEMENT max_statement_time=3, innodb_lock_wait_timeout=3 FOR DELETE FROM t WHERE id = ?`,
      expect.stringMatching(/^SELECT CAST/),
      'ROLLBACK',
    ]);
  });

  it('says why a prepared statement could not run under measurement', async () => {
    const { link } = fake(
      { 'bound(': { ok: false, failure: 'prepared again it has 2 parameters, not 1' } },
      false,
    );
    const result = await measureMysqlImpact(
      {
        run: (sql) => link.run(sql).then((a) => ({ ...a, inTransaction: sql !== 'ROLLBACK' })),
        runBound: link.runBound.bind(link),
      },
      { measure: 'rows', explain: true },
      'DELETE FROM t WHERE id = ?',
      false,
      'app',
      { count: 1, block: Buffer.alloc(0) },
    );
    expect(result.measured.notMeasured).toMatch(/could not run under measurement: prepared again it has 2/);
  });

  it('is not intact when a deadlock took the savepoint with the client transaction', async () => {
    const { link, sent } = fake(
      {
        'SET STATEMENT max_statement_time=3, innodb_lock_wait_timeout=3 FOR DELETE': {
          ok: false,
          errorCode: 1213,
        },
        'ROLLBACK TO': { ok: false, errorCode: 1305, inTransaction: false },
      },
      true,
    );
    const result = await measureMysqlImpact(
      link,
      { measure: 'rows', explain: false },
      'DELETE FROM t',
      true,
      'app',
    );
    expect(result.intact).toBe(false);
    expect(result.measured.notMeasured).toMatch(/error 1213/);
    expect(sent[0]).toBe('SAVEPOINT `gatehouse impact`');
  });
});

describe('dependentsQuery', () => {
  it('carries names as hex', () => {
    const sql = dependentsQuery(["o'rders", 'app.`x`'], 'app');
    expect(sql).not.toContain("o'rders");
    expect(sql).toContain(Buffer.from("o'rders").toString('hex'));
    expect(sql).toContain(Buffer.from('x').toString('hex'));
  });
});
