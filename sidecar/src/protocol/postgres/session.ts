import type { Logger } from 'pino';
import type { SessionContext, StatementEvent } from '../../audit/events.ts';
import {
  recordSessionEnd,
  recordStatement,
  recordStatementStart,
  type StatementOutcome,
} from '../../audit/record-statement.ts';
import type { PostgresGate } from '../../policy/gates/postgres-gate.ts';
import { planAt, type TextMasking, withholdsServerText } from '../../policy/gates/postgres-masking.ts';
import type { Moment, Refused, RowsMeasured } from '../../policy/gates/session-gate.ts';
import {
  finalTransactionEnd,
  judgeRowCounts,
  type RowLimit,
  rowCap,
} from '../../policy/guardrails/row-limits.ts';
import { maskTextFreeform } from '../../policy/masking/mask-text-freeform.ts';
import { describeQuery, describeStatement, type QueryText } from '../../sql/normalize.ts';
import { type FatalCause, type RelayProtocol, SessionCore } from '../session-core.ts';
import { errorResponse, noticeResponse } from './backend-writer.ts';
import { Backend, encodeMessage, Frontend } from './codes.ts';
import {
  type CopyRowMasker,
  copyOutLayout,
  copyTextSplitsSafely,
  createCopyTextMasker,
} from './copy-text-masker.ts';
import {
  Answer,
  Exchange,
  type Pending,
  type PendingExecute,
  type PendingQuery,
  type PortalText,
  type PreparedText,
  type Refusal,
  type RowCheck,
  textAt,
  textsOf,
} from './exchange.ts';
import {
  bindNames,
  commandTag,
  errorFields,
  executePortal,
  parseMessage,
  queryText,
  splitCommandTag,
  targetOf,
  transactionStatus,
} from './message-fields.ts';
import { HOLD, MessageFramer, MessageScanner } from './message-framer.ts';
import { ProtocolError } from './protocol-error.ts';
import type { ReportedReading } from './reported-reading.ts';
import {
  checkColumn,
  checkFailure,
  lastStatementStart,
  rowCheckMessages,
  withRowCheck,
} from './row-check.ts';
import {
  bindResultFormats,
  createRowMasker,
  formatAt,
  needsRowInspection,
  type ResultField,
  rowDescriptionFields,
} from './row-masker.ts';
import {
  scrubFieldsMessage,
  scrubNotification,
  scrubParameterStatus,
  withholdServerText,
} from './scrub-messages.ts';
import type { SessionDeps } from './session-deps.ts';
import {
  isNameRefusal,
  type NameRefusal,
  SessionNames,
  type SqlNameEffect,
  sqlNameEffects,
} from './session-names.ts';
import type { Established } from './startup.ts';

/** Frontend message types the proxy accepts after startup. */
const FRONTEND_TYPES = new Set<number>(Object.values(Frontend).filter((t) => t !== Frontend.Password));
/**
 * Backend message types the proxy reads; DataRow and CopyData pass uninspected unless a result is
 * masked (see MessageScanner.want). Notices and notifications are read for masked sessions' scrubbing;
 * ParameterStatus tells how the server reads text (see server-reading.ts).
 */
const WANTED_BACKEND_TYPES = [
  Backend.ParseComplete,
  Backend.BindComplete,
  Backend.CloseComplete,
  Backend.ParameterDescription,
  Backend.RowDescription,
  Backend.NoData,
  Backend.CommandComplete,
  Backend.EmptyQueryResponse,
  Backend.PortalSuspended,
  Backend.ParameterStatus,
  Backend.ErrorResponse,
  Backend.ReadyForQuery,
  Backend.CopyInResponse,
  Backend.CopyOutResponse,
  Backend.CopyBothResponse,
  Backend.FunctionCallResponse,
  Backend.NoticeResponse,
  Backend.NotificationResponse,
];
/** Command tags after which the catalog masking relies on may have changed. */
const CATALOG_CHANGING = /^(CREATE|ALTER|DROP|COMMENT|IMPORT|SECURITY LABEL|GRANT|REVOKE)\b/;

/** What the policy says of one text. */
interface Verdict {
  readonly refusal?: Refusal;
  /** The statement names a routine the catalog does not know: judge it again after a refresh. */
  readonly refreshCatalog?: boolean;
  readonly notes?: readonly string[];
  readonly notice?: Buffer;
  readonly masking?: TextMasking;
  readonly nameEffects?: readonly (SqlNameEffect | undefined)[];
  readonly rows?: RowsMeasured;
}

/**
 * A stand-in the server can only answer with a syntax error: it never runs anything, yet it moves the
 * server's protocol state exactly as a failed statement would (aborting the transaction block, skipping
 * to Sync in a pipeline). Its error is then replaced by the refusal.
 */
const REFUSED_QUERY = encodeMessage(Frontend.Query, Buffer.from('GATEHOUSE REFUSED\0'));
const REFUSED_PARSE = encodeMessage(
  Frontend.Parse,
  Buffer.from('gatehouse.refused\0GATEHOUSE REFUSED\0\0\0'),
);

/** How the results of the statement an exchange answers are masked (undefined: shown as they are). */
function exchangeMasking(head: Pending | undefined): TextMasking | undefined {
  if (head?.kind === 'query') return head.masking;
  if (head?.kind === 'execute') return (head.text as PreparedText).masking;
  return undefined;
}

/** Close of a prepared statement. */
function closeStatementMessage(name: string): Buffer {
  return encodeMessage(Frontend.Close, Buffer.from(`S${name}\0`, 'utf8'));
}

