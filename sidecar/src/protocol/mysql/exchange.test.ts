import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { RowBudget } from '../../policy/guardrails/row-limits.ts';
import { HOLD_COMMAND } from './command-framer.ts';
import { MysqlError, ServerStatus } from './constants.ts';
import { MysqlExchange } from './exchange.ts';
import { PayloadWriter, packet } from './packet-io.ts';
import { PacketScanner } from './packet-scanner.ts';
import { type Pending, PreparedStatements } from './pending.ts';
import type { ResultEnd } from './response-tracker.ts';
import { RowCounting } from './row-counting.ts';
import { buildTableCatalog } from './row-measure.ts';
import { column, err, ok, okEnd, textRow } from './server-payloads.testing.ts';

const { AUTOCOMMIT, IN_TRANS, MORE_RESULTS_EXISTS } = ServerStatus;
const text = (statement: string) => ({ statement, fingerprint: null });

/** An exchange without sockets: what it records, ends and hands the client. */
function harness() {
  const records: {
    text: string | null;
    outcome: string;
    rows?: number;
    sqlstate?: string;
    reason?: string;
  }[] = [];
  const fatals: { code: number; reason: string }[] = [];
  const events: string[] = [];
  const prepared = new PreparedStatements();
  const counting = new RowCounting(
    {
      owe: () => {
        throw new Error('not counting');
      },
      send: () => {},
      answer: () => {},
      record: () => {},
      fatal: () => {},
      hold: () => HOLD_COMMAND,
      resume: () => {},
      status: () => AUTOCOMMIT,
    },
    {
      code: { tables: () => buildTableCatalog([], []) },
      database: 'app',
      rowBudget: new RowBudget(),
      subject: 'alice',
      mariadb: true,
      logger: pino({ level: 'silent' }),
    },
  );
  const exchange = new MysqlExchange(
    {
      record: (_via, _started, t, outcome, extra) => records.push({ text: t.statement, outcome, ...extra }),
      fatal: (kind, _message, reason) => fatals.push({ code: kind.code, reason }),
      serverEnding: () => events.push('server-ending'),
      uploadStarted: () => events.push('upload'),
      completed: (head) => events.push(`completed ${head.command}`),
      settled: () => events.push('settled'),
      masking: () => undefined,
    },
    { counting, prepared, deprecateEof: true, status: AUTOCOMMIT, logger: pino({ level: 'silent' }) },
  );
  const scanner = new PacketScanner(1 << 20);
  let seq = 1;
  /** The server sends these payloads (in one chunk); returns what the client gets, packet by packet. */
  const serve = (...payloads: Buffer[]): Buffer[] => {
    const out: Buffer[] = [];
    const chunk = Buffer.concat(payloads.map((p) => packet(p, seq++)));
    scanner.scan(chunk, exchange.classify, exchange.handle, (b) => out.push(b));
    return splitPackets(Buffer.concat(out));
  };
  return { exchange, prepared, records, fatals, events, serve };
}

function splitPackets(bytes: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < bytes.length; ) {
    const length = bytes.readUIntLE(at, 3);
    out.push(bytes.subarray(at + 4, at + 4 + length));
    at += 4 + length;
  }
  return out;
}

const refusal = { kind: MysqlError.TABLE_ACCESS_DENIED, message: 'Gatehouse refused it', reason: 'test' };

