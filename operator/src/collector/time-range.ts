/**
 * A point in time as people write one for a query: a duration back from now (`90s`, `15m`, `2h`,
 * `7d`) or an ISO 8601 time. Undefined for anything else, so the caller can name the bad value.
 */
export function parseSince(text: string, now = new Date()): Date | undefined {
  const duration = /^(\d{1,9})(s|m|h|d)$/.exec(text.trim());
  if (duration) {
    const unit = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[duration[2] as 's' | 'm' | 'h' | 'd'];
    return new Date(now.getTime() - Number(duration[1]) * unit);
  }
  if (!/^\d{4}-\d{2}-\d{2}/.test(text)) return undefined;
  const time = new Date(text);
  return Number.isNaN(time.getTime()) ? undefined : time;
}