/** Describe of a prepared statement, as a client would send it. */
function describeStatementMessage(name: string): Buffer {
  return encodeMessage(Frontend.Describe, Buffer.from(`S${name}\0`, 'utf8'));
}

/** A running session: the relay between an established client and its upstream, and what it governs. */
export class PostgresSession implements RelayProtocol {
  readonly id: string;
  private readonly core: SessionCore;
  private readonly deps: SessionDeps;
  private readonly logger: Logger;
  private readonly context: SessionContext;
  private readonly cancelProcessId: number;
  private readonly established: Established;
  private startedAt = Date.now();
  private statementCount = 0;
  private txStatus: 'I' | 'T' | 'E';
  private readonly tls: boolean;

  private readonly gate: PostgresGate;
  /** Whether the identity saw masked values at its last statement: its errors and notices are scrubbed. */
  private scrubbing = false;
  /** How the server reads text (standard_conforming_strings, client_encoding), as it last reported. */
  private readonly reading: ReportedReading;
  /** The masker of the COPY ... TO STDOUT now streaming, from its CopyOutResponse to its end. */
  private copyMasker: CopyRowMasker | undefined;
  /** What each prepared statement and portal name stands for; Bind, Describe and Execute use nothing else. */
  private readonly names = new SessionNames<PreparedText, PortalText>();
  private readonly framer: MessageFramer;
  private readonly scanner: MessageScanner;
  private readonly handleClientMessage = (type: number, frame: Buffer) => this.onClientMessage(type, frame);
  /** The held message is judged again once, against a catalog reloaded for it. */
  private catalogRefreshed = false;
  /** A statement judged as changing stored code was sent: the catalog is reloaded once it is done. */
  private codeChanged = false;
  private readonly handleServerMessage = (type: number, frame: Buffer) => this.onServerMessage(type, frame);
  /**
   * Rows the current transaction had changed at its last row check: what the next check's count is
   * compared with. Only ever behind the server (it is updated as results arrive), which makes caps
   * computed from it stricter, never laxer.
   */
  private rowsBefore = 0;
  /** What was asked of the server, and what its answers complete. */
  private readonly exchange = new Exchange();

  constructor(id: string, established: Established, deps: SessionDeps) {
    this.id = id;
    this.established = established;
    this.deps = deps;
    this.logger = established.logger;
    this.tls = established.tls;
    this.gate = established.gate;
    this.reading = established.reading;
    this.reading.settled = () => this.settled();
    this.cancelProcessId = established.cancelProcessId;
    this.txStatus = established.upstream.transactionStatus ?? 'I';
    this.context = {
      session: id,
      identity: established.identity,
      client: { address: established.client.remoteAddress ?? '', port: established.client.remotePort ?? 0 },
      database: deps.config.upstream.database,
      protocol: 'postgres',
    };
    this.framer = new MessageFramer(deps.config.limits.maxMessageBytes);
    this.scanner = new MessageScanner(WANTED_BACKEND_TYPES, 256 * 1024 * 1024);
    this.core = new SessionCore(
      {
        client: established.client,
        server: established.upstream.socket,
        metrics: deps.metrics,
        logger: this.logger,
      },
      this,
    );
  }

  /** Runs `listener` once the session has ended. */
  whenClosed(listener: () => void): void {
    this.core.whenClosed(listener);
  }

  /** True while the session has no statement in flight and no open transaction. */
  get idle(): boolean {
    return this.exchange.size === 0 && this.txStatus === 'I';
  }

  /** Ends the session as the server would on an administrator's shutdown. */
  terminate(reason: string): void {
    this.core.terminate(reason);
  }

  close(reason: string): void {
    this.core.close(reason);
  }

  start(): void {
    const { config } = this.deps;
    this.deps.audit.record({ type: 'connection.start', context: this.context, tls: this.tls });
    this.logger.info({ database: config.upstream.database, tls: this.tls }, 'session started');
    this.core.start(this.established.upstream.leftover, this.established.leftover);
  }

  // RelayProtocol: what the session core asks of PostgreSQL.

  clientChunk(chunk: Buffer, out: (bytes: Buffer) => void): void {
    this.framer.push(chunk, this.handleClientMessage, out);
  }

  afterClientChunk(): void {
    if (this.framer.holding && !this.catalogRefreshed) this.refreshCatalogThenResume();
    // An Execute sent when nothing else is outstanding (the next page of a suspended portal) is answered
    // by DataRows straight away: whether they are read must be decided now, not at a later server message.
    this.scanner.want(Backend.DataRow, this.rowsWanted(this.exchange.head));
  }

  holdingClient(): boolean {
    return this.framer.holding;
  }

  serverChunk(chunk: Buffer, out: (bytes: Buffer) => void): void {
    this.scanner.scan(chunk, this.handleServerMessage, out);
  }

  auditReleased(): void {}

  fatal(cause: FatalCause, error?: unknown): Buffer {
    if (cause === 'shutdown')
      return errorResponse({
        severity: 'FATAL',
        code: '57P01',
        message: 'terminating connection because Gatehouse is shutting down',
      });
    if (cause === 'server-protocol')
      return errorResponse({
        severity: 'FATAL',
        code: '08P01',
        message: 'Gatehouse received invalid data from the database',
      });
    const message = error instanceof Error ? error.message : String(error);
    const sqlstate = error instanceof ProtocolError ? error.sqlstate : 'XX000';
    return errorResponse({ severity: 'FATAL', code: sqlstate, message });
  }

  quit(): Buffer {
    return TERMINATE;
  }

