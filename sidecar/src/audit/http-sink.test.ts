import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ocsfProblems } from '../../../test/support/ocsf-schema.ts';
import { HttpAuditSink, type HttpSinkOptions } from './http-sink.ts';
import { openAuditLog } from './log.ts';
import { collectingLogger, statementEvent } from './testing.ts';

let dir: string;
let lines: string[];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gatehouse-http-sink-'));
  const file = join(dir, 'audit.jsonl');
  const log = await openAuditLog({
    file,
    stdout: false,
    checkpointEveryRecords: 100,
    checkpointIntervalMs: 60_000,
    logger: collectingLogger().logger,
  });
  for (let i = 0; i < 1000; i++) log.record(statementEvent(i));
  await log.close();
  lines = (await readFile(file, 'utf8')).split('\n').filter((line) => line !== '');
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A free loopback port, closed again: the receiver is down until `receiver()` listens on it. */
async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

interface Receiver {
  readonly server: Server;
  readonly bodies: { headers: IncomingMessage['headers']; body: string }[];
  readonly refused: number;
}

/** Accepts batches on `port`; answers 503 to each request `fail` says to, without keeping it. */
async function receiver(port: number, fail: (n: number) => boolean = () => false): Promise<Receiver> {
  const state = { bodies: [] as Receiver['bodies'], refused: 0, n: 0 };
  const server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk) => (body += chunk));
    request.on('end', () => {
      if (fail(state.n++)) {
        state.refused++;
        response.writeHead(503).end();
        return;
      }
      state.bodies.push({ headers: request.headers, body });
      response.writeHead(200).end('{"text":"Success","code":0}');
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    server,
    bodies: state.bodies,
    get refused() {
      return state.refused;
    },
  };
}

function sink(port: number, overrides: Partial<HttpSinkOptions> = {}) {
  const { logger, lines: logLines } = collectingLogger();
  const options: HttpSinkOptions = {
    url: `http://127.0.0.1:${port}/ingest`,
    shape: 'jsonl',
    format: 'records',
    batchRecords: 50,
    batchIntervalMs: 10,
    maxBufferedRecords: 100_000,
    timeoutMs: 2000,
    retryMinMs: 10,
    retryMaxMs: 100,
    logger,
    productVersion: 'test',
    ...overrides,
  };
  return { sink: new HttpAuditSink(options), logLines };
}

const received = (r: Receiver) => r.bodies.flatMap(({ body }) => body.split('\n').filter((l) => l !== ''));

describe('HTTP audit sink', () => {
  it('loses nothing while the receiver is down, then failing, and delivers in order', async () => {
    const port = await freePort();
    const { sink: s, logLines } = sink(port);
    // Down: nothing listens. Records keep coming.
    for (const [i, line] of lines.entries()) {
      s.push(line);
      if (i % 100 === 99) await new Promise((r) => setTimeout(r, 30));
    }
    expect(s.sent).toBe(0);
    expect(logLines.some((l) => String(l['msg']).includes('batch not delivered'))).toBe(true);
    // Up, but refusing every other batch for its first twenty requests.
    const up = await receiver(port, (n) => n < 20 && n % 2 === 0);
    await s.close(20_000);
    up.server.close();
    expect(up.refused).toBe(10);
    expect(received(up)).toEqual(lines);
    expect(s.sent).toBe(lines.length);
    expect(s.dropped).toBe(0);
    expect(up.bodies[0]!.headers['content-type']).toBe('application/x-ndjson');
    expect(logLines.some((l) => String(l['msg']).includes('delivering again'))).toBe(true);
  });

  it('speaks Splunk HEC with its token, as OCSF events that validate', async () => {
    const port = await freePort();
    const up = await receiver(port);
    const { sink: s, logLines } = sink(port, { shape: 'splunk-hec', format: 'ocsf', token: 'hec-secret' });
    for (const line of lines.slice(0, 120)) s.push(line);
    await s.close();
    up.server.close();
    expect(up.bodies.map((b) => b.headers['authorization'])).toEqual(
      up.bodies.map(() => 'Splunk hec-secret'),
    );
    const events = received(up).map(
      (l) => JSON.parse(l) as { time: number; sourcetype: string; event: object },
    );
    expect(events).toHaveLength(120);
    expect(events[0]).toMatchObject({ source: 'gatehouse', sourcetype: 'ocsf', time: expect.any(Number) });
    expect(events.flatMap((e) => ocsfProblems(e.event as Record<string, unknown>))).toEqual([]);
    expect(JSON.stringify(logLines)).not.toContain('hec-secret');
  });

  it('keeps its pauses while closing against an endpoint that refuses, and gives up after the grace period', async () => {
    const port = await freePort();
    const down = await receiver(port, () => true);
    const { sink: s, logLines } = sink(port, { retryMinMs: 100, retryMaxMs: 400 });
    for (const line of lines.slice(0, 10)) s.push(line);
    const started = Date.now();
    await s.close(1500);
    const took = Date.now() - started;
    down.server.close();
    expect(took).toBeGreaterThanOrEqual(1400);
    expect(took).toBeLessThan(3000);
    // About 1.5 s of pauses from 50 ms (half of 100, with jitter) doubling to 400 ms: a handful of tries.
    expect(down.refused).toBeGreaterThan(2);
    expect(down.refused).toBeLessThan(15);
    expect(s.pending).toBe(10);
    expect(logLines.some((l) => String(l['msg']).includes('closed with records unsent'))).toBe(true);
  });

  it('drops the oldest beyond maxBufferedRecords, counts them, and says so once', async () => {
    const port = await freePort();
    const { sink: s, logLines } = sink(port, { maxBufferedRecords: 10 });
    for (const line of lines.slice(0, 30)) s.push(line);
    expect(s.pending).toBe(10);
    expect(s.dropped).toBe(20);
    const up = await receiver(port);
    await s.close(10_000);
    up.server.close();
    expect(received(up)).toEqual(lines.slice(20, 30));
    expect(logLines.filter((l) => String(l['msg']).includes('dropping the oldest'))).toHaveLength(1);
  });
});
