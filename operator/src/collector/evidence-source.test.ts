import { mkdtemp, readFile, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serve } from '@hono/node-server';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeEveryRecordLog } from '../../../sidecar/src/audit/every-record.testing.ts';
import { runEvidenceCommand } from '../../../sidecar/src/cli/evidence-command.ts';
import { createLocalAuthenticator } from '../../../sidecar/src/identity/local-authenticator.ts';
import { collectorApi } from './collector-api.ts';
import { collectorAuthenticator } from './collector-auth.ts';
import { CollectorStore } from './store.ts';
import { openDriver } from './store-driver.ts';
import { freshStoreUrl } from './test-store.ts';

/**
 * `gatehouse evidence build --server`: the collector's store read through its API (GET /v1/records
 * and /v1/sources) with a reader's credentials, over real HTTP, makes the pack the same audit file
 * makes, and a source whose chain the collector found broken is in it and fails the build.
 */

const TOKEN = 'shipper-token-for-evidence-tests';
const logger = pino({ level: 'silent' });
let dir: string;
let log: string;
let lines: string[];
let store: CollectorStore;
let server: ReturnType<typeof serve>;
let url: string;
const reader = `Basic ${Buffer.from('lead:lead-secret').toString('base64')}`;
const from = new Date(Date.now() - 3_600_000).toISOString();
const to = new Date(Date.now() + 3_600_000).toISOString();

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gatehouse-evidence-collector-'));
  log = await writeEveryRecordLog(dir);
  lines = (await readFile(log, 'utf8')).trimEnd().split('\n');
  store = await CollectorStore.open(await openDriver(await freshStoreUrl('evidence_source_test')));
  const app = collectorApi({
    store,
    logger,
    authenticate: collectorAuthenticator({
      shipperTokens: [TOKEN],
      readers: [],
      localUsers: createLocalAuthenticator(
        { users: [{ name: 'lead', password: 'lead-secret' }] },
        { logger },
      ),
    }),
  });
  const logKeyId = String(JSON.parse(lines[0]!).keyId);
  const key = { cluster: 'c', namespace: 'shop', pod: 'orders-0', database: 'shop', logKeyId };
  await store.ingest(key, lines);
  // The same log from another pod, with one record altered in transit: the collector marks it broken.
  const altered = lines.map((l) => l.replace('"user":"mallory"', '"user":"mallorx"'));
  await store.ingest({ ...key, pod: 'orders-1' }, altered);
  server = await new Promise((resolve) => {
    const s = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, () => resolve(s));
  });
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runEvidenceCommand(argv, {
    stdout: { write: (t: string) => (out += t) },
    stderr: { write: (t: string) => (err += t) },
    env: { GATEHOUSE_PASSWORD: 'lead-secret' },
  });
  return { code, out, err };
}
const json = async (pack: string, name: string) => JSON.parse(await readFile(join(pack, name), 'utf8'));

describe('GET /v1/records', () => {
  it('pages records of the types asked for, newest first, without repeats', async () => {
    const seen: string[] = [];
    let path = '/v1/records?type=approval,connection.refused&limit=2';
    for (;;) {
      const response = await fetch(`${url}${path}`, { headers: { authorization: reader } });
      const page = (await response.json()) as {
        items: { type: string; line: string; source: { pod: string } }[];
        next?: string;
      };
      seen.push(...page.items.filter((i) => i.source.pod === 'orders-0').map((i) => i.line));
      if (!page.next) break;
      path = `/v1/records?type=approval,connection.refused&limit=2&cursor=${page.next}`;
    }
    const expected = lines.filter((l) => /"type":"(approval|connection\.refused)"/.test(l));
    expect(seen.sort()).toEqual(expected.sort());
  });

  it('is for readers, and names a bad type', async () => {
    expect((await fetch(`${url}/v1/records`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(
      403,
    );
    const bad = await fetch(`${url}/v1/records?type=statement;drop`, { headers: { authorization: reader } });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { message: string }).message).toMatch(/record types separated by commas/);
  });
});

describe('gatehouse evidence build --server', () => {
  it('makes from the store the sections the file makes, and reports the broken source', async () => {
    const fromFile = join(dir, 'from-file');
    expect((await run('build', '--from', from, '--to', to, '--out', fromFile, '--audit', log)).code).toBe(0);
    const fromServer = join(dir, 'from-server');
    const built = await run(
      'build',
      '--from',
      from,
      '--to',
      to,
      '--out',
      fromServer,
      '--server',
      url,
      '--user',
      'lead',
    );
    expect(built.code, built.err).toBe(1);
    expect(built.err).toMatch(/c\/shop\/orders-1\/shop@[0-9a-f]{16}: collector: broken/);

    const chains = await json(fromServer, 'chains.json');
    expect(
      chains.rows.map((r: { source: string; ok: boolean; kind: string }) => [
        r.source.split('@')[0],
        r.ok,
        r.kind,
      ]),
    ).toEqual([
      ['c/shop/orders-0/shop', true, 'collector'],
      ['c/shop/orders-1/shop', false, 'collector'],
    ]);
    // The writer's loss (audit.loss), as the file's pack counts it.
    const fileChains = await json(fromFile, 'chains.json');
    expect(fileChains.rows[0].lost).toBeGreaterThan(0);
    expect(chains.rows[0].lost).toBe(fileChains.rows[0].lost);
    const strip = (rows: Record<string, unknown>[]) =>
      rows.map(({ source: _, verified: __, ...rest }) => rest);
    for (const name of ['privileged.json', 'refusals.json', 'exemptions.json', 'masking.json']) {
      const file = await json(fromFile, name);
      const collected = await json(fromServer, name);
      const healthy = (collected.rows as Record<string, unknown>[]).filter(
        (r) => typeof r['source'] !== 'string' || String(r['source']).startsWith('c/shop/orders-0/'),
      );
      expect(strip(healthy), name).toEqual(strip(file.rows));
    }
    const access = await json(fromServer, 'access.json');
    expect(access.changes.map((c: { changedBy: string | null }) => c.changedBy)).toEqual([
      null,
      'alice@example.com',
      null,
      'alice@example.com',
    ]);
    expect((await run('verify', fromServer)).code).toBe(0);
  });

  it('names a collector it cannot reach, and credentials it refuses', async () => {
    const unreachable = await run(
      'build',
      '--from',
      from,
      '--to',
      to,
      '--out',
      join(dir, 'x1'),
      '--server',
      'http://127.0.0.1:9',
      '--user',
      'lead',
    );
    expect(unreachable.code).toBe(2);
    expect(unreachable.err).toContain('cannot reach the collector');
    const refused = await run(
      'build',
      '--from',
      from,
      '--to',
      to,
      '--out',
      join(dir, 'x2'),
      '--server',
      url,
      '--token',
      'wrong-token-wrong',
    );
    expect(refused.code).toBe(2);
    expect(refused.err).toMatch(/the collector answered 401/);
  });
});
