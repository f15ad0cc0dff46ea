import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import Value from 'typebox/value';
import { parseAllDocuments } from 'yaml';
import { isLoopback } from '../approvals/serve-approvals.ts';
import { ConfigError, UserError } from '../errors.ts';
import { type AuditHttpConfig, resolveAuditHttp } from './audit-http.ts';
import {
  type AuditConfigDocument,
  type ProxyConfigDocument,
  ProxyConfigSchema,
  type SecretValueConfig,
} from './schema.ts';
import { schemaProblems } from './validate.ts';

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

export interface UpstreamConfig {
  readonly protocol: 'postgres' | 'mysql';
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly user: string;
  /** Resolved secret; never logged. Absent for trust authentication. */
  readonly password?: string;
  readonly tls: {
    readonly mode: 'disable' | 'require' | 'verify-full';
    readonly ca?: Buffer;
    readonly serverName?: string;
  };
  readonly connectTimeoutMs: number;
}

/** The proxy configuration, validated, with defaults applied, files read and secrets resolved. */
export interface ProxyConfig {
  readonly source: string;
  readonly listen: HostPort;
  readonly upstream: UpstreamConfig;
  readonly clientTls?: { readonly cert: Buffer; readonly key: Buffer; readonly required: boolean };
  /** `clientTls: auto`: startProxy makes (or reuses) the CA and certificate in `dir`, then serves them. */
  readonly clientTlsAuto?: {
    readonly dir: string;
    readonly names: readonly string[];
    readonly required: boolean;
  };
  readonly identity: ProxyConfigDocument['identity'];
  readonly audit: {
    readonly file?: string;
    readonly stdout: boolean;
    readonly signingKeyFile?: string;
    readonly previousSigningKeyFile?: string;
    readonly syncEachWrite: boolean;
    readonly checkpointEveryRecords: number;
    readonly checkpointIntervalMs: number;
    readonly failClosed: boolean;
    /** Trace output columns for the audit also for identities that see them in clear (docs/collector.md). */
    readonly columnLineage: boolean;
    readonly ship?: NonNullable<AuditConfigDocument['ship']>;
    /** A copy of every written record, sent to an HTTP endpoint; the token resolved (never logged). */
    readonly http?: AuditHttpConfig;
  };
  readonly admin?: HostPort;
  /** `mcp`: an MCP endpoint in the proxy process, as the agent named here (mcp/serve-in-proxy.ts). */
  readonly mcp?: McpConfig;
  /** Held statements are decided through the operator (Kubernetes), not on the admin endpoint. */
  readonly approvals?: {
    readonly operator: { readonly url: string; readonly caFile?: string; readonly tokenFile: string };
  };
  readonly limits: {
    readonly maxConnections: number;
    readonly maxMessageBytes: number;
    readonly shutdownGraceMs: number;
    readonly startupTimeoutMs: number;
  };
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';
  readonly masking: {
    /** Resolved secret behind hash and tokenize; absent: a random key per start. Never logged. */
    readonly key?: Buffer;
    readonly catalogRefreshMs: number;
    readonly sampleRows: number;
    readonly maxSampledTables: number;
  };
  /** The other YAML documents of the file (policy kinds), validated by the policy loader. */
  readonly policyDocuments: readonly unknown[];
  /** Where each policy document sits in the file, counted from 1 as an editor does (the proxy settings included). */
  readonly policyDocumentNumbers: readonly number[];
  /** `policy.none`: the file says it holds no policy on purpose (then it holds none). */
  readonly policyNone: boolean;
  /** `policy.changedBy`: who made this version, for the policy.change audit record. */
  readonly policyChangedBy?: string;
}

/** Command-line values that override the file. */
export interface ConfigOverrides {
  readonly listen?: string;
  readonly upstream?: string;
  readonly auditFile?: string;
  readonly adminListen?: string;
  readonly logLevel?: string;
}

