import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { ConfigError, UserError } from '../errors.ts';
import { configDirectory } from './token-store.ts';

export type TunnelProtocol = 'postgres' | 'mysql';
export type TargetTls = 'disable' | 'require' | 'verify-full';

/** A Gatehouse a person connects to, as `gatehouse connect NAME` and `gatehouse tunnel NAME` find it. */
export interface DatabaseTarget {
  readonly name: string;
  readonly protocol: TunnelProtocol;
  readonly host: string;
  readonly port: number;
  readonly dbname: string;
  /** The user name the client sends; the proxy takes the identity from the token, not from this. */
  readonly user?: string;
  readonly tls: TargetTls;
  /** PEM file of the CA that signed the proxy's certificate (verify-full); the system's roots when absent. */
  readonly ca?: string;
  /** The identity provider whose token this Gatehouse accepts; the file's `issuer` when absent. */
  readonly issuer?: string;
}

/** The client config file: where to sign in, and the databases by name. Every field is optional. */
export interface ClientConfig {
  readonly file: string;
  readonly issuer?: string;
  readonly clientId?: string;
  readonly scopes?: readonly string[];
  readonly databases: ReadonlyMap<string, DatabaseTarget>;
}

/** --client-config, else $GATEHOUSE_CLIENT_CONFIG, else client.yaml in the config directory (may be absent). */
export function clientConfigPath(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return flag ?? env['GATEHOUSE_CLIENT_CONFIG'] ?? join(configDirectory(env), 'client.yaml');
}

export function loadClientConfig(file: string, required: boolean): ClientConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if (!required && (error as NodeJS.ErrnoException).code === 'ENOENT')
      return { file, databases: new Map() };
    throw new UserError(`cannot read the client config ${file}: ${(error as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (error) {
    throw new ConfigError(file, '', `not YAML: ${(error as Error).message.split('\n')[0]}`);
  }
  const root = objectAt(doc ?? {}, file, '');
  known(root, ['issuer', 'clientId', 'scopes', 'databases'], file, '');
  const databases = new Map<string, DatabaseTarget>();
  for (const [name, entry] of Object.entries(objectAt(root['databases'] ?? {}, file, 'databases')))
    databases.set(name, parseTarget(name, entry, file));
  return {
    file,
    ...optionalString(root, 'issuer', file, ''),
    ...optionalString(root, 'clientId', file, ''),
    ...(root['scopes'] !== undefined && { scopes: stringList(root['scopes'], file, 'scopes') }),
    databases,
  };
}

export interface TargetFlags {
  readonly host?: string | undefined;
  readonly port?: string | undefined;
  readonly protocol?: string | undefined;
  readonly user?: string | undefined;
  readonly dbname?: string | undefined;
  readonly tls?: string | undefined;
  readonly ca?: string | undefined;
}

/** The named database of the config, with flags overriding its fields; or the flags alone. */
export function resolveTarget(
  name: string | undefined,
  flags: TargetFlags,
  config: ClientConfig,
): DatabaseTarget {
  const named = name === undefined ? undefined : config.databases.get(name);
  if (name !== undefined && !named && flags.host === undefined) {
    const known = [...config.databases.keys()];
    throw new UserError(
      `no database "${name}" in ${config.file}${known.length ? ` (it names ${known.join(', ')})` : ''}; or give --host and --port`,
    );
  }
  const protocol = flags.protocol ?? named?.protocol ?? 'postgres';
  if (protocol !== 'postgres' && protocol !== 'mysql')
    throw new UserError(`--protocol must be postgres or mysql, not "${protocol}"`);
  const host = flags.host ?? named?.host;
  if (host === undefined) throw new UserError('name a database from the client config, or give --host');
  const port =
    flags.port === undefined
      ? (named?.port ?? (protocol === 'mysql' ? 3306 : 5432))
      : portNumber(flags.port, '--port');
  const tls = flags.tls ?? named?.tls ?? 'verify-full';
  if (tls !== 'disable' && tls !== 'require' && tls !== 'verify-full')
    throw new UserError(`--tls must be disable, require or verify-full, not "${tls}"`);
  const dbname = flags.dbname ?? named?.dbname ?? name;
  if (dbname === undefined) throw new UserError('give --dbname, or name a database from the client config');
  const user = flags.user ?? named?.user;
  const ca = flags.ca ?? named?.ca;
  return {
    name: name ?? dbname,
    protocol,
    host,
    port,
    dbname,
    tls,
    ...(user !== undefined && { user }),
    ...(ca !== undefined && { ca }),
    ...(named?.issuer !== undefined && { issuer: named.issuer }),
  };
}

function parseTarget(name: string, entry: unknown, file: string): DatabaseTarget {
  const field = `databases.${name}`;
  const o = objectAt(entry, file, field);
  known(o, ['protocol', 'host', 'port', 'dbname', 'user', 'tls', 'ca', 'issuer'], file, field);
  const protocol = o['protocol'] ?? 'postgres';
  if (protocol !== 'postgres' && protocol !== 'mysql')
    throw new ConfigError(file, `${field}.protocol`, 'must be postgres or mysql');
  if (typeof o['host'] !== 'string' || o['host'] === '')
    throw new ConfigError(file, `${field}.host`, 'is required');
  const tls = o['tls'] ?? 'verify-full';
  if (tls !== 'disable' && tls !== 'require' && tls !== 'verify-full')
    throw new ConfigError(file, `${field}.tls`, 'must be disable, require or verify-full');
  const port = o['port'] === undefined ? (protocol === 'mysql' ? 3306 : 5432) : o['port'];
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535)
    throw new ConfigError(file, `${field}.port`, 'must be a port number');
  return {
    name,
    protocol,
    host: o['host'],
    port,
    dbname: typeof o['dbname'] === 'string' ? o['dbname'] : name,
    tls,
    ...optionalString(o, 'user', file, field),
    ...optionalString(o, 'ca', file, field),
    ...optionalString(o, 'issuer', file, field),
  };
}

function portNumber(text: string, flag: string): number {
  const port = Number(text);
  if (!/^\d+$/.test(text) || port < 1 || port > 65535)
    throw new UserError(`${flag} must be a port number, not "${text}"`);
  return port;
}

function objectAt(value: unknown, file: string, field: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new ConfigError(file, field, 'must be a mapping');
  return value as Record<string, unknown>;
}

function known(o: Record<string, unknown>, names: readonly string[], file: string, field: string): void {
  for (const key of Object.keys(o)) {
    if (!names.includes(key))
      throw new ConfigError(
        file,
        field ? `${field}.${key}` : key,
        `unknown field (known: ${names.join(', ')})`,
      );
  }
}

function optionalString<K extends string>(
  o: Record<string, unknown>,
  key: K,
  file: string,
  field: string,
): Partial<Record<K, string>> {
  const value = o[key];
  if (value === undefined) return {};
  if (typeof value !== 'string' || value === '')
    throw new ConfigError(file, field ? `${field}.${key}` : key, 'must be a non-empty string');
  return { [key]: value } as Partial<Record<K, string>>;
}

function stringList(value: unknown, file: string, field: string): string[] {
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string'))
    throw new ConfigError(file, field, 'must be a list of strings');
  return value as string[];
}
