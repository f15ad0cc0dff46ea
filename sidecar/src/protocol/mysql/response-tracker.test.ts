import { describe, expect, it } from 'vitest';
import { MysqlError, ServerStatus } from './constants.ts';
import { PayloadWriter } from './packet-io.ts';
import { ResponseTracker, type ResultEnd } from './response-tracker.ts';
import { errPacket } from './server-packets.ts';
import { column, eof, err, ok, okEnd, textRow } from './server-payloads.testing.ts';

const { AUTOCOMMIT, IN_TRANS, MORE_RESULTS_EXISTS } = ServerStatus;
/** A binary-protocol row: header 0x00 (which an OK also starts with), NULL bitmap, values. */
const binaryRow = (value: number) => new PayloadWriter().u8(0).u8(0).u32(value).build();

interface Seen {
  readonly ends: ResultEnd[];
  /** What each packet the tracker did not ask to read was, in order. */
  readonly accounted: string[];
  readonly prepared: number[];
  readonly files: string[];
}

/** Feeds payloads as the session does: classify each, read those asked for and the one that completes. */
function feed(tracker: ResponseTracker, payloads: readonly Buffer[]): Seen {
  const seen: Seen = { ends: [], accounted: [], prepared: [], files: [] };
  for (const payload of payloads) {
    if (!(tracker.classify(payload[0]!, payload.length) || tracker.done)) {
      seen.accounted.push(tracker.lastAccounted ?? '?');
      continue;
    }
    const { end, prepared, localInfile } = tracker.read(payload);
    if (end) seen.ends.push(end);
    if (prepared) seen.prepared.push(prepared.statementId);
    if (localInfile !== undefined) seen.files.push(localInfile);
  }
  return seen;
}

