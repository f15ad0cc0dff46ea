import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpAuditSink } from '../../../sidecar/src/audit/http-sink.ts';
import { statementEvent, writeSignedLog } from '../../../sidecar/src/audit/testing.ts';
import { RecordForwarder } from './forwarder.ts';
import { CollectorStore } from './store.ts';
import { openDriver } from './store-driver.ts';
import { freshStoreUrl } from './test-store.ts';

/**
 * The collector's forwarding to a SIEM against a real PostgreSQL store and a real HTTP receiver:
 * every stored record is delivered, in each source's order, once while all goes well; an endpoint
 * that is down delays and loses nothing; a restarted forwarder goes on from what was acknowledged;
 * two replicas do not both send.
 */
const logger = pino({ level: 'silent' });
let dir: string;
let store: CollectorStore;
let receiver: Server;
let url: string;
/** Lines the receiver acknowledged, in arrival order. */
const received: string[] = [];
/** Answer 503 to this many more requests. */
let failNext = 0;
let logs: string[][];

const key = (pod: string, lines: string[]) => ({
  cluster: 'c',
  namespace: 'shop',
  pod,
  database: 'shop',
  logKeyId: String(JSON.parse(lines[0]!).keyId),
});

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gatehouse-forwarder-'));
  logs = [];
  for (let i = 0; i < 3; i++) {
    const sub = await mkdtemp(join(dir, 'log-'));
    const events = Array.from({ length: 40 }, (_, n) => statementEvent(n));
    const { file } = await writeSignedLog(sub, events);
    logs.push((await readFile(file, 'utf8')).trimEnd().split('\n'));
  }
  store = await CollectorStore.open(await openDriver(await freshStoreUrl('forwarder_test')));
  receiver = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
    request.on('end', () => {
      if (failNext > 0) {
        failNext--;
        response.statusCode = 503;
        response.end();
        return;
      }
      received.push(...body.trimEnd().split('\n'));
      response.end('{}');
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/ingest`;
});
afterAll(async () => {
  await new Promise((resolve) => receiver.close(resolve));
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

function forwarder(format: 'records' | 'ocsf' = 'records'): RecordForwarder {
  return new RecordForwarder({
    db: store.db,
    sink: new HttpAuditSink({
      url,
      shape: 'jsonl',
      format,
      batchRecords: 25,
      batchIntervalMs: 10,
      maxBufferedRecords: Number.MAX_SAFE_INTEGER,
      timeoutMs: 2000,
      logger,
      productVersion: 'test',
      retryMinMs: 20,
      retryMaxMs: 50,
    }),
    name: `test-${format}`,
    logger,
    batchRecords: 30,
    intervalMs: 20,
  });
}

async function until(check: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('RecordForwarder', () => {
  it('delivers every stored record once, in each source order, though the endpoint fails at first', async () => {
    await store.ingest(key('orders-0', logs[0]!), logs[0]!.slice(0, 20));
    await store.ingest(key('orders-1', logs[1]!), logs[1]!);
    failNext = 4;
    const one = forwarder();
    one.start();
    await until(() => received.length >= 20 + logs[1]!.length);
    // Stored while it runs: followed too.
    await store.ingest(key('orders-0', logs[0]!), logs[0]!.slice(20));
    await until(() => received.length >= logs[0]!.length + logs[1]!.length);
    await one.stop();
    expect(failNext).toBe(0);
    expect(received.filter((l) => logs[0]!.includes(l))).toEqual(logs[0]);
    expect(received.filter((l) => logs[1]!.includes(l))).toEqual(logs[1]);
    expect(received).toHaveLength(logs[0]!.length + logs[1]!.length);
  });

  it('goes on from what was acknowledged after a restart, and two replicas do not both send', async () => {
    const before = received.length;
    await store.ingest(key('orders-2', logs[2]!), logs[2]!);
    const replicas = [forwarder(), forwarder()];
    for (const r of replicas) r.start();
    await until(() => received.length >= before + logs[2]!.length);
    await new Promise((resolve) => setTimeout(resolve, 300));
    for (const r of replicas) await r.stop();
    expect(received.slice(before)).toEqual(logs[2]);
    expect(replicas.map((r) => r.forwarded).sort((a, b) => a - b)).toEqual([0, logs[2]!.length]);
  });

  it('forwards OCSF events, each naming its source, under a position of its own', async () => {
    const before = received.length;
    const ocsf = forwarder('ocsf');
    ocsf.start();
    const total = logs.reduce((n, l) => n + l.length, 0);
    await until(() => received.length >= before + total);
    await ocsf.stop();
    const events = received
      .slice(before)
      .map((l) => JSON.parse(l) as { class_uid: number; unmapped?: Record<string, unknown> });
    expect(events).toHaveLength(total);
    expect(events.every((e) => typeof e.class_uid === 'number')).toBe(true);
    expect(JSON.stringify(events[0])).toContain('c/shop/orders-');
  });
});
