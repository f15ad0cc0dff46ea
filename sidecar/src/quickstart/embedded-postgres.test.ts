import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect as netConnect, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { UserError } from '../errors.ts';
import { type EmbeddedPostgres, startEmbeddedPostgres } from './embedded-postgres.ts';

const seedFile = fileURLToPath(new URL('../../../examples/quickstart/seed.sql', import.meta.url));
const run = promisify(execFile);
// A fresh database runs initdb inside PGlite (several seconds on a small machine).
const slow = { timeout: 120_000 };

let workDir: string;
beforeAll(() => {
  workDir = mkdtempSync(join(tmpdir(), 'gatehouse-quickstart-'));
});
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

/** Runs one statement with the real psql; its default sslmode=prefer sends an SSLRequest first. */
async function psql(db: EmbeddedPostgres, sql: string): Promise<string> {
  const url = `postgres://anyone:anything@${db.host}:${db.port}/postgres?sslmode=prefer&connect_timeout=5`;
  const { PGSSLMODE: _, ...env } = process.env;
  const { stdout } = await run('/usr/bin/psql', ['-X', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-c', sql, url], {
    env,
    timeout: 20_000,
  });
  return stdout.trim();
}

async function connect(db: EmbeddedPostgres): Promise<pg.Client> {
  const client = new pg.Client({ host: db.host, port: db.port, user: 'demo', database: 'postgres' });
  await client.connect();
  return client;
}

