/*
 * Calendar arithmetic for date and timestamp masks. PostgreSQL's binary dates count days from
 * 2000-01-01; the civil-from-days conversion is the proleptic Gregorian one PostgreSQL uses.
 */

/** An ISO date (DateStyle ISO, as drivers set it) and whatever follows it in a timestamp. */
export interface IsoDate {
  readonly year: number;
  readonly month: number;
  readonly day: number;
  /** The time-zone offset at the end of a timestamptz (`+02`, `-05:30`), or ''. */
  readonly zone: string;
}

const ISO =
  /^(\d{4,})-(\d{2})-(\d{2})(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?([+-]\d{2}(?::?\d{2}){0,2}|Z)?)?$/;

export function parseIsoDate(text: string): IsoDate | null {
  const m = ISO.exec(text);
  if (m === null) return null;
  return { year: Number(m[1]), month: Number(m[2]), day: Number(m[3]), zone: m[4] ?? '' };
}

export function formatDate(year: number, month: number, day: number): string {
  return `${String(year).padStart(4, '0')}-${String(month).padStart(2, '0')}-${String(day).padStart(2, '0')}`;
}

/** Days from 1970-01-01 (Howard Hinnant's days_from_civil). */
export function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

export function civilFromDays(days: number): { year: number; month: number; day: number } {
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor(
    (doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365,
  );
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  return { year: yoe + era * 400 + (month <= 2 ? 1 : 0), month, day };
}

/** PostgreSQL's epoch for binary dates and timestamps, in days from 1970-01-01. */
export const POSTGRES_EPOCH_DAYS = daysFromCivil(2000, 1, 1);

export function daysInYear(year: number): number {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 366 : 365;
}
