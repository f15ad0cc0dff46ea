import { APPROVAL_PHASES, type ApprovalFilter, type ApprovalPhase } from './approvals-queries.ts';
import type { RecordFilter } from './store-queries.ts';
import { parseSince } from './time-range.ts';
import type { TouchedFilter } from './touched-queries.ts';

/**
 * The query string of the API's questions as filters, or what is wrong with it. The console parses
 * its search forms with these too, so the API, the console and `gatehouse audit query` (which sends
 * the same parameters) ask the store the same question.
 */
export function parseRecordFilter(query: Record<string, string>): RecordFilter | string {
  const filter: { -readonly [K in keyof RecordFilter]: RecordFilter[K] } = {};
  for (const [name, value] of Object.entries(query)) {
    switch (name) {
      case 'session':
      case 'subject':
      case 'database':
      case 'outcome':
      case 'text':
      case 'table':
      case 'column':
      case 'purpose':
      case 'cursor':
      case 'follow':
        filter[name] = value;
        break;
      case 'run_id':
        filter.runId = value;
        break;
      case 'seen':
        if (value !== 'clear' && value !== 'masked') return `seen: must be clear or masked, not "${value}"`;
        filter.seen = value;
        break;
      case 'since':
      case 'until': {
        const time = parseSince(value);
        if (!time) return `${name}: "${value}" is neither a duration (15m, 2h, 7d) nor an ISO 8601 time`;
        filter[name] = time;
        break;
      }
      case 'limit': {
        const limit = Number(value);
        if (!Number.isInteger(limit) || limit < 1) return 'limit: must be a positive integer';
        filter.limit = limit;
        break;
      }
      default:
        return `unknown filter "${name}": use session, subject, database, outcome, text, table, column, seen, purpose, run_id, since, until, limit, cursor, follow`;
    }
  }
  if (filter.column !== undefined && filter.column.split('.').length < 2)
    return `column: name it as TABLE.COLUMN or SCHEMA.TABLE.COLUMN, not "${filter.column}"`;
  if (filter.seen !== undefined && filter.column === undefined) return 'seen: only with column';
  if (filter.cursor !== undefined && filter.follow !== undefined)
    return 'cursor and follow: one or the other (cursor pages back, follow asks what arrived since)';
  return filter;
}

/** The filters /v1/touched takes (the OpenAPI description lists the same). */
export const TOUCHED_FILTERS: ReadonlySet<string> = new Set([
  'subject',
  'database',
  'table',
  'column',
  'seen',
  'purpose',
  'run_id',
  'since',
  'until',
]);

/** The data-touched summary's filters: the statements' filters without session, outcome and paging. */
export function parseTouchedFilter(query: Record<string, string>): TouchedFilter | string {
  for (const name of Object.keys(query))
    if (!TOUCHED_FILTERS.has(name)) return `unknown filter "${name}": use ${[...TOUCHED_FILTERS].join(', ')}`;
  return parseRecordFilter(query);
}

/** The approvals' filters: phase, subject (the requester), database, since, until. */
export function parseApprovalFilter(query: Record<string, string>): ApprovalFilter | string {
  const filter: { -readonly [K in keyof ApprovalFilter]: ApprovalFilter[K] } = {};
  for (const [name, value] of Object.entries(query)) {
    switch (name) {
      case 'phase':
        if (!APPROVAL_PHASES.includes(value as ApprovalPhase))
          return `phase: must be one of ${APPROVAL_PHASES.join(', ')}, not "${value}"`;
        filter.phase = value as ApprovalPhase;
        break;
      case 'subject':
      case 'database':
        filter[name] = value;
        break;
      case 'since':
      case 'until': {
        const time = parseSince(value);
        if (!time) return `${name}: "${value}" is neither a duration (15m, 2h, 7d) nor an ISO 8601 time`;
        filter[name] = time;
        break;
      }
      default:
        return `unknown filter "${name}": use phase, subject, database, since, until`;
    }
  }
  return filter;
}
