import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { freshStoreUrl } from '../../../operator/src/collector/test-store.ts';
import { type CollectorProcess, startCollectorProcess } from './collector-process.ts';
import { COLLECTOR_TLS_SECRET, OPERATOR_NAMESPACE, type OperatorCluster } from './operator-cluster.ts';

/** The chart's collector as the operator makes it: its certificate, the CA that verifies it, the process. */
export interface ChartCollector {
  readonly process: CollectorProcess;
  /** PEM of the Secret's ca.crt (what the bundles carry) and tls.crt (what the collector serves). */
  readonly ca: string;
  readonly certificate: string;
}

/**
 * Waits for the operator to issue the collector's certificate into its Secret, then runs the
 * collector as the chart does: TLS from that Secret's tls.crt and tls.key, pods authenticated by
 * TokenReview (audience gatehouse.dev) against the test's API server, and `readers` as local users.
 */
export async function startChartCollector(
  env: OperatorCluster,
  port: number,
  options: {
    readonly storeDatabase: string;
    readonly readers: readonly { name: string; password: string }[];
  },
): Promise<ChartCollector> {
  const secret = await env.eventually('the collector certificate issued', async () => {
    const s = await env.api.getOptional<{ data?: Record<string, string> }>(
      `/api/v1/namespaces/${OPERATOR_NAMESPACE}/secrets/${COLLECTOR_TLS_SECRET}`,
    );
    return s?.data?.['tls.crt'] && s.data['ca.crt'] ? s : undefined;
  });
  const decoded = (key: string) => Buffer.from(secret.data![key]!, 'base64').toString('utf8');
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-chart-collector-'));
  writeFileSync(join(dir, 'tls.crt'), decoded('tls.crt'));
  writeFileSync(join(dir, 'tls.key'), decoded('tls.key'), { mode: 0o600 });
  writeFileSync(
    join(dir, 'collector.yaml'),
    stringify({
      store: { url: await freshStoreUrl(options.storeDatabase) },
      tls: { certFile: 'tls.crt', keyFile: 'tls.key' },
      auth: {
        tokenReview: { audiences: ['gatehouse.dev'] },
        localUsers: options.readers,
        readers: options.readers.map((reader) => `local:${reader.name}`),
      },
      console: { enabled: false },
    }),
  );
  const started = await startCollectorProcess(join(dir, 'collector.yaml'), port, {
    ...process.env,
    KUBECONFIG: env.cluster.kubeconfigPath,
  });
  return { process: started, ca: decoded('ca.crt'), certificate: decoded('tls.crt') };
}
