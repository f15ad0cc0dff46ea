import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { generateTls } from '../../../test/harness/tls.ts';
import type { AdmissionReview } from './admission-review.ts';
import {
  MUTATE_PODS_PATH,
  type ServingCertificate,
  startWebhookServer,
  type WebhookServer,
} from './webhook-server.ts';

type Answer = { status: number; body: string };

let dir: string;
let first: ServingCertificate & { ca: string };
let second: ServingCertificate & { ca: string };
let current: ServingCertificate;
let server: WebhookServer;
const seen: AdmissionReview[] = [];

async function loadTls(path: string) {
  const files = await generateTls(path);
  return {
    cert: await readFile(files.certFile, 'utf8'),
    key: await readFile(files.keyFile, 'utf8'),
    ca: await readFile(files.caFile, 'utf8'),
  };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gatehouse-webhook-'));
  first = await loadTls(join(dir, 'first'));
  second = await loadTls(join(dir, 'second'));
  current = first;
  server = await startWebhookServer({
    host: '127.0.0.1',
    port: 0,
    certificate: () => current,
    handler: async (review) => {
      seen.push(review);
      return {
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        response: { uid: review.request!.uid, allowed: true },
      };
    },
    logger: pino({ level: 'silent' }),
    maxBodyBytes: 64 * 1024,
  });
});

afterAll(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

function send(
  options: { method?: string; path?: string; body?: string | Buffer; contentType?: string; ca?: string } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const outgoing = request(
      {
        host: '127.0.0.1',
        port: server.address.port,
        method: options.method ?? 'POST',
        path: options.path ?? MUTATE_PODS_PATH,
        ca: options.ca ?? first.ca,
        headers: { 'content-type': options.contentType ?? 'application/json' },
        agent: false,
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () =>
          resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
        );
      },
    );
    outgoing.on('error', reject);
    outgoing.end(options.body);
  });
}

const review = (uid: string): AdmissionReview => ({
  apiVersion: 'admission.k8s.io/v1',
  kind: 'AdmissionReview',
  request: {
    uid,
    kind: { group: '', version: 'v1', kind: 'Pod' },
    resource: { group: '', version: 'v1', resource: 'pods' },
    operation: 'CREATE',
    namespace: 'default',
    object: { metadata: { name: 'p' }, spec: { containers: [] } },
  },
});

describe('startWebhookServer', () => {
  test('answers an AdmissionReview over HTTPS with the handler’s answer', async () => {
    const answer = await send({ body: JSON.stringify(review('uid-1')) });
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toMatchObject({ response: { uid: 'uid-1', allowed: true } });
    expect(seen.at(-1)?.request?.uid).toBe('uid-1');
  });

  test.each([
    [{ method: 'GET' }, 405],
    [{ path: '/mutate-services' }, 404],
    [{ contentType: 'application/yaml', body: 'kind: AdmissionReview' }, 415],
    [{ body: '{not json' }, 400],
    [{ body: JSON.stringify({ kind: 'Pod' }) }, 400],
    [{ body: Buffer.alloc(65 * 1024, 0x20) }, 413],
  ] as const)('refuses %o with HTTP %i', async (options, status) => {
    const answer = await send(options);
    expect(answer.status).toBe(status);
  });

  test('a chunked body over the limit is refused without reading it all', async () => {
    const answer = await new Promise<number>((resolve, reject) => {
      const outgoing = request(
        {
          host: '127.0.0.1',
          port: server.address.port,
          method: 'POST',
          path: MUTATE_PODS_PATH,
          ca: first.ca,
          headers: { 'content-type': 'application/json' },
          agent: false,
        },
        (response) => {
          response.resume();
          resolve(response.statusCode ?? 0);
        },
      );
      outgoing.on('error', reject);
      for (let i = 0; i < 80; i++) outgoing.write(Buffer.alloc(1024, 0x20));
      outgoing.end();
    });
    expect(answer).toBe(413);
  });

  test('serves /healthz', async () => {
    expect((await send({ method: 'GET', path: '/healthz' })).status).toBe(200);
  });

  test('a new certificate is served to new connections without a restart', async () => {
    expect((await send({ method: 'GET', path: '/healthz', ca: first.ca })).status).toBe(200);
    current = second;
    expect((await send({ method: 'GET', path: '/healthz', ca: second.ca })).status).toBe(200);
    await expect(send({ method: 'GET', path: '/healthz', ca: first.ca })).rejects.toThrow(/certificate/);
    current = first;
  });
});
