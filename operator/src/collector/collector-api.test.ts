import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeSignedLog } from '../../../sidecar/src/audit/testing.ts';
import { createLocalAuthenticator } from '../../../sidecar/src/identity/local-authenticator.ts';
import { collectorApi } from './collector-api.ts';
import { collectorAuthenticator } from './collector-auth.ts';
import { createCollectorMetrics } from './collector-metrics.ts';
import { CollectorStore } from './store.ts';
import { openDriver } from './store-driver.ts';
import { freshStoreUrl } from './test-store.ts';

const TOKEN = 'shipper-token-for-api-tests';
const logger = pino({ level: 'silent' });
let dir: string;
let lines: string[];
let store: CollectorStore;
let app: ReturnType<typeof collectorApi>;
const reader = `Basic ${Buffer.from('lead:lead-secret').toString('base64')}`;
const shipper = `Bearer ${TOKEN}`;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gatehouse-collector-api-'));
  lines = (await readFile((await writeSignedLog(dir)).file, 'utf8')).trimEnd().split('\n');
  store = await CollectorStore.open(await openDriver(await freshStoreUrl('collector_api_test')));
  app = collectorApi({
    store,
    logger,
    metrics: createCollectorMetrics(store),
    authenticate: collectorAuthenticator({
      shipperTokens: [TOKEN],
      readers: [],
      localUsers: createLocalAuthenticator(
        { users: [{ name: 'lead', password: 'lead-secret' }] },
        { logger },
      ),
    }),
  });
});
afterAll(async () => {
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

function post(authorization: string, body: unknown) {
  return app.request('/v1/records', {
    method: 'POST',
    headers: { authorization, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}
const get = (path: string, authorization = reader) => app.request(path, { headers: { authorization } });

describe('the collector API', () => {
  const source = () => ({
    cluster: 'c',
    namespace: 'shop',
    pod: 'orders-0',
    database: 'shop',
    logKeyId: String(JSON.parse(lines[0]!).keyId),
  });

  it('takes a batch from a shipper and answers how far it holds the log', async () => {
    expect(await (await post(shipper, { source: source(), lines: [] })).json()).toEqual({ acknowledged: 0 });
    const answer = await post(shipper, { source: source(), lines });
    expect(await answer.json()).toMatchObject({
      acknowledged: lines.length,
      status: 'ok',
      stored: lines.length,
    });
  });

  it('keeps shipping and reading apart', async () => {
    expect((await post(reader, { source: source(), lines: [] })).status).toBe(403);
    expect((await get('/v1/statements', shipper)).status).toBe(403);
    expect((await get('/v1/statements', 'Bearer wrong-token-wrong-token')).status).toBe(401);
  });

  it('pages statements newest first, without repeats, by a cursor', async () => {
    const seen: number[] = [];
    let path = '/v1/statements?limit=3&subject=system:serviceaccount:shop:orders';
    for (;;) {
      const page = (await (await get(path)).json()) as { items: { seq: number }[]; next?: string };
      seen.push(...page.items.map((i) => i.seq));
      if (!page.next) break;
      path = `/v1/statements?limit=3&subject=system:serviceaccount:shop:orders&cursor=${page.next}`;
    }
    const statements = lines.map((l) => JSON.parse(l)).filter((r) => r.type === 'statement');
    expect(seen).toEqual(statements.map((r) => r.seq).reverse());
  });

  it('names what is wrong with a bad request', async () => {
    const cases: [string, unknown, RegExp][] = [
      ['/v1/records', { source: { ...source(), pod: '' }, lines: [] }, /source.pod/],
      ['/v1/records', { source: source(), lines: [1] }, /array of strings/],
      ['/v1/records', { source: source(), lines: ['a\nb'] }, /newline/],
      ['/v1/records', 'nonsense', /JSON object/],
    ];
    for (const [, body, message] of cases) {
      const answer = await post(shipper, body);
      expect(answer.status).toBe(400);
      expect(((await answer.json()) as { message: string }).message).toMatch(message);
    }
    for (const [query, message] of [
      ['since=yesterday', /neither a duration/],
      ['limit=0', /positive integer/],
      ['cursor=abc', /cursor is not one/],
      ['colour=x', /unknown filter/],
      ['column=ssn', /TABLE.COLUMN/],
      ['column=customers.ssn&seen=both', /clear or masked/],
      ['seen=clear', /only with column/],
    ] as const) {
      const answer = await get(`/v1/statements?${query}`);
      expect(answer.status).toBe(400);
      expect(((await answer.json()) as { message: string }).message).toMatch(message);
    }
  });
  // Last: it adds a second source, which the paging tests above do not expect.
  it('serves metrics without credentials: records stored, and sources by chain status', async () => {
    const before = await (await app.request('/metrics')).text();
    expect(before).toContain(`gatehouse_collector_records_stored_total ${lines.length}`);
    expect(before).toContain('gatehouse_collector_sources{status="ok"} 1');
    expect(before).toContain('gatehouse_collector_sources{status="broken"} 0');
    // Another pod whose log was edited after it was written: its chain no longer verifies.
    const edited = lines.map((line, i) => (i === 2 ? line.replace(/"seq":3/, '"seq":3,"x":1') : line));
    expect(edited).not.toEqual(lines);
    const answer = (await (
      await post(shipper, { source: { ...source(), pod: 'orders-1' }, lines: edited })
    ).json()) as { status: string };
    expect(answer.status).not.toBe('ok');
    const after = await (await app.request('/metrics')).text();
    expect(after).toContain('gatehouse_collector_sources{status="ok"} 1');
    expect(after).toContain(`gatehouse_collector_sources{status="${answer.status}"} 1`);
    expect(after).toContain(`gatehouse_collector_batches_total{status="${answer.status}"} 1`);
  });
});
