import { createHash } from 'node:crypto';
import { stringify } from 'yaml';
import { API_VERSION, CHANGED_BY_ANNOTATION } from '../../../crds/common.ts';
import type { DatabaseAccessSpecType } from '../../../crds/database-access.ts';
import type { GuardrailSpecType } from '../../../crds/guardrail.ts';
import type { MaskingPolicySpecType } from '../../../crds/masking-policy.ts';
import {
  ADMIN_PORT,
  AUDIT_FILE,
  AUDIT_MOUNT,
  AUDIT_SIGNING_KEY_KEY,
  AUDIT_SIGNING_KEY_MOUNT,
  BUNDLE_COLLECTOR_CA_KEY,
  BUNDLE_CONFIG_KEY,
  BUNDLE_JWKS_KEY,
  BUNDLE_MOUNT,
  BUNDLE_OPERATOR_CA_KEY,
  CREDENTIALS_MOUNT,
  DEFAULT_LISTEN_PORT,
  DEFAULT_MCP_PORT,
  DEFAULT_UPSTREAM_PORT,
  MASKING_KEY_KEY,
  MASKING_KEY_MOUNT,
  TOKEN_AUDIENCE,
  TOKEN_FILE,
  TOKEN_MOUNT,
  UPSTREAM_CA_FILE,
  UPSTREAM_CA_MOUNT,
} from '../sidecar-layout.ts';

/**
 * A policy object as read from the API server: name, namespace, spec, and who last changed the spec
 * (the operator's webhook stamps it), which the bundle carries to the sidecar's audit log.
 */
export interface PolicyObject<S> {
  readonly metadata: {
    readonly name: string;
    readonly namespace?: string;
    readonly annotations?: Readonly<Record<string, string>>;
  };
  readonly spec: S;
}

export interface BundleInput {
  readonly access: PolicyObject<DatabaseAccessSpecType>;
  /** In the order the DatabaseAccess names them. */
  readonly guardrails: readonly PolicyObject<GuardrailSpecType>[];
  readonly maskingPolicies: readonly PolicyObject<MaskingPolicySpecType>[];
  /** The cluster's service-account issuer (`iss` of projected tokens). */
  readonly issuer: string;
  /** The cluster's /openid/v1/jwks, as served. */
  readonly jwks: string;
  /** Where the sidecar asks for approvals: the operator's endpoint and the CA of its certificate (PEM). */
  readonly approvals?: { readonly url: string; readonly ca: string };
  /** The chart's audit collector, when it installs one: sidecars ship their audit logs to it. */
  readonly collector?: BundleCollector;
}

/** Where sidecars ship their audit logs (`audit.ship`), and the cluster name recorded with each record. */
export interface BundleCollector {
  /** https://...: the operator refuses any other (docs/collector.md, "TLS"). */
  readonly url: string;
  readonly cluster: string;
  /**
   * PEM of the CA(s) that verify the collector's certificate; undefined while its Secret holds none
   * yet: the bundle then carries an empty CA file, and the sidecar ships nothing until it is filled in.
   */
  readonly ca?: string | undefined;
}

export interface CompiledBundle {
  /** The ConfigMap's data. */
  readonly data: Record<string, string>;
  /** sha256 of the data: what status.bundle.hash reports. */
  readonly hash: string;
}

/** The DatabaseAccess cannot be turned into a sidecar configuration; `field` says which part is wrong. */
export class BundleSpecError extends Error {
  readonly field: string;
  constructor(field: string, message: string) {
    super(`${field}: ${message}`);
    this.name = 'BundleSpecError';
    this.field = field;
  }
}

/**
 * Compiles a DatabaseAccess and the policies it names into the sidecar's configuration: the proxy
 * settings document first, then the policy documents, as one multi-document YAML that `gatehouse
 * proxy --config` loads. Credentials never enter the bundle: the proxy reads them from the files the
 * injected Secret volume provides. Pure and deterministic: the same input gives the same bytes and
 * hash, so an unchanged bundle is never rewritten.
 */
