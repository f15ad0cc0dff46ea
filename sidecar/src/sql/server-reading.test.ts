import { beforeAll, describe, expect, it } from 'vitest';
import { loadSqlParser } from './normalize.ts';
import {
  backslashInPlainString,
  readingRefusal,
  type ServerReading,
  UNKNOWN_READING,
  withParameter,
} from './server-reading.ts';

beforeAll(async () => {
  await loadSqlParser();
});

const ON_UTF8: ServerReading = { standardConformingStrings: true, clientEncoding: 'UTF8' };
const OFF_UTF8: ServerReading = { standardConformingStrings: false, clientEncoding: 'UTF8' };
const ATTACK = "DELETE FROM v WHERE x = 'a\\' AND id = 1 -- ' OR true OR x = 'z'";

describe('backslashInPlainString', () => {
  it.each([
    [ATTACK, true],
    ["SELECT 'a\\b'", true],
    ["SELECT N'a\\b'", true],
    ["SELECT 'a'\n'b\\c'", true],
    ["SELECT E'a\\'b'", false],
    ["SELECT e'a\\\\'", false],
    ['SELECT $$a\\b$$', false],
    ["SELECT $t$ ' \\ $t$", false],
    ['SELECT 1 AS "a\\b"', false],
    ['SELECT 1 -- \\ comment', false],
    ['SELECT 1 /* \\ */', false],
    ["SELECT 'it''s'", false],
    ["SELECT 'unterminated\\", true],
  ])('%s', (sql, expected) => {
    expect(backslashInPlainString(sql)).toBe(expected);
  });
});

describe('readingRefusal', () => {
  it('refuses a backslash in a plain string unless the server said standard_conforming_strings is on', () => {
    expect(readingRefusal(ATTACK, ON_UTF8, true)).toBeUndefined();
    expect(readingRefusal(ATTACK, OFF_UTF8, true)).toMatch(/standard_conforming_strings is not on/);
    expect(readingRefusal(ATTACK, UNKNOWN_READING, true)).toMatch(/standard_conforming_strings/);
    expect(readingRefusal("SELECT E'a\\'b', $$\\$$", OFF_UTF8, true)).toBeUndefined();
    expect(readingRefusal('SELECT 1', OFF_UTF8, true)).toBeUndefined();
  });

  it('refuses a text the server may read under a setting an unfinished statement changed', () => {
    expect(readingRefusal(ATTACK, ON_UTF8, false)).toMatch(/before an earlier statement finished/);
    expect(readingRefusal("SELECT 'é'", ON_UTF8, false)).toMatch(/before an earlier statement finished/);
    expect(readingRefusal("SELECT 'plain'", ON_UTF8, false)).toBeUndefined();
  });

  it.each(['SJIS', 'BIG5', 'GBK', 'GB18030', 'UHC', 'JOHAB', 'LATIN1', 'EUC_JP'])(
    'reads only ASCII texts in client_encoding %s',
    (encoding) => {
      const reading = { standardConformingStrings: true, clientEncoding: encoding };
      expect(readingRefusal("SELECT 'ascii only'", reading, true)).toBeUndefined();
      expect(readingRefusal("SELECT 'ソ\\' OR true --'", reading, true)).toMatch(
        new RegExp(`client_encoding ${encoding}`),
      );
    },
  );

  it('refuses text that was not valid UTF-8', () => {
    expect(
      readingRefusal(Buffer.from([0x53, 0x45, 0x4c, 0xc0, 0x27]).toString('utf8'), ON_UTF8, true),
    ).toMatch(/not valid UTF-8/);
  });

  const OFF_SPELLINGS = [
    'SET standard_conforming_strings = off',
    'SET standard_conforming_strings TO off',
    "SET standard_conforming_strings = 'off'",
    'SET SESSION standard_conforming_strings = false',
    'SET LOCAL standard_conforming_strings TO 0',
    'set Standard_Conforming_Strings = NO',
    'SET "standard_conforming_strings" = of',
    'SET U&"standard\\005fconforming_strings" = off',
    'SET standard_conforming_strings = f',
    'SET standard_conforming_strings = nonsense',
    "SELECT set_config('standard_conforming_strings', 'off', false)",
    "SELECT pg_catalog.set_config('STANDARD_CONFORMING_STRINGS', 'false', true)",
    "SELECT 1 FROM (SELECT set_config('standard_conforming_strings', 'off', false)) s",
    "WITH s AS (SELECT set_config('standard_conforming_strings', 'off', false)) SELECT * FROM s",
    "SELECT set_config(U&'standard\\005fconforming_strings', 'off', false)",
    "SELECT set_config(setting_name => 'standard_conforming_strings', new_value => 'off', is_local => false)",
    "SELECT set_config('standard_conforming_strings', $1, false)",
    "SELECT set_config('standard_' || 'conforming_strings', 'off', false)",
    "SELECT set_config('standard_conforming_strings', current_setting('x'), false)",
    "SELECT set_config(name, 'off', false) FROM pg_settings WHERE name = 'standard_conforming_strings'",
    "SELECT set_config(name, ' No ', false) FROM pg_settings",
    "SELECT set_config(name, 'f', false) FROM pg_settings",
    "SELECT set_config(name, 'OF', false) FROM pg_settings",
    "SELECT set_config(name, '0', false) FROM pg_settings",
    'SELECT set_config(name, setting, false) FROM pg_settings',
    'ALTER ROLE app SET standard_conforming_strings = off',
    'ALTER DATABASE app SET standard_conforming_strings TO off',
    'ALTER ROLE app IN DATABASE app SET standard_conforming_strings = off',
    'ALTER SYSTEM SET standard_conforming_strings = off',
    'CREATE FUNCTION f() RETURNS int LANGUAGE sql SET standard_conforming_strings = off AS $$ SELECT 1 $$',
    'CREATE FUNCTION f() RETURNS int LANGUAGE sql SET standard_conforming_strings FROM CURRENT AS $$ SELECT 1 $$',
    'SELECT 1; SET standard_conforming_strings = off',
  ];
  it.each(OFF_SPELLINGS)('refuses %s', (sql) => {
    expect(readingRefusal(sql, ON_UTF8, true)).toMatch(/turning it off is refused/);
  });

  it.each([
    'SET standard_conforming_strings = on',
    'SET standard_conforming_strings TO true',
    "SET standard_conforming_strings = 'yes'",
    'SET standard_conforming_strings = 1',
    'SET standard_conforming_strings TO DEFAULT',
    'RESET standard_conforming_strings',
    'RESET ALL',
    "SELECT set_config('standard_conforming_strings', 'on', false)",
    "SELECT set_config('search_path', 'public', false)",
    // pg_dump's own: a computed name, but a value no boolean parse reads as off.
    "SELECT set_config(name, 'view, foreign-table', false) FROM pg_settings WHERE name = 'restrict_nonsystem_relation_kind'",
    "SELECT set_config(name, 'on', false) FROM pg_settings",
    'SET search_path = public',
  ])('allows %s', (sql) => {
    expect(readingRefusal(sql, ON_UTF8, true)).toBeUndefined();
  });
});

