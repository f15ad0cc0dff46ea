import 'reflect-metadata';
import {
  AdmissionregistrationV1Api,
  ApiException,
  CoreV1Api,
  type KubeConfig,
  type V1MutatingWebhookConfiguration,
  type V1OwnerReference,
  type V1Secret,
} from '@kubernetes/client-node';
import type * as x509 from '@peculiar/x509';
import type { Logger } from 'pino';
import {
  createCertificateAuthority,
  freshEnough,
  issuedBy,
  issueServerCertificate,
  type KeyedCertificate,
  keyed,
  parseBundle,
  pemBundle,
  sameNames,
} from '../../../sidecar/src/tls/certificates.ts';
import type { ServingCertificate } from './webhook-server.ts';

/** The few API calls certificate management makes; `kubeCertificateClient` implements them with @kubernetes/client-node. */
export type CertificateKubeClient = {
  /** undefined when there is no such Secret. */
  readSecret(namespace: string, name: string): Promise<V1Secret | undefined>;
  /** Throws a CertificateConflictError when the Secret exists (another replica was faster). */
  createSecret(namespace: string, secret: V1Secret): Promise<V1Secret>;
  /** Throws a CertificateConflictError when the Secret changed since it was read (its resourceVersion). */
  replaceSecret(namespace: string, secret: V1Secret): Promise<V1Secret>;
  readMutatingWebhookConfiguration(name: string): Promise<V1MutatingWebhookConfiguration | undefined>;
  replaceMutatingWebhookConfiguration(configuration: V1MutatingWebhookConfiguration): Promise<void>;
};

/** Someone else wrote the same object first: read it again and decide again. */
export class CertificateConflictError extends Error {}

export type ServingCertificateOptions = {
  client: CertificateKubeClient;
  /** Where the operator runs, and the Secret that keeps the CA and the serving certificate. */
  namespace: string;
  secretName: string;
  /** The webhook's Service: the certificate names `<service>.<namespace>.svc` and `.svc.cluster.local`. */
  service: string;
  /** Extra subject alternative names, e.g. 127.0.0.1 when the API server calls a URL (tests). */
  extraNames?: string[];
  /** The CA's common name; default `gatehouse-webhook-ca NAMESPACE/SERVICE`. */
  caName?: string;
  /** Put on the Secret, so it goes with its owner (a DatabaseGateway's certificate). */
  ownerReferences?: V1OwnerReference[];
  now?: () => Date;
};

export type IssuedServingCertificate = ServingCertificate & {
  /** PEM of the CA(s) to trust: the current CA, then the one it replaced while that is still valid. */
  caBundle: string;
  notAfter: Date;
  /** Whether this call wrote a new Secret. */
  renewed: boolean;
};

const CA_VALIDITY_DAYS = 5 * 365;
const SERVING_VALIDITY_DAYS = 365;
/** The CA's key, so a renewed serving certificate chains to the CA the API server already trusts. */
export const CA_KEY_KEY = 'ca.key';
export const CA_CERT_KEY = 'ca.crt';

/**
 * The webhook's serving certificate from its Secret (type kubernetes.io/tls, plus ca.crt and ca.key),
 * made or renewed when needed: a certificate with less than a third of its validity left, or that
 * does not name the service, is replaced; the CA likewise, keeping the old CA in the bundle until it
 * expires so the API server trusts both sides of the switch. Safe with several replicas: writes
 * carry the resourceVersion, and a lost race reads the winner's certificate.
 */
export async function ensureServingCertificate(
  options: ServingCertificateOptions,
): Promise<IssuedServingCertificate> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await ensureOnce(options);
    } catch (error) {
      if (!(error instanceof CertificateConflictError) || attempt >= 3) throw error;
    }
  }
}

async function ensureOnce(options: ServingCertificateOptions): Promise<IssuedServingCertificate> {
  const existing = await options.client.readSecret(options.namespace, options.secretName);
  const plan = await planServingCertificate(existing, {
    names: servingNames(options),
    caName: options.caName ?? `gatehouse-webhook-ca ${options.namespace}/${options.service}`,
    now: options.now?.() ?? new Date(),
  });
  if (plan.data === undefined) return plan.issued;
  const secret: V1Secret = {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: options.secretName,
      namespace: options.namespace,
      ...(existing?.metadata?.resourceVersion !== undefined && {
        resourceVersion: existing.metadata.resourceVersion,
      }),
      labels: { ...existing?.metadata?.labels, 'app.kubernetes.io/managed-by': 'gatehouse-operator' },
      ...(options.ownerReferences !== undefined && { ownerReferences: options.ownerReferences }),
    },
    type: 'kubernetes.io/tls',
    data: plan.data,
  };
  if (existing === undefined) await options.client.createSecret(options.namespace, secret);
  else await options.client.replaceSecret(options.namespace, secret);
  return plan.issued;
}