describe('ResponseTracker', () => {
  it.each([true, false])('follows a multi-result text answer (DEPRECATE_EOF %s)', (deprecateEof) => {
    const tracker = new ResponseTracker('results', deprecateEof);
    const more = AUTOCOMMIT | MORE_RESULTS_EXISTS;
    const rowsEnd = (status: number) => (deprecateEof ? okEnd(status) : eof(status));
    const head = (columns: string[]) => [
      new PayloadWriter().lenenc(columns.length).build(),
      ...columns.map(column),
      ...(deprecateEof ? [] : [eof(more)]),
    ];
    const seen = feed(tracker, [
      ...head(['a', 'b']),
      textRow('1', 'x'),
      textRow('2', 'y'),
      rowsEnd(more),
      ok(more, 7),
      ...head(['c']),
      textRow('3'),
      rowsEnd(AUTOCOMMIT | IN_TRANS),
    ]);
    expect(seen.ends.map((e) => ({ ok: e.ok, rows: e.rows, last: e.last, status: e.status }))).toEqual([
      { ok: true, rows: 2, last: false, status: more },
      { ok: true, rows: 7, last: false, status: more },
      { ok: true, rows: 1, last: true, status: AUTOCOMMIT | IN_TRANS },
    ]);
    // Column definitions and rows are never read, only counted (masking reads them by lastAccounted).
    expect(seen.accounted).toEqual(['definition', 'definition', 'row', 'row', 'definition', 'row']);
    expect(tracker.resultIndex).toBe(3);
    expect(tracker.done).toBe(true);
  });

  it('ends the whole answer at an error halfway through the rows of a result', () => {
    const tracker = new ResponseTracker('results', true);
    const seen = feed(tracker, [
      new PayloadWriter().lenenc(1).build(),
      column('a'),
      textRow('1'),
      err(1317, '70100'),
    ]);
    expect(seen.ends).toEqual([
      { ok: false, errorCode: 1317, sqlstate: '70100', status: undefined, last: true },
    ]);
    expect(tracker.done).toBe(true);
    // Packets after the end (none should come) are ignored.
    expect(tracker.read(ok(AUTOCOMMIT))).toEqual({});
  });

  it('ends at an error after an earlier result of a multi-statement text', () => {
    const tracker = new ResponseTracker('results', true);
    const seen = feed(tracker, [ok(AUTOCOMMIT | MORE_RESULTS_EXISTS, 1), err(1146, '42S02')]);
    expect(seen.ends.map((e) => [e.ok, e.last, e.errorCode])).toEqual([
      [true, false, undefined],
      [false, true, 1146],
    ]);
    expect(tracker.resultIndex).toBe(1);
  });

  it("counts a prepared statement's binary rows, whose 0x00 header is no OK", () => {
    const tracker = new ResponseTracker('results', true);
    const seen = feed(tracker, [
      new PayloadWriter().lenenc(1).build(),
      column('n'),
      binaryRow(1),
      binaryRow(2),
      binaryRow(3),
      okEnd(AUTOCOMMIT),
    ]);
    expect(seen.ends).toEqual([{ ok: true, rows: 3, status: AUTOCOMMIT, last: true }]);
    expect(seen.accounted).toEqual(['definition', 'row', 'row', 'row']);
  });

  it('reads the statement id of a COM_STMT_PREPARE answer, and ends one without definitions at once', () => {
    const tracker = new ResponseTracker('prepare', true);
    const seen = feed(tracker, [
      new PayloadWriter().u8(0).u32(41).u16(1).u16(1).u8(0).u16(0).build(),
      column('?'),
      column('a'),
    ]);
    expect(seen.prepared).toEqual([41]);
    // Without EOF packets the last definition completes the answer; a successful prepare has no end
    // to audit (its executions are).
    expect(seen.accounted).toEqual(['definition']);
    expect(tracker.done).toBe(true);
    const withEof = new ResponseTracker('prepare', false);
    expect(
      feed(withEof, [
        new PayloadWriter().u8(0).u32(43).u16(1).u16(0).u8(0).u16(0).build(),
        column('a'),
        eof(AUTOCOMMIT),
      ]).ends,
    ).toEqual([{ ok: true, status: undefined, last: true }]);
    const bare = new ResponseTracker('prepare', false);
    expect(feed(bare, [new PayloadWriter().u8(0).u32(42).u16(0).u16(0).u8(0).u16(0).build()])).toMatchObject({
      prepared: [42],
      ends: [{ ok: true, last: true }],
    });
    expect(bare.done).toBe(true);
    const refused = new ResponseTracker('prepare', true);
    expect(feed(refused, [err(1064, '42000')]).ends[0]).toMatchObject({ ok: false, errorCode: 1064 });
  });

  it('reports a LOAD DATA LOCAL request for a file, and ends at the OK after the upload', () => {
    const tracker = new ResponseTracker('results', true);
    const request = Buffer.concat([Buffer.from([0xfb]), Buffer.from('/tmp/data.csv', 'utf8')]);
    const first = feed(tracker, [request]);
    expect(first.files).toEqual(['/tmp/data.csv']);
    expect(first.ends).toEqual([]);
    expect(tracker.done).toBe(false);
    const after = feed(tracker, [ok(AUTOCOMMIT, 12)]);
    expect(after.ends).toEqual([{ ok: true, rows: 12, status: AUTOCOMMIT, last: true }]);
    expect(tracker.done).toBe(true);
  });

  it("reads a refusal in the proxy's own ERR format as the server's", () => {
    for (const greeted of [true, false]) {
      const tracker = new ResponseTracker('results', true);
      const refusal = errPacket(MysqlError.TABLE_ACCESS_DENIED, 'Gatehouse refused it', 1, greeted);
      const { ends } = feed(tracker, [refusal.subarray(4)]);
      expect(ends).toEqual([
        {
          ok: false,
          errorCode: MysqlError.TABLE_ACCESS_DENIED.code,
          ...(greeted && { sqlstate: MysqlError.TABLE_ACCESS_DENIED.sqlstate }),
          status: undefined,
          last: true,
        },
      ]);
    }
  });

  it('takes one packet for the single-packet commands, and column definitions up to EOF for COM_FIELD_LIST', () => {
    const ping = new ResponseTracker('single', true);
    expect(feed(ping, [ok(AUTOCOMMIT | IN_TRANS)]).ends).toEqual([
      { ok: true, status: AUTOCOMMIT | IN_TRANS, last: true },
    ]);
    const statistics = new ResponseTracker('single', true);
    expect(feed(statistics, [Buffer.from('Uptime: 5  Threads: 1')]).ends).toEqual([
      { ok: true, status: undefined, last: true },
    ]);
    const fields = new ResponseTracker('field-list', false);
    const seen = feed(fields, [column('a'), column('b'), eof(AUTOCOMMIT)]);
    expect(seen.ends).toEqual([{ ok: true, status: undefined, last: true }]);
    expect(seen.accounted).toEqual(['definition', 'definition']);
  });
});
