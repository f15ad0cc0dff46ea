import { describe, expect, it } from 'vitest';
import { Capability } from './constants.ts';
import { parseHandshakeResponse } from './handshake-response.ts';
import { PayloadWriter } from './packet-io.ts';

const CAPS =
  Capability.PROTOCOL_41 |
  Capability.SECURE_CONNECTION |
  Capability.CONNECT_WITH_DB |
  Capability.PLUGIN_AUTH |
  Capability.PLUGIN_AUTH_LENENC_CLIENT_DATA;

function response(attributes: Buffer | undefined): Buffer {
  const w = new PayloadWriter()
    .u32((CAPS | (attributes ? Capability.CONNECT_ATTRS : 0)) >>> 0)
    .u32(1 << 24)
    .u8(45)
    .zeros(23)
    .nul('agent')
    .lenencBytes(Buffer.from('secret\0'))
    .nul('shop')
    .nul('mysql_clear_password');
  return attributes ? w.lenencBytes(attributes).build() : w.build();
}

function attributes(pairs: [string, string][]): Buffer {
  const w = new PayloadWriter();
  for (const [key, value] of pairs) w.lenencBytes(key).lenencBytes(value);
  return w.build();
}

describe('parseHandshakeResponse: program_name', () => {
  it('reads the program_name attribute', () => {
    const parsed = parseHandshakeResponse(
      response(
        attributes([
          ['_os', 'Linux'],
          ['program_name', 'gatehouse-mcp/query'],
          ['_pid', '1'],
        ]),
      ),
    );
    expect(parsed).toMatchObject({ user: 'agent', database: 'shop', plugin: 'mysql_clear_password' });
    expect(parsed.program).toBe('gatehouse-mcp/query');
  });

  it('has none without attributes, or without program_name', () => {
    expect(parseHandshakeResponse(response(undefined)).program).toBeUndefined();
    expect(parseHandshakeResponse(response(attributes([['_os', 'Linux']]))).program).toBeUndefined();
  });

  it('ignores attributes it cannot read, and still logs the client in', () => {
    const broken = Buffer.concat([response(undefined), Buffer.from([0x20, 0x0c, 0x70, 0x72])]);
    broken.writeUInt32LE((CAPS | Capability.CONNECT_ATTRS) >>> 0, 0);
    const parsed = parseHandshakeResponse(broken);
    expect(parsed.user).toBe('agent');
    expect(parsed.program).toBeUndefined();
  });
});

describe('parseHandshakeResponse: gatehouse.report_masking', () => {
  it.each([
    ['on', true],
    ['ON', true],
    ['true', true],
    ['1', true],
    ['off', undefined],
    ['', undefined],
    ['yes please', undefined],
  ])('reads %j as %s', (value, wanted) => {
    const parsed = parseHandshakeResponse(response(attributes([['gatehouse.report_masking', value]])));
    expect(parsed.reportsMasking).toBe(wanted);
  });

  it('is off without the attribute, and is never an audit label', () => {
    const parsed = parseHandshakeResponse(response(attributes([['program_name', 'mysql']])));
    expect(parsed.reportsMasking).toBeUndefined();
    expect(Object.keys(parsed)).not.toContain('reportMasking');
  });
});
