import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import { hostname } from 'node:os';
import { type Logger, pino } from 'pino';
import { startAdminServer } from './admin/admin-server.ts';
import { openOnRefusal } from './approvals/access-request.ts';
import { approvalAuditEvent, shapeGrantAuditEvent } from './approvals/approval-audit.ts';
import { ApprovalBook } from './approvals/approval-book.ts';
import { restoreApprovalsFromLog, sizeBeforeOpen } from './approvals/approval-log-restore.ts';
import type { ApprovalRequest } from './approvals/approval-request.ts';
import { ShapeRegistry } from './approvals/learned-shapes.ts';
import { announceRequests } from './approvals/notify-delivery.ts';
import { approvalsHandler } from './approvals/serve-approvals.ts';
import { HttpAuditSink } from './audit/http-sink.ts';
import { openAuditLog } from './audit/log.ts';
import { packageVersion } from './cli/version.ts';
import { watchFileContent } from './config/file-watch.ts';
import type { ProxyConfig } from './config/load.ts';
import { UserError } from './errors.ts';
import { limitHeapGrowth } from './heap-growth.ts';
import { createAuthenticator } from './identity/create-authenticator.ts';
import {
  createMetrics,
  type ProxyMetrics,
  registerAuditHttpMetrics,
  registerAuditMetrics,
} from './metrics.ts';
import type { PolicyHooks } from './policy/gates/policy-hooks.ts';
import { RowBudget } from './policy/guardrails/row-limits.ts';
import { loadPolicyDocuments } from './policy/load-policy.ts';
import { createMaskingKey } from './policy/masking/masking-key.ts';
import { toolsFor } from './policy/mcp-tools.ts';
import { policyChangeEvent } from './policy/policy-diff.ts';
import { describePolicyChange, reloadPolicy } from './policy/policy-reload.ts';
import { prettyDestination } from './pretty-log.ts';
import type { InProcessProxy } from './protocol/in-process-channel.ts';
import { probeUpstream } from './protocol/probe-upstream.ts';
import { createProtocolServer } from './proxy-servers.ts';
import { readyLine } from './ready-line.ts';
import { loadSqlParser } from './sql/normalize.ts';
import { wasmTieringWarning } from './sql/wasm-tiering.ts';
import type { AutoClientTls } from './tls/client-tls-auto.ts';

export interface RunningProxy {
  readonly address: { host: string; port: number };
  /** With `clientTls: auto`: the CA file clients verify the proxy's certificate with. */
  readonly clientTlsCaFile?: string;
  readonly adminAddress?: { host: string; port: number };
  /** With `mcp`: the MCP endpoint's URL (`http://127.0.0.1:PORT/mcp`). */
  readonly mcpUrl?: string;
  /** Connections handed to the sessions in process, for an MCP server in this process (`gatehouse mcp --config`). */
  readonly inProcess: InProcessProxy;
  readonly metrics: ProxyMetrics;
  /** Graceful stop: no new connections, sessions finish within the grace period, audit log sealed. */
  close(graceMs?: number): Promise<void>;
}

/** `json`: one record a line on stdout, for collectors; `pretty`: one readable line a record, for a terminal. */
export type LogFormat = 'json' | 'pretty';

export function createLogger(level: ProxyConfig['logLevel'], format: LogFormat = 'json'): Logger {
  const options = { level, base: { service: 'gatehouse' }, timestamp: pino.stdTimeFunctions.isoTime };
  return format === 'pretty'
    ? pino(options, prettyDestination(process.stdout, { colors: process.stdout.isTTY === true }))
    : pino(options);
}

