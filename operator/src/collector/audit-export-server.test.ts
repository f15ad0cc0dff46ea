import { mkdtemp, readFile, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serve } from '@hono/node-server';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeEveryRecordLog } from '../../../sidecar/src/audit/every-record.testing.ts';
import { runAuditExport } from '../../../sidecar/src/cli/audit-export.ts';
import { createLocalAuthenticator } from '../../../sidecar/src/identity/local-authenticator.ts';
import { collectorApi } from './collector-api.ts';
import { collectorAuthenticator } from './collector-auth.ts';
import { CollectorStore } from './store.ts';
import { openDriver } from './store-driver.ts';
import { freshStoreUrl } from './test-store.ts';

/**
 * `gatehouse audit export --server`: the collector's store, read through its API over real HTTP
 * with a reader's credentials, exports what the audit file exports, in order; a source the collector
 * found damaged stops it before anything is written.
 */
const logger = pino({ level: 'silent' });
let dir: string;
let lines: string[];
let store: CollectorStore;
let server: ReturnType<typeof serve>;
let url: string;
const from = new Date(Date.now() - 2 * 3_600_000).toISOString();
const to = new Date(Date.now() + 3_600_000).toISOString();
let key: { cluster: string; namespace: string; pod: string; database: string; logKeyId: string };

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gatehouse-export-server-'));
  lines = (await readFile(await writeEveryRecordLog(dir), 'utf8')).trimEnd().split('\n');
  store = await CollectorStore.open(await openDriver(await freshStoreUrl('export_server_test')));
  const app = collectorApi({
    store,
    logger,
    authenticate: collectorAuthenticator({
      shipperTokens: ['export-shipper-token-0123456789'],
      readers: [],
      localUsers: createLocalAuthenticator(
        { users: [{ name: 'lead', password: 'lead-secret' }] },
        { logger },
      ),
    }),
  });
  key = {
    cluster: 'c',
    namespace: 'shop',
    pod: 'orders-0',
    database: 'shop',
    logKeyId: String(JSON.parse(lines[0]!).keyId),
  };
  await store.ingest(key, lines);
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
  const code = await runAuditExport(argv, {
    stdout: { write: (t: string) => (out += t) },
    stderr: { write: (t: string) => (err += t) },
  });
  return { code, out, err };
}

describe('gatehouse audit export --server', () => {
  it('exports the records as written, in order, the same as from the file', async () => {
    const { code, out, err } = await run(
      '--server',
      url,
      '--user',
      'lead',
      '--password',
      'lead-secret',
      '--format',
      'jsonl',
      '--from',
      from,
      '--to',
      to,
    );
    expect(code).toBe(0);
    // The log holds one line torn by a crash (its chain records the recovery): skipped, as from the file.
    const whole = lines.filter((l) => l.endsWith('}'));
    expect(whole.length).toBe(lines.length - 1);
    expect(err).toBe('gatehouse: skipped 1 line(s) that are not whole audit records (torn by a crash)\n');
    expect(out.trimEnd().split('\n')).toEqual(whole);
  });

  it('maps them to OCSF, one event a record', async () => {
    const { code, out } = await run(
      '--server',
      url,
      '--user',
      'lead',
      '--password',
      'lead-secret',
      '--from',
      from,
      '--to',
      to,
    );
    expect(code).toBe(0);
    const events = out
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { class_uid: number; unmapped?: { seq?: number } });
    expect(events).toHaveLength(lines.length - 1);
    expect(events.every((e) => typeof e.class_uid === 'number')).toBe(true);
  });

  it('exports nothing outside the period, and names bad options and credentials', async () => {
    const past = await run(
      '--server',
      url,
      '--user',
      'lead',
      '--password',
      'lead-secret',
      '--from',
      '2020-01-01',
      '--to',
      '2020-01-02',
    );
    expect(past).toMatchObject({ code: 0, out: '' });
    expect(
      await run('--server', url, '--user', 'lead', '--password', 'wrong', '--from', from, '--to', to),
    ).toMatchObject({
      code: 2,
      out: '',
      err: expect.stringContaining('401'),
    });
    expect((await run('--server', url, 'file.jsonl')).err).toContain('one of the two');
    expect((await run('--server', url)).err).toContain('--server needs a reader');
    expect((await run('--token', 'x', 'file.jsonl')).err).toContain('go with --server');
    expect((await run('--server', 'collector:7450', '--token', 'x')).err).toContain('http(s) URL');
    expect(
      await run('--server', 'http://127.0.0.1:1', '--token', 'x', '--from', from, '--to', to),
    ).toMatchObject({ code: 2, err: expect.stringContaining('cannot reach the collector') });
  });

  // Last: the damaged source stays in the store.
  it('refuses while a source is damaged, exporting nothing; --no-verify exports anyway', async () => {
    const altered = lines.map((l) => l.replace('"user":"mallory"', '"user":"mallorx"'));
    expect(altered).not.toEqual(lines);
    await store.ingest({ ...key, pod: 'orders-1' }, altered);
    const refused = await run(
      '--server',
      url,
      '--user',
      'lead',
      '--password',
      'lead-secret',
      '--from',
      from,
      '--to',
      to,
    );
    expect(refused.code).toBe(1);
    expect(refused.out).toBe('');
    expect(refused.err).toMatch(/c\/shop\/orders-1\/shop@\S+: broken/);
    const anyway = await run(
      '--server',
      url,
      '--user',
      'lead',
      '--password',
      'lead-secret',
      '--no-verify',
      '--format',
      'jsonl',
      '--from',
      from,
      '--to',
      to,
    );
    expect(anyway.code).toBe(0);
    expect(anyway.out.trimEnd().split('\n').length).toBeGreaterThan(lines.length);
  });
});
