import { PayloadWriter } from './packet-io.ts';

/*
 * Server payloads as MariaDB sends them, for the socket-free tests of what the proxy makes of them
 * (response-tracker.test.ts, exchange.test.ts).
 */

export const ok = (status: number, affected = 0) =>
  new PayloadWriter().u8(0).lenenc(affected).lenenc(0).u16(status).u16(0).build();

/** The OK that ends rows under DEPRECATE_EOF (0xFE header). */
export const okEnd = (status: number) =>
  new PayloadWriter().u8(0xfe).lenenc(0).lenenc(0).u16(status).u16(0).build();

/** The EOF packet of clients without DEPRECATE_EOF. */
export const eof = (status: number) => new PayloadWriter().u8(0xfe).u16(0).u16(status).build();

export const err = (code: number, sqlstate: string, message = 'boom') =>
  new PayloadWriter()
    .u8(0xff)
    .u16(code)
    .bytes(Buffer.from(`#${sqlstate}${message}`, 'utf8'))
    .build();

/** A column definition with only its name set. */
export const column = (name: string) =>
  new PayloadWriter()
    .lenencBytes('def')
    .lenencBytes('')
    .lenencBytes('')
    .lenencBytes('')
    .lenencBytes(name)
    .build();

export const textRow = (...values: string[]) => {
  const w = new PayloadWriter();
  for (const v of values) w.lenencBytes(v);
  return w.build();
};
