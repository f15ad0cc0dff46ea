import { describe, expect, it } from 'vitest';
import type { Identity } from '../../identity/identity.ts';
import {
  applicationNameFor,
  StartupRefusal,
  settingsInOptions,
  startupSetting,
  upstreamStartupParameters,
  withoutProxySettings,
} from './startup-parameters.ts';

const identity: Identity = { subject: 'system:serviceaccount:shop:api', groups: [], method: 'token' };

describe('settingsInOptions', () => {
  it.each([
    ['-c search_path=app', ['search_path']],
    ['-csearch_path=app -c statement_timeout=5s', ['search_path', 'statement_timeout']],
    ['--role=postgres', ['role']],
    ['-c session-authorization=postgres', ['session_authorization']],
    ['-c x=a\\ b -c role=y', ['x', 'role']],
    ['', []],
  ])('%s', (options, names) => {
    expect(settingsInOptions(options)).toEqual(names);
  });
});

describe('upstreamStartupParameters', () => {
  it('keeps client settings, drops user and database, and names the identity', () => {
    const params = upstreamStartupParameters(
      new Map([
        ['user', 'x'],
        ['database', 'db'],
        ['application_name', 'psql'],
        ['client_encoding', 'UTF8'],
        ['options', '-c search_path=app'],
      ]),
      identity,
    );
    expect(params).toEqual({
      client_encoding: 'UTF8',
      options: '-c search_path=app',
      application_name: 'gatehouse:system:serviceaccount:shop:api',
    });
  });

  it.each([
    [['role', 'postgres']],
    [['ROLE', 'postgres']],
    [['session_authorization', 'postgres']],
    [['options', '-c role=postgres']],
    [['options', '--session_authorization=postgres']],
    [['replication', 'database']],
  ])('refuses identity changes at startup: %j', (entry) => {
    expect(() =>
      upstreamStartupParameters(new Map([['user', 'x'], entry as [string, string]]), identity),
    ).toThrow(StartupRefusal);
  });

  it('keeps application_name within 63 bytes', () => {
    const long = applicationNameFor({
      ...identity,
      subject: `system:serviceaccount:${'n'.repeat(40)}:${'s'.repeat(40)}`,
    });
    expect(Buffer.byteLength(long)).toBeLessThanOrEqual(63);
    expect(long.startsWith('gatehouse:system:serviceaccount:')).toBe(true);
  });
});

describe('parameters for the proxy itself', () => {
  it('never sends gatehouse.* parameters to the database', () => {
    const params = upstreamStartupParameters(
      new Map([
        ['gatehouse.report_masking', 'on'],
        ['gatehouse.anything', 'x'],
        ['client_encoding', 'UTF8'],
      ]),
      identity,
    );
    expect(Object.keys(params).sort()).toEqual(['application_name', 'client_encoding']);
  });
});

describe('startupSetting', () => {
  it('reads a setting as a startup parameter, or as libpq options carry it', () => {
    const options = (value: string) => new Map([['options', value]]);
    expect(startupSetting(new Map([['gatehouse.purpose', 'train']]), 'gatehouse.purpose')).toBe('train');
    for (const spelling of [
      '-c gatehouse.purpose=train\\ churn',
      '-cgatehouse.purpose=train\\ churn',
      '--gatehouse.purpose=train\\ churn',
      '-c search_path=app -c gatehouse.purpose=train\\ churn',
    ])
      expect(startupSetting(options(spelling), 'gatehouse.purpose')).toBe('train churn');
    expect(startupSetting(options('-c gatehouse.run-id=r1'), 'gatehouse.run_id')).toBe('r1');
    expect(startupSetting(options('-c search_path=app'), 'gatehouse.purpose')).toBeUndefined();
    const both = new Map([
      ['gatehouse.purpose', 'direct'],
      ['options', '-c gatehouse.purpose=option'],
    ]);
    expect(startupSetting(both, 'gatehouse.purpose')).toBe('direct');
  });
});

describe('withoutProxySettings', () => {
  it('drops gatehouse.* settings from options, in every spelling, and keeps the rest as written', () => {
    expect(withoutProxySettings('-c search_path=app')).toBe('-c search_path=app');
    expect(
      withoutProxySettings(
        '-c gatehouse.purpose=train\\ churn -c search_path=a\\ b --gatehouse.run_id=r -cGATEHOUSE.x=1',
      ),
    ).toBe('-c search_path=a\\ b');
    expect(withoutProxySettings('-c gatehouse.purpose=x')).toBe('');
  });

  it('is what goes upstream', () => {
    const identity: Identity = { subject: 'app', groups: [], method: 'local' };
    const only = upstreamStartupParameters(new Map([['options', '-c gatehouse.purpose=x']]), identity);
    expect(only).not.toHaveProperty('options');
    const mixed = upstreamStartupParameters(
      new Map([['options', '-c gatehouse.purpose=x -c work_mem=64MB']]),
      identity,
    );
    expect(mixed['options']).toBe('-c work_mem=64MB');
  });
});
