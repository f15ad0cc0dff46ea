/**
 * A violation of the wire protocol by the peer (bad length, unknown message type, oversized message).
 * The session answers with a FATAL 08P01 and closes; nothing else is affected.
 */
export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
  readonly sqlstate: string;
  constructor(message: string, sqlstate = '08P01') {
    super(message);
    this.sqlstate = sqlstate;
  }
}
