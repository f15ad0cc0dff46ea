import { chmodSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { UserError } from '../errors.ts';
import { configDirectory, type StoredLogin, TokenStore } from './token-store.ts';

const login: StoredLogin = {
  issuer: 'https://idp.example.test',
  clientId: 'gatehouse-cli',
  scopes: ['openid'],
  accessToken: 'access-token-value',
  refreshToken: 'refresh-token-value',
  expiresAt: 2_000_000_000,
  subject: 'alice',
};

function freshStore(): { store: TokenStore; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-store-'));
  return { store: new TokenStore(join(dir, 'gatehouse')), dir };
}

describe('TokenStore', () => {
  it('writes one 0600 file per issuer in 0700 directories, whatever the umask', () => {
    const { store, dir } = freshStore();
    const previous = process.umask(0o022);
    try {
      store.write(login);
    } finally {
      process.umask(previous);
    }
    const file = store.fileFor(login.issuer);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'gatehouse', 'tokens')).mode & 0o777).toBe(0o700);
    expect(statSync(join(dir, 'gatehouse')).mode & 0o777).toBe(0o700);
    expect(store.read(`${login.issuer}/`)).toEqual(login);
    expect(store.fileFor('https://other.example.test')).not.toBe(file);
  });

  it.each([0o644, 0o640, 0o604, 0o660])('refuses a cache file others can read (mode %o)', (mode) => {
    const { store } = freshStore();
    store.write(login);
    chmodSync(store.fileFor(login.issuer), mode);
    expect(() => store.read(login.issuer)).toThrow(UserError);
    expect(() => store.read(login.issuer)).toThrow(/readable by others .*gatehouse logout/);
  });

  it('refuses a file it did not write, without echoing its content', () => {
    const { store } = freshStore();
    store.write(login);
    const file = store.fileFor(login.issuer);
    writeFileSync(file, '{"accessToken": "secret-looking"}', { mode: 0o600 });
    expect(() => store.read(login.issuer)).toThrow(/is not one Gatehouse wrote/);
    try {
      store.read(login.issuer);
    } catch (error) {
      expect(String(error)).not.toContain('secret-looking');
    }
  });

  it('lists and removes', () => {
    const { store } = freshStore();
    store.write(login);
    store.write({ ...login, issuer: 'http://127.0.0.1:9999' });
    expect(
      store
        .list()
        .map((l) => l.issuer)
        .sort(),
    ).toEqual(['http://127.0.0.1:9999', login.issuer]);
    expect(store.remove(login.issuer)).toBe(true);
    expect(store.remove(login.issuer)).toBe(false);
    expect(store.read(login.issuer)).toBeUndefined();
    expect(readFileSync(store.fileFor('http://127.0.0.1:9999'), 'utf8')).toContain('127.0.0.1:9999');
  });
});

describe('configDirectory', () => {
  it('follows XDG_CONFIG_HOME, else ~/.config', () => {
    expect(configDirectory({ XDG_CONFIG_HOME: '/x/conf', HOME: '/home/a' })).toBe('/x/conf/gatehouse');
    expect(configDirectory({ HOME: '/home/a' })).toBe('/home/a/.config/gatehouse');
  });
});
