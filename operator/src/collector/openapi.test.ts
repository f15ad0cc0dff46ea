import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pino from 'pino';
import Schema from 'typebox/schema';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EVERY_EVENT } from '../../../sidecar/src/audit/every-record.testing.ts';
import { writeSignedLog } from '../../../sidecar/src/audit/testing.ts';
import { collectorApi } from './collector-api.ts';
import { collectorOpenApi, collectorOpenApiFile } from './openapi.ts';
import { type RunningCollector, startCollector } from './start-collector.ts';
import { freshStoreUrl } from './test-store.ts';

/**
 * The OpenAPI description cannot drift from the code: every route it names, with every answer it
 * names, is asked of a real collector (HTTP, PostgreSQL store) and each answer checked against its
 * schema; every /v1 route the app has is named; and docs/collector-openapi.json is this document.
 */

const SHIPPER = 'openapi-test-shipper-token';
const READER = { name: 'lead', password: 'lead-secret' };
const ADMIN = { name: 'root', password: 'root-secret' };
const doc = collectorOpenApi() as {
  paths: Record<
    string,
    Record<string, { responses: Record<string, { content?: Record<string, { schema: unknown }> }> }>
  >;
  components: { schemas: Record<string, unknown> };
};
let dir: string;
let collector: RunningCollector;
let lines: string[];
const exercised = new Set<string>();

/** The schema with every `$ref` replaced by what it names. */
function resolveRefs(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(resolveRefs);
  if (typeof schema !== 'object' || schema === null) return schema;
  const ref = (schema as { $ref?: string }).$ref;
  if (ref !== undefined) return resolveRefs(doc.components.schemas[ref.replace('#/components/schemas/', '')]);
  return Object.fromEntries(Object.entries(schema).map(([k, v]) => [k, resolveRefs(v)]));
}

/** Sends the request and checks the answer against what the document says of that route and status. */
async function call(
  method: 'get' | 'post',
  path: string,
  options: { auth?: string; body?: string; query?: string; template?: string } = {},
): Promise<{ status: number; body: unknown }> {
  const route = options.template ?? path;
  const response = await fetch(`${collector.url}${path}${options.query ? `?${options.query}` : ''}`, {
    method: method.toUpperCase(),
    headers: {
      ...(options.auth && { authorization: options.auth }),
      ...(options.body !== undefined && { 'content-type': 'application/json' }),
    },
    ...(options.body !== undefined && { body: options.body }),
  });
  const documented = doc.paths[route]?.[method]?.responses[String(response.status)];
  expect(
    documented,
    `${method} ${path} answered ${response.status}, which the document does not name`,
  ).toBeDefined();
  const [type, media] = Object.entries(documented!.content ?? {})[0] ?? [];
  expect(response.headers.get('content-type') ?? '').toContain(type);
  const body = type === 'application/json' ? await response.json() : await response.text();
  const schema = resolveRefs(media!.schema) as Parameters<typeof Schema.Errors>[0];
  const [ok, errors] = Schema.Errors(schema, body);
  expect(ok, `${method} ${path} ${response.status}: ${JSON.stringify(errors.slice(0, 3))}`).toBe(true);
  exercised.add(`${method} ${route} ${response.status}`);
  return { status: response.status, body };
}

const basic = `Basic ${Buffer.from(`${READER.name}:${READER.password}`).toString('base64')}`;
const bearer = `Bearer ${SHIPPER}`;
const admin = `Basic ${Buffer.from(`${ADMIN.name}:${ADMIN.password}`).toString('base64')}`;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gatehouse-openapi-'));
  lines = (await readFile((await writeSignedLog(dir, EVERY_EVENT)).file, 'utf8')).trimEnd().split('\n');
  collector = await startCollector(
    {
      listen: { host: '127.0.0.1', port: 0 },
      storeUrl: await freshStoreUrl('collector_openapi_test'),
      poolSize: 2,
      retentionDays: 90,
      shipperTokens: [SHIPPER],
      tokenReview: undefined,
      console: undefined,
      readers: [],
      localUsers: [READER, ADMIN],
      admins: [`local:${ADMIN.name}`],
      tls: undefined,
    },
    { logger: pino({ level: 'silent' }) },
  );
});
afterAll(async () => {
  await collector.close();
  await rm(dir, { recursive: true, force: true });
});

