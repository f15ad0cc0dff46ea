import { createServer, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { UserError } from './errors.ts';
import { checkPortsFree } from './port-check.ts';

let blocker: Server | undefined;
afterEach(async () => {
  await new Promise((resolve) => (blocker ? blocker.close(resolve) : resolve(undefined)));
  blocker = undefined;
});

async function takenPort(): Promise<number> {
  blocker = createServer();
  await new Promise<void>((resolve) => blocker!.listen(0, '127.0.0.1', resolve));
  return (blocker.address() as { port: number }).port;
}

describe('checkPortsFree', () => {
  it('passes free ports and port 0, and leaves them free', async () => {
    const port = await takenPort();
    await new Promise((resolve) => blocker!.close(resolve));
    blocker = undefined;
    const planned = [
      { host: '127.0.0.1', port, role: 'the proxy', change: '--port' },
      { host: '127.0.0.1', port: 0, role: 'metrics', change: '--admin-port' },
    ];
    await checkPortsFree(planned);
    await checkPortsFree(planned);
  });

  it('names a taken port and the flag that moves it', async () => {
    const port = await takenPort();
    const check = checkPortsFree([
      { host: '127.0.0.1', port: 0, role: 'the proxy', change: '--port' },
      { host: '127.0.0.1', port, role: 'metrics', change: '--admin-port' },
    ]);
    await expect(check).rejects.toBeInstanceOf(UserError);
    await expect(check).rejects.toThrow(
      `port ${port} on 127.0.0.1 (metrics) is in use (another Gatehouse?); choose another with --admin-port`,
    );
  });

  it('refuses one port given twice', async () => {
    await expect(
      checkPortsFree([
        { host: '127.0.0.1', port: 7000, role: 'the proxy', change: '--port' },
        { host: '127.0.0.1', port: 7000, role: 'metrics', change: '--admin-port' },
      ]),
    ).rejects.toThrow('the proxy and metrics are both given port 7000; change one with --admin-port');
  });

  it('says when an address is not this machine', async () => {
    await expect(
      checkPortsFree([{ host: '192.0.2.1', port: 7001, role: 'the proxy', change: '--listen' }]),
    ).rejects.toThrow(
      'port 7001 on 192.0.2.1 (the proxy) is not an address of this machine; choose another with --listen',
    );
  });
});
