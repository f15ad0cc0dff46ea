import pino from 'pino';
import { beforeAll, describe, expect, it } from 'vitest';
import { RowBudget, type RowLimit } from '../../policy/guardrails/row-limits.ts';
import { analyzeMysql } from '../../sql/mysql/analyze-mysql.ts';
import { loadMysqlParser } from '../../sql/mysql/parser.ts';
import { HOLD_COMMAND } from './command-framer.ts';
import { MysqlError, ServerStatus } from './constants.ts';
import { PayloadWriter, packet } from './packet-io.ts';
import type { Measurement, Pending, Refusal } from './pending.ts';
import type { ResultEnd } from './response-tracker.ts';
import { RowCounting, type RowCountingPort } from './row-counting.ts';
import { buildTableCatalog, SAVEPOINT } from './row-measure.ts';

beforeAll(async () => {
  await loadMysqlParser();
});

const CATALOG = buildTableCatalog(
  [
    ['app', 't', 'YES'],
    ['app', 'my', 'NO'],
  ],
  [],
);
const LIMIT: RowLimit = { guardrail: 'g', rule: 'r', action: 'block', dryRun: false, perTransaction: 5 };
const WARN: RowLimit = { ...LIMIT, action: 'warn' };
const AUTOCOMMIT = ServerStatus.AUTOCOMMIT;
const IN_TRANS = ServerStatus.AUTOCOMMIT | ServerStatus.IN_TRANS;

const OK: ResultEnd = { ok: true, rows: 0, status: AUTOCOMMIT, last: true };
const FAILED: ResultEnd = { ok: false, errorCode: 1213, status: undefined, last: true };
const counterRow = (value: string | null) =>
  value === null ? Buffer.from([0xfb]) : new PayloadWriter().lenencBytes(value).build();
/** The client's OK for its statement, as a frame: affected rows 3, status with a transaction open. */
const CLIENT_OK = packet(new PayloadWriter().u8(0).lenenc(3).lenenc(0).u16(IN_TRANS).u16(0).build(), 1);

/** A session without sockets: what counting sends, answers and records, and the answers it owes. */
function session(status = AUTOCOMMIT as number) {
  const owed: Pending[] = [];
  const sent: string[] = [];
  const answers: Buffer[] = [];
  const records: { outcome: string; reason?: string; rowsChanged?: number; sqlstate?: string }[] = [];
  const fatals: { refusal: Refusal; seq: number }[] = [];
  const log = { holds: 0, resumes: 0 };
  const state = { status };
  const port: RowCountingPort = {
    owe: (hooks) => {
      const entry: Pending = {
        tracker: undefined,
        internal: true,
        index: 0,
        started: 0,
        command: 'ROW LIMIT',
        ...hooks,
      };
      owed.push(entry);
      return entry;
    },
    send: (bytes) => sent.push(bytes.toString('utf8', 5)),
    answer: (bytes) => answers.push(bytes),
    record: (_via, _started, _text, outcome, extra) => records.push({ outcome, ...extra }),
    fatal: (refusal, seq) => fatals.push({ refusal, seq }),
    hold: () => {
      log.holds++;
      return HOLD_COMMAND;
    },
    resume: () => {
      log.resumes++;
    },
    status: () => state.status,
  };
  const budget = new RowBudget();
  const counting = new RowCounting(port, {
    code: { tables: () => CATALOG },
    database: 'app',
    rowBudget: budget,
    subject: 'alice',
    mariadb: true,
    logger: pino({ level: 'silent' }),
  });
  /** The server answers the next owed command of the proxy's own. */
  const answer = (end: ResultEnd, row?: Buffer) => {
    const entry = owed.shift();
    if (!entry) throw new Error('nothing owed');
    if (end.status !== undefined) {
      state.status = end.status;
      counting.onStatus(end.status);
    }
    if (row) entry.onRow?.(row);
    entry.onDone?.(end);
  };
  return { counting, port, owed, sent, answers, records, fatals, log, state, answer, budget };
}

const client: Pending = {
  tracker: undefined,
  via: 'text',
  texts: [],
  index: 0,
  started: 0,
  command: 'QUERY',
};
const TEXT = { statement: 'UPDATE t SET x = ?', fingerprint: null };
const sqlOf = (bytes: Buffer) => {
  const out: string[] = [];
  for (let at = 0; at < bytes.length; ) {
    const length = bytes.readUIntLE(at, 3);
    out.push(bytes.toString('utf8', at + 5, at + 4 + length));
    at += 4 + length;
  }
  return out;
};

