import type { DatabaseGatewaySpecType } from '../../../crds/database-gateway.ts';
import {
  assembleBundle,
  auditShip,
  type BundleCollector,
  type BundlePolicies,
  BundleSpecError,
  type CompiledBundle,
  operatorApprovals,
  proxyDocument,
  upstreamSettings,
} from '../compile/compile-bundle.ts';
import {
  ADMIN_PORT,
  BUNDLE_COLLECTOR_CA_KEY,
  BUNDLE_OPERATOR_CA_KEY,
  DEFAULT_LISTEN_PORT,
  TOKEN_FILE,
  TOKEN_MOUNT,
} from '../sidecar-layout.ts';
import { CLIENT_TLS_MOUNT } from './gateway-layout.ts';

export interface GatewayBundleInput extends BundlePolicies {
  readonly gateway: { readonly spec: DatabaseGatewaySpecType };
  /** The operator's approvals endpoint and the CA of its certificate (PEM), as for a sidecar. */
  readonly approvals?: { readonly url: string; readonly ca: string };
  /** The chart's audit collector, when it installs one: the gateway ships to it as sidecars do. */
  readonly collector?: BundleCollector;
}

/** The port the gateway's proxy listens on inside its pod. */
export function gatewayListenPort(gateway: DatabaseGatewaySpecType, protocol: 'postgres' | 'mysql'): number {
  return gateway.port ?? DEFAULT_LISTEN_PORT[protocol];
}

/**
 * The gateway's proxy configuration: the DatabaseAccess's upstream and policies, as for a sidecar,
 * but listening on every address of its pod, taking people's OIDC access tokens as passwords
 * (`identity.mode: token`) and serving TLS with the certificate mounted from its Secret, which it
 * requires: a token must never cross the network in clear. Statements held for approval are asked
 * of the operator as a sidecar's are, with the gateway pod's projected token (its people's tokens are
 * theirs, not the gateway's). With the chart's collector, its audit log ships there as a sidecar's
 * does, with the same token: the records of people's sessions, with the gateway pod as their source.
 * Pure, like compileBundle.
 */
export function compileGatewayBundle(input: GatewayBundleInput): CompiledBundle {
  const { protocol, upstream } = upstreamSettings(input.access.spec);
  const spec = input.gateway.spec;
  const port = gatewayListenPort(spec, protocol);
  if (port === ADMIN_PORT)
    throw new BundleSpecError('spec.port', `${ADMIN_PORT} is the proxy's admin port; choose another`);
  const { oidc } = spec;
  const base = proxyDocument(`0.0.0.0:${port}`, upstream);
  const proxy = {
    ...base,
    audit: {
      ...base.audit,
      ...(input.collector && auditShip(input.collector, input.access.metadata.namespace)),
    },
    identity: {
      mode: 'token',
      token: {
        issuer: oidc.issuer,
        audience: oidc.audience,
        jwksUrl: oidc.jwksUrl,
        ...(oidc.subjectClaim !== undefined && { subjectClaim: oidc.subjectClaim }),
        ...(oidc.groupsClaim !== undefined && { groupsClaim: oidc.groupsClaim }),
      },
    },
    clientTls: {
      certFile: `${CLIENT_TLS_MOUNT}/tls.crt`,
      keyFile: `${CLIENT_TLS_MOUNT}/tls.key`,
      required: true,
    },
    ...(input.approvals && operatorApprovals(input.approvals, `${TOKEN_MOUNT}/${TOKEN_FILE}`)),
  };
  const extra: Record<string, string> = {};
  if (input.approvals) extra[BUNDLE_OPERATOR_CA_KEY] = input.approvals.ca;
  if (input.collector) extra[BUNDLE_COLLECTOR_CA_KEY] = input.collector.ca ?? '';
  return assembleBundle(proxy, input, extra);
}
