import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse } from 'yaml';
import { isLoopback } from '../../../sidecar/src/approvals/serve-approvals.ts';
import {
  type AuditHttpConfig,
  type AuditHttpDocument,
  resolveAuditHttp,
} from '../../../sidecar/src/config/audit-http.ts';
import { resolveSecret } from '../../../sidecar/src/config/load.ts';
import { AuditHttp } from '../../../sidecar/src/config/schema.ts';
import { schemaProblems } from '../../../sidecar/src/config/validate.ts';
import { UserError } from '../../../sidecar/src/errors.ts';
import type { KubeApprovals } from './console/console-env.ts';
import type { OidcSettings } from './console/console-oidc.ts';
import type { RoleMember } from './console/console-sign-in.ts';

/** `gatehouse collector`'s settings, from its YAML file and flags (docs/collector.md lists each). */
export interface CollectorConfig {
  readonly listen: { readonly host: string; readonly port: number };
  /** postgres://..., or pglite:DIR / pglite:memory. */
  readonly storeUrl: string;
  readonly poolSize: number;
  readonly retentionDays: number;
  readonly shipperTokens: readonly string[];
  readonly tokenReview: { readonly audiences: readonly string[] } | undefined;
  readonly readers: readonly string[];
  /** Subjects that may also reset a flagged source (`local:NAME` for a local user). */
  readonly admins?: readonly string[];
  readonly localUsers: readonly { name: string; password: string; groups?: string[] }[];
  readonly tls: { readonly certFile: string; readonly keyFile: string } | undefined;
  /** The web console; undefined when `console.enabled` is false. */
  readonly console: ConsoleConfig | undefined;
  /** `forward.http`: every stored record also sent to an HTTP endpoint (a SIEM), at least once. */
  readonly forward?: AuditHttpConfig;
}

export interface ConsoleConfig {
  readonly sessionHours: number;
  readonly viewers: readonly RoleMember[];
  readonly approvers: readonly RoleMember[];
  /** A standalone proxy's approvals API that decides the requests of one cluster's sources. */
  readonly approvals: { readonly url: string; readonly cluster: string } | undefined;
  /** The Kubernetes API server where one cluster's ApprovalRequests are decided, as the person. */
  readonly kubeApprovals: KubeApprovals | undefined;
  /** Sign-in with an OpenID provider. */
  readonly oidc: OidcSettings | undefined;
}

export const DEFAULT_CONSOLE: ConsoleConfig = {
  sessionHours: 8,
  viewers: [],
  approvers: [],
  approvals: undefined,
  kubeApprovals: undefined,
  oidc: undefined,
};

export interface CollectorOverrides {
  readonly listen?: string;
  readonly store?: string;
  readonly retentionDays?: string;
  readonly shipperTokenFile?: string;
}

export const DEFAULT_LISTEN = '127.0.0.1:7450';
const KEYS = ['listen', 'store', 'retentionDays', 'auth', 'tls', 'console', 'forward'];

