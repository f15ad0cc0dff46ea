import {
  createHash,
  constants as cryptoConstants,
  generateKeyPairSync,
  privateDecrypt,
  randomBytes,
} from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { createSecureContext, TLSSocket } from 'node:tls';
import mysql2 from 'mysql2';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { Capability } from './constants.ts';
import { HandshakeReader } from './handshake-reader.ts';
import { PayloadReader, PayloadWriter, packet } from './packet-io.ts';
import { withPrefix } from './prefixed-stream.ts';
import { cachingSha2Response, nativePasswordResponse } from './scramble.ts';
import { connectMysqlUpstream } from './upstream.ts';
import { MysqlUpstreamError, upstreamFailureForClient } from './upstream-error.ts';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest();
const sha1 = (b: Buffer) => createHash('sha1').update(b).digest();
const xor = (a: Buffer, b: Buffer) => Buffer.from(a.map((v, i) => v ^ b[i % b.length]!));

const PASSWORD = 'pässword-42';
const tls = inject('tls');
const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const PUBLIC_PEM = publicKey.export({ type: 'spki', format: 'pem' }).toString();

/** What a caching_sha2_password server checks: SHA256(token XOR SHA256(stored + scramble)) equals the stored digest. */
function serverAcceptsSha2(token: Buffer, scramble: Buffer, password: string): boolean {
  const stored = sha256(sha256(Buffer.from(password, 'utf8')));
  const candidate = xor(token, sha256(Buffer.concat([stored, scramble])));
  return sha256(candidate).equals(stored);
}

/** What a mysql_native_password server checks, from the stored SHA1(SHA1(password)). */
function serverAcceptsNative(token: Buffer, scramble: Buffer, password: string): boolean {
  const stored = sha1(sha1(Buffer.from(password, 'utf8')));
  const candidate = xor(token, sha1(Buffer.concat([scramble, stored])));
  return sha1(candidate).equals(stored);
}

describe('scrambles', () => {
  it('are what the servers verify, and what mysql2 computes', () => {
    for (let i = 0; i < 20; i++) {
      const scramble = randomBytes(20);
      const sha2 = cachingSha2Response(PASSWORD, scramble);
      expect(serverAcceptsSha2(sha2, scramble, PASSWORD)).toBe(true);
      expect(serverAcceptsSha2(sha2, scramble, 'other')).toBe(false);
      const native = nativePasswordResponse(PASSWORD, scramble);
      expect(serverAcceptsNative(native, scramble, PASSWORD)).toBe(true);
      const viaMysql2 = (name: 'caching_sha2_password' | 'mysql_native_password') =>
        (mysql2.authPlugins[name] as (o: object) => (c: object) => (d: Buffer) => Buffer)({})({
          connection: { config: { password: PASSWORD } },
          command: {},
        })(scramble);
      expect(sha2).toEqual(viaMysql2('caching_sha2_password'));
      expect(native).toEqual(viaMysql2('mysql_native_password'));
    }
  });
});

type Mode = 'fast' | 'full-rsa' | 'full-tls' | 'switch-to-sha2' | 'wrong-password';

/**
 * A server that speaks only the login of caching_sha2_password (MariaDB 10.11 has none), checking the
 * proxy's answers the way MySQL 8 does.
 */