/**
 * What a Secret holding a serving certificate and its CA should hold now: `data` undefined when what
 * it holds is still good (fresh enough, issued by a CA that is fresh enough, naming exactly `names`),
 * otherwise the Secret data (base64) to write, with a new serving certificate and, when the CA
 * needed renewing, a new CA whose bundle keeps the old one while it is valid. Writes nothing: where
 * the data goes (the same Secret replaced, or a new one) is the caller's.
 */
export async function planServingCertificate(
  existing: V1Secret | undefined,
  options: { names: readonly string[]; caName: string; now: Date },
): Promise<{ issued: IssuedServingCertificate; data?: Record<string, string> }> {
  const { now, names } = options;
  const stored = existing === undefined ? undefined : await readStored(existing);
  let ca = stored?.ca;
  let caBundle = stored?.caBundle ?? [];
  if (ca === undefined || !freshEnough(ca.certificate, now)) {
    const previous = ca?.certificate;
    ca = await createCertificateAuthority(options.caName, now, CA_VALIDITY_DAYS);
    caBundle = [ca.certificate, ...(previous !== undefined && previous.notAfter > now ? [previous] : [])];
  }
  const serving = stored?.serving;
  if (
    serving !== undefined &&
    ca === stored?.ca &&
    freshEnough(serving.certificate, now) &&
    (await issuedBy(serving.certificate, ca.certificate)) &&
    sameNames(serving.certificate, names)
  ) {
    return {
      issued: {
        cert: serving.certificate.toString('pem'),
        key: serving.keyPem,
        caBundle: pemBundle(caBundle),
        notAfter: serving.certificate.notAfter,
        renewed: false,
      },
    };
  }
  const issued = await issueServerCertificate(ca, names, now, SERVING_VALIDITY_DAYS);
  return {
    issued: {
      cert: issued.certificate.toString('pem'),
      key: issued.keyPem,
      caBundle: pemBundle(caBundle),
      notAfter: issued.certificate.notAfter,
      renewed: true,
    },
    data: {
      'tls.crt': base64(issued.certificate.toString('pem')),
      'tls.key': base64(issued.keyPem),
      [CA_CERT_KEY]: base64(pemBundle(caBundle)),
      [CA_KEY_KEY]: base64(ca.keyPem),
    },
  };
}

/**
 * Puts `caBundle` into every webhook of the named MutatingWebhookConfiguration, so the API server
 * trusts the serving certificate. Returns false when the configuration does not exist (yet).
 */
export async function patchCaBundle(
  client: CertificateKubeClient,
  configurationName: string,
  caBundle: string,
): Promise<boolean> {
  const encoded = base64(caBundle);
  for (let attempt = 0; ; attempt++) {
    const configuration = await client.readMutatingWebhookConfiguration(configurationName);
    if (configuration === undefined) return false;
    const webhooks = configuration.webhooks ?? [];
    if (webhooks.every((webhook) => webhook.clientConfig.caBundle === encoded)) return true;
    for (const webhook of webhooks) webhook.clientConfig.caBundle = encoded;
    try {
      await client.replaceMutatingWebhookConfiguration(configuration);
      return true;
    } catch (error) {
      if (!(error instanceof CertificateConflictError) || attempt >= 3) throw error;
    }
  }
}

export type CertificateSourceOptions = {
  client: CertificateKubeClient;
  namespace: string;
  secretName: string;
  logger: Pick<Logger, 'info' | 'warn' | 'error'>;
  /** How often the Secret is looked at again. */
  intervalMs?: number;
} & (
  | {
      /** The operator makes and renews the CA and certificate, and keeps caBundle in step. */
      mode: 'self-managed';
      service: string;
      webhookConfigurationName: string;
      extraNames?: string[];
    }
  | {
      /** cert-manager writes the Secret and injects caBundle (cainjector); the operator only reads the Secret. */
      mode: 'cert-manager';
    }
);

export type CertificateSource = {
  /** The current certificate, for startWebhookServer's `certificate` option. */
  current: () => ServingCertificate;
  /** Looks at the Secret now (the timer does this every intervalMs). */
  refresh: () => Promise<void>;
  stop: () => void;
};

const DEFAULT_INTERVAL_MS = 60_000;

