import 'reflect-metadata';
import { randomBytes, webcrypto } from 'node:crypto';
import { isIP } from 'node:net';
import * as x509 from '@peculiar/x509';

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

// @peculiar/x509 is typed against the DOM's Crypto; Node's WebCrypto is the same API.
x509.cryptoProvider.set(webcrypto as never);

/**
 * A small private CA and the server certificates it signs (ECDSA P-256), for the operator's webhook
 * and the proxy's `clientTls: auto`: the two places Gatehouse makes its own certificates.
 */
export type KeyedCertificate = {
  readonly certificate: x509.X509Certificate;
  readonly key: CryptoKey;
  readonly keyPem: string;
};

const DAY_MS = 86_400_000;
const ECDSA_P256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGNING = { name: 'ECDSA', hash: 'SHA-256' } as const;

export async function createCertificateAuthority(
  commonName: string,
  now: Date,
  validityDays: number,
): Promise<KeyedCertificate> {
  const keys = (await webcrypto.subtle.generateKey(ECDSA_P256, true, ['sign', 'verify'])) as CryptoKeyPair;
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name: `CN=${commonName}`,
    notBefore: backdated(now),
    notAfter: new Date(now.getTime() + validityDays * DAY_MS),
    signingAlgorithm: SIGNING,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certificate, key: keys.privateKey, keyPem: await privateKeyPem(keys.privateKey) };
}

/** A TLS server certificate for `names` (DNS names or IP addresses; the first is the CN), never outliving its CA. */
export async function issueServerCertificate(
  ca: KeyedCertificate,
  names: readonly string[],
  now: Date,
  validityDays: number,
): Promise<KeyedCertificate> {
  const keys = (await webcrypto.subtle.generateKey(ECDSA_P256, true, ['sign', 'verify'])) as CryptoKeyPair;
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(),
    subject: `CN=${names[0]}`,
    issuer: ca.certificate.subject,
    notBefore: backdated(now),
    notAfter: new Date(Math.min(now.getTime() + validityDays * DAY_MS, ca.certificate.notAfter.getTime())),
    signingAlgorithm: SIGNING,
    publicKey: keys.publicKey,
    signingKey: ca.key,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(
        names.map((name) => ({ type: isIP(name) === 0 ? 'dns' : 'ip', value: name })),
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(ca.certificate.publicKey),
    ],
  });
  return { certificate, key: keys.privateKey, keyPem: await privateKeyPem(keys.privateKey) };
}

/** A certificate with its PKCS#8 key; undefined when either is missing or unreadable (so made again). */
export async function keyed(
  certificate: x509.X509Certificate | undefined,
  keyPem: string | undefined,
): Promise<KeyedCertificate | undefined> {
  if (certificate === undefined || keyPem === undefined) return undefined;
  try {
    const der = x509.PemConverter.decodeFirst(keyPem);
    const key = await webcrypto.subtle.importKey('pkcs8', der, ECDSA_P256, true, ['sign']);
    return { certificate, key, keyPem };
  } catch {
    return undefined;
  }
}

/** The certificates of a PEM bundle; none when it is absent or unreadable. */
export function parseBundle(pem: string | undefined): x509.X509Certificate[] {
  if (pem === undefined) return [];
  try {
    return x509.PemConverter.decode(pem).map((der) => new x509.X509Certificate(der));
  } catch {
    return [];
  }
}

/** At least a third of the validity left, and already valid. */
export function freshEnough(certificate: x509.X509Certificate, now: Date): boolean {
  const start = certificate.notBefore.getTime();
  const end = certificate.notAfter.getTime();
  return start <= now.getTime() && end - now.getTime() >= (end - start) / 3;
}

export async function issuedBy(
  certificate: x509.X509Certificate,
  ca: x509.X509Certificate,
): Promise<boolean> {
  try {
    return (
      certificate.issuer === ca.subject &&
      (await certificate.verify({ publicKey: ca.publicKey, signatureOnly: true }))
    );
  } catch {
    return false;
  }
}

/** The certificate names exactly `names` (in any order). */
export function sameNames(certificate: x509.X509Certificate, names: readonly string[]): boolean {
  const extension = certificate.getExtension(x509.SubjectAlternativeNameExtension);
  const present = (extension?.names.items ?? []).map((item) => item.value).sort();
  return JSON.stringify(present) === JSON.stringify([...names].sort());
}

export function pemBundle(certificates: readonly x509.X509Certificate[]): string {
  return certificates.map((certificate) => certificate.toString('pem')).join('\n');
}

/** A few minutes of slack for clocks that run behind. */
function backdated(now: Date): Date {
  return new Date(now.getTime() - 5 * 60_000);
}

function serialNumber(): string {
  // Positive (top bit clear), 16 random bytes, as RFC 5280 asks.
  const bytes = randomBytes(16);
  bytes[0] = bytes[0]! & 0x7f;
  return bytes.toString('hex');
}

async function privateKeyPem(key: CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}
