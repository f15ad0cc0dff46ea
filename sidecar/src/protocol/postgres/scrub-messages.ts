import { REDACTED } from '../../policy/masking/mask-methods.ts';
import { maskTextFreeform } from '../../policy/masking/mask-text-freeform.ts';
import { Backend } from './codes.ts';

/**
 * Side channels of a masked session: the server quotes values in errors and notices (a unique
 * violation's `Key (ssn)=(123-45-6789)`, a cast error's `invalid input syntax ...: "..."`, a check
 * violation's `Failing row contains (...)`), in NOTIFY payloads and in ParameterStatus. Those values
 * can be any column's, so the quoted parts are redacted whatever they look like, and the rest of the
 * text goes through the value scan.
 */

/** Fields whose text can quote values: message, detail, hint, context, internal query. */
const SCRUBBED_FIELDS = new Set('MDHWq'.split('').map((ch) => ch.charCodeAt(0)));

const KEY_VALUES = /(Key \((?:[^()]|\([^()]*\))*\)=)\((?:[^()]|\([^()]*\))*\)/g;
const FAILING_ROW = /(Failing row contains )\(.*\)/gs;
const QUOTED_VALUE = /(: )"(?:[^"]|"")*"/g;

export function scrubText(text: string): string {
  const quoted = text
    .replace(KEY_VALUES, `$1(${REDACTED})`)
    .replace(FAILING_ROW, `$1(${REDACTED})`)
    .replace(QUOTED_VALUE, `$1"${REDACTED}"`);
  return maskTextFreeform(quoted);
}

/** ErrorResponse or NoticeResponse with its value-bearing fields scrubbed; the frame itself if unchanged. */
export function scrubFieldsMessage(frame: Buffer): Buffer {
  const parts: Buffer[] = [];
  let changed = false;
  let offset = 5;
  while (offset < frame.length && frame[offset] !== 0) {
    const code = frame[offset]!;
    const end = frame.indexOf(0, offset + 1);
    if (end < 0) return frame;
    const value = frame.toString('utf8', offset + 1, end);
    const scrubbed = SCRUBBED_FIELDS.has(code) ? scrubText(value) : value;
    if (scrubbed !== value) changed = true;
    parts.push(Buffer.from([code]), Buffer.from(scrubbed, 'utf8'), Buffer.from([0]));
    offset = end + 1;
  }
  if (!changed) return frame;
  return message(frame[0]!, Buffer.concat([...parts, Buffer.from([0])]));
}

/**
 * Fields an ErrorResponse or NoticeResponse keeps when its text is withheld: severity, SQLSTATE and the
 * names of the schema, table, column, type and constraint involved (catalog names, never values).
 */
const KEPT_WHEN_WITHHELD = new Set('SVCstcdn'.split('').map((ch) => ch.charCodeAt(0)));
const MESSAGE_FIELD = 'M'.charCodeAt(0);
const HINT_FIELD = 'H'.charCodeAt(0);

/**
 * ErrorResponse or NoticeResponse for a statement that touches masked data: the server's message,
 * detail, hint, context, position and internal query can quote any value the statement handled, in any
 * transformed form (a cast error quoting `[968,70,5127`), so they are replaced by a fixed text that keeps
 * the SQLSTATE and says why; no pattern scrubbing can keep up with what a server may quote.
 */
export function withholdServerText(frame: Buffer): Buffer {
  const kept: Buffer[] = [];
  let sqlstate = '';
  let offset = 5;
  while (offset < frame.length && frame[offset] !== 0) {
    const code = frame[offset]!;
    const end = frame.indexOf(0, offset + 1);
    if (end < 0) break;
    if (code === 'C'.charCodeAt(0)) sqlstate = frame.toString('latin1', offset + 1, end);
    if (KEPT_WHEN_WITHHELD.has(code)) kept.push(frame.subarray(offset, end + 1));
    offset = end + 1;
  }
  const text = (code: number, value: string) =>
    Buffer.concat([Buffer.from([code]), Buffer.from(value, 'utf8'), Buffer.from([0])]);
  const notice = frame[0] === Backend.NoticeResponse;
  const what = notice ? 'notice' : 'error';
  return message(
    frame[0]!,
    Buffer.concat([
      ...kept,
      text(
        MESSAGE_FIELD,
        `Gatehouse withheld the database's ${what} text${sqlstate ? ` (SQLSTATE ${sqlstate})` : ''}: the statement reads or writes data this identity sees masked, and the text could quote it`,
      ),
      text(
        HINT_FIELD,
        'The SQLSTATE is the database’s own; the proxy log and the audit record name the statement.',
      ),
      Buffer.from([0]),
    ]),
  );
}

/** NotificationResponse with its payload scanned (after the process id and the channel). */
export function scrubNotification(frame: Buffer): Buffer {
  return scrubLastString(frame, frame.indexOf(0, 9));
}

/** ParameterStatus with its value scanned (application_name can be set to anything). */
export function scrubParameterStatus(frame: Buffer): Buffer {
  return scrubLastString(frame, frame.indexOf(0, 5));
}

/** The message with the string after the NUL at `before` value-scanned; the frame itself if unchanged. */
function scrubLastString(frame: Buffer, before: number): Buffer {
  const end = frame.indexOf(0, before + 1);
  if (before < 0 || end < 0) return frame;
  const value = frame.toString('utf8', before + 1, end);
  const scrubbed = maskTextFreeform(value);
  if (scrubbed === value) return frame;
  return message(
    frame[0]!,
    Buffer.concat([frame.subarray(5, before + 1), Buffer.from(scrubbed, 'utf8'), Buffer.from([0])]),
  );
}

function message(type: number, body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(5 + body.length);
  out[0] = type;
  out.writeInt32BE(4 + body.length, 1);
  body.copy(out, 5);
  return out;
}
