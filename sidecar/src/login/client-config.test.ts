import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadClientConfig, resolveTarget } from './client-config.ts';

function configFile(text: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'gatehouse-client-')), 'client.yaml');
  writeFileSync(file, text);
  return file;
}

const EXAMPLE = `
issuer: https://login.example.com
clientId: gatehouse-cli
databases:
  orders:
    host: orders.gatehouse.example.com
    dbname: orders_prod
    ca: /etc/gatehouse/ca.pem
  shop:
    protocol: mysql
    host: shop.gatehouse.example.com
    tls: require
    issuer: https://other-login.example.com
`;

describe('client config', () => {
  it('reads databases with their defaults, and flags override them', () => {
    const config = loadClientConfig(configFile(EXAMPLE), true);
    expect(config.issuer).toBe('https://login.example.com');
    expect(resolveTarget('orders', {}, config)).toEqual({
      name: 'orders',
      protocol: 'postgres',
      host: 'orders.gatehouse.example.com',
      port: 5432,
      dbname: 'orders_prod',
      tls: 'verify-full',
      ca: '/etc/gatehouse/ca.pem',
    });
    expect(resolveTarget('shop', { port: '3307' }, config)).toMatchObject({
      protocol: 'mysql',
      port: 3307,
      dbname: 'shop',
      tls: 'require',
      issuer: 'https://other-login.example.com',
    });
    expect(resolveTarget(undefined, { host: 'db', dbname: 'x', tls: 'disable' }, config)).toMatchObject({
      host: 'db',
      port: 5432,
      dbname: 'x',
    });
  });

  it('is optional unless named on the command line', () => {
    const missing = join(tmpdir(), 'no-such-dir-gatehouse', 'client.yaml');
    expect(loadClientConfig(missing, false).databases.size).toBe(0);
    expect(() => loadClientConfig(missing, true)).toThrow(/cannot read the client config/);
  });

  it.each([
    ['databases:\n  a:\n    port: 5432\n', /databases\.a\.host: is required/],
    [
      'databases:\n  a:\n    host: h\n    protocol: oracle\n',
      /databases\.a\.protocol: must be postgres or mysql/,
    ],
    [
      'databases:\n  a:\n    host: h\n    tls: prefer\n',
      /databases\.a\.tls: must be disable, require or verify-full/,
    ],
    ['databases:\n  a:\n    host: h\n    port: 70000\n', /databases\.a\.port: must be a port number/],
    ['databases:\n  a:\n    host: h\n    password: x\n', /databases\.a\.password: unknown field/],
    ['isuer: https://typo\n', /isuer: unknown field/],
    ['scopes: openid\n', /scopes: must be a list of strings/],
    ['[unclosed\n', /not YAML/],
  ])('says what is wrong with %j', (text, message) => {
    expect(() => loadClientConfig(configFile(text), true)).toThrow(message);
  });

  it.each([
    [{ protocol: 'oracle', host: 'h', dbname: 'd' }, /--protocol must be postgres or mysql/],
    [{ host: 'h', dbname: 'd', port: 'x' }, /--port must be a port number/],
    [{ host: 'h', dbname: 'd', tls: 'prefer' }, /--tls must be disable, require or verify-full/],
    [{ host: 'h' }, /give --dbname/],
  ])('refuses bad flags %j', (flags, message) => {
    const config = loadClientConfig(configFile(EXAMPLE), true);
    expect(() => resolveTarget(undefined, flags, config)).toThrow(message);
  });

  it('names the databases it knows when asked for another', () => {
    const config = loadClientConfig(configFile(EXAMPLE), true);
    expect(() => resolveTarget('payroll', {}, config)).toThrow(
      /no database "payroll" .*\(it names orders, shop\)/,
    );
  });
});
