import { describe, expect, it } from 'vitest';
import { ScramError, saslPrep, scramClientFinal, scramClientFirst, verifyScramServerFinal } from './scram.ts';

// RFC 7677 section 3: user "user", password "pencil".
const CLIENT_NONCE = 'rOprNGfwEbeRWgbNEkqO';
const SERVER_FIRST = 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096';
const CLIENT_FINAL =
  'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=';
const SERVER_FINAL = 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=';

describe('SCRAM-SHA-256 client (RFC 7677 test vector)', () => {
  const first = scramClientFirst({ username: 'user', clientNonce: CLIENT_NONCE });

  it('builds the client-first message with the gs2 header', () => {
    expect(first.message).toBe(`n,,n=user,r=${CLIENT_NONCE}`);
    expect(first.clientFirstBare).toBe(`n=user,r=${CLIENT_NONCE}`);
  });

  it('computes the client proof and the expected server signature', async () => {
    const final = await scramClientFinal(first, SERVER_FIRST, 'pencil');
    expect(final.message).toBe(CLIENT_FINAL);
    expect(() => verifyScramServerFinal(SERVER_FINAL, final.expectedServerSignature)).not.toThrow();
  });

  it('rejects a server whose signature is wrong', async () => {
    const final = await scramClientFinal(first, SERVER_FIRST, 'pencil');
    const forged = Buffer.from(final.expectedServerSignature);
    forged[0]! ^= 1;
    expect(() =>
      verifyScramServerFinal(`v=${forged.toString('base64')}`, final.expectedServerSignature),
    ).toThrow(/server signature does not match/);
    expect(() => verifyScramServerFinal('v=', final.expectedServerSignature)).toThrow(ScramError);
  });

  it('rejects a server that knows another password', async () => {
    const final = await scramClientFinal(first, SERVER_FIRST, 'pencil2');
    expect(() => verifyScramServerFinal(SERVER_FINAL, final.expectedServerSignature)).toThrow(ScramError);
  });

  it('reports the server error attribute', () => {
    expect(() => verifyScramServerFinal('e=invalid-proof', Buffer.alloc(32))).toThrow(/invalid-proof/);
  });

  it.each([
    ['a nonce that does not extend ours', 'r=somethingElse,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096'],
    ['our nonce unextended', `r=${CLIENT_NONCE},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096`],
    ['no salt', `r=${CLIENT_NONCE}x,i=4096`],
    ['an empty salt', `r=${CLIENT_NONCE}x,s=,i=4096`],
    ['zero iterations', `r=${CLIENT_NONCE}x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0`],
    ['non-numeric iterations', `r=${CLIENT_NONCE}x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4k`],
    ['a mandatory extension', `m=ext,r=${CLIENT_NONCE}x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096`],
    ['garbage', 'hello'],
  ])('rejects a server-first message with %s', async (_, serverFirst) => {
    await expect(scramClientFinal(first, serverFirst, 'pencil')).rejects.toThrow(ScramError);
  });

  it('escapes user names and makes a fresh nonce each time', () => {
    expect(scramClientFirst({ username: 'a=b,c', clientNonce: 'n' }).clientFirstBare).toBe('n=a=3Db=2Cc,r=n');
    const a = scramClientFirst();
    const b = scramClientFirst();
    expect(a.message).toMatch(/^n,,n=,r=[A-Za-z0-9+/]{24}$/);
    expect(a.clientNonce).not.toBe(b.clientNonce);
  });
});

describe('saslPrep (RFC 4013 examples, PostgreSQL fallbacks)', () => {
  it.each([
    ['ASCII unchanged', 'pencil', 'pencil'],
    ['ASCII controls pass as PostgreSQL lets them', 'a\u0007b', 'a\u0007b'],
    ['soft hyphen mapped to nothing', 'I\u00adX', 'IX'],
    ['feminine ordinal normalised', '\u00aa', 'a'],
    ['roman numeral nine normalised', '\u2168', 'IX'],
    ['no-break space becomes a space', 'p\u00a0w\u00e4', 'p w\u00e4'],
    ['ligature decomposed', '\ufb01x', 'fix'],
    ['prohibited control: raw password used', '\u00e4\u0007', '\u00e4\u0007'],
    ['private use: raw password used', '\u00e4\ue000', '\u00e4\ue000'],
  ])('%s', (_, input, expected) => {
    expect(saslPrep(input)).toBe(expected);
  });
});
