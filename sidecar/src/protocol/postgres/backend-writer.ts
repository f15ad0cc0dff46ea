/** Builds the server-side messages the proxy itself sends to a client. */
import { Backend, encodeMessage as message } from './codes.ts';

function int32(value: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeInt32BE(value);
  return b;
}

function cstring(value: string): Buffer {
  return Buffer.from(`${value.replaceAll('\0', '')}\0`, 'utf8');
}

export const authenticationOk = (): Buffer => message(Backend.Authentication, int32(0));
export const authenticationCleartextPassword = (): Buffer => message(Backend.Authentication, int32(3));

export function parameterStatus(name: string, value: string): Buffer {
  return message(Backend.ParameterStatus, Buffer.concat([cstring(name), cstring(value)]));
}

export function backendKeyData(processId: number, secretKey: Buffer): Buffer {
  return message(Backend.BackendKeyData, Buffer.concat([int32(processId), secretKey]));
}

export function readyForQuery(status: 'I' | 'T' | 'E'): Buffer {
  return message(Backend.ReadyForQuery, Buffer.from(status, 'latin1'));
}

/** The client asked for a newer minor protocol version or unknown `_pq_.` options: we speak 3.0. */
export function negotiateProtocolVersion(unsupportedOptions: string[]): Buffer {
  return message(
    Backend.NegotiateProtocolVersion,
    Buffer.concat([int32(196608), int32(unsupportedOptions.length), ...unsupportedOptions.map(cstring)]),
  );
}

export interface ErrorFields {
  readonly severity: 'ERROR' | 'FATAL' | 'WARNING' | 'NOTICE';
  readonly code: string;
  readonly message: string;
  readonly detail?: string;
  readonly hint?: string;
}

function fields(f: ErrorFields): Buffer {
  const parts: Buffer[] = [
    Buffer.from('S'),
    cstring(f.severity),
    Buffer.from('V'),
    cstring(f.severity),
    Buffer.from('C'),
    cstring(f.code),
    Buffer.from('M'),
    cstring(f.message),
  ];
  if (f.detail) parts.push(Buffer.from('D'), cstring(f.detail));
  if (f.hint) parts.push(Buffer.from('H'), cstring(f.hint));
  parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}

export const errorResponse = (f: ErrorFields): Buffer => message(Backend.ErrorResponse, fields(f));
export const noticeResponse = (f: ErrorFields): Buffer => message(Backend.NoticeResponse, fields(f));
