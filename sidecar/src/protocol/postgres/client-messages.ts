import { releasedRules, withMeasured } from '../../approvals/held-statement.ts';
import type { HeldStatement } from '../../approvals/hold.ts';
import type { StatementEvent } from '../../audit/events.ts';
import { recordStatementStart } from '../../audit/record-statement.ts';
import type { RowsMeasured } from '../../policy/gates/session-gate.ts';
import { finalTransactionEnd, type RowLimit, rowCap } from '../../policy/guardrails/row-limits.ts';
import { describeQuery, describeStatement, type QueryText } from '../../sql/normalize.ts';
import type { SessionCore } from '../session-core.ts';
import { approvalRefusal, boundParametersHash, executeApproval, tellHeld } from './approval-holds.ts';
import { encodeMessage, Frontend } from './codes.ts';
import { declarationRefusal, declaredWork, EMPTY_QUERY } from './declared-work.ts';
import {
  type DeclaredWork,
  type Pending,
  type PendingExecute,
  type PendingQuery,
  type PreparedText,
  type Refusal,
  type RowCheck,
  textsOf,
} from './exchange.ts';
import { fastPathGuardrails, fastPathRefusal } from './fast-path.ts';
import { measureHeld } from './held-impact.ts';
import { bindNames, executePortal, parseMessage, queryText, targetOf } from './message-fields.ts';
import { HOLD } from './message-framer.ts';
import { ProtocolError } from './protocol-error.ts';
import {
  FUNCTION_CALL_TEXT,
  nameRefusal,
  REFUSED_PARSE,
  REFUSED_QUERY,
  UNJUDGED_EXECUTE,
} from './refusals.ts';
import { checkColumn, lastStatementStart, rowCheckMessages, withRowCheck } from './row-check.ts';
import { bindResultFormats } from './row-masker.ts';
import { isNameRefusal } from './session-names.ts';
import type { SessionState } from './session-state.ts';
import { StatementJudge, type Verdict } from './statement-judge.ts';

/** Frontend message types the proxy accepts after startup. */
const FRONTEND_TYPES = new Set<number>(Object.values(Frontend).filter((t) => t !== Frontend.Password));

/** A held Query the client cancelled while its impact was measured, answered as the server answers a cancel. */
const CANCELLED_WHILE_MEASURED: Refusal = {
  reason: 'cancelled while measured for approval',
  fields: {
    severity: 'ERROR',
    code: '57014',
    message: 'canceling statement due to user request (Gatehouse was measuring it for its approver)',
  },
};

/** Close of a prepared statement. */
function closeStatementMessage(name: string): Buffer {
  return encodeMessage(Frontend.Close, Buffer.from(`S${name}\0`, 'utf8'));
}

/** Describe of a prepared statement, as a client would send it. */
function describeStatementMessage(name: string): Buffer {
  return encodeMessage(Frontend.Describe, Buffer.from(`S${name}\0`, 'utf8'));
}

/**
 * The statement governance of client messages: each is judged by the policy in force (StatementJudge),
 * tracked in the exchange, held for its audit record, or replaced by a stand-in whose error becomes the
 * refusal.
 */
export class ClientMessages {
  private readonly state: SessionState;
  private readonly core: SessionCore;
  private readonly judge: StatementJudge;
  /** The framer's handler, made once. */
  readonly handle = (type: number, frame: Buffer) => this.onClientMessage(type, frame);

  constructor(state: SessionState, core: SessionCore) {
    this.state = state;
    this.core = core;
    this.judge = new StatementJudge(state);
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
    const { audit, config } = this.state.deps;
    const written = recordStatementStart(audit, config.audit.failClosed, this.state.context, via, texts);
    return this.core.toServer.hold(frame, written, () => refuse(this.judge.auditUnavailable()));
  }

  /**
   * A `SET gatehouse.purpose|run_id`: kept by the proxy, never sent upstream. An empty query goes in
   * its place, so the answer keeps its turn among pipelined ones and ReadyForQuery tells the real
   * transaction status; its EmptyQueryResponse becomes the SET's completion (server-messages.ts).
   */
  private declareWork(
    sql: string,
    declares: DeclaredWork,
    started: number,
    stamp: number,
  ): Buffer | typeof HOLD {
    const query: PendingQuery = {
      kind: 'query',
      sql,
      texts: describeQuery(sql),
      index: 0,
      started,
      stamp,
      declares,
    };
    this.state.names.synced(true);
    this.state.exchange.expect(query);
    return this.holdForAudit(EMPTY_QUERY, 'simple', textsOf(query), (lost) => {
      query.refusal = lost;
      query.declares = undefined;
      return REFUSED_QUERY;
    });
  }

