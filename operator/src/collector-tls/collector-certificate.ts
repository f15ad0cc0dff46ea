import type { Logger } from 'pino';
import { type KubeClient, resourcePath } from '../runtime/kube-api.ts';
import {
  CA_CERT_KEY,
  type CertificateKubeClient,
  ensureServingCertificate,
} from '../webhook/certificates.ts';

/** Where the collector's serving certificate lives, and who issues it. */
export interface CollectorTlsOptions {
  readonly api: KubeClient;
  /** The webhook's certificate code writes the Secret (mode self). */
  readonly client: CertificateKubeClient;
  /** The release namespace: the collector's Service and its Secret. */
  readonly namespace: string;
  readonly secretName: string;
  readonly service: string;
  /** The URL the bundles name: its host goes into the certificate too (a test's 127.0.0.1). */
  readonly url: string;
  /** self: the operator issues and renews the certificate; cert-manager: a Certificate the chart made does. */
  readonly mode: 'self' | 'cert-manager';
  readonly logger: Pick<Logger, 'info' | 'warn' | 'error'>;
  /** Called when the CA in the Secret changed (or first appeared): every bundle is compiled again. */
  readonly onCaChanged: () => void;
  /** How often the Secret is looked at (and, in mode self, renewed when due); default one minute. */
  readonly intervalMs?: number;
}

export interface CollectorTls {
  /** The CA(s) that verify the collector, as the Secret holds them now; undefined while it holds none. */
  ca(): Promise<string | undefined>;
  stop(): void;
}

const DEFAULT_INTERVAL_MS = 60_000;
/** What a reader connects to through `kubectl port-forward`; the chart's cert-manager Certificate names them too. */
export const PORT_FORWARD_NAMES = ['localhost', '127.0.0.1'] as const;

/**
 * The collector's serving certificate and the CA the bundles carry to verify it. Mode self: the
 * operator's certificate code (the webhook's) keeps a CA of the collector's own and a certificate for
 * its Service names in the Secret, renewed with a third of its life left; the collector mounts only
 * tls.crt and tls.key and reloads them when they change. Mode cert-manager: cert-manager renews, the
 * operator only reads ca.crt. Secrets are not watched, so a timer looks again and recompiles every
 * bundle when the CA changed: a renewed CA reaches the sidecars with their next bundle.
 */
export function startCollectorTls(options: CollectorTlsOptions): CollectorTls {
  const path = resourcePath('v1', 'secrets', options.namespace, options.secretName);
  const ca = async () => {
    const secret = await options.api.getOptional<{ data?: Record<string, string> }>(path);
    const pem = secret?.data?.[CA_CERT_KEY];
    const text = pem === undefined ? undefined : Buffer.from(pem, 'base64').toString('utf8');
    return text?.includes('-----BEGIN CERTIFICATE-----') ? text : undefined;
  };
  let lastCa: string | undefined;
  let warned = false;
  const refresh = async () => {
    if (options.mode === 'self') {
      const issued = await ensureServingCertificate({
        client: options.client,
        namespace: options.namespace,
        secretName: options.secretName,
        service: options.service,
        extraNames: extraNames(options),
        caName: `gatehouse-collector-ca ${options.namespace}/${options.service}`,
      });
      if (issued.renewed)
        options.logger.info(
          { secret: options.secretName, notAfter: issued.notAfter.toISOString() },
          'collector certificate issued',
        );
    }
    const current = await ca();
    if (current === undefined && !warned) {
      warned = true;
      options.logger.warn(
        { secret: `${options.namespace}/${options.secretName}` },
        "the collector's Secret holds no ca.crt yet: sidecars ship nothing until it does",
      );
    }
    if (current !== lastCa) {
      lastCa = current;
      if (current !== undefined) warned = false;
      options.onCaChanged();
    }
  };
  const run = () =>
    refresh().catch((error: Error) =>
      options.logger.error({ err: error.message }, 'collector certificate refresh failed; trying again'),
    );
  void run();
  const timer = setInterval(run, options.intervalMs ?? DEFAULT_INTERVAL_MS);
  timer.unref();
  return { ca, stop: () => clearInterval(timer) };
}

/**
 * `SERVICE`, `SERVICE.NAMESPACE`, the URL's host, and the loopback names of a `kubectl port-forward`
 * (a reader verifies the collector there with --ca), beside the `.svc` names the certificate code adds.
 */
function extraNames(options: CollectorTlsOptions): string[] {
  const svc = `${options.service}.${options.namespace}.svc`;
  const host = new URL(options.url).hostname.replace(/^\[|\]$/g, '');
  const names = [options.service, `${options.service}.${options.namespace}`, host, ...PORT_FORWARD_NAMES];
  return [...new Set(names)].filter((name) => name !== svc && name !== `${svc}.cluster.local`);
}
