import type { ApprovalWindowSpec, Weekday } from '../../../crds/guardrail.ts';
import { WEEKDAYS } from '../../../crds/guardrail.ts';

/** Whether the runtime's time-zone database knows `name` (an IANA zone such as `Europe/Paris`). */
export function isTimeZone(name: string): boolean {
  try {
    formatterFor(name);
    return true;
  } catch {
    return false;
  }
}

/**
 * Whether `at` falls inside the window, read on the wall clock of the window's time zone. A window
 * whose `to` is not after its `from` runs past midnight into the next day (`22:00`–`06:00`), and
 * `from` equal to `to` is a whole day; `days` name the day the window opens on.
 */
export function withinWindow(window: ApprovalWindowSpec, at: Date): boolean {
  const { day, minute } = wallClock(at, window.timeZone ?? 'UTC');
  const from = minutesOf(window.from);
  const to = minutesOf(window.to);
  const opensOn = (d: Weekday) => window.days === undefined || window.days.includes(d);
  if (from < to) return opensOn(day) && minute >= from && minute < to;
  return (opensOn(day) && minute >= from) || (opensOn(previousDay(day)) && minute < to);
}

function minutesOf(clock: string): number {
  return Number(clock.slice(0, 2)) * 60 + Number(clock.slice(3, 5));
}

function previousDay(day: Weekday): Weekday {
  return WEEKDAYS[(WEEKDAYS.indexOf(day) + WEEKDAYS.length - 1) % WEEKDAYS.length]!;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let formatter = formatters.get(timeZone);
  if (!formatter) {
    // Throws RangeError for a zone the runtime does not know.
    formatter = new Intl.DateTimeFormat('en-US', {
      timeZone,
      weekday: 'short',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
    });
    formatters.set(timeZone, formatter);
  }
  return formatter;
}

function wallClock(at: Date, timeZone: string): { day: Weekday; minute: number } {
  let day: Weekday | undefined;
  let hour = 0;
  let minute = 0;
  for (const part of formatterFor(timeZone).formatToParts(at)) {
    if (part.type === 'weekday') day = part.value as Weekday;
    else if (part.type === 'hour') hour = Number(part.value);
    else if (part.type === 'minute') minute = Number(part.value);
  }
  if (day === undefined || !WEEKDAYS.includes(day)) throw new Error(`no weekday for ${at.toISOString()}`);
  return { day, minute: hour * 60 + minute };
}
