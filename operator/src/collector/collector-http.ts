import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { UserError } from '../../../sidecar/src/errors.ts';

/** The environment variable that names the collector's CA file when --ca is not given. */
export const COLLECTOR_CA_ENV = 'GATEHOUSE_COLLECTOR_CA';

/** The collector could not be reached, or failed (5xx): worth asking again, unlike a refusal. */
export class Unavailable extends UserError {}

/** The collector's certificate did not verify: asking again will not change that. */
export class Untrusted extends UserError {}

/** Where a reader's command sends its questions: the collector's URL and, for https, what verifies it. */
export interface CollectorTarget {
  /** As the person gave it (--server), for messages. */
  readonly server: string;
  /** PEM of the CA(s) that verify the collector, instead of the system's (--ca); for this connection only. */
  readonly ca?: CollectorCa | undefined;
}

export interface CollectorCa {
  readonly pem: string;
  /** Where it came from, for messages: `--ca FILE` or `$GATEHOUSE_COLLECTOR_CA FILE`. */
  readonly from: string;
}

/**
 * The CA a reader's command verifies the collector with: --ca FILE, else $GATEHOUSE_COLLECTOR_CA,
 * else none (the system's CAs). A file that is missing, unreadable or holds no certificate is an
 * error, never a quiet fall back to the system's CAs.
 */
export function collectorCa(
  flag: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): CollectorCa | undefined {
  const fromEnv = env[COLLECTOR_CA_ENV];
  const file = flag ?? (fromEnv === '' ? undefined : fromEnv);
  if (file === undefined) return undefined;
  const from = flag !== undefined ? `--ca ${file}` : `$${COLLECTOR_CA_ENV} ${file}`;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new UserError(
      code === 'ENOENT'
        ? `${from}: no such file (the collector's CA certificate, PEM; docs/collector.md says where to get it)`
        : `${from}: cannot read it (${code ?? String(error)})`,
    );
  }
  const blocks = text.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0)
    throw new UserError(
      `${from}: holds no PEM certificate (-----BEGIN CERTIFICATE-----); give the collector's CA, the ca.crt of its Secret (docs/collector.md)`,
    );
  for (const block of blocks) {
    try {
      new X509Certificate(block);
    } catch {
      throw new UserError(`${from}: holds a PEM block that is not a certificate`);
    }
  }
  return { pem: blocks.join('\n'), from };
}

/** Node's codes for a certificate that did not verify, or that names another host. */
const VERIFY_CODES = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

export interface CollectorResponse {
  readonly status: number;
  /** The JSON body, or undefined when there was none. */
  readonly body: unknown;
}

/**
 * One request to the collector with a reader's credentials. Over https it verifies the collector with
 * the target's CA when there is one (that connection only: nothing global changes), else with the
 * system's; a certificate that does not verify is an Untrusted error that says which CA was tried and
 * how to give the right one; an unreachable collector is Unavailable.
 */
export function collectorRequest(
  target: CollectorTarget,
  url: string,
  init: {
    readonly method?: 'GET' | 'POST';
    readonly authorization: string;
    readonly json?: unknown;
    readonly signal?: AbortSignal | undefined;
  },
): Promise<CollectorResponse> {
  const parsed = new URL(url);
  const https = parsed.protocol === 'https:';
  const payload = init.json === undefined ? undefined : Buffer.from(JSON.stringify(init.json));
  return new Promise<CollectorResponse>((resolve, reject) => {
    const req = (https ? httpsRequest : httpRequest)(
      parsed,
      {
        method: init.method ?? 'GET',
        headers: {
          authorization: init.authorization,
          accept: 'application/json',
          ...(payload && { 'content-type': 'application/json', 'content-length': String(payload.length) }),
        },
        ...(https && target.ca && { ca: target.ca.pem }),
        ...(init.signal && { signal: init.signal }),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', (error) => reject(unreachable(target, error)));
        res.on('end', () => {
          let body: unknown;
          try {
            body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          } catch {
            body = undefined;
          }
          resolve({ status: res.statusCode ?? 0, body });
        });
      },
    );
    req.on('error', (error: NodeJS.ErrnoException) => {
      if (init.signal?.aborted) reject(error);
      else if (error.code !== undefined && VERIFY_CODES.has(error.code))
        reject(untrusted(target, parsed, error));
      else reject(unreachable(target, error));
    });
    req.end(payload);
  });
}

function unreachable(target: CollectorTarget, error: NodeJS.ErrnoException): Unavailable {
  return new Unavailable(`cannot reach the collector at ${target.server}: ${error.code ?? error.message}`);
}

function untrusted(target: CollectorTarget, url: URL, error: NodeJS.ErrnoException): Untrusted {
  const what =
    error.code === 'ERR_TLS_CERT_ALTNAME_INVALID'
      ? `its certificate does not name ${url.hostname}`
      : `its certificate did not verify (${error.code}: ${error.message})`;
  const tried = target.ca
    ? `against the CA of ${target.ca.from}; is that the collector's CA?`
    : `against the system's CAs only; give the collector's CA with --ca FILE or $${COLLECTOR_CA_ENV}`;
  return new Untrusted(
    `cannot verify the collector at ${target.server}: ${what}, checked ${tried} (docs/collector.md, "Reading from outside the cluster")`,
  );
}

/** The collector's reason in a refusal, or a stand-in. */
export function reasonOf(body: unknown): string {
  const message = (body as { message?: unknown } | undefined)?.message;
  return typeof message === 'string' ? message : 'no reason given';
}