describe('the OpenAPI description', () => {
  it('describes every answer of every route it names, asked of a real collector', async () => {
    const source = {
      cluster: 'c',
      namespace: 'shop',
      pod: 'orders-0',
      database: 'shop',
      logKeyId: String(JSON.parse(lines[0]!).keyId),
    };
    expect((await call('get', '/healthz')).body).toBe('ok');
    expect((await call('get', '/v1/openapi.json')).body).toEqual(JSON.parse(JSON.stringify(doc)));

    const batch = (body: unknown, auth = bearer) =>
      call('post', '/v1/records', { auth, body: JSON.stringify(body) });
    expect((await batch({ source, lines: [] })).body).toEqual({ acknowledged: 0 });
    expect((await batch({ source, lines })).body).toMatchObject({ status: 'ok', stored: lines.length });
    expect((await batch({ source, lines: [1] })).status).toBe(400);
    expect((await batch({ source, lines: [] }, 'Bearer wrong-token-wrong-token')).status).toBe(401);
    expect((await batch({ source, lines: [] }, basic)).status).toBe(403);
    expect((await batch({ source, lines: ['x'.repeat(33 * 1024 * 1024)] })).status).toBe(413);

    expect((await call('get', '/v1/sources', { auth: basic })).body).toMatchObject({
      items: [{ pod: 'orders-0' }],
    });
    expect((await call('get', '/v1/sources')).status).toBe(401);
    expect((await call('get', '/v1/sources', { auth: bearer })).status).toBe(403);

    for (const path of ['/v1/statements', '/v1/sessions']) {
      const first = (await call('get', path, { auth: basic, query: 'limit=1' })).body as {
        items: unknown[];
        next: string;
        follow: string;
      };
      expect(first.items).toHaveLength(1);
      // The log holds one session and several statements: only the statements have a second page.
      if (path === '/v1/statements') expect(first.next).toBeDefined();
      if (first.next) await call('get', path, { auth: basic, query: `cursor=${first.next}` });
      await call('get', path, { auth: basic, query: `follow=${first.follow}` });
      await call('get', path, {
        auth: basic,
        query: 'subject=x&database=shop&outcome=ok&purpose=p&run_id=r&since=7d&until=2099-01-01T00:00:00Z',
      });
      expect((await call('get', path, { auth: basic, query: 'since=yesterday' })).status).toBe(400);
      expect((await call('get', path)).status).toBe(401);
      expect((await call('get', path, { auth: bearer })).status).toBe(403);
    }
    // A source with a gap, reset by an admin; refused to a reader, for an ok source, for no source.
    const gapped = { ...source, pod: 'orders-1' };
    await batch({ source: gapped, lines: [...lines.slice(0, 3), ...lines.slice(4)] });
    const sources = (await call('get', '/v1/sources', { auth: basic })).body as {
      items: { id: number; pod: string }[];
    };
    const id = sources.items.find((s) => s.pod === 'orders-1')!.id;
    const reset = (path: string, body: unknown, auth = admin) =>
      call('post', path, { auth, body: JSON.stringify(body), template: '/v1/sources/{id}/reset' });
    expect((await reset(`/v1/sources/${id}/reset`, { reason: '' })).status).toBe(400);
    expect((await reset(`/v1/sources/${id}/reset`, { reason: 'x' }, basic)).status).toBe(403);
    expect(
      (await reset(`/v1/sources/${id}/reset`, { reason: 'x' }, 'Bearer nothing-we-know-of-at-all')).status,
    ).toBe(401);
    expect((await reset('/v1/sources/99999/reset', { reason: 'x' })).status).toBe(404);
    expect(
      (await reset(`/v1/sources/${id}/reset`, { reason: 'seq 4 lost with the node' })).body,
    ).toMatchObject({
      by: `local:${ADMIN.name}`,
      previousStatus: 'gap',
    });
    expect((await reset(`/v1/sources/${id}/reset`, { reason: 'again' })).status).toBe(409);
    expect((await call('get', '/v1/sources', { auth: basic })).body).toMatchObject({
      items: expect.arrayContaining([
        expect.objectContaining({
          pod: 'orders-1',
          status: 'ok',
          lastReset: expect.objectContaining({ reason: 'seq 4 lost with the node' }),
        }),
      ]),
    });

    // Records of any type (what evidence build and audit export --server read), paged.
    const records = (
      await call('get', '/v1/records', { auth: basic, query: 'type=statement,approval&limit=2' })
    ).body as { items: { type: string }[]; next?: string };
    expect(records.items.map((r) => r.type).every((t) => t === 'statement' || t === 'approval')).toBe(true);
    if (records.next) await call('get', '/v1/records', { auth: basic, query: `cursor=${records.next}` });
    await call('get', '/v1/records', { auth: basic, query: 'since=7d&until=2099-01-01T00:00:00Z' });
    expect((await call('get', '/v1/records', { auth: basic, query: 'type=DROP TABLE' })).status).toBe(400);
    expect((await call('get', '/v1/records')).status).toBe(401);
    expect((await call('get', '/v1/records', { auth: bearer })).status).toBe(403);
    // Data touched and the approvals queue.
    await call('get', '/v1/touched', { auth: basic, query: 'since=7d' });
    await call('get', '/v1/touched', { auth: basic, query: 'column=customers.ssn&seen=clear' });
    expect((await call('get', '/v1/touched', { auth: basic, query: 'outcome=ok' })).status).toBe(400);
    expect((await call('get', '/v1/touched')).status).toBe(401);
    expect((await call('get', '/v1/touched', { auth: bearer })).status).toBe(403);
    const approvals = (await call('get', '/v1/approvals', { auth: basic, query: 'since=30d' })).body as {
      items: unknown[];
    };
    expect(approvals.items.length).toBeGreaterThan(0);
    expect((await call('get', '/v1/approvals', { auth: basic, query: 'phase=Maybe' })).status).toBe(400);
    expect((await call('get', '/v1/approvals')).status).toBe(401);
    expect((await call('get', '/v1/approvals', { auth: bearer })).status).toBe(403);

    const statements = (await call('get', '/v1/statements', { auth: basic })).body as {
      items: { columns: object }[];
    };
    expect(statements.items.length).toBeGreaterThan(1);

    const documented = Object.entries(doc.paths).flatMap(([path, methods]) =>
      Object.entries(methods).flatMap(([method, operation]) =>
        Object.keys(operation.responses).map((status) => `${method} ${path} ${status}`),
      ),
    );
    expect([...exercised].sort()).toEqual(documented.sort());
  });

  it('names every route the app has', () => {
    const app = collectorApi({
      store: undefined as never,
      authenticate: async () => ({ subject: 'x', shipper: false, reader: false }),
      logger: pino({ level: 'silent' }),
    });
    const routes = app.routes
      .filter((route) => route.method !== 'ALL')
      .map((route) => `${route.method.toLowerCase()} ${route.path.replace(/:(\w+)/g, '{$1}')}`);
    const named = Object.entries(doc.paths).flatMap(([path, methods]) =>
      Object.keys(methods).map((m) => `${m} ${path}`),
    );
    expect([...new Set(routes)].sort()).toEqual(named.sort());
  });

  it('is what docs/collector-openapi.json holds (npm run gen writes it)', async () => {
    const file = collectorOpenApiFile();
    const committed = await readFile(resolve(import.meta.dirname, '../../..', file.path), 'utf8').catch(
      () => '(missing)',
    );
    expect(committed === file.content, `${file.path} is stale: run npm run gen and commit it`).toBe(true);
  });
});
