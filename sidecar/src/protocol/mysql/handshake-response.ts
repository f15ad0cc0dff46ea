import { randomBytes } from 'node:crypto';
import { Capability } from './constants.ts';
import { REPORT_MASKING_ATTRIBUTE, wantsMaskingReport } from './masking-report.ts';
import { PayloadReader } from './packet-io.ts';
import { ProtocolError } from './protocol-error.ts';

/** The client's side of the MySQL handshake: its HandshakeResponse41, and the proxy's scramble. */

/** 20 printable bytes: some clients treat the scramble as a C string. */
export function randomScramble(): Buffer {
  const bytes = randomBytes(20);
  for (let i = 0; i < bytes.length; i++) bytes[i] = 0x21 + (bytes[i]! % 94);
  return bytes;
}

export function nulTerminated(bytes: Buffer): string {
  const end = bytes.indexOf(0);
  return bytes.toString('utf8', 0, end < 0 ? bytes.length : end);
}

export interface HandshakeResponse {
  readonly capabilities: number;
  readonly charset: number;
  readonly user: string;
  readonly auth: Buffer;
  readonly database: string;
  readonly plugin: string;
  /** The `program_name` connection attribute: what the client says it is (audited as `application`). */
  readonly program?: string;
  /** The `gatehouse.purpose` and `gatehouse.run_id` connection attributes, for the audit. */
  readonly purpose?: string;
  readonly runId?: string;
  /** The `gatehouse.report_masking` attribute, on: mark masked columns in column definitions (masking-report.ts). */
  readonly reportsMasking?: boolean;
}

export function parseHandshakeResponse(payload: Buffer): HandshakeResponse {
  const r = new PayloadReader(payload);
  const capabilities = r.u32();
  if (!(capabilities & Capability.PROTOCOL_41))
    throw new ProtocolError('Gatehouse speaks protocol 4.1 only; this client is too old');
  r.u32();
  const charset = r.u8();
  r.skip(23);
  const user = r.nulBytes().toString('utf8');
  let auth: Buffer;
  if (capabilities & Capability.PLUGIN_AUTH_LENENC_CLIENT_DATA) auth = r.lenencBytes();
  else if (capabilities & Capability.SECURE_CONNECTION) auth = r.bytes(r.u8());
  else auth = r.nulBytes();
  const database =
    capabilities & Capability.CONNECT_WITH_DB && r.remaining > 0 ? r.nulBytes(true).toString('utf8') : '';
  const plugin =
    capabilities & Capability.PLUGIN_AUTH && r.remaining > 0 ? r.nulBytes(true).toString('utf8') : '';
  const labels = capabilities & Capability.CONNECT_ATTRS ? auditLabels(r) : {};
  return { capabilities, charset, user, auth, database, plugin, ...labels };
}

/** Connection attributes the audit keeps, by attribute name. */
const LABELS: Readonly<Record<string, 'program' | 'purpose' | 'runId' | 'reportMasking'>> = {
  program_name: 'program',
  'gatehouse.purpose': 'purpose',
  'gatehouse.run_id': 'runId',
  [REPORT_MASKING_ATTRIBUTE]: 'reportMasking',
};

/**
 * `program_name`, `gatehouse.purpose` and `gatehouse.run_id` from the connection attributes. Only
 * labels for the audit: attributes that do not read as the protocol lays them out are ignored, never a
 * reason to refuse a login.
 */
function auditLabels(r: PayloadReader): {
  program?: string;
  purpose?: string;
  runId?: string;
  reportsMasking?: boolean;
} {
  const labels: { program?: string; purpose?: string; runId?: string; reportMasking?: string } = {};
  try {
    if (r.remaining === 0) return labels;
    const attributes = new PayloadReader(r.lenencBytes());
    while (attributes.remaining > 0) {
      const key = attributes.lenencBytes().toString('utf8');
      const value = attributes.lenencBytes().toString('utf8');
      const label = Object.hasOwn(LABELS, key) ? LABELS[key] : undefined;
      if (label !== undefined && labels[label] === undefined) labels[label] = value;
    }
  } catch {
    // Malformed attributes: the labels read before the damage stand.
  }
  const { reportMasking, ...audit } = labels;
  return { ...audit, ...(wantsMaskingReport(reportMasking) && { reportsMasking: true }) };
}
