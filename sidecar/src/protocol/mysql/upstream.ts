import type net from 'node:net';
import { Capability } from './constants.ts';
import { HandshakeReader, type Packet } from './handshake-reader.ts';
import { PayloadReader, PayloadWriter, packet } from './packet-io.ts';
import { cachingSha2Response, nativePasswordResponse, rsaEncryptedPassword } from './scramble.ts';
import { MysqlUpstreamError } from './upstream-error.ts';
import { openSocket, startTls, type UpstreamTls, withSignal } from './upstream-socket.ts';

export interface MysqlUpstreamOptions {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password?: string;
  readonly database: string;
  readonly tls: UpstreamTls;
  readonly connectTimeoutMs: number;
  /** Capabilities the client negotiated with the proxy; the relayed ones are asked of the server too. */
  readonly clientCapabilities: number;
  readonly charset: number;
  /** Connection attributes (performance_schema.session_connect_attrs). */
  readonly attributes: Readonly<Record<string, string>>;
  /** Run once logged in, before the client's first command; their results are discarded. */
  readonly setupQueries?: readonly string[];
  /** The server's RSA public key for caching_sha2_password without TLS; requested from the server when absent. */
  readonly serverPublicKey?: string;
}

export interface ServerGreeting {
  readonly serverVersion: string;
  readonly threadId: number;
  readonly capabilities: number;
  readonly charset: number;
  readonly status: number;
  readonly scramble: Buffer;
  readonly authPlugin: string;
}

export interface MysqlUpstream {
  readonly socket: net.Socket;
  readonly greeting: ServerGreeting;
  /** What both sides use from here on. */
  readonly capabilities: number;
  readonly status: number;
  /** The rows of each setup query. */
  readonly setupRows: readonly (readonly (readonly (string | null)[])[])[];
  readonly leftover: Buffer;
  readonly tls: boolean;
}

/** Capabilities the proxy always asks for upstream, whatever the client said. */
const REQUIRED =
  Capability.LONG_PASSWORD |
  Capability.PROTOCOL_41 |
  Capability.SECURE_CONNECTION |
  Capability.PLUGIN_AUTH |
  Capability.PLUGIN_AUTH_LENENC_CLIENT_DATA |
  Capability.TRANSACTIONS |
  Capability.CONNECT_WITH_DB |
  Capability.CONNECT_ATTRS;

export function parseGreeting(payload: Buffer): ServerGreeting {
  const r = new PayloadReader(payload);
  const protocol = r.u8();
  if (protocol === 0xff) {
    const code = r.u16();
    throw new MysqlUpstreamError('server', `server refused the connection (error ${code})`, code);
  }
  if (protocol !== 10) throw new MysqlUpstreamError('protocol', `unsupported handshake protocol ${protocol}`);
  const serverVersion = r.nulBytes().toString('utf8');
  const threadId = r.u32();
  const part1 = r.bytes(8);
  r.skip(1);
  let capabilities = r.u16();
  let charset = 0;
  let status = 0;
  let part2: Buffer = Buffer.alloc(0);
  let authPlugin = 'mysql_native_password';
  if (r.remaining > 0) {
    charset = r.u8();
    status = r.u16();
    capabilities |= r.u16() << 16;
    capabilities >>>= 0;
    const dataLength = r.u8();
    r.skip(10);
    if (capabilities & Capability.SECURE_CONNECTION) {
      part2 = r.bytes(Math.max(13, dataLength - 8));
      if (part2[part2.length - 1] === 0) part2 = part2.subarray(0, part2.length - 1);
    }
    if (capabilities & Capability.PLUGIN_AUTH && r.remaining > 0) authPlugin = r.nulBytes(true).toString();
  }
  return {
    serverVersion,
    threadId,
    capabilities,
    charset,
    status,
    scramble: Buffer.concat([part1, part2]),
    authPlugin,
  };
}

/** Reads only the server's greeting (version, capabilities) and hangs up. */
export async function fetchGreeting(
  options: Pick<MysqlUpstreamOptions, 'host' | 'port' | 'connectTimeoutMs'>,
): Promise<ServerGreeting> {
  const signal = AbortSignal.timeout(options.connectTimeoutMs);
  const socket = await openSocket(options.host, options.port, signal);
  const reader = new HandshakeReader();
  reader.attach(socket);
  try {
    return parseGreeting((await withSignal(reader.read(), signal)).payload);
  } finally {
    reader.detach();
    socket.on('error', () => {});
    socket.destroy();
  }
}

