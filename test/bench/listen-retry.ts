import { freePort } from '../harness/free-port.ts';

const ATTEMPTS = 3;

/**
 * Starts a server on a free port; freePort cannot reserve the port, so another process may take it
 * first and the start is tried again on a new one.
 */
export async function onFreePort<T>(start: (port: number) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    try {
      return await start(port);
    } catch (error) {
      if (attempt >= ATTEMPTS || !/address already in use|cannot bind|EADDRINUSE/i.test(String(error)))
        throw error;
    }
  }
}
