import type { Logger } from 'pino';
import type { HeldStatement } from '../../approvals/hold.ts';
import type { SessionHolds } from '../../approvals/session-holds.ts';
import type { AuditSink } from '../../audit/events.ts';
import type { ProxyConfig } from '../../config/load.ts';
import type { Identity } from '../../identity/identity.ts';
import type { MysqlGate } from '../../policy/gates/mysql-gate.ts';
import type { SessionMasking } from '../../policy/masking/mysql-session-masking.ts';
import type { PolicySource } from '../../policy/sources.ts';
import type { QueryText } from '../../sql/normalize.ts';
import type { MysqlCodeCatalogCache } from './code-catalog-cache.ts';
import { HOLD_COMMAND } from './command-framer.ts';
import {
  CHANGE_USER,
  CURSOR,
  LOCAL_INFILE_WITHOUT_POLICY,
  UNJUDGED_EXECUTE,
  UNKNOWN_STATEMENT_ID,
  unsupportedCommand,
} from './command-refusals.ts';
import { Command } from './constants.ts';
import { mapKill, type SessionRegistry } from './kill.ts';
import { PayloadReader } from './packet-io.ts';
import type {
  Measurement,
  Pending,
  PreparedStatements,
  PreparedText,
  Refusal,
  RowsToMeasure,
} from './pending.ts';
import { ProtocolError } from './protocol-error.ts';
import type { ResponseShape } from './response-tracker.ts';
import type { RowCounting } from './row-counting.ts';
import { approvalRefusal, StatementJudge } from './statement-judge.ts';

/**
 * Command governance: what each client command becomes upstream. A statement is described, judged
 * by the gate (and for a KILL, mapped to the upstream thread), and then sent (held for its audit
 * record), counted under row limits, or refused with an answer of the proxy's own; commands a
 * governed session has no use for are refused. The session supplies the queue of owed answers and
 * the sockets through a CommandPort.
 */

/** What governing commands asks of the session. */
export interface CommandPort {
  /** The server status flags as the last answer left them. */
  status(): number;
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
          const start = this.holds.begin(sql, held);
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
          ...(masks && {
            masks: masks.results,
            masking: masks.settings,
            masked: masks.described,
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
        const verdict = this.judge.auditRefusal() ?? this.judge.verdict(sql, [text]);
        if (verdict === HOLD_COMMAND) return HOLD_COMMAND;
        if ('kind' in verdict) {
          this.port.refuse(verdict, [text], 'prepared', answerSeq, started);
          return undefined;
        }
        const masks = verdict.masking;
        const prepares: PreparedText = {
          text,
          ...withNote(verdict.notes, undefined),
          ...(verdict.rows && { rows: verdict.rows }),
          ...(masks && {
            masks: masks.results[0] ?? 'all',
            masked: masks.described[0] ?? ['*: redact'],
            withholdsServerText: masks.withholdsServerText,
          }),
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
          ...withNote(prepared?.notes, plan && 'note' in plan ? plan.note : undefined),
          ...(measure && { measure }),
          ...(masking && {
            masks: [prepared?.masks ?? 'all'],
            masked: [prepared?.masked ?? ['* (not traced): redact']],
            withholdsServerText: prepared?.withholdsServerText ?? true,
            binary: true,
            masking,
          }),
        });
        if (measure && around)
          return this.port.sendMeasured(measure, around, frame, 'prepared', [text], answerSeq, started);
        return this.port.holdForAudit(frame, 'prepared', [text], answerSeq, started);
      }
      case Command.STMT_CLOSE: {
        const id = new PayloadReader(payload, 1).u32();
        this.prepared.close(id);
        return frame;
      }
      case Command.STMT_SEND_LONG_DATA:
        return frame;
      case Command.STMT_RESET:
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
