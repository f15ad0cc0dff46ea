import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chainLine, GENESIS } from '../../../sidecar/src/audit/chain.ts';
import { CollectorStore, type SourceKey } from './store.ts';
import { openDriver, type SqlClient, type SqlDriver } from './store-driver.ts';
import { pageWindows, queryStatements } from './store-queries.ts';
import { freshStoreUrl } from './test-store.ts';

/**
 * The pages' keys: `follow` gives what was stored since an answer, in the order it was stored, and a
 * `cursor` page reads only the days at or before the cursor. The lines here are chained statement
 * records without a log.open (the source is flagged and the records kept, which is all these need).
 */

const source = (pod: string): SourceKey => ({
  cluster: 'c',
  namespace: 'shop',
  pod,
  database: 'shop',
  logKeyId: 'k',
});

function statements(pod: string, count: number, time: string, subject = 'alice'): string[] {
  let prev = GENESIS;
  return Array.from({ length: count }, (_, i) => {
    const { line, hash } = chainLine({
      seq: i + 1,
      prev,
      time: new Date(Date.parse(time) + i * 1000).toISOString(),
      type: 'statement',
      subject,
      statement: `SELECT ${pod} ${i}`,
      outcome: 'ok',
    });
    prev = hash;
    return line;
  });
}

const texts = (page: { items: { statement: string | null }[] }) => page.items.map((i) => i.statement);

const stores: { name: string; url: () => Promise<string> }[] = [
  { name: 'PostgreSQL', url: () => freshStoreUrl('collector_queries_test') },
  { name: 'PGlite', url: async () => 'pglite:memory' },
];

describe.each(stores)('the questions on $name', ({ name, url }) => {
  let store: CollectorStore;
  let at: string;
  beforeAll(async () => {
    at = await url();
    store = await CollectorStore.open(await openDriver(at));
  });
  afterAll(() => store.close());

  it('follows what is stored after an answer, records older than those shown included', async () => {
    const now = new Date().toISOString();
    await store.ingest(source('a'), statements('a', 2, now));
    const first = await queryStatements(store.db, { subject: 'alice' });
    expect(texts(first)).toEqual(['SELECT a 1', 'SELECT a 0']);
    // A shipper catching up: its records are days older than the newest shown.
    await store.ingest(source('b'), statements('b', 3, new Date(Date.now() - 3 * 86_400_000).toISOString()));
    await store.ingest(source('a2'), statements('a2', 1, now, 'bob'));
    const next = await queryStatements(store.db, { subject: 'alice', follow: first.follow });
    expect(texts(next)).toEqual(['SELECT b 0', 'SELECT b 1', 'SELECT b 2']);
    expect(next.next).toBeUndefined();
    expect(texts(await queryStatements(store.db, { subject: 'alice', follow: next.follow }))).toEqual([]);
  });

  it('pages a long delta without repeats or gaps', async () => {
    const { follow } = await queryStatements(store.db, { limit: 1 });
    await store.ingest(source('c'), statements('c', 5, new Date().toISOString()));
    await store.ingest(source('d'), statements('d', 4, new Date().toISOString()));
    const seen: (string | null)[] = [];
    let cursor = follow;
    for (let i = 0; i < 10; i++) {
      const page = await queryStatements(store.db, { limit: 3, follow: cursor });
      seen.push(...texts(page));
      cursor = page.follow;
      if (page.items.length === 0) break;
    }
    expect(seen).toEqual([
      ...Array.from({ length: 5 }, (_, i) => `SELECT c ${i}`),
      ...Array.from({ length: 4 }, (_, i) => `SELECT d ${i}`),
    ]);
  });

  it('refuses a follow it did not give out', async () => {
    for (const bad of [
      'nonsense',
      Buffer.from('{"from":"1:2:3;DROP"}').toString('base64url'),
      Buffer.from('{"from":"5:9:","after":["7",1,1]}').toString('base64url'),
    ])
      await expect(queryStatements(store.db, { follow: bad })).rejects.toThrow(/follow is not one/);
  });

  it('reads no partition of a day after the cursor', async () => {
    const days = ['2026-03-01', '2026-03-02', '2026-03-03'];
    for (const day of days)
      await store.ingest(source(`p${day}`), statements(`p${day}`, 3, `${day}T12:00:00Z`));
    const recorded = recording(store.db);
    const filter = { since: new Date('2026-03-01T00:00:00Z'), until: new Date('2026-03-04T00:00:00Z') };
    const first = await queryStatements(recorded.driver, { ...filter, limit: 4 });
    expect(texts(first)).toEqual([
      'SELECT p2026-03-03 2',
      'SELECT p2026-03-03 1',
      'SELECT p2026-03-03 0',
      'SELECT p2026-03-02 2',
    ]);
    const second = await queryStatements(recorded.driver, { ...filter, limit: 4, cursor: first.next });
    expect(texts(second)).toEqual([
      'SELECT p2026-03-02 1',
      'SELECT p2026-03-02 0',
      'SELECT p2026-03-01 2',
      'SELECT p2026-03-01 1',
    ]);
    // Every query of the second page, planned as it ran: none reads the third day.
    const plans = await Promise.all(
      recorded
        .since(first.next!)
        .map(async (q) => JSON.stringify(await store.db.query(`EXPLAIN (FORMAT JSON) ${q.sql}`, q.params))),
    );
    expect(plans.join()).toContain('records_p20260302');
    expect(plans.join()).not.toContain('records_p20260303');
  });

  it('pages newest first across the time windows a page is read in', async () => {
    const now = Date.now();
    const at = (ms: number) => new Date(now - ms).toISOString();
    // Six hours, three days, twenty days back: one record in each window, two in the last.
    await store.ingest(source('w1'), statements('w1', 1, at(6 * 3_600_000), 'windows'));
    await store.ingest(source('w2'), statements('w2', 1, at(3 * 86_400_000), 'windows'));
    await store.ingest(source('w3'), statements('w3', 2, at(20 * 86_400_000), 'windows'));
    const all = await queryStatements(store.db, { subject: 'windows' });
    expect(texts(all)).toEqual(['SELECT w1 0', 'SELECT w2 0', 'SELECT w3 1', 'SELECT w3 0']);
    const seen: (string | null)[] = [];
    let cursor: string | undefined;
    do {
      const page = await queryStatements(store.db, {
        subject: 'windows',
        limit: 1,
        ...(cursor && { cursor }),
      });
      seen.push(...texts(page));
      cursor = page.next;
    } while (cursor);
    expect(seen).toEqual(texts(all));
    expect(
      texts(await queryStatements(store.db, { subject: 'windows', since: new Date(now - 4 * 86_400_000) })),
    ).toEqual(['SELECT w1 0', 'SELECT w2 0']);
  });

  it.runIf(name === 'PostgreSQL')('follows a transaction that commits after a later one', async () => {
    const { follow } = await queryStatements(store.db, { subject: 'late' });
    // Two shippers through two connections: the first stores and holds its transaction open while
    // the second stores and commits; a key of "the highest seen" would skip the first for good.
    const other = await openDriver(at, 1);
    let release!: () => void;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let stored!: () => void;
    const inside = new Promise<void>((resolve) => {
      stored = resolve;
    });
    const slow = other.transaction(async (tx) => {
      await tx.query(
        `INSERT INTO records (source_id, seq, time, type, verified, subject, statement, line)
         VALUES (1, 1000, now(), 'statement', false, 'late', 'SELECT slow', '{}')`,
      );
      stored();
      await held;
    });
    await inside;
    await store.ingest(source('fast'), statements('fast', 1, new Date().toISOString(), 'late'));
    const before = await queryStatements(store.db, { subject: 'late', follow });
    expect(texts(before)).toEqual(['SELECT fast 0']);
    release();
    await slow;
    await other.close();
    const after = await queryStatements(store.db, { subject: 'late', follow: before.follow });
    expect(texts(after)).toEqual(['SELECT slow']);
  });
});

