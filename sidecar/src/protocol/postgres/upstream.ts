import { createHash } from 'node:crypto';
import type net from 'node:net';
import type tls from 'node:tls';
import { serialize } from 'pg-protocol';
import type { UpstreamConfig } from '../../config/load.ts';
import { Backend } from './codes.ts';
import {
  SCRAM_SHA_256,
  ScramError,
  scramClientFinal,
  scramClientFirst,
  verifyScramServerFinal,
} from './scram.ts';
import { UpstreamError } from './upstream-error.ts';
import { Inbox } from './upstream-inbox.ts';
import { discard, openUpstreamSocket, type UpstreamEndpoint } from './upstream-socket.ts';

export interface UpstreamOptions extends UpstreamEndpoint {
  readonly database: string;
  readonly user: string;
  /** Not needed for `trust`; never logged nor put in an error message. */
  readonly password?: string;
  /** Covers the whole handshake: TCP, TLS, authentication and the wait for ReadyForQuery. */
  readonly connectTimeoutMs: number;
  /**
   * The client's startup parameters to pass along (application_name, client_encoding, DateStyle,
   * options...). `user` and `database` here are ignored: the ones above win.
   */
  readonly startupParameters: Readonly<Record<string, string>>;
  readonly signal?: AbortSignal;
}

export interface BackendKey {
  readonly processId: number;
  /** Bytes, not a number: protocol 3.2 allows keys longer than the 4 bytes of 3.0. */
  readonly secretKey: Buffer;
}

export type UpstreamAuthMethod = 'trust' | 'password' | 'md5' | 'scram-sha-256';

export interface UpstreamConnection {
  /**
   * Explicitly paused, with none of our listeners attached: the caller takes over reading and error
   * handling, and must call `resume()` after adding its 'data' listener.
   */
  readonly socket: net.Socket | tls.TLSSocket;
  /** Every ParameterStatus received, last value wins. */
  readonly parameters: Map<string, string>;
  /** Absent only when the server sent no BackendKeyData (then the session cannot be cancelled). */
  readonly backendKey: BackendKey | undefined;
  /** Bytes read past ReadyForQuery: feed them to the session's parser before anything from the socket. */
  readonly leftover: Buffer;
  /** From ReadyForQuery: `I` idle, `T` in a transaction, `E` in a failed transaction. */
  readonly transactionStatus: 'I' | 'T' | 'E';
  /** How the server made us prove who we are. */
  readonly authMethod: UpstreamAuthMethod;
}

const PROTOCOL_3_0 = 196608;
const AUTH_OK = 0;
const AUTH_CLEARTEXT = 3;
const AUTH_MD5 = 5;
const AUTH_SASL = 10;
const AUTH_SASL_CONTINUE = 11;
const AUTH_SASL_FINAL = 12;
const UNSUPPORTED_AUTH = new Map([
  [2, 'Kerberos V5'],
  [6, 'SCM credentials'],
  [7, 'GSSAPI'],
  [9, 'SSPI'],
]);

/**
 * Opens an authenticated session to PostgreSQL on a client's behalf, with credentials the client
 * never sees, and returns once the server is ready for the first query.
 * Throws UpstreamError; the socket is destroyed on any failure.
 */
/** What connectUpstream needs, from the proxy's upstream settings. */
export function upstreamOptions(
  u: UpstreamConfig,
  startupParameters: Readonly<Record<string, string>>,
): UpstreamOptions {
  return {
    host: u.host,
    port: u.port,
    database: u.database,
    user: u.user,
    ...(u.password !== undefined && { password: u.password }),
    tls: u.tls,
    connectTimeoutMs: u.connectTimeoutMs,
    startupParameters,
  };
}

export async function connectUpstream(options: UpstreamOptions): Promise<UpstreamConnection> {
  const label = `upstream ${options.user}@${options.host}:${options.port}/${options.database}`;
  const timeout = AbortSignal.timeout(options.connectTimeoutMs);
  const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
  let inbox: Inbox | undefined;
  try {
    const socket = await openUpstreamSocket(options, signal, label);
    inbox = new Inbox(socket, signal, label);
    socket.write(startupMessage(options, label));
    const authMethod = await authenticate(inbox, options, label);
    const ready = await awaitReady(inbox);
    return { socket, ...ready, leftover: inbox.release(), authMethod };
  } catch (err) {
    if (inbox) discard(inbox.socket);
    if (timeout.aborted) {
      throw new UpstreamError('timeout', `${label}: no ReadyForQuery within ${options.connectTimeoutMs} ms`, {
        code: 'ETIMEDOUT',
      });
    }
    if (signal.aborted)
      throw new UpstreamError('aborted', `${label}: connect aborted`, { cause: signal.reason });
    throw err;
  }
}

function startupMessage(options: UpstreamOptions, label: string): Buffer {
  const parameters = { ...options.startupParameters, user: options.user, database: options.database };
  const parts: Buffer[] = [Buffer.alloc(8)];
  for (const [name, value] of Object.entries(parameters)) {
    // A NUL would end the string early and let the rest be read as another parameter.
    if (name.includes('\0') || value.includes('\0')) {
      throw new UpstreamError(
        'protocol',
        `${label}: startup parameter ${JSON.stringify(name)} contains a NUL byte`,
      );
    }
    parts.push(Buffer.from(`${name}\0${value}\0`));
  }
  parts.push(Buffer.alloc(1));
  const message = Buffer.concat(parts);
  message.writeInt32BE(message.length, 0);
  message.writeInt32BE(PROTOCOL_3_0, 4);
  return message;
}

