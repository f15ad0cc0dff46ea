import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { directClient, localProxyConfig } from './support/clients.ts';
import { type ProxyProcess, startProxyProcess } from './support/proxy-process.ts';
import { RawClient } from './support/raw-client.ts';

const pgInfo = inject('postgres');
let proxy: ProxyProcess;

beforeAll(async () => {
  proxy = await startProxyProcess(localProxyConfig(pgInfo));
});

afterAll(async () => {
  await proxy?.stop();
});

describe('streaming', () => {
  it('passes a 10-million-row result with bounded proxy memory', async () => {
    const client = await RawClient.login(proxy.port, 'demo', 'demo-secret');
    const before = proxy.memory();
    let rows = 0;
    client.onMessage((m) => {
      if (m.name === 'dataRow') rows++;
    });
    const done = client.waitFor('commandComplete');
    client.query('SELECT g, md5(g::text) FROM generate_series(1, 10000000) g');
    const complete = (await done) as unknown as { text: string };
    await client.waitFor('readyForQuery');
    client.close();
    const after = proxy.memory();
    console.log(`10M rows: proxy RSS ${before.rssKb} kB before, peak ${after.peakKb} kB`);
    expect(rows).toBe(10_000_000);
    expect(complete.text).toBe('SELECT 10000000');
    // About 500 MB crossed the proxy; its peak must stay far below that.
    expect(after.peakKb - before.rssKb).toBeLessThan(96 * 1024);
  }, 300_000);

  it('slows the database down for a slow client instead of buffering', async () => {
    const client = await RawClient.login(proxy.port, 'demo', 'demo-secret');
    const direct = await directClient(pgInfo);
    try {
      let rows = 0;
      client.onMessage((m) => {
        if (m.name === 'dataRow') rows++;
      });
      const done = client.waitFor('readyForQuery');
      client.query("SELECT g, repeat('x', 200) FROM generate_series(1, 2000000) g");
      // Read a little, then stop reading: the proxy must stop reading the database too.
      await new Promise((r) => setTimeout(r, 300));
      client.socket.pause();
      const baseline = proxy.memory().rssKb;
      let waitEvent: string | undefined;
      for (let i = 0; i < 50 && waitEvent !== 'ClientWrite'; i++) {
        await new Promise((r) => setTimeout(r, 100));
        const activity = await direct.query(
          "SELECT wait_event FROM pg_stat_activity WHERE application_name = 'gatehouse:local:demo' AND query LIKE '%generate_series(1, 2000000)%'",
        );
        waitEvent = activity.rows[0]?.wait_event ?? undefined;
      }
      const paused = rows;
      await new Promise((r) => setTimeout(r, 1000));
      const grown = proxy.memory().rssKb - baseline;
      expect(waitEvent).toBe('ClientWrite');
      expect(rows).toBe(paused);
      expect(grown).toBeLessThan(32 * 1024);
      client.socket.resume();
      await done;
      expect(rows).toBe(2_000_000);
      client.close();
    } finally {
      await direct.end();
    }
  }, 120_000);
});