  ended(reason: string): void {
    this.deps.cancelKeys.release(this.cancelProcessId);
    recordSessionEnd(
      { audit: this.deps.audit, metrics: this.deps.metrics, logger: this.logger },
      this.context,
      this.startedAt,
      this.statementCount,
      reason,
    );
  }

  /**
   * `frame`, held until the `statement.start` records of its statements are written; when they are
   * lost (failClosed), `refuse` turns it into a refusal and names the stand-in the server gets instead.
   */
  private holdForAudit(
    frame: Buffer,
    via: StatementEvent['via'],
    texts: readonly QueryText[],
    refuse: (refusal: Refusal) => Buffer,
  ): Buffer {
    const { audit, config } = this.deps;
    const written = recordStatementStart(audit, config.audit.failClosed, this.context, via, texts);
    return this.core.toServer.hold(frame, written, () => refuse(this.auditUnavailable()));
  }

  /**
   * A statement named a routine the catalog does not know (created directly on the database, or
   * since the last load): the client's stream waits while the catalog reloads, then the statement
   * is judged again, once. Still unknown, it is refused.
   */
  private refreshCatalogThenResume(): void {
    this.catalogRefreshed = true;
    this.logger.debug('statement names a routine the catalog does not know: reloading the catalog');
    this.core.holdClientUntil(this.deps.catalog.refresh(), (out) => {
      this.framer.resume(this.handleClientMessage, out);
      this.catalogRefreshed = false;
    });
  }

  /** Tracks what the message will make the server answer; returns the bytes to send upstream. */
  private onClientMessage(type: number, frame: Buffer): Buffer | undefined | typeof HOLD {
    switch (type) {
      case Frontend.Query: {
        const started = performance.now();
        const stamp = this.names.stamp();
        const sql = queryText(frame);
        const audit = this.auditRefusal();
        const verdict: Verdict = audit ? { refusal: audit } : this.judge(sql);
        if (verdict.refreshCatalog) return HOLD;
        const refusal = verdict.refusal;
        const query: PendingQuery = {
          kind: 'query',
          sql,
          texts: describeQuery(sql),
          index: 0,
          started,
          stamp,
        };
        if (verdict.notes) query.notes = verdict.notes;
        query.notice = verdict.notice;
        query.masking = verdict.masking;
        if (verdict.nameEffects) query.nameEffects = verdict.nameEffects;
        this.names.synced(true);
        if (refusal) {
          this.exchange.expect({ ...query, refusal });
          return REFUSED_QUERY;
        }
        this.exchange.expect(query);
        let sent = frame;
        if (verdict.rows) {
          const column = checkColumn();
          // `BEGIN; ...; COMMIT` in one text: the check goes before the COMMIT, after the statement
          // before it (policy/guardrails/row-limits.ts finalTransactionEnd).
          const beforeEnd = finalTransactionEnd(verdict.rows.facts) ? lastStatementStart(sql) : undefined;
          const texts = textsOf(query).length;
          const after = beforeEnd === undefined ? texts - 1 : texts - 2;
          query.check = { rows: verdict.rows, column, answering: false, owner: query, after };
          sent = withRowCheck(sql, column, this.rowCapNow(verdict.rows.limits), beforeEnd);
        }
        return this.holdForAudit(sent, 'simple', textsOf(query), (lost) => {
          query.refusal = lost;
          query.notice = undefined;
          query.check = undefined;
          return REFUSED_QUERY;
        });
      }
      case Frontend.Parse: {
        const { name, sql } = parseMessage(frame);
        const text = describeStatement(sql);
        const verdict = this.judge(sql, text);
        if (verdict.refreshCatalog) return HOLD;
        const prepared: PreparedText = {
          ...text,
          ...(verdict.notes && { notes: verdict.notes }),
          ...(verdict.masking && { masking: verdict.masking }),
          ...(verdict.nameEffects?.[0] && { nameEffect: verdict.nameEffects[0] }),
          ...(verdict.rows && { rows: verdict.rows }),
        };
        // A refused Parse never reaches the server, which keeps whatever the name stood for.
        const settlement = verdict.refusal ? undefined : this.names.parse(name, prepared);
        const refusal = verdict.refusal ?? (settlement?.refusal && nameRefusal(settlement.refusal));
        if (refusal) {
          this.exchange.expect({ kind: 'parse', started: performance.now(), text, refusal });
          return REFUSED_PARSE;
        }
        this.exchange.expect({
          kind: 'parse',
          started: 0,
          notice: verdict.notice,
          ...(settlement && { settlement }),
        });
        if (!verdict.masking) return frame;
        // Rows of a masked statement are rewritten by column type. A driver may execute it without ever
        // describing it (JDBC past prepareThreshold), so the proxy describes it itself, right away.
        this.exchange.expect({ kind: 'describe', entry: prepared, internal: true });
        return Buffer.concat([frame, describeStatementMessage(name)]);
      }
      case Frontend.Bind: {
        const { portal, statement } = bindNames(frame);
        const text = this.names.statement(statement);
        const settlement = isNameRefusal(text)
          ? { refusal: text }
          : this.names.bind(portal, { text, formats: bindResultFormats(frame) });
        if (settlement.refusal) {
          const refusal = nameRefusal(settlement.refusal);
          this.exchange.expect({ kind: 'bind', refusal, started: performance.now() });
          return REFUSED_PARSE;
        }
        this.exchange.expect({ kind: 'bind', settlement });
        return frame;
      }
      case Frontend.Execute: {
        const named = this.names.portal(executePortal(frame));
        const portal = isNameRefusal(named) ? undefined : named;
        // Each run of a PREPARE or DECLARE sent by Parse makes its name again.
        const makes = portal?.text.nameEffect;
        if (makes?.prepares !== undefined || makes?.declares !== undefined) this.names.admitSql([makes]);
        const text: PreparedText = portal?.text ?? UNJUDGED_EXECUTE;
        const refusal = this.auditRefusal() ?? (isNameRefusal(named) ? nameRefusal(named) : undefined);
        const started = performance.now();
        if (refusal) {
          this.exchange.expect({ kind: 'execute', text, started, refusal });
          return REFUSED_PARSE;
        }
        const execute: PendingExecute = {
          kind: 'execute',
          text,
          started,
          stamp: this.names.stamp(),
          ...(portal && { portal }),
          ...(text.notes && { notes: text.notes }),
        };
        this.exchange.expect(execute);
        const sent = text.rows ? Buffer.concat([frame, this.rowCheckAfter(execute, text.rows)]) : frame;
        // Lost audit records turn the Execute and its check into one stand-in, whose error skips to Sync.
        return this.holdForAudit(sent, 'extended', [text], (lost) => {
          execute.refusal = lost;
          return REFUSED_PARSE;
        });
      }
      case Frontend.Describe: {
        // Its RowDescription tells the statement's or portal's result columns.
        const target = targetOf(frame);
        const entry =
          target.kind === 'S' ? this.names.statement(target.name) : this.names.portal(target.name);
        if (isNameRefusal(entry)) {
          this.exchange.expect({ kind: 'describe', refusal: nameRefusal(entry), started: performance.now() });
          return REFUSED_PARSE;
        }
        this.exchange.expect({ kind: 'describe', entry });
        return frame;
      }
      case Frontend.Close: {
        // Closing runs nothing and shows nothing, so any name may be closed; it is forgotten everywhere.
        const target = targetOf(frame);
        this.exchange.expect({ kind: 'close', settlement: this.names.close(target.kind, target.name) });
        return frame;
      }
      case Frontend.Sync:
        this.names.synced(false);
        this.exchange.expect({ kind: 'sync' });
        return frame;
      case Frontend.FunctionCall: {
        // The fast-path interface: its result cannot be traced, so masked sessions may not use it.
        const judged = this.auditRefusal() ?? this.fastPathRefusal() ?? this.fastPathGuardrails(frame);
        // A function the catalog may not show yet: judged again once it is reloaded, as a Query is.
        if (judged === HOLD) return HOLD;
        const refusal = judged;
        const started = performance.now();
        this.names.synced(false);
        if (refusal) {
          this.exchange.expect({ kind: 'function', started, refusal });
          return REFUSED_QUERY;
        }
        const call: Extract<Pending, { kind: 'function' }> = { kind: 'function', started };
        this.exchange.expect(call);
        return this.holdForAudit(frame, 'simple', [FUNCTION_CALL_TEXT], (lost) => {
          call.refusal = lost;
          return REFUSED_QUERY;
        });
      }
      case Frontend.Terminate:
        this.core.clientQuit();
        return frame;
      default:
        if (!FRONTEND_TYPES.has(type)) {
          throw new ProtocolError(`invalid frontend message type ${type}`);
        }
        // Flush, CopyData, CopyDone, CopyFail: nothing to answer.
        return frame;
    }
  }

