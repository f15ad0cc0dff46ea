import type { HeldStatement } from '../../approvals/hold.ts';
import type { StatementTouched } from '../../audit/events.ts';
import type { MysqlTextMasking } from '../../policy/gates/mysql-gate.ts';
import type { RowLimit } from '../../policy/guardrails/row-limits.ts';
import type { ResultMask } from '../../policy/masking/mysql-result-masks.ts';
import type { SessionMasking } from '../../policy/masking/mysql-session-masking.ts';
import type { ExemptColumn } from '../../policy/masking/sensitive-columns.ts';
import type { StatementFacts } from '../../sql/analyze/statement-facts.ts';
import type { QueryText } from '../../sql/normalize.ts';
import type { MysqlErrorKind } from './constants.ts';
import type { PreparedOk, ResponseTracker, ResultEnd } from './response-tracker.ts';

/**
 * What the MySQL session remembers between a command and its answer: the entries of its queue of
 * owed answers, the statements it prepared, and the statement under row limits being counted.
 */

/** What the proxy must remember about a command until the server has answered it. */
export interface Pending {
  readonly tracker: ResponseTracker | undefined;
  /** An answer the proxy makes itself (a refusal), sent once everything before it is answered. */
  readonly synthetic?: Buffer;
  /** A command the proxy sent on its own: its answer is dropped. */
  readonly internal?: boolean;
  readonly via?: 'text' | 'prepared';
  readonly texts?: readonly QueryText[];
  index: number;
  started: number;
  readonly command: string;
  readonly notes?: readonly string[];
  /** For COM_STMT_PREPARE: the text the new statement id will stand for. */
  readonly prepares?: PreparedText;
  /** COM_RESET_CONNECTION: the session state is gone once it succeeds. */
  readonly resets?: boolean;
  /** The command changes stored code: the catalog is reloaded once it is answered. */
  readonly changesCode?: boolean;
  /** Set when the session masks: each result's column masks, by result (missing: mask all). */
  readonly masks?: readonly ResultMask[];
  /** The masking in force when the command was judged (its key and value scan). */
  readonly masking?: SessionMasking;
  /** Per result, the masked columns described for the audit record. */
  readonly masked?: readonly (readonly string[])[];
  /** Per result, the access requests that cleared some of its columns, for the audit record. */
  readonly exemptions?: readonly (readonly ExemptColumn[])[];
  /** Per statement, the tables it touches, for its audit record (absent: no policy analysed it). */
  readonly touched?: readonly (StatementTouched | undefined)[];
  /** The command touches masked data: the text of the server's error for it is withheld. */
  readonly withholdsServerText?: boolean;
  /** Client files the server may ask for (LOAD DATA LOCAL the policy allowed), in order. */
  readonly localInfiles?: string[];
  /** The rows are in the binary protocol (COM_STMT_EXECUTE). */
  readonly binary?: boolean;
  /** The client's command runs under row limits: its answer's last packet waits for the count. */
  readonly measure?: Measurement;
  /** An internal command's rows (text protocol, or binary for its COM_STMT_EXECUTE), read as they pass. */
  readonly onRow?: (row: Buffer) => void;
  /** An internal command's column definitions, read as they pass. */
  readonly onDefinition?: (definition: Buffer) => void;
  /** An internal COM_STMT_PREPARE was answered with its statement id. */
  readonly onPrepared?: (prepared: PreparedOk) => void;
  /** An internal command was answered. */
  readonly onDone?: (end: ResultEnd | undefined) => void;
}

/** What a statement under row limits needs: the limits, and its facts with the code it runs. */
export interface RowsToMeasure {
  readonly limits: readonly RowLimit[];
  readonly facts: StatementFacts;
}

/** One statement being measured (see row-counting.ts): from its first internal command to the decision. */
export interface Measurement {
  readonly limits: readonly RowLimit[];
  /** The proxy opened the transaction (the client had none, under autocommit). */
  readonly implicit: boolean;
  readonly what: string;
  /** Rows the client's transaction had changed before this statement, as measured. */
  readonly txBefore: number;
  /** Rows the identity changed in the last minute before this statement. */
  readonly minute: number;
  before?: number;
  after?: number;
  /** One of the proxy's own commands failed: the count cannot be trusted. */
  broken?: boolean;
  /** The client answer's last packet (frame), its end and the text it is recorded under. */
  held?: Buffer;
  heldEnd?: ResultEnd;
  heldText?: QueryText;
  client?: Pending;
  /** The proxy's own commands for it, still owed an answer or not. */
  readonly internals: Pending[];
}

