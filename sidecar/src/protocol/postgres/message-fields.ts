import { ProtocolError } from './protocol-error.ts';

/** Readers for the few message fields the proxy looks at. Each takes a whole frame (type + length + body). */

const BODY = 5;

/** Reads a NUL-terminated UTF-8 string at `offset`; returns it and the offset after the terminator. */
export function readCString(frame: Buffer, offset: number): [string, number] {
  const end = frame.indexOf(0, offset);
  if (end < 0) throw new ProtocolError('unterminated string in message');
  return [frame.toString('utf8', offset, end), end + 1];
}

/** Query: the SQL text. */
export function queryText(frame: Buffer): string {
  return readCString(frame, BODY)[0];
}

/** Parse: statement name and SQL text. */
export function parseMessage(frame: Buffer): { name: string; sql: string } {
  const [name, next] = readCString(frame, BODY);
  const [sql] = readCString(frame, next);
  return { name, sql };
}

/** Bind: portal and statement names. */
export function bindNames(frame: Buffer): { portal: string; statement: string } {
  const [portal, next] = readCString(frame, BODY);
  const [statement] = readCString(frame, next);
  return { portal, statement };
}

/** Bind: the parameter values (null for SQL NULL) and their format codes. */
export function bindParameters(frame: Buffer): { values: (Buffer | null)[]; formats: number[] } {
  let offset = frame.indexOf(0, BODY) + 1; // portal
  offset = frame.indexOf(0, offset) + 1; // statement
  if (offset <= 0 || offset + 2 > frame.length) throw new ProtocolError('Bind message too short');
  const formatCount = frame.readInt16BE(offset);
  offset += 2;
  const formats: number[] = [];
  for (let i = 0; i < formatCount; i++) formats.push(frame.readInt16BE(offset + 2 * i));
  offset += 2 * formatCount;
  const count = frame.readInt16BE(offset);
  offset += 2;
  const values: (Buffer | null)[] = [];
  for (let i = 0; i < count; i++) {
    const length = frame.readInt32BE(offset);
    offset += 4;
    if (length < 0) values.push(null);
    else {
      if (offset + length > frame.length)
        throw new ProtocolError('Bind parameter past the end of the message');
      values.push(frame.subarray(offset, offset + length));
      offset += length;
    }
  }
  return { values, formats };
}

/** Execute: portal name. */
export function executePortal(frame: Buffer): string {
  return readCString(frame, BODY)[0];
}

/** Close and Describe: 'S' (statement) or 'P' (portal) and the name. */
export function targetOf(frame: Buffer): { kind: 'S' | 'P'; name: string } {
  if (frame.length < BODY + 2) throw new ProtocolError('message too short');
  const kind = String.fromCharCode(frame[BODY]!);
  if (kind !== 'S' && kind !== 'P') throw new ProtocolError(`invalid target type "${kind}"`);
  return { kind, name: readCString(frame, BODY + 1)[0] };
}

/** PasswordMessage: the password (or token) in clear. */
export function passwordText(frame: Buffer): string {
  return readCString(frame, BODY)[0];
}

/** CommandComplete: the tag, e.g. 'SELECT 5', 'INSERT 0 1'. */
export function commandTag(frame: Buffer): string {
  return frame.toString('utf8', BODY, frame.length - 1);
}

/** ReadyForQuery: transaction status. */
export function transactionStatus(frame: Buffer): 'I' | 'T' | 'E' {
  return String.fromCharCode(frame[BODY] ?? 73) as 'I' | 'T' | 'E';
}

/** ErrorResponse/NoticeResponse: fields by their one-letter code. */
export function errorFields(frame: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  let offset = BODY;
  while (offset < frame.length && frame[offset] !== 0) {
    const code = String.fromCharCode(frame[offset]!);
    const [value, next] = readCString(frame, offset + 1);
    out.set(code, value);
    offset = next;
  }
  return out;
}

/** Splits a command tag into the command and its row count ('INSERT 0 5' → INSERT, 5). */
export function splitCommandTag(tag: string): { command: string; rows?: number } {
  const space = tag.lastIndexOf(' ');
  if (space < 0) return { command: tag };
  const rows = Number(tag.slice(space + 1));
  if (!Number.isInteger(rows)) return { command: tag };
  const first = tag.indexOf(' ');
  return { command: tag.slice(0, first), rows };
}
