import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { Logger } from 'pino';
import { queryApprovals } from './approvals-queries.ts';
import { type Caller, mayShip, Unauthenticated } from './collector-auth.ts';
import type { CollectorMetrics } from './collector-metrics.ts';
import type { ConsoleEnv } from './console/console-env.ts';
import { collectorOpenApi } from './openapi.ts';
import { parseApprovalFilter, parseRecordFilter, parseTouchedFilter } from './record-filter.ts';
import { type CollectorStore, ResetRefused, type SourceKey } from './store.ts';
import { CursorError, queryRecords, querySessions, queryStatements } from './store-queries.ts';
import { queryTouched } from './touched-queries.ts';

/** The most lines one POST may carry; shippers send fewer (see ship.ts). */
export const MAX_BATCH_LINES = 10_000;
const MAX_BODY_BYTES = 32 * 1024 * 1024;

/**
 * The collector's HTTP API, stateless over the store so that replicas can share one:
 *
 *   POST /v1/records     {"source": {cluster, namespace, pod, database, logKeyId}, "lines": [...]}
 *                        → {"acknowledged": SEQ, "status", "stored", "duplicates"}; no lines: just ask
 *   GET  /metrics        Prometheus metrics (unauthenticated: counts only)
 *   GET  /v1/openapi.json  this API as OpenAPI 3.1 (openapi.ts), without authentication
 *   GET  /v1/sources     every source and its chain status
 *   POST /v1/sources/:id/reset  {"reason"} → the reset: an admin accepts a flagged source's damage
 *   GET  /v1/statements  ?session=&subject=&database=&outcome=&text=&table=&column=&seen=&purpose=&run_id=&since=&until=&limit=&cursor=&follow=
 *   GET  /v1/sessions    the same filters (table and column match no session: they are statements')
 *                        Both answer {"items", "next"?, "follow"}; `follow=` asks what was stored since.
 *   GET  /v1/records     ?type=T1,T2&since=&until=&limit=&cursor=: records as written, any type, with their
 *                        source (for `gatehouse evidence build --server`)
 *   GET  /v1/touched     per identity, per table and column, clear or masked (statements' filters, no paging)
 *   GET  /v1/approvals   ?phase=&subject=&database=&since=&until=  approval requests as the records tell them
 *
 * Errors are JSON `{"problem", "message"}`, as in the approvals API.
 */
