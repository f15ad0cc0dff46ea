/**
 * What following the server's frames costs, per answer, in both protocols' scanners (MessageScanner,
 * PacketScanner), in one process and without a database: a point select's answer, a 100-row answer
 * (PostgreSQL: once passed through, once with its rows handed over as masking does), and a 10,000-row
 * result cut into the 64 KiB chunks a socket delivers. And what the client-side framers (MessageFramer,
 * CommandFramer) cost per request: a simple query, PostgreSQL's extended-protocol pipeline in one
 * chunk, and a 1 MiB statement in 64 KiB chunks. `node test/bench/framing.ts [--seconds S]
 * [--only postgres|mysql]` prints CPU ns per answer or request (the median of seven timed rounds of each
 * case, taken in turn). `--only` keeps the other protocol's framers out of the process, as in a proxy
 * of one.
 */
import { parseArgs } from 'node:util';
import { CommandFramer } from '../../sidecar/src/protocol/mysql/command-framer.ts';
import { packet } from '../../sidecar/src/protocol/mysql/packet-io.ts';
import { PacketScanner } from '../../sidecar/src/protocol/mysql/packet-scanner.ts';
import { MessageFramer, MessageScanner } from '../../sidecar/src/protocol/postgres/message-framer.ts';
import { WANTED_BACKEND_TYPES } from '../../sidecar/src/protocol/postgres/server-messages.ts';

function pgMessage(type: string, body: Buffer): Buffer {
  const out = Buffer.alloc(5 + body.length);
  out[0] = type.charCodeAt(0);
  out.writeInt32BE(4 + body.length, 1);
  body.copy(out, 5);
  return out;
}

function pgRow(values: readonly string[]): Buffer {
  const parts = [Buffer.from([values.length >> 8, values.length & 0xff])];
  for (const v of values) {
    const b = Buffer.from(v);
    const len = Buffer.alloc(4);
    len.writeInt32BE(b.length);
    parts.push(len, b);
  }
  return pgMessage('D', Buffer.concat(parts));
}

function pgAnswer(rows: number, columns: (i: number) => string[]): Buffer {
  const description = pgMessage('T', Buffer.alloc(20 * columns(0).length + 2, 1));
  const data = Array.from({ length: rows }, (_, i) => pgRow(columns(i)));
  return Buffer.concat([
    description,
    ...data,
    pgMessage('C', Buffer.from(`SELECT ${rows}\0`)),
    pgMessage('Z', Buffer.from('I')),
  ]);
}

function lenenc(values: readonly string[]): Buffer {
  return Buffer.concat(
    values.map((v) => Buffer.concat([Buffer.from([Buffer.byteLength(v)]), Buffer.from(v)])),
  );
}

function mysqlAnswer(rows: number, columns: (i: number) => string[]): Buffer {
  const count = columns(0).length;
  let seq = 1;
  const parts = [packet(Buffer.from([count]), seq++)];
  for (let c = 0; c < count; c++)
    parts.push(packet(lenenc(['def', 'db', 't', 't', `c${c}`, `c${c}`]), seq++));
  for (let i = 0; i < rows; i++) parts.push(packet(lenenc(columns(i)), seq++));
  parts.push(packet(Buffer.from([0xfe, 0, 0, 2, 0, 0, 0]), seq++));
  return Buffer.concat(parts);
}

/** Cut as a socket delivers a large answer. */
function chunked(stream: Buffer, size = 64 * 1024): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < stream.length; at += size) out.push(stream.subarray(at, at + size));
  return out;
}

const point = (i: number) => [String(1000 + i)];
const fiveColumns = (i: number) => [String(i), `user${i}@example.com`, '123-45-6789', 'Springfield', '42'];
const accounts = (i: number) => [String(i), '1', '0', ' '.repeat(84)];

const keep = (_: Buffer) => undefined;
const frame = (_: number, f: Buffer) => f;
const pgScanner = new MessageScanner(WANTED_BACKEND_TYPES, 256 * 1024 * 1024);
const pgMasking = new MessageScanner([...WANTED_BACKEND_TYPES, 68], 256 * 1024 * 1024);
const mysqlScanner = new PacketScanner(64 * 1024 * 1024);
/** What a result's tracker asks for: the end of the column definitions and of the rows, and errors. */
const classify = (first: number, length: number) => first === 0xff || (first === 0xfe && length < 9);
const packetOut = (p: Buffer) => p;

const pgPoint = [pgAnswer(1, point)];
const pg100 = [pgAnswer(100, fiveColumns)];
const pgLarge = chunked(pgAnswer(10_000, accounts));
const myPoint = [mysqlAnswer(1, point)];
const my100 = [mysqlAnswer(100, fiveColumns)];
const myLarge = chunked(mysqlAnswer(10_000, accounts));