/** Starts the proxy described by `config`; resolves once it listens. */
export async function startProxy(
  settings: ProxyConfig,
  options: {
    logger?: Logger;
    /** Log the ready line even when the log level hides `info` (the CLI does: a person waits for it). */
    announceReady?: boolean;
  } = {},
): Promise<RunningProxy> {
  const logger = options.logger ?? createLogger(settings.logLevel);
  limitHeapGrowth();
  // Policy first: a typo in it is the whole answer, not one line among the start-up logs.
  let policy =
    settings.policyDocuments.length > 0
      ? loadPolicyDocuments(settings.policyDocuments, settings.source, settings.policyDocumentNumbers)
      : undefined;
  const { config, caFile } = await withAutoClientTls(settings, logger);
  await loadSqlParser();
  const metrics = createMetrics();
  const authenticator = await createAuthenticator(config.identity, { logger });
  // A copy for a SIEM, fed each record once the file has it (docs/compliance.md).
  const httpSink =
    config.audit.http === undefined
      ? undefined
      : new HttpAuditSink({
          ...config.audit.http,
          logger: logger.child({ component: 'audit-http' }),
          productVersion: packageVersion(),
          source: config.audit.file,
        });
  // What the file held before this run: approvals are restored from that part only.
  const auditBefore = await sizeBeforeOpen(config.audit.file);
  const audit = await openAuditLog({
    ...(httpSink && { onWritten: (line: string) => httpSink.push(line) }),
    ...(config.audit.file !== undefined && { file: config.audit.file }),
    stdout: config.audit.stdout,
    ...(config.audit.signingKeyFile !== undefined && { signingKeyFile: config.audit.signingKeyFile }),
    ...(config.audit.previousSigningKeyFile !== undefined && {
      previousSigningKeyFile: config.audit.previousSigningKeyFile,
    }),
    syncEachWrite: config.audit.syncEachWrite,
    checkpointEveryRecords: config.audit.checkpointEveryRecords,
    checkpointIntervalMs: config.audit.checkpointIntervalMs,
    logger,
  }).catch((error: unknown) => {
    // Refused (another process writes the file): nothing may keep this process alive.
    authenticator.close();
    throw error;
  });
  registerAuditMetrics(metrics.registry, audit);
  if (httpSink) registerAuditHttpMetrics(metrics.registry, httpSink);
  const closeAudit = async () => {
    await audit.close();
    await httpSink?.close();
  };

  let policyDocuments = config.policyDocuments;
  // The policy in force from the start is evidence too: which bundle, by digest, and who made it.
  audit.record(policyChangeEvent(undefined, policyDocuments, config.source, config.policyChangedBy));
  if (!policy && !config.policyNone)
    logger.warn(
      'no policy documents in the config: statements are audited, not checked against guardrails (policy.none: true says this is intended)',
    );
  // Logged at warn: a policy change matters to whoever watches the proxy, and the quickstart shows warn.
  const stopWatching = watchFileContent(config.source, (text) => {
    const reload = reloadPolicy(policyDocuments, text, config.source);
    if (!reload.accepted) {
      const [first, ...more] = reload.reason.split('\n');
      logger.error(
        { file: config.source, ...(more.length > 0 && { problems: [first, ...more] }) },
        `policy reload refused, the previous policy stays in force: ${first}`,
      );
      return;
    }
    const change = policyChangeEvent(policyDocuments, reload.documents, config.source, reload.changedBy);
    // A save that changed only proxy settings (or nothing) changes no policy: no record.
    if (change.before !== change.after) audit.record(change);
    policy = reload.policy;
    policyDocuments = reload.documents;
    logger.warn(
      { file: config.source, documents: reload.documents.length, ...reload.change },
      `policy reloaded from ${config.source}: ${describePolicyChange(reload.change)} (other settings apply at the next start)`,
    );
  });

  if (!config.masking.key)
    logger.warn(
      'masking.key is not set: hash and tokenize use a random key, so their values change at every start',
    );
  const maskingKey = createMaskingKey(config.masking.key ?? randomBytes(32));
  // Shared by every session, so that maxAffectedRowsPerMinute holds across an identity's connections.
  const rowBudget = new RowBudget();
  // Held statements wait here for their decisions (see docs/approvals.md).
  const approvalBook = new ApprovalBook(config.approvals ? { decideCommand: kubectlDecideCommand } : {});
  const approvalsLogger = logger.child({ component: 'approvals' });
  approvalBook.onChange(
    announceRequests(approvalsLogger, {
      count: (type, outcome) => metrics.approvalNotificationsTotal.inc({ type, outcome }),
      // In a cluster the operator sends the targets whose URL is in a Secret: it can read them.
      ...(config.approvals && { targets: 'url' as const }),
    }),
  );
  approvalBook.onChange((change) => audit.record(approvalAuditEvent(change)));
  const shapes = new ShapeRegistry(approvalBook, {
    onGrant: (grant) => audit.record(shapeGrantAuditEvent(grant)),
  });
  // A standalone proxy decides approvals itself; its log is their memory across restarts.
  if (config.audit.file !== undefined && !config.approvals)
    await restoreApprovalsFromLog(
      approvalBook,
      shapes,
      {
        file: config.audit.file,
        before: auditBefore,
        keyFiles: [config.audit.signingKeyFile, config.audit.previousSigningKeyFile],
      },
      approvalsLogger,
    );
  // In a cluster, people decide through ApprovalRequest objects the operator writes (docs/approvals.md).
  const operatorSync =
    config.approvals &&
    (await syncWithOperator(approvalBook, config.approvals.operator, config.upstream.database, logger));
  const guardrailsLogger = logger.child({ component: 'guardrails' });
  const policyHooks: PolicyHooks = {
    shapes,
    maskingRefused: (identity, database, columns) =>
      openOnRefusal(approvalBook, policy, identity, database, columns)?.id,
    dryRun: (hits, identity) =>
      guardrailsLogger.info(
        { subject: identity.subject, rules: hits.map((h) => `${h.guardrail}/${h.rule}`) },
        `dry run: ${hits.map((h) => `${h.guardrail}/${h.rule} would ${h.action}`).join(', ')}`,
      ),
  };

  const server = await createProtocolServer({
    config,
    authenticator,
    audit,
    logger,
    metrics,
    policy: () => policy,
    maskingKey,
    rowBudget,
    approvals: approvalBook,
    policyHooks,
  });
  const inProcess: InProcessProxy = {
    protocol: config.upstream.protocol,
    connect: (tool) => server.connectInProcess({ mcpTool: tool }),
    toolsFor: async (login) => {
      try {
        const identity = await authenticator.authenticate(login);
        return toolsFor(identity, policy, config.upstream.database);
      } catch {
        return undefined;
      }
    },
  };
  let address: { host: string; port: number };
  try {
    const bound = await server.listen(config.listen.host, config.listen.port);
    address = { host: bound.address, port: bound.port };
  } catch (error) {
    stopWatching();
    authenticator.close();
    await closeAudit();
    throw new UserError(
      `cannot listen on ${config.listen.host}:${config.listen.port}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
    );
  }

  let draining = false;
  let admin: { server: Server; address: { host: string; port: number } } | undefined;
  if (config.admin) {
    try {
      const approvals = await approvalsHandler(
        config.admin.host,
        authenticator,
        approvalBook,
        logger,
        shapes,
        () => policy,
      );
      const started = await startAdminServer(config.admin.host, config.admin.port, metrics.registry, {
        notReadyReason: () =>
          draining ? 'shutting down' : audit.healthy ? undefined : `audit log unavailable: ${audit.failure}`,
        ...(approvals && { approvals }),
      });
      admin = {
        server: started.server,
        address: { host: started.address.address, port: started.address.port },
      };
    } catch (error) {
      await server.shutdown(0);
      stopWatching();
      authenticator.close();
      await closeAudit();
      throw new UserError(
        `cannot listen on ${config.admin.host}:${config.admin.port} (admin): ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
      );
    }
  }
  let mcp: { server: Server; url: string } | undefined;
  if (config.mcp) {
    try {
      const { serveMcpInProxy } = await import('./mcp/serve-in-proxy.ts');
      mcp = await serveMcpInProxy(config.mcp, inProcess, logger);
    } catch (error) {
      await server.shutdown(0);
      stopWatching();
      authenticator.close();
      await closeAudit();
      if (admin) await new Promise((resolve) => admin!.server.close(resolve));
      throw error;
    }
  }
  const tiering = wasmTieringWarning();
  if (tiering) logger.warn(tiering);
  const announcer =
    options.announceReady && !logger.isLevelEnabled('info') ? logger.child({}, { level: 'info' }) : logger;
  announcer.info(
    {
      listen: `${address.host}:${address.port}`,
      protocol: config.upstream.protocol,
      upstream: `${config.upstream.host}:${config.upstream.port}/${config.upstream.database}`,
      identity: config.identity.mode,
      audit: config.audit.file ?? '(stdout only)',
      ...(admin && { admin: `${admin.address.host}:${admin.address.port}` }),
      ...(mcp && { mcp: mcp.url }),
      ...(caFile !== undefined && { clientTlsCa: caFile }),
    },
    readyLine(config, policy, address, admin?.address),
  );

  void reportUpstream(config, logger);
  const shipper = await startAuditShipper(config, logger);

  let closing: Promise<void> | undefined;
  return {
    address,
    ...(caFile !== undefined && { clientTlsCaFile: caFile }),
    ...(admin && { adminAddress: admin.address }),
    ...(mcp && { mcpUrl: mcp.url }),
    inProcess,
    metrics,
    close(graceMs = config.limits.shutdownGraceMs) {
      closing ??= (async () => {
        draining = true;
        logger.info(
          { graceMs, sessions: server.sessionCount },
          'shutting down: no new connections, sessions finishing',
        );
        stopWatching();
        operatorSync?.stop();
        // No new tool calls; those running are sessions of the proxy, and finish as sessions do.
        mcp?.server.close();
        await server.shutdown(graceMs);
        server.close();
        authenticator.close();
        await closeAudit();
        // After the seal, so the collector gets the log's last checkpoint too when it is reachable.
        await shipper?.stop();
        if (admin) await new Promise((resolve) => admin!.server.close(resolve));
        logger.info('gatehouse proxy stopped');
      })();
      return closing;
    },
  };
}