export function collectorApi(options: {
  store: CollectorStore;
  authenticate: (header: string | undefined) => Promise<Caller>;
  logger: Logger;
  /** Served unauthenticated at GET /metrics (counts only, no record content), as Prometheus scrapes. */
  metrics?: CollectorMetrics;
  /** The web console (console/console-app.ts), served at /console when given. */
  console?: Hono<ConsoleEnv>;
}): Hono<{ Variables: { caller: Caller } }> {
  const { store, authenticate, logger, metrics } = options;
  const app = new Hono<{ Variables: { caller: Caller } }>();
  if (options.console) {
    app.route('/console', options.console as unknown as Hono<{ Variables: { caller: Caller } }>);
    for (const path of ['/', '/console/']) app.get(path, (c) => c.redirect('/console', 303));
  }

  app.onError((error, c) => {
    logger.error({ err: error.message }, 'collector API failed');
    return problem(c, 500, 'internal', 'the collector failed; see its log');
  });
  app.notFound((c) => problem(c, 404, 'not-found', 'no such route; see docs/collector.md'));
  app.get('/healthz', (c) => c.text('ok'));
  if (metrics)
    app.get('/metrics', async (c) =>
      c.body(await metrics.registry.metrics(), 200, { 'content-type': metrics.registry.contentType }),
    );
  // Before the authentication below: the description of the API is no secret.
  app.get('/v1/openapi.json', (c) => c.json(collectorOpenApi()));

  app.use(
    '/v1/*',
    bodyLimit({
      maxSize: MAX_BODY_BYTES,
      onError: (c) => problem(c, 413, 'invalid', `the body is over ${MAX_BODY_BYTES / 1024 / 1024} MiB`),
    }),
  );
  app.use('/v1/*', async (c, next) => {
    try {
      c.set('caller', await authenticate(c.req.header('authorization')));
    } catch (error) {
      if (!(error instanceof Unauthenticated)) throw error;
      c.header('www-authenticate', 'Basic realm="gatehouse", Bearer');
      return problem(c, 401, 'unauthenticated', error.message);
    }
    await next();
  });

  app.post('/v1/records', async (c) => {
    const body = parseBatch(await c.req.json().catch(() => undefined));
    if (typeof body === 'string') return problem(c, 400, 'invalid', body);
    const refusal = mayShip(c.get('caller'), body.source);
    if (refusal) return problem(c, 403, 'forbidden', refusal);
    if (body.lines.length === 0) return c.json({ acknowledged: await store.acknowledged(body.source) });
    const outcome = await store.ingest(body.source, body.lines);
    metrics?.ingested(outcome);
    if (outcome.status !== 'ok')
      logger.warn({ source: body.source, status: outcome.status }, 'source chain damaged');
    return c.json(outcome);
  });

  const reader = (c: { get: (key: 'caller') => Caller }) => c.get('caller').reader;
  app.get('/v1/sources', async (c) => {
    if (!reader(c)) return problem(c, 403, 'forbidden', `${c.get('caller').subject} may not read the audit`);
    return c.json({ items: await store.sources() });
  });
  app.post('/v1/sources/:id/reset', async (c) => {
    const caller = c.get('caller');
    if (!caller.admin) return problem(c, 403, 'forbidden', `${caller.subject} may not reset sources`);
    const id = Number(c.req.param('id'));
    if (!Number.isSafeInteger(id) || id < 1) return problem(c, 404, 'not-found', 'no such source');
    const body = (await c.req.json().catch(() => undefined)) as { reason?: unknown } | undefined;
    const reason = typeof body?.reason === 'string' ? body.reason.trim() : '';
    if (reason === '' || reason.length > 1000)
      return problem(c, 400, 'invalid', 'reason: say why the damage is accepted (1 to 1000 characters)');
    try {
      const reset = await store.resetSource(id, caller.subject, reason);
      logger.warn({ source: id, by: caller.subject, previousStatus: reset.previousStatus }, 'source reset');
      return c.json(reset);
    } catch (error) {
      if (!(error instanceof ResetRefused)) throw error;
      return error.kind === 'not-found'
        ? problem(c, 404, 'not-found', error.message)
        : problem(c, 409, 'conflict', error.message);
    }
  });
  for (const [path, query] of [
    ['/v1/statements', queryStatements],
    ['/v1/sessions', querySessions],
  ] as const) {
    app.get(path, async (c) => {
      if (!reader(c))
        return problem(c, 403, 'forbidden', `${c.get('caller').subject} may not read the audit`);
      const filter = parseRecordFilter(c.req.query());
      if (typeof filter === 'string') return problem(c, 400, 'invalid', filter);
      try {
        return c.json(await query(store.db, filter));
      } catch (error) {
        if (error instanceof CursorError) return problem(c, 400, 'invalid', error.message);
        throw error;
      }
    });
  }
  app.get('/v1/records', async (c) => {
    if (!reader(c)) return problem(c, 403, 'forbidden', `${c.get('caller').subject} may not read the audit`);
    const { type, ...rest } = c.req.query();
    const filter = parseRecordFilter(rest);
    if (typeof filter === 'string') return problem(c, 400, 'invalid', filter);
    const types = type === undefined || type === '' ? [] : type.split(',');
    if (types.some((t) => !/^[a-z.]{1,40}$/.test(t)))
      return problem(
        c,
        400,
        'invalid',
        `type: record types separated by commas (statement,approval), not "${type}"`,
      );
    try {
      return c.json(await queryRecords(store.db, { ...filter, types }));
    } catch (error) {
      if (error instanceof CursorError) return problem(c, 400, 'invalid', error.message);
      throw error;
    }
  });
  app.get('/v1/touched', async (c) => {
    if (!reader(c)) return problem(c, 403, 'forbidden', `${c.get('caller').subject} may not read the audit`);
    const filter = parseTouchedFilter(c.req.query());
    if (typeof filter === 'string') return problem(c, 400, 'invalid', filter);
    return c.json(await queryTouched(store.db, filter));
  });
  app.get('/v1/approvals', async (c) => {
    if (!reader(c)) return problem(c, 403, 'forbidden', `${c.get('caller').subject} may not read the audit`);
    const filter = parseApprovalFilter(c.req.query());
    if (typeof filter === 'string') return problem(c, 400, 'invalid', filter);
    return c.json(await queryApprovals(store.db, filter));
  });
  return app;
}

const SOURCE_FIELDS = ['cluster', 'namespace', 'pod', 'database', 'logKeyId'] as const;

function parseBatch(body: unknown): { source: SourceKey; lines: string[] } | string {
  if (typeof body !== 'object' || body === null)
    return 'send a JSON object {"source": {...}, "lines": [...]}';
  const { source, lines } = body as { source?: Record<string, unknown>; lines?: unknown };
  if (typeof source !== 'object' || source === null)
    return `source: must be an object with ${SOURCE_FIELDS.join(', ')}`;
  for (const field of SOURCE_FIELDS) {
    const value = source[field];
    if (typeof value !== 'string' || value === '' || value.length > 253)
      return `source.${field}: must be a non-empty string of at most 253 characters`;
  }
  if (!Array.isArray(lines) || !lines.every((line) => typeof line === 'string'))
    return 'lines: must be an array of strings (the audit log lines, without newlines)';
  if (lines.length > MAX_BATCH_LINES) return `lines: at most ${MAX_BATCH_LINES} per request`;
  if (lines.some((line) => line.includes('\n'))) return 'lines: a line may not contain a newline';
  const key = Object.fromEntries(SOURCE_FIELDS.map((f) => [f, source[f] as string])) as unknown as SourceKey;
  return { source: key, lines };
}

function problem(
  c: { json: (body: unknown, status: ContentfulStatusCode) => Response },
  status: ContentfulStatusCode,
  kind: string,
  message: string,
): Response {
  return c.json({ problem: kind, message }, status);
}