async function authenticate(
  inbox: Inbox,
  options: UpstreamOptions,
  label: string,
): Promise<UpstreamAuthMethod> {
  const password = (): string => {
    if (options.password === undefined) {
      throw new UpstreamError('auth', `${label}: server asks for a password and none is configured`);
    }
    return options.password;
  };
  let method: UpstreamAuthMethod = 'trust';
  for (;;) {
    const { code, data } = await inbox.nextAuthentication();
    if (code === AUTH_OK) return method;
    if (code === AUTH_CLEARTEXT) {
      method = 'password';
      inbox.socket.write(serialize.password(password()));
    } else if (code === AUTH_MD5) {
      if (data.length !== 4) throw inbox.malformed('AuthenticationMD5Password');
      method = 'md5';
      inbox.socket.write(serialize.password(md5Response(options.user, password(), data)));
    } else if (code === AUTH_SASL) {
      method = 'scram-sha-256';
      await scramExchange(inbox, readMechanisms(data), password(), label);
    } else {
      const name = UNSUPPORTED_AUTH.get(code) ?? `method ${code}`;
      throw new UpstreamError(
        'auth',
        `${label}: server asks for ${name} authentication, which Gatehouse lacks`,
      );
    }
  }
}

/**
 * SCRAM-SHA-256 without channel binding. Returns only once the server has proved it knows the
 * password, so a server that answers AuthenticationOk early is caught as out of order.
 */
async function scramExchange(
  inbox: Inbox,
  mechanisms: string[],
  password: string,
  label: string,
): Promise<void> {
  if (!mechanisms.includes(SCRAM_SHA_256)) {
    throw new UpstreamError('auth', `${label}: server offers only SASL mechanisms ${mechanisms.join(', ')}`);
  }
  const first = scramClientFirst();
  inbox.socket.write(serialize.sendSASLInitialResponseMessage(SCRAM_SHA_256, first.message));
  const serverFirst = await inbox.nextAuthentication();
  if (serverFirst.code !== AUTH_SASL_CONTINUE) throw inbox.malformed('AuthenticationSASLContinue');
  try {
    const final = await scramClientFinal(first, serverFirst.data.toString('utf8'), password);
    inbox.socket.write(serialize.sendSCRAMClientFinalMessage(final.message));
    const serverFinal = await inbox.nextAuthentication();
    if (serverFinal.code !== AUTH_SASL_FINAL) throw inbox.malformed('AuthenticationSASLFinal');
    verifyScramServerFinal(serverFinal.data.toString('utf8'), final.expectedServerSignature);
  } catch (err) {
    if (err instanceof ScramError)
      throw new UpstreamError('auth', `${label}: ${err.message}`, { cause: err });
    throw err;
  }
}

/** `md5` + md5(md5(password + user) + salt), in hex, as PostgreSQL expects. */
function md5Response(user: string, password: string, salt: Buffer): string {
  const inner = createHash('md5').update(password).update(user).digest('hex');
  return 'md5' + createHash('md5').update(inner).update(salt).digest('hex');
}

async function awaitReady(
  inbox: Inbox,
): Promise<Pick<UpstreamConnection, 'parameters' | 'backendKey' | 'transactionStatus'>> {
  const parameters = new Map<string, string>();
  let backendKey: BackendKey | undefined;
  for (;;) {
    const frame = await inbox.next();
    if (frame.type === Backend.ParameterStatus) {
      const nameEnd = frame.body.indexOf(0);
      const valueEnd = frame.body.indexOf(0, nameEnd + 1);
      if (nameEnd <= 0 || valueEnd < 0) throw inbox.malformed('ParameterStatus');
      parameters.set(
        frame.body.toString('utf8', 0, nameEnd),
        frame.body.toString('utf8', nameEnd + 1, valueEnd),
      );
    } else if (frame.type === Backend.BackendKeyData) {
      if (frame.body.length < 8) throw inbox.malformed('BackendKeyData');
      backendKey = { processId: frame.body.readInt32BE(0), secretKey: Buffer.from(frame.body.subarray(4)) };
    } else if (frame.type === Backend.ReadyForQuery) {
      const status = String.fromCharCode(frame.body[0] ?? 0);
      if (frame.body.length !== 1 || (status !== 'I' && status !== 'T' && status !== 'E')) {
        throw inbox.malformed('ReadyForQuery');
      }
      return { parameters, backendKey, transactionStatus: status };
    } else if (frame.type !== Backend.NoticeResponse) {
      throw inbox.unexpected(frame, 'startup');
    }
  }
}

/** The SASL mechanism list: NUL-terminated names, ended by an empty one. */
function readMechanisms(body: Buffer): string[] {
  const strings: string[] = [];
  let start = 0;
  while (start < body.length) {
    const end = body.indexOf(0, start);
    if (end <= start) break;
    strings.push(body.toString('utf8', start, end));
    start = end + 1;
  }
  return strings;
}
