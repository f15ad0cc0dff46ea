import type { Logger } from 'pino';
import { type CollectorConfig, DEFAULT_CONSOLE } from '../../../operator/src/collector/collector-config.ts';
import { startCollector } from '../../../operator/src/collector/start-collector.ts';
import type { ProxyConfig } from '../config/load.ts';

export interface QuickstartCollector {
  readonly url: string;
  readonly consoleUrl: string | undefined;
  readonly storeDir: string;
  /** The local user the banner names for `gatehouse audit query`, if the config has one. */
  readonly reader: string | undefined;
  close(): Promise<void>;
}

/** The cluster name the quickstart proxy ships under. */
export const QUICKSTART_CLUSTER = 'quickstart';

/** The group whose local users may read the quickstart's audit (the approvers: `lead`). */
const READER_GROUP = 'approvers';

/**
 * The audit collector `npm start` runs beside its proxy: its store in an embedded PGlite kept beside
 * the sample database, the proxy's shipper its only writer (a token made for this run), and the
 * quickstart's approvers its readers. Other local users (demo, admin) cannot read what everyone ran.
 */
export async function startQuickstartCollector(options: {
  readonly storeDir: string;
  readonly listen: { readonly host: string; readonly port: number };
  readonly shipperToken: string;
  /** The proxy's admin endpoint, whose approvals API decides what the console's approvers approve. */
  readonly approvalsUrl: string | undefined;
  readonly config: ProxyConfig;
  readonly logger: Logger;
}): Promise<QuickstartCollector> {
  const identity = options.config.identity;
  const users = identity.mode === 'local' ? (identity.local?.users ?? []) : [];
  const readers = users
    .filter((user) => user.groups?.includes(READER_GROUP))
    .map((user) => ({ name: user.name, password: user.password, groups: [...(user.groups ?? [])] }));
  const config: CollectorConfig = {
    listen: options.listen,
    storeUrl: `pglite:${options.storeDir}`,
    poolSize: 1,
    retentionDays: 30,
    shipperTokens: [options.shipperToken],
    tokenReview: undefined,
    readers: [],
    localUsers: readers,
    tls: undefined,
    // lead (group approvers) views and approves; the proxy still checks each decision as lead's.
    console: {
      ...DEFAULT_CONSOLE,
      approvers: [{ group: READER_GROUP }],
      approvals: options.approvalsUrl
        ? { url: options.approvalsUrl, cluster: QUICKSTART_CLUSTER }
        : undefined,
    },
  };
  const running = await startCollector(config, { logger: options.logger.child({ component: 'collector' }) });
  return {
    url: running.url,
    consoleUrl: running.consoleUrl,
    storeDir: options.storeDir,
    reader: readers[0]?.name,
    close: () => running.close(),
  };
}
