import type { Identity } from '../identity/identity.ts';

/** Who and where, shared by every record of one client session. */
export interface SessionContext {
  /** Unique per client connection, e.g. a ULID or random hex. */
  readonly session: string;
  readonly identity: Identity;
  readonly client: { readonly address: string; readonly port: number };
  readonly database: string;
  readonly protocol: 'postgres' | 'mysql';
  /**
   * What the client says it is (PostgreSQL's `application_name` startup parameter, MySQL's
   * `program_name` connection attribute), as it said it:
   * self-declared, so it tells tools apart (`gatehouse-mcp/query`), never who is connected.
   */
  readonly application?: string;
  /**
   * What the session is for and the run it belongs to (`gatehouse.purpose`, `gatehouse.run_id`: a
   * startup parameter, a MySQL connection attribute, or PostgreSQL's `SET gatehouse.purpose`),
   * declared by the workload, cleaned like `application`. A SET makes a new context for the session.
   */
  readonly purpose?: string;
  readonly runId?: string;
  /**
   * The MCP tool whose call this session is, set by the proxy, not declared: present only on a
   * connection its own MCP server handed it in process (protocol/in-process-channel.ts), where it
   * knows the tool for certain. A client's `application` that names a tool never sets it.
   */
  readonly mcpTool?: string;
}

/**
 * What one statement touched, from the analysis and lineage its policy already made: the tables it
 * read and wrote, and the source columns of its output with how this identity saw each (`clear`, or
 * the masking method). Absent where the policy did not analyse the statement.
 */
export interface StatementTouched {
  readonly tablesRead?: readonly string[];
  readonly tablesWritten?: readonly string[];
  /** `schema.table.column` -> `clear` or the masking method (`redact`, `hash`...). */
  readonly columns?: Readonly<Record<string, string>>;
}

export interface ConnectionStartEvent {
  readonly type: 'connection.start';
  readonly context: SessionContext;
  readonly tls: boolean;
}

export interface ConnectionEndEvent {
  readonly type: 'connection.end';
  readonly context: SessionContext;
  readonly durationMs: number;
  readonly statements: number;
  /** Why the session ended: 'client' (Terminate or close), 'upstream', 'shutdown', 'protocol-error', 'audit-failure'. */
  readonly reason: string;
}

/** A client that failed authentication never gets a SessionContext; it is still recorded. */
export interface ConnectionRefusedEvent {
  readonly type: 'connection.refused';
  readonly client: { readonly address: string; readonly port: number };
  readonly protocol: 'postgres' | 'mysql';
  /** As SessionContext's: the MCP tool whose call was refused, when the proxy knows it. */
  readonly mcpTool?: string;
  readonly user: string;
  readonly database: string;
  /** The SQLSTATE the client was sent (MySQL's own for MySQL clients). */
  readonly sqlstate: string;
  /** MySQL only: the error number the client was sent (1045, 1044...). */
  readonly errno?: number;
  readonly reason: string;
}

export interface StatementEvent {
  readonly type: 'statement';
  readonly context: SessionContext;
  /** Normalised text: literals replaced by $n placeholders; null when the statement could not be parsed. */
  readonly statement: string | null;
  readonly fingerprint: string | null;
  /** 'simple' (Query message), 'extended' (Parse/Bind/Execute), 'text' / 'prepared' for MySQL. */
  readonly via: 'simple' | 'extended' | 'text' | 'prepared';
  readonly outcome: 'ok' | 'error' | 'refused';
  /** Command tag without the row count, e.g. 'SELECT', 'INSERT'. */
  readonly command?: string;
  /** Rows returned or affected. */
  readonly rows?: number;
  /**
   * Under a row limit (Guardrail maxAffectedRows...): the rows the statement's transaction had updated
   * or deleted once it ran, as the database counted them.
   */
  readonly rowsChanged?: number;
  readonly durationMs: number;
  readonly sqlstate?: string;
  /** Why a statement was refused (guardrail name, audit failure, ...). */
  readonly reason?: string;
  /** Output columns masked, each with its sources, why they are sensitive and the method. */
  readonly masked?: readonly string[];
  /** The approval request that released it, when a requireApproval rule held it. */
  readonly approval?: string;
  /** Approved access requests (`gatehouse request-access`) under which it returned clear values. */
  readonly exemptions?: readonly string[];
  readonly touched?: StatementTouched;
}

