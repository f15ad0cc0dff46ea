import { planAt, type TextMasking, withholdsServerText } from '../../policy/gates/postgres-masking.ts';
import { maskTextFreeform } from '../../policy/masking/mask-text-freeform.ts';
import { exemptionsInForce } from '../../policy/masking/statement-mask-plan.ts';
import type { SessionCore } from '../session-core.ts';
import { errorResponse } from './backend-writer.ts';
import { Backend, encodeMessage } from './codes.ts';
import {
  type CopyRowMasker,
  copyOutLayout,
  copyTextSplitsSafely,
  createCopyTextMasker,
} from './copy-text-masker.ts';
import { Answer, type Pending, type PortalText, type PreparedText, textAt, textsOf } from './exchange.ts';
import { maskingReport } from './masking-report.ts';
import { commandTag, errorFields, splitCommandTag, transactionStatus } from './message-fields.ts';
import { MessageScanner } from './message-framer.ts';
import { FUNCTION_CALL_TEXT, UNJUDGED_BIND, UNJUDGED_DESCRIBE, UNKNOWN_TEXT } from './refusals.ts';
import { rowCheckFailed, rowCheckPassed } from './row-check-outcome.ts';
import {
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
import type { SessionState } from './session-state.ts';

/**
 * Backend message types the proxy reads; DataRow and CopyData pass uninspected unless a result is
 * masked (see MessageScanner.want). Notices and notifications are read for masked sessions' scrubbing;
 * ParameterStatus tells how the server reads text (see server-reading.ts).
 */
export const WANTED_BACKEND_TYPES = [
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
const SET_COMPLETE = encodeMessage(Backend.CommandComplete, Buffer.from('SET\0'));

/** Command tags after which the catalog masking relies on may have changed. */
const CATALOG_CHANGING = /^(CREATE|ALTER|DROP|COMMENT|IMPORT|SECURITY LABEL|GRANT|REVOKE)\b/;

/** How the results of the statement an exchange answers are masked (undefined: shown as they are). */
function exchangeMasking(head: Pending | undefined): TextMasking | undefined {
  if (head?.kind === 'query') return head.masking;
  if (head?.kind === 'execute') return (head.text as PreparedText).masking;
  return undefined;
}

/**
 * The server's answers, matched to what was asked: recorded for the audit, rows and texts masked
 * where the statement they answer is masked, the proxy's own answers dropped.
 */
export class ServerMessages {
  private readonly state: SessionState;
  private readonly core: SessionCore;
  readonly scanner = new MessageScanner(WANTED_BACKEND_TYPES, 256 * 1024 * 1024);
  /** The masker of the COPY ... TO STDOUT now streaming, from its CopyOutResponse to its end. */
  private copyMasker: CopyRowMasker | undefined;
  /** The scanner's handler, made once. */
  readonly handle = (type: number, frame: Buffer) => this.onServerMessage(type, frame);

  constructor(state: SessionState, core: SessionCore) {
    this.state = state;
    this.core = core;
  }

  /** The client's copy of a server message, led by a guardrail warning owed for this exchange. */
  private onServerMessage(type: number, frame: Buffer): Buffer | undefined {
    const exchange = this.state.exchange;
    const head = exchange.head;
    // Decided before the answer moves the exchange on: the text belongs to the statement it answers.
    const withheld =
      (type === Backend.ErrorResponse || type === Backend.NoticeResponse) && this.withholdsServerText(head);
    if (type === Backend.EmptyQueryResponse && head?.kind === 'query' && head.declares) {
      // The empty query in place of a SET gatehouse.*: the client gets the SET's own completion.
      exchange.answer(type, frame);
      this.state.declareWork(head.declares);
      this.state.recordStatement(head, textAt(head, 0), 'ok', { command: 'SET' });
      return SET_COMPLETE;
    }
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
        this.state.recordStatement(check.owner, held.text, 'ok', held);
        const rest = this.onServerMessage(type, frame);
        return rest ? Buffer.concat([held.frame, rest]) : held.frame;
      }
      case Answer.Settled:
        if (head && 'settlement' in head) head.settlement?.done?.();
        break;
      case Answer.Described:
        if (head?.kind === 'describe') {
          if (head.entry && (this.state.scrubbing || head.internal))
            head.entry.fields = rowDescriptionFields(frame);
          if (head.internal) return undefined;
        }
        break;
      case Answer.ResultHead:
        if (head?.kind === 'query' && head.masking) {
          const plan = planAt(head.masking, head.index);
          const fields = rowDescriptionFields(frame);
          head.rowMasker = needsRowInspection(plan, fields)
            ? createRowMasker(plan, fields, this.state.deps.maskingKey)
            : undefined;
        }
        break;
      case Answer.CheckDone:
        out = rowCheckPassed(this.state, exchange.check!);
        break;
      case Answer.Completed:
        out = this.completed(head, frame);
        break;
      case Answer.Suspended:
        if (head?.kind === 'execute') {
          if (head.check) {
            head.check.held = { frame, text: head.text, command: 'SUSPENDED' };
            out = undefined;
          } else this.state.recordStatement(head, head.text, 'ok', { command: 'SUSPENDED' });
        }
        break;
      case Answer.Failed:
        out = this.failed(head, frame);
        break;
      case Answer.Ready:
        this.state.txStatus = transactionStatus(frame);
        if (this.state.txStatus === 'I') {
          this.state.rowsBefore = 0;
          this.state.measuredRows = 0;
        }
        this.state.names.ready(this.state.txStatus);
        // Other sessions see the DDL once its transaction ends: a reload before then would show them
        // the old definitions as current, and would wait on this transaction's locks.
        if (this.state.codeChanged && this.state.txStatus === 'I') {
          this.state.codeChanged = false;
          this.state.deps.catalog.invalidateCode();
        }
        if (this.state.deps.draining() && this.state.idle)
          setImmediate(() => this.core.terminate('shutdown'));
        this.state.answered();
        break;
      case Answer.FunctionResult:
        if (head?.kind === 'function')
          this.state.recordStatement(head, FUNCTION_CALL_TEXT, 'ok', { command: 'FUNCTION CALL' });
        break;
      default:
        if (type === Backend.CopyData) return this.copyMasker ? this.copyMasker(frame) : scrubCopyData(frame);
        if (type === Backend.ParameterStatus) this.reportParameter(frame);
    }
    if (out === frame) {
      if (withheld) out = withholdServerText(frame);
      else if (this.state.scrubbing) out = scrubServerText(type, frame);
    }
    this.scanner.want(Backend.DataRow, this.rowsWanted(exchange.head));
    // Text COPY rows are scanned, and masked where the plan masks columns; binary ones are not text
    // (COPY of masked columns in binary is refused before it runs, and throws here if it comes).
    if (type === Backend.CopyOutResponse) {
      this.copyMasker = this.copyMaskerFor(head, frame);
      // The masker decides by the statement's own plan, whatever the last statement checked was.
      this.scanner.want(
        Backend.CopyData,
        (this.state.scrubbing || this.copyMasker !== undefined) && frame[5] === 0,
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
      this.state.reading.report(
        frame.toString('utf8', 5, nameEnd),
        frame.toString('utf8', nameEnd + 1, valueEnd),
      );
  }

  /** A client statement's CommandComplete: recorded, or held for the row check that follows it. */
  private completed(head: Pending | undefined, frame: Buffer): Buffer | undefined {
    const { command, rows } = splitCommandTag(commandTag(frame));
    if (CATALOG_CHANGING.test(command)) this.state.deps.catalog.invalidate();
    if (command === 'COMMIT' || command === 'PREPARE TRANSACTION') {
      this.state.rowsBefore = 0;
      this.state.measuredRows = 0;
    }
    if (head?.kind === 'query') {
      const index = this.state.exchange.index;
      const plan = head.masking ? planAt(head.masking, index) : undefined;
      const masked = plan?.masked;
      const exemptions = plan && exemptionsInForce(plan);
      this.state.names.completedSql(head.nameEffects?.[index], head.stamp, command);
      const text = textAt(head, index);
      const touched = head.touched?.[index];
      if (head.check && index === (head.check.after ?? textsOf(head).length - 1)) {
        // The statement the check follows: its completion waits for the check's answer.
        head.check.held = { frame, text, command, rows, masked, exemptions, touched };
        return undefined;
      }
      this.state.recordStatement(head, text, 'ok', { command, rows, masked, exemptions, touched });
      head.started = performance.now();
      return this.withMaskingReport(masked, frame);
    } else if (head?.kind === 'execute') {
      const masking = (head.text as PreparedText).masking;
      const plan = masking ? planAt(masking, 0) : undefined;
      const masked = plan?.masked;
      const exemptions = plan && exemptionsInForce(plan);
      this.state.names.completedSql((head.text as PreparedText).nameEffect, head.stamp ?? 0, command);
      const touched = (head.text as PreparedText).touched;
      if (head.check) {
        head.check.held = { frame, text: head.text, command, rows, masked, exemptions, touched };
        return undefined;
      }
      this.state.recordStatement(head, head.text, 'ok', { command, rows, masked, exemptions, touched });
      return this.withMaskingReport(masked, frame);
    }
    return frame;
  }

  /** A completion, after a notice of its masked columns when the client asked for one. */
  private withMaskingReport(masked: readonly string[] | undefined, frame: Buffer): Buffer {
    return this.state.reportsMasking && masked && masked.length > 0
      ? Buffer.concat([maskingReport(masked), frame])
      : frame;
  }

  /** An ErrorResponse: recorded against what it answers; a refusal's stand-in error becomes the refusal. */
  private failed(head: Pending | undefined, frame: Buffer): Buffer {
    const fields = errorFields(frame);
    const sqlstate = fields.get('C');
    if (fields.get('S') === 'FATAL' || fields.get('V') === 'FATAL') this.core.endReason = 'upstream';
    if (!head) return frame;
    const check = this.state.exchange.check;
    if (head.kind === 'rowcheck') return check ? rowCheckFailed(this.state, check, fields) : frame;
    if (check) return rowCheckFailed(this.state, check, fields);
    const refusal = 'refusal' in head ? head.refusal : undefined;
    if (head.kind === 'query') {
      if (refusal) {
        for (const t of textsOf(head))
          this.state.recordStatement(head, t, 'refused', {
            reason: refusal.reason,
            sqlstate: refusal.fields.code,
          });
      } else
        this.state.recordStatement(head, textAt(head, this.state.exchange.index), 'error', {
          ...(sqlstate && { sqlstate }),
        });
      return refusal ? errorResponse(refusal.fields) : frame;
    }
    if (head.kind === 'function') {
      if (refusal)
        this.state.recordStatement(head, FUNCTION_CALL_TEXT, 'refused', {
          reason: refusal.reason,
          sqlstate: refusal.fields.code,
        });
      else this.state.recordStatement(head, FUNCTION_CALL_TEXT, 'error', { ...(sqlstate && { sqlstate }) });
      return refusal ? errorResponse(refusal.fields) : frame;
    }
    if (head.kind === 'sync') return frame;
    if ((head.kind === 'bind' || head.kind === 'describe') && head.refusal) {
      const text = head.kind === 'bind' ? UNJUDGED_BIND : UNJUDGED_DESCRIBE;
      this.state.recordStatement(
        { kind: 'execute', started: head.started ?? performance.now() },
        text,
        'refused',
        {
          reason: head.refusal.reason,
          sqlstate: head.refusal.fields.code,
        },
      );
    }
    if (head.kind === 'parse' && head.refusal) {
      this.state.recordStatement(head, head.text ?? UNKNOWN_TEXT, 'refused', {
        reason: head.refusal.reason,
        sqlstate: head.refusal.fields.code,
      });
    }
    if (head.kind === 'execute') {
      if (refusal)
        this.state.recordStatement(head, head.text, 'refused', {
          reason: refusal.reason,
          sqlstate: refusal.fields.code,
        });
      else this.state.recordStatement(head, head.text, 'error', { ...(sqlstate && { sqlstate }) });
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
    const encoding = this.state.reading.current.clientEncoding;
    if (!copyTextSplitsSafely(encoding))
      throw new Error(
        `COPY of masked columns in client encoding ${encoding ?? '(unknown)'}, whose rows cannot be split safely`,
      );
    return createCopyTextMasker(plan, copyOutLayout(frame), this.state.deps.maskingKey);
  }

  /** Whether the rows of the result now coming must be read: a masker is set or may be needed. */
  rowsWanted(head: Pending | undefined): boolean {
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
    head.rowMasker ??= createRowMasker(
      planAt(masking, 0),
      portalFields(head.portal),
      this.state.deps.maskingKey,
    );
    return head.rowMasker(frame);
  }
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
