import { describe, expect, it } from 'vitest';
import { encodeMessage } from './codes.ts';
import {
  dependentsQuery,
  measurePostgresImpact,
  type ProbeLink,
  type QueryAnswer,
  SessionProbe,
} from './impact-probe.ts';

/** A server that answers each query by the first rule whose pattern it matches, and records them. */
function fakeServer(rules: [RegExp, (sql: string) => Partial<QueryAnswer>][], start: 'I' | 'T') {
  const sent: string[] = [];
  let status: 'I' | 'T' | 'E' = start;
  const link: ProbeLink = {
    async query(sql) {
      sent.push(sql);
      const rule = rules.find(([pattern]) => pattern.test(sql));
      const answer = rule ? rule[1](sql) : {};
      if (/^BEGIN|^SAVEPOINT/.test(sql)) status = answer.error ? (start === 'I' ? 'E' : 'E') : 'T';
      if (answer.error && status === 'T') status = 'E';
      if (/^ROLLBACK$/.test(sql)) status = 'I';
      if (/^ROLLBACK TO/.test(sql)) status = 'T';
      return { results: [], ...answer, status: answer.status ?? status };
    },
  };
  return { link, sent };
}

/** The count column a query asks for, so the fake can answer it. */
const column = (sql: string) => /AS "(gatehouse_rows_[0-9a-f]+)"/.exec(sql)?.[1] ?? '?';
const count = (n: number) => (sql: string) => ({
  results: [{ columns: [column(sql)], rows: [[String(n)]] }],
});
const explain = () => ({
  results: [
    {
      columns: ['QUERY PLAN'],
      rows: [[JSON.stringify([{ Plan: { 'Node Type': 'ModifyTable', Plans: [{ 'Plan Rows': 9 }] } }])]],
    },
  ],
});

describe('measurePostgresImpact', () => {
  it('counts a DELETE in a transaction of its own, and always rolls it back', async () => {
    const { link, sent } = fakeServer(
      [
        [/^BEGIN/, count(3)],
        [/^EXPLAIN/, explain],
        [/^DELETE/, count(8)],
      ],
      'I',
    );
    const result = await measurePostgresImpact(
      link,
      { measure: 'rows', explain: true },
      'DELETE FROM t',
      'I',
    );
    expect(result).toEqual({
      measured: { affectedRows: 5, estimatedRows: 9 },
      rolledBackRows: 0,
      intact: true,
    });
    expect(sent[0]).toMatch(
      /^BEGIN;\nSET LOCAL statement_timeout = \d+;\nSET LOCAL lock_timeout = \d+;\nSELECT/,
    );
    expect(sent[1]).toBe('EXPLAIN (FORMAT JSON) DELETE FROM t');
    expect(sent[2]).toMatch(/^DELETE FROM t\n;SELECT/);
    expect(sent.at(-1)).toBe('ROLLBACK');
  });

  it('measures under a savepoint inside the client transaction, and says what its statistics keep', async () => {
    const { link, sent } = fakeServer(
      [
        [/^SAVEPOINT/, count(10)],
        [/^UPDATE/, count(14)],
      ],
      'T',
    );
    const result = await measurePostgresImpact(
      link,
      { measure: 'rows', explain: false },
      'UPDATE t SET a = 1',
      'T',
    );
    expect(result).toEqual({ measured: { affectedRows: 4 }, rolledBackRows: 4, intact: true });
    expect(sent[0]).toMatch(/^SAVEPOINT gatehouse_impact;/);
    expect(sent.at(-1)).toBe('ROLLBACK TO SAVEPOINT gatehouse_impact; RELEASE SAVEPOINT gatehouse_impact');
  });

  it('says why when the statement fails, and still rolls back', async () => {
    for (const [code, reason] of [
      ['57014', /time limit/],
      ['55P03', /lock/],
      ['23503', /SQLSTATE 23503/],
    ] as const) {
      const { link, sent } = fakeServer(
        [
          [/^BEGIN/, count(0)],
          [/^DELETE/, () => ({ error: code })],
        ],
        'I',
      );
      const result = await measurePostgresImpact(
        link,
        { measure: 'rows', explain: false },
        'DELETE FROM t',
        'I',
      );
      expect(result.measured.affectedRows).toBeUndefined();
      expect(result.measured.notMeasured).toMatch(reason);
      expect(result.intact).toBe(true);
      expect(sent.at(-1)).toBe('ROLLBACK');
    }
  });

  it('does not touch a failed transaction', async () => {
    const { link, sent } = fakeServer([], 'T');
    const result = await measurePostgresImpact(
      link,
      { measure: 'rows', explain: true },
      'DELETE FROM t',
      'E',
    );
    expect(result.measured.notMeasured).toMatch(/transaction has failed/);
    expect(sent).toEqual([]);
  });

  it('reports track_counts off as not measured', async () => {
    const { link } = fakeServer(
      [
        [/^BEGIN/, count(-1)],
        [/^DELETE/, count(-1)],
      ],
      'I',
    );
    const result = await measurePostgresImpact(
      link,
      { measure: 'rows', explain: false },
      'DELETE FROM t',
      'I',
    );
    expect(result.measured.notMeasured).toMatch(/track_counts/);
  });

  it('is not intact when the rollback does not restore the status', async () => {
    const { link } = fakeServer(
      [
        [/^SAVEPOINT/, count(0)],
        [/^DELETE/, count(1)],
        [/^ROLLBACK TO/, () => ({ error: '3B001', status: 'E' })],
      ],
      'T',
    );
    const result = await measurePostgresImpact(
      link,
      { measure: 'rows', explain: false },
      'DELETE FROM t',
      'T',
    );
    expect(result.intact).toBe(false);
  });

  it('runs nothing for what it must not measure', async () => {
    const { link, sent } = fakeServer([], 'I');
    expect(
      (await measurePostgresImpact(link, { measure: 'impossible', reason: 'it calls f' }, 'x', 'I')).measured,
    ).toEqual({ notMeasured: 'it calls f' });
    expect((await measurePostgresImpact(link, { measure: 'nothing' }, 'x', 'I')).measured).toEqual({});
    expect(sent).toEqual([]);
  });

  it('lists dependents inside a rolled-back transaction', async () => {
    const { link, sent } = fakeServer(
      [
        [
          /^WITH target/,
          () => ({
            results: [
              {
                columns: ['kind', 'name'],
                rows: [
                  ['view', 'v'],
                  ['foreign key', 'fk on t'],
                ],
              },
            ],
          }),
        ],
      ],
      'I',
    );
    const result = await measurePostgresImpact(
      link,
      { measure: 'dependents', targets: ['t'] },
      'DROP TABLE t',
      'I',
    );
    expect(result.measured).toEqual({ dependents: ['view v', 'foreign key fk on t'] });
    expect(sent.at(-1)).toBe('ROLLBACK');
  });
});

