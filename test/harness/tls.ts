import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const OPENSSL = '/usr/bin/openssl';
const VALID_DAYS = '30';

export type CertificateAuthority = { certFile: string; keyFile: string };

export type IssuedCertificate = { certFile: string; keyFile: string };

export type CertificateRequest = {
  /** File name stem inside the directory, e.g. 'server' gives server.crt and server.key. */
  name: string;
  commonName: string;
  dnsNames?: string[];
  ipAddresses?: string[];
  /** 'server' for TLS servers, 'client' for client-certificate authentication. */
  usage?: 'server' | 'client';
};

/** The files a TLS server needs, with the CA that clients verify it against. */
export type TlsFiles = { caFile: string; caKeyFile: string; certFile: string; keyFile: string };

/**
 * A CA and a server certificate for 127.0.0.1 and localhost, so clients can use
 * verify-full against loopback servers.
 */
export async function generateTls(dir: string): Promise<TlsFiles> {
  const ca = await createCertificateAuthority(dir);
  const server = await issueCertificate(ca, dir, {
    name: 'server',
    commonName: '127.0.0.1',
    dnsNames: ['localhost'],
    ipAddresses: ['127.0.0.1'],
  });
  return { caFile: ca.certFile, caKeyFile: ca.keyFile, certFile: server.certFile, keyFile: server.keyFile };
}

export async function createCertificateAuthority(dir: string): Promise<CertificateAuthority> {
  await mkdir(dir, { recursive: true });
  const certFile = join(dir, 'ca.crt');
  const keyFile = join(dir, 'ca.key');
  await generateKey(keyFile);
  await openssl([
    'req',
    '-x509',
    '-new',
    '-key',
    keyFile,
    '-subj',
    '/CN=Gatehouse test CA',
    '-days',
    VALID_DAYS,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
    '-out',
    certFile,
  ]);
  return { certFile, keyFile };
}

export async function issueCertificate(
  ca: CertificateAuthority,
  dir: string,
  request: CertificateRequest,
): Promise<IssuedCertificate> {
  await mkdir(dir, { recursive: true });
  const certFile = join(dir, `${request.name}.crt`);
  const keyFile = join(dir, `${request.name}.key`);
  const csrFile = join(dir, `${request.name}.csr`);
  const extFile = join(dir, `${request.name}.ext`);
  await generateKey(keyFile);
  await openssl(['req', '-new', '-key', keyFile, '-subj', `/CN=${request.commonName}`, '-out', csrFile]);
  await writeFile(extFile, extensions(request));
  await openssl([
    'x509',
    '-req',
    '-in',
    csrFile,
    '-CA',
    ca.certFile,
    '-CAkey',
    ca.keyFile,
    // A random serial avoids the .srl file that -CAcreateserial leaves behind and shares between calls.
    '-set_serial',
    `0x${randomBytes(16).toString('hex')}`,
    '-days',
    VALID_DAYS,
    '-extfile',
    extFile,
    '-out',
    certFile,
  ]);
  return { certFile, keyFile };
}

function extensions(request: CertificateRequest): string {
  const names = [
    ...(request.dnsNames ?? []).map((name) => `DNS:${name}`),
    ...(request.ipAddresses ?? []).map((address) => `IP:${address}`),
  ];
  const lines = [
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature,keyEncipherment',
    `extendedKeyUsage=${request.usage === 'client' ? 'clientAuth' : 'serverAuth'}`,
    'subjectKeyIdentifier=hash',
    'authorityKeyIdentifier=keyid,issuer',
  ];
  if (names.length > 0) lines.push(`subjectAltName=${names.join(',')}`);
  return `${lines.join('\n')}\n`;
}

// P-256 keys are generated in milliseconds, unlike RSA, and every client we test accepts them.
async function generateKey(keyFile: string): Promise<void> {
  await openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', keyFile]);
}

async function openssl(args: string[]): Promise<void> {
  try {
    await run(OPENSSL, args);
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? '';
    throw new Error(`openssl ${args[0]} failed: ${stderr.trim() || String(error)}`);
  }
}