/** The flag behind each overridden field, so that a bad value is blamed on the flag, not on the file. */
const OVERRIDE_FLAGS: ReadonlyArray<{
  key: keyof ConfigOverrides;
  flag: string;
  field: string;
  form?: string;
}> = [
  { key: 'listen', flag: '--listen', field: 'listen', form: 'HOST:PORT' },
  { key: 'upstream', flag: '--upstream', field: 'upstream.url' },
  { key: 'auditFile', flag: '--audit-file', field: 'audit.file' },
  { key: 'adminListen', flag: '--admin-listen', field: 'admin.listen', form: 'HOST:PORT' },
  { key: 'logLevel', flag: '--log-level', field: 'log.level' },
];

/** `--upstream` replaces the file's address and credentials: a part it lacks is the flag's fault. */
const UPSTREAM_PARTS: Readonly<Record<string, string>> = { 'upstream.user': 'user', 'upstream.host': 'host' };

const URL_FORM = 'postgres:// or mysql://USER:PASSWORD@HOST:PORT/DATABASE';

export function loadProxyConfig(file: string, overrides: ConfigOverrides = {}): ProxyConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(
      file,
      '',
      `cannot read the config file (${(error as NodeJS.ErrnoException).code ?? String(error)})`,
    );
  }
  return parseProxyConfig(text, file, overrides);
}

export function parseProxyConfig(text: string, file: string, overrides: ConfigOverrides = {}): ProxyConfig {
  try {
    return parseConfigText(text, file, overrides);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    throw blameFlag(error, overrides) ?? error;
  }
}

function blameFlag(error: ConfigError, overrides: ConfigOverrides): UserError | undefined {
  const part = UPSTREAM_PARTS[error.field];
  if (overrides.upstream !== undefined && part !== undefined)
    return new UserError(`--upstream names no ${part} (expected ${URL_FORM})`);
  const override = OVERRIDE_FLAGS.find(
    ({ key, field }) => overrides[key] !== undefined && field === error.field,
  );
  if (!override) return undefined;
  const form = override.form && !error.problem.includes(override.form) ? ` (${override.form})` : '';
  return new UserError(`${override.flag} ${error.problem}${form}`);
}

/**
 * The YAML documents of a config file, empty ones left out, with their places in the file (counted
 * from 1), and which one holds the proxy settings (the first without a kind, or of kind Proxy; -1 for
 * none): every other one is a policy document. Reads no secret.
 */
export function configDocuments(
  text: string,
  file: string,
): { values: unknown[]; numbers: number[]; proxyIndex: number } {
  const documents = parseAllDocuments(text);
  if (!Array.isArray(documents)) throw new ConfigError(file, '', 'is not a YAML document stream');
  const values: unknown[] = [];
  const numbers: number[] = [];
  for (const [index, document] of documents.entries()) {
    const error = document.errors[0];
    if (error) {
      const line = error.linePos?.[0];
      throw new ConfigError(
        file,
        line ? `line ${line.line}, column ${line.col}` : `document ${index + 1}`,
        error.message.split('\n')[0] ?? 'invalid YAML',
      );
    }
    const value = document.toJS();
    if (value !== null && value !== undefined) {
      values.push(value);
      numbers.push(index + 1);
    }
  }
  const proxyIndex = values.findIndex(
    (v) => isObject(v) && (v['kind'] === undefined || v['kind'] === 'Proxy'),
  );
  return { values, numbers, proxyIndex };
}

