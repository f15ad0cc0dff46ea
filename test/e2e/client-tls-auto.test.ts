import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { mysql as mysqlCli } from '../harness/mysql-cli.ts';
import { localProxyConfig, proxyDsn, psql } from './support/clients.ts';
import { mysqlClient, mysqlProxyConfig } from './support/mysql.ts';
import { type ProxyProcess, startProxyProcess } from './support/proxy-process.ts';

const server = inject('mariadb');
const pgInfo = inject('postgres');
const harnessTls = inject('tls');
const demo = { user: 'demo', password: 'demo-secret' };

/** The CA file the proxy names in its listening line. */
function caFileOf(proxy: ProxyProcess): string {
  const line = proxy.lines.find((l) => l.includes('gatehouse proxy listening'))!;
  return (JSON.parse(line) as { clientTlsCa: string }).clientTlsCa;
}

describe('clientTls: auto in front of MariaDB', () => {
  let proxy: ProxyProcess;
  let caFile: string;

  beforeAll(async () => {
    proxy = await startProxyProcess(mysqlProxyConfig(server, { clientTls: 'auto' }));
    caFile = caFileOf(proxy);
  });

  afterAll(async () => {
    await proxy?.stop();
  });

  it('makes a CA, writes it to a file and says where, at warn (a new CA is news)', () => {
    expect(caFile).toBe(join(proxy.dir, '.gatehouse/tls/ca.crt'));
    expect(readFileSync(caFile, 'utf8')).toMatch(/^-----BEGIN CERTIFICATE-----/);
    expect(proxy.lines.some((l) => l.includes('"level":40') && l.includes(caFile))).toBe(true);
  });

  it('serves TLS the mysql CLI verifies with that CA (and not with another)', async () => {
    const verified = await mysqlCli(['--skip-column-names', '-e', 'SELECT @gatehouse_identity'], {
      server,
      login: demo,
      port: proxy.port,
      ssl: 'verify',
      caFile,
    });
    expect(verified.stderr).toBe('');
    expect(verified.stdout).toContain('local:demo');
    // The session ran over TLS, as its audit record says.
    await new Promise((r) => setTimeout(r, 300));
    expect(readFileSync(proxy.auditFile!, 'utf8')).toMatch(/"type":"connection.start".*"tls":true/);
    const stranger = await mysqlCli(['-e', 'SELECT 1'], {
      server,
      login: demo,
      port: proxy.port,
      ssl: 'verify',
      caFile: harnessTls.caFile,
    });
    expect(stranger.stderr).toMatch(/ERROR 2026/);
  });

  it('serves TLS mysql2 verifies with that CA', async () => {
    const connection = await mysqlClient(proxy.port, { ssl: { ca: readFileSync(caFile) } });
    try {
      const [rows] = await connection.query('SELECT @gatehouse_identity AS who');
      expect(rows).toEqual([{ who: 'local:demo' }]);
      const stream = (connection as unknown as { connection: { stream: TLSSocket } }).connection.stream;
      expect(stream.encrypted).toBe(true);
      expect(stream.authorized).toBe(true);
    } finally {
      await connection.end();
    }
  });
});

describe('clientTls: auto in front of PostgreSQL', () => {
  it('keeps its CA across restarts, and psql verifies the proxy with it (sslmode=verify-full)', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'gatehouse-tls-')), 'tls');
    const config = localProxyConfig(pgInfo, { clientTls: { auto: { dir, names: ['db.example.test'] } } });
    const first = await startProxyProcess(config);
    const ca = readFileSync(join(dir, 'ca.crt'), 'utf8');
    const cert = readFileSync(join(dir, 'server.crt'), 'utf8');
    await first.stop();
    const second = await startProxyProcess(config);
    try {
      expect(caFileOf(second)).toBe(join(dir, 'ca.crt'));
      expect(readFileSync(join(dir, 'ca.crt'), 'utf8')).toBe(ca);
      expect(readFileSync(join(dir, 'server.crt'), 'utf8')).toBe(cert);
      // Reused: nothing at warn about a new CA this time.
      expect(second.lines.some((l) => l.includes('made a new CA'))).toBe(false);
      const result = await psql(
        proxyDsn(second.port).replace(
          'sslmode=disable',
          `sslmode=verify-full sslrootcert=${join(dir, 'ca.crt')}`,
        ),
        ['-At', '-c', 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()', '-c', '\\conninfo'],
      );
      expect(result.stderr).toBe('');
      expect(result.stdout).toMatch(/SSL connection \(protocol: TLSv1\.3/);
    } finally {
      await second.stop();
    }
  });
});
