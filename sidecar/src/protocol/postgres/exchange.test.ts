import { describe, expect, it } from 'vitest';
import type { RowsMeasured } from '../../policy/gates/session-gate.ts';
import { Backend, encodeMessage } from './codes.ts';
import {
  Answer,
  Exchange,
  type Pending,
  type PendingExecute,
  type PendingQuery,
  type RowCheck,
} from './exchange.ts';

const text = { statement: 'SELECT $1', fingerprint: null };
const b = (type: number, body: Buffer = Buffer.alloc(0)) => encodeMessage(type, body);
const int16 = (n: number) => Buffer.from([n >> 8, n & 0xff]);
const int32 = (n: number) => {
  const out = Buffer.alloc(4);
  out.writeInt32BE(n);
  return out;
};
const parseComplete = b(Backend.ParseComplete);
const bindComplete = b(Backend.BindComplete);
const closeComplete = b(Backend.CloseComplete);
const noData = b(Backend.NoData);
const ready = (status = 'I') => b(Backend.ReadyForQuery, Buffer.from(status));
const complete = (tag: string) => b(Backend.CommandComplete, Buffer.from(`${tag}\0`));
const error = b(Backend.ErrorResponse, Buffer.from('SERROR\0C42601\0Msyntax error\0\0'));
const rowDescription = (column: string) =>
  b(Backend.RowDescription, Buffer.concat([int16(1), Buffer.from(`${column}\0`), Buffer.alloc(18)]));
const dataRow = (value: string) =>
  b(Backend.DataRow, Buffer.concat([int16(1), int32(Buffer.byteLength(value)), Buffer.from(value)]));

function query(sql: string, extra: Partial<PendingQuery> = {}): PendingQuery {
  // Split by hand: the parser behind describeQuery is not loaded in these tests.
  const texts = sql.split(';').map((statement) => ({ statement: statement.trim(), fingerprint: null }));
  return { kind: 'query', sql, texts, index: 0, started: 0, stamp: 0, ...extra };
}
const execute = (extra: Partial<PendingExecute> = {}): PendingExecute => ({
  kind: 'execute',
  text,
  started: 0,
  ...extra,
});
const rows = { limits: [], what: 'the update', facts: [] } as unknown as RowsMeasured;

/** Answers in order; returns what each was, by name. */
function run(exchange: Exchange, ...frames: Buffer[]): string[] {
  const names = Object.fromEntries(Object.entries(Answer).map(([name, value]) => [value, name]));
  return frames.map((frame) => names[exchange.answer(frame[0]!, frame)]!);
}
const kinds = (exchange: Exchange) => {
  const out: string[] = [];
  // The queue through its head only, as the session sees it: answer each and look.
  const probe = exchange as unknown as { queue: Pending[] };
  for (const p of probe.queue) out.push(p.kind === 'rowcheck' ? `rowcheck:${p.step}` : p.kind);
  return out;
};