export function compileBundle(input: BundleInput): CompiledBundle {
  const { access } = input;
  const { protocol, upstream } = upstreamSettings(access.spec);
  const listenPort = access.spec.sidecar?.port ?? DEFAULT_LISTEN_PORT[protocol];
  if (listenPort === ADMIN_PORT)
    throw new BundleSpecError(
      'spec.sidecar.port',
      `${ADMIN_PORT} is the sidecar's admin port; choose another`,
    );

  const mcp = access.spec.sidecar?.mcp;
  const mcpPort = mcp && (mcp.port ?? DEFAULT_MCP_PORT);
  if (mcpPort === ADMIN_PORT || mcpPort === listenPort)
    throw new BundleSpecError(
      'spec.sidecar.mcp.port',
      `${mcpPort} is the sidecar's ${mcpPort === ADMIN_PORT ? 'admin' : 'database'} port; choose another`,
    );

  const base = proxyDocument(`127.0.0.1:${listenPort}`, upstream);
  const proxy = {
    ...base,
    // The workload's own identity (token-file mode): loopback, so only the pod reaches it.
    ...(mcpPort !== undefined && { mcp: { listen: `127.0.0.1:${mcpPort}` } }),
    audit: { ...base.audit, ...(input.collector && auditShip(input.collector, access.metadata.namespace)) },
    identity: {
      mode: 'token-file',
      tokenFile: {
        path: `${TOKEN_MOUNT}/${TOKEN_FILE}`,
        verify: {
          issuer: input.issuer,
          audience: TOKEN_AUDIENCE,
          jwksFile: `${BUNDLE_MOUNT}/${BUNDLE_JWKS_KEY}`,
        },
      },
    },
    // The token of identity.tokenFile authenticates the sidecar to the operator as well.
    ...(input.approvals && operatorApprovals(input.approvals)),
  };
  const extra: Record<string, string> = { [BUNDLE_JWKS_KEY]: input.jwks };
  if (input.approvals) extra[BUNDLE_OPERATOR_CA_KEY] = input.approvals.ca;
  if (input.collector) extra[BUNDLE_COLLECTOR_CA_KEY] = input.collector.ca ?? '';
  return assembleBundle(proxy, input, extra);
}

/**
 * The proxy's `audit.ship` section, for a sidecar and a gateway alike: the collector's URL, verified
 * with the CA the bundle carries as BUNDLE_COLLECTOR_CA_KEY (the caller adds that key, empty while
 * there is none), and the pod's projected token (audience gatehouse.dev), which proves to the
 * collector (TokenReview) which pod ships. The pod name is the proxy's host name, the pod's own
 * unless the pod spec sets `hostname`; the collector refuses records of any other pod for it.
 */
export function auditShip(collector: BundleCollector, namespace: string | undefined) {
  return {
    ship: {
      url: collector.url,
      caFile: `${BUNDLE_MOUNT}/${BUNDLE_COLLECTOR_CA_KEY}`,
      tokenFile: `${TOKEN_MOUNT}/${TOKEN_FILE}`,
      cluster: collector.cluster,
      ...(namespace !== undefined && { namespace }),
    },
  };
}

/**
 * The proxy's `approvals.operator` section: the operator's endpoint, verified with the CA the bundle
 * carries as BUNDLE_OPERATOR_CA_KEY (the caller adds that key). `tokenFile` when the proxy's identity
 * is not the pod's token (a gateway's people sign in with OIDC tokens); else the identity's token.
 */
export function operatorApprovals(approvals: { readonly url: string }, tokenFile?: string) {
  return {
    approvals: {
      operator: {
        url: approvals.url,
        caFile: `${BUNDLE_MOUNT}/${BUNDLE_OPERATOR_CA_KEY}`,
        ...(tokenFile !== undefined && { tokenFile }),
      },
    },
  };
}

/** The policy objects a bundle carries after its proxy settings. */
export interface BundlePolicies {
  readonly access: PolicyObject<DatabaseAccessSpecType>;
  readonly guardrails: readonly PolicyObject<GuardrailSpecType>[];
  readonly maskingPolicies: readonly PolicyObject<MaskingPolicySpecType>[];
}

