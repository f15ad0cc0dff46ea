import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeSignedLog } from '../../../sidecar/src/audit/testing.ts';
import { verifyAuditLog } from '../../../sidecar/src/audit/verify.ts';
import { CollectorStore, type SourceKey } from './store.ts';
import { openDriver } from './store-driver.ts';
import { freshStoreUrl } from './test-store.ts';

let dir: string;
let lines: string[];
let source: SourceKey;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gatehouse-store-'));
  const { file } = await writeSignedLog(dir);
  lines = (await readFile(file, 'utf8')).trimEnd().split('\n');
  const keyId = String(JSON.parse(lines[0]!).keyId);
  source = { cluster: 'test', namespace: 'shop', pod: 'orders-0', database: 'shop', logKeyId: keyId };
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const stores: { name: string; url: () => Promise<string> }[] = [
  { name: 'PostgreSQL', url: () => freshStoreUrl('collector_store_test') },
  { name: 'PGlite', url: async () => 'pglite:memory' },
];

describe.each(stores)('the store on $name', ({ url }) => {
  let store: CollectorStore;
  beforeAll(async () => {
    const at = await url();
    // Twice: the migrations are idempotent.
    await (await CollectorStore.open(await openDriver(at))).close();
    store = await CollectorStore.open(await openDriver(at));
  });
  afterAll(() => store.close());

  it('keeps every line byte for byte, so the exported chain still verifies', async () => {
    const first = await store.ingest(source, lines.slice(0, 7));
    expect(first).toMatchObject({ acknowledged: 7, status: 'ok', stored: 7 });
    const again = await store.ingest(source, lines.slice(3));
    expect(again).toMatchObject({ acknowledged: lines.length, status: 'ok', duplicates: 4 });
    const [view] = await store.sources();
    expect(view).toMatchObject({ status: 'ok', lastSeq: lines.length, checkpointSeq: lines.length });
    const exported = await store.lines(view!.id);
    expect(exported).toEqual(lines);
    expect(verifyAuditLog(`${exported.join('\n')}\n`).ok).toBe(true);
  });

  it('drops the partitions older than the retention', async () => {
    const old = { ...source, pod: 'old-0' };
    await store.ingest(old, ['{"not":"a record"}'], new Date('2020-01-01T12:00:00Z'));
    const rows = async () =>
      Number((await store.db.query<{ n: unknown }>('SELECT count(*) AS n FROM records'))[0]!.n);
    const before = await rows();
    expect(await store.applyRetention(30)).toContain('2020-01-01');
    expect(await rows()).toBe(before - 1);
  });

  it('resets a flagged source: keeps who, why and what the flag said, and checks the chain again', async () => {
    const gapped = { ...source, pod: 'reset-0' };
    await store.ingest(gapped, lines.slice(0, 5));
    // seq 6 never arrives.
    expect(await store.ingest(gapped, lines.slice(6, 9))).toMatchObject({ status: 'gap' });
    const id = (await store.sources()).find((s) => s.pod === 'reset-0')!.id;
    const reset = await store.resetSource(id, 'local:lead', 'pod restarted from a backup; seq 6 is lost');
    expect(reset).toMatchObject({ by: 'local:lead', previousStatus: 'gap', atSeq: 9 });
    expect(reset.previousReason).toMatch(/seq 7/);
    const view = (await store.sources()).find((s) => s.pod === 'reset-0')!;
    expect(view).toMatchObject({ status: 'ok', reason: null, lastReset: reset });
    // The records after it are checked against the last one stored, signatures included.
    expect(await store.ingest(gapped, lines.slice(9))).toMatchObject({ status: 'ok' });
    const verified = await store.db.query<{ seq: unknown; verified: boolean }>(
      'SELECT seq, verified FROM records WHERE source_id = $1 ORDER BY seq',
      [id],
    );
    expect(verified.filter((r) => Number(r.seq) > 9).every((r) => r.verified)).toBe(true);
    expect(verified.filter((r) => [7, 8, 9].includes(Number(r.seq))).every((r) => !r.verified)).toBe(true);
    // A changed record after the reset is flagged again: the check really resumed.
    const tampered = { ...source, pod: 'reset-1' };
    await store.ingest(tampered, lines.slice(0, 4));
    await store.ingest(tampered, lines.slice(5, 7));
    const tamperedId = (await store.sources()).find((s) => s.pod === 'reset-1')!.id;
    await store.resetSource(tamperedId, 'local:lead', 'known gap');
    const changed = lines[7]!.replace('"rows":', '"rows":1');
    expect(await store.ingest(tampered, [changed])).toMatchObject({ status: 'broken' });

    await expect(store.resetSource(id, 'local:lead', 'again')).rejects.toMatchObject({ kind: 'not-flagged' });
    await expect(store.resetSource(999_999, 'local:lead', 'x')).rejects.toMatchObject({ kind: 'not-found' });
  });

  it("keeps a line with every character COPY's text format escapes, and flags it", async () => {
    const odd = { ...source, pod: 'odd-0' };
    // Not JSON (a raw tab), so kept as a torn line before the malformed record that follows it.
    const torn = 'tab\there, backslash \\N, carriage\r, {"a",b}';
    const malformed = JSON.stringify({ text: 'escaped \\ and \t' });
    expect(await store.ingest(odd, [torn, malformed])).toMatchObject({ status: 'broken', stored: 2 });
    const view = (await store.sources()).find((s) => s.pod === 'odd-0')!;
    expect(await store.lines(view.id)).toEqual([torn, malformed]);
  });
});

describe('replicas sharing one PostgreSQL store', () => {
  it("never interleave one source's chain, however batches race", async () => {
    const url = await freshStoreUrl('collector_replicas_test');
    const replicas = [
      await CollectorStore.open(await openDriver(url)),
      await CollectorStore.open(await openDriver(url)),
      await CollectorStore.open(await openDriver(url)),
    ];
    try {
      // A shipper sends its next batch only once the previous one was answered, but a batch it gave up
      // waiting for may still arrive, at another replica, at the same time as its resend: each batch,
      // overlapping the one before, reaches every replica at once.
      const batches = [lines.slice(0, 3), lines.slice(0, 6), lines.slice(2, 9), lines.slice(5)];
      const pods = ['a', 'b', 'c', 'd', 'e', 'f'];
      await Promise.all(
        pods.map(async (pod) => {
          for (const batch of batches)
            await Promise.all(replicas.map((replica) => replica.ingest({ ...source, pod }, batch)));
        }),
      );
      const views = await replicas[0]!.sources();
      expect(views).toHaveLength(pods.length);
      for (const view of views) {
        expect(view).toMatchObject({ status: 'ok', lastSeq: lines.length, records: lines.length });
        expect(await replicas[0]!.lines(view.id)).toEqual(lines);
      }
    } finally {
      for (const replica of replicas) await replica.close();
    }
  });
});
