import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { writeEveryRecordLog } from '../../../sidecar/src/audit/every-record.testing.ts';
import { postBatch } from '../../../sidecar/src/audit/ship-post.ts';
import { runAuditExport } from '../../../sidecar/src/cli/audit-export.ts';
import { runEvidenceCommand } from '../../../sidecar/src/cli/evidence-command.ts';
import {
  createCertificateAuthority,
  issueServerCertificate,
  pemBundle,
} from '../../../sidecar/src/tls/certificates.ts';
import { freePort } from '../../../test/harness/free-port.ts';
import { runAuditQuery } from './audit-query-command.ts';
import { loadCollectorConfig } from './collector-config.ts';
import { COLLECTOR_CA_ENV } from './collector-http.ts';
import { type RunningCollector, startCollector } from './start-collector.ts';
import { freshStoreUrl } from './test-store.ts';

/**
 * A reader's commands against a collector that serves TLS from a private CA, as the chart's does
 * (reached through `kubectl port-forward`, https://localhost:PORT): without the CA they fail saying
 * so, with --ca FILE or $GATEHOUSE_COLLECTOR_CA they verify it and work; a CA file that is missing,
 * unreadable or not a certificate is refused by name before anything is sent.
 */

const TOKEN = 'collector-ca-shipper-token';
const READER = ['--user', 'auditor', '--password', 'auditor-secret'];
const logger = pino({ level: 'silent' });
let dir: string;
let collector: RunningCollector;
let server: string;
let caFile: string;
let strangerCaFile: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gatehouse-collector-ca-'));
  const [ca, stranger] = await Promise.all([
    createCertificateAuthority('collector CA', new Date(), 30),
    createCertificateAuthority('someone else', new Date(), 30),
  ]);
  // The names the operator puts in the collector's certificate for a port-forward.
  const issued = await issueServerCertificate(ca, ['localhost', '127.0.0.1'], new Date(), 30);
  const tls = { certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key') };
  await writeFile(tls.certFile, issued.certificate.toString('pem'));
  await writeFile(tls.keyFile, issued.keyPem);
  caFile = join(dir, 'ca.crt');
  await writeFile(caFile, pemBundle([ca.certificate]));
  strangerCaFile = join(dir, 'stranger.crt');
  await writeFile(strangerCaFile, pemBundle([stranger.certificate]));
  const port = await freePort();
  const config = loadCollectorConfig(undefined, {
    store: await freshStoreUrl('collector_ca_cli_test'),
    listen: `127.0.0.1:${port}`,
  });
  collector = await startCollector(
    {
      ...config,
      shipperTokens: [TOKEN],
      tls,
      localUsers: [{ name: 'auditor', password: 'auditor-secret' }],
      console: undefined,
    },
    { logger },
  );
  server = `https://localhost:${port}`;
  const lines = (await readFile(await writeEveryRecordLog(dir), 'utf8')).trimEnd().split('\n');
  await postBatch(
    { url: server, token: TOKEN, caFile },
    {
      cluster: 'c',
      namespace: 'shop',
      pod: 'orders-0',
      database: 'shop',
      logKeyId: String(JSON.parse(lines[0]!).keyId),
    },
    lines,
  );
});
afterAll(async () => {
  await collector?.close();
  await rm(dir, { recursive: true, force: true });
});
afterEach(() => {
  delete process.env[COLLECTOR_CA_ENV];
  vi.restoreAllMocks();
});

/** `gatehouse audit query` in process: its exit code or its error, and what it printed. */
async function query(...argv: string[]): Promise<{ code?: number; error?: string; out: string }> {
  const printed: string[] = [];
  vi.spyOn(console, 'log').mockImplementation((text: unknown) => void printed.push(String(text)));
  try {
    return { code: await runAuditQuery(argv), out: printed.join('\n') };
  } catch (error) {
    return { error: (error as Error).message, out: printed.join('\n') };
  } finally {
    vi.restoreAllMocks();
  }
}

async function exportRecords(...argv: string[]) {
  let out = '';
  let err = '';
  const code = await runAuditExport(argv, {
    stdout: { write: (t: string) => (out += t) },
    stderr: { write: (t: string) => (err += t) },
  });
  return { code, out, err };
}

async function evidence(...argv: string[]) {
  let out = '';
  let err = '';
  const code = await runEvidenceCommand(argv, {
    stdout: { write: (t: string) => (out += t) },
    stderr: { write: (t: string) => (err += t) },
    env: { ...process.env },
  });
  return { code, out, err };
}