async function fakeServer(mode: Mode): Promise<{ server: Server; port: number; seen: string[] }> {
  const seen: string[] = [];
  const server = createServer((socket: Socket) => {
    void (async () => {
      let reader = new HandshakeReader();
      reader.attach(socket);
      let stream: Socket = socket;
      const scramble = Buffer.from(randomBytes(20).map((b) => 0x21 + (b % 90)));
      const greetPlugin = mode === 'switch-to-sha2' ? 'mysql_native_password' : 'caching_sha2_password';
      const caps =
        Capability.PROTOCOL_41 |
        Capability.SECURE_CONNECTION |
        Capability.PLUGIN_AUTH |
        Capability.PLUGIN_AUTH_LENENC_CLIENT_DATA |
        Capability.CONNECT_ATTRS |
        Capability.CONNECT_WITH_DB |
        Capability.LONG_PASSWORD |
        Capability.TRANSACTIONS |
        Capability.DEPRECATE_EOF |
        (mode === 'full-tls' ? Capability.SSL : 0);
      socket.write(
        packet(
          new PayloadWriter()
            .u8(10)
            .nul('8.0.40-fake')
            .u32(77)
            .bytes(scramble.subarray(0, 8))
            .u8(0)
            .u16(caps & 0xffff)
            .u8(255)
            .u16(2)
            .u16(caps >>> 16)
            .u8(21)
            .zeros(10)
            .bytes(scramble.subarray(8))
            .u8(0)
            .nul(greetPlugin)
            .build(),
          0,
        ),
      );
      let response = await reader.read();
      if (mode === 'full-tls') {
        // The SSLRequest, then TLS with the test CA's server certificate.
        seen.push(`ssl-request=${response.payload.length === 32}`);
        const early = reader.detach();
        stream = new TLSSocket(early.length > 0 ? withPrefix(socket, early) : socket, {
          isServer: true,
          secureContext: createSecureContext({
            cert: readFileSync(tls.certFile),
            key: readFileSync(tls.keyFile),
          }),
        });
        reader = new HandshakeReader();
        reader.attach(stream);
        response = await reader.read();
      }
      const r = new PayloadReader(response.payload);
      r.u32();
      r.u32();
      r.u8();
      r.skip(23);
      const user = r.nulBytes().toString();
      let token = r.lenencBytes();
      r.nulBytes();
      const plugin = r.nulBytes().toString();
      const attributes = r.lenencBytes().toString('latin1');
      seen.push(`user=${user}`, `plugin=${plugin}`, `attrs=${attributes.includes('gatehouse_identity')}`);
      let seq = response.seq + 1;
      let current = scramble;
      if (mode === 'switch-to-sha2') {
        current = Buffer.from(randomBytes(20).map((b) => 0x21 + (b % 90)));
        socket.write(
          packet(
            Buffer.concat([
              Buffer.from([0xfe]),
              Buffer.from('caching_sha2_password\0'),
              current,
              Buffer.from([0]),
            ]),
            seq,
          ),
        );
        const answer = await reader.read();
        token = answer.payload;
        seq = answer.seq + 1;
        seen.push('switched');
      }
      const accepted = serverAcceptsSha2(token, current, mode === 'wrong-password' ? 'other' : PASSWORD);
      if (!accepted) {
        socket.end(
          packet(Buffer.concat([Buffer.from([0xff, 0x15, 0x04]), Buffer.from('#28000Access denied')]), seq),
        );
        return;
      }
      if (mode === 'full-tls') {
        stream.write(packet(Buffer.from([0x01, 0x04]), seq++));
        const clear = await reader.read();
        seen.push(`tls-password-ok=${clear.payload.toString('utf8') === `${PASSWORD}\0`}`);
        seq = clear.seq + 1;
      } else if (mode === 'full-rsa') {
        socket.write(packet(Buffer.from([0x01, 0x04]), seq++));
        const ask = await reader.read();
        seen.push(`asked-key=${ask.payload[0] === 0x02}`);
        socket.write(packet(Buffer.concat([Buffer.from([0x01]), Buffer.from(PUBLIC_PEM)]), ask.seq + 1));
        const encrypted = await reader.read();
        const plain = privateDecrypt(
          { key: privateKey, padding: cryptoConstants.RSA_PKCS1_OAEP_PADDING },
          encrypted.payload,
        );
        const password = xor(plain, current).toString('utf8');
        seen.push(`rsa-password-ok=${password === `${PASSWORD}\0`}`);
        seq = encrypted.seq + 1;
      } else {
        socket.write(packet(Buffer.from([0x01, 0x03]), seq++));
      }
      stream.write(packet(Buffer.from([0, 0, 0, 2, 0, 0, 0]), seq));
    })().catch(() => socket.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as { port: number }).port, seen };
}

let open: Server | undefined;
afterEach(() => {
  open?.close();
  open = undefined;
});

const connectTo = (port: number, tlsMode: 'disable' | 'verify-full' = 'disable') =>
  connectMysqlUpstream({
    host: '127.0.0.1',
    port,
    user: 'proxy',
    password: PASSWORD,
    database: 'app',
    tls: tlsMode === 'disable' ? { mode: 'disable' } : { mode: 'verify-full', ca: readFileSync(tls.caFile) },
    connectTimeoutMs: 5000,
    clientCapabilities: Capability.DEPRECATE_EOF | Capability.PROTOCOL_41,
    charset: 45,
    attributes: { gatehouse_identity: 'local:demo' },
  });

describe('caching_sha2_password login', () => {
  it('takes the fast path', async () => {
    const fake = await fakeServer('fast');
    open = fake.server;
    const upstream = await connectTo(fake.port);
    upstream.socket.destroy();
    expect(upstream.greeting.threadId).toBe(77);
    expect(fake.seen).toEqual(['user=proxy', 'plugin=caching_sha2_password', 'attrs=true']);
  });

  it('takes the full path without TLS, with the RSA key it asks the server for', async () => {
    const fake = await fakeServer('full-rsa');
    open = fake.server;
    const upstream = await connectTo(fake.port);
    upstream.socket.destroy();
    expect(fake.seen).toContain('asked-key=true');
    expect(fake.seen).toContain('rsa-password-ok=true');
  });

  it('takes the full path over TLS, sending the password itself only there', async () => {
    const fake = await fakeServer('full-tls');
    open = fake.server;
    const upstream = await connectTo(fake.port, 'verify-full');
    expect(upstream.tls).toBe(true);
    upstream.socket.destroy();
    expect(fake.seen).toContain('ssl-request=true');
    expect(fake.seen).toContain('tls-password-ok=true');
  });

  it('follows a switch from mysql_native_password', async () => {
    const fake = await fakeServer('switch-to-sha2');
    open = fake.server;
    const upstream = await connectTo(fake.port);
    upstream.socket.destroy();
    expect(fake.seen).toEqual(['user=proxy', 'plugin=mysql_native_password', 'attrs=true', 'switched']);
  });

  it('reports the server refusing the password', async () => {
    const fake = await fakeServer('wrong-password');
    open = fake.server;
    const error = await connectTo(fake.port).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MysqlUpstreamError);
    expect((error as MysqlUpstreamError).serverCode).toBe(1045);
    expect((error as Error).message).not.toContain(PASSWORD);
  });
});

describe('upstreamFailureForClient', () => {
  it.each([
    [new MysqlUpstreamError('network', '10.1.2.3:3306: ECONNREFUSED'), /not reachable \(ECONNREFUSED\)/],
    [new MysqlUpstreamError('timeout', 'no login within 5000 ms'), /did not answer in time/],
    [
      new MysqlUpstreamError('server', "login: server error 1045: Access denied for user 'svc'", 1045),
      /upstream user or password is wrong/,
    ],
    [
      new MysqlUpstreamError('server', 'login: server error 1049: Unknown database', 1049),
      /does not exist \(error 1049\)/,
    ],
    [new MysqlUpstreamError('server', 'x', 1130), /refused the connection \(error 1130\)/],
    [new Error('boom'), /an unexpected error/],
  ])('names the cause of %s, never the address or the account', (error, cause) => {
    const message = upstreamFailureForClient(error);
    expect(message).toMatch(cause);
    expect(message).not.toMatch(/10\.1\.2\.3|svc|boom/);
  });
});
