import type { MysqlErrorKind } from './constants.ts';
import { PayloadWriter, packet } from './packet-io.ts';

/**
 * An ERR packet; `message` must never hold values from the SQL. Before the greeting the client knows
 * no capabilities yet, so the packet has the pre-4.1 layout (no `#SQLSTATE`), as a server's own
 * refusals there do (`greeted` false).
 */
export function errPacket(kind: MysqlErrorKind, message: string, seq: number, greeted = true): Buffer {
  const writer = new PayloadWriter().u8(0xff).u16(kind.code);
  if (greeted) writer.bytes(Buffer.from(`#${kind.sqlstate}`, 'ascii'));
  return packet(writer.bytes(Buffer.from(message, 'utf8')).build(), seq);
}

/**
 * The server's ERR packet for a command that touches masked data, with its message replaced: errno
 * and SQLSTATE stay, the text (which can quote any value the statement handled, in any form, as
 * `XPATH syntax error: '~968705127'` does) is withheld.
 */
export function withholdErrorText(p: Buffer): Buffer {
  const errno = p.readUInt16LE(5);
  const sqlstate = p[7] === 0x23 ? p.toString('ascii', 8, 13) : 'HY000';
  return errPacket(
    { code: errno, sqlstate },
    `Gatehouse withheld the database's error text (error ${errno}): the statement reads or writes data this identity sees masked, and the text could quote it`,
    p[3]!,
  );
}

export function okPacket(seq: number, status: number, warnings = 0): Buffer {
  return packet(new PayloadWriter().u8(0).lenenc(0).lenenc(0).u16(status).u16(warnings).build(), seq);
}

export interface Greeting {
  readonly serverVersion: string;
  readonly connectionId: number;
  /** 20 bytes. */
  readonly scramble: Buffer;
  readonly capabilities: number;
  readonly charset: number;
  readonly status: number;
  readonly authPlugin: string;
}

/** Handshake v10, the server's first packet. */
export function greetingPacket(g: Greeting): Buffer {
  const payload = new PayloadWriter()
    .u8(10)
    .nul(g.serverVersion)
    .u32(g.connectionId)
    .bytes(g.scramble.subarray(0, 8))
    .u8(0)
    .u16(g.capabilities & 0xffff)
    .u8(g.charset)
    .u16(g.status)
    .u16(g.capabilities >>> 16)
    .u8(g.scramble.length + 1)
    .zeros(10)
    .bytes(g.scramble.subarray(8))
    .u8(0)
    .nul(g.authPlugin)
    .build();
  return packet(payload, 0);
}

export function authSwitchPacket(plugin: string, data: Buffer, seq: number): Buffer {
  return packet(new PayloadWriter().u8(0xfe).nul(plugin).bytes(data).build(), seq);
}
