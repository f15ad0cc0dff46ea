import type { Socket } from 'node:net';
import type { SecureContext } from 'node:tls';
import type { Logger } from 'pino';
import { clientApplicationField, declaredWorkFields } from '../../audit/client-application.ts';
import type { AuditSink } from '../../audit/events.ts';
import type { ProxyConfig } from '../../config/load.ts';
import { AuthError, type Authenticator, type Identity } from '../../identity/identity.ts';
import type { SessionMetrics } from '../../metrics.ts';
import type { MysqlGate } from '../../policy/gates/mysql-gate.ts';
import { grantsFor } from '../../policy/grants-for.ts';
import type { MaskingKey } from '../../policy/masking/masking-key.ts';
import type {
  AccessExemptionSource,
  MaskingSettingsCache,
} from '../../policy/masking/masking-settings-cache.ts';
import { type SessionMasking, sessionMaskingCache } from '../../policy/masking/mysql-session-masking.ts';
import { type McpTool, toolRefusal } from '../../policy/mcp-tools.ts';
import type { PolicySource } from '../../policy/sources.ts';
import type { Catalog } from '../../sql/lineage/catalog.ts';
import type { ConnectionOrigin } from '../in-process-channel.ts';
import { identitySetup, loginQueries, readLoginResults, withViews } from './catalog.ts';
import { upgradeClientToTls } from './client-tls.ts';
import type { MysqlCodeCatalogCache } from './code-catalog-cache.ts';
import {
  Capability,
  MysqlError,
  type MysqlErrorKind,
  RELAYED_CAPABILITIES,
  ServerStatus,
  UNSAFE_CLIENT_COLLATIONS,
} from './constants.ts';
import { HandshakeReader } from './handshake-reader.ts';
import { nulTerminated, parseHandshakeResponse, randomScramble } from './handshake-response.ts';
import { logUpstreamFailure, RefusedStart, refuseConnection, unreadableSession } from './login-refusals.ts';
import { ProtocolError } from './protocol-error.ts';
import { authSwitchPacket, greetingPacket, okPacket } from './server-packets.ts';
import { connectMysqlUpstream, type ServerGreeting } from './upstream.ts';
import { MysqlUpstreamError, upstreamFailureForClient } from './upstream-error.ts';

/** What logging a client in needs of the proxy. */
export interface HandshakeDeps {
  readonly config: ProxyConfig;
  readonly authenticator: Authenticator;
  readonly audit: AuditSink;
  readonly metrics: SessionMetrics;
  readonly tlsContext: SecureContext | undefined;
  /** The upstream's greeting (version, capabilities, charset), as last seen. */
  readonly greeting: () => Promise<ServerGreeting>;
  readonly rememberGreeting: (greeting: ServerGreeting) => void;
  readonly createGate: (
    identity: Identity,
    sqlMode: string | null,
    masking: { masking: () => SessionMasking | undefined; catalog: () => Catalog | undefined },
    /** The MCP tool whose call the session is, from the connection's origin. */
    mcpTool?: McpTool,
  ) => MysqlGate;
  /** The policy in force: its MaskingPolicies decide, at login, what the session's results hide. */
  readonly policy: PolicySource;
  /** The key of the keyed masks (hash, tokenize), one per proxy process. */
  readonly maskingKey: MaskingKey;
  /** The server's stored code, for the guardrails (shared by the proxy's sessions). */
  readonly code: MysqlCodeCatalogCache;
  /** Approved requests for clear access to masked columns (the ApprovalBook). */
  readonly approvals?: AccessExemptionSource;
}

/**
 * The client's side of a connection while it logs in. The handshake replaces the socket with the TLS
 * one when the client asks for it, so that whoever answers a failed login writes where the client reads.
 */
export interface ClientLine {
  socket: Socket;
  /** The client has our greeting: from then on it reads errors with their SQLSTATE. */
  greeted: boolean;
  tls: boolean;
  /** Names the identity once it is known. */
  logger: Logger;
}

