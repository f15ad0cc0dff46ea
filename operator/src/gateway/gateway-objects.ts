import { createHash } from 'node:crypto';
import type {
  V1ConfigMap,
  V1Deployment,
  V1ResourceRequirements,
  V1Service,
  V1ServiceAccount,
  V1Volume,
} from '@kubernetes/client-node';
import { API_VERSION } from '../../../crds/common.ts';
import type { DatabaseAccessSpecType } from '../../../crds/database-access.ts';
import type { DatabaseGatewaySpecType } from '../../../crds/database-gateway.ts';
import type { OwnerReference } from '../runtime/kube-api.ts';
import {
  ADMIN_PORT,
  AUDIT_MOUNT,
  AUDIT_SIGNING_KEY_MOUNT,
  AUDIT_SIGNING_KEY_SECRET,
  BUNDLE_MOUNT,
  CREDENTIALS_MOUNT,
  INJECT_DISABLED,
  LABEL_INJECT,
  LABEL_MANAGED_BY,
  MANAGED_BY,
  MASKING_KEY_MOUNT,
  MASKING_KEY_SECRET,
  SIDECAR_ARGS,
  TOKEN_MOUNT,
  tokenVolume,
  UPSTREAM_CA_FILE,
  UPSTREAM_CA_MOUNT,
  VOLUME_AUDIT,
  VOLUME_AUDIT_SIGNING_KEY,
  VOLUME_BUNDLE,
  VOLUME_CREDENTIALS,
  VOLUME_MASKING_KEY,
  VOLUME_TOKEN,
  VOLUME_UPSTREAM_CA,
} from '../sidecar-layout.ts';
import {
  ANNOTATION_GATEWAY_ROLLOUT,
  APP_NAME,
  CA_CONFIG_KEY,
  CLIENT_TLS_MOUNT,
  gatewayBundleName,
  gatewayCaConfigMapName,
  gatewayObjectName,
  gatewayServiceAccountName,
  LABEL_APP_NAME,
  LABEL_GATEWAY,
  LABEL_INSTANCE,
  VOLUME_CLIENT_TLS,
} from './gateway-layout.ts';

/** The DatabaseGateway as the object builders read it. */
export interface GatewayRef {
  readonly metadata: { readonly name: string; readonly namespace: string; readonly uid: string };
  readonly spec: DatabaseGatewaySpecType;
}

/** Enough for a proxy that parses and relays for a handful of people; spec.resources replaces both maps. */
const DEFAULT_RESOURCES: V1ResourceRequirements = {
  requests: { cpu: '100m', memory: '128Mi' },
  limits: { memory: '512Mi' },
};
/** The same non-root user as the injected sidecar (the image need not name it). */
const PROXY_USER = 65532;
export const DEFAULT_REPLICAS = 2;
const CONTAINER = 'gatehouse-proxy';

/** The gateway owns every object it makes, so deleting it deletes them (and the operator does too). */
export function gatewayOwner(gateway: GatewayRef): OwnerReference {
  return {
    apiVersion: API_VERSION,
    kind: 'DatabaseGateway',
    name: gateway.metadata.name,
    uid: gateway.metadata.uid,
    controller: true,
    blockOwnerDeletion: true,
  };
}

export function gatewayLabels(gateway: GatewayRef): Record<string, string> {
  return {
    [LABEL_MANAGED_BY]: MANAGED_BY,
    [LABEL_APP_NAME]: APP_NAME,
    [LABEL_INSTANCE]: gateway.metadata.name,
    [LABEL_GATEWAY]: gateway.metadata.name,
  };
}

function selector(gateway: GatewayRef): Record<string, string> {
  return { [LABEL_APP_NAME]: APP_NAME, [LABEL_GATEWAY]: gateway.metadata.name };
}

function metadata(gateway: GatewayRef, name: string) {
  return {
    name,
    namespace: gateway.metadata.namespace,
    labels: gatewayLabels(gateway),
    ownerReferences: [gatewayOwner(gateway)],
  };
}

export function bundleConfigMap(gateway: GatewayRef, data: Record<string, string>): V1ConfigMap {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: metadata(gateway, gatewayBundleName(gateway.metadata.name)),
    data,
  };
}

/** The CA people verify the gateway's certificate with: public, so it lives apart from the keys. */
export function caConfigMap(gateway: GatewayRef, caPem: string): V1ConfigMap {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: metadata(gateway, gatewayCaConfigMapName(gateway.metadata.name)),
    data: { [CA_CONFIG_KEY]: caPem },
  };
}

/**
 * What needs new pods rather than a reload: the proxy settings (the first document of the bundle:
 * listen, upstream, identity, TLS files), the serving certificate (read at start) and the image.
 */
export function gatewayRolloutHash(proxySettings: string, certificatePem: string, image: string): string {
  return createHash('sha256')
    .update(proxySettings)
    .update('\0')
    .update(certificatePem)
    .update('\0')
    .update(image)
    .digest('hex')
    .slice(0, 16);
}

/**
 * The account the gateway's pods run as. It holds no RBAC and its pods mount no API token: only a
 * projected token for the operator's approvals endpoint (audience gatehouse.dev), which admits it
 * for this gateway's DatabaseAccess. Created once, never updated (nothing in it changes).
 */
export function gatewayServiceAccount(gateway: GatewayRef): V1ServiceAccount {
  return {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: metadata(gateway, gatewayServiceAccountName(gateway.metadata.name)),
    automountServiceAccountToken: false,
  };
}

