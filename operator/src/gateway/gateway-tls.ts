import type { V1Secret } from '@kubernetes/client-node';
import { isConflict, type KubeClient, resourcePath } from '../runtime/kube-api.ts';
import {
  CA_CERT_KEY,
  type IssuedServingCertificate,
  planServingCertificate,
  serviceNames,
} from '../webhook/certificates.ts';
import {
  gatewayObjectName,
  gatewayTlsGenerationName,
  gatewayTlsGenerationOf,
  gatewayTlsSecretName,
} from './gateway-layout.ts';
import { type GatewayRef, gatewayLabels, gatewayOwner } from './gateway-objects.ts';
import { ensureOwned } from './owned-objects.ts';

export type GatewayTls =
  | {
      ready: true;
      secret: string;
      /** The serving certificate, PEM: a new one rolls the pods, which read it at start. */
      certificate: string;
      /** The CA(s) people verify the gateway with; undefined when the issuer gives none (a public CA). */
      caBundle?: string;
    }
  | { ready: false; reason: string; message: string };

/**
 * The gateway's serving certificate, naming the Service (`NAME.NAMESPACE.svc`, `.svc.cluster.local`)
 * and spec.tls.dnsNames. SelfManaged: the operator's own CA code (the webhook's) issues it, with a CA
 * per gateway, into a Secret per generation (`gatehouse-gw-NAME-tls-N`, below). CertManager: a
 * cert-manager Certificate the gateway owns, writing `gatehouse-gw-NAME-tls`; not ready until it has.
 * `current` is the Secret the gateway's pods mount now (its Deployment's, else its status's).
 */
export async function ensureGatewayTls(
  api: KubeClient,
  gateway: GatewayRef,
  current?: string,
): Promise<GatewayTls> {
  const { namespace, name } = gateway.metadata;
  const secretName = gatewayTlsSecretName(name);
  const service = gatewayObjectName(name);
  const dnsNames = gateway.spec.tls?.dnsNames ?? [];
  const secretPath = resourcePath('v1', 'secrets', namespace, secretName);
  if ((gateway.spec.tls?.mode ?? 'SelfManaged') === 'SelfManaged')
    return selfManaged(api, gateway, serviceNames(service, namespace, dnsNames), current);
  const issuer = gateway.spec.tls?.issuerRef;
  // The CRD's CEL rule says so too; an API server that does not run CEL rules lets it through.
  if (!issuer)
    return {
      ready: false,
      reason: 'InvalidSpec',
      message: 'spec.tls.issuerRef: is required when tls.mode is CertManager',
    };
  const written = await ensureOwned(
    api,
    resourcePath('cert-manager.io/v1', 'certificates', namespace),
    {
      apiVersion: 'cert-manager.io/v1',
      kind: 'Certificate',
      metadata: {
        name: secretName,
        namespace,
        labels: gatewayLabels(gateway),
        ownerReferences: [gatewayOwner(gateway)],
      },
      spec: {
        secretName,
        dnsNames: serviceNames(service, namespace, dnsNames),
        usages: ['server auth', 'digital signature', 'key encipherment'],
        privateKey: { algorithm: 'ECDSA', size: 256, rotationPolicy: 'Always' },
        issuerRef: {
          name: issuer.name,
          kind: issuer.kind ?? 'Issuer',
          group: issuer.group ?? 'cert-manager.io',
        },
      },
    },
    gateway.metadata.uid,
  );
  if (written === 'conflict')
    return {
      ready: false,
      reason: 'CertificateConflict',
      message: `Certificate "${secretName}" exists and is not owned by this DatabaseGateway; rename or delete it`,
    };
  const secret = await api.getOptional<V1Secret>(secretPath);
  const cert = decode(secret?.data?.['tls.crt']);
  if (cert === undefined || secret?.data?.['tls.key'] === undefined)
    return {
      ready: false,
      reason: 'CertificateNotReady',
      message: `waiting for cert-manager to write Secret "${secretName}" (Certificate "${secretName}")`,
    };
  const ca = decode(secret.data[CA_CERT_KEY]);
  return { ready: true, secret: secretName, certificate: cert, ...(ca && { caBundle: ca }) };
}

/** More generations than a gateway renews in decades: past them, something else is making Secrets. */
const MAX_PROBES = 100;

/**
 * Self-managed generations. The current certificate is the generation the gateway's pods mount (its
 * Deployment's, else the one its status names), when the gateway owns it: never one found by name,
 * since whoever creates a Secret writes its owner reference, and a Secret someone put at a later
 * generation's name must not become the certificate and CA people trust. When the current one needs
 * renewing (a third of its validity left, other names, its CA due) or there is none, the next free
 * generation is created with the same CA (or a renewed CA bundle) and a new certificate, marked
 * immutable; nothing is ever updated or deleted. Old generations stay, owned by the gateway, until
 * the garbage collector deletes them with it: pods still starting from one keep working.
 */
async function selfManaged(
  api: KubeClient,
  gateway: GatewayRef,
  names: readonly string[],
  current: string | undefined,
): Promise<GatewayTls> {
  const { namespace, name, uid } = gateway.metadata;
  const secretPath = (generation: number) =>
    resourcePath('v1', 'secrets', namespace, gatewayTlsGenerationName(name, generation));
  const pinnedGeneration = gatewayTlsGenerationOf(name, current);
  const found =
    pinnedGeneration === undefined
      ? undefined
      : await api.getOptional<V1Secret>(secretPath(pinnedGeneration));
  const pinned = found?.metadata?.ownerReferences?.some((o) => o.uid === uid) ? found : undefined;
  const plan = await planServingCertificate(pinned, {
    names,
    caName: `gatehouse-gateway-ca ${namespace}/${name}`,
    now: new Date(),
  });
  if (plan.data === undefined && pinned)
    return { ready: true, secret: pinned.metadata!.name!, ...issuedOf(plan.issued) };
  const first = (pinnedGeneration ?? 0) + 1;
  for (let next = first; next < first + MAX_PROBES; next++) {
    // A name taken (an earlier attempt whose Deployment was never written, or someone else's) is skipped.
    if (await api.getOptional<V1Secret>(secretPath(next))) continue;
    const secretName = gatewayTlsGenerationName(name, next);
    try {
      await api.create(resourcePath('v1', 'secrets', namespace), {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: {
          name: secretName,
          namespace,
          labels: gatewayLabels(gateway),
          ownerReferences: [gatewayOwner(gateway)],
        },
        type: 'kubernetes.io/tls',
        immutable: true,
        data: plan.data,
      });
    } catch (error) {
      if (isConflict(error)) continue;
      throw error;
    }
    return { ready: true, secret: secretName, ...issuedOf(plan.issued) };
  }
  return {
    ready: false,
    reason: 'CertificateConflict',
    message: `Secrets ${gatewayTlsGenerationName(name, first)} to ${gatewayTlsGenerationName(name, first + MAX_PROBES - 1)} all exist: delete those this DatabaseGateway does not own`,
  };
}

function issuedOf(issued: IssuedServingCertificate): { certificate: string; caBundle: string } {
  return { certificate: issued.cert, caBundle: issued.caBundle };
}

function decode(value: string | undefined): string | undefined {
  return value === undefined ? undefined : Buffer.from(value, 'base64').toString('utf8');
}