describe('Exchange', () => {
  it('skips to Sync after an error halfway through a pipeline, undoing what the skipped messages did', () => {
    const exchange = new Exchange();
    const undone: string[] = [];
    const done: string[] = [];
    const settlement = (name: string) => ({ done: () => done.push(name), undo: () => undone.push(name) });
    exchange.expect({ kind: 'parse', started: 0, settlement: settlement('parse 1') });
    exchange.expect({ kind: 'bind', settlement: settlement('bind 1') });
    exchange.expect(execute());
    exchange.expect({ kind: 'sync' });
    exchange.expect({ kind: 'parse', started: 0, settlement: settlement('parse 2') });
    exchange.expect({ kind: 'bind', settlement: settlement('bind 2') });
    exchange.expect({ kind: 'close', settlement: settlement('close 2') });
    exchange.expect(execute());
    exchange.expect({ kind: 'sync' });
    expect(run(exchange, parseComplete, bindComplete, complete('SELECT 1'), ready())).toEqual([
      'Settled',
      'Settled',
      'Completed',
      'Ready',
    ]);
    expect(run(exchange, parseComplete)).toEqual(['Settled']);
    expect(run(exchange, error)).toEqual(['Failed']);
    expect(exchange.subject?.kind).toBe('bind');
    // The server skips the Close and Execute; the Bind and Close are undone, latest first.
    expect(kinds(exchange)).toEqual(['sync']);
    expect(undone).toEqual(['close 2', 'bind 2']);
    expect(run(exchange, ready('E'))).toEqual(['Ready']);
    expect(exchange.size).toBe(0);
    expect(exchange.settled()).toBe(true);
  });

  it('completes each statement of a multi-statement Query in turn, and ends it at ReadyForQuery', () => {
    const exchange = new Exchange();
    exchange.expect(query('SELECT 1; SELECT 2; UPDATE t SET a = 1'));
    expect(exchange.settled()).toBe(false);
    const answers = run(
      exchange,
      rowDescription('a'),
      dataRow('1'),
      complete('SELECT 1'),
      rowDescription('b'),
      dataRow('2'),
      complete('SELECT 1'),
    );
    expect(answers).toEqual(['ResultHead', 'Row', 'Completed', 'ResultHead', 'Row', 'Completed']);
    expect(exchange.index).toBe(1);
    expect(run(exchange, error)).toEqual(['Failed']);
    // The failed statement is the third; the rest of the text is not run.
    expect(exchange.index).toBe(2);
    expect((exchange.head as PendingQuery).index).toBe(3);
    expect(run(exchange, ready())).toEqual(['Ready']);
    expect(exchange.size).toBe(0);
  });

  it('takes the error answering a refused Parse as its own, and skips its Bind and Execute', () => {
    const exchange = new Exchange();
    const refusal = { reason: 'no', fields: { severity: 'ERROR', code: '42501', message: 'no' } } as const;
    exchange.expect({ kind: 'parse', started: 1, text, refusal });
    exchange.expect({ kind: 'bind' });
    exchange.expect(execute());
    exchange.expect({ kind: 'sync' });
    expect(run(exchange, error)).toEqual(['Failed']);
    expect(exchange.subject).toMatchObject({ kind: 'parse', refusal });
    expect(kinds(exchange)).toEqual(['sync']);
    run(exchange, ready());
    expect(exchange.size).toBe(0);
  });

  it('replaces a refusal inside a pipeline: the statements before it complete, the stand-in fails', () => {
    const exchange = new Exchange();
    const refusal = { reason: 'no', fields: { severity: 'ERROR', code: '42501', message: 'no' } } as const;
    exchange.expect({ kind: 'bind' });
    exchange.expect(execute());
    exchange.expect({ kind: 'bind' });
    exchange.expect(execute({ refusal }));
    exchange.expect({ kind: 'describe' });
    exchange.expect({ kind: 'sync' });
    expect(run(exchange, bindComplete, complete('INSERT 0 1'), bindComplete, error)).toEqual([
      'Settled',
      'Completed',
      'Settled',
      'Failed',
    ]);
    expect(exchange.subject).toMatchObject({ kind: 'execute', refusal });
    expect(kinds(exchange)).toEqual(['sync']);
  });

  it('ends an Execute at PortalSuspended and runs the next one against the same portal', () => {
    const exchange = new Exchange();
    const first = execute();
    const second = execute();
    exchange.expect(first);
    exchange.expect({ kind: 'sync' });
    expect(run(exchange, dataRow('1'), b(Backend.PortalSuspended), ready('T'))).toEqual([
      'Row',
      'Suspended',
      'Ready',
    ]);
    exchange.expect(second);
    // The next page's rows come straight away, with nothing before them.
    expect(exchange.head).toBe(second);
    expect(run(exchange, dataRow('2'), complete('SELECT 2'))).toEqual(['Row', 'Completed']);
    expect(exchange.subject).toBe(second);
    expect(exchange.size).toBe(0);
  });

  it('answers a FunctionCall with its result, or an error, and ends it at ReadyForQuery', () => {
    const exchange = new Exchange();
    exchange.expect({ kind: 'function', started: 0 });
    expect(run(exchange, b(Backend.FunctionCallResponse, int32(-1)), ready())).toEqual([
      'FunctionResult',
      'Ready',
    ]);
    exchange.expect({ kind: 'function', started: 0 });
    exchange.expect(query('SELECT 1'));
    expect(run(exchange, error)).toEqual(['Failed']);
    expect(kinds(exchange)).toEqual(['function', 'query']);
    run(exchange, ready());
    expect(kinds(exchange)).toEqual(['query']);
  });

  it('follows COPY in and out as part of the statement that started it', () => {
    const exchange = new Exchange();
    exchange.expect(query('COPY t FROM STDIN'));
    expect(
      run(exchange, b(Backend.CopyInResponse, Buffer.from([0, 0, 0])), complete('COPY 2'), ready()),
    ).toEqual(['Forward', 'Completed', 'Ready']);
    exchange.expect(query('COPY t TO STDOUT'));
    const copyData = b(Backend.CopyData, Buffer.from('1\n'));
    expect(
      run(
        exchange,
        b(Backend.CopyOutResponse, Buffer.from([0, 0, 0])),
        copyData,
        copyData,
        b(Backend.CopyDone),
        complete('COPY 2'),
      ),
    ).toEqual(['Forward', 'Forward', 'Forward', 'Forward', 'Completed']);
    expect(exchange.head?.kind).toBe('query');
    run(exchange, ready());
    expect(exchange.size).toBe(0);
  });

  it('drops the answers to its own Describe of a masked statement', () => {
    const exchange = new Exchange();
    exchange.expect({ kind: 'parse', started: 0 });
    exchange.expect({ kind: 'describe', entry: {}, internal: true });
    exchange.expect({ kind: 'describe', entry: {}, internal: true });
    exchange.expect({ kind: 'sync' });
    expect(
      run(
        exchange,
        parseComplete,
        b(Backend.ParameterDescription, int16(0)),
        rowDescription('a'),
        b(Backend.ParameterDescription, int16(0)),
        noData,
      ),
    ).toEqual(['Settled', 'Drop', 'Described', 'Drop', 'Drop']);
    expect(kinds(exchange)).toEqual(['sync']);
  });

  it('holds a simple Query completion for the row check appended to it, and reads the count', () => {
    const exchange = new Exchange();
    const q = query('UPDATE t SET a = 1');
    const check: RowCheck = { rows, column: 'gatehouse_rows_1', after: 0, answering: false, owner: q };
    q.check = check;
    exchange.expect(q);
    expect(run(exchange, complete('UPDATE 3'))).toEqual(['Completed']);
    // The session holds the completion it was given.
    check.held = { frame: complete('UPDATE 3'), text, command: 'UPDATE', rows: 3 };
    expect(run(exchange, rowDescription('gatehouse_rows_1'), dataRow('3'))).toEqual(['Drop', 'CheckRow']);
    expect(check.count).toBe(3);
    expect(run(exchange, complete('SELECT 1'))).toEqual(['CheckDone']);
    expect(exchange.check).toBe(check);
    expect(q.check).toBeUndefined();
    run(exchange, ready());
    expect(exchange.size).toBe(0);
  });

  it('lets a held completion go when the server ran more statements than were split', () => {
    const exchange = new Exchange();
    const q = query('UPDATE t SET a = 1');
    const check: RowCheck = { rows, column: 'gatehouse_rows_2', after: 0, answering: false, owner: q };
    q.check = check;
    exchange.expect(q);
    run(exchange, complete('UPDATE 1'));
    check.held = { frame: complete('UPDATE 1'), text, command: 'UPDATE' };
    expect(run(exchange, rowDescription('other'))).toEqual(['Stray']);
    check.held = undefined;
    expect(run(exchange, rowDescription('other'))).toEqual(['ResultHead']);
  });

  it('fails a simple Query whose row check raised, naming the check', () => {
    const exchange = new Exchange();
    const q = query('DELETE FROM t');
    const check: RowCheck = { rows, column: 'gatehouse_rows_3', answering: false, owner: q };
    q.check = check;
    exchange.expect(q);
    run(exchange, complete('DELETE 9'));
    check.held = { frame: complete('DELETE 9'), text, command: 'DELETE' };
    expect(run(exchange, error)).toEqual(['Failed']);
    expect(exchange.check).toBe(check);
    expect(q.check).toBeUndefined();
  });

  it('drops the answers to the extended row check sent after an Execute, and closes a failed one later', () => {
    const exchange = new Exchange();
    const first = execute();
    const check: RowCheck = { rows, answering: true, owner: first };
    exchange.expect(first);
    expect(exchange.expectRowCheck(first, check, 'gatehouse_rows_a')).toEqual([]);
    exchange.expect({ kind: 'sync' });
    expect(
      run(
        exchange,
        complete('UPDATE 2'),
        parseComplete,
        bindComplete,
        dataRow('2'),
        complete('SELECT 1'),
        closeComplete,
        ready(),
      ),
    ).toEqual(['Completed', 'Drop', 'Drop', 'CheckRow', 'CheckDone', 'Drop', 'Ready']);
    expect(check.count).toBe(2);
    expect(exchange.size).toBe(0);

    // A check that raises: its Close is skipped with the rest, and sent before the next check.
    const second = execute();
    const failing: RowCheck = { rows, answering: true, owner: second };
    exchange.expect(second);
    exchange.expectRowCheck(second, failing, 'gatehouse_rows_b');
    exchange.expect({ kind: 'sync' });
    expect(run(exchange, complete('UPDATE 99'), parseComplete, bindComplete, error)).toEqual([
      'Completed',
      'Drop',
      'Drop',
      'Failed',
    ]);
    expect(exchange.check).toBe(failing);
    expect(kinds(exchange)).toEqual(['sync']);
    run(exchange, ready('E'));
    const third = execute();
    exchange.expect(third);
    expect(
      exchange.expectRowCheck(third, { rows, answering: true, owner: third }, 'gatehouse_rows_c'),
    ).toEqual(['gatehouse_rows_b']);
    expect(kinds(exchange)).toEqual([
      'execute',
      'rowcheck:close',
      'rowcheck:parse',
      'rowcheck:bind',
      'rowcheck:execute',
      'rowcheck:close',
    ]);
  });
});