/** Plans and starts counting `sql` under `limits`; the client's statement is answered OK. */
function run(s: ReturnType<typeof session>, sql: string, limits = [LIMIT]) {
  const m = s.counting.plan(
    { limits, facts: analyzeMysql(sql, { sqlMode: null }) },
    false,
    false,
  ) as Measurement;
  expect(m).toHaveProperty('internals');
  const { prefix, suffix } = s.counting.begin(m);
  s.counting.sent(m);
  return { m, prefix: sqlOf(prefix), suffix: sqlOf(suffix) };
}

describe('RowCounting', () => {
  it('opens a transaction under autocommit, counts before and after, and commits what is under the limit', () => {
    const s = session();
    const { m, prefix, suffix } = run(s, 'UPDATE t SET x = 1');
    expect(prefix).toEqual(['START TRANSACTION', expect.stringContaining('HANDLER_UPDATE')]);
    expect(suffix).toEqual([expect.stringContaining('information_schema.SESSION_STATUS')]);
    expect(s.counting.counting).toBe(true);
    s.answer({ ...OK, status: IN_TRANS });
    s.answer({ ...OK, status: IN_TRANS }, counterRow('10'));
    s.counting.holdAnswer(m, client, CLIENT_OK, { ok: true, rows: 3, status: IN_TRANS, last: true }, TEXT);
    s.answer({ ...OK, status: IN_TRANS }, counterRow('13'));
    // Under the limit: the proxy's transaction commits before the client hears anything.
    expect(s.sent).toEqual(['COMMIT']);
    expect(s.answers).toEqual([]);
    s.answer({ ...OK, status: AUTOCOMMIT });
    expect(s.answers).toHaveLength(1);
    // The client's OK goes with the flags of after the COMMIT: no transaction open.
    expect(s.answers[0]!.readUInt16LE(s.answers[0]!.length - 4)).toBe(AUTOCOMMIT);
    expect(s.records).toEqual([expect.objectContaining({ outcome: 'ok', rowsChanged: 3 })]);
    expect(s.budget.spent('alice')).toBe(3);
    expect(s.counting.counting).toBe(false);
    expect(s.log.resumes).toBe(1);
  });

  it('rolls back what is over the limit and answers with the refusal instead', () => {
    const s = session();
    const { m } = run(s, 'DELETE FROM t');
    s.answer({ ...OK, status: IN_TRANS });
    s.answer({ ...OK, status: IN_TRANS }, counterRow('10'));
    s.counting.holdAnswer(m, client, CLIENT_OK, { ok: true, rows: 9, status: IN_TRANS, last: true }, TEXT);
    s.answer({ ...OK, status: IN_TRANS }, counterRow('19'));
    expect(s.sent).toEqual(['ROLLBACK']);
    s.answer({ ...OK, status: AUTOCOMMIT });
    expect(s.answers).toHaveLength(1);
    expect(s.answers[0]![4]).toBe(0xff);
    expect(s.answers[0]![3]).toBe(1);
    expect(s.answers[0]!.toString('utf8')).toMatch(/guardrail "g"/);
    expect(s.records).toEqual([
      expect.objectContaining({
        outcome: 'refused',
        rowsChanged: 9,
        sqlstate: MysqlError.TABLE_ACCESS_DENIED.sqlstate,
      }),
    ]);
    expect(s.budget.spent('alice')).toBe(0);
    expect(s.counting.counting).toBe(false);
  });

  it("uses a savepoint in the client's transaction, keeps without a COMMIT, and adds up the transaction's rows", () => {
    const s = session(IN_TRANS);
    const first = run(s, 'UPDATE t SET x = 1');
    expect(first.prefix[0]).toBe(`SAVEPOINT ${SAVEPOINT}`);
    s.answer({ ...OK, status: IN_TRANS });
    s.answer({ ...OK, status: IN_TRANS }, counterRow('100'));
    s.counting.holdAnswer(
      first.m,
      client,
      CLIENT_OK,
      { ok: true, rows: 3, status: IN_TRANS, last: true },
      TEXT,
    );
    s.answer({ ...OK, status: IN_TRANS }, counterRow('103'));
    expect(s.sent).toEqual([]);
    expect(s.answers).toEqual([CLIENT_OK]);
    expect(s.counting.transactionRows).toBe(3);
    // The next statement starts from the last count (nothing ran since) and is judged on the
    // transaction's total: 3 + 3 is over 5.
    const second = run(s, 'UPDATE t SET x = 2');
    expect(second.prefix).toEqual([`SAVEPOINT ${SAVEPOINT}`]);
    expect(second.m.txBefore).toBe(3);
    s.answer({ ...OK, status: IN_TRANS });
    s.counting.holdAnswer(
      second.m,
      client,
      CLIENT_OK,
      { ok: true, rows: 3, status: IN_TRANS, last: true },
      TEXT,
    );
    s.answer({ ...OK, status: IN_TRANS }, counterRow('106'));
    expect(s.sent).toEqual([`ROLLBACK TO SAVEPOINT ${SAVEPOINT}`]);
  });

  it('reads the counters again after a command it did not count', () => {
    const s = session(IN_TRANS);
    const first = run(s, 'UPDATE t SET x = 1');
    s.answer({ ...OK, status: IN_TRANS });
    s.answer({ ...OK, status: IN_TRANS }, counterRow('1'));
    s.counting.holdAnswer(
      first.m,
      client,
      CLIENT_OK,
      { ok: true, rows: 1, status: IN_TRANS, last: true },
      TEXT,
    );
    s.answer({ ...OK, status: IN_TRANS }, counterRow('2'));
    s.counting.forget();
    expect(run(s, 'UPDATE t SET x = 2').prefix).toHaveLength(2);
  });

  it('forgets the transaction rows once the transaction ends', () => {
    const s = session(IN_TRANS);
    const { m } = run(s, 'UPDATE t SET x = 1');
    s.answer({ ...OK, status: IN_TRANS });
    s.answer({ ...OK, status: IN_TRANS }, counterRow('0'));
    s.counting.holdAnswer(m, client, CLIENT_OK, { ok: true, rows: 4, status: IN_TRANS, last: true }, TEXT);
    s.answer({ ...OK, status: IN_TRANS }, counterRow('4'));
    expect(s.counting.transactionRows).toBe(4);
    s.counting.onStatus(AUTOCOMMIT);
    expect(s.counting.transactionRows).toBe(0);
  });

  it.each([
    ['NULL', counterRow(null), counterRow('5')],
    ['garbage', counterRow('5'), counterRow('x')],
    ['a smaller count after', counterRow('9'), counterRow('5')],
  ])('rolls back under an enforcing limit when the counters read %s', (_what, before, after) => {
    const s = session();
    const { m } = run(s, 'UPDATE t SET x = 1');
    s.answer({ ...OK, status: IN_TRANS });
    s.answer({ ...OK, status: IN_TRANS }, before);
    s.counting.holdAnswer(m, client, CLIENT_OK, { ok: true, rows: 1, status: IN_TRANS, last: true }, TEXT);
    s.answer({ ...OK, status: IN_TRANS }, after);
    expect(s.sent).toEqual(['ROLLBACK']);
    s.answer({ ...OK, status: AUTOCOMMIT });
    expect(s.records[0]).toMatchObject({
      outcome: 'refused',
      reason: expect.stringMatching(/counters could not be read/),
    });
  });

  it('rolls back when one of its own commands failed, and keeps with a note under a warn-only limit', () => {
    const broken = session();
    const one = run(broken, 'UPDATE t SET x = 1');
    broken.answer(FAILED);
    broken.answer({ ...OK, status: IN_TRANS }, counterRow('1'));
    broken.counting.holdAnswer(
      one.m,
      client,
      CLIENT_OK,
      { ok: true, rows: 1, status: IN_TRANS, last: true },
      TEXT,
    );
    broken.answer({ ...OK, status: IN_TRANS }, counterRow('2'));
    expect(broken.sent).toEqual(['ROLLBACK']);

    const warned = session();
    const two = run(warned, 'UPDATE t SET x = 1', [WARN]);
    warned.answer({ ...OK, status: IN_TRANS });
    warned.answer({ ...OK, status: IN_TRANS }, counterRow(null));
    warned.counting.holdAnswer(
      two.m,
      client,
      CLIENT_OK,
      { ok: true, rows: 1, status: IN_TRANS, last: true },
      TEXT,
    );
    warned.answer({ ...OK, status: IN_TRANS }, counterRow('2'));
    expect(warned.sent).toEqual(['COMMIT']);
    warned.answer({ ...OK, status: AUTOCOMMIT });
    expect(warned.records[0]).toMatchObject({
      outcome: 'ok',
      reason: 'row limit not measured: the counters could not be read',
    });
  });

  it('keeps what is over a warn-only or dry-run limit, with a note for the audit', () => {
    for (const [limit, note] of [
      [WARN, 'warning: g/r: 9 rows over 5'],
      [{ ...LIMIT, dryRun: true }, 'dry run: g/r would block: 9 rows over 5'],
    ] as const) {
      const s = session();
      const { m } = run(s, 'DELETE FROM t', [limit]);
      s.answer({ ...OK, status: IN_TRANS });
      s.answer({ ...OK, status: IN_TRANS }, counterRow('0'));
      s.counting.holdAnswer(m, client, CLIENT_OK, { ok: true, rows: 9, status: IN_TRANS, last: true }, TEXT);
      s.answer({ ...OK, status: IN_TRANS }, counterRow('9'));
      expect(s.sent).toEqual(['COMMIT']);
      s.answer({ ...OK, status: AUTOCOMMIT });
      expect(s.records[0]).toMatchObject({ outcome: 'ok', rowsChanged: 9, reason: note });
    }
  });

  it('ends the session when the rollback fails, and answers an error when the commit fails', () => {
    const s = session();
    const { m } = run(s, 'DELETE FROM t');
    s.answer({ ...OK, status: IN_TRANS });
    s.answer({ ...OK, status: IN_TRANS }, counterRow('0'));
    s.counting.holdAnswer(m, client, CLIENT_OK, { ok: true, rows: 50, status: IN_TRANS, last: true }, TEXT);
    s.answer({ ...OK, status: IN_TRANS }, counterRow('50'));
    s.answer(FAILED);
    expect(s.fatals).toEqual([
      {
        refusal: expect.objectContaining({ message: expect.stringMatching(/could not roll it back/) }),
        seq: 1,
      },
    ]);
    expect(s.answers).toEqual([]);
    // The session is gone: the client's commands are not read again.
    expect(s.log.resumes).toBe(0);

    const c = session();
    const kept = run(c, 'UPDATE t SET x = 1');
    c.answer({ ...OK, status: IN_TRANS });
    c.answer({ ...OK, status: IN_TRANS }, counterRow('0'));
    c.counting.holdAnswer(
      kept.m,
      client,
      CLIENT_OK,
      { ok: true, rows: 1, status: IN_TRANS, last: true },
      TEXT,
    );
    c.answer({ ...OK, status: IN_TRANS }, counterRow('1'));
    c.answer(FAILED);
    expect(c.answers[0]![4]).toBe(0xff);
    expect(c.records[0]).toMatchObject({ outcome: 'error', reason: 'row limit: commit failed (1213)' });
    expect(c.budget.spent('alice')).toBe(0);
  });

  it('plans: nothing to count, held for owed answers, refused or noted when the rows cannot be counted', () => {
    const s = session();
    const plan = (sql: string, limits = [LIMIT], owed = false, refreshed = false) =>
      s.counting.plan({ limits, facts: analyzeMysql(sql, { sqlMode: null }) }, owed, refreshed);
    expect(plan('SELECT 1')).toBeUndefined();
    expect(plan('UPDATE t SET x = 1', [LIMIT], true)).toBe(HOLD_COMMAND);
    expect(s.log.holds).toBe(1);
    expect(s.counting.waitingForQuiet).toBe(true);
    s.counting.resumed();
    expect(s.counting.waitingForQuiet).toBe(false);
    // A table the catalog does not know: reload it first, then refuse.
    expect(plan('UPDATE nowhere SET x = 1')).toBe(HOLD_COMMAND);
    expect(plan('UPDATE nowhere SET x = 1', [LIMIT], false, true)).toMatchObject({
      kind: MysqlError.TABLE_ACCESS_DENIED,
      message: expect.stringMatching(/no base table Gatehouse knows/),
    });
    expect(plan('UPDATE my SET x = 1')).toMatchObject({ reason: expect.stringMatching(/not transactional/) });
    expect(plan('UPDATE my SET x = 1', [WARN])).toEqual({
      note: expect.stringMatching(/^row limit not measured/),
    });
    expect(s.counting.counting).toBe(false);
  });

  it('drops the statement when its audit record is lost, and reads the counters again next time', () => {
    const s = session(IN_TRANS);
    const first = run(s, 'UPDATE t SET x = 1');
    s.answer({ ...OK, status: IN_TRANS });
    s.answer({ ...OK, status: IN_TRANS }, counterRow('1'));
    s.counting.holdAnswer(
      first.m,
      client,
      CLIENT_OK,
      { ok: true, rows: 1, status: IN_TRANS, last: true },
      TEXT,
    );
    s.answer({ ...OK, status: IN_TRANS }, counterRow('2'));
    const second = run(s, 'UPDATE t SET x = 2');
    expect(second.m.internals).toHaveLength(2);
    s.counting.dropped();
    expect(s.counting.counting).toBe(false);
    expect(run(s, 'UPDATE t SET x = 3').prefix).toHaveLength(2);
  });
});