function parseConfigText(text: string, file: string, overrides: ConfigOverrides): ProxyConfig {
  const { values, numbers, proxyIndex } = configDocuments(text, file);
  if (proxyIndex < 0)
    throw new ConfigError(file, '', 'has no proxy settings (a document with `upstream:` and `identity:`)');
  const raw = structuredClone(values[proxyIndex]) as Record<string, unknown>;
  applyOverrides(raw, overrides);
  if (raw['clientTls'] === 'auto') raw['clientTls'] = { auto: {} };
  else if (typeof raw['clientTls'] === 'string')
    throw new ConfigError(file, 'clientTls', 'must be `auto`, or hold certFile and keyFile (or auto: {...})');

  const problems = schemaProblems(ProxyConfigSchema, raw);
  const first = problems[0];
  if (first) throw new ConfigError(file, first.field, first.problem);
  const document = Value.Default(ProxyConfigSchema, raw) as ProxyConfigDocument;
  const policyDocuments = values.filter((_, i) => i !== proxyIndex);
  const policyNone = document.policy?.none ?? false;
  if (policyNone && policyDocuments.length > 0)
    throw new ConfigError(
      file,
      'policy.none',
      `is true, but the file holds ${policyDocuments.length} policy document${policyDocuments.length === 1 ? '' : 's'}: remove one or the other`,
    );

  const upstream = resolveUpstream(document, file);
  return {
    source: file,
    listen: parseHostPort(document.listen ?? '127.0.0.1:6432', file, 'listen'),
    upstream,
    ...resolveClientTls(document.clientTls, file),
    identity: checkIdentity(document.identity, file),
    audit: {
      ...(document.audit?.file !== undefined && { file: document.audit.file }),
      stdout: document.audit?.stdout ?? true,
      ...(document.audit?.signingKeyFile !== undefined && { signingKeyFile: document.audit.signingKeyFile }),
      ...(document.audit?.previousSigningKeyFile !== undefined && {
        previousSigningKeyFile: document.audit.previousSigningKeyFile,
      }),
      syncEachWrite: document.audit?.syncEachWrite ?? false,
      checkpointEveryRecords: document.audit?.checkpointEveryRecords ?? 1000,
      checkpointIntervalMs: (document.audit?.checkpointIntervalSeconds ?? 10) * 1000,
      failClosed: document.audit?.failClosed ?? true,
      columnLineage: document.audit?.columnLineage ?? true,
      ...(document.audit?.ship !== undefined && { ship: checkShip(document.audit, file) }),
      ...(document.audit?.http !== undefined && {
        http: resolveAuditHttp(
          document.audit.http,
          file,
          document.audit.http.token && resolveSecret(document.audit.http.token, file, 'audit.http.token'),
        ),
      }),
    },
    ...(document.admin && { admin: parseHostPort(document.admin.listen, file, 'admin.listen') }),
    ...(document.mcp && { mcp: resolveMcp(document, file, upstream.protocol) }),
    ...(document.approvals?.operator && { approvals: { operator: resolveOperator(document, file) } }),
    limits: {
      maxConnections: document.limits?.maxConnections ?? 1000,
      maxMessageBytes: document.limits?.maxMessageBytes ?? 64 * 1024 * 1024,
      shutdownGraceMs: (document.limits?.shutdownGraceSeconds ?? 30) * 1000,
      startupTimeoutMs: (document.limits?.startupTimeoutSeconds ?? 15) * 1000,
    },
    logLevel: document.log?.level ?? 'info',
    masking: {
      ...(document.masking?.key !== undefined && {
        key: maskingKey(resolveSecret(document.masking.key, file, 'masking.key'), file),
      }),
      catalogRefreshMs: (document.masking?.catalogRefreshSeconds ?? 300) * 1000,
      sampleRows: document.masking?.sampleRows ?? 50,
      maxSampledTables: document.masking?.maxSampledTables ?? 500,
    },
    policyDocuments: values.filter((_, i) => i !== proxyIndex),
    policyDocumentNumbers: numbers.filter((_, i) => i !== proxyIndex),
    policyNone,
    ...(document.policy?.changedBy !== undefined && { policyChangedBy: document.policy.changedBy }),
  };
}

export interface McpConfig {
  readonly listen: HostPort;
  /** How the agent logs in to this proxy: none in token-file mode (the pod's identity). */
  readonly agent:
    | { readonly kind: 'pod' }
    | { readonly kind: 'token-file'; readonly path: string }
    | { readonly kind: 'local'; readonly user: string; readonly password: string };
  readonly maxRows: number;
  readonly maxBytes: number;
  readonly approvalWaitMs: number;
}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', '::1', 'localhost']);

