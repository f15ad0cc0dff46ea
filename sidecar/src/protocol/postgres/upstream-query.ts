import type { Socket } from 'node:net';
import { BackendMessageReader } from './backend-message-reader.ts';
import { Backend, encodeMessage, Frontend } from './codes.ts';
import { readErrorFields } from './upstream-error.ts';

/** One result set of a simple query, every value in text form (null for SQL NULL). */
export type TextRows = (string | null)[][];

const MAX_MESSAGE = 64 * 1024 * 1024;

/**
 * Runs `sql` (one or several statements) on an idle upstream connection that no client uses yet, and
 * returns one TextRows per statement. The socket is left paused with no listeners of ours, and the
 * bytes read past the final ReadyForQuery are handed back, as connectUpstream does.
 */
export function runUpstreamQuery(
  socket: Socket,
  sql: string,
  timeoutMs: number,
): Promise<{ results: TextRows[]; leftover: Buffer }> {
  return new Promise((resolve, reject) => {
    const reader = new BackendMessageReader(MAX_MESSAGE);
    const results: TextRows[] = [];
    let current: TextRows = [];
    let failure: Error | undefined;
    const finish = (error?: Error) => {
      clearTimeout(timer);
      socket.pause();
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('close', onClose);
      if (error) reject(error);
      else resolve({ results, leftover: reader.remainder() });
    };
    const onData = (chunk: Buffer) => {
      reader.push(chunk);
      try {
        for (let frame = reader.next(); frame; frame = reader.next()) {
          const type = frame.type;
          if (type === Backend.DataRow) current.push(dataRowValues(frame.body));
          else if (type === Backend.CommandComplete) {
            results.push(current);
            current = [];
          } else if (type === Backend.ErrorResponse) failure ??= serverError(frame.body);
          else if (type === Backend.ReadyForQuery) {
            finish(failure);
            return;
          }
        }
      } catch (error) {
        finish(error instanceof Error ? error : new Error(String(error)));
      }
    };
    const onError = (error: Error) => finish(error);
    const onClose = () => finish(new Error('the database closed the connection during the query'));
    const timer = setTimeout(
      () => finish(new Error(`the query got no answer within ${timeoutMs} ms`)),
      timeoutMs,
    );
    socket.on('data', onData);
    socket.on('error', onError);
    socket.on('close', onClose);
    socket.write(encodeMessage(Frontend.Query, Buffer.from(`${sql}\0`, 'utf8')));
    socket.resume();
  });
}

export function dataRowValues(body: Buffer): (string | null)[] {
  const count = body.readInt16BE(0);
  const values: (string | null)[] = [];
  let offset = 2;
  for (let i = 0; i < count; i++) {
    const length = body.readInt32BE(offset);
    offset += 4;
    if (length < 0) values.push(null);
    else {
      values.push(body.toString('utf8', offset, offset + length));
      offset += length;
    }
  }
  return values;
}

function serverError(body: Buffer): Error {
  const { sqlstate, message } = readErrorFields(body);
  return new Error(`query failed: ${sqlstate} ${message}`);
}