/**
 * A step of an approval request (docs/approvals.md): asked, decided, used, or ended unused. The
 * statement appears as its shape (literals as placeholders), as in statement records.
 */
export interface ApprovalAuditEvent {
  readonly type: 'approval';
  readonly event: 'requested' | 'approved' | 'denied' | 'expired' | 'executed' | 'withdrawn';
  readonly request: string;
  /** The requester. */
  readonly subject: string;
  readonly database: string;
  readonly statement: string | null;
  readonly fingerprint: string | null;
  readonly parametersHash: string;
  /** The rules that held it, `guardrail/rule`. */
  readonly rules: readonly string[];
  /** Who decided: a subject, or `gatehouse:auto-approve`. */
  readonly by?: string;
  readonly reason?: string;
  /** The auto-approval condition(s) that decided. */
  readonly condition?: string;
  /** When an approval of the statement's shape ends (ISO 8601). */
  readonly shapeUntil?: string;
  /** An access request: the columns it asks to see in clear, and for how long. */
  readonly columns?: readonly string[];
  readonly forSeconds?: number;
  /** An approved access request: when its exemption ends (ISO 8601). */
  readonly until?: string;
  /** An access request: the requester's token issuer, null for a local user (the exemption is bound to it). */
  readonly issuer?: string | null;
}

/**
 * A statement about to be sent to the database: written before it is sent, so that no statement runs
 * without a record (its outcome follows in a `statement` record once the database answers).
 */
export interface StatementStartEvent {
  readonly type: 'statement.start';
  readonly context: SessionContext;
  readonly via: StatementEvent['via'];
  readonly statement: string | null;
  readonly fingerprint: string | null;
}

/**
 * A policy put in force at a proxy: at start (`loaded`) and at each accepted reload (`reloaded`), a
 * file edit or an operator bundle update alike (docs/compliance.md).
 */
export interface PolicyChangeEvent {
  readonly type: 'policy.change';
  readonly event: 'loaded' | 'reloaded';
  /** The config file it was read from. */
  readonly file: string;
  /**
   * Who made the change: `policy.changedBy` of the config when its writer sets it; otherwise, in a
   * cluster, the users the operator's webhook stamped on the documents added or changed (comma-separated).
   */
  readonly changedBy?: string;
  /** Per document added or changed (`Kind namespace/name`), the user the operator's webhook stamped. */
  readonly changedByDocument?: Readonly<Record<string, string>>;
  /** sha256 of the policy documents in force before (undefined at start) and after (undefined: none). */
  readonly before?: string;
  readonly after?: string;
  /** Policy documents by `Kind name`. */
  readonly added: readonly string[];
  readonly removed: readonly string[];
  readonly changed: readonly string[];
  /** Rules by `Kind name/rule`: added, removed, or changed. */
  readonly rules: {
    readonly added: readonly string[];
    readonly removed: readonly string[];
    readonly changed: readonly string[];
  };
  /** Other fields of changed documents that differ, as `Kind name: spec.field`. */
  readonly fields: readonly string[];
  /** One readable line: `added Guardrail strict; changed Guardrail defaults (rule destructive)`. */
  readonly summary: string;
}

export type AuditEvent =
  | ConnectionStartEvent
  | ConnectionEndEvent
  | ConnectionRefusedEvent
  | StatementStartEvent
  | StatementEvent
  | ApprovalAuditEvent
  | PolicyChangeEvent;

/** Where the proxy sends its audit events. Implementations must not block the caller. */
export interface AuditSink {
  record(event: AuditEvent): void;
  /**
   * Records an event that must be in the log before what it tells of happens: true once the writer
   * has written it (a Promise until then), false when it was lost. True at once when there is no file
   * to wait for.
   */
  recordBefore(event: AuditEvent): Promise<boolean> | boolean;
  /** False once a write failed; the proxy then refuses statements when failing closed. */
  readonly healthy: boolean;
  /** Human-readable cause of the last failure (no secrets). */
  readonly failure: string | undefined;
  /** Flushes, writes a final signed checkpoint (seal) and closes. */
  close(): Promise<void>;
}
