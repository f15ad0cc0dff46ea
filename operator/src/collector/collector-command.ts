import { parseCliArgs } from '../../../sidecar/src/cli/parse-cli-args.ts';
import { untilSignal } from '../../../sidecar/src/cli/until-signal.ts';
import { createLogger } from '../../../sidecar/src/proxy.ts';
import { DEFAULT_LISTEN, loadCollectorConfig } from './collector-config.ts';

export const COLLECTOR_USAGE = `usage: gatehouse collector [--config FILE] [options]

Receives the audit records that proxies ship, checks each source's hash chain and signatures as they
arrive, and keeps them in PostgreSQL (or the quickstart's embedded PGlite). Serves the API and a web
console at /console (docs/console.md). See docs/collector.md.

options:
  --config FILE           YAML settings (listen, store, retentionDays, auth, tls, console)
  --listen HOST:PORT      where the API listens (default ${DEFAULT_LISTEN}: loopback only)
  --store URL             postgres://USER:PASSWORD@HOST:PORT/DB, or pglite:DIR, or pglite:memory
  --retention-days N      drop records older than N days (default 90)
  --shipper-token-file F  a token that standalone proxies send to ship records
  -h, --help              show this text`;

export async function runCollectorCommand(argv: string[]): Promise<number> {
  const { values } = parseCliArgs(
    {
      args: argv,
      options: {
        config: { type: 'string' },
        listen: { type: 'string' },
        store: { type: 'string' },
        'retention-days': { type: 'string' },
        'shipper-token-file': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    },
    'collector',
  );
  if (values.help) {
    console.log(COLLECTOR_USAGE);
    return 0;
  }
  const config = loadCollectorConfig(values.config, {
    ...(values.listen !== undefined && { listen: values.listen }),
    ...(values.store !== undefined && { store: values.store }),
    ...(values['retention-days'] !== undefined && { retentionDays: values['retention-days'] }),
    ...(values['shipper-token-file'] !== undefined && { shipperTokenFile: values['shipper-token-file'] }),
  });
  const logger = createLogger('info', process.stdout.isTTY ? 'pretty' : 'json');
  let tokenReviewer: import('./collector-auth.ts').TokenReviewer | undefined;
  if (config.tokenReview) {
    // Loaded only in a cluster: the Kubernetes client is not needed anywhere else.
    const [{ KubeConfig }, { KubeApi }, { kubeTokenReviewer }] = await Promise.all([
      import('@kubernetes/client-node'),
      import('../runtime/kube-api.ts'),
      import('./collector-auth.ts'),
    ]);
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromDefault();
    tokenReviewer = kubeTokenReviewer(new KubeApi(kubeConfig), config.tokenReview.audiences);
  }
  const { startCollector } = await import('./start-collector.ts');
  const collector = await startCollector(config, { logger, ...(tokenReviewer && { tokenReviewer }) });
  logger.info(
    { url: collector.url, console: collector.consoleUrl ?? 'off', retentionDays: config.retentionDays },
    'gatehouse collector listening',
  );
  await untilSignal(logger, () => collector.close());
  return 0;
}