/** How long a sidecar's start waits for the operator to restore earlier approvals before it serves. */
const RESTORE_WAIT_MS = 5_000;

/** In a cluster the request is an ApprovalRequest in the namespace of the rules (the sidecar's). */
function kubectlDecideCommand(request: Pick<ApprovalRequest, 'id' | 'rules'>): string {
  const namespace = request.rules[0]?.namespace;
  return `kubectl gatehouse approve ${request.id}${namespace ? ` -n ${namespace}` : ''}`;
}

/** Loaded only here: a standalone proxy does not carry the operator client. */
async function syncWithOperator(
  book: ApprovalBook,
  operator: NonNullable<ProxyConfig['approvals']>['operator'],
  database: string,
  logger: Logger,
): Promise<{ stop(): void }> {
  const [{ OperatorClient }, { OperatorSync }, { restoreFromOperator }] = await Promise.all([
    import('./approvals/operator-client.ts'),
    import('./approvals/operator-sync.ts'),
    import('./approvals/operator-restore.ts'),
  ]);
  logger.info({ operator: operator.url }, 'approvals are decided through the operator');
  const approvalsLogger = logger.child({ component: 'approvals' });
  const client = new OperatorClient(operator);
  // What people approved before this start stands again; the first sessions wait a little for it.
  const stopped = new AbortController();
  const restoring = restoreFromOperator(book, client, database, approvalsLogger, stopped.signal);
  await Promise.race([restoring, new Promise((resolve) => setTimeout(resolve, RESTORE_WAIT_MS).unref())]);
  const sync = new OperatorSync(book, client, approvalsLogger);
  return {
    stop: () => {
      stopped.abort();
      sync.stop();
    },
  };
}

