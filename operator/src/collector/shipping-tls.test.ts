import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openAuditLog } from '../../../sidecar/src/audit/log.ts';
import { type AuditShipper, startShipper } from '../../../sidecar/src/audit/ship.ts';
import { postBatch } from '../../../sidecar/src/audit/ship-post.ts';
import { statementEvent } from '../../../sidecar/src/audit/testing.ts';
import {
  createCertificateAuthority,
  issueServerCertificate,
  type KeyedCertificate,
  pemBundle,
} from '../../../sidecar/src/tls/certificates.ts';
import { freePort } from '../../../test/harness/free-port.ts';
import { loadCollectorConfig } from './collector-config.ts';
import { type RunningCollector, startCollector } from './start-collector.ts';
import { freshStoreUrl } from './test-store.ts';

/**
 * Shipping over TLS, as the chart's sidecars do: the shipper verifies the collector with the CA in
 * its caFile and nothing else, reads that file again for every batch (the operator fills it in and
 * renews it through the bundle), sends nothing while it holds no certificate, and never a byte in
 * clear; the collector serves a renewed certificate without a restart.
 */

const TOKEN = 'shipping-tls-token-0123';
const logger = pino({ level: 'silent' });
let dir: string;
let keyFile: string;
let storeUrl: string;
let collector: RunningCollector | undefined;
const shippers: AuditShipper[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gatehouse-shipping-tls-'));
  keyFile = join(dir, 'signing.pem');
  await writeFile(
    keyFile,
    generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }),
  );
  storeUrl = await freshStoreUrl('collector_shipping_tls_test');
});
afterAll(async () => {
  for (const shipper of shippers) await shipper.stop(100);
  await collector?.close();
  await rm(dir, { recursive: true, force: true });
});

async function auditFile(name: string, statements: number): Promise<string> {
  const file = join(dir, `${name}.jsonl`);
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
  return file;
}

async function serving(ca: KeyedCertificate, name: string): Promise<{ certFile: string; keyFile: string }> {
  const issued = await issueServerCertificate(ca, ['127.0.0.1'], new Date(), 30);
  const files = { certFile: join(dir, `${name}.crt`), keyFile: join(dir, `${name}.key`) };
  await writeFile(files.certFile, issued.certificate.toString('pem'));
  await writeFile(files.keyFile, issued.keyPem);
  return files;
}

async function caFile(name: string, ca: KeyedCertificate | undefined): Promise<string> {
  const file = join(dir, `${name}.pem`);
  await writeFile(file, ca ? pemBundle([ca.certificate]) : '');
  return file;
}

function ship(file: string, url: string, pod: string, ca: string): AuditShipper {
  const shipper = startShipper({
    file,
    target: { url, token: TOKEN, caFile: ca },
    source: { cluster: 'test', namespace: 'ns', pod, database: 'app' },
    logger,
    pollMs: 20,
    retryMinMs: 20,
    retryMaxMs: 100,
  });
  shippers.push(shipper);
  return shipper;
}

async function until(condition: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const recordsOf = async (pod: string) =>
  (await collector!.store.sources()).find((source) => source.pod === pod)?.records ?? 0;

describe('shipping to a TLS collector', () => {
  it('ships only to a collector its CA file verifies, reads the file again, and serves a renewed certificate', async () => {
    const [first, second, stranger] = await Promise.all(
      ['collector CA 1', 'collector CA 2', 'someone else'].map((name) =>
        createCertificateAuthority(name, new Date(), 30),
      ),
    );
    const port = await freePort();
    const tls = await serving(first!, 'serving');
    const config = loadCollectorConfig(undefined, { store: storeUrl, listen: `127.0.0.1:${port}` });
    collector = await startCollector({ ...config, shipperTokens: [TOKEN], tls }, { logger });
    expect(collector.url).toBe(`https://127.0.0.1:${port}`);

    const right = ship(await auditFile('right', 4), collector.url, 'right', await caFile('right', first));
    await until(async () => (await recordsOf('right')) > 0 && right.acknowledged > 0);

    // A CA that is not the collector's: the handshake fails, nothing arrives, the records wait.
    const wrongCa = await caFile('wrong', stranger);
    const wrong = ship(await auditFile('wrong', 4), collector.url, 'wrong', wrongCa);
    // An empty CA file (the bundle before the operator knows the CA): nothing is sent either.
    const emptyCa = await caFile('empty', undefined);
    const empty = ship(await auditFile('empty', 4), collector.url, 'empty', emptyCa);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(await recordsOf('wrong')).toBe(0);
    expect(await recordsOf('empty')).toBe(0);
    expect(wrong.acknowledged + empty.acknowledged).toBe(0);

    // The files put right: the same shippers send everything that waited, without a restart.
    await writeFile(wrongCa, pemBundle([first!.certificate]));
    await writeFile(emptyCa, pemBundle([first!.certificate]));
    await until(async () => (await recordsOf('wrong')) > 0 && (await recordsOf('empty')) > 0);

    // A renewed certificate from another CA, written over the files the collector serves: it
    // reloads them, and a shipper that trusts only the new CA gets through.
    const renewed = await serving(second!, 'renewed');
    await writeFile(tls.keyFile, await readFile(renewed.keyFile));
    await writeFile(tls.certFile, await readFile(renewed.certFile));
    const after = ship(await auditFile('after', 4), collector.url, 'after', await caFile('after', second));
    await until(async () => (await recordsOf('after')) > 0);
    expect(after.acknowledged).toBeGreaterThan(0);
  }, 30_000);

  it('refuses an empty CA file with a reason, and never sends a byte in clear', async () => {
    // A listener that records every byte, in place of a collector: whatever the CA, an https URL
    // only ever opens with a TLS handshake, and the token never crosses in clear.
    const received: Buffer[] = [];
    const server: Server = createServer((socket) => {
      socket.on('data', (chunk: Buffer) => received.push(chunk));
      socket.on('error', () => {});
      setTimeout(() => socket.destroy(), 200);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    try {
      const source = { cluster: 'c', namespace: 'ns', pod: 'p', database: 'd', logKeyId: '0123456789abcdef' };
      const url = `https://127.0.0.1:${port}`;
      const emptyCa = await caFile('refused-empty', undefined);
      await expect(postBatch({ url, token: TOKEN, caFile: emptyCa }, source, ['{}'])).rejects.toThrow(
        /holds no CA certificate yet: nothing is sent/,
      );
      expect(received).toEqual([]);
      const stranger = await createCertificateAuthority('stranger', new Date(), 30);
      await expect(
        postBatch({ url, token: TOKEN, caFile: await caFile('refused', stranger) }, source, ['{}']),
      ).rejects.toThrow();
      const bytes = Buffer.concat(received);
      expect(bytes[0]).toBe(0x16); // a TLS handshake record
      expect(bytes.includes(TOKEN)).toBe(false);
      expect(bytes.includes('POST')).toBe(false);
    } finally {
      server.close();
    }
  });
});