export function loadCollectorConfig(
  file: string | undefined,
  overrides: CollectorOverrides,
): CollectorConfig {
  let doc: Record<string, unknown> = {};
  const base = file === undefined ? process.cwd() : dirname(resolve(file));
  if (file !== undefined) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      throw new UserError(`cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
    }
    const parsed = parse(text) as unknown;
    if (parsed !== null && parsed !== undefined && !isObject(parsed))
      throw new UserError(`${file}: is not a YAML mapping`);
    doc = (parsed as Record<string, unknown> | null) ?? {};
  }
  for (const key of Object.keys(doc))
    if (!KEYS.includes(key)) throw new UserError(`${key}: is not a collector setting (${KEYS.join(', ')})`);
  const store = section(doc, 'store');
  const auth = section(doc, 'auth');
  const tls = doc['tls'] === undefined ? undefined : section(doc, 'tls');

  const storeUrl =
    overrides.store ??
    (store['urlFile'] !== undefined
      ? readSecret(text(store, 'urlFile', 'store'), base)
      : optionalText(store, 'url', 'store'));
  if (storeUrl === undefined)
    throw new UserError(
      'store.url (or --store URL) is required: postgres://USER:PASSWORD@HOST/DB, or pglite:DIR',
    );

  const tokens = list(auth, 'shipperTokens').map((entry, i) => {
    const where = `auth.shipperTokens[${i}]`;
    if (!isObject(entry)) throw new UserError(`${where}: must be {value: TOKEN} or {file: PATH}`);
    const value =
      entry['file'] !== undefined
        ? readSecret(text(entry, 'file', where), base)
        : text(entry, 'value', where);
    if (value.length < 16) throw new UserError(`${where}: a shipper token must be at least 16 characters`);
    return value;
  });
  if (overrides.shipperTokenFile !== undefined)
    tokens.push(readSecret(overrides.shipperTokenFile, process.cwd()));

  const review = auth['tokenReview'] === undefined ? undefined : section(auth, 'tokenReview');
  const retention = overrides.retentionDays ?? doc['retentionDays'] ?? 90;
  const retentionDays = Number(retention);
  if (!Number.isInteger(retentionDays) || retentionDays < 1)
    throw new UserError(
      `retentionDays: must be a whole number of days, at least 1, not ${String(retention)}`,
    );

  return {
    listen: parseListen(
      overrides.listen ?? (doc['listen'] === undefined ? DEFAULT_LISTEN : String(doc['listen'])),
    ),
    storeUrl,
    poolSize: Number(store['poolSize'] ?? 4),
    retentionDays,
    shipperTokens: tokens,
    tokenReview: review && {
      audiences: list(review, 'audiences')
        .map(String)
        .concat(review['audiences'] === undefined ? ['gatehouse.dev'] : []),
    },
    readers: list(auth, 'readers').map(String),
    admins: list(auth, 'admins').map(String),
    localUsers: list(auth, 'localUsers').map((user, i) => {
      const where = `auth.localUsers[${i}]`;
      if (!isObject(user)) throw new UserError(`${where}: must be {name, password, groups?}`);
      return {
        name: text(user, 'name', where),
        password: text(user, 'password', where),
        groups: list(user, 'groups').map(String),
      };
    }),
    tls: tls && {
      certFile: resolve(base, text(tls, 'certFile', 'tls')),
      keyFile: resolve(base, text(tls, 'keyFile', 'tls')),
    },
    console: consoleConfig(section(doc, 'console'), base),
    ...forwardConfig(section(doc, 'forward'), file ?? 'collector.yaml', base),
  };
}

const CONSOLE_KEYS = ['enabled', 'sessionHours', 'viewers', 'approvers', 'approvals', 'oidc'];
const OIDC_KEYS = [
  'issuer',
  'clientId',
  'clientSecret',
  'clientSecretFile',
  'redirectUrl',
  'scopes',
  'subjectClaim',
  'groupsClaim',
];

function consoleConfig(doc: Record<string, unknown>, base: string): ConsoleConfig | undefined {
  for (const key of Object.keys(doc))
    if (!CONSOLE_KEYS.includes(key))
      throw new UserError(`console.${key}: is not a console setting (${CONSOLE_KEYS.join(', ')})`);
  const enabled = doc['enabled'] ?? true;
  if (typeof enabled !== 'boolean') throw new UserError('console.enabled: must be true or false');
  if (!enabled) return undefined;
  const hours = Number(doc['sessionHours'] ?? DEFAULT_CONSOLE.sessionHours);
  if (!Number.isFinite(hours) || hours <= 0 || hours > 24 * 30)
    throw new UserError(
      `console.sessionHours: must be a number of hours above 0, at most 720, not ${String(doc['sessionHours'])}`,
    );
  const members = (key: string): RoleMember[] =>
    list(doc, key).map((entry, i) => {
      const where = `console.${key}[${i}]`;
      if (isObject(entry) && Object.keys(entry).length === 1 && typeof entry['subject'] === 'string')
        return { subject: entry['subject'] };
      if (isObject(entry) && Object.keys(entry).length === 1 && typeof entry['group'] === 'string')
        return { group: entry['group'] };
      throw new UserError(`${where}: must be {subject: SUBJECT} or {group: GROUP}`);
    });
  const approvals = doc['approvals'] === undefined ? undefined : section(doc, 'approvals');
  for (const key of Object.keys(approvals ?? {}))
    if (!APPROVALS_KEYS.includes(key))
      throw new UserError(
        `console.approvals.${key}: is not an approvals setting (${APPROVALS_KEYS.join(', ')})`,
      );
  const kube = approvals?.['kubernetes'] === undefined ? undefined : section(approvals, 'kubernetes');
  const oidc = doc['oidc'] === undefined ? undefined : section(doc, 'oidc');
  const oidcSettingsValue = oidc && oidcSettings(oidc, base);
  const proxy = approvals && (kube === undefined || approvals['url'] !== undefined) ? approvals : undefined;
  if (approvals && !proxy && approvals['cluster'] !== undefined)
    throw new UserError(
      'console.approvals.cluster: goes with console.approvals.url (a proxy); in Kubernetes name it in console.approvals.kubernetes.cluster',
    );
  if (proxy) {
    const url = text(proxy, 'url', 'console.approvals');
    if (!/^https?:\/\//.test(url))
      throw new UserError(`console.approvals.url: must be an http(s) URL, not "${url}"`);
    // Approvers' passwords and tokens are forwarded there: never in clear across a network.
    if (url.startsWith('http:') && !isLoopback(new URL(url).hostname.replace(/^\[|\]$/g, '')))
      throw new UserError(
        `console.approvals.url: plain http only to loopback, not "${url}": approvers' credentials are forwarded to it`,
      );
  }
  return {
    oidc: oidcSettingsValue,
    sessionHours: hours,
    viewers: members('viewers'),
    approvers: members('approvers'),
    approvals: proxy && {
      url: text(proxy, 'url', 'console.approvals'),
      cluster: text(proxy, 'cluster', 'console.approvals'),
    },
    kubeApprovals: kube && kubeApprovals(kube, base, oidcSettingsValue?.issuer),
  };
}