/**
 * Logs in to MySQL or MariaDB with the proxy's own credentials: TLS when configured, then
 * mysql_native_password or caching_sha2_password (fast path, or full path over TLS or RSA), switching
 * plugins when the server asks. Runs the setup queries and returns the connection ready for the relay.
 */
export async function connectMysqlUpstream(options: MysqlUpstreamOptions): Promise<MysqlUpstream> {
  const signal = AbortSignal.timeout(options.connectTimeoutMs);
  let socket: net.Socket = await openSocket(options.host, options.port, signal);
  const reader = new HandshakeReader(16 << 20);
  reader.attach(socket);
  try {
    const greeting = parseGreeting((await withSignal(reader.read(), signal)).payload);
    // TLS towards the server is the proxy's own choice, not the client's.
    let capabilities =
      (((options.clientCapabilities & ~Capability.SSL) | REQUIRED) & greeting.capabilities) >>> 0;
    if (!(capabilities & Capability.PROTOCOL_41) || !(capabilities & Capability.PLUGIN_AUTH))
      throw new MysqlUpstreamError('protocol', 'the server does not speak protocol 4.1 with auth plugins');
    let seq = 1;
    let secure = false;
    if (options.tls.mode !== 'disable') {
      if (!(greeting.capabilities & Capability.SSL))
        throw new MysqlUpstreamError(
          'tls',
          `server does not offer TLS, and upstream.tls.mode is ${options.tls.mode}`,
        );
      capabilities |= Capability.SSL;
      socket.write(packet(sslRequest(capabilities, options.charset), seq++));
      reader.detach();
      socket = await startTls(socket, options, signal);
      reader.attach(socket);
      secure = true;
    }
    const password = options.password ?? '';
    let plugin = greeting.authPlugin;
    let scramble = greeting.scramble;
    const first = authResponse(plugin, password, scramble, secure);
    socket.write(packet(handshakeResponse(options, capabilities, plugin, first ?? Buffer.alloc(0)), seq++));

    let status = greeting.status;
    for (;;) {
      const reply: Packet = await withSignal(reader.read(), signal);
      seq = (reply.seq + 1) & 0xff;
      const kind = reply.payload[0];
      if (kind === 0x00) {
        status = okStatus(reply.payload);
        break;
      }
      if (kind === 0xff) throw serverError(reply.payload, 'login');
      if (kind === 0xfe) {
        const r = new PayloadReader(reply.payload, 1);
        plugin = r.nulBytes(true).toString();
        let data = r.rest();
        if (data[data.length - 1] === 0) data = data.subarray(0, data.length - 1);
        scramble = data;
        const answer = authResponse(plugin, password, scramble, secure);
        if (!answer)
          throw new MysqlUpstreamError(
            'auth',
            `the server asks for auth plugin ${plugin}, which Gatehouse does not speak`,
          );
        socket.write(packet(answer, seq));
        continue;
      }
      if (kind === 0x01 && (plugin === 'caching_sha2_password' || plugin === 'sha256_password')) {
        const more = reply.payload.subarray(1);
        if (more.length === 1 && more[0] === 0x03) continue; // fast path succeeded: OK follows
        if (more.length === 1 && more[0] === 0x04) {
          // Full authentication: the password itself, protected by TLS or by the server's RSA key.
          if (secure) socket.write(packet(Buffer.from(`${password}\0`, 'utf8'), seq));
          else if (options.serverPublicKey)
            socket.write(packet(rsaEncryptedPassword(password, scramble, options.serverPublicKey), seq));
          else socket.write(packet(Buffer.from([0x02]), seq));
          continue;
        }
        // The server's public key, asked for above.
        socket.write(packet(rsaEncryptedPassword(password, scramble, more.toString('utf8')), seq));
        continue;
      }
      throw new MysqlUpstreamError(
        'protocol',
        `unexpected packet 0x${(kind ?? 0).toString(16)} during login`,
      );
    }

    const setupRows: (readonly (readonly (string | null)[])[])[] = [];
    const queries = options.setupQueries ?? [];
    if (queries.length > 0) {
      socket.write(
        Buffer.concat(
          queries.map((q) => packet(Buffer.concat([Buffer.from([0x03]), Buffer.from(q, 'utf8')]), 0)),
        ),
      );
      for (const _ of queries) {
        const result = await readTextResult(reader, capabilities, signal);
        setupRows.push(result.rows);
        status = result.status;
      }
    }
    const leftover = reader.detach();
    return { socket, greeting, capabilities, status, setupRows, leftover, tls: secure };
  } catch (error) {
    reader.detach();
    socket.on('error', () => {});
    socket.destroy();
    if (error instanceof MysqlUpstreamError) throw error;
    if (signal.aborted)
      throw new MysqlUpstreamError('timeout', `no login within ${options.connectTimeoutMs} ms`);
    throw new MysqlUpstreamError('network', error instanceof Error ? error.message : String(error));
  }
}

