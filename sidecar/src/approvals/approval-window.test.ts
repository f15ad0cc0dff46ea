import { describe, expect, it } from 'vitest';
import type { ApprovalWindowSpec } from '../../../crds/guardrail.ts';
import { isTimeZone, withinWindow } from './approval-window.ts';

const at = (iso: string) => new Date(iso);

describe('withinWindow', () => {
  // 2026-12-07 is a Monday.
  const cases: [string, ApprovalWindowSpec, string, boolean][] = [
    ['inside a daytime window', { from: '09:00', to: '17:00' }, '2026-12-07T12:00:00Z', true],
    ['at the opening minute', { from: '09:00', to: '17:00' }, '2026-12-07T09:00:00Z', true],
    ['at the closing minute (closed)', { from: '09:00', to: '17:00' }, '2026-12-07T17:00:00Z', false],
    ['before opening', { from: '09:00', to: '17:00' }, '2026-12-07T08:59:59Z', false],
    ['on a listed day', { days: ['Mon'], from: '09:00', to: '17:00' }, '2026-12-07T10:00:00Z', true],
    ['on an unlisted day', { days: ['Tue'], from: '09:00', to: '17:00' }, '2026-12-07T10:00:00Z', false],
    ['overnight, before midnight', { from: '22:00', to: '06:00' }, '2026-12-07T23:30:00Z', true],
    ['overnight, after midnight', { from: '22:00', to: '06:00' }, '2026-12-08T05:59:00Z', true],
    ['overnight, after it closed', { from: '22:00', to: '06:00' }, '2026-12-08T06:00:00Z', false],
    [
      'overnight, the day after the opening day',
      { days: ['Mon'], from: '22:00', to: '06:00' },
      '2026-12-08T03:00:00Z',
      true,
    ],
    [
      'overnight, the morning of the opening day',
      { days: ['Mon'], from: '22:00', to: '06:00' },
      '2026-12-07T03:00:00Z',
      false,
    ],
    [
      'equal from and to is a whole day',
      { days: ['Mon'], from: '00:00', to: '00:00' },
      '2026-12-07T23:59:00Z',
      true,
    ],
    ['a whole day ends', { days: ['Mon'], from: '00:00', to: '00:00' }, '2026-12-08T00:00:00Z', false],
    // 12:00 UTC is 13:00 in Paris (CET): inside 13:00-14:00 there, outside in UTC.
    [
      'read in its time zone',
      { from: '13:00', to: '14:00', timeZone: 'Europe/Paris' },
      '2026-12-07T12:30:00Z',
      true,
    ],
    ['not in UTC', { from: '13:00', to: '14:00' }, '2026-12-07T12:30:00Z', false],
    // 2026-12-07T02:00Z is Sunday 21:00 in New York.
    [
      "the day is the zone's day",
      { days: ['Sun'], from: '20:00', to: '22:00', timeZone: 'America/New_York' },
      '2026-12-07T02:00:00Z',
      true,
    ],
  ];
  it.each(cases)('%s', (_name, window, time, expected) => {
    expect(withinWindow(window, at(time))).toBe(expected);
  });

  it('agrees with a minute-by-minute reading of the week for every overnight and daytime window', () => {
    // Generated: windows at every 90 minutes, checked against a direct count of minutes since opening.
    const monday = Date.parse('2026-12-07T00:00:00Z');
    for (let from = 0; from < 1440; from += 90) {
      for (let to = 0; to < 1440; to += 150) {
        const clock = (m: number) =>
          `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;
        const window: ApprovalWindowSpec = { days: ['Wed'], from: clock(from), to: clock(to) };
        const length = to > from ? to - from : to - from + 1440;
        for (let minute = 0; minute < 7 * 1440; minute += 37) {
          const opening = 2 * 1440 + from; // Wednesday
          const expected = minute >= opening && minute < opening + length;
          expect(
            withinWindow(window, new Date(monday + minute * 60_000)),
            `${window.from}-${window.to} at ${minute}`,
          ).toBe(expected);
        }
      }
    }
  });
});

describe('isTimeZone', () => {
  it.each(['UTC', 'Europe/Paris', 'America/New_York', 'Asia/Kolkata'])('knows %s', (zone) => {
    expect(isTimeZone(zone)).toBe(true);
  });
  it.each(['Mars/Olympus', 'Europe/Pariss', '', 'not a zone'])('refuses %j', (zone) => {
    expect(isTimeZone(zone)).toBe(false);
  });
});