/** The upstream section of the proxy settings, from spec.upstream; credentials come from the mounted Secret. */
export function upstreamSettings(spec: DatabaseAccessSpecType): {
  protocol: 'postgres' | 'mysql';
  upstream: Record<string, unknown>;
} {
  const upstream = spec.upstream;
  if (!upstream)
    throw new BundleSpecError('spec.upstream', 'is required in a cluster (the database to proxy)');
  const credentials = upstream.credentialsSecretRef;
  if (!credentials)
    throw new BundleSpecError(
      'spec.upstream.credentialsSecretRef',
      'is required: the Secret with the database user and password',
    );
  const protocol = upstream.protocol ?? 'postgres';
  return {
    protocol,
    upstream: {
      protocol,
      host: upstream.host,
      port: upstream.port ?? DEFAULT_UPSTREAM_PORT[protocol],
      ...(upstream.database !== undefined && { database: upstream.database }),
      user: { file: `${CREDENTIALS_MOUNT}/${credentials.userKey ?? 'username'}` },
      password: { file: `${CREDENTIALS_MOUNT}/${credentials.passwordKey ?? 'password'}` },
      tls: {
        mode: upstream.tls?.mode ?? 'require',
        ...(upstream.tls?.serverName !== undefined && { serverName: upstream.tls.serverName }),
        ...(upstream.tls?.caSecretRef !== undefined && {
          caFile: `${UPSTREAM_CA_MOUNT}/${UPSTREAM_CA_FILE}`,
        }),
      },
    },
  };
}

/** The proxy settings every bundle shares: listen, admin, upstream, audit and masking key files. */
export function proxyDocument(listen: string, upstream: Record<string, unknown>) {
  return {
    apiVersion: API_VERSION,
    kind: 'Proxy',
    listen,
    admin: { listen: `0.0.0.0:${ADMIN_PORT}` },
    upstream,
    audit: {
      file: `${AUDIT_MOUNT}/${AUDIT_FILE}`,
      stdout: true,
      signingKeyFile: `${AUDIT_SIGNING_KEY_MOUNT}/${AUDIT_SIGNING_KEY_KEY}`,
    },
    masking: { key: { file: `${MASKING_KEY_MOUNT}/${MASKING_KEY_KEY}` } },
  };
}

/**
 * The proxy settings, then the policy documents, as one multi-document YAML under BUNDLE_CONFIG_KEY,
 * beside `extra` keys; the hash covers every key, so a change of any file the proxy reads shows.
 */
export function assembleBundle(
  proxy: Record<string, unknown>,
  policies: BundlePolicies,
  extra: Record<string, string>,
): CompiledBundle {
  const namespace = policies.access.metadata.namespace;
  const document = (kind: string, object: PolicyObject<unknown>) => {
    // Only this annotation: any other would rewrite every sidecar's bundle on an unrelated edit.
    const changedBy = object.metadata.annotations?.[CHANGED_BY_ANNOTATION];
    return {
      apiVersion: API_VERSION,
      kind,
      metadata: {
        name: object.metadata.name,
        ...(namespace !== undefined && { namespace }),
        ...(changedBy !== undefined && { annotations: { [CHANGED_BY_ANNOTATION]: changedBy } }),
      },
      spec: object.spec,
    };
  };
  const documents = [
    proxy,
    document('DatabaseAccess', policies.access),
    ...policies.guardrails.map((g) => document('Guardrail', g)),
    ...policies.maskingPolicies.map((m) => document('MaskingPolicy', m)),
  ];
  const config = documents.map((d) => stringify(d, { sortMapEntries: true })).join('---\n');
  const data: Record<string, string> = { [BUNDLE_CONFIG_KEY]: config, ...extra };
  const hash = createHash('sha256').update(config);
  for (const key of Object.keys(extra)) hash.update('\0').update(extra[key]!);
  return { data, hash: hash.digest('hex') };
}