  /** The largest transaction count the statement's enforcing limits allow, from what is known now. */
  private rowCapNow(limits: readonly RowLimit[]): number | undefined {
    return rowCap(limits, {
      before: this.rowsBefore,
      minute: this.deps.rowBudget.spent(this.context.identity.subject),
    });
  }

  /** The extended-protocol row check sent right after `execute`, with the pending answers it is owed. */
  private rowCheckAfter(execute: PendingExecute, rows: RowsMeasured): Buffer {
    const check: RowCheck = { rows, answering: true, owner: execute };
    const { messages, statement } = rowCheckMessages(this.rowCapNow(rows.limits));
    const stale = this.exchange.expectRowCheck(execute, check, statement);
    return Buffer.concat([...stale.map(closeStatementMessage), messages]);
  }

  private auditRefusal(): Refusal | undefined {
    const { audit, config } = this.deps;
    if (audit.healthy || !config.audit.failClosed) return undefined;
    return this.auditUnavailable();
  }

  private auditUnavailable(): Refusal {
    const { audit } = this.deps;
    return {
      reason: 'audit-unavailable',
      fields: {
        severity: 'ERROR',
        code: '58030',
        message: 'Gatehouse refused the statement: the audit log cannot be written',
        detail: audit.failure ?? 'audit sink failed',
        hint: 'Statements are refused until the audit log can be written again; ask the operator of this proxy.',
      },
    };
  }

  /**
   * What the policy in force says of `sql` for this identity: a refusal, or notes, a notice and how
   * its results are masked.
   */
  private judge(sql: string, described?: QueryText): Verdict {
    // Names come first: a PREPARE or DECLARE of a name in use must not reach the analyses, which
    // would take the new definition while the server keeps the old.
    const nameEffects = sqlNameEffects(sql);
    const conflict = this.names.sqlConflict(nameEffects);
    if (conflict) return { refusal: nameRefusal(conflict) };
    const verdict = this.judgeText(sql, described);
    if (verdict.refusal || nameEffects.length === 0) return verdict;
    this.names.admitSql(nameEffects);
    return { ...verdict, nameEffects };
  }

