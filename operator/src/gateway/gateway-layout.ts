/**
 * Names and paths of what the operator makes for a DatabaseGateway: the one agreement between the
 * gateway's bundle (paths the proxy reads), its pod spec (volumes mounted there) and the tests that
 * run the pod spec as a process. The mounts shared with the sidecar are in sidecar-layout.ts.
 */

/** Labels on the gateway's objects and its pods; the Service selects pods by LABEL_GATEWAY. */
export const LABEL_GATEWAY = 'gatehouse.dev/gateway';
export const LABEL_APP_NAME = 'app.kubernetes.io/name';
export const APP_NAME = 'gatehouse-gateway';
export const LABEL_INSTANCE = 'app.kubernetes.io/instance';

/** On the pod template: what needs new pods (proxy settings, certificate, image); policy changes hot reload. */
export const ANNOTATION_GATEWAY_ROLLOUT = 'gatehouse.dev/gateway-rollout';
/** On each object the operator writes: the hash of what it wrote, so an unchanged object is not rewritten. */
export const ANNOTATION_DESIRED_HASH = 'gatehouse.dev/desired-hash';

/**
 * The Deployment, Service, ServiceAccount and ConfigMaps share the gateway's name, prefixed. Service
 * accounts with this prefix are the gateways': the approvals endpoint refuses one no gateway owns.
 */
export const GATEWAY_ACCOUNT_PREFIX = 'gatehouse-gw-';
export function gatewayObjectName(gateway: string): string {
  return `${GATEWAY_ACCOUNT_PREFIX}${gateway}`.slice(0, 63).replace(/-+$/, '');
}
export function gatewayBundleName(gateway: string): string {
  return `${gatewayObjectName(gateway)}-bundle`;
}
/** The Secret cert-manager writes (tls.mode CertManager), and the prefix of the self-managed generations. */
export function gatewayTlsSecretName(gateway: string): string {
  return `${gatewayObjectName(gateway)}-tls`;
}

/**
 * A self-managed certificate generation's Secret: each renewal is a new Secret, created and never
 * written again, so the operator needs no right to update or delete Secrets.
 */
export function gatewayTlsGenerationName(gateway: string, generation: number): string {
  return `${gatewayTlsSecretName(gateway)}-${generation}`;
}

/** The generation a self-managed certificate Secret's name carries, or undefined for any other name. */
export function gatewayTlsGenerationOf(gateway: string, secretName: string | undefined): number | undefined {
  const prefix = `${gatewayTlsSecretName(gateway)}-`;
  if (!secretName?.startsWith(prefix)) return undefined;
  const rest = secretName.slice(prefix.length);
  return /^[1-9][0-9]{0,8}$/.test(rest) ? Number(rest) : undefined;
}

/** The CA people verify the gateway with, in a ConfigMap they may read (the TLS Secret holds keys). */
export function gatewayCaConfigMapName(gateway: string): string {
  return `${gatewayObjectName(gateway)}-ca`;
}
export const CA_CONFIG_KEY = 'ca.crt';

/** Where the serving certificate Secret (tls.crt, tls.key) is mounted in the gateway's container. */
export const CLIENT_TLS_MOUNT = '/etc/gatehouse/client-tls';
export const VOLUME_CLIENT_TLS = 'gatehouse-client-tls';

/**
 * The gateway's ServiceAccount: its pods' projected token (audience gatehouse.dev only, no API
 * server token) authenticates them to the operator's approvals endpoint, for its DatabaseAccess only.
 */
export function gatewayServiceAccountName(gateway: string): string {
  return gatewayObjectName(gateway);
}
