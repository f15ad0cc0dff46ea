import { readFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

/** Where the shipper sends, and as whom. */
export interface CollectorTarget {
  readonly url: string;
  /** A file holding the token: the pod's projected token (re-read on every request, as it rotates) or a shared one. */
  readonly tokenFile?: string;
  readonly token?: string;
  /**
   * The CA (PEM) that verifies an https collector, when it is not one the system trusts. Read again
   * for every request, as the token is: in a cluster it is a key of the bundle ConfigMap, which the
   * operator fills in once the collector has a certificate and updates when its CA is renewed.
   */
  readonly caFile?: string;
}

export interface SourceMetadata {
  readonly cluster: string;
  readonly namespace: string;
  readonly pod: string;
  readonly database: string;
  readonly logKeyId: string;
}

/** The collector's answer to a batch: the highest seq it holds for the source. */
export interface Acknowledgement {
  readonly acknowledged: number;
  readonly status?: string;
}

/** A refusal that sending again will not change (bad token, bad request): the shipper waits longest. */
export class RefusedBatch extends Error {}

const TIMEOUT_MS = 30_000;

export async function postBatch(
  target: CollectorTarget,
  source: SourceMetadata,
  lines: readonly string[],
  signal?: AbortSignal,
): Promise<Acknowledgement> {
  const token =
    target.tokenFile !== undefined ? (await readFile(target.tokenFile, 'utf8')).trim() : target.token;
  const url = new URL('/v1/records', target.url);
  const ca = target.caFile === undefined ? undefined : await collectorCa(target.caFile);
  const body = JSON.stringify({ source, lines });
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(
      url,
      {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          ...(token !== undefined && { authorization: `Bearer ${token}` }),
        },
        timeout: TIMEOUT_MS,
        ...(ca && { ca }),
        ...(signal && { signal }),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let answer: { acknowledged?: unknown; status?: unknown; message?: unknown } = {};
          try {
            answer = JSON.parse(text) as typeof answer;
          } catch {
            // Reported below with the status.
          }
          const status = res.statusCode ?? 0;
          if (status === 200 && typeof answer.acknowledged === 'number') {
            resolve({
              acknowledged: answer.acknowledged,
              ...(typeof answer.status === 'string' && { status: answer.status }),
            });
            return;
          }
          const message = `the collector answered ${status}: ${typeof answer.message === 'string' ? answer.message : 'no reason given'}`;
          reject(
            status >= 400 && status < 500 && status !== 408 && status !== 429
              ? new RefusedBatch(message)
              : new Error(message),
          );
        });
      },
    );
    req.on('timeout', () =>
      req.destroy(new Error(`no answer from the collector within ${TIMEOUT_MS / 1000} s`)),
    );
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * The CA file's certificates. An empty file (the operator writes one while the collector has no
 * certificate yet) is an error, never a reason to trust the system's CAs instead, nor to send in clear.
 */
async function collectorCa(file: string): Promise<string> {
  const pem = await readFile(file, 'utf8');
  if (!pem.includes('-----BEGIN CERTIFICATE-----'))
    throw new Error(
      `${file} holds no CA certificate yet: nothing is sent until it does (the records wait in the file)`,
    );
  return pem;
}