describe('a new database', () => {
  let db: EmbeddedPostgres;
  beforeAll(async () => {
    db = await startEmbeddedPostgres({ dataDir: join(workDir, 'shared'), seedFile });
  }, slow.timeout);
  afterAll(() => db?.close());

  test('is seeded, and psql reads it through the socket', async () => {
    expect(db.seeded).toBe(true);
    expect(
      await psql(
        db,
        'SELECT (SELECT count(*) FROM customers), (SELECT count(*) FROM orders), (SELECT count(*) FROM products)',
      ),
    ).toBe('200|1000|12');
    // The docs show this row: the seed must stay deterministic.
    expect(await psql(db, 'SELECT name, email, phone, ssn, card_number FROM customers WHERE id = 1')).toBe(
      'Liam Jackson|liam.jackson@example.net|(212) 555-0101|968-70-5127|4242429824595723',
    );
    expect(
      await psql(
        db,
        "SELECT customer_id, amount, status, created_at AT TIME ZONE 'UTC' FROM orders WHERE id = 1",
      ),
    ).toBe('184|231.48|pending|2024-01-01 16:45:53');
  });

  test('has card numbers that pass the Luhn check, so value detectors recognise them', async () => {
    const cards = (await psql(db, 'SELECT card_number FROM customers')).split('\n');
    expect(cards).toHaveLength(200);
    expect(cards.filter((card) => !passesLuhn(card))).toEqual([]);
  });

  test('serves two node-postgres clients at once, with parameters over the extended protocol', async () => {
    const [first, second] = [await connect(db), await connect(db)];
    try {
      const emails = new Map(
        (await first.query<{ id: number; email: string }>('SELECT id, email FROM customers')).rows.map(
          (r) => [r.id, r.email],
        ),
      );
      const lookUp = async (client: pg.Client, ids: number[]) => {
        const found: string[] = [];
        for (const id of ids) {
          const result = await client.query<{ email: string }>('SELECT email FROM customers WHERE id = $1', [
            id,
          ]);
          found.push(result.rows[0]?.email ?? 'missing');
        }
        return found;
      };
      const odd = Array.from({ length: 50 }, (_, i) => 2 * i + 1);
      const even = odd.map((id) => id + 1);
      const [fromFirst, fromSecond] = await Promise.all([lookUp(first, odd), lookUp(second, even)]);
      expect(fromFirst).toEqual(odd.map((id) => emails.get(id)));
      expect(fromSecond).toEqual(even.map((id) => emails.get(id)));

      const paidOver100 = await second.query<{ count: string }>(
        'SELECT count(*) FROM orders WHERE status = $1 AND amount > $2',
        ['paid', 100],
      );
      expect(paidOver100.rows[0]?.count).toBe(
        await psql(db, "SELECT count(*) FROM orders WHERE status = 'paid' AND amount > 100"),
      );
    } finally {
      await Promise.all([first.end(), second.end()]);
    }
  });

  test('keeps the calling thread responsive while a statement runs', async () => {
    const client = await connect(db);
    try {
      let longestGapMs = 0;
      let last = performance.now();
      const ticker = setInterval(() => {
        const now = performance.now();
        longestGapMs = Math.max(longestGapMs, now - last);
        last = now;
      }, 20);
      await client.query('SELECT pg_sleep(1.5)');
      clearInterval(ticker);
      expect(longestGapMs).toBeLessThan(500);
    } finally {
      await client.end();
    }
  });

  test("takes psql's \\copy FROM a file, refuses bad rows, and keeps serving other connections", async () => {
    await psql(db, 'CREATE TABLE copy_probe (id integer PRIMARY KEY, note text NOT NULL)');
    const csv = join(workDir, 'rows.csv');
    writeFileSync(csv, '1,one\n2,"two, with a comma"\n3,three\n');
    expect(await psql(db, `\\copy copy_probe (id, note) FROM '${csv}' CSV`)).toBe('COPY 3');
    expect(await psql(db, "SELECT string_agg(note, '|' ORDER BY id) FROM copy_probe")).toBe(
      'one|two, with a comma|three',
    );
    writeFileSync(csv, '4,four\nfive,5\n');
    await expect(psql(db, `\\copy copy_probe (id, note) FROM '${csv}' CSV`)).rejects.toThrow(
      /invalid input syntax for type integer: "five"/,
    );
    // Inside a transaction, a failed COPY fails the transaction, as on PostgreSQL.
    const client = await connect(db);
    try {
      await client.query('BEGIN');
      await expect(client.query('COPY copy_probe FROM STDIN; SELECT 1')).rejects.toThrow(
        'COPY FROM STDIN must be the only statement of its query on the embedded database',
      );
      await expect(client.query('SELECT 1')).rejects.toThrow(/current transaction is aborted/);
      await client.query('ROLLBACK');
      // A named statement makes node-postgres use the extended protocol.
      await expect(client.query({ name: 'load', text: 'COPY copy_probe FROM STDIN' })).rejects.toThrow(
        /COPY FROM STDIN over the extended query protocol is not supported by the embedded database/,
      );
      expect((await client.query('SELECT count(*)::int AS n FROM copy_probe')).rows).toEqual([{ n: 3 }]);
    } finally {
      await client.end();
    }
    expect(await psql(db, 'SELECT count(*) FROM copy_probe')).toBe('3');
  });

  test('serves other connections after a client leaves in the middle of a COPY', async () => {
    await psql(db, 'CREATE TABLE IF NOT EXISTS copy_left (id integer)');
    const socket = await rawSession(db);
    await socket.send(message('Q', 'COPY copy_left FROM STDIN\0'), 'G');
    socket.destroy(message('d', '1\n'));
    const waiting = psql(db, 'SELECT count(*) FROM copy_left');
    expect(await waiting).toBe('0');
  });

  test('cannot be opened twice at the same time', async () => {
    const second = startEmbeddedPostgres({ dataDir: db.dataDir, seedFile });
    await expect(second).rejects.toBeInstanceOf(UserError);
    await expect(second).rejects.toThrow(/is in use by process \d+/);
  });
});