function resolveMcp(document: ProxyConfigDocument, file: string, protocol: string): McpConfig {
  const m = document.mcp!;
  const listen = parseHostPort(m.listen, file, 'mcp.listen');
  // The endpoint has no authentication of its own: whoever reaches it acts as the agent.
  if (!LOOPBACK_HOSTS.has(listen.host))
    throw new ConfigError(
      file,
      'mcp.listen',
      `must be a loopback address (127.0.0.1, ::1 or localhost), not ${listen.host}: whoever reaches the MCP endpoint acts as the agent, and it serves no TLS`,
    );
  // The tool calls connect to the proxy's own listener without TLS (the connection stays in the process's loopback).
  if (document.clientTls?.required === true)
    throw new ConfigError(
      file,
      'mcp',
      'cannot be used with clientTls.required yet: its tool calls connect to this proxy without TLS',
    );
  const mode = document.identity.mode;
  const given = [m.tokenFile !== undefined && 'tokenFile', m.user !== undefined && 'user'].filter(Boolean);
  let agent: McpConfig['agent'];
  if (mode === 'token-file') {
    if (given.length > 0 || m.password !== undefined)
      throw new ConfigError(
        file,
        `mcp.${given[0] || 'password'}`,
        "is not used in identity.mode token-file: the agent is the pod's own identity",
      );
    agent = { kind: 'pod' };
  } else if (mode === 'token') {
    // A MySQL proxy takes tokens only over TLS, and the tool calls connect to it without.
    if (protocol === 'mysql')
      throw new ConfigError(
        file,
        'mcp',
        'cannot be used with a MySQL upstream in identity.mode token yet: MySQL tokens go only over TLS',
      );
    if (m.tokenFile === undefined || m.user !== undefined || m.password !== undefined)
      throw new ConfigError(
        file,
        'mcp.tokenFile',
        "is required in identity.mode token (the agent's token), alone",
      );
    agent = { kind: 'token-file', path: m.tokenFile };
  } else {
    if (m.user === undefined || m.password === undefined || m.tokenFile !== undefined)
      throw new ConfigError(file, 'mcp.user', 'and mcp.password are required in identity.mode local');
    agent = { kind: 'local', user: m.user, password: resolveSecret(m.password, file, 'mcp.password') };
  }
  return {
    listen,
    agent,
    maxRows: m.maxRows ?? 200,
    maxBytes: m.maxBytes ?? 64 * 1024,
    approvalWaitMs: (m.approvalWaitSeconds ?? 30) * 1000,
  };
}

function resolveOperator(
  document: ProxyConfigDocument,
  file: string,
): NonNullable<ProxyConfig['approvals']>['operator'] {
  const operator = document.approvals!.operator!;
  const tokenFile = operator.tokenFile ?? document.identity.tokenFile?.path;
  if (tokenFile === undefined)
    throw new ConfigError(
      file,
      'approvals.operator.tokenFile',
      'is required unless identity.mode is token-file (the token the operator authenticates the proxy by)',
    );
  return { url: operator.url, ...(operator.caFile !== undefined && { caFile: operator.caFile }), tokenFile };
}

function applyOverrides(raw: Record<string, unknown>, overrides: ConfigOverrides): void {
  if (overrides.listen !== undefined) raw['listen'] = overrides.listen;
  if (overrides.upstream !== undefined) {
    // A URL on the command line replaces the upstream's address and credentials, keeps its TLS settings.
    const previous = isObject(raw['upstream']) ? raw['upstream'] : {};
    raw['upstream'] = {
      url: overrides.upstream,
      ...(previous['tls'] !== undefined && { tls: previous['tls'] }),
    };
  }
  if (overrides.auditFile !== undefined)
    raw['audit'] = { ...(isObject(raw['audit']) ? raw['audit'] : {}), file: overrides.auditFile };
  if (overrides.adminListen !== undefined) raw['admin'] = { listen: overrides.adminListen };
  if (overrides.logLevel !== undefined)
    raw['log'] = { ...(isObject(raw['log']) ? raw['log'] : {}), level: overrides.logLevel };
}

