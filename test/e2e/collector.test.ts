import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { stringify } from 'yaml';
import { CollectorStore } from '../../operator/src/collector/store.ts';
import { openDriver } from '../../operator/src/collector/store-driver.ts';
import { freshStoreUrl } from '../../operator/src/collector/test-store.ts';
import { writeSignedLog } from '../../sidecar/src/audit/testing.ts';
import { verifyAuditLog } from '../../sidecar/src/audit/verify.ts';
import { freePort } from '../harness/free-port.ts';
import { localProxyConfig, pgClient } from './support/clients.ts';
import { type CollectorProcess, startCollectorProcess } from './support/collector-process.ts';
import { MAIN, type ProxyProcess, startProxyProcess } from './support/proxy-process.ts';

/**
 * A real proxy ships its audit log to a real collector (`gatehouse collector`, PostgreSQL store): the
 * statements show up through the API, and a collector killed mid-stream and started again loses
 * nothing: the store ends up with every line of the file, byte for byte, and the chain verifies.
 */

const run = promisify(execFile);
const postgres = inject('postgres');
const SHIPPER_TOKEN = 'e2e-shipper-token-0123456789';
const READER = { name: 'lead', password: 'lead-secret' };
const ADMIN = { name: 'root', password: 'root-secret' };

let dir: string;
let storeUrl: string;
let port: number;
let collector: CollectorProcess | undefined;
let proxy: ProxyProcess | undefined;

function startCollector(): Promise<CollectorProcess> {
  return startCollectorProcess(join(dir, 'collector.yaml'), port);
}

async function api<T>(path: string): Promise<T> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`, {
    headers: {
      authorization: `Basic ${Buffer.from(`${READER.name}:${READER.password}`).toString('base64')}`,
    },
  });
  expect(response.status).toBe(200);
  return (await response.json()) as T;
}

async function eventually<T>(probe: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** `gatehouse audit query --follow` as a user runs it, its stdout read line by line. */
function startFollow(...args: string[]) {
  const child = spawn(
    process.execPath,
    [
      '--liftoff-only',
      MAIN,
      'audit',
      'query',
      ...(args[0] === 'sources' ? [args.shift()!] : []),
      '--follow',
      '--server',
      `http://127.0.0.1:${port}`,
      '--user',
      READER.name,
      '--subject',
      'local:demo',
      ...args,
    ],
    { env: { ...process.env, GATEHOUSE_PASSWORD: READER.password }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  let err = '';
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString('utf8');
  });
  child.stderr.on('data', (chunk: Buffer) => {
    err += chunk.toString('utf8');
  });
  const exit = new Promise<{ code: number | null; stderr: string }>((resolve) =>
    child.once('exit', (code) => resolve({ code, stderr: err })),
  );
  const lines = () => out.split('\n').filter((line) => line !== '');
  return { child, lines, exit };
}

/** Runs `text` through the proxy and waits until the collector has it. */
async function ranAndStored(text: string): Promise<void> {
  const client = await pgClient(proxy!.port);
  await client.query(text);
  await client.end();
  const word = text.split(' ').at(-1)!;
  await eventually(async () => {
    const page = await api<{ items: { statement: string }[] }>('/v1/statements?subject=local:demo&limit=5');
    return page.items.some((s) => s.statement?.includes(word)) ? true : undefined;
  });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gatehouse-collector-e2e-'));
  storeUrl = await freshStoreUrl('collector_e2e');
  port = await freePort();
  writeFileSync(
    join(dir, 'collector.yaml'),
    stringify({
      store: { url: storeUrl },
      auth: {
        shipperTokens: [{ value: SHIPPER_TOKEN }],
        localUsers: [READER, ADMIN],
        admins: [`local:${ADMIN.name}`],
      },
    }),
  );
  collector = await startCollector();
  proxy = await startProxyProcess(
    localProxyConfig(postgres, {
      audit: {
        file: 'audit.jsonl',
        stdout: false,
        checkpointEveryRecords: 20,
        ship: {
          url: `http://127.0.0.1:${port}`,
          token: SHIPPER_TOKEN,
          cluster: 'e2e',
          pod: 'proxy-0',
          batchRecords: 50,
        },
      },
      policy: { none: true },
    }),
  );
});