const APPROVALS_KEYS = ['url', 'cluster', 'kubernetes'];
const KUBE_APPROVALS_KEYS = ['server', 'caFile', 'cluster', 'oidcIssuer'];

function kubeApprovals(
  doc: Record<string, unknown>,
  base: string,
  consoleIssuer: string | undefined,
): KubeApprovals {
  const where = 'console.approvals.kubernetes';
  for (const key of Object.keys(doc))
    if (!KUBE_APPROVALS_KEYS.includes(key))
      throw new UserError(`${where}.${key}: is not a setting here (${KUBE_APPROVALS_KEYS.join(', ')})`);
  const server = text(doc, 'server', where);
  if (!/^https?:\/\//.test(server))
    throw new UserError(`${where}.server: must be an https URL, not "${server}"`);
  // Approvers' own tokens are sent there: never in clear across a network.
  if (server.startsWith('http:') && !isLoopback(new URL(server).hostname.replace(/^\[|\]$/g, '')))
    throw new UserError(
      `${where}.server: plain http only to loopback, not "${server}": approvers' tokens are sent to it`,
    );
  const caFile = optionalText(doc, 'caFile', where);
  if (caFile !== undefined) readSecret(caFile, base);
  const oidcIssuer = optionalText(doc, 'oidcIssuer', where);
  // Forwarding an ID token is only sound to an API server that trusts the provider that issued it.
  if (oidcIssuer !== undefined && oidcIssuer !== consoleIssuer)
    throw new UserError(
      `${where}.oidcIssuer: "${oidcIssuer}" is not the console's provider (console.oidc.issuer${consoleIssuer ? ` "${consoleIssuer}"` : ' is not set'}); name the issuer the API server trusts only when it is the one people sign in with`,
    );
  return {
    server: server.replace(/\/$/, ''),
    caFile: caFile === undefined ? undefined : resolve(base, caFile),
    cluster: text(doc, 'cluster', where),
    oidcIssuer,
  };
}

export function parseListen(value: string): { host: string; port: number } {
  const colon = value.lastIndexOf(':');
  const host = value.slice(0, colon).replace(/^\[|\]$/g, '');
  const port = Number(value.slice(colon + 1));
  if (colon <= 0 || !Number.isInteger(port) || port < 0 || port > 65535)
    throw new UserError(`listen: "${value}" is not HOST:PORT`);
  return { host, port };
}

function readSecret(file: string, base: string): string {
  try {
    return readFileSync(resolve(base, file), 'utf8').trim();
  } catch (error) {
    throw new UserError(`cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function section(doc: Record<string, unknown>, key: string): Record<string, unknown> {
  const value = doc[key] ?? {};
  if (!isObject(value)) throw new UserError(`${key}: must be a mapping`);
  return value;
}

function list(doc: Record<string, unknown>, key: string): unknown[] {
  const value = doc[key] ?? [];
  if (!Array.isArray(value)) throw new UserError(`${key}: must be a list`);
  return value;
}

function text(doc: Record<string, unknown>, key: string, where: string): string {
  const value = doc[key];
  if (typeof value !== 'string' || value === '')
    throw new UserError(`${where}.${key}: must be a non-empty string`);
  return value;
}

function optionalText(doc: Record<string, unknown>, key: string, where: string): string | undefined {
  return doc[key] === undefined ? undefined : text(doc, key, where);
}

function oidcSettings(doc: Record<string, unknown>, base: string): OidcSettings {
  const where = 'console.oidc';
  for (const key of Object.keys(doc))
    if (!OIDC_KEYS.includes(key))
      throw new UserError(`${where}.${key}: is not an OIDC setting (${OIDC_KEYS.join(', ')})`);
  const url = (key: string) => {
    const value = text(doc, key, where);
    if (!/^https?:\/\//.test(value))
      throw new UserError(`${where}.${key}: must be an http(s) URL, not "${value}"`);
    return value;
  };
  const redirectUrl = url('redirectUrl');
  if (!new URL(redirectUrl).pathname.endsWith('/console/oidc/callback'))
    throw new UserError(
      `${where}.redirectUrl: must end with /console/oidc/callback (the console's callback)`,
    );
  const scopes = doc['scopes'] === undefined ? ['openid', 'groups'] : list(doc, 'scopes').map(String);
  if (!scopes.includes('openid')) throw new UserError(`${where}.scopes: must include openid`);
  return {
    issuer: url('issuer'),
    clientId: text(doc, 'clientId', where),
    clientSecret:
      doc['clientSecretFile'] !== undefined
        ? readSecret(text(doc, 'clientSecretFile', where), base)
        : optionalText(doc, 'clientSecret', where),
    redirectUrl,
    scopes,
    subjectClaim: optionalText(doc, 'subjectClaim', where) ?? 'sub',
    groupsClaim: optionalText(doc, 'groupsClaim', where) ?? 'groups',
  };
}

/**
 * `forward.http`, the same settings as the proxy's `audit.http` (docs/compliance.md), checked by the
 * same schema: the collector forwards what it stores to a SIEM, for every proxy at once.
 */
function forwardConfig(
  doc: Record<string, unknown>,
  file: string,
  base: string,
): { forward?: AuditHttpConfig } {
  for (const key of Object.keys(doc))
    if (key !== 'http') throw new UserError(`forward.${key}: is not a forward setting (http)`);
  if (doc['http'] === undefined) return {};
  const problem = schemaProblems(AuditHttp, doc['http'])[0];
  if (problem)
    throw new UserError(`forward.http${problem.field ? `.${problem.field}` : ''}: ${problem.problem}`);
  const http = doc['http'] as AuditHttpDocument;
  // Files beside the collector's config, as its other secrets are.
  const token =
    http.token?.file === undefined ? http.token : { ...http.token, file: resolve(base, http.token.file) };
  return {
    forward: resolveAuditHttp(
      http,
      file,
      token && resolveSecret(token, file, 'forward.http.token'),
      'forward.http',
    ),
  };
}