function resolveUpstream(document: ProxyConfigDocument, file: string): UpstreamConfig {
  const u = document.upstream;
  let fromUrl: Partial<{
    protocol: 'postgres' | 'mysql';
    host: string;
    port: number;
    database: string;
    user: string;
    password: string;
    sslmode: string;
  }> = {};
  if (u.url !== undefined) {
    let url: URL;
    try {
      url = new URL(u.url);
    } catch {
      throw new ConfigError(file, 'upstream.url', `is not a URL (expected ${URL_FORM})`);
    }
    const scheme = url.protocol.replace(/:$/, '');
    const protocol =
      scheme === 'postgres' || scheme === 'postgresql'
        ? 'postgres'
        : scheme === 'mysql' || scheme === 'mariadb'
          ? 'mysql'
          : undefined;
    if (!protocol)
      throw new ConfigError(file, 'upstream.url', `has scheme "${scheme}"; use postgres:// or mysql://`);
    fromUrl = {
      protocol,
      ...(url.hostname && { host: url.hostname.replace(/^\[|\]$/g, '') }),
      ...(url.port && { port: Number(url.port) }),
      ...(url.pathname.length > 1 && { database: decodeURIComponent(url.pathname.slice(1)) }),
      ...(url.username && { user: decodeURIComponent(url.username) }),
      ...(url.password && { password: decodeURIComponent(url.password) }),
      ...(url.searchParams.get('sslmode') !== null && { sslmode: url.searchParams.get('sslmode')! }),
    };
  }
  const protocol = u.protocol ?? fromUrl.protocol ?? 'postgres';
  const user =
    typeof u.user === 'object' ? resolveSecret(u.user, file, 'upstream.user') : (u.user ?? fromUrl.user);
  if (!user) throw new ConfigError(file, 'upstream.user', 'is required (or give it in upstream.url)');
  const host = u.host ?? fromUrl.host;
  if (!host) throw new ConfigError(file, 'upstream.host', 'is required (or give it in upstream.url)');
  const password = u.password ? resolveSecret(u.password, file, 'upstream.password') : fromUrl.password;
  const mode = u.tls?.mode ?? sslmodeToTlsMode(fromUrl.sslmode, file);
  return {
    protocol,
    host,
    port: u.port ?? fromUrl.port ?? (protocol === 'mysql' ? 3306 : 5432),
    database: u.database ?? fromUrl.database ?? user,
    user,
    ...(password !== undefined && { password }),
    tls: {
      mode,
      ...(u.tls?.caFile !== undefined && { ca: readFileField(u.tls.caFile, file, 'upstream.tls.caFile') }),
      ...(u.tls?.serverName !== undefined && { serverName: u.tls.serverName }),
    },
    connectTimeoutMs: (u.connectTimeoutSeconds ?? 10) * 1000,
  };
}

function sslmodeToTlsMode(sslmode: string | undefined, file: string): 'disable' | 'require' | 'verify-full' {
  switch (sslmode) {
    case undefined:
    case 'disable':
    case 'prefer':
    case 'allow':
      return sslmode === undefined || sslmode === 'disable' ? 'disable' : 'require';
    case 'require':
      return 'require';
    case 'verify-ca':
    case 'verify-full':
      return 'verify-full';
    default:
      throw new ConfigError(
        file,
        'upstream.url',
        `has sslmode=${sslmode}; use disable, require or verify-full`,
      );
  }
}

function checkIdentity(
  identity: ProxyConfigDocument['identity'],
  file: string,
): ProxyConfigDocument['identity'] {
  const section = { token: identity.token, 'token-file': identity.tokenFile, local: identity.local }[
    identity.mode
  ];
  const key = identity.mode === 'token-file' ? 'tokenFile' : identity.mode;
  if (!section)
    throw new ConfigError(file, `identity.${key}`, `is required when identity.mode is ${identity.mode}`);
  const verify =
    identity.mode === 'token'
      ? identity.token
      : identity.mode === 'token-file'
        ? identity.tokenFile?.verify
        : undefined;
  if (verify) {
    const sources = [verify.jwksUrl, verify.jwksFile, verify.publicKeyFile].filter((s) => s !== undefined);
    const at = identity.mode === 'token' ? 'identity.token' : 'identity.tokenFile.verify';
    if (sources.length !== 1)
      throw new ConfigError(file, at, 'needs exactly one of jwksUrl, jwksFile or publicKeyFile');
  }
  return identity;
}