describe('MysqlExchange', () => {
  it('sends a refusal queued behind an owed answer right after that answer, and one with nothing before it at once', () => {
    const h = harness();
    h.exchange.expect('results', { via: 'text', texts: [text('SELECT 1')], started: 0, command: 'QUERY' });
    h.exchange.refuse(refusal, [text('DELETE FROM t')], 'text', 1, 0);
    // The refusal waits: an answer is owed before it.
    const early: Buffer[] = [];
    expect(h.exchange.takeRefusals((b) => early.push(b))).toBe(false);
    expect(h.exchange.answersOwed).toBe(true);
    const out = h.serve(new PayloadWriter().lenenc(1).build(), column('1'), textRow('1'), okEnd(AUTOCOMMIT));
    expect(out).toHaveLength(4 + 1);
    expect(out[4]![0]).toBe(0xff);
    expect(out[4]!.toString('utf8')).toContain('Gatehouse refused it');
    expect(h.exchange.empty).toBe(true);
    expect(h.records.map((r) => [r.text, r.outcome])).toEqual([
      ['DELETE FROM t', 'refused'],
      ['SELECT 1', 'ok'],
    ]);
    expect(h.events).toEqual(['completed QUERY', 'settled']);
    // Nothing owed: the next refusal is handed over at once.
    h.exchange.refuse(refusal, [], 'text', 1, 0);
    const now: Buffer[] = [];
    expect(h.exchange.takeRefusals((b) => now.push(b))).toBe(true);
    expect(now).toHaveLength(1);
    expect(h.records.at(-1)).toMatchObject({ text: null, outcome: 'refused' });
  });

  it('audits each statement of a multi-statement text, and an error halfway ends the answer', () => {
    const h = harness();
    const texts = [text('UPDATE t SET x = 1'), text('SELECT * FROM t'), text('DELETE FROM nowhere')];
    h.exchange.expect('results', { via: 'text', texts, started: 0, command: 'QUERY' });
    const more = AUTOCOMMIT | IN_TRANS | MORE_RESULTS_EXISTS;
    const out = h.serve(
      ok(more, 3),
      new PayloadWriter().lenenc(1).build(),
      column('x'),
      textRow('1'),
      textRow('2'),
      okEnd(more),
      err(1146, '42S02'),
    );
    expect(out).toHaveLength(7);
    expect(h.records).toEqual([
      expect.objectContaining({ text: 'UPDATE t SET x = 1', outcome: 'ok', rows: 3 }),
      expect.objectContaining({ text: 'SELECT * FROM t', outcome: 'ok', rows: 2 }),
      expect.objectContaining({ text: 'DELETE FROM nowhere', outcome: 'error', sqlstate: '42S02' }),
    ]);
    expect(h.exchange.status).toBe(more);
    expect(h.exchange.empty).toBe(true);
  });

  it("drops the answer to a command of the proxy's own, reading its rows for it", () => {
    const h = harness();
    const rows: string[] = [];
    let done: ResultEnd | undefined;
    h.exchange.owe('ROW LIMIT', {
      onRow: (row) => rows.push(row.toString('utf8', 1)),
      onDone: (end) => {
        done = end;
      },
    });
    h.exchange.expect('single', { started: 0, command: 'PING' });
    const out = h.serve(
      new PayloadWriter().lenenc(1).build(),
      column('n'),
      textRow('42'),
      okEnd(AUTOCOMMIT),
      ok(AUTOCOMMIT),
    );
    // Only the PING's OK reaches the client.
    expect(out).toEqual([ok(AUTOCOMMIT)]);
    expect(rows).toEqual(['42']);
    expect(done).toMatchObject({ ok: true, rows: 1, last: true });
    expect(h.events).toEqual(['completed ROW LIMIT', 'settled', 'completed PING', 'settled']);
  });

  it('relays a LOAD DATA LOCAL request for the file the statement named, and ends the session for another', () => {
    const request = (file: string) => Buffer.concat([Buffer.from([0xfb]), Buffer.from(file, 'utf8')]);
    const h = harness();
    h.exchange.expect('results', {
      via: 'text',
      texts: [text("LOAD DATA LOCAL INFILE 'a.csv' INTO TABLE t")],
      started: 0,
      command: 'QUERY',
      localInfiles: ['a.csv'],
    });
    expect(h.serve(request('a.csv'))).toEqual([request('a.csv')]);
    expect(h.events).toEqual(['upload']);
    expect(h.serve(ok(AUTOCOMMIT, 5))).toHaveLength(1);
    expect(h.records[0]).toMatchObject({ outcome: 'ok', rows: 5 });

    for (const file of ['/home/app/.ssh/id_rsa', 'A.csv', 'a.csv ', '']) {
      const other = harness();
      other.exchange.expect('results', {
        via: 'text',
        texts: [text('LOAD DATA LOCAL')],
        started: 0,
        command: 'QUERY',
        localInfiles: ['a.csv'],
      });
      expect(other.serve(request(file)), file).toEqual([]);
      expect(other.fatals).toEqual([{ code: MysqlError.MALFORMED.code, reason: 'protocol-error' }]);
    }
    // A statement that named no file: any request ends the session.
    const none = harness();
    none.exchange.expect('results', { via: 'text', texts: [text('SELECT 1')], started: 0, command: 'QUERY' });
    expect(none.serve(request('a.csv'))).toEqual([]);
    expect(none.fatals).toHaveLength(1);
  });

  it('withholds the text of a server error for a command that touches masked data', () => {
    const h = harness();
    h.exchange.expect('results', {
      via: 'text',
      texts: [text('SELECT extractvalue(1, ssn) FROM t')],
      started: 0,
      command: 'QUERY',
      withholdsServerText: true,
    });
    const [answer] = h.serve(err(1105, 'HY000', "XPATH syntax error: '~123-45-6789'"));
    expect(answer!.readUInt16LE(1)).toBe(1105);
    expect(answer!.toString('utf8')).not.toContain('123-45-6789');
  });

  it('remembers the statement id a prepare got, and forgets the last prepare when it fails', () => {
    const h = harness();
    const select = { text: text('SELECT ?') };
    const broken = { text: text('SELEKT') };
    h.prepared.last = select;
    h.exchange.expect('prepare', { started: 0, command: 'PREPARE', prepares: select });
    h.serve(new PayloadWriter().u8(0).u32(7).u16(0).u16(1).u8(0).u16(0).build(), column('?'));
    expect(h.prepared.get(7)).toBe(select);
    h.prepared.last = broken;
    h.exchange.expect('prepare', { started: 0, command: 'PREPARE', prepares: broken });
    h.serve(err(1064, '42000'));
    expect(h.prepared.get(0xffffffff)).toBeUndefined();
    expect(h.records).toEqual([
      expect.objectContaining({ text: 'SELEKT', outcome: 'error', sqlstate: '42000' }),
    ]);
  });

  it('puts a refusal in the place of a command that never went', () => {
    const h = harness();
    h.exchange.expect('single', { started: 0, command: 'PING' });
    h.exchange.expect('results', { via: 'text', texts: [text('SELECT 2')], started: 0, command: 'QUERY' });
    const lost = h.exchange.last() as Pending;
    h.exchange.expect('single', { started: 0, command: 'PING' });
    h.exchange.refuseInstead(lost, refusal, [text('SELECT 2')], 'text', 1, 0);
    // The first PING's OK, then the refusal in the second command's place; the last PING is still owed.
    const out = h.serve(ok(AUTOCOMMIT));
    expect(out.map((p) => p[0])).toEqual([0x00, 0xff]);
    expect(h.exchange.answersOwed).toBe(true);
    expect(h.serve(ok(AUTOCOMMIT))).toHaveLength(1);
    expect(h.exchange.empty).toBe(true);
  });

  it('passes a packet nobody asked for, and notes an ERR as the server ending the session', () => {
    const h = harness();
    const goodbye = err(1927, '70100', 'Connection was killed');
    expect(h.serve(goodbye)).toEqual([goodbye]);
    expect(h.events).toEqual(['server-ending']);
  });
});
