import { once } from 'node:events';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { SessionMetrics } from '../metrics.ts';
import { type FatalCause, type RelayProtocol, SessionCore } from './session-core.ts';

/** A connected pair of loopback sockets: `near` is the proxy's end, `far` the peer's. */
async function socketPair(servers: Server[]): Promise<{ near: Socket; far: Socket }> {
  const server = createServer();
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const accepted = once(server, 'connection');
  const far = connect((server.address() as AddressInfo).port, '127.0.0.1');
  const [near] = (await accepted) as [Socket];
  await once(far, 'connect');
  near.pause();
  return { near, far };
}

function countingMetrics() {
  const counts = { upstreamErrors: [] as string[], active: 0, accepted: 0, bytesIn: 0, bytesOut: 0 };
  const metrics: SessionMetrics = {
    statementOk: () => {},
    statementError: () => {},
    statementRefused: () => {},
    observeDuration: () => {},
    bytesIn: (n) => {
      counts.bytesIn += n;
    },
    bytesOut: (n) => {
      counts.bytesOut += n;
    },
    upstreamError: (kind) => counts.upstreamErrors.push(kind),
    connection: (outcome) => {
      if (outcome === 'accepted') counts.accepted++;
    },
    active: (delta) => {
      counts.active += delta;
    },
  };
  return { counts, metrics };
}

/** A protocol of lines: each client chunk is upper-cased on its way; `BAD` is a violation. */
class LineProtocol implements RelayProtocol {
  readonly endings: string[] = [];
  clientChunk(chunk: Buffer, out: (bytes: Buffer) => void): void {
    if (chunk.includes('BAD')) throw new Error('bad line');
    out(Buffer.from(chunk.toString().toUpperCase()));
  }
  afterClientChunk(): void {}
  holdingClient(): boolean {
    return false;
  }
  serverChunk(chunk: Buffer, out: (bytes: Buffer) => void): void {
    out(chunk);
  }
  auditReleased(): void {}
  fatal(cause: FatalCause): Buffer {
    return Buffer.from(`fatal:${cause}\n`);
  }
  quit(): Buffer {
    return Buffer.from('quit\n');
  }
  ended(reason: string): void {
    this.endings.push(reason);
  }
}

const servers: Server[] = [];
afterEach(() => {
  for (const server of servers.splice(0)) server.close();
});

async function started() {
  const client = await socketPair(servers);
  const server = await socketPair(servers);
  const { counts, metrics } = countingMetrics();
  const protocol = new LineProtocol();
  const core = new SessionCore(
    { client: client.near, server: server.near, metrics, logger: pino({ level: 'silent' }) },
    protocol,
  );
  core.start(Buffer.alloc(0), Buffer.alloc(0));
  return { core, client: client.far, server: server.far, counts, ended: protocol.endings };
}

async function readAll(socket: Socket): Promise<string> {
  let text = '';
  socket.on('data', (chunk: Buffer) => {
    text += chunk.toString();
  });
  await once(socket, 'close');
  return text;
}

describe('SessionCore', () => {
  it('relays both ways through the protocol and counts the bytes', async () => {
    const { client, server, counts, core } = await started();
    client.write('hello');
    const [toServer] = (await once(server, 'data')) as [Buffer];
    expect(toServer.toString()).toBe('HELLO');
    server.write('world');
    const [toClient] = (await once(client, 'data')) as [Buffer];
    expect(toClient.toString()).toBe('world');
    expect(counts).toMatchObject({ bytesIn: 5, bytesOut: 5, accepted: 1, active: 1 });
    core.close('client');
  });

  it('counts the database ending a live session as an upstream error, once', async () => {
    const { server, counts, ended, core } = await started();
    server.destroy();
    await new Promise((r) => core.whenClosed(() => r(undefined)));
    expect(counts.upstreamErrors).toEqual(['closed']);
    expect(ended).toEqual(['upstream']);
  });

  it('takes the server hanging up after the client quit as the end the client asked for', async () => {
    const { server, counts, ended, core } = await started();
    core.clientQuit();
    server.destroy();
    await new Promise((r) => core.whenClosed(() => r(undefined)));
    expect(counts.upstreamErrors).toEqual([]);
    expect(ended).toEqual(['client']);
  });

  it('closes once, sends the quit to the server, and ignores the server resetting afterwards', async () => {
    const { server, client, counts, ended, core } = await started();
    const serverSaw = readAll(server);
    const clientClosed = once(client, 'close');
    core.close('shutdown');
    core.close('again');
    expect(await serverSaw).toBe('quit\n');
    // The server's socket erroring after the close reaches the listener the core never removes.
    core.server.destroy(new Error('reset'));
    await clientClosed;
    expect(ended).toEqual(['shutdown']);
    expect(counts.upstreamErrors).toEqual([]);
    expect(core.closed).toBe(true);
  });

  it('ends the session with the protocol fatal error on a client violation and on shutdown', async () => {
    const violating = await started();
    const said = readAll(violating.client);
    violating.client.write('BAD');
    expect(await said).toBe('fatal:client-protocol\n');
    expect(violating.ended).toEqual(['protocol-error']);

    const stopping = await started();
    const told = readAll(stopping.client);
    stopping.core.terminate('shutdown');
    expect(await told).toBe('fatal:shutdown\n');
    expect(stopping.ended).toEqual(['shutdown']);
  });
});
