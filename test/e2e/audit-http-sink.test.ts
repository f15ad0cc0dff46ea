import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { describe, expect, inject, it } from 'vitest';
import { ocsfProblems } from '../support/ocsf-schema.ts';
import { localProxyConfig } from './support/clients.ts';
import { startProxyProcess } from './support/proxy-process.ts';

const pgInfo = inject('postgres');

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

describe('audit HTTP sink of a standalone proxy', () => {
  it('delivers every record of the file as OCSF, though the receiver was down while they were written', async () => {
    const port = await freePort();
    const proxy = await startProxyProcess(
      localProxyConfig(pgInfo, {
        audit: {
          file: 'audit.jsonl',
          stdout: false,
          http: {
            url: `http://127.0.0.1:${port}/ingest`,
            format: 'ocsf',
            token: { value: 'sink-secret' },
            batchRecords: 20,
            batchIntervalSeconds: 0.05,
          },
        },
        policy: { none: true },
      }),
    );
    let server: Server | undefined;
    const bodies: string[] = [];
    const auth = new Set<string | undefined>();
    try {
      const client = new pg.Client({
        host: '127.0.0.1',
        port: proxy.port,
        database: pgInfo.database,
        user: 'demo',
        password: 'demo-secret',
      });
      await client.connect();
      for (let i = 0; i < 40; i++) await client.query('SELECT $1::int AS n', [i]);
      await client.end();
      await new Promise((r) => setTimeout(r, 300));
      const metrics = await (await fetch(`http://127.0.0.1:${proxy.adminPort}/metrics`)).text();
      expect(metrics).toMatch(/^gatehouse_audit_http_sent 0$/m);
      expect(Number(/^gatehouse_audit_http_pending (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThan(80);
      expect(metrics).toMatch(/^gatehouse_audit_http_dropped 0$/m);

      server = createServer((request, response) => {
        let body = '';
        request.on('data', (chunk) => (body += chunk));
        request.on('end', () => {
          auth.add(request.headers['authorization']);
          bodies.push(body);
          response.writeHead(204).end();
        });
      });
      await new Promise<void>((resolve) => server!.listen(port, '127.0.0.1', resolve));
      expect(await proxy.stop()).toBe(0);
    } finally {
      await proxy.stop();
      server?.close();
    }
    const hashes = readFileSync(proxy.auditFile!, 'utf8')
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => (JSON.parse(line) as { hash: string }).hash);
    const events = bodies
      .flatMap((body) => body.split('\n'))
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(hashes.length).toBeGreaterThan(80);
    expect(events.map((e) => (e['unmapped'] as { hash: string }).hash)).toEqual(hashes);
    expect(events.flatMap(ocsfProblems)).toEqual([]);
    expect(events[0]!['unmapped']).toMatchObject({ source: 'audit.jsonl', type: 'log.open' });
    expect([...auth]).toEqual(['Bearer sink-secret']);
    expect(proxy.lines.join('\n')).toContain('audit HTTP sink: batch not delivered');
    expect(proxy.lines.join('\n')).not.toContain('sink-secret');
  });
});