  private judgeText(sql: string, described?: QueryText): Verdict {
    const verdict = this.gate.check(sql, described === undefined ? undefined : [described], this.moment());
    if (verdict.outcome === 'refresh-catalog') return { refreshCatalog: true };
    if (verdict.outcome === 'refuse') {
      if (verdict.cause === 'masking') this.scrubbing = true;
      this.logRefusal(verdict);
      return { refusal: pgRefusal(verdict) };
    }
    this.scrubbing = verdict.masking !== undefined;
    if (verdict.changesCode) this.codeChanged = true;
    return {
      ...(verdict.notes.length > 0 && { notes: verdict.notes }),
      ...(verdict.rows && { rows: verdict.rows }),
      ...(verdict.warnings.length > 0 && {
        notice: noticeResponse({ severity: 'WARNING', code: '01000', message: verdict.warnings.join('\n') }),
      }),
      ...(verdict.masking && { masking: verdict.masking }),
    };
  }

  /** Where the session stands for the gate: DDL it sent is settled only once committed and answered. */
  private moment(): Moment {
    return {
      idle: this.txStatus === 'I' && !this.codeChanged,
      outdated: this.deps.catalog.outdated,
      refreshed: this.catalogRefreshed,
    };
  }

  private logRefusal(refused: Refused): void {
    if (refused.failure)
      this.logger.error({ err: refused.failure.error }, `${refused.failure.stage} analysis failed`);
    else if (refused.cause === 'server-reading')
      this.logger.info({ reason: refused.reason }, 'statement refused: the server may read it differently');
  }

  /** No statement is still running: the settings the server last reported are the ones it reads with. */
  private settled(): boolean {
    return this.exchange.settled();
  }

  /** Fast-path function calls return values no lineage can trace: refused where masking applies. */
  private fastPathRefusal(): Refusal | undefined {
    const settings = this.gate.settings();
    if (!settings) return undefined;
    return {
      reason: `MaskingPolicy ${settings.policies.join(', ')}: fast-path function call`,
      fields: {
        severity: 'ERROR',
        code: '42501',
        message: 'Gatehouse: fast-path function calls are not allowed where masking applies; use SELECT',
      },
    };
  }

  /**
   * A fast-path call names its function by OID: judged as `SELECT schema.name()`, the call of the
   * routine the catalog knows by that OID; an OID it does not know is refused.
   */
  private fastPathGuardrails(frame: Buffer): Refusal | undefined | typeof HOLD {
    if (!this.deps.policy()) return undefined;
    const oid = frame.length >= 9 ? frame.readUInt32BE(5) : -1;
    const target = this.deps.catalog.current()?.code.byOid(oid);
    if (!target) {
      return {
        reason: 'fast-path call of an unknown function',
        fields: {
          severity: 'ERROR',
          code: '42501',
          message: `Gatehouse: fast-path call of function OID ${oid}, which Gatehouse's catalog of the database does not know; use SELECT`,
        },
      };
    }
    const quote = (name: string) => `"${name.replaceAll('"', '""')}"`;
    const verdict = this.gate.guard(
      `SELECT ${quote(target.schema)}.${quote(target.name)}()`,
      undefined,
      this.moment(),
    );
    if (verdict.outcome === 'refresh-catalog') return HOLD;
    if (verdict.outcome === 'allow' && verdict.rows?.limits.some((l) => !l.dryRun && l.action !== 'warn'))
      // The row check follows a Query or an Execute; a fast-path call has no place for it.
      return {
        reason: `Guardrail rows: fast-path call of ${target.schema}.${target.name} under a row limit`,
        fields: {
          severity: 'ERROR',
          code: '42501',
          message: `Gatehouse: a row limit applies to ${target.schema}.${target.name}(), and the rows a fast-path call changes cannot be counted; call it with SELECT`,
        },
      };
    if (verdict.outcome !== 'refuse') return undefined;
    this.logRefusal(verdict);
    return pgRefusal(verdict);
  }