function maskingKey(secret: string, file: string): Buffer {
  const key = Buffer.from(secret, 'utf8');
  if (key.length < 16)
    throw new ConfigError(file, 'masking.key', `must be at least 16 bytes (it has ${key.length})`);
  return key;
}

export function resolveSecret(secret: SecretValueConfig, file: string, field: string): string {
  const given = (['value', 'file', 'env'] as const).filter((k) => secret[k] !== undefined);
  if (given.length !== 1) throw new ConfigError(file, field, 'needs exactly one of value, file or env');
  if (secret.value !== undefined) return secret.value;
  if (secret.env !== undefined) {
    const value = process.env[secret.env];
    if (value === undefined)
      throw new ConfigError(file, `${field}.env`, `environment variable ${secret.env} is not set`);
    return value;
  }
  return readFileField(secret.file!, file, `${field}.file`)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

function resolveClientTls(
  tls: ProxyConfigDocument['clientTls'],
  file: string,
): Pick<ProxyConfig, 'clientTls' | 'clientTlsAuto'> {
  if (tls === undefined) return {};
  const { auto } = tls;
  const required = tls.required ?? false;
  if (auto !== undefined) {
    if (tls.certFile !== undefined || tls.keyFile !== undefined)
      throw new ConfigError(file, 'clientTls', 'takes either certFile and keyFile or auto, not both');
    return {
      clientTlsAuto: { dir: resolve(auto.dir ?? '.gatehouse/tls'), names: auto.names ?? [], required },
    };
  }
  if (tls.certFile === undefined || tls.keyFile === undefined)
    throw new ConfigError(
      file,
      'clientTls',
      'needs certFile and keyFile, or `auto` for a generated certificate',
    );
  return {
    clientTls: {
      cert: readFileField(tls.certFile, file, 'clientTls.certFile'),
      key: readFileField(tls.keyFile, file, 'clientTls.keyFile'),
      required,
    },
  };
}

function readFileField(path: string, file: string, field: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new ConfigError(
      file,
      field,
      `cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? String(error)})`,
    );
  }
}

export function parseHostPort(value: string, file: string, field: string): HostPort {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]*)):(\d{1,5})$/.exec(value);
  const port = Number(match?.[3]);
  if (!match || port > 65535) throw new ConfigError(file, field, `"${value}" is not HOST:PORT`);
  return { host: match[1] ?? (match[2] || '0.0.0.0'), port };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The file is the shipper's buffer, so shipping needs one; and a collector needs to know who sends. */
function checkShip(audit: AuditConfigDocument, file: string): NonNullable<AuditConfigDocument['ship']> {
  const ship = audit.ship!;
  if (audit.file === undefined)
    throw new ConfigError(
      file,
      'audit.ship',
      'needs audit.file: records are shipped from the file, which keeps them while the collector is away',
    );
  if ((ship.tokenFile === undefined) === (ship.token === undefined))
    throw new ConfigError(file, 'audit.ship', 'needs exactly one of tokenFile or token');
  // The token and the records would cross the network in clear: https beyond this host, always.
  const url = new URL(ship.url);
  if (url.protocol === 'http:') {
    if (!isLoopback(url.hostname.replace(/^\[|\]$/g, '')))
      throw new ConfigError(
        file,
        'audit.ship.url',
        `plain http only to loopback, not "${ship.url}": the token and the records would cross the network in clear; use https (with caFile for a private CA)`,
      );
    if (ship.caFile !== undefined)
      throw new ConfigError(file, 'audit.ship.caFile', 'goes with an https url, not http');
  }
  return ship;
}