describe('generated spellings of turning standard_conforming_strings off', () => {
  const scopes = ['', 'SESSION ', 'LOCAL ', 'session '];
  const names = [
    'standard_conforming_strings',
    'STANDARD_CONFORMING_STRINGS',
    '"standard_conforming_strings"',
  ];
  const operators = [' = ', ' TO ', '=', ' to '];
  const offValues = ['off', 'false', '0', 'no', 'of', 'f', 'n', 'fa', 'fals', 'OFF', 'False', 'NO'];
  const quoted = (v: string) => [v, `'${v}'`, `E'${v}'`];
  const sets = scopes.flatMap((scope) =>
    names.flatMap((name) =>
      operators.flatMap((op) =>
        offValues.flatMap((v) => quoted(v).map((value) => `SET ${scope}${name}${op}${value}`)),
      ),
    ),
  );
  const calls = offValues.flatMap((v) =>
    ['false', 'true'].flatMap((local) => [
      `SELECT set_config('standard_conforming_strings', '${v}', ${local})`,
      `SELECT 1 WHERE set_config('Standard_Conforming_Strings', '${v}', ${local}) IS NOT NULL`,
      `WITH x AS (SELECT pg_catalog.set_config('standard_conforming_strings', '${v}', ${local})) SELECT 1 FROM x`,
      `SELECT * FROM (SELECT set_config('standard_conforming_strings'::text, '${v}'::text, ${local})) s`,
      `INSERT INTO t SELECT set_config('standard_conforming_strings', '${v}', ${local})`,
    ]),
  );
  it(`refuses all ${sets.length + calls.length} of them`, () => {
    const passed = [...sets, ...calls].filter((sql) => readingRefusal(sql, ON_UTF8, true) === undefined);
    expect(passed).toEqual([]);
  });

  const onValues = ['on', 'true', '1', 'yes', 't', 'y', 'ON', "'on'", "'true'"];
  it('allows every spelling of turning it on', () => {
    const sets = scopes.flatMap((scope) =>
      operators.flatMap((op) => onValues.map((v) => `SET ${scope}standard_conforming_strings${op}${v}`)),
    );
    expect(sets.filter((sql) => readingRefusal(sql, ON_UTF8, true) !== undefined)).toEqual([]);
  });
});

describe('withParameter', () => {
  it('follows what the server reports', () => {
    let reading = withParameter(UNKNOWN_READING, 'standard_conforming_strings', 'on');
    reading = withParameter(reading, 'client_encoding', 'utf8');
    expect(reading).toEqual(ON_UTF8);
    expect(withParameter(reading, 'standard_conforming_strings', 'off').standardConformingStrings).toBe(
      false,
    );
    expect(withParameter(reading, 'TimeZone', 'UTC')).toEqual(reading);
  });
});
