import { recordSessionEnd } from '../../audit/record-statement.ts';
import { type FatalCause, type RelayProtocol, SessionCore } from '../session-core.ts';
import { errorResponse } from './backend-writer.ts';
import { ClientMessages } from './client-messages.ts';
import { Backend, encodeMessage, Frontend } from './codes.ts';
import { MessageFramer } from './message-framer.ts';
import { ProtocolError } from './protocol-error.ts';
import { ServerMessages } from './server-messages.ts';
import type { SessionDeps } from './session-deps.ts';
import { SessionState } from './session-state.ts';
import type { Established } from './startup.ts';

/** Ends the server's session when the client did not send its own Terminate. */
const TERMINATE = encodeMessage(Frontend.Terminate, Buffer.alloc(0));

/**
 * A running session, from an established connection: the session core relays, ClientMessages
 * governs what the client sends, ServerMessages matches and masks what the server answers.
 */
export class PostgresSession implements RelayProtocol {
  readonly id: string;
  private readonly core: SessionCore;
  private readonly deps: SessionDeps;
  private readonly established: Established;
  private readonly state: SessionState;
  private readonly framer: MessageFramer;
  private readonly clientMessages: ClientMessages;
  private readonly serverMessages: ServerMessages;
  private readonly startedAt = Date.now();

  constructor(id: string, established: Established, deps: SessionDeps) {
    this.id = id;
    this.established = established;
    this.deps = deps;
    const { client } = established;
    this.state = new SessionState(established, deps, {
      session: id,
      identity: established.identity,
      client: { address: client.remoteAddress ?? '', port: client.remotePort ?? 0 },
      database: deps.config.upstream.database,
      protocol: 'postgres',
      ...(established.application !== undefined && { application: established.application }),
      ...(established.purpose !== undefined && { purpose: established.purpose }),
      ...(established.runId !== undefined && { runId: established.runId }),
      ...(established.mcpTool !== undefined && { mcpTool: established.mcpTool }),
    });
    this.framer = new MessageFramer(deps.config.limits.maxMessageBytes);
    this.core = new SessionCore(
      { client, server: established.upstream.socket, metrics: deps.metrics, logger: established.logger },
      this,
    );
    this.clientMessages = new ClientMessages(this.state, this.core);
    this.serverMessages = new ServerMessages(this.state, this.core);
    // A statement waiting for approval never reached the server: a cancel, or the session's end, withdraws it.
    deps.cancelKeys.onCancel(established.cancelProcessId, () => {
      this.state.holds.cancel();
      this.state.impact.cancel();
    });
    this.core.whenClosed(() => this.state.holds.cancel());
  }

  /** Runs `listener` once the session has ended. */
  whenClosed(listener: () => void): void {
    this.core.whenClosed(listener);
  }

  /** True while the session has no statement in flight and no open transaction. */
  get idle(): boolean {
    return this.state.idle;
  }

  /** Ends the session as the server would on an administrator's shutdown. */
  terminate(reason: string): void {
    this.core.terminate(reason);
  }

  close(reason: string): void {
    this.core.close(reason);
  }

  start(): void {
    const { tls } = this.established;
    this.deps.audit.record({ type: 'connection.start', context: this.state.context, tls });
    this.state.logger.info({ database: this.deps.config.upstream.database, tls }, 'session started');
    this.core.start(this.established.upstream.leftover, this.established.leftover);
  }

  // RelayProtocol: what the session core asks of PostgreSQL.

  clientChunk(chunk: Buffer, out: (bytes: Buffer) => void): void {
    this.framer.push(chunk, this.clientMessages.handle, out);
  }

  afterClientChunk(): void {
    if (this.framer.holding && this.state.holds.waiting) {
      // Once per wait: more of the client's bytes may arrive while it is held.
      const waiting = this.state.holds.resumeAfter();
      if (waiting)
        this.core.holdClientUntil(waiting, (out) => this.framer.resume(this.clientMessages.handle, out));
    } else if (this.framer.holding && this.state.impact.waiting) {
      const measuring = this.state.impact.resumeAfter();
      if (measuring)
        this.core.holdClientUntil(measuring, (out) => this.framer.resume(this.clientMessages.handle, out));
    } else if (this.framer.holding && !this.state.catalogRefreshed) this.refreshCatalogThenResume();
    // An Execute sent when nothing else is outstanding (the next page of a suspended portal) is answered
    // by DataRows straight away: whether they are read must be decided now, not at a later server message.
    this.serverMessages.scanner.want(
      Backend.DataRow,
      this.serverMessages.rowsWanted(this.state.exchange.head),
    );
  }

  holdingClient(): boolean {
    return this.framer.holding;
  }

  serverChunk(chunk: Buffer, out: (bytes: Buffer) => void): void {
    // The proxy's own measuring queries of a held statement: their answers never reach the client.
    const rest = this.state.probe ? this.state.probe.push(chunk) : chunk;
    if (!rest || rest.length === 0) return;
    this.serverMessages.scanner.scan(rest, this.serverMessages.handle, out);
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
    this.deps.cancelKeys.release(this.established.cancelProcessId);
    recordSessionEnd(
      { audit: this.deps.audit, metrics: this.deps.metrics, logger: this.state.logger },
      this.state.context,
      this.startedAt,
      this.state.statementCount,
      reason,
    );
  }

  /**
   * A statement named a routine the catalog does not know (created directly on the database, or
   * since the last load): the client's stream waits while the catalog reloads, then the statement
   * is judged again, once. Still unknown, it is refused.
   */
  private refreshCatalogThenResume(): void {
    this.state.catalogRefreshed = true;
    this.state.logger.debug('statement names a routine the catalog does not know: reloading the catalog');
    this.core.holdClientUntil(this.deps.catalog.refresh(), (out) => {
      this.framer.resume(this.clientMessages.handle, out);
      this.state.catalogRefreshed = false;
    });
  }
}