/** What a statement id prepared through the proxy stands for. */
export interface PreparedText {
  readonly text: QueryText;
  readonly notes?: readonly string[];
  /**
   * What its executions' rows hide, when the session masked at prepare: planned then, and planned
   * again at an execution when the catalog or masking in force has changed since (its result is the
   * first; its described columns, exemptions and whether server texts are withheld go with it).
   */
  masking?: MysqlTextMasking;
  /** Its text as the client sent it, kept where masking may have to be planned again. */
  readonly sql?: string;
  /** The tables its statement touches, for the audit record of each execution (replaced with its masking). */
  touched?: StatementTouched | undefined;
  /** Its executions run under row limits. */
  readonly rows?: RowsToMeasure;
  /**
   * A requireApproval rule holds it: it was prepared as if released, and each execution waits for an
   * approval of `sql` with the parameters it binds.
   */
  readonly approval?: { readonly sql: string; readonly held: HeldStatement };
}

/** An answer of the proxy's own in place of the server's: the error and why, for the audit. */
export interface Refusal {
  readonly kind: MysqlErrorKind;
  readonly message: string;
  readonly reason: string;
}

/** The text of a statement the proxy could not name. */
export const UNKNOWN_TEXT: QueryText = { statement: null, fingerprint: null };

/** The statement's first keyword, as the audit's command (`SELECT`, `INSERT`...), like PostgreSQL's tag. */
export function commandOf(text: QueryText): string | undefined {
  const word = /^[A-Za-z]+/.exec(text.statement ?? '')?.[0];
  return word?.toUpperCase();
}

/** What the proxy knows of a prepared statement's parameters, for executions an approval must release. */
export interface PreparedParameters {
  /** How many the server said it has. */
  readonly count: number;
  /** The types the client last bound (type | flags << 8), which executions that send none reuse. */
  types?: readonly number[];
  /** Values were sent apart (COM_STMT_SEND_LONG_DATA) since the last reset: an execution does not carry them. */
  longData?: boolean;
}

/** The statements prepared through the proxy, by the id the server gave each. */
export class PreparedStatements {
  private readonly byId = new Map<number, PreparedText>();
  private readonly parametersById = new Map<number, PreparedParameters>();
  /** The last prepare sent: MariaDB's COM_STMT_EXECUTE of id -1 (pipelined after it) runs it. */
  last: PreparedText | undefined;

  /** The statement an execute of `id` runs; -1 is the last prepared. */
  get(id: number): PreparedText | undefined {
    return id === 0xffffffff ? this.last : this.byId.get(id);
  }

  /** The server answered a prepare with `id`, of `parameters` parameters. */
  set(id: number, text: PreparedText, parameters: number): void {
    this.byId.set(id, text);
    this.parametersById.set(id, { count: parameters });
  }

  /** What is known of the parameters of statement `id` (not of -1, whose id the client never saw). */
  parameters(id: number): PreparedParameters | undefined {
    return this.parametersById.get(id);
  }

  /** COM_STMT_SEND_LONG_DATA (true) or COM_STMT_RESET (false) for statement `id`. */
  longData(id: number, sent: boolean): void {
    const parameters = this.parametersById.get(id);
    if (parameters) parameters.longData = sent;
  }

  /** The prepare of `text` failed: an execute of -1 has nothing to run. */
  failed(text: PreparedText | undefined): void {
    if (this.last === text) this.last = undefined;
  }

  close(id: number): void {
    if (this.byId.get(id) === this.last) this.last = undefined;
    this.byId.delete(id);
    this.parametersById.delete(id);
  }

  /** COM_RESET_CONNECTION dropped them all. */
  clear(): void {
    this.byId.clear();
    this.parametersById.clear();
    this.last = undefined;
  }
}