function authResponse(
  plugin: string,
  password: string,
  scramble: Buffer,
  secure: boolean,
): Buffer | undefined {
  switch (plugin) {
    case 'mysql_native_password':
      return nativePasswordResponse(password, scramble);
    case 'caching_sha2_password':
      return cachingSha2Response(password, scramble);
    case 'sha256_password':
      // Without TLS the server then sends its key (0x01 packet) after we ask with 0x01.
      return secure ? Buffer.from(`${password}\0`, 'utf8') : Buffer.from([0x01]);
    case 'mysql_clear_password':
      // Only where nobody can read it on the way.
      return secure ? Buffer.from(`${password}\0`, 'utf8') : undefined;
    default:
      return undefined;
  }
}

function sslRequest(capabilities: number, charset: number): Buffer {
  return new PayloadWriter()
    .u32(capabilities)
    .u32(1 << 24)
    .u8(charset)
    .zeros(23)
    .build();
}

function handshakeResponse(
  options: MysqlUpstreamOptions,
  capabilities: number,
  plugin: string,
  auth: Buffer,
): Buffer {
  const attributes = new PayloadWriter();
  for (const [key, value] of Object.entries(options.attributes))
    attributes.lenencBytes(key).lenencBytes(value);
  return new PayloadWriter()
    .u32(capabilities)
    .u32(1 << 24)
    .u8(options.charset)
    .zeros(23)
    .nul(options.user)
    .lenencBytes(auth)
    .nul(options.database)
    .nul(plugin)
    .lenencBytes(attributes.build())
    .build();
}

function okStatus(payload: Buffer): number {
  const r = new PayloadReader(payload, 1);
  r.lenenc();
  r.lenenc();
  return r.u16();
}

function serverError(payload: Buffer, what: string): MysqlUpstreamError {
  const r = new PayloadReader(payload, 1);
  const code = r.u16();
  let message = r.rest().toString('utf8');
  if (message.startsWith('#')) message = message.slice(6);
  return new MysqlUpstreamError('server', `${what}: server error ${code}: ${message}`, code);
}

/** Reads one text-protocol result (OK, ERR or a result set) and returns its rows. */
async function readTextResult(
  reader: HandshakeReader,
  capabilities: number,
  signal: AbortSignal,
): Promise<{ rows: (string | null)[][]; status: number }> {
  const head = (await withSignal(reader.read(), signal)).payload;
  if (head[0] === 0x00) return { rows: [], status: okStatus(head) };
  if (head[0] === 0xff) throw serverError(head, 'setup query');
  const columns = new PayloadReader(head).lenenc();
  for (let i = 0; i < columns; i++) await withSignal(reader.read(), signal);
  const deprecateEof = (capabilities & Capability.DEPRECATE_EOF) !== 0;
  if (!deprecateEof) await withSignal(reader.read(), signal);
  const rows: (string | null)[][] = [];
  for (;;) {
    const row = (await withSignal(reader.read(), signal)).payload;
    if (row[0] === 0xff) throw serverError(row, 'setup query');
    if (row[0] === 0xfe && row.length < 0xffffff) {
      const r = new PayloadReader(row, 1);
      if (deprecateEof) {
        r.lenenc();
        r.lenenc();
        return { rows, status: r.u16() };
      }
      r.u16();
      return { rows, status: r.u16() };
    }
    const r = new PayloadReader(row);
    const values: (string | null)[] = [];
    for (let i = 0; i < columns; i++) {
      if (r.buffer[r.offset] === 0xfb) {
        r.skip(1);
        values.push(null);
      } else values.push(r.lenencBytes().toString('utf8'));
    }
    rows.push(values);
  }
}