  /** Tracks what the message will make the server answer; returns the bytes to send upstream. */
  onClientMessage(type: number, frame: Buffer): Buffer | undefined | typeof HOLD {
    switch (type) {
      case Frontend.Query: {
        const started = performance.now();
        const stamp = this.state.names.stamp();
        const sql = queryText(frame);
        const audit = this.judge.auditRefusal();
        const declared = audit ? undefined : declaredWork(sql);
        if (declared !== undefined && typeof declared !== 'string')
          return this.declareWork(sql, declared, started, stamp);
        const approval = this.approvalOf(sql);
        let verdict: Verdict = audit
          ? { refusal: audit }
          : typeof declared === 'string'
            ? { refusal: declarationRefusal(declared) }
            : (approval.refusal ?? this.judge.verdict(sql, undefined, approval.released));
        if (verdict.refreshCatalog) return HOLD;
        let approvedBy = approval.request;
        if (verdict.held && approval.released === undefined) {
          const held = this.hold(sql, verdict.held);
          if (held === HOLD) return HOLD;
          verdict = held.verdict;
          approvedBy = held.request;
        }
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
        query.touched = verdict.touched;
        if (verdict.nameEffects) query.nameEffects = verdict.nameEffects;
        if (approvedBy !== undefined && !refusal) query.approval = approvedBy;
        this.state.names.synced(true);
        if (refusal) {
          this.state.exchange.expect({ ...query, refusal });
          return REFUSED_QUERY;
        }
        this.state.exchange.expect(query);
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
        let verdict = this.judge.verdict(sql, text);
        if (verdict.refreshCatalog) return HOLD;
        // Held for approval: prepared as if released, it waits at each Execute for its parameters' approval.
        let approval: PreparedText['approval'];
        if (verdict.held) {
          const released = this.judge.verdict(sql, text, releasedRules(verdict.held));
          if (released.refreshCatalog) return HOLD;
          if (!released.refusal) {
            approval = { sql, held: verdict.held };
            verdict = released;
          }
        }
        const prepared: PreparedText = {
          ...text,
          ...(verdict.notes && { notes: verdict.notes }),
          ...(verdict.masking && { masking: verdict.masking }),
          sql,
          ...(verdict.touched?.[0] && { touched: verdict.touched[0] }),
          ...(verdict.nameEffects?.[0] && { nameEffect: verdict.nameEffects[0] }),
          ...(verdict.rows && { rows: verdict.rows }),
          ...(approval && { approval }),
        };
        // A refused Parse never reaches the server, which keeps whatever the name stood for.
        const settlement = verdict.refusal ? undefined : this.state.names.parse(name, prepared);
        const refusal = verdict.refusal ?? (settlement?.refusal && nameRefusal(settlement.refusal));
        if (refusal) {
          this.state.exchange.expect({ kind: 'parse', started: performance.now(), text, refusal });
          return REFUSED_PARSE;
        }
        this.state.exchange.expect({
          kind: 'parse',
          started: 0,
          notice: verdict.notice,
          ...(settlement && { settlement }),
        });
        if (!verdict.masking) return frame;
        // Rows of a masked statement are rewritten by column type. A driver may execute it without ever
        // describing it (JDBC past prepareThreshold), so the proxy describes it itself, right away.
        this.state.exchange.expect({ kind: 'describe', entry: prepared, internal: true });
        return Buffer.concat([frame, describeStatementMessage(name)]);
      }
      case Frontend.Bind: {
        const { portal, statement } = bindNames(frame);
        const text = this.state.names.statement(statement);
        const settlement = isNameRefusal(text)
          ? { refusal: text }
          : this.state.names.bind(portal, {
              text,
              formats: bindResultFormats(frame),
              // Only a statement an approval must release pays for reading its parameters.
              ...(text.approval && { parametersHash: boundParametersHash(frame) }),
            });
        if (settlement.refusal) {
          const refusal = nameRefusal(settlement.refusal);
          this.state.exchange.expect({ kind: 'bind', refusal, started: performance.now() });
          return REFUSED_PARSE;
        }
        this.state.exchange.expect({ kind: 'bind', settlement });
        return frame;
      }
      case Frontend.Execute: {
        const named = this.state.names.portal(executePortal(frame));
        const portal = isNameRefusal(named) ? undefined : named;
        // A mask plan made under another catalog is made again before any row is relayed; after DDL
        // through the proxy, once the catalog is reloaded (held, the Execute is handled again then).
        const replanned = portal && this.judge.replan(portal.text);
        if (replanned?.refreshCatalog) return HOLD;
        // Before anything the Execute changes: held, it is handled again once decided.
        const approval =
          !replanned?.refusal && portal?.text.approval && executeApproval(this.state, this.core, portal);
        if (approval === HOLD) return HOLD;
        // Each run of a PREPARE or DECLARE sent by Parse makes its name again.
        const makes = portal?.text.nameEffect;
        if (makes?.prepares !== undefined || makes?.declares !== undefined)
          this.state.names.admitSql([makes]);
        const text: PreparedText = portal?.text ?? UNJUDGED_EXECUTE;
        const refusal =
          this.judge.auditRefusal() ??
          (isNameRefusal(named) ? nameRefusal(named) : undefined) ??
          replanned?.refusal ??
          (approval && 'refusal' in approval ? approval.refusal : undefined);
        const started = performance.now();
        if (refusal) {
          this.state.exchange.expect({ kind: 'execute', text, started, refusal });
          return REFUSED_PARSE;
        }
        const execute: PendingExecute = {
          kind: 'execute',
          text,
          started,
          stamp: this.state.names.stamp(),
          ...(portal && { portal }),
          ...(text.notes && { notes: text.notes }),
          ...(approval && 'request' in approval && { approval: approval.request }),
        };
        this.state.exchange.expect(execute);
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
          target.kind === 'S'
            ? this.state.names.statement(target.name)
            : this.state.names.portal(target.name);
        if (isNameRefusal(entry)) {
          this.state.exchange.expect({
            kind: 'describe',
            refusal: nameRefusal(entry),
            started: performance.now(),
          });
          return REFUSED_PARSE;
        }
        this.state.exchange.expect({ kind: 'describe', entry });
        return frame;
      }
      case Frontend.Close: {
        // Closing runs nothing and shows nothing, so any name may be closed; it is forgotten everywhere.
        const target = targetOf(frame);
        this.state.exchange.expect({
          kind: 'close',
          settlement: this.state.names.close(target.kind, target.name),
        });
        return frame;
      }
      case Frontend.Sync:
        this.state.names.synced(false);
        this.state.exchange.expect({ kind: 'sync' });
        return frame;
      case Frontend.FunctionCall: {
        // The fast-path interface: its result cannot be traced, so masked sessions may not use it.
        const judged =
          this.judge.auditRefusal() ??
          fastPathRefusal(this.state) ??
          fastPathGuardrails(this.state, frame, this.judge.moment(), (refused) =>
            this.judge.logRefusal(refused),
          );
        // A function the catalog may not show yet: judged again once it is reloaded, as a Query is.
        if (judged === HOLD) return HOLD;
        const refusal = judged;
        const started = performance.now();
        this.state.names.synced(false);
        if (refusal) {
          this.state.exchange.expect({ kind: 'function', started, refusal });
          return REFUSED_QUERY;
        }
        const call: Extract<Pending, { kind: 'function' }> = { kind: 'function', started };
        this.state.exchange.expect(call);
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

  /**
   * A Query an approval rule holds: released at once (judged again past the rules released), or its
   * impact is measured (the stream waits, and the Query is handled again), then the client is told the request and the stream waits (HOLD) until it is decided, the wait ends or the
   * client cancels; then the Query is handled again and approvalOf says what became of it.
   */
  private hold(sql: string, held: HeldStatement): { verdict: Verdict; request?: string } | typeof HOLD {
    // What the approver is shown is measured first, on this session's connection, while the stream waits.
    let measuredHeld = held;
    if (!this.state.holds.releasesAtOnce(held)) {
      const taken = this.state.impact.take(sql);
      if (!taken) {
        this.state.impact.start(sql, measureHeld(this.state, this.core, sql, held));
        return HOLD;
      }
      // Cancelled while measured: no request is opened, and nothing runs.
      if (taken.cancelled) return { verdict: { refusal: CANCELLED_WHILE_MEASURED } };
      measuredHeld = withMeasured(held, taken.measured);
    }
    const start = this.state.holds.begin(sql, measuredHeld);
    if (start.run)
      return { verdict: this.judge.verdict(sql, undefined, start.released), request: start.request };
    tellHeld(this.core, start.request);
    return HOLD;
  }

  /** The held Query's decision, when this message is the one that waited. */
  private approvalOf(sql: string): { refusal?: Verdict; released?: ReadonlySet<string>; request?: string } {
    const end = this.state.holds.take(sql);
    if (!end) return {};
    if (end.run) return { released: end.released, request: end.request };
    return { refusal: { refusal: approvalRefusal(end.request) } };
  }

  /** The largest transaction count the statement's enforcing limits allow, from what is known now. */
  rowCapNow(limits: readonly RowLimit[]): number | undefined {
    const cap = rowCap(limits, {
      before: this.state.rowsBefore,
      minute: this.state.deps.rowBudget.spent(this.state.context.identity.subject),
    });
    // The database's count also holds the rows the proxy's measurements changed and rolled back.
    return cap === undefined ? undefined : cap + this.state.measuredRows;
  }

  /** The extended-protocol row check sent right after `execute`, with the pending answers it is owed. */
  private rowCheckAfter(execute: PendingExecute, rows: RowsMeasured): Buffer {
    const check: RowCheck = { rows, answering: true, owner: execute };
    const { messages, statement } = rowCheckMessages(this.rowCapNow(rows.limits));
    const stale = this.state.exchange.expectRowCheck(execute, check, statement);
    return Buffer.concat([...stale.map(closeStatementMessage), messages]);
  }
}
