import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { ApprovalBook } from './approvals/approval-book.ts';
import type { AuditLog } from './audit/log.ts';
import type { ProxyConfig } from './config/load.ts';
import type { Authenticator } from './identity/identity.ts';
import type { ProxyMetrics } from './metrics.ts';
import type { PolicyHooks } from './policy/gates/policy-hooks.ts';
import type { RowBudget } from './policy/guardrails/row-limits.ts';
import type { MaskingKey } from './policy/masking/masking-key.ts';
import type { PolicySource } from './policy/sources.ts';
import type { ConnectionOrigin, InProcessClientStream } from './protocol/in-process-channel.ts';

/** What the proxy needs of either protocol's server. */
export interface ProtocolServer {
  listen(host: string, port: number): Promise<AddressInfo>;
  shutdown(graceMs: number): Promise<void>;
  readonly sessionCount: number;
  /** A connection from this process, run as an accepted client's with `origin` known for certain. */
  connectInProcess(origin: ConnectionOrigin): InProcessClientStream;
  /** Stops the protocol's background work (catalog refreshes). */
  close(): void;
}

export interface ProtocolServerDeps {
  readonly config: ProxyConfig;
  readonly authenticator: Authenticator;
  readonly audit: AuditLog;
  readonly logger: Logger;
  readonly metrics: ProxyMetrics;
  readonly policy: PolicySource;
  readonly maskingKey: MaskingKey;
  readonly rowBudget: RowBudget;
  /** Where statements held for approval wait for their decisions. */
  readonly approvals: ApprovalBook;
  /** Approved shapes for unknown-shape rules, and the dryRun log. */
  readonly policyHooks?: PolicyHooks;
}

/**
 * The server of the upstream's protocol. Each protocol's modules (its sessions, analysers and parser)
 * are loaded here, on demand: a PostgreSQL proxy never holds MySQL's code in memory, nor the reverse.
 */
export async function createProtocolServer(deps: ProtocolServerDeps): Promise<ProtocolServer> {
  if (deps.config.upstream.protocol === 'mysql') {
    const { createMysqlServer } = await import('./proxy-mysql.ts');
    return createMysqlServer(deps);
  }
  const { createPostgresServer } = await import('./proxy-postgres.ts');
  return createPostgresServer(deps);
}