  /** The client's copy of a server message, led by a guardrail warning owed for this exchange. */
  private onServerMessage(type: number, frame: Buffer): Buffer | undefined {
    const exchange = this.exchange;
    const head = exchange.head;
    // Decided before the answer moves the exchange on: the text belongs to the statement it answers.
    const withheld =
      (type === Backend.ErrorResponse || type === Backend.NoticeResponse) && this.withholdsServerText(head);
    const answer = exchange.answer(type, frame);
    let out: Buffer | undefined = frame;
    switch (answer) {
      case Answer.Row:
        return this.maskRow(head, frame);
      case Answer.CheckRow:
        return undefined;
      case Answer.Drop:
        // The answer to the proxy's own Describe; or to its row check, whose rows may come next.
        if (head?.kind === 'describe') return undefined;
        out = undefined;
        break;
      case Answer.Stray: {
        // A completion held for a check that is not coming after all: it goes on, ahead of what follows.
        const check = exchange.check!;
        const held = check.held!;
        check.held = undefined;
        this.recordStatement(check.owner, held.text, 'ok', held);
        const rest = this.onServerMessage(type, frame);
        return rest ? Buffer.concat([held.frame, rest]) : held.frame;
      }
      case Answer.Settled:
        if (head && 'settlement' in head) head.settlement?.done?.();
        break;
      case Answer.Described:
        if (head?.kind === 'describe') {
          if (head.entry && (this.scrubbing || head.internal))
            head.entry.fields = rowDescriptionFields(frame);
          if (head.internal) return undefined;
        }
        break;
      case Answer.ResultHead:
        if (head?.kind === 'query' && head.masking) {
          const plan = planAt(head.masking, head.index);
          const fields = rowDescriptionFields(frame);
          head.rowMasker = needsRowInspection(plan, fields)
            ? createRowMasker(plan, fields, this.deps.maskingKey)
            : undefined;
        }
        break;
      case Answer.CheckDone:
        out = this.rowCheckPassed(exchange.check!);
        break;
      case Answer.Completed:
        out = this.completed(head, frame);
        break;
      case Answer.Suspended:
        if (head?.kind === 'execute') {
          if (head.check) {
            head.check.held = { frame, text: head.text, command: 'SUSPENDED' };
            out = undefined;
          } else this.recordStatement(head, head.text, 'ok', { command: 'SUSPENDED' });
        }
        break;
      case Answer.Failed:
        out = this.failed(head, frame);
        break;
      case Answer.Ready:
        this.txStatus = transactionStatus(frame);
        if (this.txStatus === 'I') this.rowsBefore = 0;
        this.names.ready(this.txStatus);
        if (this.codeChanged) {
          this.codeChanged = false;
          this.deps.catalog.invalidateCode();
        }
        if (this.deps.draining() && this.idle) setImmediate(() => this.terminate('shutdown'));
        break;
      case Answer.FunctionResult:
        if (head?.kind === 'function')
          this.recordStatement(head, FUNCTION_CALL_TEXT, 'ok', { command: 'FUNCTION CALL' });
        break;
      default:
        if (type === Backend.CopyData) return this.copyMasker ? this.copyMasker(frame) : scrubCopyData(frame);
        if (type === Backend.ParameterStatus) this.reportParameter(frame);
    }
    if (out === frame) {
      if (withheld) out = withholdServerText(frame);
      else if (this.scrubbing) out = scrubServerText(type, frame);
    }
    this.scanner.want(Backend.DataRow, this.rowsWanted(exchange.head));
    // Text COPY rows are scanned, and masked where the plan masks columns; binary ones are not text
    // (COPY of masked columns in binary is refused before it runs, and throws here if it comes).
    if (type === Backend.CopyOutResponse) {
      this.copyMasker = this.copyMaskerFor(head, frame);
      // The masker decides by the statement's own plan, whatever the last statement checked was.
      this.scanner.want(
        Backend.CopyData,
        (this.scrubbing || this.copyMasker !== undefined) && frame[5] === 0,
      );
    } else if (
      type === Backend.CommandComplete ||
      type === Backend.ErrorResponse ||
      type === Backend.ReadyForQuery
    ) {
      this.copyMasker = undefined;
      this.scanner.want(Backend.CopyData, false);
    }
    if (head && (head.kind === 'query' || head.kind === 'parse') && head.notice && out) {
      const notice = head.notice;
      head.notice = undefined;
      return Buffer.concat([notice, out]);
    }
    return out;
  }

  /** ParameterStatus: sent before ReadyForQuery when a setting the server reports has changed. */
  private reportParameter(frame: Buffer): void {
    const nameEnd = frame.indexOf(0, 5);
    const valueEnd = frame.indexOf(0, nameEnd + 1);
    if (nameEnd > 0 && valueEnd > 0)
      this.reading.report(frame.toString('utf8', 5, nameEnd), frame.toString('utf8', nameEnd + 1, valueEnd));
  }

  /** A client statement's CommandComplete: recorded, or held for the row check that follows it. */
  private completed(head: Pending | undefined, frame: Buffer): Buffer | undefined {
    const { command, rows } = splitCommandTag(commandTag(frame));
    if (CATALOG_CHANGING.test(command)) this.deps.catalog.invalidate();
    if (command === 'COMMIT' || command === 'PREPARE TRANSACTION') this.rowsBefore = 0;
    if (head?.kind === 'query') {
      const index = this.exchange.index;
      const masked = head.masking ? planAt(head.masking, index).masked : undefined;
      this.names.completedSql(head.nameEffects?.[index], head.stamp, command);
      const text = textAt(head, index);
      if (head.check && index === (head.check.after ?? textsOf(head).length - 1)) {
        // The statement the check follows: its completion waits for the check's answer.
        head.check.held = { frame, text, command, rows, masked };
        return undefined;
      }
      this.recordStatement(head, text, 'ok', { command, rows, masked });
      head.started = performance.now();
    } else if (head?.kind === 'execute') {
      const masking = (head.text as PreparedText).masking;
      const masked = masking ? planAt(masking, 0).masked : undefined;
      this.names.completedSql((head.text as PreparedText).nameEffect, head.stamp ?? 0, command);
      if (head.check) {
        head.check.held = { frame, text: head.text, command, rows, masked };
        return undefined;
      }
      this.recordStatement(head, head.text, 'ok', { command, rows, masked });
    }
    return frame;
  }