export function gatewayDeployment(input: {
  gateway: GatewayRef;
  access: DatabaseAccessSpecType;
  image: string;
  port: number;
  rolloutHash: string;
  /** The Secret with the serving certificate the pods mount (a self-managed generation, or cert-manager's). */
  tlsSecret: string;
}): V1Deployment {
  const { gateway, access } = input;
  const volumes = gatewayVolumes(gateway, access, input.tlsSecret);
  const probe = (path: string) => ({ httpGet: { path, port: ADMIN_PORT } });
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: metadata(gateway, gatewayObjectName(gateway.metadata.name)),
    spec: {
      replicas: gateway.spec.replicas ?? DEFAULT_REPLICAS,
      selector: { matchLabels: selector(gateway) },
      // A person's session lives on one pod: never take one away before its replacement is ready.
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
      template: {
        metadata: {
          // The gateway is the proxy: the webhook must not inject a sidecar in front of it.
          labels: { ...gatewayLabels(gateway), [LABEL_INJECT]: INJECT_DISABLED },
          annotations: { [ANNOTATION_GATEWAY_ROLLOUT]: input.rolloutHash },
        },
        spec: {
          // The proxy calls no Kubernetes API: its pods hold no API server token, only the projected
          // token of the operator's audience (the approvals endpoint) in VOLUME_TOKEN.
          serviceAccountName: gatewayServiceAccountName(gateway.metadata.name),
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          securityContext: {
            runAsNonRoot: true,
            runAsUser: PROXY_USER,
            runAsGroup: PROXY_USER,
            seccompProfile: { type: 'RuntimeDefault' },
          },
          containers: [
            {
              name: CONTAINER,
              image: input.image,
              args: [...SIDECAR_ARGS],
              ports: [
                { name: 'gh-proxy', containerPort: input.port, protocol: 'TCP' },
                { name: 'gh-admin', containerPort: ADMIN_PORT, protocol: 'TCP' },
              ],
              resources: (gateway.spec.resources as V1ResourceRequirements | undefined) ?? DEFAULT_RESOURCES,
              securityContext: {
                readOnlyRootFilesystem: true,
                allowPrivilegeEscalation: false,
                capabilities: { drop: ['ALL'] },
              },
              volumeMounts: volumes.map((volume) => ({
                name: volume.name,
                mountPath: MOUNT_PATHS[volume.name]!,
                ...(volume.name !== VOLUME_AUDIT && { readOnly: true }),
              })),
              readinessProbe: { ...probe('/readyz'), periodSeconds: 5 },
              livenessProbe: { ...probe('/healthz'), periodSeconds: 10 },
            },
          ],
          volumes,
        },
      },
    },
  };
}

export function gatewayService(gateway: GatewayRef, port: number): V1Service {
  const service = gateway.spec.service ?? {};
  const meta = metadata(gateway, gatewayObjectName(gateway.metadata.name));
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      ...meta,
      ...(service.annotations !== undefined && {
        annotations: service.annotations as Record<string, string>,
      }),
    },
    spec: {
      type: service.type ?? 'ClusterIP',
      selector: selector(gateway),
      ports: [{ name: 'proxy', port: service.port ?? port, targetPort: 'gh-proxy', protocol: 'TCP' }],
    },
  };
}

const MOUNT_PATHS: Record<string, string> = {
  [VOLUME_BUNDLE]: BUNDLE_MOUNT,
  [VOLUME_CREDENTIALS]: CREDENTIALS_MOUNT,
  [VOLUME_MASKING_KEY]: MASKING_KEY_MOUNT,
  [VOLUME_AUDIT_SIGNING_KEY]: AUDIT_SIGNING_KEY_MOUNT,
  [VOLUME_UPSTREAM_CA]: UPSTREAM_CA_MOUNT,
  [VOLUME_CLIENT_TLS]: CLIENT_TLS_MOUNT,
  [VOLUME_TOKEN]: TOKEN_MOUNT,
  [VOLUME_AUDIT]: AUDIT_MOUNT,
};

/** The Secret the Deployment's pods mount the serving certificate from: where a renewal search starts. */
export function mountedTlsSecret(deployment: V1Deployment | undefined): string | undefined {
  return deployment?.spec?.template.spec?.volumes?.find((v) => v.name === VOLUME_CLIENT_TLS)?.secret
    ?.secretName;
}

function gatewayVolumes(gateway: GatewayRef, access: DatabaseAccessSpecType, tlsSecret: string): V1Volume[] {
  // Secret files belong to root and the proxy runs as another user with no fsGroup: world-readable,
  // in a pod where no other process runs.
  const secret = (name: string, secretName: string, items?: { key: string; path: string }[]): V1Volume => ({
    name,
    secret: { secretName, defaultMode: 0o444, ...(items && { items }) },
  });
  const volumes: V1Volume[] = [
    { name: VOLUME_BUNDLE, configMap: { name: gatewayBundleName(gateway.metadata.name) } },
  ];
  const credentials = access.upstream?.credentialsSecretRef;
  if (credentials) volumes.push(secret(VOLUME_CREDENTIALS, credentials.name));
  volumes.push(
    secret(VOLUME_MASKING_KEY, MASKING_KEY_SECRET),
    secret(VOLUME_AUDIT_SIGNING_KEY, AUDIT_SIGNING_KEY_SECRET),
  );
  const ca = access.upstream?.tls?.caSecretRef;
  if (ca)
    volumes.push(
      secret(VOLUME_UPSTREAM_CA, ca.name, [{ key: ca.key ?? UPSTREAM_CA_FILE, path: UPSTREAM_CA_FILE }]),
    );
  volumes.push(
    // Only the certificate and key: a self-managed Secret also holds the CA's key, which the proxy must not see.
    secret(VOLUME_CLIENT_TLS, tlsSecret, [
      { key: 'tls.crt', path: 'tls.crt' },
      { key: 'tls.key', path: 'tls.key' },
    ]),
    tokenVolume(),
    { name: VOLUME_AUDIT, emptyDir: {} },
  );
  return volumes;
}
