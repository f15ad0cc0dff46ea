import { ConfigError } from '../errors.ts';
import type { ProxyConfigDocument } from './schema.ts';

export type AuditHttpDocument = NonNullable<NonNullable<ProxyConfigDocument['audit']>['http']>;

/** `audit.http` resolved: a copy of every written record, sent to an HTTP endpoint. */
export interface AuditHttpConfig {
  readonly url: string;
  readonly shape: 'jsonl' | 'splunk-hec';
  readonly format: 'records' | 'ocsf';
  /** Never logged. */
  readonly token?: string;
  readonly batchRecords: number;
  readonly batchIntervalMs: number;
  readonly maxBufferedRecords: number;
  readonly timeoutMs: number;
}

/** `audit.http` with defaults applied and its URL checked; `token` is the resolved secret, if any. */
export function resolveAuditHttp(
  http: AuditHttpDocument,
  file: string,
  token: string | undefined,
  where = 'audit.http',
): AuditHttpConfig {
  let url: URL | undefined;
  try {
    url = new URL(http.url);
  } catch {
    url = undefined;
  }
  if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:'))
    throw new ConfigError(file, `${where}.url`, 'must be an http:// or https:// URL');
  return {
    url: http.url,
    shape: (http.shape ?? 'jsonl') as 'jsonl' | 'splunk-hec',
    format: (http.format ?? 'records') as 'records' | 'ocsf',
    ...(token !== undefined && { token }),
    batchRecords: http.batchRecords ?? 500,
    batchIntervalMs: (http.batchIntervalSeconds ?? 1) * 1000,
    maxBufferedRecords: http.maxBufferedRecords ?? 100_000,
    timeoutMs: (http.timeoutSeconds ?? 10) * 1000,
  };
}
