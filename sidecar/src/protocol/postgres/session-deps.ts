import type { SecureContext } from 'node:tls';
import type { Logger } from 'pino';
import type { ApprovalBook } from '../../approvals/approval-book.ts';
import type { AuditSink } from '../../audit/events.ts';
import type { ProxyConfig } from '../../config/load.ts';
import type { Authenticator } from '../../identity/identity.ts';
import type { SessionMetrics } from '../../metrics.ts';
import type { PolicyHooks } from '../../policy/gates/policy-hooks.ts';
import type { RowBudget } from '../../policy/guardrails/row-limits.ts';
import type { MaskingKey } from '../../policy/masking/masking-key.ts';
import type { PolicySource } from '../../policy/sources.ts';
import type { CancelKeys } from './cancel-keys.ts';
import type { CatalogCache } from './catalog-cache.ts';

/** What a PostgreSQL connection uses of the proxy, from its startup to its end. */
export interface SessionDeps {
  readonly config: ProxyConfig;
  readonly authenticator: Authenticator;
  readonly audit: AuditSink;
  readonly logger: Logger;
  readonly metrics: SessionMetrics;
  readonly cancelKeys: CancelKeys;
  readonly tlsContext: SecureContext | undefined;
  readonly draining: () => boolean;
  /** The guardrail policy in force (undefined: audit only); read per statement so reloads apply at once. */
  readonly policy: PolicySource;
  /** The upstream's catalog for masking (shared by the proxy's sessions). */
  readonly catalog: CatalogCache;
  /** Key behind the hash and tokenize masking methods. */
  readonly maskingKey: MaskingKey;
  /** Rows each identity changed over the last minute, for maxAffectedRowsPerMinute (one per proxy). */
  readonly rowBudget: RowBudget;
  /** Statements held for approval wait here for their decisions (one per proxy). */
  readonly approvals: ApprovalBook;
  /** Approved shapes for unknown-shape rules, and the dryRun log (one per proxy). */
  readonly policyHooks?: PolicyHooks;
}