type Recorded = { sql: string; params: readonly unknown[] };

/** The driver, recording the queries it ran with their parameters, to EXPLAIN them. */
function recording(db: SqlDriver): { driver: SqlDriver; since: (cursor: string) => Recorded[] } {
  const queries: Recorded[] = [];
  const wrap = (client: SqlClient): SqlClient => ({
    query: (sql, params = []) => {
      if (params.length > 0) queries.push({ sql, params });
      return client.query(sql, params);
    },
    copyIn: (sql, payload) => client.copyIn(sql, payload),
  });
  return {
    driver: {
      ...wrap(db),
      transaction: (body) => db.transaction((tx) => body(wrap(tx))),
      close: () => db.close(),
    },
    // The queries from the first that was given `cursor`.
    since: (cursor) =>
      queries.slice(
        queries.findIndex((q) =>
          q.params.includes(JSON.parse(Buffer.from(cursor, 'base64url').toString())[0]),
        ),
      ),
  };
}

describe('the windows a page is read in', () => {
  const anchor = new Date('2026-12-07T12:00:00Z');
  const day = (n: number) => new Date(anchor.getTime() - n * 86_400_000);

  it('are the last day, the six before, and the rest, adjoining', () => {
    expect(pageWindows(anchor, undefined)).toEqual([
      { from: day(1) },
      { from: day(7), before: day(1) },
      { before: day(7) },
    ]);
    expect(pageWindows(anchor, day(30))).toEqual([
      { from: day(1) },
      { from: day(7), before: day(1) },
      { from: day(30), before: day(7) },
    ]);
  });

  it('are one window when `since` is within the first', () => {
    expect(pageWindows(anchor, day(0.5))).toEqual([{ from: day(0.5) }]);
    expect(pageWindows(anchor, day(3))).toEqual([{ from: day(1) }, { from: day(3), before: day(1) }]);
  });
});