  /** An ErrorResponse: recorded against what it answers; a refusal's stand-in error becomes the refusal. */
  private failed(head: Pending | undefined, frame: Buffer): Buffer {
    const fields = errorFields(frame);
    const sqlstate = fields.get('C');
    if (fields.get('S') === 'FATAL' || fields.get('V') === 'FATAL') this.core.endReason = 'upstream';
    if (!head) return frame;
    const check = this.exchange.check;
    if (head.kind === 'rowcheck') return check ? this.rowCheckFailed(check, fields) : frame;
    if (check) return this.rowCheckFailed(check, fields);
    const refusal = 'refusal' in head ? head.refusal : undefined;
    if (head.kind === 'query') {
      if (refusal) {
        for (const t of textsOf(head))
          this.recordStatement(head, t, 'refused', { reason: refusal.reason, sqlstate: refusal.fields.code });
      } else
        this.recordStatement(head, textAt(head, this.exchange.index), 'error', {
          ...(sqlstate && { sqlstate }),
        });
      return refusal ? errorResponse(refusal.fields) : frame;
    }
    if (head.kind === 'function') {
      if (refusal)
        this.recordStatement(head, FUNCTION_CALL_TEXT, 'refused', {
          reason: refusal.reason,
          sqlstate: refusal.fields.code,
        });
      else this.recordStatement(head, FUNCTION_CALL_TEXT, 'error', { ...(sqlstate && { sqlstate }) });
      return refusal ? errorResponse(refusal.fields) : frame;
    }
    if (head.kind === 'sync') return frame;
    if ((head.kind === 'bind' || head.kind === 'describe') && head.refusal) {
      const text = head.kind === 'bind' ? UNJUDGED_BIND : UNJUDGED_DESCRIBE;
      this.recordStatement({ kind: 'execute', started: head.started ?? performance.now() }, text, 'refused', {
        reason: head.refusal.reason,
        sqlstate: head.refusal.fields.code,
      });
    }
    if (head.kind === 'parse' && head.refusal) {
      this.recordStatement(head, head.text ?? UNKNOWN_TEXT, 'refused', {
        reason: head.refusal.reason,
        sqlstate: head.refusal.fields.code,
      });
    }
    if (head.kind === 'execute') {
      if (refusal)
        this.recordStatement(head, head.text, 'refused', {
          reason: refusal.reason,
          sqlstate: refusal.fields.code,
        });
      else this.recordStatement(head, head.text, 'error', { ...(sqlstate && { sqlstate }) });
    }
    return refusal ? errorResponse(refusal.fields) : frame;
  }

  /** Whether the server's texts answering `head` are withheld: its statement touches masked data. */
  private withholdsServerText(head: Pending | undefined): boolean {
    const masking = exchangeMasking(head);
    return masking !== undefined && withholdsServerText(masking);
  }

  /** The masker for a COPY ... TO STDOUT's rows, when its statement's plan masks columns. */
  private copyMaskerFor(head: Pending | undefined, frame: Buffer): CopyRowMasker | undefined {
    const masking = exchangeMasking(head);
    if (!masking) return undefined;
    const plan = planAt(masking, head?.kind === 'query' ? head.index : 0);
    if (!plan.rest && !plan.columns.some((mask) => mask !== undefined)) return undefined;
    const encoding = this.reading.current.clientEncoding;
    if (!copyTextSplitsSafely(encoding))
      throw new Error(
        `COPY of masked columns in client encoding ${encoding ?? '(unknown)'}, whose rows cannot be split safely`,
      );
    return createCopyTextMasker(plan, copyOutLayout(frame), this.deps.maskingKey);
  }

  /** Whether the rows of the result now coming must be read: a masker is set or may be needed. */
  private rowsWanted(head: Pending | undefined): boolean {
    if (head?.kind === 'query') return head.rowMasker !== undefined || head.check?.answering === true;
    if (head?.kind === 'rowcheck') return head.step === 'execute';
    if (head?.kind !== 'execute') return false;
    const masking = (head.text as PreparedText).masking;
    if (!masking) return false;
    return head.rowMasker !== undefined || needsRowInspection(planAt(masking, 0), portalFields(head.portal));
  }

  private maskRow(head: Pending | undefined, frame: Buffer): Buffer {
    if (head?.kind === 'query') return head.rowMasker ? head.rowMasker(frame) : frame;
    if (head?.kind !== 'execute') return frame;
    const masking = (head.text as PreparedText).masking;
    if (!masking) return frame;
    head.rowMasker ??= createRowMasker(planAt(masking, 0), portalFields(head.portal), this.deps.maskingKey);
    return head.rowMasker(frame);
  }

  /** The check's count is within the caps: the held completion goes to the client, with the count recorded. */
  private rowCheckPassed(check: RowCheck): Buffer | undefined {
    const count = check.count ?? -1;
    const subject = this.context.identity.subject;
    const notes = [...(check.owner.notes ?? [])];
    let notice: Buffer | undefined;
    if (count >= 0) {
      const before = this.rowsBefore;
      const minute = this.deps.rowBudget.spent(subject);
      const judged = judgeRowCounts(
        check.rows.limits,
        { transaction: count, before, minute },
        check.rows.what,
      );
      // A count lower than the last is a new transaction the proxy did not see begin.
      this.deps.rowBudget.add(subject, count >= before ? count - before : count);
      this.rowsBefore = count;
      for (const hit of judged.dryRun)
        notes.push(
          `dry run: ${hit.limit.guardrail}/${hit.limit.rule} would ${hit.limit.action} (${hit.count} rows)`,
        );
      for (const hit of judged.warnings)
        notes.push(`warning: ${hit.limit.guardrail}/${hit.limit.rule} (${hit.count} rows)`);
      if (judged.warnings.length > 0)
        notice = noticeResponse({
          severity: 'WARNING',
          code: '01000',
          message: judged.warnings.map((w) => w.message).join('\n'),
        });
    } else notes.push('rows changed not counted: track_counts is off on the database');
    const held = check.held;
    if (!held) return notice;
    this.recordStatement(check.owner, held.text, 'ok', {
      ...held,
      ...(count >= 0 && { rowsChanged: count }),
      ...(notes.length > 0 && { reason: notes.join('; ') }),
    });
    return notice ? Buffer.concat([notice, held.frame]) : held.frame;
  }

