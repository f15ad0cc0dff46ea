import type { Logger } from 'pino';
import { releasedRules } from '../../approvals/held-statement.ts';
import type { HeldStatement } from '../../approvals/hold.ts';
import type { SessionHolds } from '../../approvals/session-holds.ts';
import type { Identity } from '../../identity/identity.ts';
import type { MysqlGate, MysqlTextMasking } from '../../policy/gates/mysql-gate.ts';
import { approvalRefusal, executeApproval } from './approval-holds.ts';
import { HOLD_COMMAND } from './command-framer.ts';
import type { CommandDeps, CommandPort } from './command-port.ts';
import {
  CHANGE_USER,
  CURSOR,
  LOCAL_INFILE_WITHOUT_POLICY,
  UNJUDGED_EXECUTE,
  UNKNOWN_STATEMENT_ID,
  unsupportedCommand,
} from './command-refusals.ts';
import { Command } from './constants.ts';
import { mapKill } from './kill.ts';
import { PayloadReader } from './packet-io.ts';
import type { PreparedStatements, PreparedText, Refusal } from './pending.ts';
import { ProtocolError } from './protocol-error.ts';
import type { RowCounting } from './row-counting.ts';
import { StatementJudge } from './statement-judge.ts';

/**
 * Command governance: what each client command becomes upstream. A statement is described, judged
 * by the gate (and for a KILL, mapped to the upstream thread), and then sent (held for its audit
 * record), counted under row limits, or refused with an answer of the proxy's own; commands a
 * governed session has no use for are refused. The session supplies the queue of owed answers and
 * the sockets through a CommandPort.
 */
export class CommandGovernor {
  private readonly port: CommandPort;
  private readonly deps: CommandDeps;
  private readonly gate: MysqlGate;
  private readonly identity: Identity;
  private readonly counting: RowCounting;
  private readonly prepared: PreparedStatements;
  /** The client is sending a LOAD DATA LOCAL file: its packets are data, not commands. */
  private uploading = false;
  /** The policy's verdicts on the texts the client sends. */
  private readonly judge: StatementJudge;
  private readonly holds: SessionHolds;

  constructor(
    port: CommandPort,
    deps: CommandDeps,
    session: {
      gate: MysqlGate;
      identity: Identity;
      logger: Logger;
      holds: SessionHolds;
      counting: RowCounting;
      prepared: PreparedStatements;
    },
  ) {
    this.port = port;
    this.deps = deps;
    this.gate = session.gate;
    this.identity = session.identity;
    this.holds = session.holds;
    this.counting = session.counting;
    this.prepared = session.prepared;
    this.judge = new StatementJudge(session.gate, session, deps, port);
  }

  /** The server asked for the client's file (LOAD DATA LOCAL): the client's next packets are its data. */
  uploadStarted(): void {
    this.uploading = true;
  }

  /** Routines the held command named that the catalog did not know (asked for once). */
  takeUnknownRoutines(): readonly string[] {
    return this.judge.takeUnknownRoutines();
  }

