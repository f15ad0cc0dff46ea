import { readFileSync } from 'node:fs';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import type { Logger } from 'pino';
import { isLoopback } from '../../../sidecar/src/approvals/serve-approvals.ts';
import { HttpAuditSink } from '../../../sidecar/src/audit/http-sink.ts';
import { packageVersion } from '../../../sidecar/src/cli/version.ts';
import { UserError } from '../../../sidecar/src/errors.ts';
import { createLocalAuthenticator } from '../../../sidecar/src/identity/local-authenticator.ts';
import { collectorApi } from './collector-api.ts';
import { collectorAuthenticator, type TokenReviewer } from './collector-auth.ts';
import type { CollectorConfig } from './collector-config.ts';
import { createCollectorMetrics } from './collector-metrics.ts';
import { consoleApp } from './console/console-app.ts';
import { OidcSignIn } from './console/console-oidc.ts';
import { ConsoleSessions } from './console/console-sessions.ts';
import { PendingSignIns } from './console/oidc-pending.ts';
import { RecordForwarder } from './forwarder.ts';
import { reloadServingCertificate } from './serving-certificate-reload.ts';
import { CollectorStore } from './store.ts';
import { openDriver } from './store-driver.ts';

export interface RunningCollector {
  readonly url: string;
  /** The web console's address; undefined when `console.enabled` is false. */
  readonly consoleUrl: string | undefined;
  readonly store: CollectorStore;
  close(): Promise<void>;
}

const RETENTION_INTERVAL_MS = 3_600_000;

/** Opens the store (creating its tables), applies retention, and serves the API until closed. */
export async function startCollector(
  config: CollectorConfig,
  options: { logger: Logger; tokenReviewer?: TokenReviewer },
): Promise<RunningCollector> {
  const { logger } = options;
  const store = await openStore(config);
  const retention = async () => {
    const dropped = await store.applyRetention(config.retentionDays);
    if (dropped.length > 0) logger.info({ days: dropped }, 'dropped audit partitions past the retention');
  };
  await retention();
  const timer = setInterval(
    () => void retention().catch((error: Error) => logger.error({ err: error.message }, 'retention failed')),
    RETENTION_INTERVAL_MS,
  );
  timer.unref();

  const localUsers =
    config.localUsers.length > 0
      ? createLocalAuthenticator({ users: config.localUsers }, { logger })
      : undefined;
  const authenticate = collectorAuthenticator({
    shipperTokens: config.shipperTokens,
    readers: config.readers,
    admins: config.admins ?? [],
    ...(options.tokenReviewer && { tokenReviewer: options.tokenReviewer }),
    ...(localUsers && { localUsers }),
  });
  if (!config.tls && !isLoopback(config.listen.host))
    logger.warn(
      { listen: config.listen.host },
      'the collector listens beyond loopback without TLS: tokens and records cross the network in clear; set tls.certFile and tls.keyFile',
    );
  const access = {
    viewers: config.console?.viewers ?? [],
    approvers: config.console?.approvers ?? [],
    readers: config.readers,
  };
  // A copy of everything stored for a SIEM, at least once (forwarder.ts).
  const forwarder =
    config.forward === undefined
      ? undefined
      : new RecordForwarder({
          db: store.db,
          sink: new HttpAuditSink({
            ...config.forward,
            // Backpressure instead of dropping: the store holds what waits, the forwarder reads on.
            maxBufferedRecords: Number.MAX_SAFE_INTEGER,
            logger: logger.child({ component: 'forward-http' }),
            productVersion: packageVersion(),
          }),
          name: 'http',
          batchRecords: config.forward.batchRecords,
          logger: logger.child({ component: 'forward' }),
        });
  forwarder?.start();
  const app = collectorApi({
    store,
    authenticate,
    logger: logger.child({ component: 'collector-api' }),
    metrics: createCollectorMetrics(store),
    ...(config.console && {
      console: consoleApp({
        store,
        logger: logger.child({ component: 'console' }),
        approvals: config.console.approvals,
        kubeApprovals: config.console.kubeApprovals,
        sessions: new ConsoleSessions(store.db, { ttlMs: config.console.sessionHours * 3_600_000 }),
        access,
        localUsers,
        tokenReviewer: options.tokenReviewer,
        oidc:
          config.console.oidc && new OidcSignIn(config.console.oidc, access, new PendingSignIns(store.db)),
      }),
    }),
  });
  const server = await new Promise<ReturnType<typeof serve>>((resolveListen, reject) => {
    const s = serve(
      {
        fetch: app.fetch,
        hostname: config.listen.host,
        port: config.listen.port,
        ...(config.tls && {
          createServer: createHttpsServer,
          serverOptions: { cert: readFileSync(config.tls.certFile), key: readFileSync(config.tls.keyFile) },
        }),
      },
      () => resolveListen(s),
    );
    s.once('error', reject);
  });
  const stopReload =
    config.tls &&
    reloadServingCertificate(server as HttpsServer, config.tls, logger.child({ component: 'tls' }));
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `${config.tls ? 'https' : 'http'}://${host}:${address.port}`;
  return {
    url,
    consoleUrl: config.console ? `${url}/console` : undefined,
    store,
    async close() {
      clearInterval(timer);
      stopReload?.();
      await forwarder?.stop();
      await new Promise<void>((done) => server.close(() => done()));
      localUsers?.close();
      await store.close();
    },
  };
}

/** The store, or a one-line reason it cannot be opened (the URL is not repeated: it may hold a password). */
async function openStore(config: CollectorConfig): Promise<CollectorStore> {
  const driver = await openDriver(config.storeUrl, config.poolSize);
  try {
    return await CollectorStore.open(driver);
  } catch (error) {
    await driver.close().catch(() => {});
    throw new UserError(`cannot open the collector's store: ${(error as Error).message}`);
  }
}