afterAll(async () => {
  await proxy?.stop();
  await collector?.stop();
});

describe('the collector', () => {
  it('shows the statements a proxy ran, within a second, with their identity', async () => {
    const client = await pgClient(proxy!.port);
    await client.query('SELECT 42 AS answer');
    await client.end();
    const started = Date.now();
    const page = await eventually(async () => {
      const answer = await api<{ items: { statement: string; subject: string; outcome: string }[] }>(
        '/v1/statements?subject=local:demo&since=10m',
      );
      return answer.items.some((s) => s.statement?.startsWith('SELECT $1')) ? answer : undefined;
    });
    expect(Date.now() - started).toBeLessThan(1500);
    expect(page.items[0]).toMatchObject({ subject: 'local:demo', outcome: 'ok' });
    const sessions = await api<{ items: { subject: string; statements: number | null }[] }>('/v1/sessions');
    expect(sessions.items[0]).toMatchObject({ subject: 'local:demo', statements: 1 });
    const sources = await api<{ items: { cluster: string; pod: string; status: string }[] }>('/v1/sources');
    expect(sources.items).toEqual([
      expect.objectContaining({ cluster: 'e2e', pod: 'proxy-0', status: 'ok' }),
    ]);
  });

  it('answers gatehouse audit query as the API does, as JSON and as a table', async () => {
    const query = async (...args: string[]) =>
      (
        await run(
          process.execPath,
          [
            '--liftoff-only',
            MAIN,
            'audit',
            'query',
            ...args,
            '--server',
            `http://127.0.0.1:${port}`,
            '--user',
            READER.name,
            '--subject',
            'local:demo',
          ],
          { env: { ...process.env, GATEHOUSE_PASSWORD: READER.password } },
        )
      ).stdout;
    // `follow` names the store's snapshot of the moment, which --follow asks for itself.
    const { follow: _, ...fromApi } = await api<{ items: unknown[]; follow: string }>(
      '/v1/statements?subject=local:demo',
    );
    expect(JSON.parse(await query('--format', 'json'))).toEqual(fromApi);
    const table = (await query('--since', '1h')).split('\n');
    expect(table[0]).toMatch(/^time +subject +database +outcome +rows +statement/);
    expect(table[1]).toMatch(/local:demo +app +ok +1 +SELECT \$1/);
    expect(await query('sources')).toMatch(/e2e +standalone +proxy-0 +app +ok/);
  });

  it('refuses a shipper without the token, and a reader without a password', async () => {
    const bad = await fetch(`http://127.0.0.1:${port}/v1/records`, {
      method: 'POST',
      headers: { authorization: 'Bearer not-the-token', 'content-type': 'application/json' },
      body: '{}',
    });
    expect(bad.status).toBe(401);
    expect((await fetch(`http://127.0.0.1:${port}/v1/statements`)).status).toBe(401);
  });

  it('follows new statements as they arrive, and ends cleanly on SIGINT', async () => {
    await ranAndStored('SELECT 0 AS backlog_line');
    const follower = startFollow('--format', 'json');
    // The backlog first.
    await eventually(async () =>
      follower.lines().some((l) => l.includes('backlog_line')) ? true : undefined,
    );
    const client = await pgClient(proxy!.port);
    await client.query('SELECT 1 AS follow_a');
    await client.query('SELECT 2 AS follow_b');
    await client.end();
    const printed = await eventually(async () => {
      const lines = follower.lines();
      return lines.some((l) => l.includes('follow_b')) ? lines : undefined;
    });
    const statements = printed.map((l) => (JSON.parse(l) as { statement: string }).statement);
    expect(statements.filter((s) => s.includes('follow_'))).toEqual([
      'SELECT $1 AS follow_a',
      'SELECT $1 AS follow_b',
    ]);
    // Oldest first, each once.
    expect(new Set(statements).size).toBe(statements.length);
    follower.child.kill('SIGINT');
    expect(await follower.exit).toEqual({ code: 0, stderr: '' });
  });

  it('ends when whoever reads its output stops (| head), and on a refusal with the reason', async () => {
    await ranAndStored('SELECT 0 AS backlog_line');
    const follower = startFollow();
    await eventually(async () => (follower.lines().length > 0 ? true : undefined));
    expect(follower.lines()[0]).toMatch(/^time +subject +database +outcome/);
    follower.child.stdout!.destroy();
    const client = await pgClient(proxy!.port);
    await client.query('SELECT 3 AS follow_c');
    await client.end();
    expect((await follower.exit).code).toBe(0);

    const refused = startFollow('--password', 'not-the-password');
    const { code, stderr } = await refused.exit;
    expect(code).toBe(2);
    expect(stderr).toMatch(/the collector answered 401/);
    expect(await startFollow('sources').exit).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/not sources/),
    });
  });

  it('resets a flagged source from the CLI for an admin, keeping who and why, and refuses a reader', async () => {
    const logDir = mkdtempSync(join(tmpdir(), 'gatehouse-collector-reset-'));
    const lines = readFileSync((await writeSignedLog(logDir)).file, 'utf8')
      .trimEnd()
      .split('\n');
    const source = {
      cluster: 'e2e',
      namespace: 'shop',
      pod: 'gapped-0',
      database: 'shop',
      logKeyId: JSON.parse(lines[0]!).keyId,
    };
    const shipped = await fetch(`http://127.0.0.1:${port}/v1/records`, {
      method: 'POST',
      headers: { authorization: `Bearer ${SHIPPER_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ source, lines: [...lines.slice(0, 3), ...lines.slice(4)] }),
    });
    expect(await shipped.json()).toMatchObject({ status: 'gap' });
    const { items } = await api<{ items: { id: number; pod: string }[] }>('/v1/sources');
    const id = String(items.find((s) => s.pod === 'gapped-0')!.id);
    const reset = (user: { name: string; password: string }, ...args: string[]) =>
      run(
        process.execPath,
        [
          '--liftoff-only',
          MAIN,
          'audit',
          'reset-source',
          ...args,
          '--server',
          `http://127.0.0.1:${port}`,
          '--user',
          user.name,
        ],
        {
          env: { ...process.env, GATEHOUSE_PASSWORD: user.password },
        },
      ).then(
        ({ stdout }) => ({ code: 0, out: stdout }),
        (error: { code: number; stderr: string }) => ({ code: error.code, out: error.stderr }),
      );
    expect(await reset(READER, id, '--reason', 'x')).toMatchObject({
      code: 2,
      out: expect.stringMatching(/403.*may not reset/),
    });
    expect(await reset(ADMIN, id)).toMatchObject({
      code: 2,
      out: expect.stringMatching(/--reason TEXT is required/),
    });
    expect(await reset(ADMIN, id, '--reason', 'seq 4 lost with its node')).toMatchObject({
      code: 0,
      out: expect.stringMatching(new RegExp(`source ${id} reset by local:root: was gap`)),
    });
    const after = await api<{
      items: { pod: string; status: string; lastReset: { by: string; reason: string } }[];
    }>('/v1/sources');
    expect(after.items.find((s) => s.pod === 'gapped-0')).toMatchObject({
      status: 'ok',
      lastReset: { by: 'local:root', reason: 'seq 4 lost with its node' },
    });
    expect(await reset(ADMIN, id, '--reason', 'again')).toMatchObject({
      code: 2,
      out: expect.stringMatching(/409.*nothing to reset/),
    });
  });

  it('loses nothing when the collector is killed mid-stream and started again', async () => {
    const client = await pgClient(proxy!.port);
    let stop = false;
    let ran = 0;
    const load = (async () => {
      while (!stop) {
        await client.query('SELECT $1::int AS n', [ran]);
        ran++;
      }
    })();
    await new Promise((resolve) => setTimeout(resolve, 700));
    await collector!.stop('SIGKILL');
    const whileDown = ran;
    await new Promise((resolve) => setTimeout(resolve, 700));
    // Statements never waited for the collector.
    expect(ran - whileDown).toBeGreaterThan(5);
    collector = await startCollector();
    // The backlog of the outage is shipped while statements go on; on a busy machine that takes more
    // than the proxy's shutdown allows for shipping (2 s), so wait until the collector has caught up
    // with what the file held when it came back. The rest and the seal are shipped on the way out.
    const backlog = Number(
      JSON.parse(readFileSync(join(proxy!.dir, 'audit.jsonl'), 'utf8').trimEnd().split('\n').at(-1)!).seq,
    );
    await eventually(async () => {
      const answer = await api<{ items: { pod: string; lastSeq: number }[] }>('/v1/sources');
      return (answer.items.find((s) => s.pod === 'proxy-0')?.lastSeq ?? 0) >= backlog ? true : undefined;
    }, 30_000);
    stop = true;
    await load;
    await client.end();
    const proxyDir = proxy!.dir;
    await proxy!.stop();
    proxy = undefined;

    const file = readFileSync(join(proxyDir, 'audit.jsonl'), 'utf8');
    const lines = file.trimEnd().split('\n');
    const lastSeq = JSON.parse(lines.at(-1)!).seq as number;
    expect(JSON.parse(lines.at(-1)!)).toMatchObject({ type: 'checkpoint', final: true });
    const store = await CollectorStore.open(await openDriver(storeUrl));
    try {
      // The proxy shipped its seal on the way out.
      const source = (await store.sources()).find((s) => s.pod === 'proxy-0');
      expect(source).toMatchObject({ status: 'ok', lastSeq, checkpointSeq: lastSeq });
      const stored = await store.lines(source!.id);
      expect(stored.length).toBe(lines.length);
      expect(stored).toEqual(lines);
      expect(verifyAuditLog(`${stored.join('\n')}\n`)).toMatchObject({ ok: true, sealed: true });
    } finally {
      await store.close();
    }
  });
  it('gathers several proxies shipping at once, each a source with its own verified chain', async () => {
    const pods = ['proxy-a', 'proxy-b', 'proxy-c'];
    const proxies = await Promise.all(
      pods.map((pod) =>
        startProxyProcess(
          localProxyConfig(postgres, {
            audit: {
              file: 'audit.jsonl',
              stdout: false,
              checkpointEveryRecords: 20,
              ship: {
                url: `http://127.0.0.1:${port}`,
                token: SHIPPER_TOKEN,
                cluster: 'e2e',
                pod,
                batchRecords: 10,
              },
            },
            policy: { none: true },
          }),
        ),
      ),
    );
    try {
      // Every proxy runs statements at the same time; each names its pod in its text.
      await Promise.all(
        proxies.map(async (p, i) => {
          const client = await pgClient(p.port);
          for (let n = 0; n < 25; n++) await client.query(`SELECT ${n} AS n, '${pods[i]}' AS pod`);
          await client.end();
        }),
      );
      const sources = await eventually(async () => {
        const answer = await api<{ items: { pod: string; status: string; records: number }[] }>(
          '/v1/sources',
        );
        const ours = answer.items.filter((s) => pods.includes(s.pod));
        return ours.length === pods.length && ours.every((s) => s.records >= 25) ? ours : undefined;
      });
      expect(sources.map((s) => s.status)).toEqual(['ok', 'ok', 'ok']);
      // A source's record count includes its connection records: its statements may still be arriving.
      for (const pod of pods) {
        const statements = await eventually(async () => {
          const page = await api<{ items: { source: { pod: string } }[] }>(
            `/v1/statements?subject=local:demo&since=10m&limit=500`,
          );
          const count = page.items.filter((s) => s.source.pod === pod).length;
          return count >= 25 ? count : undefined;
        });
        expect(statements).toBeGreaterThanOrEqual(25);
      }
    } finally {
      await Promise.all(proxies.map((p) => p.stop()));
    }
    // Each store chain is its file, byte for byte, after the proxies sealed their logs.
    const store = await CollectorStore.open(await openDriver(storeUrl));
    try {
      for (const [i, p] of proxies.entries()) {
        const lines = readFileSync(join(p.dir, 'audit.jsonl'), 'utf8').trimEnd().split('\n');
        const source = await eventually(async () => {
          const s = (await store.sources()).find((x) => x.pod === pods[i]);
          return s && s.lastSeq === (JSON.parse(lines.at(-1)!).seq as number) ? s : undefined;
        });
        expect(await store.lines(source.id)).toEqual(lines);
      }
    } finally {
      await store.close();
    }
  });
});