/** Who the connection is, for the greeting, the identity tag and the audit of a refused login. */
export interface Connecting {
  readonly session: string;
  /** The thread id the client sees in its greeting. */
  readonly connectionId: number;
  /** Read before TLS: a TLS socket over a wrapped stream does not know the address. */
  readonly peer: { readonly address: string; readonly port: number };
  /** The session was closed while the login ran (timeout, shutdown). */
  readonly closed: () => boolean;
  /** Set only for a connection made in process (in-process-channel.ts). */
  readonly origin?: ConnectionOrigin | undefined;
}

/** A client logged in and an upstream session set up for it: what the running session starts from. */
export interface Established {
  readonly client: Socket;
  readonly tls: boolean;
  readonly identity: Identity;
  readonly logger: Logger;
  readonly upstream: Socket;
  readonly upstreamThreadId: number;
  /** Bytes each side sent behind the handshake, read with it. */
  readonly serverLeftover: Buffer;
  readonly clientLeftover: Buffer;
  /** The upstream is MariaDB (whose session counters are in information_schema). */
  readonly mariadb: boolean;
  /** The server status flags after the login queries. */
  readonly status: number;
  readonly deprecateEof: boolean;
  /** The identity tag, run again after COM_RESET_CONNECTION. */
  readonly setupQueries: readonly string[];
  readonly gate: MysqlGate;
  /** The masking in force for the identity (the policy may change it for the next command). */
  readonly masking: MaskingSettingsCache<SessionMasking>;
  /** What the client says it is (its `program_name` attribute), for the audit. */
  readonly application?: string;
  /** Its `gatehouse.purpose` and `gatehouse.run_id` attributes, for the audit. */
  readonly purpose?: string;
  readonly runId?: string;
  /** It asked, by the `gatehouse.report_masking` attribute, for masked columns to be marked. */
  readonly reportsMasking: boolean;
  /** The MCP tool whose call this is, known from the connection's origin (never from the client). */
  readonly mcpTool?: string;
}

const MAX_HANDSHAKE_PACKET = 64 * 1024;

/**
 * Greets the client, upgrades to TLS when asked, reads its HandshakeResponse, authenticates it, admits
 * it (database, audit, grants), logs in upstream with the identity tag and the login queries, and
 * answers OK. Throws RefusedStart or ProtocolError for a refused login; undefined when the client went
 * away (or the session closed) while the upstream login ran.
 */
