import { describe, expect, it } from 'vitest';
import { formatRecord } from './pretty-log.ts';

const base = { time: '2026-12-06T22:41:07.123Z', service: 'gatehouse', pid: 1, hostname: 'h' };

describe('formatRecord', () => {
  it.each([
    [{ ...base, level: 30, msg: 'session started' }, '22:41:07 INFO  session started'],
    [
      { ...base, level: 40, msg: 'slow', session: 'abc', rows: 3, tls: false },
      '22:41:07 WARN  slow  session=abc rows=3 tls=false',
    ],
    [
      { ...base, level: 50, msg: 'cannot open', reason: 'connect ECONNREFUSED 127.0.0.1:1' },
      '22:41:07 ERROR cannot open  reason="connect ECONNREFUSED 127.0.0.1:1"',
    ],
    [
      {
        ...base,
        level: 50,
        msg: 'failed',
        err: { type: 'Error', message: 'boom', stack: 'Error: boom\n at x' },
      },
      '22:41:07 ERROR failed  err=boom',
    ],
    [{ ...base, level: 60, msg: 'x', audit: { seq: 1 } }, '22:41:07 FATAL x  audit={"seq":1}'],
  ])('%j', (record, line) => {
    expect(formatRecord(`${JSON.stringify(record)}\n`, false)).toBe(line);
  });

  it('passes a line that is not JSON through as it is', () => {
    expect(formatRecord('not json\n', false)).toBe('not json');
  });

  it('colours the level and dims the fields on a colour terminal', () => {
    expect(formatRecord(JSON.stringify({ ...base, level: 40, msg: 'm', a: 1 }), true)).toBe(
      '22:41:07 \x1b[33mWARN \x1b[0m m  \x1b[2ma=1\x1b[0m',
    );
  });
});
