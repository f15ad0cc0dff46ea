import type { DatabaseGatewaySpecType } from '../../../crds/database-gateway.ts';
import {
  assembleBundle,
  type BundlePolicies,
  BundleSpecError,
  type CompiledBundle,
  operatorApprovals,
  proxyDocument,
  upstreamSettings,
} from '../compile/compile-bundle.ts';
import {
  ADMIN_PORT,
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
 * theirs, not the gateway's). Pure, like compileBundle.
 */
export function compileGatewayBundle(input: GatewayBundleInput): CompiledBundle {
  const { protocol, upstream } = upstreamSettings(input.access.spec);
  const spec = input.gateway.spec;
  const port = gatewayListenPort(spec, protocol);
  if (port === ADMIN_PORT)
    throw new BundleSpecError('spec.port', `${ADMIN_PORT} is the proxy's admin port; choose another`);
  const { oidc } = spec;
  const proxy = {
    ...proxyDocument(`0.0.0.0:${port}`, upstream),
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
  return assembleBundle(
    proxy,
    input,
    input.approvals ? { [BUNDLE_OPERATOR_CA_KEY]: input.approvals.ca } : {},
  );
}
