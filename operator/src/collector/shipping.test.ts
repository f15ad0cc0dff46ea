import { generateKeyPairSync } from 'node:crypto';
import { appendFile, mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openAuditLog } from '../../../sidecar/src/audit/log.ts';
import { startShipper } from '../../../sidecar/src/audit/ship.ts';
import { statementEvent } from '../../../sidecar/src/audit/testing.ts';
import { verifyAuditLog } from '../../../sidecar/src/audit/verify.ts';
import { freePort } from '../../../test/harness/free-port.ts';
import { loadCollectorConfig } from './collector-config.ts';
import { type RunningCollector, startCollector } from './start-collector.ts';
import { freshStoreUrl } from './test-store.ts';

/**
 * The shipper against a real collector and store: a log a crash tore and its writer continued ships
 * whole (the torn line kept where it was, the chain verified), a collector that comes up late gets
 * everything, and a line torn at the end of the file is held back until a record follows it.
 */

const TOKEN = 'shipping-test-token-0123';
const logger = pino({ level: 'silent' });
let dir: string;
let keyFile: string;
let storeUrl: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gatehouse-shipping-'));
  keyFile = join(dir, 'signing.pem');
  await writeFile(
    keyFile,
    generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }),
  );
  storeUrl = await freshStoreUrl('collector_shipping_test');
});
afterAll(() => rm(dir, { recursive: true, force: true }));

async function writeRun(file: string, statements: number): Promise<void> {
  const log = await openAuditLog({
    file,
    stdout: false,
    signingKeyFile: keyFile,
    checkpointEveryRecords: 3,
    checkpointIntervalMs: 60_000,
    logger,
  });
  for (let i = 0; i < statements; i++) log.record(statementEvent(i));
  await log.close();
}

async function collectorOn(port: number): Promise<RunningCollector> {
  const config = loadCollectorConfig(undefined, { store: storeUrl, listen: `127.0.0.1:${port}` });
  return startCollector({ ...config, shipperTokens: [TOKEN] }, { logger });
}

function ship(file: string, port: number, pod: string) {
  return startShipper({
    file,
    target: { url: `http://127.0.0.1:${port}`, token: TOKEN },
    source: { cluster: 'test', namespace: 'ns', pod, database: 'app' },
    logger,
    batchRecords: 1,
    pollMs: 20,
    retryMinMs: 20,
    retryMaxMs: 100,
  });
}

async function until(condition: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function lastSeq(text: string): number {
  const records = text
    .trimEnd()
    .split('\n')
    .filter((l) => l.endsWith('}'));
  return JSON.parse(records.at(-1)!).seq as number;
}

describe('shipping an audit log to the collector', () => {
  it('ships a log that a crash tore and its writer continued, torn line and all, to a collector that came up late', async () => {
    const file = join(dir, 'torn.jsonl');
    await writeRun(file, 5);
    const size = (await readFile(file)).length;
    await truncate(file, size - 40); // the seal cut in half, as a crash mid-write leaves it
    await writeRun(file, 4);
    const text = await readFile(file, 'utf8');

    const port = await freePort();
    const shipper = ship(file, port, 'torn-0');
    await new Promise((resolve) => setTimeout(resolve, 200)); // shipping into nothing, retrying
    const collector = await collectorOn(port);
    try {
      await until(() => shipper.acknowledged === lastSeq(text));
      await shipper.stop();
      const source = (await collector.store.sources()).find((s) => s.pod === 'torn-0')!;
      expect(source).toMatchObject({ status: 'ok', lastSeq: lastSeq(text) });
      const stored = await collector.store.lines(source.id);
      expect(`${stored.join('\n')}\n`).toBe(text);
      expect(verifyAuditLog(text)).toMatchObject({
        ok: true,
        recoveries: [{ damage: 'torn-line' }, { damage: 'head-mismatch' }],
      });
    } finally {
      await collector.close();
    }
  });

  it('holds back a line torn at the end of the file until a record follows it', async () => {
    const file = join(dir, 'cut.jsonl');
    await writeRun(file, 4);
    const whole = await readFile(file, 'utf8');
    await appendFile(file, '{"seq":99,"prev":"00');
    const port = await freePort();
    const collector = await collectorOn(port);
    try {
      const shipper = ship(file, port, 'cut-0');
      await until(() => shipper.acknowledged === lastSeq(whole));
      await new Promise((resolve) => setTimeout(resolve, 200));
      await shipper.stop();
      const source = (await collector.store.sources()).find((s) => s.pod === 'cut-0')!;
      expect(source).toMatchObject({ status: 'ok', lastSeq: lastSeq(whole) });
      expect(`${(await collector.store.lines(source.id)).join('\n')}\n`).toBe(whole);
    } finally {
      await collector.close();
    }
  });
});
