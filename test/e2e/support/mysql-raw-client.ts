import { connect, type Socket } from 'node:net';

/** One packet as it came: sequence id and payload. */
export interface RawPacket {
  readonly seq: number;
  readonly payload: Buffer;
}

/** Frames `payload` as one packet (under 16 MiB). */
export function rawPacket(payload: Buffer, seq: number): Buffer {
  const out = Buffer.alloc(4 + payload.length);
  out.writeUIntLE(payload.length, 0, 3);
  out[3] = seq;
  payload.copy(out, 4);
  return out;
}

export function comQuery(sql: string): Buffer {
  return rawPacket(Buffer.concat([Buffer.from([0x03]), Buffer.from(sql, 'utf8')]), 0);
}

const CAPABILITIES =
  0x1 | 0x200 | 0x2000 | 0x8000 | 0x10000 | 0x20000 | 0x40000 | 0x80000 | 0x200000 | 0x1000000;

/**
 * A bare-bytes MySQL client: logs in with mysql_clear_password and then reads packets without
 * decoding rows, so tests can send hostile bytes, stop reading, or count millions of rows cheaply.
 */
export class RawMysqlClient {
  readonly socket: Socket;
  readonly closed: Promise<void>;
  private buffered: Buffer = Buffer.alloc(0);
  private listener: ((p: RawPacket) => void) | undefined;
  private queue: RawPacket[] = [];

  private constructor(socket: Socket) {
    this.socket = socket;
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
      while (this.buffered.length >= 4) {
        const length = this.buffered.readUIntLE(0, 3);
        if (this.buffered.length < 4 + length) break;
        const p = { seq: this.buffered[3]!, payload: this.buffered.subarray(4, 4 + length) };
        this.buffered = this.buffered.subarray(4 + length);
        if (this.listener) this.listener(p);
        else this.queue.push(p);
      }
    });
  }

  static async login(port: number, user: string, password: string): Promise<RawMysqlClient> {
    const socket = connect({ host: '127.0.0.1', port });
    await new Promise((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const client = new RawMysqlClient(socket);
    await client.next();
    const response = Buffer.concat([
      Buffer.from(Uint32Array.of(CAPABILITIES).buffer),
      Buffer.from(Uint32Array.of(1 << 24).buffer),
      Buffer.from([45]),
      Buffer.alloc(23),
      Buffer.from(`${user}\0`),
      Buffer.from([password.length + 1]),
      Buffer.from(`${password}\0`),
      Buffer.from('mysql_clear_password\0'),
    ]);
    socket.write(rawPacket(response, 1));
    const answer = await client.next();
    if (answer.payload[0] !== 0) throw new Error(`login failed: ${answer.payload.toString('utf8', 9)}`);
    return client;
  }

  /** The next packet. */
  next(): Promise<RawPacket> {
    const queued = this.queue.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const onClose = () => reject(new Error('connection closed'));
      this.socket.once('close', onClose);
      this.listener = (p) => {
        this.listener = undefined;
        this.socket.off('close', onClose);
        resolve(p);
      };
    });
  }

  /** Receives every packet from now on (for counting rows without keeping them). */
  onPacket(listener: (p: RawPacket) => void): void {
    for (const p of this.queue.splice(0)) listener(p);
    this.listener = listener;
  }

  /** Runs a query and resolves with its text rows (DEPRECATE_EOF: the result ends with a 0xFE packet). */
  async query(sql: string): Promise<string[][]> {
    this.socket.write(comQuery(sql));
    const head = await this.next();
    if (head.payload[0] === 0xff) throw new Error(`error ${head.payload.readUInt16LE(1)}`);
    if (head.payload[0] === 0x00) return [];
    const columns = head.payload[0]!;
    for (let i = 0; i < columns; i++) await this.next();
    const rows: string[][] = [];
    for (;;) {
      const p = await this.next();
      if (p.payload[0] === 0xfe && p.payload.length < 9) return rows;
      if (p.payload[0] === 0xff) throw new Error(`error ${p.payload.readUInt16LE(1)}`);
      const row: string[] = [];
      let at = 0;
      for (let i = 0; i < columns; i++) {
        const n = p.payload[at]!;
        row.push(p.payload.toString('utf8', at + 1, at + 1 + n));
        at += 1 + n;
      }
      rows.push(row);
    }
  }

  close(): void {
    this.socket.end(rawPacket(Buffer.from([0x01]), 0));
  }
}
