import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import {
  createCertificateAuthority,
  freshEnough,
  issuedBy,
  issueServerCertificate,
  keyed,
  parseBundle,
  sameNames,
} from './certificates.ts';

/** What `clientTls: auto` serves, and the CA file clients verify it with. */
export interface AutoClientTls {
  readonly cert: string;
  readonly key: string;
  readonly caFile: string;
  /** What this start made: a new CA (clients must trust the new file), a new certificate, or nothing. */
  readonly made: 'ca' | 'certificate' | 'nothing';
}

const CA_VALIDITY_DAYS = 5 * 365;
const SERVER_VALIDITY_DAYS = 365;

/** Where a client may reach the proxy: loopback names, this host's name, the listen address and `extra`. */
export function clientTlsNames(listenHost: string, extra: readonly string[]): string[] {
  const wildcard = listenHost === '0.0.0.0' || listenHost === '::' || listenHost === '';
  return [
    ...new Set(['localhost', '127.0.0.1', '::1', hostname(), ...(wildcard ? [] : [listenHost]), ...extra]),
  ];
}

/**
 * The proxy's own CA and server certificate in `dir` (ca.crt, ca.key, server.crt, server.key): reused
 * while fresh, signed by that CA and naming `names`; otherwise the certificate is issued again by the
 * same CA (clients keep trusting it), and the CA itself is made only when it is missing or ageing.
 */
export async function ensureAutoClientTls(
  dir: string,
  names: readonly string[],
  now = new Date(),
): Promise<AutoClientTls> {
  const files = {
    caCert: join(dir, 'ca.crt'),
    caKey: join(dir, 'ca.key'),
    cert: join(dir, 'server.crt'),
    key: join(dir, 'server.key'),
  };
  const [caPem, caKeyPem, certPem, keyPem] = await Promise.all(
    [files.caCert, files.caKey, files.cert, files.key].map((f) => readFile(f, 'utf8').catch(() => undefined)),
  );
  let ca = await keyed(parseBundle(caPem)[0], caKeyPem);
  const server = await keyed(parseBundle(certPem)[0], keyPem);
  let made: AutoClientTls['made'] = 'nothing';
  if (ca === undefined || !freshEnough(ca.certificate, now)) {
    ca = await createCertificateAuthority(`Gatehouse proxy CA (${hostname()})`, now, CA_VALIDITY_DAYS);
    made = 'ca';
  }
  if (
    made === 'nothing' &&
    server !== undefined &&
    freshEnough(server.certificate, now) &&
    (await issuedBy(server.certificate, ca.certificate)) &&
    sameNames(server.certificate, names)
  ) {
    return { cert: certPem!, key: keyPem!, caFile: files.caCert, made };
  }
  const issued = await issueServerCertificate(ca, names, now, SERVER_VALIDITY_DAYS);
  const cert = issued.certificate.toString('pem');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  if (made === 'ca') {
    await writeAtomically(files.caKey, ca.keyPem, 0o600);
    await writeAtomically(files.caCert, ca.certificate.toString('pem'), 0o644);
  }
  await writeAtomically(files.key, issued.keyPem, 0o600);
  await writeAtomically(files.cert, cert, 0o644);
  return { cert, key: issued.keyPem, caFile: files.caCert, made: made === 'ca' ? 'ca' : 'certificate' };
}

/** Written beside, then renamed: a reader never sees half a key. */
async function writeAtomically(file: string, text: string, mode: number): Promise<void> {
  const temporary = `${file}.${process.pid}.tmp`;
  await writeFile(temporary, text, { mode });
  await chmod(temporary, mode);
  await rename(temporary, file);
}
