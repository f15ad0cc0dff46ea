import type { Socket } from 'node:net';
import { type SecureContext, TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { clientApplicationField, declaredWorkFields } from '../../audit/client-application.ts';
import { AuthError, type Identity } from '../../identity/identity.ts';
import { PostgresGate } from '../../policy/gates/postgres-gate.ts';
import { grantsFor } from '../../policy/grants-for.ts';
import { toolRefusal } from '../../policy/mcp-tools.ts';
import type { ConnectionOrigin } from '../in-process-channel.ts';
import {
  authenticationCleartextPassword,
  authenticationOk,
  backendKeyData,
  negotiateProtocolVersion,
  parameterStatus,
  readyForQuery,
} from './backend-writer.ts';
import { sendCancel } from './cancel.ts';
import { Frontend, StartupCode } from './codes.ts';
import { wantsMaskingReport } from './masking-report.ts';
import { passwordText } from './message-fields.ts';
import { ProtocolError } from './protocol-error.ts';
import { ReportedReading } from './reported-reading.ts';
import type { SessionDeps } from './session-deps.ts';
import { StartupRefusal, startupSetting, upstreamStartupParameters } from './startup-parameters.ts';
import { parseStartupParameters, StartupReader } from './startup-reader.ts';
import { connectUpstream, type UpstreamConnection, upstreamOptions } from './upstream.ts';
import { UpstreamError } from './upstream-error.ts';

const MAX_STARTUP_PACKET = 10_000;
const MAX_PASSWORD_MESSAGE = 64 * 1024;

/** A client admitted, its upstream logged in, and the client told so: what a running session is made of. */
export interface Established {
  /** The client's socket (a TLS socket when it asked for TLS), paused. */
  readonly client: Socket;
  readonly tls: boolean;
  readonly identity: Identity;
  /** The connection's logger, naming the identity. */
  readonly logger: Logger;
  /** Paused, with no listener of ours. */
  readonly upstream: UpstreamConnection;
  /** What the client sent after its startup, unread. */
  readonly leftover: Buffer;
  readonly gate: PostgresGate;
  /** How the server reads text, from the parameters it reported at login on. */
  readonly reading: ReportedReading;
  /** The key the client cancels with (see cancel-keys.ts), released when the session ends. */
  readonly cancelProcessId: number;
  /** The application name the client declared at startup (see clientApplication). */
  readonly application?: string;
  /** `gatehouse.purpose` and `gatehouse.run_id` as the client declared them (see declaredWorkFields). */
  readonly purpose?: string;
  readonly runId?: string;
  /** The client asked to be told which columns each statement masked (masking-report.ts). */
  readonly reportsMasking: boolean;
  /** The MCP tool whose call this is, known from the connection's origin (never from the client). */
  readonly mcpTool?: string;
}

/** A startup the proxy refuses for policy or availability, with the SQLSTATE the client gets. */
export class RefusedStart extends Error {
  readonly sqlstate: string;
  constructor(sqlstate: string, message: string) {
    super(message);
    this.sqlstate = sqlstate;
  }
}

/** What the startup asks of the connection it runs in. */
export interface StartupHost {
  /** The connection ended meanwhile (a startup timeout, a shutdown, the client gone). */
  readonly closed: boolean;
  close(reason: string): void;
}

/**
 * One client's startup: SSL and GSSENC negotiation, the TLS upgrade, cancel-request forwarding,
 * authentication, admission, and the upstream login. Throws AuthError, RefusedStart or ProtocolError
 * for what the client is told; the connection turns those into its FATAL.
 */
export class Startup {
  /** The client's socket; replaced by the TLS socket once upgraded. */
  client: Socket;
  tls = false;
  logger: Logger;
  private readonly deps: SessionDeps;
  private readonly host: StartupHost;
  private readonly origin: ConnectionOrigin | undefined;

  constructor(
    client: Socket,
    logger: Logger,
    deps: SessionDeps,
    host: StartupHost,
    origin?: ConnectionOrigin,
  ) {
    this.client = client;
    this.logger = logger;
    this.deps = deps;
    this.host = host;
    this.origin = origin;
  }

  /** The established connection; undefined for a cancel request or a client gone meanwhile. */
  async run(): Promise<Established | undefined> {
    const { config, authenticator } = this.deps;
    const reader = new StartupReader();
    reader.attach(this.client);
    const timer = setTimeout(() => {
      this.logger.info('client did not finish startup in time');
      this.host.close('startup-timeout');
    }, config.limits.startupTimeoutMs);
    try {
      let params: Map<string, string> | undefined;
      let negotiate: string[] | undefined;
      while (!params) {
        const packet = await reader.readUntyped(MAX_STARTUP_PACKET);
        const code = packet.readInt32BE(0);
        if (code === StartupCode.SslRequest) {
          if (reader.bufferedBytes > 0)
            throw new ProtocolError('received unencrypted data after SSL request');
          if (this.deps.tlsContext && !this.tls) {
            this.client.write('S');
            reader.detach();
            this.client = await this.upgradeToTls(this.client, this.deps.tlsContext);
            this.tls = true;
            reader.attach(this.client);
          } else this.client.write('N');
          continue;
        }
        if (code === StartupCode.GssEncRequest) {
          this.client.write('N');
          continue;
        }
        if (code === StartupCode.CancelRequest) {
          clearTimeout(timer);
          reader.detach();
          await this.forwardCancel(packet);
          return undefined;
        }
        const major = code >>> 16;
        const minor = code & 0xffff;
        if (major !== 3) {
          throw new ProtocolError(
            `unsupported frontend protocol ${major}.${minor}: server supports 3.0`,
            '0A000',
          );
        }
        params = parseStartupParameters(packet);
        const unknownOptions = [...params.keys()].filter((k) => k.startsWith('_pq_.'));
        if (minor > 0 || unknownOptions.length > 0) negotiate = unknownOptions;
      }
      if (config.clientTls?.required && !this.tls) {
        throw new AuthError('this Gatehouse requires TLS: connect with sslmode=require or stronger', '28000');
      }
      const user = params.get('user') ?? '';
      if (negotiate) this.client.write(negotiateProtocolVersion(negotiate));

      let password: string | undefined;
      if (authenticator.needsPassword) {
        this.client.write(authenticationCleartextPassword());
        const { type, frame } = await reader.readTyped(MAX_PASSWORD_MESSAGE);
        if (type !== Frontend.Password) throw new ProtocolError('expected a password message');
        password = passwordText(frame);
      }
      let identity: Identity;
      try {
        identity = await authenticator.authenticate(password === undefined ? { user } : { user, password });
      } catch (error) {
        const reason = error instanceof AuthError ? error.message : 'authentication failed';
        const sqlstate = error instanceof AuthError ? error.sqlstate : '28P01';
        this.refuseConnection(user, params.get('database') ?? user, sqlstate, reason);
        throw new AuthError(reason, sqlstate);
      }
      this.logger = this.logger.child({
        subject: identity.subject,
        ...(identity.pod && { pod: identity.pod }),
      });

      if (this.deps.audit.failure !== undefined && config.audit.failClosed) {
        this.refuseConnection(user, config.upstream.database, '58030', 'audit log unavailable');
        throw new RefusedStart(
          '58030',
          `Gatehouse cannot write its audit log, so it accepts no connections: ${this.deps.audit.failure}`,
        );
      }

      // Who may connect is the policy's first question: an identity no grant names gets no session.
      const policy = this.deps.policy();
      if (policy && grantsFor(identity, policy, config.upstream.database).length === 0) {
        const reason = `no DatabaseAccess grants ${identity.subject} access to database "${config.upstream.database}"`;
        this.refuseConnection(user, config.upstream.database, '28000', reason);
        throw new RefusedStart('28000', `Gatehouse: ${reason}`);
      }
      const tool = this.origin?.mcpTool;
      const toolRefused = tool && toolRefusal(tool, identity, policy, config.upstream.database);
      if (toolRefused) {
        this.refuseConnection(user, config.upstream.database, '42501', toolRefused);
        throw new RefusedStart('42501', `Gatehouse: ${toolRefused}`);
      }

      let upstreamParams: Record<string, string>;
      try {
        upstreamParams = upstreamStartupParameters(params, identity);
      } catch (error) {
        if (!(error instanceof StartupRefusal)) throw error;
        this.refuseConnection(user, config.upstream.database, '42501', error.message);
        throw new RefusedStart('42501', error.message);
      }

      const reading = new ReportedReading();
      const gate = new PostgresGate({
        policy: this.deps.policy,
        identity,
        database: config.upstream.database,
        code: () => this.deps.catalog.current()?.code,
        snapshot: () => this.deps.catalog.current(),
        misread: (sql) => reading.misread(sql),
        ...(this.deps.policyHooks && { hooks: this.deps.policyHooks }),
        access: this.deps.approvals,
        columnLineage: config.audit.columnLineage,
        ...(tool && { mcpTool: tool }),
      });
      // Masked sessions wait for a first catalog, loaded over a connection of its own meanwhile.
      // Guarded ones too: calls of stored code are judged by what the catalog says the code does.
      const catalogReady = gate.settings() || this.deps.policy() ? this.deps.catalog.ready() : undefined;
      const upstream = await this.openUpstream(upstreamParams);
      await catalogReady;
      const leftover = reader.detach();
      clearTimeout(timer);
      // The client may have gone while we authenticated or connected; its 'close' has then fired already.
      if (this.host.closed || this.client.destroyed || this.client.readableEnded) {
        upstream.socket.destroy();
        this.host.close('client');
        return undefined;
      }
      const cancelProcessId = this.greet(upstream, reading);
      return {
        client: this.client,
        tls: this.tls,
        identity,
        logger: this.logger,
        upstream,
        leftover,
        gate,
        reading,
        cancelProcessId,
        ...clientApplicationField(params.get('application_name')),
        ...declaredWorkFields(
          startupSetting(params, 'gatehouse.purpose'),
          startupSetting(params, 'gatehouse.run_id'),
        ),
        reportsMasking: wantsMaskingReport(params),
        ...(tool !== undefined && { mcpTool: tool }),
      };
    } catch (error) {
      clearTimeout(timer);
      reader.detach();
      throw error;
    }
  }

  /** Tells the client it is in, as the server told us; returns the process id of the client's cancel key. */
  private greet(upstream: UpstreamConnection, reading: ReportedReading): number {
    // A server without cancel keys (some poolers, PGlite) still gets a key for the client, which then cancels nothing.
    const key = this.deps.cancelKeys.issue(
      upstream.backendKey ?? { processId: 0, secretKey: Buffer.alloc(0) },
    );
    const hello: Buffer[] = [authenticationOk()];
    for (const [name, value] of upstream.parameters) {
      hello.push(parameterStatus(name, value));
      reading.report(name, value);
    }
    hello.push(
      backendKeyData(key.processId, key.secretKey),
      readyForQuery(upstream.transactionStatus ?? 'I'),
    );
    this.client.write(Buffer.concat(hello));
    return key.processId;
  }

  private upgradeToTls(socket: Socket, secureContext: SecureContext): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const secure = new TLSSocket(socket, { isServer: true, secureContext });
      const onError = (error: Error) =>
        reject(new ProtocolError(`TLS handshake failed: ${error.message}`, '08P01'));
      secure.once('secure', () => {
        secure.off('error', onError);
        secure.on('error', (error) => this.logger.debug({ err: error.message }, 'client TLS error'));
        resolve(secure);
      });
      secure.once('error', onError);
    });
  }

  private async openUpstream(parameters: Record<string, string>): Promise<UpstreamConnection> {
    const u = this.deps.config.upstream;
    try {
      return await connectUpstream(upstreamOptions(u, parameters));
    } catch (error) {
      const upstreamError = error instanceof UpstreamError ? error : undefined;
      this.deps.metrics.upstreamError(upstreamError?.failure ?? 'network');
      this.deps.metrics.connection('failed');
      this.logger.error(
        { err: error instanceof Error ? error.message : String(error), upstream: `${u.host}:${u.port}` },
        'cannot open the upstream connection',
      );
      // The client learns that the database is unavailable, not the proxy's credentials or addresses.
      const tooMany = upstreamError?.sqlstate === '53300';
      throw new RefusedStart(
        tooMany ? '53300' : '08006',
        tooMany
          ? 'the database has too many connections'
          : 'Gatehouse could not connect to the database; see the proxy log',
      );
    }
  }

  private async forwardCancel(packet: Buffer): Promise<void> {
    this.deps.metrics.connection('cancel');
    if (packet.length < 12) {
      this.client.destroy();
      return;
    }
    const processId = packet.readInt32BE(4);
    const target = this.deps.cancelKeys.lookup(processId, packet.subarray(8));
    // Like PostgreSQL, never tell the requester whether the key matched.
    this.client.destroy();
    if (!target || target.secretKey.length === 0) {
      this.logger.info('cancel request with an unknown key ignored');
      return;
    }
    const u = this.deps.config.upstream;
    try {
      await sendCancel({
        host: u.host,
        port: u.port,
        tls: u.tls,
        processId: target.processId,
        secretKey: target.secretKey,
      });
      this.logger.info('cancel request forwarded');
    } catch (error) {
      this.logger.warn(
        { err: error instanceof Error ? error.message : String(error) },
        'cancel request could not be forwarded',
      );
    }
  }

  private refuseConnection(user: string, database: string, sqlstate: string, reason: string): void {
    this.deps.metrics.connection('refused');
    this.deps.audit.record({
      type: 'connection.refused',
      client: { address: this.client.remoteAddress ?? '', port: this.client.remotePort ?? 0 },
      protocol: 'postgres',
      ...(this.origin && { mcpTool: this.origin.mcpTool }),
      user,
      database,
      sqlstate,
      reason,
    });
  }
}
