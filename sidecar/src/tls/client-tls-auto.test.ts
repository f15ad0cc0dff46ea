import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { clientTlsNames, ensureAutoClientTls } from './client-tls-auto.ts';

const fresh = () => join(mkdtempSync(join(tmpdir(), 'gatehouse-auto-tls-')), 'tls');

describe('ensureAutoClientTls', () => {
  it('makes a CA and a certificate it signed for the names, with private keys only the owner reads', async () => {
    const dir = fresh();
    const tls = await ensureAutoClientTls(dir, ['localhost', '127.0.0.1']);
    expect(tls.made).toBe('ca');
    const ca = new X509Certificate(readFileSync(tls.caFile));
    const cert = new X509Certificate(tls.cert);
    expect(cert.verify(ca.publicKey)).toBe(true);
    expect(cert.checkHost('localhost')).toBe('localhost');
    expect(cert.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(ca.ca).toBe(true);
    expect(statSync(join(dir, 'ca.key')).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'server.key')).mode & 0o777).toBe(0o600);
  });

  it('reuses what is fresh, re-issues the certificate from the same CA for new names, remakes what is unreadable', async () => {
    const dir = fresh();
    const first = await ensureAutoClientTls(dir, ['localhost']);
    const again = await ensureAutoClientTls(dir, ['localhost']);
    expect(again).toMatchObject({ made: 'nothing', cert: first.cert });
    const caPem = readFileSync(first.caFile, 'utf8');
    const renamed = await ensureAutoClientTls(dir, ['localhost', 'db.example.test']);
    expect(renamed.made).toBe('certificate');
    expect(readFileSync(first.caFile, 'utf8')).toBe(caPem);
    expect(new X509Certificate(renamed.cert).checkHost('db.example.test')).toBe('db.example.test');
    // 300 days on, less than a third of the certificate's year is left: it is issued again.
    const later = await ensureAutoClientTls(
      dir,
      ['localhost', 'db.example.test'],
      new Date(Date.now() + 300 * 86_400_000),
    );
    expect(later.made).toBe('certificate');
    writeFileSync(join(dir, 'ca.key'), 'not a key');
    expect((await ensureAutoClientTls(dir, ['localhost'])).made).toBe('ca');
    expect(readFileSync(first.caFile, 'utf8')).not.toBe(caPem);
  });

  it('names loopback, this host and a specific listen address', () => {
    expect(clientTlsNames('0.0.0.0', ['db.example.test'])).toEqual(
      expect.arrayContaining(['localhost', '127.0.0.1', '::1', 'db.example.test']),
    );
    expect(clientTlsNames('10.1.2.3', [])).toContain('10.1.2.3');
    expect(clientTlsNames('0.0.0.0', [])).not.toContain('0.0.0.0');
  });
});
