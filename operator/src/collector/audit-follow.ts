import { setTimeout as sleep } from 'node:timers/promises';
import { UserError } from '../../../sidecar/src/errors.ts';
import { FollowTable, type Kind } from './audit-query-format.ts';
import { type CollectorTarget, collectorRequest, reasonOf, Unavailable } from './collector-http.ts';

/** What the collector's statements, sessions and sources answer. */
export interface Answer {
  readonly items?: Record<string, unknown>[];
  readonly next?: string;
  readonly follow?: string;
  readonly message?: string;
}

export { Unavailable };

export type Ask = (query: URLSearchParams, signal?: AbortSignal) => Promise<Answer>;

/** GETs `url` with `query`; a refusal (4xx), an unverified or unreachable collector is a UserError naming why. */
export function collectorClient(url: string, target: CollectorTarget, authorization: string): Ask {
  return async (query, signal) => {
    const { status, body } = await collectorRequest(target, query.size === 0 ? url : `${url}?${query}`, {
      authorization,
      signal,
    });
    if (status >= 500) throw new Unavailable(`the collector answered ${status}: ${reasonOf(body)}`);
    if (status < 200 || status >= 300)
      throw new UserError(`the collector answered ${status}: ${reasonOf(body)}`);
    return (body as Answer | undefined) ?? {};
  };
}

/** How long a follow waits between questions once it has caught up, and after a failure at most. */
export const FOLLOW_INTERVAL_MS = 1000;
const RETRY_MAX_MS = 15_000;
/** A follow's first answer: the last few records, as `tail -f` starts. */
export const FOLLOW_BACKLOG = 20;
/** Records asked for a question at a time while catching up. */
const FOLLOW_PAGE = 1000;

/**
 * `gatehouse audit query --follow`: prints the newest records (oldest first), then asks the
 * collector every FOLLOW_INTERVAL_MS for what was stored since its last answer (the API's `follow`,
 * exact however late records arrive) and prints it, until SIGINT or SIGTERM, or until whoever reads
 * stdout stops reading (`| head`). An unreachable or failing collector is retried and said once on
 * stderr; a refusal (a bad token, a bad filter) ends it with the collector's reason.
 */
export async function followRecords(options: {
  kind: Kind;
  query: URLSearchParams;
  format: 'table' | 'json';
  ask: Ask;
  intervalMs?: number;
}): Promise<number> {
  const { kind, format, ask } = options;
  const interval = options.intervalMs ?? FOLLOW_INTERVAL_MS;
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  const onOutputError = (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') stop.abort();
    else throw error;
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.stdout.on('error', onOutputError);
  const printer = new FollowTable(kind);
  const print = (items: readonly Record<string, unknown>[]) => {
    if (items.length === 0 || stop.signal.aborted) return;
    const lines = format === 'json' ? items.map((item) => JSON.stringify(item)) : printer.lines(items);
    process.stdout.write(`${lines.join('\n')}\n`);
  };
  try {
    const first = new URLSearchParams(options.query);
    if (!first.has('limit')) first.set('limit', String(FOLLOW_BACKLOG));
    const start = await ask(first, stop.signal);
    if (start.follow === undefined)
      throw new UserError('this collector does not answer follow; it is older than --follow');
    // Newest first from the API; a follow reads down the terminal, oldest first.
    print([...(start.items ?? [])].reverse());
    let follow = start.follow;
    let failing: Unavailable | undefined;
    let wait = interval;
    while (!stop.signal.aborted) {
      const next = new URLSearchParams(options.query);
      next.set('limit', String(FOLLOW_PAGE));
      next.set('follow', follow);
      let answer: Answer;
      try {
        answer = await ask(next, stop.signal);
      } catch (error) {
        if (stop.signal.aborted) break;
        if (!(error instanceof Unavailable)) throw error;
        if (!failing) process.stderr.write(`${error.message}; asking again\n`);
        failing = error;
        wait = Math.min(wait * 2, RETRY_MAX_MS);
        await pause(wait, stop.signal);
        continue;
      }
      if (failing) process.stderr.write('the collector answers again\n');
      failing = undefined;
      wait = interval;
      const items = answer.items ?? [];
      print(items);
      follow = answer.follow ?? follow;
      // A full page means more is waiting: ask again at once.
      if (items.length < FOLLOW_PAGE) await pause(interval, stop.signal);
    }
    return 0;
  } catch (error) {
    if (stop.signal.aborted) return 0;
    throw error;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.stdout.off('error', onOutputError);
  }
}

async function pause(ms: number, signal: AbortSignal): Promise<void> {
  await sleep(ms, undefined, { signal }).catch(() => undefined);
}