  /** Decides what one client command becomes upstream; returns the bytes to send (or nothing). */
  onCommand(frame: Buffer, payload: Buffer, lastSeq: number): Buffer | undefined | typeof HOLD_COMMAND {
    if (this.uploading) {
      // LOAD DATA LOCAL: the file's packets go up as they come; an empty packet ends it.
      if (payload.length === 0) this.uploading = false;
      return frame;
    }
    if (payload.length === 0) throw new ProtocolError('empty command packet');
    // A statement under row limits is being counted: what it changed may still be rolled back, so
    // nothing else may run in its transaction before the decision.
    if (this.counting.counting) return this.port.hold();
    const command = payload[0]!;
    const answerSeq = (lastSeq + 1) & 0xff;
    const started = performance.now();
    switch (command) {
      case Command.QUERY: {
        const sql = payload.toString('utf8', 1);
        const kill = this.killRewrite(sql, answerSeq, started);
        if (kill) return kill === 'refused' ? undefined : kill;
        // Described before judging: the text is read under the sql_mode in force before it runs.
        const texts = this.gate.describe(sql);
        const localInfiles = this.gate.localInfiles(sql);
        const approval = this.holds.take(sql);
        let verdict =
          this.judge.auditRefusal() ??
          (approval && !approval.run ? approvalRefusal(approval.request) : undefined) ??
          (localInfiles.length > 0 && !this.deps.policy() ? LOCAL_INFILE_WITHOUT_POLICY : undefined) ??
          this.judge.verdict(sql, texts, approval?.run ? approval.released : undefined);
        let approvedBy = approval?.run ? approval.request : undefined;
        const held = verdict === HOLD_COMMAND ? undefined : (verdict as { held?: HeldStatement }).held;
        if (held && !approval) {
          // MySQL has no asynchronous notice: the session simply waits, then runs or answers why not.
          const measured = this.port.measureHeld(sql, held);
          if (measured === HOLD_COMMAND) return HOLD_COMMAND;
          const start = this.holds.begin(sql, measured);
          if (!start.run) return HOLD_COMMAND;
          verdict = this.judge.verdict(sql, texts, start.released);
          approvedBy = start.request;
        }
        if (verdict === HOLD_COMMAND) return HOLD_COMMAND;
        if ('kind' in verdict) {
          this.port.refuse(verdict, texts, 'text', answerSeq, started);
          return undefined;
        }
        const masks = verdict.masking;
        const plan = verdict.rows && this.port.planRows(verdict.rows);
        if (plan === HOLD_COMMAND) return HOLD_COMMAND;
        if (plan && 'kind' in plan) {
          this.port.refuse(plan, texts, 'text', answerSeq, started);
          return undefined;
        }
        const measure = plan && 'limits' in plan ? plan : undefined;
        const around = measure && this.counting.begin(measure);
        this.port.expect('results', {
          via: 'text',
          texts,
          started,
          command: 'QUERY',
          ...withNote(
            approvedBy === undefined ? verdict.notes : [...verdict.notes, `approval ${approvedBy}`],
            plan && 'note' in plan ? plan.note : undefined,
          ),
          ...(measure && { measure }),
          ...(verdict.touched && { touched: verdict.touched }),
          ...(masks && {
            masks: masks.results,
            masking: masks.settings,
            masked: masks.described,
            exemptions: masks.exemptions,
            withholdsServerText: masks.withholdsServerText,
          }),
          localInfiles,
          ...(this.judge.changesCode && { changesCode: true }),
        });
        if (measure && around)
          return this.port.sendMeasured(measure, around, frame, 'text', texts, answerSeq, started);
        return this.port.holdForAudit(frame, 'text', texts, answerSeq, started);
      }
      case Command.STMT_PREPARE: {
        const sql = payload.toString('utf8', 1);
        const text = this.gate.describeOne(sql);
        let verdict = this.judge.auditRefusal() ?? this.judge.verdict(sql, [text]);
        if (verdict === HOLD_COMMAND) return HOLD_COMMAND;
        // Held for approval: prepared as if released, each execution waits for its parameters' approval.
        const held = (verdict as { held?: HeldStatement }).held;
        if (held) {
          const released = this.judge.verdict(sql, [text], releasedRules(held));
          if (released === HOLD_COMMAND) return HOLD_COMMAND;
          if (!('kind' in released)) verdict = released;
        }
        if ('kind' in verdict) {
          this.port.refuse(verdict, [text], 'prepared', answerSeq, started);
          return undefined;
        }
        const prepares: PreparedText = {
          text,
          ...withNote(verdict.notes, undefined),
          ...(verdict.rows && { rows: verdict.rows }),
          ...(verdict.touched?.[0] && { touched: verdict.touched[0] }),
          ...(verdict.masking && { masking: verdict.masking, sql }),
          ...(held && { approval: { sql, held } }),
        };
        // MariaDB's COM_STMT_EXECUTE of id -1 (pipelined after this prepare) runs this statement.
        this.prepared.last = prepares;
        this.port.expect('prepare', {
          started,
          command: 'PREPARE',
          prepares,
        });
        return frame;
      }
      case Command.STMT_EXECUTE: {
        const r = new PayloadReader(payload, 1);
        const id = r.u32();
        const flags = r.u8();
        const prepared = this.prepared.get(id);
        const text = prepared?.text ?? UNJUDGED_EXECUTE;
        // Only statements whose COM_STMT_PREPARE Gatehouse judged run: an id it did not see prepared
        // (or -1 after a failed prepare) has no analysis to mask it by.
        const audit = this.judge.auditRefusal() ?? (prepared ? undefined : UNKNOWN_STATEMENT_ID);
        if (audit) {
          this.port.refuse(audit, [text], 'prepared', answerSeq, started);
          return undefined;
        }
        const masking = this.port.masking();
        if (flags & 0x07) {
          this.port.refuse(CURSOR, [text], 'prepared', answerSeq, started);
          return undefined;
        }
        // A mask plan made under another catalog is made again before any row is relayed; after DDL
        // through the proxy, once the catalog is reloaded (held, the command is handled again then).
        const replanned = prepared && this.replan(prepared);
        if (replanned === HOLD_COMMAND) return HOLD_COMMAND;
        if (replanned) {
          this.port.refuse(replanned, [text], 'prepared', answerSeq, started);
          return undefined;
        }
        // Before anything the execution changes: held, it is handled again once decided.
        const approval =
          prepared?.approval &&
          executeApproval(this.holds, this.prepared, id, prepared, payload, (sql, held, bound) =>
            this.port.measureHeld(sql, held, bound),
          );
        if (approval === HOLD_COMMAND) return HOLD_COMMAND;
        if (approval && 'refusal' in approval) {
          this.port.refuse(approval.refusal, [text], 'prepared', answerSeq, started);
          return undefined;
        }
        const sent = approval?.rebound ?? frame;
        const plan = prepared?.rows && this.port.planRows(prepared.rows);
        if (plan === HOLD_COMMAND) return HOLD_COMMAND;
        if (plan && 'kind' in plan) {
          this.port.refuse(plan, [text], 'prepared', answerSeq, started);
          return undefined;
        }
        const measure = plan && 'limits' in plan ? plan : undefined;
        const around = measure && this.counting.begin(measure);
        this.port.expect('results', {
          via: 'prepared',
          texts: [text],
          started,
          command: 'EXECUTE',
          ...withNote(
            approval ? [...(prepared?.notes ?? []), `approval ${approval.request}`] : prepared?.notes,
            plan && 'note' in plan ? plan.note : undefined,
          ),
          ...(measure && { measure }),
          ...(prepared?.touched && { touched: [prepared.touched] }),
          ...(masking && executionMasks(prepared?.masking)),
          ...(masking && { binary: true, masking }),
        });
        if (measure && around)
          return this.port.sendMeasured(measure, around, sent, 'prepared', [text], answerSeq, started);
        return this.port.holdForAudit(sent, 'prepared', [text], answerSeq, started);
      }
      case Command.STMT_CLOSE: {
        const id = new PayloadReader(payload, 1).u32();
        this.prepared.close(id);
        return frame;
      }
      case Command.STMT_SEND_LONG_DATA:
        this.prepared.longData(new PayloadReader(payload, 1).u32(), true);
        return frame;
      case Command.STMT_RESET:
        this.prepared.longData(new PayloadReader(payload, 1).u32(), false);
        this.port.expect('single', { started, command: 'STMT RESET' });
        return frame;
      case Command.PING:
      case Command.SET_OPTION:
      case Command.STATISTICS:
        this.port.expect('single', { started, command: commandName(command) });
        return frame;
      case Command.INIT_DB: {
        const database = payload.toString('utf8', 1);
        const texts = [{ statement: `USE \`${database.replaceAll('`', '``')}\``, fingerprint: null }];
        this.port.expect('single', { via: 'text', texts, started, command: 'INIT DB' });
        return this.port.holdForAudit(frame, 'text', texts, answerSeq, started);
      }
      case Command.FIELD_LIST:
        this.port.expect('field-list', { started, command: 'FIELD LIST' });
        return frame;
      case Command.RESET_CONNECTION:
        this.port.expect('single', { started, command: 'RESET CONNECTION', resets: true });
        return frame;
      case Command.QUIT:
        this.port.quit();
        return frame;
      case Command.PROCESS_KILL: {
        const target = new PayloadReader(payload, 1).u32();
        const rewritten = this.killRewrite(`KILL ${target}`, answerSeq, started);
        return rewritten === 'refused' || rewritten === undefined ? undefined : rewritten;
      }
      case Command.CHANGE_USER:
        this.port.refuse(
          CHANGE_USER,
          [{ statement: '<change user>', fingerprint: null }],
          'text',
          answerSeq,
          started,
        );
        return undefined;
      default: {
        const { refusal, text } = unsupportedCommand(command);
        this.port.refuse(refusal, [text], 'text', answerSeq, started);
        return undefined;
      }
    }
  }

  /**
   * Before an execution of a prepared statement whose masks were planned under another catalog or
   * masking than the ones in force (a view redefined since, by another session): its text judged
   * again, whose masks then replace the kept ones; the refusal when it is refused now; HOLD_COMMAND
   * when DDL through the proxy has outdated the catalog, which is reloaded first. Undefined when the
   * kept plan is in force: the common case costs two compares.
   */
  private replan(prepared: PreparedText): Refusal | typeof HOLD_COMMAND | undefined {
    const kept = prepared.masking;
    if (!kept || prepared.sql === undefined) return undefined;
    if (this.gate.inForce(kept, this.deps.code.outdated)) return undefined;
    // Judged as at prepare: a statement prepared as an approval released it is judged so again.
    const released = prepared.approval && releasedRules(prepared.approval.held);
    const verdict = this.judge.verdict(prepared.sql, [prepared.text], released);
    if (verdict === HOLD_COMMAND) return HOLD_COMMAND;
    if ('kind' in verdict) return { kind: verdict.kind, message: verdict.message, reason: verdict.reason };
    prepared.masking = verdict.masking;
    prepared.touched = verdict.touched?.[0];
    return undefined;
  }

  /**
   * A KILL goes upstream for the thread the client's id maps to (kill.ts); 'refused' when answered
   * already, undefined when `sql` is no KILL.
   */
  private killRewrite(sql: string, answerSeq: number, started: number): Buffer | 'refused' | undefined {
    const kill = mapKill(sql, this.deps.sessions, this.identity.subject);
    if (!kill) return undefined;
    if ('refusal' in kill) {
      this.port.refuse(kill.refusal, [kill.text], 'text', answerSeq, started);
      return 'refused';
    }
    this.port.expect('results', { via: 'text', texts: [kill.text], started, command: 'KILL' });
    return this.port.holdForAudit(kill.upstream, 'text', [kill.text], answerSeq, started);
  }
}

/**
 * The masks of an execution's result, from its statement's plan; untraced (prepared while the session
 * saw clear values, masked since a policy reload), every column is masked.
 */
function executionMasks(plan: MysqlTextMasking | undefined) {
  if (!plan)
    return { masks: ['all' as const], masked: [['* (not traced): redact']], withholdsServerText: true };
  return {
    masks: [plan.results[0] ?? ('all' as const)],
    masked: [plan.described[0] ?? ['*: redact']],
    ...(plan.exemptions[0] && { exemptions: [plan.exemptions[0]] }),
    withholdsServerText: plan.withholdsServerText,
  };
}

/** The notes with one more, when there is one. */
function withNote(
  notes: readonly string[] | undefined,
  note: string | undefined,
): { notes?: readonly string[] } {
  const all = [...(notes ?? []), ...(note ? [note] : [])];
  return all.length > 0 ? { notes: all } : {};
}

function commandName(command: number): string {
  for (const [name, value] of Object.entries(Command))
    if (value === command) return name.replaceAll('_', ' ');
  return `0x${command.toString(16)}`;
}