  /**
   * The check raised (over a cap, track_counts off) or failed otherwise: the transaction is aborted,
   * nothing the statement changed is kept. The client gets the refusal instead of the check's error.
   */
  private rowCheckFailed(check: RowCheck, fields: Map<string, string>): Buffer {
    const failure = checkFailure(fields.get('M') ?? '');
    const limit = check.rows.limits.find((l) => !l.dryRun && l.action !== 'warn') ?? check.rows.limits[0]!;
    const named = `Gatehouse guardrail "${limit.guardrail}" (rule ${limit.rule})`;
    let message: string;
    let reason: string;
    if (failure.count !== undefined) {
      const judged = judgeRowCounts(
        check.rows.limits,
        {
          transaction: failure.count,
          before: this.rowsBefore,
          minute: this.deps.rowBudget.spent(this.context.identity.subject),
        },
        check.rows.what,
      );
      const hit = judged.refusal;
      message =
        hit?.message ??
        `${named} refused ${check.rows.what}: its transaction updated or deleted ${failure.count} rows, over what the row limits allow; nothing it changed was kept.`;
      reason = hit
        ? `Guardrail ${hit.limit.guardrail}: ${hit.limit.rule} (${hit.scope === 'minute' ? 'maxAffectedRowsPerMinute' : 'maxAffectedRows'}: ${hit.count} rows, limit ${hit.max})`
        : `Guardrail ${limit.guardrail}: ${limit.rule} (${failure.count} rows)`;
    } else if (failure.trackCountsOff) {
      message = `${named} refused ${check.rows.what}: the database does not count changed rows (track_counts is off), so the row limit cannot be checked; nothing it changed was kept.`;
      reason = `Guardrail ${limit.guardrail}: ${limit.rule} (track_counts is off)`;
    } else {
      const code = fields.get('C') ?? 'unknown';
      message = `${named} refused ${check.rows.what}: counting the rows it changed failed (SQLSTATE ${code}); nothing it changed was kept.`;
      reason = `Guardrail ${limit.guardrail}: ${limit.rule} (row count failed: ${code})`;
    }
    const text = check.held?.text ?? UNKNOWN_TEXT;
    this.recordStatement(check.owner, text, 'refused', {
      reason,
      sqlstate: '42501',
      ...(failure.count !== undefined && { rowsChanged: failure.count }),
    });
    return errorResponse({
      severity: 'ERROR',
      code: '42501',
      message,
      ...(limit.advice && { hint: limit.advice }),
    });
  }

  private recordStatement(
    started: { kind: 'query' | 'execute' | 'function' | 'parse'; started: number; notes?: readonly string[] },
    text: QueryText,
    outcome: StatementEvent['outcome'],
    extra: StatementOutcome,
  ): void {
    this.statementCount++;
    recordStatement(
      this.deps,
      this.context,
      started.kind === 'execute' || started.kind === 'parse' ? 'extended' : 'simple',
      started.started,
      text,
      outcome,
      {
        ...extra,
        reason: extra.reason ?? ('notes' in started ? started.notes?.join('; ') : undefined),
      },
    );
  }
}

/** Ends the server's session when the client did not send its own Terminate. */
const TERMINATE = encodeMessage(Frontend.Terminate, Buffer.alloc(0));
const UNKNOWN_TEXT: QueryText = { statement: null, fingerprint: null };
const UNJUDGED_EXECUTE: QueryText = {
  statement: '<Execute of a portal Gatehouse did not judge>',
  fingerprint: null,
};
const UNJUDGED_BIND: QueryText = {
  statement: '<Bind of a statement Gatehouse did not judge>',
  fingerprint: null,
};
const UNJUDGED_DESCRIBE: QueryText = {
  statement: '<Describe of a name Gatehouse did not judge>',
  fingerprint: null,
};

function nameRefusal(refusal: NameRefusal): Refusal {
  return {
    reason: `unjudged-name: ${refusal.message}`,
    fields: { severity: 'ERROR', code: refusal.code, message: refusal.message },
  };
}

/** The ErrorResponse for a refusal of the gate: every one is 42501 (insufficient privilege). */
function pgRefusal(refused: Refused): Refusal {
  return {
    reason: refused.reason,
    fields: {
      severity: 'ERROR',
      code: '42501',
      message: refused.message,
      ...(refused.approval && {
        hint: 'This statement requires approval before it can run; ask an approver of this database.',
      }),
    },
  };
}

/** A portal's result columns: from Describe of the portal, else the statement's with Bind's formats. */
function portalFields(portal: PortalText | undefined): ResultField[] | undefined {
  if (!portal) return undefined;
  if (portal.fields) return portal.fields;
  return portal.text.fields?.map((field, i) => ({ ...field, format: formatAt(portal.formats, i) }));
}

/** Errors, notices, notifications and parameter values of a masked session, scrubbed of values. */
function scrubServerText(type: number, frame: Buffer): Buffer {
  if (type === Backend.ErrorResponse || type === Backend.NoticeResponse) return scrubFieldsMessage(frame);
  if (type === Backend.NotificationResponse) return scrubNotification(frame);
  if (type === Backend.ParameterStatus) return scrubParameterStatus(frame);
  return frame;
}

/** A COPY TO STDOUT row of a masked session with no masked column: the value scan. */
function scrubCopyData(frame: Buffer): Buffer {
  const text = frame.toString('utf8', 5);
  const scrubbed = maskTextFreeform(text);
  if (scrubbed === text) return frame;
  const body = Buffer.from(scrubbed, 'utf8');
  return encodeMessage(Backend.CopyData, body);
}

const FUNCTION_CALL_TEXT: QueryText = { statement: '<fast-path function call>', fingerprint: null };
