import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { inProcessPair } from './in-process-channel.ts';

describe('inProcessPair', () => {
  it('carries bytes both ways, and connects as a socket would for the clients that take a stream', async () => {
    const { client, server } = inProcessPair();
    const connected = once(client, 'connect');
    expect(client.setNoDelay()).toBe(client);
    client.connect();
    await connected;
    client.write('startup');
    expect(String((await once(server, 'data'))[0])).toBe('startup');
    server.setNoDelay(true);
    server.write('ready');
    expect(String((await once(client, 'data'))[0])).toBe('ready');
    // No address: the audit records none, and nothing can be claimed through one.
    expect(server.remoteAddress).toBeUndefined();
  });

  it.each(['client', 'server'] as const)('closes both ends when the %s end is destroyed', async (side) => {
    const { client, server } = inProcessPair();
    const [closing, other] = side === 'client' ? [client, server] : [server, client];
    const closed = once(other, 'close');
    closing.destroy();
    await closed;
    expect(other.destroyed).toBe(true);
  });
});