describe('dependentsQuery', () => {
  it('carries names as hex and qualifies every operator, whatever the names hold', () => {
    const names = ["o'rders", 'public."Odd $$ name"', 'x\\y'];
    const sql = dependentsQuery(names);
    for (const name of names) expect(sql).not.toContain(name);
    for (const name of names) expect(sql).toContain(Buffer.from(name).toString('hex'));
    // No bare comparison a search_path could redirect.
    expect(sql.replace(/OPERATOR\(pg_catalog\.(=|<>|\|\|)\)/g, '')).not.toMatch(/ (=|<>|\|\|) /);
  });
});

describe('SessionProbe', () => {
  const msg = (type: string, body: Buffer) => encodeMessage(type.charCodeAt(0), body);
  const ready = (status: string) => msg('Z', Buffer.from(status));
  const rowDescription = (name: string) =>
    msg('T', Buffer.concat([Buffer.from([0, 1]), Buffer.from(`${name}\0`), Buffer.alloc(18)]));
  const dataRow = (value: string) => {
    const v = Buffer.from(value);
    const head = Buffer.alloc(6);
    head.writeInt16BE(1, 0);
    head.writeInt32BE(v.length, 2);
    return msg('D', Buffer.concat([head, v]));
  };
  const notification = msg('A', Buffer.concat([Buffer.alloc(4), Buffer.from('chan\0payload\0')]));

  it('reads its answers across chunks, and hands back what comes when nothing is owed', async () => {
    const written: Buffer[] = [];
    const aside: number[] = [];
    const probe = new SessionProbe(
      (bytes) => written.push(bytes),
      (type) => aside.push(type),
    );
    const answer = probe.query('SELECT 1');
    expect(written[0]?.[0]).toBe('Q'.charCodeAt(0));
    const bytes = Buffer.concat([
      rowDescription('n'),
      notification,
      dataRow('42'),
      msg('C', Buffer.from('SELECT 1\0')),
      ready('T'),
    ]);
    expect(probe.push(bytes.subarray(0, 7))).toBeUndefined();
    const rest = probe.push(Buffer.concat([bytes.subarray(7), notification]));
    expect(await answer).toEqual({ results: [{ columns: ['n'], rows: [['42']] }], status: 'T' });
    expect(aside).toEqual(['A'.charCodeAt(0)]);
    // The notification after the last answer is the session's: handed back once, not kept.
    expect(rest).toEqual(notification);
    expect(probe.push(Buffer.alloc(0))).toEqual(Buffer.alloc(0));
  });
});