/**
 * Keeps the webhook's certificate current: resolves once there is one, then re-reads (and in
 * self-managed mode renews) on a timer. A failed refresh keeps the last good certificate and is logged.
 */
export async function startCertificateSource(options: CertificateSourceOptions): Promise<CertificateSource> {
  let current: ServingCertificate | undefined;
  const refresh = async () => {
    if (options.mode === 'self-managed') {
      const issued = await ensureServingCertificate(options);
      const patched = await patchCaBundle(options.client, options.webhookConfigurationName, issued.caBundle);
      if (issued.renewed) {
        options.logger.info({ notAfter: issued.notAfter.toISOString() }, 'webhook certificate issued');
      }
      if (!patched) {
        options.logger.warn(
          { configuration: options.webhookConfigurationName },
          'MutatingWebhookConfiguration not found; caBundle not set yet',
        );
      }
      current = { cert: issued.cert, key: issued.key };
      return;
    }
    const secret = await options.client.readSecret(options.namespace, options.secretName);
    const cert = decode(secret?.data?.['tls.crt']);
    const key = decode(secret?.data?.['tls.key']);
    if (cert === undefined || key === undefined) {
      throw new Error(
        `Secret ${options.namespace}/${options.secretName} has no tls.crt and tls.key yet; is the cert-manager Certificate ready?`,
      );
    }
    current = { cert, key };
  };
  await refresh();
  const timer = setInterval(() => {
    refresh().catch((error: unknown) =>
      options.logger.error({ err: error }, 'webhook certificate refresh failed; keeping the current one'),
    );
  }, options.intervalMs ?? DEFAULT_INTERVAL_MS);
  timer.unref();
  return { current: () => current!, refresh, stop: () => clearInterval(timer) };
}

/** CertificateKubeClient over @kubernetes/client-node. */
export function kubeCertificateClient(config: KubeConfig): CertificateKubeClient {
  const core = config.makeApiClient(CoreV1Api);
  const admission = config.makeApiClient(AdmissionregistrationV1Api);
  const orUndefined = async <T>(call: Promise<T>): Promise<T | undefined> => {
    try {
      return await call;
    } catch (error) {
      if (error instanceof ApiException && error.code === 404) return undefined;
      throw error;
    }
  };
  const conflictsAsErrors = async <T>(call: Promise<T>): Promise<T> => {
    try {
      return await call;
    } catch (error) {
      if (error instanceof ApiException && error.code === 409)
        throw new CertificateConflictError(error.message);
      throw error;
    }
  };
  return {
    readSecret: (namespace, name) => orUndefined(core.readNamespacedSecret({ namespace, name })),
    createSecret: (namespace, body) => conflictsAsErrors(core.createNamespacedSecret({ namespace, body })),
    replaceSecret: (namespace, body) =>
      conflictsAsErrors(core.replaceNamespacedSecret({ namespace, name: body.metadata!.name!, body })),
    readMutatingWebhookConfiguration: (name) =>
      orUndefined(admission.readMutatingWebhookConfiguration({ name })),
    replaceMutatingWebhookConfiguration: async (body) => {
      await conflictsAsErrors(
        admission.replaceMutatingWebhookConfiguration({ name: body.metadata!.name!, body }),
      );
    },
  };
}

function servingNames(options: ServingCertificateOptions): string[] {
  return serviceNames(options.service, options.namespace, options.extraNames);
}

/** The names a Service's certificate carries: `SERVICE.NAMESPACE.svc`, `.svc.cluster.local`, then `extra`. */
export function serviceNames(service: string, namespace: string, extra: readonly string[] = []): string[] {
  const name = `${service}.${namespace}.svc`;
  return [name, `${name}.cluster.local`, ...extra];
}

type Stored = { ca?: KeyedCertificate; caBundle: x509.X509Certificate[]; serving?: KeyedCertificate };

/** What the Secret holds, with anything unreadable treated as absent (and so made again). */
async function readStored(secret: V1Secret): Promise<Stored> {
  const caBundle = parseBundle(decode(secret.data?.[CA_CERT_KEY]));
  const [caCertificate] = caBundle;
  return {
    caBundle,
    ca: await keyed(caCertificate, decode(secret.data?.[CA_KEY_KEY])),
    serving: await keyed(parseBundle(decode(secret.data?.['tls.crt']))[0], decode(secret.data?.['tls.key'])),
  };
}

function base64(text: string): string {
  return Buffer.from(text).toString('base64');
}

function decode(value: string | undefined): string | undefined {
  return value === undefined ? undefined : Buffer.from(value, 'base64').toString('utf8');
}