const SYSTEM_ONLY =
  /^cannot verify the collector at https:\/\/localhost:\d+: its certificate did not verify \((UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN)/;

describe('--ca: the collector verified with its own CA', () => {
  it('audit query fails without it, naming the CA problem, and works with --ca or the variable', async () => {
    const without = await query('sources', '--server', server, ...READER, '--format', 'json');
    expect(without.code).toBeUndefined();
    expect(without.error).toMatch(SYSTEM_ONLY);
    expect(without.error).toContain(
      `checked against the system's CAs only; give the collector's CA with --ca FILE or $${COLLECTOR_CA_ENV}`,
    );

    const withCa = await query('sources', '--server', server, ...READER, '--ca', caFile, '--format', 'json');
    expect(withCa.error).toBeUndefined();
    expect(withCa.code).toBe(0);
    expect(JSON.parse(withCa.out).items).toEqual([
      expect.objectContaining({ pod: 'orders-0', status: 'ok' }),
    ]);

    process.env[COLLECTOR_CA_ENV] = caFile;
    const fromEnv = await query('statements', '--server', server, ...READER, '--format', 'json');
    expect(fromEnv.error).toBeUndefined();
    expect(JSON.parse(fromEnv.out).items.length).toBeGreaterThan(0);

    // Another CA is not the collector's: said so, naming the file tried.
    const stranger = await query('sources', '--server', server, ...READER, '--ca', strangerCaFile);
    expect(stranger.error).toContain(
      `checked against the CA of --ca ${strangerCaFile}; is that the collector's CA?`,
    );
    // --ca wins over the variable.
    process.env[COLLECTOR_CA_ENV] = strangerCaFile;
    expect((await query('sources', '--server', server, ...READER, '--ca', caFile)).code).toBe(0);
  });

  it('audit export --server fails without it and exports with it', async () => {
    const without = await exportRecords('--server', server, ...READER, '--format', 'jsonl');
    expect(without.code).toBe(2);
    expect(without.out).toBe('');
    expect(without.err).toMatch(/^gatehouse: cannot verify the collector at https:\/\/localhost:\d+: /);
    expect(without.err).toContain('--ca FILE');

    const withCa = await exportRecords('--server', server, ...READER, '--ca', caFile, '--format', 'jsonl');
    // The every-record log holds a line torn by a crash on purpose; nothing else is said.
    expect(withCa.err).toBe(
      'gatehouse: skipped 1 line(s) that are not whole audit records (torn by a crash)\n',
    );
    expect(withCa.code).toBe(0);
    expect(withCa.out.trimEnd().split('\n').length).toBeGreaterThan(5);
    expect((await exportRecords('--ca', caFile, join(dir, 'x.jsonl'))).err).toContain(
      '--ca go with --server',
    );
  });

  it('evidence build --server fails without it, writing nothing, and builds the pack with it', async () => {
    const period = ['--from', new Date(Date.now() - 86_400_000).toISOString().slice(0, 10), '--to'];
    period.push(new Date(Date.now() + 86_400_000).toISOString().slice(0, 10));
    const without = await evidence(
      'build',
      ...period,
      '--out',
      join(dir, 'pack-1'),
      '--server',
      server,
      ...READER,
    );
    expect(without.code).toBe(2);
    expect(without.err).toMatch(/^gatehouse: cannot verify the collector at https:\/\/localhost:\d+: /);

    const pack = join(dir, 'pack-2');
    const withCa = await evidence(
      'build',
      ...period,
      '--out',
      pack,
      '--server',
      server,
      ...READER,
      '--ca',
      caFile,
    );
    expect(withCa.err).toBe('');
    expect(withCa.code).toBe(0);
    expect(JSON.parse(await readFile(join(pack, 'chains.json'), 'utf8'))).toBeDefined();
  });

  it('refuses a CA file that is missing, unreadable or not a certificate, by name, before asking', async () => {
    const folder = join(dir, 'a-folder');
    await mkdir(folder);
    const text = join(dir, 'not-pem.crt');
    await writeFile(text, 'this is not a certificate\n');
    const garbled = join(dir, 'garbled.crt');
    await writeFile(garbled, '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
    const empty = join(dir, 'empty.crt');
    await writeFile(empty, '');
    const missing = join(dir, 'missing.crt');
    const cases: [string, string][] = [
      [missing, `--ca ${missing}: no such file (the collector's CA certificate, PEM`],
      [folder, `--ca ${folder}: cannot read it (EISDIR)`],
      [text, `--ca ${text}: holds no PEM certificate (-----BEGIN CERTIFICATE-----)`],
      [empty, `--ca ${empty}: holds no PEM certificate`],
      [garbled, `--ca ${garbled}: holds a PEM block that is not a certificate`],
    ];
    for (const [file, message] of cases) {
      expect((await query('sources', '--server', server, ...READER, '--ca', file)).error).toContain(message);
      const exported = await exportRecords('--server', server, ...READER, '--ca', file);
      expect([exported.code, exported.err]).toEqual([2, expect.stringContaining(message)]);
      const built = await evidence(
        'build',
        '--from',
        '2026-01-01',
        '--to',
        '2026-01-02',
        '--out',
        join(dir, 'never'),
        '--server',
        server,
        ...READER,
        '--ca',
        file,
      );
      expect([built.code, built.err]).toEqual([2, expect.stringContaining(message)]);
    }
    // From the variable, the message names the variable.
    process.env[COLLECTOR_CA_ENV] = missing;
    expect((await query('sources', '--server', server, ...READER)).error).toContain(
      `$${COLLECTOR_CA_ENV} ${missing}: no such file`,
    );
    await expect(readFile(join(dir, 'never', 'manifest.json'))).rejects.toThrow();
  });
});
