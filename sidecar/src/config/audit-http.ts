import { ConfigError } from '../errors.ts';
import type { ProxyConfig } from './load.ts';
import { resolveSecret } from './load.ts';
import type { ProxyConfigDocument } from './schema.ts';

type AuditHttpDocument = NonNullable<NonNullable<ProxyConfigDocument['audit']>['http']>;

/** `audit.http` with defaults applied, its URL checked and its token resolved. */
export function resolveAuditHttp(
  http: AuditHttpDocument,
  file: string,
): NonNullable<ProxyConfig['audit']['http']> {
  let url: URL | undefined;
  try {
    url = new URL(http.url);
  } catch {
    url = undefined;
  }
  if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:'))
    throw new ConfigError(file, 'audit.http.url', 'must be an http:// or https:// URL');
  return {
    url: http.url,
    shape: (http.shape ?? 'jsonl') as 'jsonl' | 'splunk-hec',
    format: (http.format ?? 'records') as 'records' | 'ocsf',
    ...(http.token !== undefined && { token: resolveSecret(http.token, file, 'audit.http.token') }),
    batchRecords: http.batchRecords ?? 500,
    batchIntervalMs: (http.batchIntervalSeconds ?? 1) * 1000,
    maxBufferedRecords: http.maxBufferedRecords ?? 100_000,
    timeoutMs: (http.timeoutSeconds ?? 10) * 1000,
  };
}