test('reuses a database without seeding it again, and reseeds it when fresh', slow, async () => {
  const dataDir = join(workDir, 'reused');
  const first = await startEmbeddedPostgres({ dataDir, seedFile });
  const client = await connect(first);
  await client.query(
    "INSERT INTO products (sku, name, category, price) VALUES ('GH-TST-999', 'Marker', 'test', 1)",
  );
  await client.end();
  await first.close();

  const reused = await startEmbeddedPostgres({ dataDir, seedFile });
  try {
    expect(reused.seeded).toBe(false);
    expect(await psql(reused, "SELECT id FROM products WHERE sku = 'GH-TST-999'")).toBe('13');
  } finally {
    await reused.close();
  }

  const fresh = await startEmbeddedPostgres({ dataDir, seedFile, fresh: true });
  try {
    expect(fresh.seeded).toBe(true);
    expect(await psql(fresh, 'SELECT count(*) FROM products')).toBe('12');
  } finally {
    await fresh.close();
  }
});

test('reports a port in use, and keeps the database it seeded for the next start', slow, async () => {
  const dataDir = join(workDir, 'port-in-use');
  const blocker = await listenOnFreePort();
  const port = (blocker.address() as { port: number }).port;
  try {
    const start = startEmbeddedPostgres({ dataDir, seedFile, port });
    await expect(start).rejects.toBeInstanceOf(UserError);
    await expect(start).rejects.toThrow(`cannot listen on 127.0.0.1:${port}: the address is in use`);
  } finally {
    await new Promise((resolve) => blocker.close(resolve));
  }
  const next = await startEmbeddedPostgres({ dataDir, seedFile, port });
  try {
    expect(next.seeded).toBe(false);
    expect(next.port).toBe(port);
  } finally {
    await next.close();
  }
});

test('refuses to delete, or open, a directory that is not a database', async () => {
  const dataDir = join(workDir, 'not-a-database');
  mkdirSync(dataDir);
  writeFileSync(join(dataDir, 'notes.txt'), 'keep me');
  await expect(startEmbeddedPostgres({ dataDir, seedFile, fresh: true })).rejects.toThrow(
    /is not a database directory/,
  );
  await expect(startEmbeddedPostgres({ dataDir, seedFile })).rejects.toThrow(/is not a database directory/);
  expect(existsSync(join(dataDir, 'notes.txt'))).toBe(true);
});

function passesLuhn(digits: string): boolean {
  let sum = 0;
  for (const [index, char] of [...digits].reverse().entries()) {
    const digit = Number(char) * (index % 2 === 1 ? 2 : 1);
    sum += digit > 9 ? digit - 9 : digit;
  }
  return /^\d{13,19}$/.test(digits) && sum % 10 === 0;
}

function message(type: string, body: string): Buffer {
  const head = Buffer.alloc(5);
  head.write(type, 0, 'latin1');
  head.writeInt32BE(Buffer.byteLength(body) + 4, 1);
  return Buffer.concat([head, Buffer.from(body)]);
}

/** A protocol session on a bare socket, for what no client library does: leave in the middle of a COPY. */
async function rawSession(db: EmbeddedPostgres) {
  const socket = netConnect(db.port, db.host);
  let received = Buffer.alloc(0);
  const types: string[] = [];
  socket.on('data', (chunk: Buffer) => {
    received = Buffer.concat([received, chunk]);
    while (received.length >= 5 && received.length >= 1 + received.readInt32BE(1)) {
      types.push(String.fromCharCode(received[0]!));
      received = received.subarray(1 + received.readInt32BE(1));
    }
  });
  /** Sends `bytes` and waits for a backend message of type `until`. */
  const send = async (bytes: Buffer, until: string) => {
    const from = types.length;
    socket.write(bytes);
    for (let i = 0; i < 200 && !types.slice(from).includes(until); i++)
      await new Promise((r) => setTimeout(r, 10));
    expect(types.slice(from)).toContain(until);
  };
  const params = 'user\0demo\0database\0postgres\0\0';
  const startup = Buffer.alloc(8);
  startup.writeInt32BE(8 + Buffer.byteLength(params), 0);
  startup.writeInt32BE(196608, 4);
  await send(Buffer.concat([startup, Buffer.from(params)]), 'Z');
  return { send, destroy: (last: Buffer) => socket.end(last, () => socket.destroy()) };
}

function listenOnFreePort(): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}
