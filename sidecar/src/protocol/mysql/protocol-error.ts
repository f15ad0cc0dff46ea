/**
 * A violation of the wire protocol by the peer (bad length, malformed packet, unexpected command).
 * The session answers with an error packet and closes; nothing else is affected.
 */
export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
}