/**
 * `clientTls: auto`: the certificate the proxy serves, made or reused in its directory, and where its
 * CA is. A new CA is a warning: clients that trusted the old one must be given the new file.
 */
async function withAutoClientTls(
  config: ProxyConfig,
  logger: Logger,
): Promise<{ config: ProxyConfig; caFile?: string }> {
  const auto = config.clientTlsAuto;
  if (!auto) return { config };
  // Loaded only here: the X.509 library is not needed by proxies that are given their certificate.
  const { clientTlsNames, ensureAutoClientTls } = await import('./tls/client-tls-auto.ts');
  const names = clientTlsNames(config.listen.host, auto.names);
  let tls: AutoClientTls;
  try {
    tls = await ensureAutoClientTls(auto.dir, names);
  } catch (error) {
    throw new UserError(
      `clientTls: auto cannot keep its certificate in ${auto.dir}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
    );
  }
  const fields = { caFile: tls.caFile, names };
  if (tls.made === 'ca')
    logger.warn(fields, 'client TLS: made a new CA; clients verify the proxy with this CA file');
  else
    logger.info(
      fields,
      `client TLS: ${tls.made === 'certificate' ? 'issued a new' : 'reusing the'} certificate`,
    );
  return {
    config: {
      ...config,
      clientTls: { cert: Buffer.from(tls.cert), key: Buffer.from(tls.key), required: auto.required },
    },
    caFile: tls.caFile,
  };
}

/**
 * Says at start, in one line, when the database cannot be reached or refuses the proxy's login
 * (wrong user or password, no such database): the proxy keeps running (in a pod the database may
 * come up or be fixed later) and refuses clients until it can log in.
 */
async function reportUpstream(config: ProxyConfig, logger: Logger): Promise<void> {
  const probe = await probeUpstream(config.upstream);
  if (probe.ok) return;
  const { host, port, database, user } = config.upstream;
  logger.error(
    { upstream: `${host}:${port}/${database}`, user, reason: probe.reason },
    probe.unreachable
      ? 'the database is not reachable: clients are refused until it is'
      : "the database refused the proxy's login: clients are refused until it accepts it",
  );
}

/** The audit shipper, when `audit.ship` asks for one; loaded only then. */
async function startAuditShipper(config: ProxyConfig, logger: Logger) {
  const ship = config.audit.ship;
  if (!ship || config.audit.file === undefined) return undefined;
  const { startShipper } = await import('./audit/ship.ts');
  return startShipper({
    file: config.audit.file,
    target: {
      url: ship.url,
      ...(ship.tokenFile !== undefined && { tokenFile: ship.tokenFile }),
      ...(ship.token !== undefined && { token: ship.token }),
      ...(ship.caFile !== undefined && { caFile: ship.caFile }),
    },
    source: {
      cluster: ship.cluster ?? 'local',
      namespace: ship.namespace ?? process.env['POD_NAMESPACE'] ?? 'standalone',
      pod: ship.pod ?? process.env['POD_NAME'] ?? hostname(),
      database: config.upstream.database,
    },
    ...(ship.batchRecords !== undefined && { batchRecords: ship.batchRecords }),
    logger,
  });
}