export async function mysqlHandshake(
  line: ClientLine,
  who: Connecting,
  deps: HandshakeDeps,
): Promise<Established | undefined> {
  const { config, authenticator } = deps;
  const reader = new HandshakeReader(MAX_HANDSHAKE_PACKET);
  reader.attach(line.socket);
  try {
    let upstreamGreeting: ServerGreeting;
    try {
      upstreamGreeting = await deps.greeting();
    } catch (error) {
      logUpstreamFailure(line.logger, deps, error);
      throw new RefusedStart(MysqlError.UPSTREAM_UNAVAILABLE, upstreamFailureForClient(error));
    }
    const scramble = randomScramble();
    const offered =
      ((upstreamGreeting.capabilities & RELAYED_CAPABILITIES) |
        Capability.PROTOCOL_41 |
        Capability.PLUGIN_AUTH |
        Capability.SECURE_CONNECTION |
        (deps.tlsContext ? Capability.SSL : 0)) >>>
      0;
    const plugin = authenticator.needsPassword ? 'mysql_clear_password' : 'mysql_native_password';
    line.socket.write(
      greetingPacket({
        serverVersion: upstreamGreeting.serverVersion,
        connectionId: who.connectionId,
        scramble,
        capabilities: offered,
        charset: upstreamGreeting.charset || 45,
        status: ServerStatus.AUTOCOMMIT,
        authPlugin: plugin,
      }),
    );
    line.greeted = true;

    let reply = await reader.read();
    const clientCaps = reply.payload.length >= 4 ? reply.payload.readUInt32LE(0) : 0;
    if (reply.payload.length === 32 && clientCaps & Capability.SSL) {
      if (!deps.tlsContext) throw new ProtocolError('client asked for TLS, which was not offered');
      // Clients send their TLS ClientHello right behind the request: those bytes belong to TLS.
      const early = reader.detach();
      line.socket = await upgradeClientToTls(line, deps.tlsContext, early);
      line.tls = true;
      reader.attach(line.socket);
      reply = await reader.read();
    }
    const response = parseHandshakeResponse(reply.payload);
    let seq = (reply.seq + 1) & 0xff;
    const capabilities = (response.capabilities & offered) >>> 0;
    const deprecateEof = (capabilities & Capability.DEPRECATE_EOF) !== 0;
    if (response.capabilities & Capability.COMPRESS)
      throw new RefusedStart(
        MysqlError.NOT_SUPPORTED,
        'Gatehouse does not support compression: connect without it',
        seq,
      );
    if (UNSAFE_CLIENT_COLLATIONS.has(response.charset))
      throw new RefusedStart(
        MysqlError.UNKNOWN_CHARACTER_SET,
        'Gatehouse does not accept this client character set (big5, sjis, gbk, cp932, gb18030): use utf8mb4',
        seq,
      );
    if (config.clientTls?.required && !line.tls)
      throw new RefusedStart(
        MysqlError.ACCESS_DENIED,
        'this Gatehouse requires TLS: connect with --ssl',
        seq,
      );

    const refuse = (kind: MysqlErrorKind, reason: string, message: string): RefusedStart => {
      refuseConnection(who, deps, response.user, kind, reason);
      return new RefusedStart(kind, message, seq);
    };
    let password: string | undefined;
    if (authenticator.needsPassword) {
      if (config.identity.mode === 'token' && !line.tls)
        throw refuse(
          MysqlError.ACCESS_DENIED,
          'token over a connection without TLS',
          'Gatehouse takes tokens only over TLS: connect with --ssl',
        );
      if (response.plugin === 'mysql_clear_password') password = nulTerminated(response.auth);
      else {
        line.socket.write(authSwitchPacket('mysql_clear_password', Buffer.alloc(0), seq));
        const answer = await reader.read();
        seq = (answer.seq + 1) & 0xff;
        password = nulTerminated(answer.payload);
      }
    }
    let identity: Identity;
    try {
      identity = await authenticator.authenticate(
        password === undefined ? { user: response.user } : { user: response.user, password },
      );
    } catch (error) {
      const reason = error instanceof AuthError ? error.message : 'authentication failed';
      throw refuse(
        MysqlError.ACCESS_DENIED,
        reason,
        `Access denied for user '${response.user}' (Gatehouse: ${reason})`,
      );
    }
    line.logger = line.logger.child({
      subject: identity.subject,
      ...(identity.pod && { pod: identity.pod }),
    });
    const database = config.upstream.database;
    if (response.database !== '' && response.database !== database)
      throw refuse(
        MysqlError.DB_ACCESS_DENIED,
        `database ${response.database} is not served here`,
        `Gatehouse serves database '${database}' only`,
      );
    if (deps.audit.failure !== undefined && config.audit.failClosed)
      throw refuse(
        MysqlError.AUDIT_UNAVAILABLE,
        'audit log unavailable',
        `Gatehouse cannot write its audit log, so it accepts no connections: ${deps.audit.failure}`,
      );

    // Who may connect is the policy's first question: an identity no grant names gets no session.
    const policy = deps.policy();
    if (policy && grantsFor(identity, policy, database).length === 0) {
      const reason = `no DatabaseAccess grants ${identity.subject} access to database '${database}'`;
      throw refuse(
        MysqlError.ACCESS_DENIED,
        reason,
        `Access denied for user '${response.user}' (Gatehouse: ${reason})`,
      );
    }
    const tool = who.origin?.mcpTool;
    const toolRefused = tool && toolRefusal(tool, identity, policy, database);
    if (toolRefused)
      throw refuse(MysqlError.SPECIFIC_ACCESS_DENIED, toolRefused, `Gatehouse: ${toolRefused}`);

    const setupQueries = identitySetup(identity, who.session);
    // Masking is decided at login, by the policy then in force, over the database's tables.
    const maskingCache = sessionMaskingCache(identity, database, deps.maskingKey, deps.approvals);
    const masking = maskingCache.get(deps.policy());
    // The catalog also serves the audit's column lineage of sessions that see clear values.
    const queries = loginQueries(
      setupQueries,
      masking !== undefined || (policy !== undefined && config.audit.columnLineage),
    );
    const u = config.upstream;
    // Guarded sessions wait for a first catalog of stored code, loaded over a connection of its own.
    const codeReady = deps.policy() ? deps.code.ready() : undefined;
    let upstream: Awaited<ReturnType<typeof connectMysqlUpstream>>;
    try {
      await codeReady;
      upstream = await connectMysqlUpstream({
        host: u.host,
        port: u.port,
        user: u.user,
        ...(u.password !== undefined && { password: u.password }),
        database: u.database,
        tls: u.tls,
        connectTimeoutMs: u.connectTimeoutMs,
        clientCapabilities: capabilities,
        charset: response.charset,
        attributes: {
          program_name: 'gatehouse',
          gatehouse_identity: identity.subject,
          gatehouse_session: who.session,
          ...(identity.pod && { gatehouse_pod: identity.pod }),
        },
        setupQueries: queries.map((q) => q.sql),
      });
    } catch (error) {
      logUpstreamFailure(line.logger, deps, error);
      const tooMany = error instanceof MysqlUpstreamError && error.serverCode === 1040;
      throw new RefusedStart(
        tooMany ? MysqlError.TOO_MANY_CONNECTIONS : MysqlError.UPSTREAM_UNAVAILABLE,
        tooMany ? 'the database has too many connections' : upstreamFailureForClient(error),
        seq,
      );
    }
    deps.rememberGreeting(upstream.greeting);
    const clientLeftover = reader.detach();
    const client = line.socket;
    if (who.closed() || client.destroyed || client.readableEnded) {
      upstream.socket.on('error', () => {});
      upstream.socket.destroy();
      return undefined;
    }
    const facts = readLoginResults(queries, upstream.setupRows, database);
    // The server's own defaults (sql_mode, init_connect, a character set forced on clients) may
    // make it read text in a way the analysis does not: such a session is not started.
    const unreadable = unreadableSession(facts.sqlMode, facts.clientCharset);
    if (unreadable) {
      upstream.socket.on('error', () => {});
      upstream.socket.destroy();
      throw new RefusedStart(MysqlError.NOT_SUPPORTED, `Gatehouse: ${unreadable}`, seq);
    }
    const gate = deps.createGate(
      identity,
      facts.sqlMode,
      {
        masking: () => maskingCache.get(deps.policy()),
        catalog: withViews(facts.catalog, () => deps.code.lineageViews()),
      },
      tool,
    );
    client.write(okPacket(seq, upstream.status));
    return {
      client,
      tls: line.tls,
      identity,
      logger: line.logger,
      upstream: upstream.socket,
      upstreamThreadId: upstream.greeting.threadId,
      serverLeftover: upstream.leftover,
      clientLeftover,
      mariadb: /mariadb/i.test(upstream.greeting.serverVersion),
      status: upstream.status,
      deprecateEof,
      setupQueries,
      gate,
      masking: maskingCache,
      ...clientApplicationField(response.program),
      ...declaredWorkFields(response.purpose, response.runId),
      reportsMasking: response.reportsMasking === true,
      ...(tool !== undefined && { mcpTool: tool }),
    };
  } finally {
    reader.detach();
  }
}
