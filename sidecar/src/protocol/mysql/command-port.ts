import type { HeldStatement } from '../../approvals/hold.ts';
import type { AuditSink } from '../../audit/events.ts';
import type { ProxyConfig } from '../../config/load.ts';
import type { SessionMasking } from '../../policy/masking/mysql-session-masking.ts';
import type { PolicySource } from '../../policy/sources.ts';
import type { QueryText } from '../../sql/normalize.ts';
import type { MysqlCodeCatalogCache } from './code-catalog-cache.ts';
import type { HOLD_COMMAND } from './command-framer.ts';
import type { BoundExecution } from './command-holds.ts';
import type { SessionRegistry } from './kill.ts';
import type { Measurement, Pending, Refusal, RowsToMeasure } from './pending.ts';
import type { ResponseShape } from './response-tracker.ts';
import type { RowCounting } from './row-counting.ts';

/** What governing commands asks of the session. */
export interface CommandPort {
  /** The server status flags as the last answer left them. */
  status(): number;
  /**
   * The held statement with its impact measured, or HOLD_COMMAND while it is measured (command-holds.ts);
   * `bound` for an execution of a prepared statement, measured with its parameters.
   */
  measureHeld(sql: string, held: HeldStatement, bound?: BoundExecution): HeldStatement | typeof HOLD_COMMAND;
  /** The command being judged is judged again, against a catalog reloaded for it. */
  catalogRefreshed(): boolean;
  /** The masking in force now (policy reloads apply to the next command). */
  masking(): SessionMasking | undefined;
  /** Queues the answer the server owes to the command. */
  expect(shape: ResponseShape, entry: Omit<Pending, 'tracker' | 'index'>): void;
  /** Answers the command with an error of the proxy's own, in order with the answers owed. */
  refuse(
    refusal: Refusal,
    texts: readonly QueryText[],
    via: 'text' | 'prepared',
    seq: number,
    started: number,
  ): void;
  /** `frame`, held until the audit records of `texts` are written. */
  holdForAudit(
    frame: Buffer,
    via: 'text' | 'prepared',
    texts: readonly QueryText[],
    seq: number,
    started: number,
  ): Buffer;
  /** The command between the proxy's own commands that count its rows, held for its audit record. */
  sendMeasured(
    m: Measurement,
    around: { prefix: Buffer; suffix: Buffer },
    frame: Buffer,
    via: 'text' | 'prepared',
    texts: readonly QueryText[],
    seq: number,
    started: number,
  ): Buffer;
  /** How a statement under row limits runs (RowCounting.plan). */
  planRows(rows: RowsToMeasure): ReturnType<RowCounting['plan']>;
  /** Stops reading the client's commands until the session resumes them. */
  hold(): typeof HOLD_COMMAND;
  /** The client said COM_QUIT. */
  quit(): void;
}

export interface CommandDeps {
  readonly config: ProxyConfig;
  readonly audit: AuditSink;
  readonly policy: PolicySource;
  readonly code: MysqlCodeCatalogCache;
  readonly sessions: SessionRegistry;
}
