import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse } from 'yaml';
import { UserError } from '../../../sidecar/src/errors.ts';

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
}

export interface CollectorOverrides {
  readonly listen?: string;
  readonly store?: string;
  readonly retentionDays?: string;
  readonly shipperTokenFile?: string;
}

export const DEFAULT_LISTEN = '127.0.0.1:7450';
const KEYS = ['listen', 'store', 'retentionDays', 'auth', 'tls'];

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
