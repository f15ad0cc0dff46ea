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

/** The Deployment, Service and ConfigMaps share the gateway's name, prefixed. */
export function gatewayObjectName(gateway: string): string {
  return `gatehouse-gw-${gateway}`.slice(0, 63).replace(/-+$/, '');
}
export function gatewayBundleName(gateway: string): string {
  return `${gatewayObjectName(gateway)}-bundle`;
}
export function gatewayTlsSecretName(gateway: string): string {
  return `${gatewayObjectName(gateway)}-tls`;
}
/** The CA people verify the gateway with, in a ConfigMap they may read (the TLS Secret holds keys). */
export function gatewayCaConfigMapName(gateway: string): string {
  return `${gatewayObjectName(gateway)}-ca`;
}
export const CA_CONFIG_KEY = 'ca.crt';

/** Where the serving certificate Secret (tls.crt, tls.key) is mounted in the gateway's container. */
export const CLIENT_TLS_MOUNT = '/etc/gatehouse/client-tls';
export const VOLUME_CLIENT_TLS = 'gatehouse-client-tls';
