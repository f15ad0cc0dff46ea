import type { V1Secret } from '@kubernetes/client-node';
import { isConflict, type KubeClient, resourcePath } from '../runtime/kube-api.ts';
import {
  CA_CERT_KEY,
  CertificateConflictError,
  type CertificateKubeClient,
  ensureServingCertificate,
} from '../webhook/certificates.ts';
import { gatewayObjectName, gatewayTlsSecretName } from './gateway-layout.ts';
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
 * The gateway's serving certificate in the Secret `gatehouse-gw-NAME-tls`, naming the Service
 * (`NAME.NAMESPACE.svc`, `.svc.cluster.local`) and spec.tls.dnsNames. SelfManaged: the operator's
 * own CA code (the webhook's) issues and renews it, with a CA per gateway kept in the same Secret.
 * CertManager: a cert-manager Certificate the gateway owns; not ready until cert-manager wrote the Secret.
 */
export async function ensureGatewayTls(api: KubeClient, gateway: GatewayRef): Promise<GatewayTls> {
  const { namespace, name } = gateway.metadata;
  const secretName = gatewayTlsSecretName(name);
  const service = gatewayObjectName(name);
  const dnsNames = gateway.spec.tls?.dnsNames ?? [];
  const secretPath = resourcePath('v1', 'secrets', namespace, secretName);
  if ((gateway.spec.tls?.mode ?? 'SelfManaged') === 'SelfManaged') {
    // The certificate code replaces the Secret it renews: never one that is someone else's (cert-manager's
    // too, after a switch from CertManager: delete it to let the operator issue its own).
    const existing = await api.getOptional<V1Secret>(secretPath);
    if (existing && !existing.metadata?.ownerReferences?.some((o) => o.uid === gateway.metadata.uid))
      return {
        ready: false,
        reason: 'CertificateConflict',
        message: `Secret "${secretName}" exists and is not owned by this DatabaseGateway; rename or delete it`,
      };
    const issued = await ensureServingCertificate({
      client: certificateClient(api),
      namespace,
      secretName,
      service,
      extraNames: dnsNames,
      caName: `gatehouse-gateway-ca ${namespace}/${name}`,
      ownerReferences: [gatewayOwner(gateway)],
    });
    return { ready: true, secret: secretName, certificate: issued.cert, caBundle: issued.caBundle };
  }

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
        dnsNames: [`${service}.${namespace}.svc`, `${service}.${namespace}.svc.cluster.local`, ...dnsNames],
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

/** The webhook's certificate code over the operator's KubeClient; a gateway touches no webhook configuration. */
export function certificateClient(api: KubeClient): CertificateKubeClient {
  const conflictsAsErrors = async <T>(call: Promise<T>): Promise<T> => {
    try {
      return await call;
    } catch (error) {
      if (isConflict(error)) throw new CertificateConflictError(String(error));
      throw error;
    }
  };
  const notUsed = () => Promise.reject(new Error('a gateway has no webhook configuration'));
  return {
    readSecret: (namespace, name) =>
      api.getOptional<V1Secret>(resourcePath('v1', 'secrets', namespace, name)),
    createSecret: (namespace, secret) =>
      conflictsAsErrors(api.create<V1Secret>(resourcePath('v1', 'secrets', namespace), secret)),
    replaceSecret: (namespace, secret) =>
      conflictsAsErrors(
        api.replace<V1Secret>(resourcePath('v1', 'secrets', namespace, secret.metadata!.name!), secret),
      ),
    readMutatingWebhookConfiguration: notUsed,
    replaceMutatingWebhookConfiguration: notUsed,
  };
}

function decode(value: string | undefined): string | undefined {
  return value === undefined ? undefined : Buffer.from(value, 'base64').toString('utf8');
}