function pgPass(scanner: MessageScanner, chunks: readonly Buffer[]): () => void {
  return () => {
    for (const chunk of chunks) scanner.scan(chunk, frame, keep);
  };
}

function mysqlPass(chunks: readonly Buffer[]): () => void {
  return () => {
    for (const chunk of chunks) mysqlScanner.scan(chunk, classify, packetOut, keep);
  };
}

const pgClient = new MessageFramer(1024 * 1024 * 1024);
const mysqlClient = new CommandFramer(1024 * 1024 * 1024);
const command = (frame: Buffer) => frame;
const pointText = 'SELECT abalance FROM pgbench_accounts WHERE aid = 4242;';
const pgQuery = [pgMessage('Q', Buffer.from(`${pointText}\0`))];
const pgPipeline = [
  Buffer.concat([
    pgMessage('P', Buffer.from('\0SELECT abalance FROM pgbench_accounts WHERE aid = $1\0\0\0')),
    pgMessage('B', Buffer.from('\0\0\0\0\0\x01\0\0\0\x044242\0\0')),
    pgMessage('D', Buffer.from('P\0')),
    pgMessage('E', Buffer.from('\0\0\0\0\0')),
    pgMessage('S', Buffer.alloc(0)),
  ]),
];
const bigText = `SELECT 1 WHERE 'x' IN ('${'y'.repeat(1 << 20)}')`;
const pgBigQuery = chunked(pgMessage('Q', Buffer.from(`${bigText}\0`)));
const myQuery = [packet(Buffer.from(`\x03${pointText}`), 0)];
const myBigQuery = chunked(packet(Buffer.from(`\x03${bigText}`), 0));

function pgClientPass(chunks: readonly Buffer[]): () => void {
  return () => {
    for (const chunk of chunks) pgClient.push(chunk, frame, keep);
  };
}

function mysqlClientPass(chunks: readonly Buffer[]): () => void {
  return () => {
    for (const chunk of chunks) mysqlClient.push(chunk, command, keep);
  };
}

const cases: { name: string; pass: () => void }[] = [
  { name: 'postgres point select', pass: pgPass(pgScanner, pgPoint) },
  { name: 'postgres 100 rows', pass: pgPass(pgScanner, pg100) },
  { name: 'postgres 100 rows, rows handed over', pass: pgPass(pgMasking, pg100) },
  { name: 'postgres 10,000 rows in 64 KiB chunks', pass: pgPass(pgScanner, pgLarge) },
  { name: 'mysql point select', pass: mysqlPass(myPoint) },
  { name: 'mysql 100 rows', pass: mysqlPass(my100) },
  { name: 'mysql 10,000 rows in 64 KiB chunks', pass: mysqlPass(myLarge) },
  { name: 'postgres client Query', pass: pgClientPass(pgQuery) },
  { name: 'postgres client Parse..Sync pipeline', pass: pgClientPass(pgPipeline) },
  { name: 'postgres client 1 MiB Query, 64 KiB chunks', pass: pgClientPass(pgBigQuery) },
  { name: 'mysql client COM_QUERY', pass: mysqlClientPass(myQuery) },
  { name: 'mysql client 1 MiB COM_QUERY, 64 KiB chunks', pass: mysqlClientPass(myBigQuery) },
];

/** CPU ns per pass over `seconds` of CPU time (the machine may be shared: wall time would count others' work). */
function time(pass: () => void, seconds: number): number {
  let n = 0;
  const started = process.cpuUsage();
  const budget = seconds * 1e6;
  let spent = 0;
  while (spent < budget) {
    for (let i = 0; i < 16; i++) pass();
    n += 16;
    const used = process.cpuUsage(started);
    spent = used.user + used.system;
  }
  return (spent * 1000) / n;
}

const { values } = parseArgs({ options: { seconds: { type: 'string' }, only: { type: 'string' } } });
const seconds = Number(values.seconds ?? '0.2');
const chosen = cases.filter((c) => values.only === undefined || c.name.startsWith(values.only));
for (const c of chosen) time(c.pass, seconds);
const samples = chosen.map(() => [] as number[]);
for (let round = 0; round < 7; round++)
  for (const [i, c] of chosen.entries()) samples[i]!.push(time(c.pass, seconds));
for (const [i, c] of chosen.entries()) {
  const sorted = samples[i]!.sort((a, b) => a - b);
  console.log(`${c.name.padEnd(46)} ${sorted[3]!.toFixed(0).padStart(9)} ns per answer`);
}
